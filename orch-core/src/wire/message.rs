//! Conversation messages as sent to a model.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Who wrote a message in a model conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Role {
    /// The user side: prompts and tool results.
    User,
    /// The model.
    Assistant,
}

/// One message of a model conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Author.
    pub role: Role,
    /// Content blocks, in order.
    pub content: Vec<ContentBlock>,
}

impl Message {
    /// A user message holding one text block.
    pub fn user_text(text: impl Into<String>) -> Self {
        Self { role: Role::User, content: vec![ContentBlock::Text { text: text.into() }] }
    }

    /// The text of the last block that carries text (a text block or a tool result), if any.
    pub fn last_text(&self) -> Option<&str> {
        self.content.iter().rev().find_map(|b| match b {
            ContentBlock::Text { text } => Some(text.as_str()),
            ContentBlock::ToolResult { content, .. } => Some(content.as_str()),
            _ => None,
        })
    }
}

/// A block of message content, shaped like Anthropic's Messages API blocks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ContentBlock {
    /// Plain text.
    Text {
        /// The text.
        text: String,
    },
    /// Extended thinking; the signature must be passed back unchanged.
    Thinking {
        /// The thinking text.
        thinking: String,
        /// Opaque signature from the provider.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signature: Option<String>,
    },
    /// Thinking the provider returned encrypted.
    RedactedThinking {
        /// Opaque data.
        data: String,
    },
    /// The model asks for a tool call.
    ToolUse {
        /// Call id, echoed by the matching tool result.
        id: String,
        /// Tool name.
        name: String,
        /// Tool input (a JSON object).
        input: Value,
    },
    /// The result of a tool call.
    ToolResult {
        /// The id of the tool use this answers.
        tool_use_id: String,
        /// Result text.
        content: String,
        /// Whether the tool failed or was refused.
        #[serde(default)]
        is_error: bool,
    },
}

/// The deepest nesting of objects and arrays orch accepts in a model's tool call input (the input object
/// itself is level 1).
///
/// What is accepted must be readable again: serde_json reads at most 127 levels, and a stored input sits a
/// few levels below the top of its row (the `ToolUse` event, the conversation message, the loop state),
/// so an input of 124 levels was stored but could never be read back. Half the readable depth leaves a
/// wide margin, and no real tool takes input anywhere near this deep. A deeper call is refused with a tool
/// error to the model, and [`too_deep_input_marker`] is stored in place of its input.
pub const MAX_TOOL_INPUT_DEPTH: usize = 64;

/// The tool error given to the model for a call whose input nests deeper than [`MAX_TOOL_INPUT_DEPTH`].
pub fn too_deep_input_error() -> String {
    format!("tool input nested deeper than {MAX_TOOL_INPUT_DEPTH} levels; the call was not run")
}

/// What is stored, and sent back to the model, in place of a tool input nested too deeply:
/// `{"orch_input_refused": "<the error>"}`.
pub fn too_deep_input_marker() -> Value {
    let mut m = serde_json::Map::new();
    m.insert("orch_input_refused".into(), Value::String(too_deep_input_error()));
    Value::Object(m)
}

/// Whether a tool call's input must be refused for its depth: deeper than [`MAX_TOOL_INPUT_DEPTH`], or the
/// [`too_deep_input_marker`] already put in place of such an input.
pub fn tool_input_too_deep(input: &Value) -> bool {
    json_depth(input) > MAX_TOOL_INPUT_DEPTH || *input == too_deep_input_marker()
}

/// How deeply objects and arrays nest in `v`: 0 for a scalar, 1 for `{}`, `[1]` or `{"a": 1}`.
/// Iterative, so any depth is measured without recursion.
pub fn json_depth(v: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(v, 0usize)];
    while let Some((v, above)) = stack.pop() {
        match v {
            Value::Array(items) => {
                deepest = deepest.max(above + 1);
                stack.extend(items.iter().map(|i| (i, above + 1)));
            }
            Value::Object(map) => {
                deepest = deepest.max(above + 1);
                stack.extend(map.values().map(|i| (i, above + 1)));
            }
            _ => {}
        }
    }
    deepest
}

/// How deeply objects and arrays nest in JSON text, without parsing it (brackets inside strings do not
/// count). For text that is not JSON the result is only an estimate, which is all a pre-check needs.
pub fn json_text_depth(text: &str) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for b in text.bytes() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Token usage of one or more model calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Input tokens billed at the full input price.
    #[serde(default)]
    pub input_tokens: u64,
    /// Output tokens.
    #[serde(default)]
    pub output_tokens: u64,
    /// Input tokens read from the prompt cache.
    #[serde(default)]
    pub cache_read_input_tokens: u64,
    /// Input tokens written to the prompt cache.
    #[serde(default)]
    pub cache_creation_input_tokens: u64,
}

impl Usage {
    /// Adds another usage to this one.
    pub fn add(&mut self, other: &Usage) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cache_read_input_tokens += other.cache_read_input_tokens;
        self.cache_creation_input_tokens += other.cache_creation_input_tokens;
    }

    /// All tokens counted.
    pub fn total(&self) -> u64 {
        self.input_tokens + self.output_tokens + self.cache_read_input_tokens + self.cache_creation_input_tokens
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_nested_objects_and_arrays_not_brackets_in_strings() {
        let cases = [
            ("1", 0),
            ("{}", 1),
            (r#"{"a": [1, {"b": []}]}"#, 4),
            (r#"{"a": "[[[{{{", "b": "\\\"[["}"#, 1),
            (r#"[[], [[[]]], {}]"#, 4),
        ];
        for (text, want) in cases {
            let v: Value = serde_json::from_str(text).unwrap_or_default();
            assert_eq!(json_depth(&v), want, "{text}");
            assert_eq!(json_text_depth(text), want, "{text}");
        }
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(json_text_depth(&deep), 10_000);
    }

    #[test]
    fn the_limit_refuses_one_level_past_it_and_the_marker() {
        let mut v = Value::from(1);
        for _ in 0..MAX_TOOL_INPUT_DEPTH {
            v = Value::Array(vec![v]);
        }
        assert!(!tool_input_too_deep(&v));
        assert!(tool_input_too_deep(&Value::Array(vec![v])));
        assert!(tool_input_too_deep(&too_deep_input_marker()));
        assert!(too_deep_input_error().contains("nested deeper than 64 levels"));
    }
}
