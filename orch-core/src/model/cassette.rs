//! Cassettes: record every model call of a run to a file, then replay it offline, deterministically —
//! like VCR, for agent programs.
//!
//! - [`RecordingProvider`] wraps any [`ModelProvider`]: it passes every call through unchanged and
//!   appends each completed interaction (the request and all streamed deltas, or the error) to a
//!   cassette file.
//! - [`ReplayProvider`] answers calls from a cassette, without a network or a model: the *n*-th call of
//!   agent *X* gets the *n*-th interaction recorded for agent *X*, after checking that the request still
//!   matches the recording. A request that changed fails with a readable diff.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use orch_core::model::ModelProvider;
//! use orch_core::model::cassette::{RecordingProvider, ReplayProvider};
//! use orch_core::model::scripted::ScriptedModel;
//!
//! // Record: any provider (here a scripted one) behind a recorder.
//! let live: Arc<dyn ModelProvider> = Arc::new(ScriptedModel::from_fn(|_| Ok("hi".into())));
//! let recorder = RecordingProvider::create(live, "cassettes/hello.jsonl")?;
//! // … run agents on `recorder` …
//!
//! // Replay, offline; `max_tokens` may differ from the recording.
//! let replay = ReplayProvider::from_file("cassettes/hello.jsonl")?.ignoring(&["max_tokens"])?;
//! // … run the same agents on `replay` …
//! # Ok(()) }
//! ```
//!
//! # File format
//!
//! A cassette is a [JSON Lines](https://jsonlines.org) file, UTF-8: one interaction per line, in the
//! order the interactions *completed*. Each line is one JSON object ([`Interaction`]):
//!
//! ```json
//! {"v":1,"provider":"anthropic",
//!  "request":{"model":"claude-sonnet-4-5","system":"You are…","messages":[…],"tools":[…],"max_tokens":8192,"thinking":null,"agent_name":"writer"},
//!  "response":{"deltas":[{"delta":"block_start","index":0,"block":{"kind":"text"}},{"delta":"text","index":0,"text":"Hi"},…]},
//!  "recorded_at":"2025-01-01T12:00:00.123Z"}
//! ```
//!
//! (shown on several lines here; in the file each interaction is exactly one line).
//!
//! | key           | meaning |
//! |---------------|---------|
//! | `v`           | Format version, `1` ([`CASSETTE_VERSION`]). Other versions are rejected. |
//! | `provider`    | [`ModelProvider::name`] of the recorded provider (`anthropic`, `scripted`, …). |
//! | `request`     | The [`ModelRequest`] as sent, in its serde form; `agent_name` says whose call it was. |
//! | `response`    | What came back ([`RecordedResponse`]), see below. |
//! | `recorded_at` | When the interaction completed (RFC 3339, UTC). Informational; optional when reading. |
//!
//! `response` holds:
//! - `{"deltas": [...]}` — a complete answer: every [`ModelDelta`] in stream order, in its serde form
//!   (tagged by `delta`). [`ModelDelta::Retry`] deltas are recorded and replayed too, so a replayed run
//!   logs the same `ModelRetry` events.
//! - `{"deltas": [...], "error": {...}}` — the stream broke: the deltas received, then the error that
//!   ended it (`deltas` may be empty: the call started but failed before any delta).
//! - `{"error": {...}}` — the call failed before a stream existed ([`ModelProvider::stream`] returned
//!   the error).
//!
//! An error ([`RecordedError`]) is `{"kind": "overloaded", "message": "…", "retryable": true}` with,
//! depending on the kind, `status` (`server`: the HTTP status), `error_type` (`invalid_request`: the
//! provider's error type) and `retry_after_ms` (`rate_limited`, when the provider asked to wait). The
//! kinds are the [`ModelError`] variants in snake case: `rate_limited`, `overloaded`, `server`,
//! `connection`, `timeout`, `auth`, `invalid_request`, `stream_broken`, `protocol`, `no_answer`, `other`.
//! A replayed error is the same variant with the same message, so it is retryable exactly when the
//! recorded one was; a line whose `retryable` contradicts its `kind` is rejected when loading.
//!
//! Blank lines are skipped; unknown keys are ignored (so notes may be added by hand). Everything is plain
//! JSON text — prompts, answers and tool inputs can be read and grepped. Each line holds the whole
//! conversation of its request, so a cassette grows with the square of a conversation's length.
//!
//! # Recording
//!
//! [`RecordingProvider::create`] starts a new cassette (truncating an existing file);
//! [`RecordingProvider::append`] adds to one. Both create missing parent directories and open the file
//! right away, so a bad path fails before any model call ([`CassetteError::Io`]).
//!
//! - An interaction is written when it completes: when its stream ends, when the stream or the call
//!   fails (the first error ends the interaction, and the recorder's stream ends after passing it on),
//!   or — should the caller stop reading right after the [`ModelDelta::Stop`] delta — when the stream
//!   is dropped. A call the caller abandons before its end (an interrupt mid-answer) is **not**
//!   recorded: it has no complete answer to replay, and the resumed run's call is recorded instead.
//! - Each line is written with a single `write` to the file (opened for appending) under a lock, so
//!   concurrent calls (several agents on one recorder) never interleave lines. The file is not buffered:
//!   once the interaction's stream has ended, its line is in the file. Writing is synchronous (plain
//!   `std::fs`; lines are small) so the recorder needs no async runtime.
//! - **A failure to write the cassette fails the call**: it is logged (`tracing` error) and the stream
//!   ends with a [`ModelError::Other`] naming the cassette file and the agent (and, when the call itself
//!   had failed, quoting that error too) instead of ending normally. A recording that silently lost
//!   interactions would only fail later, at replay, far from the cause. The deltas passed on before are
//!   not taken back.
//! - [`ModelProvider::name`] of the recorder is the inner provider's name, so routing agents' models
//!   (`anthropic:…`) works as without it.
//!
//! # Replaying
//!
//! [`ReplayProvider::from_file`] loads and checks the whole cassette up front (a bad line is a
//! [`CassetteError`] with its line number). Interactions are grouped by the request's `agent_name` and
//! replayed **in order per agent**: the *n*-th call of agent *X* is answered by the *n*-th interaction of
//! agent *X* in the file, whatever the order in which concurrent agents are scheduled. The answer is
//! streamed immediately (no sleeps), deltas and error exactly as recorded.
//!
//! Before answering, the request is compared with the recorded one, field by field: `model`, `system`,
//! `messages` (roles and every content block: texts, thinking, tool calls and their inputs, tool
//! results), `tools` (names, descriptions, input schemas), `max_tokens` and `thinking`. `agent_name`
//! selects the interaction and is not compared otherwise. JSON numbers that are not integers compare
//! with a relative tolerance of 1e-12, so a float that went through the cassette's text still matches.
//! Fields can be left out of the comparison with [`ReplayProvider::ignoring`] (by name, as above) or
//! [`ReplayProvider::ignore`] ([`MatchField`]).
//!
//! A request that does not match fails with [`ModelError::NoAnswer`] (not retryable) whose message is a
//! compact diff: the agent, which of its calls, the cassette file and line, then each differing field
//! by path (`system`, `messages[8].content[0].content`, `tools["Write"].input_schema.required`, …)
//! with the recorded and the actual value; long texts are cut to a window around the first difference,
//! and at most a dozen differences are shown. For example:
//!
//! ```text
//! replay: call #5 of agent 'writer' does not match the recording (cassette rec/run.jsonl, line 5; its interaction 5 of 6):
//!   - messages[8].content[0].content: differs at offset 12 (recorded 12 chars, actual 22)
//!       recorded: "greeting.txt"
//!       actual:   "greeting.txt\nextra.txt"
//! The code, prompts or tools changed since recording: record the cassette again, or leave fields out of the comparison (ReplayProvider::ignoring).
//! ```
//!
//! A mismatched call does not use up its interaction. A call of an agent that has no interaction left
//! fails with [`ModelError::NoAnswer`] too, saying how many interactions were recorded for it.
//!
//! [`ModelProvider::name`] of a replay is the `provider` of the cassette's first line (`replay` for an
//! empty cassette), so agents whose model names a provider (`anthropic:claude-…`) route to the replay
//! exactly as they routed to the recorded provider. The `orch` CLI routes replayed runs by this name.
//! Should lines name different providers (a cassette appended to by different providers), the first
//! line's wins and a warning is logged.

use std::collections::HashMap;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{DeltaStream, ModelDelta, ModelError, ModelProvider, ModelRequest, ToolSpec};
use crate::wire::Timestamp;

/// The cassette format version this build writes and reads.
pub const CASSETTE_VERSION: u32 = 1;

/// The provider name of a replay of an empty cassette.
const EMPTY_CASSETTE_PROVIDER: &str = "replay";
/// Most differences listed in a mismatch error.
const MAX_DIFFERENCES: usize = 12;
/// Characters of a text shown before its first difference.
const CONTEXT_BEFORE: usize = 40;
/// Characters of a text shown in all (from the start of its window).
const SNIPPET_CHARS: usize = 100;
/// Longest rendering of a JSON value in a diff, in characters.
const VALUE_CHARS: usize = 100;
/// Relative tolerance when comparing non-integer JSON numbers.
const FLOAT_TOLERANCE: f64 = 1e-12;

// ---------------------------------------------------------------------------------------------
// Errors.

/// A cassette that cannot be opened, created or read, or a bad replay option.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CassetteError {
    /// The file (or its directory) could not be read, created or opened.
    #[error("cassette {}: {message}", path.display())]
    Io {
        /// The cassette file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A line is not JSON, or not shaped like an interaction (missing keys, wrong types, an unknown
    /// error kind or delta).
    #[error("cassette {}, line {line}, column {column}: {message}", path.display())]
    Parse {
        /// The cassette file.
        path: PathBuf,
        /// The line (1-based).
        line: usize,
        /// The column of the problem within the line (1-based).
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A line is well-formed but cannot be replayed: an unsupported version, a response with neither
    /// deltas nor error, an error whose `retryable` contradicts its kind, a `server` error without
    /// `status`.
    #[error("cassette {}, line {line}: {message}", path.display())]
    Invalid {
        /// The cassette file.
        path: PathBuf,
        /// The line (1-based).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// [`ReplayProvider::ignoring`] was given a name that is not a compared request field.
    #[error("unknown request field {field:?} to ignore (known: {})", MatchField::NAMES.join(", "))]
    UnknownField {
        /// The name given.
        field: String,
    },
}

impl CassetteError {
    /// The line of the problem, for [`CassetteError::Parse`] and [`CassetteError::Invalid`].
    pub fn line(&self) -> Option<usize> {
        match self {
            Self::Parse { line, .. } | Self::Invalid { line, .. } => Some(*line),
            Self::Io { .. } | Self::UnknownField { .. } => None,
        }
    }

    fn io(path: &Path, what: &str, e: &std::io::Error) -> Self {
        Self::Io { path: path.to_path_buf(), message: format!("{what}: {e}") }
    }
}

// ---------------------------------------------------------------------------------------------
// The format.

/// One line of a cassette: a model call and what came back. See the [module documentation](self).
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
    fn problem(&self) -> Option<String> {
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

// ---------------------------------------------------------------------------------------------
// Recording.

/// Wraps a provider and records every completed call to a cassette; see the
/// [module documentation](self).
pub struct RecordingProvider {
    inner: Arc<dyn ModelProvider>,
    sink: Arc<Sink>,
}

impl fmt::Debug for RecordingProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordingProvider")
            .field("provider", &self.inner.name())
            .field("path", &self.sink.path)
            .field("recorded", &self.recorded())
            .finish()
    }
}

impl RecordingProvider {
    /// Records `inner`'s calls to a new cassette at `path`, replacing any file there. Creates missing
    /// parent directories.
    pub fn create(inner: Arc<dyn ModelProvider>, path: impl AsRef<Path>) -> Result<Self, CassetteError> {
        Self::open(inner, path.as_ref(), true)
    }

    /// Records `inner`'s calls to the end of the cassette at `path`, creating it (and missing parent
    /// directories) if needed.
    pub fn append(inner: Arc<dyn ModelProvider>, path: impl AsRef<Path>) -> Result<Self, CassetteError> {
        Self::open(inner, path.as_ref(), false)
    }

    fn open(inner: Arc<dyn ModelProvider>, path: &Path, truncate: bool) -> Result<Self, CassetteError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| CassetteError::io(path, &format!("cannot create the directory {}", dir.display()), &e))?;
        }
        if truncate {
            File::create(path).map_err(|e| CassetteError::io(path, "cannot create", &e))?;
        }
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .map_err(|e| CassetteError::io(path, "cannot open for appending", &e))?;
        let provider = inner.name().to_owned();
        Ok(Self {
            inner,
            sink: Arc::new(Sink {
                path: path.to_path_buf(),
                provider,
                file: Mutex::new(file),
                recorded: AtomicUsize::new(0),
            }),
        })
    }

    /// The cassette file.
    pub fn path(&self) -> &Path {
        &self.sink.path
    }

    /// How many interactions this recorder has written.
    pub fn recorded(&self) -> usize {
        self.sink.recorded.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl ModelProvider for RecordingProvider {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn stream(&self, request: ModelRequest) -> Result<DeltaStream, ModelError> {
        match self.inner.stream(request.clone()).await {
            Ok(inner) => Ok(RecordingStream {
                inner,
                pending: Some(Pending { request, deltas: Vec::new() }),
                sink: self.sink.clone(),
                done: false,
            }
            .boxed()),
            Err(e) => {
                let response = RecordedResponse { deltas: None, error: Some(RecordedError::from(&e)) };
                match self.sink.record(request, response) {
                    Ok(()) => Err(e),
                    Err(record) => Err(record.with_call_error(&e)),
                }
            }
        }
    }
}

/// The cassette being written.
struct Sink {
    path: PathBuf,
    provider: String,
    file: Mutex<File>,
    recorded: AtomicUsize,
}

/// A failure to write the cassette.
struct RecordFailure {
    message: String,
}

impl RecordFailure {
    fn into_model_error(self) -> ModelError {
        ModelError::Other { message: self.message }
    }

    fn with_call_error(self, e: &ModelError) -> ModelError {
        ModelError::Other { message: format!("{} (the model call itself failed: {e})", self.message) }
    }
}

impl Sink {
    /// Appends one interaction as one line.
    fn record(&self, request: ModelRequest, response: RecordedResponse) -> Result<(), RecordFailure> {
        let agent = request.agent_name.clone();
        let interaction = Interaction {
            v: CASSETTE_VERSION,
            provider: self.provider.clone(),
            request,
            response,
            recorded_at: Some(crate::wire::now()),
        };
        let written = serde_json::to_vec(&interaction).map_err(|e| e.to_string()).and_then(|mut line| {
            line.push(b'\n');
            let mut file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
            file.write_all(&line).and_then(|()| file.flush()).map_err(|e| e.to_string())
        });
        match written {
            Ok(()) => {
                self.recorded.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                tracing::error!(cassette = %self.path.display(), agent = %agent, error = %e, "could not record a model call");
                Err(RecordFailure {
                    message: format!(
                        "cassette {}: could not record the model call of agent '{agent}': {e}",
                        self.path.display()
                    ),
                })
            }
        }
    }
}

struct Pending {
    request: ModelRequest,
    deltas: Vec<ModelDelta>,
}

/// Passes a call's deltas on and records the interaction when it ends.
struct RecordingStream {
    inner: DeltaStream,
    /// `Some` until the interaction is recorded (or given up).
    pending: Option<Pending>,
    sink: Arc<Sink>,
    /// The stream has ended (after an error, or after the end of the inner stream).
    done: bool,
}

impl Stream for RecordingStream {
    type Item = Result<ModelDelta, ModelError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        match this.inner.poll_next_unpin(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(delta))) => {
                if let Some(p) = this.pending.as_mut() {
                    p.deltas.push(delta.clone());
                }
                Poll::Ready(Some(Ok(delta)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.done = true;
                let Some(p) = this.pending.take() else { return Poll::Ready(Some(Err(e))) };
                let response = RecordedResponse { deltas: Some(p.deltas), error: Some(RecordedError::from(&e)) };
                match this.sink.record(p.request, response) {
                    Ok(()) => Poll::Ready(Some(Err(e))),
                    Err(record) => Poll::Ready(Some(Err(record.with_call_error(&e)))),
                }
            }
            Poll::Ready(None) => {
                this.done = true;
                let Some(p) = this.pending.take() else { return Poll::Ready(None) };
                let response = RecordedResponse { deltas: Some(p.deltas), error: None };
                match this.sink.record(p.request, response) {
                    Ok(()) => Poll::Ready(None),
                    Err(record) => Poll::Ready(Some(Err(record.into_model_error()))),
                }
            }
        }
    }
}

impl Drop for RecordingStream {
    fn drop(&mut self) {
        let Some(p) = self.pending.take() else { return };
        if matches!(p.deltas.last(), Some(ModelDelta::Stop { .. })) {
            // The caller stopped reading after the end of the answer: it is complete.
            let response = RecordedResponse { deltas: Some(p.deltas), error: None };
            // A failure is logged by `record`; there is no caller left to tell.
            let _ = self.sink.record(p.request, response);
        } else {
            tracing::debug!(
                cassette = %self.sink.path.display(),
                agent = %p.request.agent_name,
                deltas = p.deltas.len(),
                "model call abandoned before its end; not recorded"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Replaying.

/// A request field compared when replaying.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchField {
    /// `model`.
    Model,
    /// `system`.
    System,
    /// `messages`.
    Messages,
    /// `tools`.
    Tools,
    /// `max_tokens`.
    MaxTokens,
    /// `thinking`.
    Thinking,
}

impl MatchField {
    /// Every compared field, in comparison order.
    pub const ALL: [MatchField; 6] =
        [Self::Model, Self::System, Self::Messages, Self::Tools, Self::MaxTokens, Self::Thinking];
    /// Their names, as accepted by [`ReplayProvider::ignoring`].
    pub const NAMES: [&'static str; 6] = ["model", "system", "messages", "tools", "max_tokens", "thinking"];

    /// The field's name in the request (`max_tokens`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Model => "model",
            Self::System => "system",
            Self::Messages => "messages",
            Self::Tools => "tools",
            Self::MaxTokens => "max_tokens",
            Self::Thinking => "thinking",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for MatchField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MatchField {
    type Err = CassetteError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| CassetteError::UnknownField { field: s.to_owned() })
    }
}

/// One interaction as loaded.
struct Recorded {
    line: usize,
    interaction: Interaction,
}

/// Answers model calls from a cassette, per agent and in order; see the [module documentation](self).
pub struct ReplayProvider {
    path: PathBuf,
    provider: String,
    agents: HashMap<String, Vec<Arc<Recorded>>>,
    total: usize,
    /// Interactions used so far, per agent.
    cursors: Mutex<HashMap<String, usize>>,
    /// [`MatchField::bit`]s of the fields left out of the comparison.
    ignored: u8,
}

impl fmt::Debug for ReplayProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ignored: Vec<_> = MatchField::ALL.into_iter().filter(|m| self.ignored & m.bit() != 0).collect();
        f.debug_struct("ReplayProvider")
            .field("path", &self.path)
            .field("provider", &self.provider)
            .field("interactions", &self.total)
            .field("remaining", &self.remaining())
            .field("ignored", &ignored)
            .finish()
    }
}

impl ReplayProvider {
    /// Loads a cassette. Every line is checked now: a bad one is a [`CassetteError`] naming the file
    /// and the line.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, CassetteError> {
        let path = path.as_ref();
        let lines = read_cassette(path)?;
        let provider = lines
            .first()
            .map(|(_, i)| i.provider.clone())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| EMPTY_CASSETTE_PROVIDER.to_owned());
        if let Some((line, other)) = lines.iter().find(|(_, i)| i.provider != provider && !i.provider.is_empty()) {
            tracing::warn!(
                cassette = %path.display(),
                line,
                provider = %provider,
                other = %other.provider,
                "the cassette mixes providers; the replay is named after the first line's"
            );
        }
        let total = lines.len();
        let mut agents: HashMap<String, Vec<Arc<Recorded>>> = HashMap::new();
        for (line, interaction) in lines {
            agents
                .entry(interaction.request.agent_name.clone())
                .or_default()
                .push(Arc::new(Recorded { line, interaction }));
        }
        Ok(Self { path: path.to_path_buf(), provider, agents, total, cursors: Mutex::new(HashMap::new()), ignored: 0 })
    }

    /// Leaves the named request fields out of the comparison (names as in [`MatchField::NAMES`]:
    /// `model`, `system`, `messages`, `tools`, `max_tokens`, `thinking`). An unknown name is
    /// [`CassetteError::UnknownField`].
    pub fn ignoring(mut self, fields: &[&str]) -> Result<Self, CassetteError> {
        for name in fields {
            self = self.ignore(name.parse()?);
        }
        Ok(self)
    }

    /// Leaves one request field out of the comparison.
    pub fn ignore(mut self, field: MatchField) -> Self {
        self.ignored |= field.bit();
        self
    }

    /// The cassette file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Interactions in the cassette.
    pub fn len(&self) -> usize {
        self.total
    }

    /// Whether the cassette holds no interaction.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Names of the agents with recorded interactions, sorted.
    pub fn agents(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.agents.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// Interactions not replayed yet (over all agents). Zero after a replay that used the whole
    /// cassette.
    pub fn remaining(&self) -> usize {
        let cursors = self.cursors.lock().unwrap_or_else(PoisonError::into_inner);
        self.total - cursors.values().sum::<usize>()
    }

    fn is_compared(&self, field: MatchField) -> bool {
        self.ignored & field.bit() == 0
    }

    /// The interaction answering `request`, which it uses up; or why there is none.
    fn next_for(&self, request: &ModelRequest) -> Result<Arc<Recorded>, ModelError> {
        let agent = &request.agent_name;
        let mut cursors = self.cursors.lock().unwrap_or_else(PoisonError::into_inner);
        let used = cursors.get(agent).copied().unwrap_or(0);
        let recorded = self.agents.get(agent).map_or(&[][..], Vec::as_slice);
        let Some(entry) = recorded.get(used) else {
            let message = if recorded.is_empty() {
                format!(
                    "replay: cassette {} holds no interaction of agent '{agent}' (agents recorded: {})",
                    self.path.display(),
                    if self.agents.is_empty() { "none".to_owned() } else { self.agents().join(", ") }
                )
            } else {
                format!(
                    "replay: agent '{agent}' made call #{}, but cassette {} recorded only {} call{} of it; \
                     the run makes more model calls than the recording",
                    used + 1,
                    self.path.display(),
                    recorded.len(),
                    if recorded.len() == 1 { "" } else { "s" }
                )
            };
            return Err(ModelError::NoAnswer { message });
        };
        let differences = self.compare(&entry.interaction.request, request);
        if !differences.is_empty() {
            let mut message = format!(
                "replay: call #{} of agent '{agent}' does not match the recording (cassette {}, line {}; \
                 its interaction {} of {}):",
                used + 1,
                self.path.display(),
                entry.line,
                used + 1,
                recorded.len()
            );
            for d in &differences {
                message.push('\n');
                message.push_str(d);
            }
            message.push_str(
                "\nThe code, prompts or tools changed since recording: record the cassette again, or leave fields \
                 out of the comparison (ReplayProvider::ignoring).",
            );
            return Err(ModelError::NoAnswer { message });
        }
        cursors.insert(agent.clone(), used + 1);
        Ok(entry.clone())
    }

    /// The rendered differences between the recorded and the actual request (empty when they match).
    fn compare(&self, recorded: &ModelRequest, actual: &ModelRequest) -> Vec<String> {
        let mut diff = Diff::default();
        for field in MatchField::ALL {
            if !self.is_compared(field) {
                continue;
            }
            match field {
                MatchField::Model => {
                    if recorded.model != actual.model {
                        diff.strings("model", &recorded.model, &actual.model);
                    }
                }
                MatchField::System => match (&recorded.system, &actual.system) {
                    (Some(r), Some(a)) if r != a => diff.strings("system", r, a),
                    (Some(_), Some(_)) | (None, None) => {}
                    (r, a) => diff.push("system", None, option_text(r.as_deref()), option_text(a.as_deref())),
                },
                MatchField::Messages => {
                    if recorded.messages != actual.messages {
                        let r = serde_json::to_value(&*recorded.messages).unwrap_or(Value::Null);
                        let a = serde_json::to_value(&*actual.messages).unwrap_or(Value::Null);
                        diff.values("messages", &r, &a);
                    }
                }
                MatchField::Tools => {
                    if recorded.tools != actual.tools {
                        diff_tools(&mut diff, &recorded.tools, &actual.tools);
                    }
                }
                MatchField::MaxTokens => {
                    if recorded.max_tokens != actual.max_tokens {
                        diff.push("max_tokens", None, recorded.max_tokens.to_string(), actual.max_tokens.to_string());
                    }
                }
                MatchField::Thinking => {
                    if recorded.thinking != actual.thinking {
                        let r = serde_json::to_value(recorded.thinking).unwrap_or(Value::Null);
                        let a = serde_json::to_value(actual.thinking).unwrap_or(Value::Null);
                        diff.push("thinking", None, compact(&r), compact(&a));
                    }
                }
            }
        }
        diff.finish()
    }
}

#[async_trait]
impl ModelProvider for ReplayProvider {
    /// The provider recorded in the cassette's first line (`replay` for an empty cassette).
    fn name(&self) -> &str {
        &self.provider
    }

    async fn stream(&self, request: ModelRequest) -> Result<DeltaStream, ModelError> {
        let entry = self.next_for(&request)?;
        let response = &entry.interaction.response;
        let error = response.error.as_ref().map(ModelError::from);
        match &response.deltas {
            None => Err(error.unwrap_or_else(|| ModelError::Other {
                message: format!("replay: cassette {}, line {}: empty response", self.path.display(), entry.line),
            })),
            Some(deltas) => {
                let items = deltas.clone().into_iter().map(Ok).chain(error.map(Err));
                Ok(futures::stream::iter(items).boxed())
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Diffs.

#[derive(Default)]
struct Diff {
    lines: Vec<String>,
    /// Differences found beyond [`MAX_DIFFERENCES`].
    omitted: usize,
}

impl Diff {
    fn full(&self) -> bool {
        self.lines.len() >= MAX_DIFFERENCES
    }

    /// Records one difference; short values on one line, long ones on two more.
    fn push(&mut self, path: &str, detail: Option<String>, recorded: String, actual: String) {
        if self.full() {
            self.omitted += 1;
            return;
        }
        let line = match detail {
            None if path.len() + recorded.len() + actual.len() <= 80 => {
                format!("  - {path}: recorded {recorded}, actual {actual}")
            }
            None => format!("  - {path}:\n      recorded: {recorded}\n      actual:   {actual}"),
            Some(d) => format!("  - {path}: {d}\n      recorded: {recorded}\n      actual:   {actual}"),
        };
        self.lines.push(line);
    }

    /// Two differing texts: a window around their first difference.
    fn strings(&mut self, path: &str, recorded: &str, actual: &str) {
        let at = first_difference(recorded, actual);
        let (r_len, a_len) = (recorded.chars().count(), actual.chars().count());
        let detail = format!("differs at offset {at} (recorded {r_len} chars, actual {a_len})");
        self.push(path, Some(detail), window(recorded, at), window(actual, at));
    }

    /// Two differing JSON values, walked down to the differing leaves.
    fn values(&mut self, path: &str, recorded: &Value, actual: &Value) {
        match (recorded, actual) {
            (Value::Object(r), Value::Object(a)) => {
                for (key, rv) in r {
                    let sub = join_key(path, key);
                    match a.get(key) {
                        Some(av) => {
                            if !json_eq(rv, av) {
                                self.values(&sub, rv, av);
                            }
                        }
                        None => self.push(&sub, None, compact(rv), "(absent)".to_owned()),
                    }
                }
                for (key, av) in a.iter().filter(|(k, _)| !r.contains_key(*k)) {
                    self.push(&join_key(path, key), None, "(absent)".to_owned(), compact(av));
                }
            }
            (Value::Array(r), Value::Array(a)) => {
                if r.len() != a.len() {
                    self.push(path, None, items(r.len()), items(a.len()));
                }
                for (i, (rv, av)) in r.iter().zip(a).enumerate() {
                    if !json_eq(rv, av) {
                        self.values(&format!("{path}[{i}]"), rv, av);
                    }
                }
                // The first extra item only: the rest follow from it.
                let n = r.len().min(a.len());
                match (r.get(n), a.get(n)) {
                    (Some(rv), None) => self.push(&format!("{path}[{n}]"), None, compact(rv), "(absent)".to_owned()),
                    (None, Some(av)) => self.push(&format!("{path}[{n}]"), None, "(absent)".to_owned(), compact(av)),
                    _ => {}
                }
            }
            (Value::String(r), Value::String(a)) => self.strings(path, r, a),
            (r, a) => {
                if !json_eq(r, a) {
                    self.push(path, None, compact(r), compact(a));
                }
            }
        }
    }

    fn finish(mut self) -> Vec<String> {
        if self.omitted > 0 {
            self.lines.push(format!(
                "  … and {} more difference{}",
                self.omitted,
                if self.omitted == 1 { "" } else { "s" }
            ));
        }
        self.lines
    }
}

/// Tools compared by name: the name lists when they differ, then each tool present in both.
fn diff_tools(diff: &mut Diff, recorded: &[ToolSpec], actual: &[ToolSpec]) {
    let names = |tools: &[ToolSpec]| -> Vec<String> { tools.iter().map(|t| t.name.clone()).collect() };
    let (r_names, a_names) = (names(recorded), names(actual));
    if r_names != a_names {
        let list = |n: &[String]| format!("[{}]", n.join(", "));
        diff.push("tools (names)", None, list(&r_names), list(&a_names));
    }
    for r in recorded {
        let Some(a) = actual.iter().find(|a| a.name == r.name) else { continue };
        let path = format!("tools[{:?}]", r.name);
        if r.description != a.description {
            diff.strings(&format!("{path}.description"), &r.description, &a.description);
        }
        if !json_eq(&r.input_schema, &a.input_schema) {
            diff.values(&format!("{path}.input_schema"), &r.input_schema, &a.input_schema);
        }
    }
}

/// JSON equality, with non-integer numbers equal within [`FLOAT_TOLERANCE`] (relative).
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if x == y {
                return true;
            }
            if !(x.is_f64() || y.is_f64()) {
                return false;
            }
            match (x.as_f64(), y.as_f64()) {
                (Some(x), Some(y)) => (x - y).abs() <= FLOAT_TOLERANCE * x.abs().max(y.abs()),
                _ => false,
            }
        }
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_eq(x, y)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// `path.key`, or `path["key"]` when the key is not a plain identifier.
fn join_key(path: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && !key.starts_with(|c: char| c.is_ascii_digit())
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain { format!("{path}.{key}") } else { format!("{path}[{key:?}]") }
}

/// Index (in chars) of the first char where `a` and `b` differ.
fn first_difference(a: &str, b: &str) -> usize {
    a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count()
}

/// The text around char `at`, quoted, with `…` where it is cut.
fn window(s: &str, at: usize) -> String {
    let start = at.saturating_sub(CONTEXT_BEFORE);
    let mut out = String::new();
    if start > 0 {
        out.push('…');
    }
    let mut taken = s.chars().skip(start);
    out.extend(taken.by_ref().take(SNIPPET_CHARS));
    if taken.next().is_some() {
        out.push('…');
    }
    format!("{out:?}")
}

/// A JSON value on one line, cut at [`VALUE_CHARS`].
fn compact(v: &Value) -> String {
    let s = v.to_string();
    match crate::text::prefix_chars(&s, VALUE_CHARS) {
        (head, true) => format!("{head}… ({} chars)", s.chars().count()),
        (_, false) => s,
    }
}

fn option_text(s: Option<&str>) -> String {
    match s {
        Some(s) => window(s, 0),
        None => "(none)".to_owned(),
    }
}

fn items(n: usize) -> String {
    format!("{n} item{}", if n == 1 { "" } else { "s" })
}
