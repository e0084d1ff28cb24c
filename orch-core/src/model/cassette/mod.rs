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

mod diff;
mod format;
mod record;
mod replay;

use std::path::{Path, PathBuf};

#[cfg(doc)]
use crate::model::{ModelDelta, ModelError, ModelProvider, ModelRequest};

pub use format::{Interaction, RecordedError, RecordedErrorKind, RecordedResponse, read_cassette};
pub use record::RecordingProvider;
pub use replay::{MatchField, ReplayProvider};

/// The cassette format version this build writes and reads.
pub const CASSETTE_VERSION: u32 = 1;

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
    /// Always [`ErrorKind::Usage`](crate::ErrorKind::Usage): the cassette path, its content or a replay
    /// option is the user's to fix.
    pub fn kind(&self) -> crate::ErrorKind {
        crate::ErrorKind::Usage
    }
}

impl CassetteError {
    /// The line of the problem, for [`CassetteError::Parse`] and [`CassetteError::Invalid`].
    pub fn line(&self) -> Option<usize> {
        match self {
            Self::Parse { line, .. } | Self::Invalid { line, .. } => Some(*line),
            Self::Io { .. } | Self::UnknownField { .. } => None,
        }
    }

    pub(super) fn io(path: &Path, what: &str, e: &std::io::Error) -> Self {
        Self::Io { path: path.to_path_buf(), message: format!("{what}: {e}") }
    }
}
