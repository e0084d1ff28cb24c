//! A model's streamed answer as the engine sees it, for hosts that show a reply as it streams.

use serde::{Deserialize, Serialize};

use super::Usage;

/// Why the model stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StopReason {
    /// The answer is complete.
    EndTurn,
    /// It wants tool calls run.
    ToolUse,
    /// The output limit was reached.
    MaxTokens,
    /// A stop sequence was produced.
    StopSequence,
    /// The provider refused.
    Refusal,
}

impl StopReason {
    /// As stored (`end_turn`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EndTurn => "end_turn",
            Self::ToolUse => "tool_use",
            Self::MaxTokens => "max_tokens",
            Self::StopSequence => "stop_sequence",
            Self::Refusal => "refusal",
        }
    }
}

/// The kind of a content block being streamed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum BlockStart {
    /// Text.
    Text,
    /// Thinking.
    Thinking,
    /// Redacted thinking with its data.
    RedactedThinking {
        /// Opaque data.
        data: String,
    },
    /// A tool call.
    ToolUse {
        /// Call id.
        id: String,
        /// Tool name.
        name: String,
    },
}

/// One piece of a streamed model response. Blocks are addressed by index, as in Anthropic's stream;
/// other wire formats map onto this.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "delta", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ModelDelta {
    /// A block begins.
    BlockStart {
        /// Block index.
        index: usize,
        /// Its kind.
        block: BlockStart,
    },
    /// Text for a text block.
    Text {
        /// Block index.
        index: usize,
        /// Text piece.
        text: String,
    },
    /// Text for a thinking block.
    Thinking {
        /// Block index.
        index: usize,
        /// Thinking piece.
        thinking: String,
    },
    /// The signature of a thinking block.
    Signature {
        /// Block index.
        index: usize,
        /// Signature.
        signature: String,
    },
    /// A piece of a tool call's JSON input.
    InputJson {
        /// Block index.
        index: usize,
        /// JSON fragment.
        partial_json: String,
    },
    /// A block ends.
    BlockStop {
        /// Block index.
        index: usize,
    },
    /// Usage so far (each field replaces the previous value when non-zero).
    Usage(Usage),
    /// The message ends.
    Stop {
        /// Why.
        reason: StopReason,
    },
    /// The transport is retrying the call after a retryable failure (before any output). Not part of
    /// the answer: the agent loop records it as a `ModelRetry` event.
    Retry {
        /// Which retry (1 = the first).
        attempt: u32,
        /// How long it waits before trying again.
        wait_ms: u64,
        /// What failed.
        error: String,
    },
}
