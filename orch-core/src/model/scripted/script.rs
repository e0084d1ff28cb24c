//! The script file as parsed, compiled into steps, and the `$1`…`$9` substitution of their answers.

use std::borrow::Cow;
use std::sync::atomic::AtomicBool;

use regex::{Captures, Regex};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{DEFAULT_SIGNATURE, QUOTE_CHARS};
use crate::wire::Usage;

// ---------------------------------------------------------------------------------------------
// The file format as parsed.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScript {
    pub(super) steps: Vec<RawStep>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStep {
    #[serde(default)]
    pub(super) agent: Option<String>,
    #[serde(default)]
    pub(super) when: Option<String>,
    #[serde(default)]
    pub(super) repeat: bool,
    pub(super) reply: Vec<RawBlock>,
    #[serde(default)]
    pub(super) usage: Option<RawUsage>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBlock {
    #[serde(rename = "type")]
    pub(super) kind: String,
    #[serde(default)]
    pub(super) text: Option<String>,
    #[serde(default)]
    pub(super) thinking: Option<String>,
    #[serde(default)]
    pub(super) signature: Option<String>,
    #[serde(default)]
    pub(super) data: Option<String>,
    #[serde(default)]
    pub(super) id: Option<String>,
    #[serde(default)]
    pub(super) name: Option<String>,
    #[serde(default)]
    pub(super) input: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUsage {
    #[serde(default)]
    pub(super) input_tokens: u64,
    #[serde(default)]
    pub(super) output_tokens: u64,
    #[serde(default)]
    pub(super) cache_read_input_tokens: u64,
    #[serde(default)]
    pub(super) cache_creation_input_tokens: u64,
}

// ---------------------------------------------------------------------------------------------
// The script as compiled.

pub(super) struct Step {
    pub(super) agent: Option<Regex>,
    pub(super) when: Option<Regex>,
    pub(super) repeat: bool,
    pub(super) used: AtomicBool,
    pub(super) blocks: Vec<Block>,
    pub(super) usage: Option<Usage>,
    /// Whether any string of the reply holds a `$` (so captures are needed and strings rewritten).
    pub(super) substitutes: bool,
}

pub(super) enum Block {
    Text(String),
    Thinking {
        thinking: String,
        signature: String,
    },
    Redacted(String),
    ToolUse {
        id: Option<String>,
        name: String,
        input: Value,
        /// `input` serialized, used as is when the step does not substitute.
        json: String,
    },
}

impl Step {
    pub(super) fn compile(index: usize, raw: RawStep) -> Result<Self, String> {
        let regex = |key: &str, src: Option<String>| -> Result<Option<Regex>, String> {
            src.map(|s| Regex::new(&s).map_err(|e| format!("steps[{index}]: bad `{key}` regex {s:?}: {e}"))).transpose()
        };
        let agent = regex("agent", raw.agent)?;
        let when = regex("when", raw.when)?;
        if raw.reply.is_empty() {
            return Err(format!("steps[{index}]: empty reply (give at least one block)"));
        }
        let mut substitutes = false;
        let mut blocks = Vec::with_capacity(raw.reply.len());
        for (b, block) in raw.reply.into_iter().enumerate() {
            let block = compile_block(block).map_err(|e| format!("steps[{index}].reply[{b}]: {e}"))?;
            substitutes |= match &block {
                Block::Text(t) => t.contains('$'),
                Block::Thinking { thinking, signature } => thinking.contains('$') || signature.contains('$'),
                Block::Redacted(d) => d.contains('$'),
                Block::ToolUse { id, name, input, .. } => {
                    id.as_deref().is_some_and(|i| i.contains('$')) || name.contains('$') || value_has_dollar(input)
                }
            };
            blocks.push(block);
        }
        let usage = raw.usage.map(|u| Usage {
            input_tokens: u.input_tokens,
            output_tokens: u.output_tokens,
            cache_read_input_tokens: u.cache_read_input_tokens,
            cache_creation_input_tokens: u.cache_creation_input_tokens,
        });
        Ok(Self { agent, when, repeat: raw.repeat, used: AtomicBool::new(false), blocks, usage, substitutes })
    }
}

pub(super) fn compile_block(raw: RawBlock) -> Result<Block, String> {
    let RawBlock { kind, text, thinking, signature, data, id, name, input } = raw;
    let present = [
        ("text", text.is_some()),
        ("thinking", thinking.is_some()),
        ("signature", signature.is_some()),
        ("data", data.is_some()),
        ("id", id.is_some()),
        ("name", name.is_some()),
        ("input", input.is_some()),
    ];
    let allowed: &[&str] = match kind.as_str() {
        "text" => &["text"],
        "thinking" => &["thinking", "signature"],
        "redacted_thinking" => &["data"],
        "tool_use" => &["id", "name", "input"],
        other => {
            return Err(format!(
                "unknown block type {other:?} (expected \"text\", \"thinking\", \"redacted_thinking\" or \"tool_use\")"
            ));
        }
    };
    if let Some((key, _)) = present.iter().find(|(key, set)| *set && !allowed.contains(key)) {
        return Err(format!("key `{key}` does not belong in a {kind} block (allowed: {})", allowed.join(", ")));
    }
    let required = |v: Option<String>, key: &str| v.ok_or_else(|| format!("{kind} block without `{key}`"));
    Ok(match kind.as_str() {
        "text" => Block::Text(required(text, "text")?),
        "thinking" => Block::Thinking {
            thinking: required(thinking, "thinking")?,
            signature: signature.unwrap_or_else(|| DEFAULT_SIGNATURE.to_owned()),
        },
        "redacted_thinking" => Block::Redacted(required(data, "data")?),
        _ => {
            let name = required(name, "name")?;
            if name.is_empty() {
                return Err("tool_use block with an empty `name`".to_owned());
            }
            let input = match input {
                None => Value::Object(Map::new()),
                Some(v @ Value::Object(_)) => v,
                Some(_) => return Err(format!("tool_use block {name:?}: `input` must be a JSON object")),
            };
            let json = input.to_string();
            Block::ToolUse { id, name, input, json }
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Substitution of `$1`…`$9` and `$$`.

pub(super) fn value_has_dollar(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('$'),
        Value::Array(a) => a.iter().any(value_has_dollar),
        Value::Object(o) => o.iter().any(|(k, v)| k.contains('$') || value_has_dollar(v)),
        _ => false,
    }
}

pub(super) fn subst_ref<'a>(s: &'a str, substitutes: bool, caps: Option<&Captures<'_>>) -> Cow<'a, str> {
    if substitutes { substitute(s, caps) } else { Cow::Borrowed(s) }
}

pub(super) fn substitute<'a>(s: &'a str, caps: Option<&Captures<'_>>) -> Cow<'a, str> {
    if !s.contains('$') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        match after.as_bytes().first() {
            Some(b'$') => {
                out.push('$');
                rest = &after[1..];
            }
            Some(&d @ b'1'..=b'9') => {
                let group = usize::from(d - b'0');
                out.push_str(caps.and_then(|c| c.get(group)).map_or("", |m| m.as_str()));
                rest = &after[1..];
            }
            _ => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

pub(super) fn substitute_value(v: &Value, caps: Option<&Captures<'_>>) -> Value {
    match v {
        Value::String(s) => Value::String(substitute(s, caps).into_owned()),
        Value::Array(a) => Value::Array(a.iter().map(|v| substitute_value(v, caps)).collect()),
        Value::Object(o) => Value::Object(
            o.iter().map(|(k, v)| (substitute(k, caps).into_owned(), substitute_value(v, caps))).collect(),
        ),
        other => other.clone(),
    }
}

/// The first [`QUOTE_CHARS`] characters of `s`, with `…` when cut.
pub(super) fn quote(s: &str) -> Cow<'_, str> {
    match crate::text::prefix_chars(s, QUOTE_CHARS) {
        (head, true) => Cow::Owned(format!("{head}…")),
        (whole, false) => Cow::Borrowed(whole),
    }
}
