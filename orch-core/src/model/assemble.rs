//! Turns a stream of [`ModelDelta`]s into complete content blocks.

use serde_json::Value;

use super::{BlockStart, ModelDelta, ModelError, StopReason};
use crate::wire::{ContentBlock, Usage};

/// A complete model response.
#[derive(Debug, Clone, PartialEq)]
pub struct AssembledResponse {
    /// Blocks in index order.
    pub content: Vec<ContentBlock>,
    /// Usage.
    pub usage: Usage,
    /// Why it stopped (tool_use when a tool call is present and none was given).
    pub stop_reason: StopReason,
}

impl AssembledResponse {
    /// The text of its text blocks, in order, a newline between two blocks.
    pub fn text(&self) -> String {
        let texts: Vec<&str> = self
            .content
            .iter()
            .filter_map(|b| match b {
                ContentBlock::Text { text } => Some(text.as_str()),
                _ => None,
            })
            .collect();
        texts.join("\n")
    }
}

#[derive(Debug)]
enum Partial {
    Text(String),
    Thinking { thinking: String, signature: Option<String> },
    Redacted(String),
    ToolUse { id: String, name: String, json: String },
}

/// Collects deltas. Feed every delta to [`ResponseAssembler::push`], then call [`ResponseAssembler::finish`].
#[derive(Debug, Default)]
pub struct ResponseAssembler {
    blocks: Vec<(usize, Partial)>,
    usage: Usage,
    stop: Option<StopReason>,
}

impl ResponseAssembler {
    /// A new, empty assembler.
    pub fn new() -> Self {
        Self::default()
    }

    fn block(&mut self, index: usize) -> Option<&mut Partial> {
        self.blocks.iter_mut().rev().find(|(i, _)| *i == index).map(|(_, p)| p)
    }

    /// Adds a delta. A delta for a block never started is a protocol error.
    pub fn push(&mut self, delta: ModelDelta) -> Result<(), ModelError> {
        let missing =
            |index: usize| ModelError::Protocol { message: format!("delta for unknown content block {index}") };
        match delta {
            ModelDelta::BlockStart { index, block } => {
                let p = match block {
                    BlockStart::Text => Partial::Text(String::new()),
                    BlockStart::Thinking => Partial::Thinking { thinking: String::new(), signature: None },
                    BlockStart::RedactedThinking { data } => Partial::Redacted(data),
                    BlockStart::ToolUse { id, name } => Partial::ToolUse { id, name, json: String::new() },
                };
                self.blocks.push((index, p));
            }
            ModelDelta::Text { index, text } => match self.block(index) {
                Some(Partial::Text(t)) => t.push_str(&text),
                _ => return Err(missing(index)),
            },
            ModelDelta::Thinking { index, thinking } => match self.block(index) {
                Some(Partial::Thinking { thinking: t, .. }) => t.push_str(&thinking),
                _ => return Err(missing(index)),
            },
            ModelDelta::Signature { index, signature } => match self.block(index) {
                Some(Partial::Thinking { signature: s, .. }) => s.get_or_insert_with(String::new).push_str(&signature),
                _ => return Err(missing(index)),
            },
            ModelDelta::InputJson { index, partial_json } => match self.block(index) {
                Some(Partial::ToolUse { json, .. }) => json.push_str(&partial_json),
                _ => return Err(missing(index)),
            },
            ModelDelta::BlockStop { .. } => {}
            ModelDelta::Usage(u) => {
                let merge = |old: &mut u64, new: u64| {
                    if new != 0 {
                        *old = new;
                    }
                };
                merge(&mut self.usage.input_tokens, u.input_tokens);
                merge(&mut self.usage.output_tokens, u.output_tokens);
                merge(&mut self.usage.cache_read_input_tokens, u.cache_read_input_tokens);
                merge(&mut self.usage.cache_creation_input_tokens, u.cache_creation_input_tokens);
            }
            ModelDelta::Stop { reason } => self.stop = Some(reason),
            ModelDelta::Retry { .. } => {}
        }
        Ok(())
    }

    /// Reads a whole call's stream and returns the complete response (the first error ends it).
    pub async fn collect(mut stream: super::DeltaStream) -> Result<AssembledResponse, ModelError> {
        let mut assembler = Self::new();
        while let Some(delta) = futures::StreamExt::next(&mut stream).await {
            assembler.push(delta?)?;
        }
        assembler.finish()
    }

    /// The complete response. Tool inputs must be valid JSON objects (empty input means `{}`); one nested
    /// deeper than [`crate::wire::MAX_TOOL_INPUT_DEPTH`] is replaced by [`crate::wire::too_deep_input_marker`].
    pub fn finish(self) -> Result<AssembledResponse, ModelError> {
        let mut blocks = self.blocks;
        blocks.sort_by_key(|(i, _)| *i);
        let mut content = Vec::with_capacity(blocks.len());
        let mut has_tool = false;
        for (_, p) in blocks {
            content.push(match p {
                Partial::Text(text) => ContentBlock::Text { text },
                Partial::Thinking { thinking, signature } => ContentBlock::Thinking { thinking, signature },
                Partial::Redacted(data) => ContentBlock::RedactedThinking { data },
                Partial::ToolUse { id, name, json } => {
                    has_tool = true;
                    let input = if json.trim().is_empty() {
                        Value::Object(Default::default())
                    } else if crate::wire::json_text_depth(&json) > crate::wire::MAX_TOOL_INPUT_DEPTH {
                        // Not parsed (past serde_json's limit it would fail the whole response): the agent
                        // loop refuses the call with a tool error instead.
                        crate::wire::too_deep_input_marker()
                    } else {
                        serde_json::from_str(&json).map_err(|e| ModelError::Protocol {
                            message: format!("tool call {name} ({id}) has invalid JSON input: {e}"),
                        })?
                    };
                    ContentBlock::ToolUse { id, name, input }
                }
            });
        }
        let stop_reason = self.stop.unwrap_or(if has_tool { StopReason::ToolUse } else { StopReason::EndTurn });
        Ok(AssembledResponse { content, usage: self.usage, stop_reason })
    }
}
