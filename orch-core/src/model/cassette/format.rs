//! The cassette file format: one [`Interaction`] per line, and reading a whole cassette.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

#[cfg(doc)]
use super::ReplayProvider;
use super::{CASSETTE_VERSION, CassetteError};
use crate::model::{ModelDelta, ModelError, ModelRequest};
use crate::wire::Timestamp;

/// One line of a cassette: a model call and what came back. See the [module documentation](super).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interaction {
    /// Format version ([`CASSETTE_VERSION`]).
    pub v: u32,
    /// Name of the recorded provider.
    pub provider: String,
    /// The request as sent.
    pub request: ModelRequest,
    /// What came back.
    pub response: RecordedResponse,
    /// When the interaction completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_at: Option<Timestamp>,
}

/// The recorded answer to one call: deltas, an error, or deltas then an error.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RecordedResponse {
    /// Deltas in stream order; `None` when the call failed before streaming.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deltas: Option<Vec<ModelDelta>>,
    /// The error that ended the call, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RecordedError>,
}

/// The kind of a [`RecordedError`]: the [`ModelError`] variant, in snake case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordedErrorKind {
    /// [`ModelError::RateLimited`].
    RateLimited,
    /// [`ModelError::Overloaded`].
    Overloaded,
    /// [`ModelError::Server`].
    Server,
    /// [`ModelError::Connection`].
    Connection,
    /// [`ModelError::Timeout`].
    Timeout,
    /// [`ModelError::Auth`].
    Auth,
    /// [`ModelError::InvalidRequest`].
    InvalidRequest,
    /// [`ModelError::StreamBroken`].
    StreamBroken,
    /// [`ModelError::Protocol`].
    Protocol,
    /// [`ModelError::NoAnswer`].
    NoAnswer,
    /// [`ModelError::Other`].
    Other,
}

impl RecordedErrorKind {
    /// Whether errors of this kind are retryable ([`ModelError::is_retryable`]).
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::RateLimited | Self::Overloaded | Self::Server | Self::Connection | Self::Timeout)
    }
}

/// A [`ModelError`] in serializable form. Converts both ways: `RecordedError::from(&model_error)` and
/// `ModelError::from(&recorded)`, keeping the variant, its message and its other fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedError {
    /// The variant.
    pub kind: RecordedErrorKind,
    /// The variant's message (not the whole `Display` text).
    pub message: String,
    /// Whether the error was retryable (informational: it follows from `kind`).
    pub retryable: bool,
    /// HTTP status of a `server` error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The provider's error type of an `invalid_request` error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    /// How long a `rate_limited` error asked to wait, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

impl RecordedError {
    fn new(kind: RecordedErrorKind, message: &str) -> Self {
        Self {
            kind,
            message: message.to_owned(),
            retryable: kind.is_retryable(),
            status: None,
            error_type: None,
            retry_after_ms: None,
        }
    }

    /// Why this error cannot be replayed faithfully, if it cannot.
    pub(super) fn problem(&self) -> Option<String> {
        if self.retryable != self.kind.is_retryable() {
            return Some(format!(
                "error of kind {:?} has \"retryable\": {}, but that kind is {}retryable",
                kind_name(self.kind),
                self.retryable,
                if self.kind.is_retryable() { "" } else { "not " }
            ));
        }
        if self.kind == RecordedErrorKind::Server && self.status.is_none() {
            return Some("error of kind \"server\" without \"status\"".to_owned());
        }
        None
    }
}

fn kind_name(kind: RecordedErrorKind) -> String {
    serde_json::to_value(kind).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_else(|| format!("{kind:?}"))
}

impl From<&ModelError> for RecordedError {
    fn from(e: &ModelError) -> Self {
        use RecordedErrorKind as K;
        match e {
            ModelError::RateLimited { message, retry_after } => Self {
                retry_after_ms: retry_after.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                ..Self::new(K::RateLimited, message)
            },
            ModelError::Overloaded { message } => Self::new(K::Overloaded, message),
            ModelError::Server { status, message } => Self { status: Some(*status), ..Self::new(K::Server, message) },
            ModelError::Connection { message } => Self::new(K::Connection, message),
            ModelError::Timeout { message } => Self::new(K::Timeout, message),
            ModelError::Auth { message } => Self::new(K::Auth, message),
            ModelError::InvalidRequest { kind, message } => {
                Self { error_type: Some(kind.clone()), ..Self::new(K::InvalidRequest, message) }
            }
            ModelError::StreamBroken { message } => Self::new(K::StreamBroken, message),
            ModelError::Protocol { message } => Self::new(K::Protocol, message),
            ModelError::NoAnswer { message } => Self::new(K::NoAnswer, message),
            ModelError::Other { message } => Self::new(K::Other, message),
        }
    }
}

impl From<&RecordedError> for ModelError {
    /// The recorded error as a [`ModelError`]. A `server` error without `status` (which
    /// [`ReplayProvider::from_file`] rejects) gets status 0; `retryable` is not consulted (it follows
    /// from the kind).
    fn from(r: &RecordedError) -> Self {
        use RecordedErrorKind as K;
        let message = r.message.clone();
        match r.kind {
            K::RateLimited => Self::RateLimited { message, retry_after: r.retry_after_ms.map(Duration::from_millis) },
            K::Overloaded => Self::Overloaded { message },
            K::Server => Self::Server { status: r.status.unwrap_or(0), message },
            K::Connection => Self::Connection { message },
            K::Timeout => Self::Timeout { message },
            K::Auth => Self::Auth { message },
            K::InvalidRequest => Self::InvalidRequest { kind: r.error_type.clone().unwrap_or_default(), message },
            K::StreamBroken => Self::StreamBroken { message },
            K::Protocol => Self::Protocol { message },
            K::NoAnswer => Self::NoAnswer { message },
            K::Other => Self::Other { message },
        }
    }
}

/// Reads and checks every interaction of a cassette, in file order, with its line number (1-based).
/// Blank lines are skipped.
pub fn read_cassette(path: impl AsRef<Path>) -> Result<Vec<(usize, Interaction)>, CassetteError> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|e| CassetteError::io(path, "cannot read", &e))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let number = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let interaction: Interaction = serde_json::from_str(line).map_err(|e| {
            let full = e.to_string();
            let position = format!(" at line {} column {}", e.line(), e.column());
            let message = full.strip_suffix(&position).unwrap_or(&full).to_owned();
            CassetteError::Parse { path: path.to_path_buf(), line: number, column: e.column().max(1), message }
        })?;
        let invalid = |message: String| CassetteError::Invalid { path: path.to_path_buf(), line: number, message };
        if interaction.v != CASSETTE_VERSION {
            return Err(invalid(format!(
                "unsupported cassette version {} (this build reads version {CASSETTE_VERSION})",
                interaction.v
            )));
        }
        let response = &interaction.response;
        if response.deltas.is_none() && response.error.is_none() {
            return Err(invalid("the response has neither \"deltas\" nor \"error\"".to_owned()));
        }
        if let Some(problem) = response.error.as_ref().and_then(RecordedError::problem) {
            return Err(invalid(problem));
        }
        out.push((number, interaction));
    }
    Ok(out)
}
