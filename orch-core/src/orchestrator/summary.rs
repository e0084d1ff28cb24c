//! Optional model-written one-line summaries of log events.
//!
//! Every event already has a deterministic summary, [`Event::summary`], available the moment it is
//! appended. A host may additionally ask a (small, cheap) model to write a friendlier one-line summary
//! of the interesting events: a [`Summarizer`] follows the log in one background task and, for each
//! event it [wants](Summarizer::wants), appends an [`Event::SummaryUpdated`] naming the event by its
//! `seq` and carrying the same keys. Readers show the model summary once it arrives and the heuristic
//! one until then, or forever when the model never answers.
//!
//! # Turning it on
//!
//! It is **off by default**. The host turns it on when the environment variable
//! [`ORCH_SUMMARY_MODEL`](SUMMARY_MODEL_ENV) names a model spec (e.g. `anthropic:claude-haiku-4-5`):
//! the host builds the provider from the spec, then calls [`Summarizer::new`] with it and the model id,
//! and [`Summarizer::follow`] with its store and runtime. This module never reads the environment and
//! never builds providers.
//!
//! # Cost and failure
//!
//! Events are summarised one at a time, one model call each (no tools, at most [`MAX_TOKENS`] output
//! tokens), so the cost is bounded by the rate of wanted events and never fans out. A call that fails,
//! times out or answers nothing leaves the event with its heuristic summary; such failures are only
//! logged at `debug` level. A store error ends the task, logged at `warn` level.
//!
//! # Example
//!
//! ```no_run
//! # #[cfg(feature = "tokio")]
//! # async fn demo(store: std::sync::Arc<dyn orch_core::store::Store>,
//! #               provider: std::sync::Arc<dyn orch_core::model::ModelProvider>) {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use orch_core::orchestrator::summary::Summarizer;
//! use orch_core::runtime::{Runtime, TokioRuntime};
//!
//! let runtime: Arc<dyn Runtime> = Arc::new(TokioRuntime);
//! let since = store.last_seq().await.unwrap_or(0);
//! let handle = Arc::new(Summarizer::new(provider, "claude-haiku-4-5")).follow(store.clone(), runtime.clone(), since);
//! // … run agents …
//! let last = store.last_seq().await.unwrap_or(0);
//! handle.drain(last, Duration::from_secs(10), runtime.as_ref()).await;
//! handle.stop();
//! # }
//! ```

use std::fmt;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use futures::future::{Either, select};

use crate::Interrupt;
use crate::model::{ModelProvider, ModelRequest, ResponseAssembler};
use crate::runtime::Runtime;
use crate::store::Store;
use crate::wire::{Event, EventRecord, FileChangeStatus, Message, NewEvent, Participant};

/// The environment variable a host reads to turn summaries on: a model spec. Unset or empty: off.
pub const SUMMARY_MODEL_ENV: &str = "ORCH_SUMMARY_MODEL";

/// How long [`Summarizer::follow`] waits for one summary before giving up on it, unless
/// [`Summarizer::with_timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Output token limit of a summary call.
pub const MAX_TOKENS: u32 = 200;

/// Longest summary kept, in characters (longer replies are cut, ending in `…`).
pub const MAX_SUMMARY_CHARS: usize = 200;

/// Agent name of summary calls (scripted models can match on it).
pub const AGENT_NAME: &str = "summarizer";

/// Characters of text, thinking, results and JSON quoted in a prompt.
const DETAIL_CHARS: usize = 500;
/// Characters of a tool's JSON input quoted in a prompt.
const INPUT_CHARS: usize = 1000;
/// How often [`SummarizerHandle::drain`] looks at the progress.
const DRAIN_POLL: Duration = Duration::from_millis(20);

const SYSTEM_PROMPT: &str = "You summarise entries of an AI agent's activity log for a dashboard. \
Answer with exactly one plain sentence of fewer than 100 characters: no quotes, no preamble, no markdown.";

/// Writes one-line summaries of log events with a model; see the [module documentation](self).
pub struct Summarizer {
    provider: Arc<dyn ModelProvider>,
    model: String,
    timeout: Duration,
}

impl fmt::Debug for Summarizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Summarizer")
            .field("provider", &self.provider.name())
            .field("model", &self.model)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Summarizer {
    /// A summariser calling `model` (the model id, without provider prefix) on `provider`.
    pub fn new(provider: Arc<dyn ModelProvider>, model: impl Into<String>) -> Self {
        Self { provider, model: model.into(), timeout: DEFAULT_TIMEOUT }
    }

    /// Sets how long [`Summarizer::follow`] waits for one summary (default [`DEFAULT_TIMEOUT`]).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The model id called.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// The per-summary timeout used by [`Summarizer::follow`].
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Whether `event` gets a model summary: text, thinking, tool calls, prompts, turn ends, chat
    /// messages and file reports. Summaries themselves, costs, status changes and system noise do not.
    pub fn wants(event: &Event) -> bool {
        matches!(
            event,
            Event::Text { .. }
                | Event::Thinking { .. }
                | Event::ToolUse { .. }
                | Event::PreToolUse { .. }
                | Event::PostToolUse { .. }
                | Event::UserPromptSubmit { .. }
                | Event::Stop { .. }
                | Event::ChatMessage { .. }
                | Event::FileTracking { .. }
        )
    }

    /// Asks the model for a one-line summary of `record`: one call, no tools.
    ///
    /// Returns the reply trimmed, on one line, without surrounding quotes and cut to
    /// [`MAX_SUMMARY_CHARS`]; `None` when the call fails or the reply is empty. This call is bounded
    /// only by the provider's own stall timeout; [`Summarizer::follow`] also bounds it by
    /// [`Summarizer::timeout`]. It summarises any event, wanted or not.
    pub async fn summarize(&self, record: &EventRecord) -> Option<String> {
        let request = self.request(&record.event);
        let mut stream = match self.provider.stream(request).await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(seq = record.seq, model = %self.model, error = %e, "event summary call failed");
                return None;
            }
        };
        let mut assembler = ResponseAssembler::new();
        while let Some(delta) = stream.next().await {
            if let Err(e) = delta.and_then(|d| assembler.push(d)) {
                tracing::debug!(seq = record.seq, model = %self.model, error = %e, "event summary stream failed");
                return None;
            }
        }
        let response = match assembler.finish() {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(seq = record.seq, model = %self.model, error = %e, "event summary reply unusable");
                return None;
            }
        };
        let summary = clean_reply(&response.text());
        if summary.is_none() {
            tracing::debug!(seq = record.seq, model = %self.model, "event summary reply was empty");
        }
        summary
    }

    /// Follows the log of `store` from `since` (exclusive) in one task spawned on `runtime`, appending
    /// an [`Event::SummaryUpdated`] (with the summarised event's keys) for every wanted event it
    /// summarises. Events are handled one at a time, in seq order; its own summary events are skipped.
    ///
    /// The task runs until [`SummarizerHandle::stop`], the end of the log stream or a store error
    /// (logged at `warn` level). Dropping the handle does not stop it.
    pub fn follow(self: Arc<Self>, store: Arc<dyn Store>, runtime: Arc<dyn Runtime>, since: u64) -> SummarizerHandle {
        let shared = Arc::new(Shared {
            stop: Interrupt::new(),
            processed: AtomicU64::new(since),
            finished: AtomicBool::new(false),
        });
        let handle = SummarizerHandle { shared: shared.clone() };
        let task_runtime = runtime.clone();
        runtime.spawn(Box::pin(async move {
            self.run(store, task_runtime, &shared, since).await;
            shared.finished.store(true, Ordering::SeqCst);
        }));
        handle
    }

    async fn run(&self, store: Arc<dyn Store>, runtime: Arc<dyn Runtime>, shared: &Shared, since: u64) {
        let mut events = store.subscribe(since);
        loop {
            let next = match select(events.next(), pin!(shared.stop.triggered())).await {
                Either::Left((next, _)) => next,
                Either::Right(_) => return,
            };
            let record = match next {
                Some(Ok(record)) => record,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "event summariser stopped: cannot read the event log");
                    return;
                }
                None => {
                    tracing::debug!("event summariser stopped: the event log stream ended");
                    return;
                }
            };
            if shared.stop.is_triggered() {
                return;
            }
            if Self::wants(&record.event) {
                let call = pin!(self.summarize_within(&record, runtime.as_ref()));
                let summary = match select(call, pin!(shared.stop.triggered())).await {
                    Either::Left((summary, _)) => summary,
                    Either::Right(_) => return,
                };
                if let Some(summary) = summary {
                    if shared.stop.is_triggered() {
                        return;
                    }
                    let event = Event::SummaryUpdated { target_seq: record.seq, summary };
                    if let Err(e) = store.append(vec![NewEvent::new(record.keys.clone(), event)]).await {
                        tracing::warn!(seq = record.seq, error = %e, "event summariser stopped: cannot append a summary");
                        return;
                    }
                }
            }
            shared.processed.fetch_max(record.seq, Ordering::SeqCst);
            // Let other tasks run between events, even when the store and the model never wait.
            YieldNow(false).await;
        }
    }

    /// [`Summarizer::summarize`], giving up after [`Summarizer::timeout`] on `runtime`'s clock.
    async fn summarize_within(&self, record: &EventRecord, runtime: &dyn Runtime) -> Option<String> {
        match select(pin!(self.summarize(record)), runtime.sleep(self.timeout)).await {
            Either::Left((summary, _)) => summary,
            Either::Right(_) => {
                tracing::debug!(seq = record.seq, model = %self.model, timeout = ?self.timeout, "event summary timed out");
                None
            }
        }
    }

    fn request(&self, event: &Event) -> ModelRequest {
        let prompt = format!(
            "Summarise this agent log event in a single sentence of 50 to 100 characters. \
             Reply with that sentence and nothing else.\n\nEvent Type: {}\n{}",
            event.kind(),
            details(event)
        );
        ModelRequest {
            model: self.model.clone(),
            system: Some(SYSTEM_PROMPT.to_owned()),
            messages: Arc::new(vec![Message::user_text(prompt)]),
            tools: Arc::new(Vec::new()),
            max_tokens: MAX_TOKENS,
            thinking: None,
            agent_name: AGENT_NAME.to_owned(),
        }
    }
}

/// State shared by a follow task and its handles.
#[derive(Debug)]
struct Shared {
    stop: Interrupt,
    processed: AtomicU64,
    finished: AtomicBool,
}

/// Controls the task started by [`Summarizer::follow`]. Cheap to clone; all clones control one task.
#[derive(Debug, Clone)]
pub struct SummarizerHandle {
    shared: Arc<Shared>,
}

impl SummarizerHandle {
    /// Asks the task to end: at once when it is waiting for an event or a model reply (the reply is
    /// then dropped), and nothing is appended afterwards.
    pub fn stop(&self) {
        self.shared.stop.trigger();
    }

    /// The highest seq the task has handled, summarised or skipped (`since` until the first one).
    pub fn processed_seq(&self) -> u64 {
        self.shared.processed.load(Ordering::SeqCst)
    }

    /// Whether the task has ended (stopped, log stream ended or store error).
    pub fn is_finished(&self) -> bool {
        self.shared.finished.load(Ordering::SeqCst)
    }

    /// Waits until the task has handled every event up to `until_seq`, for at most `timeout` (measured
    /// by `runtime`'s sleeps). Returns whether it got there; `false` at once when the task has ended
    /// short of it. A CLI calls this before exiting, so the summaries of its run are written.
    pub async fn drain(&self, until_seq: u64, timeout: Duration, runtime: &dyn Runtime) -> bool {
        let mut waited = Duration::ZERO;
        loop {
            if self.processed_seq() >= until_seq {
                return true;
            }
            if self.is_finished() || waited >= timeout {
                // The task may have handled the last events just before ending.
                return self.processed_seq() >= until_seq;
            }
            let step = DRAIN_POLL.min(timeout - waited);
            runtime.sleep(step).await;
            waited += step;
        }
    }
}

/// Completes on its second poll, letting the executor run other tasks in between.
struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        if self.0 {
            return std::task::Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}

/// The details of the prompt for `event`: what the model needs to summarise it.
fn details(event: &Event) -> String {
    match event {
        Event::PreToolUse { tool_name, tool_input, .. } | Event::ToolUse { tool_name, tool_input, .. } => {
            format!("Tool: {tool_name}\nInput: {}", clip(&tool_input.to_string(), INPUT_CHARS))
        }
        Event::PostToolUse { tool_name, result, is_error, .. } => format!(
            "Tool: {tool_name}\nOutcome: {}\nResult: {}",
            if *is_error { "failed" } else { "succeeded" },
            clip(result.as_deref().unwrap_or("(none)"), DETAIL_CHARS)
        ),
        Event::Text { text } => format!("Content: {}", clip(text, DETAIL_CHARS)),
        Event::Thinking { thinking, .. } => format!("Content: {}", clip(thinking, DETAIL_CHARS)),
        Event::Stop { .. } => format!("Details: {}", event_json(event)),
        Event::ChatMessage { message } => format!(
            "From: {}\nTo: {}\nMessage: {}",
            participant(message.sender),
            participant(message.receiver),
            clip(&message.message, DETAIL_CHARS)
        ),
        Event::FileTracking { file_changes, read_files, .. } => {
            let mut lines = Vec::with_capacity(file_changes.len() + read_files.len() + 2);
            lines.push(format!("Files changed: {}", file_changes.len()));
            for c in file_changes {
                let status = match c.status {
                    FileChangeStatus::Created => "created",
                    FileChangeStatus::Modified => "modified",
                    FileChangeStatus::Deleted => "deleted",
                };
                lines.push(format!("- {status} {} (+{} -{})", c.path, c.lines_added, c.lines_removed));
            }
            lines.push(format!("Files read: {}", read_files.len()));
            lines.extend(read_files.iter().map(|r| format!("- {}", r.path)));
            clip(&lines.join("\n"), DETAIL_CHARS)
        }
        other => format!("Details: {}", clip(&event_json(other), DETAIL_CHARS)),
    }
}

fn participant(p: Participant) -> &'static str {
    match p {
        Participant::User => "user",
        Participant::Orchestrator => "orchestrator",
        Participant::Agent => "agent",
    }
}

/// The event as JSON (its heuristic summary should serialisation ever fail).
fn event_json(event: &Event) -> String {
    serde_json::to_string(event).unwrap_or_else(|_| event.summary())
}

/// The first `max` characters of `s`, ending in `…` when cut (so at most `max` characters).
fn clip(s: &str, max: usize) -> String {
    match crate::text::prefix_chars(s, max) {
        (_, true) => crate::text::clip_chars(s, max.saturating_sub(1), "…"),
        (whole, false) => whole.to_owned(),
    }
}

/// A model reply as a summary: one line, trimmed, without surrounding quotes, at most
/// [`MAX_SUMMARY_CHARS`]; `None` when nothing is left.
fn clean_reply(reply: &str) -> Option<String> {
    const QUOTES: &[(char, char)] = &[('"', '"'), ('\'', '\''), ('`', '`'), ('“', '”'), ('‘', '’'), ('«', '»')];
    let line = reply.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut s = line.as_str();
    while let Some(inner) = QUOTES
        .iter()
        .find_map(|(open, close)| s.strip_prefix(*open).and_then(|rest| rest.strip_suffix(*close)).map(str::trim))
    {
        s = inner;
    }
    if s.is_empty() { None } else { Some(clip(s, MAX_SUMMARY_CHARS)) }
}
