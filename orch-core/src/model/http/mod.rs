//! The one HTTP transport under the HTTP model providers ([`super::anthropic`], [`super::openai`]).
//!
//! - [`SseParser`]: an incremental server-sent-events parser (`event:` / `data:` / `id:` lines,
//!   multi-line data, `:` comments, LF / CRLF / CR line ends, chunk boundaries anywhere, also inside a
//!   UTF-8 character). An event left incomplete at the end of the stream is discarded, as the SSE
//!   specification says: a cut stream never yields half an event.
//! - [`EventMapper`]: turns the events of one wire format into [`ModelDelta`]s; [`SseDecoder`] joins a
//!   parser and a mapper, so a recorded stream can be decoded in memory ([`decode_sse`]).
//! - [`HttpTransport`]: POSTs a JSON body with reqwest (rustls) and streams the answer through a mapper,
//!   with a connect timeout, an idle timeout between chunks, and retries with exponential backoff and
//!   jitter.
//!
//! # Retries
//!
//! A call is retried on 429, 529, other 5xx, 408, connection failures, stalls and retryable error
//! events (e.g. Anthropic's mid-stream `overloaded_error`) — but only **before any output**: before the
//! first delta other than usage reached the caller. Each retry is announced on the returned stream as a
//! [`ModelDelta::Retry`] (the agent loop records it as a `ModelRetry` event), then the stream waits and
//! tries again. The wait honours the `retry-after` header (seconds, or an HTTP date) and OpenAI's
//! `retry-after-ms`; otherwise it is `initial_backoff · 2^n` capped at `max_backoff`, less up to 25 %
//! jitter. A `retry-after` longer than [`HttpConfig::max_retry_wait`] is not waited for: the error is
//! returned (with its `retry_after`) for a higher layer to schedule. Anthropic's `x-should-retry` header
//! overrides the decision when present.
//!
//! Once output began, nothing is retried: a broken connection is [`ModelError::StreamBroken`], a stall
//! is [`ModelError::Timeout`], an error event is the API's own error — never a silent half answer.
//!
//! # HTTP errors
//!
//! | status | error |
//! |---|---|
//! | 401, 403 | [`ModelError::Auth`] |
//! | 408 | [`ModelError::Timeout`] |
//! | 429 | [`ModelError::RateLimited`] with `retry_after` |
//! | 529 | [`ModelError::Overloaded`] |
//! | other 5xx | [`ModelError::Server`] |
//! | 400, 404, 422 and other 4xx | [`ModelError::InvalidRequest`] with the API's error type and message |
//!
//! The API's message is taken from the JSON body: Anthropic's `{"type":"error","error":{"type","message"}}`,
//! OpenAI's `{"error":{"message","type","code"}}`, or `{"error":"…"}`; else the body text.
//!
//! # Environment
//!
//! [`HttpConfig::from_env`] (used by the providers' `from_env` constructors) reads, when set:
//! [`ENV_MAX_RETRIES`] (`ORCH_MODEL_MAX_RETRIES`, an integer), [`ENV_CONNECT_TIMEOUT`]
//! (`ORCH_MODEL_CONNECT_TIMEOUT_SECS`) and [`ENV_IDLE_TIMEOUT`] (`ORCH_MODEL_IDLE_TIMEOUT_SECS`), both
//! in seconds (decimals allowed). Invalid values are ignored with a warning.

mod error;
mod sse;
mod transport;

use std::time::Duration;

#[cfg(doc)]
use crate::model::{ModelDelta, ModelError};

pub(crate) use error::{error_from_api, parse_api_error};
pub use sse::{EventMapper, Flow, SseDecoder, SseEvent, SseParser, decode_sse};
pub use transport::HttpTransport;
pub(crate) use transport::header;

/// Environment variable: how many times a call is retried (default 3).
pub const ENV_MAX_RETRIES: &str = "ORCH_MODEL_MAX_RETRIES";
/// Environment variable: the connect timeout in seconds (default 10).
pub const ENV_CONNECT_TIMEOUT: &str = "ORCH_MODEL_CONNECT_TIMEOUT_SECS";
/// Environment variable: the longest silence between two chunks, in seconds (default 60).
pub const ENV_IDLE_TIMEOUT: &str = "ORCH_MODEL_IDLE_TIMEOUT_SECS";

/// Timeouts and retries of the HTTP transport.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpConfig {
    /// How long connecting may take (default 10 s).
    pub connect_timeout: Duration,
    /// The longest silence allowed while waiting for response headers or between two chunks of the
    /// body (default 60 s). Anthropic sends `ping` events, so a healthy stream is never silent that long.
    pub idle_timeout: Duration,
    /// How many times a failed call is retried before any output (default 3; 0 disables retries).
    pub max_retries: u32,
    /// The first backoff (default 500 ms); doubled at each retry.
    pub initial_backoff: Duration,
    /// The longest backoff (default 8 s).
    pub max_backoff: Duration,
    /// The longest `retry-after` the transport waits for itself (default 60 s); a longer one ends the
    /// call with the error, whose `retry_after` a higher layer can honour.
    pub max_retry_wait: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_retries: 3,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
            max_retry_wait: Duration::from_secs(60),
        }
    }
}

impl HttpConfig {
    /// The defaults, overridden by [`ENV_MAX_RETRIES`], [`ENV_CONNECT_TIMEOUT`] and [`ENV_IDLE_TIMEOUT`]
    /// when they are set to valid values.
    pub fn from_env() -> Self {
        let mut config = Self::default();
        if let Some(v) = env_parse(ENV_MAX_RETRIES, |s| s.parse::<u32>().ok()) {
            config.max_retries = v;
        }
        if let Some(v) = env_parse(ENV_CONNECT_TIMEOUT, parse_secs) {
            config.connect_timeout = v;
        }
        if let Some(v) = env_parse(ENV_IDLE_TIMEOUT, parse_secs) {
            config.idle_timeout = v;
        }
        config
    }
}

fn parse_secs(s: &str) -> Option<Duration> {
    s.parse::<f64>().ok().filter(|v| v.is_finite() && *v > 0.0).and_then(|v| Duration::try_from_secs_f64(v).ok())
}

fn env_parse<T>(name: &str, parse: impl Fn(&str) -> Option<T>) -> Option<T> {
    let raw = std::env::var(name).ok()?;
    let v = parse(raw.trim());
    if v.is_none() {
        tracing::warn!(variable = name, value = %raw, "ignoring an invalid value");
    }
    v
}
