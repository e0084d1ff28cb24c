//! Models: the [`ModelProvider`] trait (streamed deltas), typed errors, prices and model specs.

mod assemble;
pub mod cassette;
mod price;
mod registry;
pub mod scripted;
mod spec;

#[cfg(feature = "http")]
pub mod anthropic;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "http")]
pub mod openai;

#[cfg(feature = "http")]
pub use anthropic::{AnthropicConfig, AnthropicProvider};
pub use assemble::{AssembledResponse, ResponseAssembler};
#[cfg(feature = "http")]
pub use openai::{OpenAiConfig, OpenAiProvider};
pub use price::{Price, PriceTable};
pub use registry::{ProviderEntry, ProviderError, ProviderFactory, ProviderRegistry, Route};
pub use spec::{ACCEPTED_SPECS, AliasFileError, ModelAliases, ModelSpec, SpecError, TargetKind};

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ErrorKind;
use crate::wire::Message;
pub use crate::wire::{BlockStart, ModelDelta, StopReason};

/// A tool as offered to a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// Name.
    pub name: String,
    /// What it does, for the model.
    pub description: String,
    /// JSON schema of its input.
    pub input_schema: Value,
}

/// Extended-thinking settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThinkingConfig {
    /// Token budget for thinking.
    pub budget_tokens: u32,
}

/// One model call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRequest {
    /// Model id (without the provider prefix).
    pub model: String,
    /// System prompt.
    pub system: Option<String>,
    /// The conversation (shared, so a call does not copy it).
    pub messages: Arc<Vec<Message>>,
    /// Tools on offer (shared).
    pub tools: Arc<Vec<ToolSpec>>,
    /// Output token limit.
    pub max_tokens: u32,
    /// Extended thinking, if enabled.
    pub thinking: Option<ThinkingConfig>,
    /// Name of the agent making the call (the scripted model matches on it).
    pub agent_name: String,
}

/// A failed model call. [`ModelError::is_retryable`] says whether trying again may help.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ModelError {
    /// 429.
    #[error("rate limited by the provider: {message}")]
    RateLimited {
        /// Provider message.
        message: String,
        /// How long the provider asked to wait.
        retry_after: Option<Duration>,
    },
    /// 529 or equivalent.
    #[error("provider overloaded: {message}")]
    Overloaded {
        /// Provider message.
        message: String,
    },
    /// 5xx.
    #[error("provider server error {status}: {message}")]
    Server {
        /// HTTP status.
        status: u16,
        /// Provider message.
        message: String,
    },
    /// Could not connect, or the connection dropped before any output.
    #[error("connection to the provider failed: {message}")]
    Connection {
        /// Details.
        message: String,
    },
    /// No data for too long.
    #[error("the provider stalled: {message}")]
    Timeout {
        /// Details.
        message: String,
    },
    /// 401/403.
    #[error("authentication failed: {message}")]
    Auth {
        /// Provider message.
        message: String,
    },
    /// 400 and other request errors, with the provider's own type and message.
    #[error("the provider rejected the request ({kind}): {message}")]
    InvalidRequest {
        /// The provider's error type.
        kind: String,
        /// Provider message.
        message: String,
    },
    /// The stream broke after output began; nothing of it was recorded as complete.
    #[error("the response stream broke mid-answer: {message}")]
    StreamBroken {
        /// Details.
        message: String,
    },
    /// The stream did not follow the wire format.
    #[error("malformed response from the provider: {message}")]
    Protocol {
        /// Details.
        message: String,
    },
    /// A scripted or replayed model had no answer for this request.
    #[error("{message}")]
    NoAnswer {
        /// Details (names the agent and quotes the last message).
        message: String,
    },
    /// Anything else.
    #[error("{message}")]
    Other {
        /// Details.
        message: String,
    },
}

impl ModelError {
    /// What kind of failure this is: [`ErrorKind::Unavailable`] exactly when
    /// [`is_retryable`](Self::is_retryable) (rate limits, overload, 5xx, connections, stalls), otherwise
    /// [`ErrorKind::Provider`].
    pub fn kind(&self) -> ErrorKind {
        if self.is_retryable() { ErrorKind::Unavailable } else { ErrorKind::Provider }
    }

    /// Whether a retry may help (rate limits, overload, 5xx, connections dropped before output, stalls).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::RateLimited { .. }
                | Self::Overloaded { .. }
                | Self::Server { .. }
                | Self::Connection { .. }
                | Self::Timeout { .. }
        )
    }
}

/// A stream of deltas for one model call.
pub type DeltaStream = BoxStream<'static, Result<ModelDelta, ModelError>>;

/// A model behind a wire format: Anthropic Messages, OpenAI-compatible, scripted, replayed…
#[async_trait]
pub trait ModelProvider: Send + Sync + 'static {
    /// Provider name (`scripted`, `anthropic`, …).
    fn name(&self) -> &str;
    /// Starts one call and streams its response.
    async fn stream(&self, request: ModelRequest) -> Result<DeltaStream, ModelError>;
}
