//! The scripted model: a deterministic, data-driven [`ModelProvider`] for tests, demos and benchmarks.
//!
//! A [`ScriptedModel`] answers each model call from a *script*: either a JSON file of steps
//! ([`ScriptedModel::from_file`], [`ScriptedModel::from_json_str`]) or a Rust closure
//! ([`ScriptedModel::from_fn`]). It streams its answers as [`ModelDelta`]s the way a real provider
//! does (block start, text in several chunks, tool input JSON in two or more pieces, block stop,
//! usage, stop), so the whole agent loop runs exactly as it would against a real model. Its
//! [`ModelProvider::name`] is `scripted`.
//!
//! # File format
//!
//! ```json
//! {"steps": [
//!   {"agent": "optional regex on the agent's name",
//!    "when": "optional regex on the text of the last message in the request",
//!    "repeat": false,
//!    "reply": [{"type": "thinking", "thinking": "…"},
//!              {"type": "text", "text": "…"},
//!              {"type": "tool_use", "name": "Write", "input": {"file_path": "hello.txt", "content": "hi $1"}}],
//!    "usage": {"input_tokens": 120, "output_tokens": 30}}
//! ]}
//! ```
//!
//! The top-level object has exactly one key, `steps`: a list of steps. Each step has:
//!
//! | key      | required | meaning |
//! |----------|----------|---------|
//! | `agent`  | no  | Regex on the calling agent's name ([`ModelRequest::agent_name`]). Absent: any agent. |
//! | `when`   | no  | Regex on the text of the last message of the request. Absent: any message. |
//! | `repeat` | no  | `true`: the step may answer any number of calls. Default `false`: it answers once. |
//! | `reply`  | yes | The content blocks of the answer (at least one; see below). |
//! | `usage`  | no  | Token usage to report: `input_tokens`, `output_tokens`, `cache_read_input_tokens`, `cache_creation_input_tokens` (each optional, default 0). |
//!
//! Reply blocks, by `type`:
//!
//! | `type`              | keys |
//! |---------------------|------|
//! | `text`              | `text` (required) |
//! | `thinking`          | `thinking` (required), `signature` (optional, default `"scripted"`) |
//! | `redacted_thinking` | `data` (required) |
//! | `tool_use`          | `name` (required, non-empty), `input` (optional JSON object, default `{}`), `id` (optional, default `call_<n>`) |
//!
//! Unknown keys anywhere are rejected (so typos are caught) with the line and column of the problem;
//! so are unknown block types, keys that do not belong to a block's type, tool calls without a name,
//! tool inputs that are not objects, empty replies and regexes that do not compile
//! ([`ScriptError`]). Regexes use the syntax of the [`regex`] crate and are compiled once, at load.
//!
//! ## Which step answers
//!
//! Each model call is answered by the **first step, in file order,** that
//! - is not used up (a step without `"repeat": true` answers only one call),
//! - whose `agent` regex matches the agent's name, and
//! - whose `when` regex matches the text of the last message of the request.
//!
//! Matching is unanchored ([`regex::Regex::is_match`]): write `^alice$` to match exactly `alice`.
//! "The text of the last message" is [`Message::last_text`] of the request's last message: the
//! prompt for the first call of a turn, the content of the latest tool result after a tool call,
//! or the empty string when there is none. The model may be shared by concurrent agents: choosing a
//! step and marking it used is atomic, so a once-only step never answers two calls.
//!
//! A call that no step answers fails with [`ModelError::NoAnswer`], whose message names the agent and
//! quotes the last message (cut at about 200 characters), e.g.
//! `scripted model: no step matches agent 'alice' and last message "deploy it" (3 steps, 2 used up)`.
//!
//! ## Substitution
//!
//! In every string anywhere inside `reply` — text, thinking, signatures, tool names and ids, and tool
//! input keys and values at any depth, in nested objects and arrays — `$1` … `$9` are replaced by the
//! capture groups of the step's `when` regex (a group that did not take part in the match, or does
//! not exist, or a step without `when`, gives the empty string). `$$` stands for a literal `$`. Any
//! other `$` is kept as it is (`$0`, `$HOME`, a trailing `$`); `$12` is group 1 followed by `2`.
//! Substituted strings inside tool inputs are JSON-escaped properly.
//!
//! ## What the reply looks like
//!
//! - Tool calls without an `id` get `call_0`, `call_1`, … numbered across all tool calls this model
//!   has made over its lifetime, so runs are reproducible.
//! - Thinking blocks without a `signature` get the signature `scripted`.
//! - The stop reason is `tool_use` when the reply holds a tool call, `end_turn` otherwise.
//! - Usage is the step's `usage` when given; otherwise an estimate: input tokens ≈ bytes of the
//!   system prompt and the JSON-serialized messages / 4, output tokens ≈ bytes of the reply's text,
//!   thinking and tool input JSON / 4, each at least 1.
//!
//! # Example
//!
//! ```
//! use orch_core::model::scripted::ScriptedModel;
//!
//! let model = ScriptedModel::from_json_str(r#"{"steps": [
//!   {"agent": "^writer$", "when": "write (\\w+)",
//!    "reply": [{"type": "text", "text": "Writing $1."},
//!              {"type": "tool_use", "name": "Write",
//!               "input": {"file_path": "$1.txt", "content": "$1 costs $$5"}}]},
//!   {"agent": "^writer$", "repeat": true, "reply": [{"type": "text", "text": "Done."}]}
//! ]}"#)?;
//! assert_eq!(model.calls(), 0);
//! # Ok::<(), orch_core::model::scripted::ScriptError>(())
//! ```
//!
//! A closure can answer instead, when the answer must be computed:
//!
//! ```
//! use orch_core::model::scripted::{ScriptReply, ScriptedModel};
//!
//! let model = ScriptedModel::from_fn(|request| {
//!     Ok(ScriptReply::text(format!("{} sees {} messages", request.agent_name, request.messages.len())))
//! });
//! ```

mod render;
mod script;

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use async_trait::async_trait;
use futures::StreamExt;
use regex::Captures;
use serde_json::Value;

use self::render::Render;
use self::script::{Block, RawScript, Step, quote, subst_ref, substitute, substitute_value};
use crate::model::{DeltaStream, ModelDelta, ModelError, ModelProvider, ModelRequest};
use crate::wire::{ContentBlock, Message, Usage};

/// The signature given to thinking blocks that have none.
const DEFAULT_SIGNATURE: &str = "scripted";
/// Longest quote of the last message in a no-match error, in characters.
const QUOTE_CHARS: usize = 200;

/// A script that cannot be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScriptError {
    /// The file could not be read.
    #[error("scripted model file {path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The script is not valid JSON, or does not have the shape of a script (unknown or missing keys,
    /// wrong types).
    #[error("{}: line {line}, column {column}: {message}", origin(.path))]
    Parse {
        /// The file, when loaded from one.
        path: Option<String>,
        /// Line of the problem (1-based).
        line: usize,
        /// Column of the problem (1-based).
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// The script is well-formed JSON but makes no sense: a regex that does not compile, a tool call
    /// without a name, an unknown block type, an empty reply….
    #[error("{}: {message}", origin(.path))]
    Invalid {
        /// The file, when loaded from one.
        path: Option<String>,
        /// What is wrong, naming the step (`steps[2]`, 0-based) and block.
        message: String,
    },
}

impl ScriptError {
    /// Always [`ErrorKind::Usage`](crate::ErrorKind::Usage): the script is the user's file to fix.
    pub fn kind(&self) -> crate::ErrorKind {
        crate::ErrorKind::Usage
    }
}

fn origin(path: &Option<String>) -> String {
    match path {
        Some(p) => format!("scripted model file {p}"),
        None => "scripted model script".to_owned(),
    }
}

/// The answer of a [`ScriptedModel::from_fn`] closure to one model call.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScriptReply {
    /// Content blocks of the answer. Text, thinking, redacted thinking and tool use blocks are
    /// allowed; a tool use with an empty id gets the next `call_<n>`, a thinking block without a
    /// signature gets `scripted`.
    pub content: Vec<ContentBlock>,
    /// Usage to report; `None` for the size estimate.
    pub usage: Option<Usage>,
}

impl ScriptReply {
    /// A reply of the given blocks.
    pub fn new(content: Vec<ContentBlock>) -> Self {
        Self { content, usage: None }
    }

    /// A reply of one text block.
    pub fn text(text: impl Into<String>) -> Self {
        Self::new(vec![ContentBlock::Text { text: text.into() }])
    }

    /// A reply of one tool call. An empty `id` is replaced by the next `call_<n>`.
    pub fn tool_use(id: impl Into<String>, name: impl Into<String>, input: Value) -> Self {
        Self::new(vec![ContentBlock::ToolUse { id: id.into(), name: name.into(), input }])
    }

    /// Appends a text block.
    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        self.content.push(ContentBlock::Text { text: text.into() });
        self
    }

    /// Appends a thinking block (signed `scripted`).
    pub fn with_thinking(mut self, thinking: impl Into<String>) -> Self {
        self.content.push(ContentBlock::Thinking { thinking: thinking.into(), signature: None });
        self
    }

    /// Appends a tool call. An empty `id` is replaced by the next `call_<n>`.
    pub fn with_tool_use(mut self, id: impl Into<String>, name: impl Into<String>, input: Value) -> Self {
        self.content.push(ContentBlock::ToolUse { id: id.into(), name: name.into(), input });
        self
    }

    /// Sets the usage to report.
    pub fn with_usage(mut self, usage: Usage) -> Self {
        self.usage = Some(usage);
        self
    }
}

impl From<&str> for ScriptReply {
    fn from(text: &str) -> Self {
        Self::text(text)
    }
}

impl From<String> for ScriptReply {
    fn from(text: String) -> Self {
        Self::text(text)
    }
}

type ReplyFn = dyn Fn(&ModelRequest) -> Result<ScriptReply, ModelError> + Send + Sync + 'static;

/// A deterministic, data-driven model; see the [module documentation](self) for the script format
/// and the matching rules.
pub struct ScriptedModel {
    source: Source,
    /// Tool call ids handed out so far.
    next_call_id: AtomicU64,
    /// Calls answered.
    calls: AtomicUsize,
}

enum Source {
    Steps(Vec<Step>),
    Fn(Box<ReplyFn>),
}

impl fmt::Debug for ScriptedModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("ScriptedModel");
        match &self.source {
            Source::Steps(steps) => d.field("steps", &steps.len()),
            Source::Fn(_) => d.field("steps", &"<closure>"),
        };
        d.field("calls", &self.calls()).finish()
    }
}

impl Default for ScriptedModel {
    /// A model with no steps: every call fails with [`ModelError::NoAnswer`].
    fn default() -> Self {
        Self::with_source(Source::Steps(Vec::new()))
    }
}

impl ScriptedModel {
    fn with_source(source: Source) -> Self {
        Self { source, next_call_id: AtomicU64::new(0), calls: AtomicUsize::new(0) }
    }

    /// Parses a script (the JSON format of the [module documentation](self)).
    pub fn from_json_str(json: &str) -> Result<Self, ScriptError> {
        Self::parse(json, None)
    }

    /// Reads and parses a script file. Errors name the file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ScriptError> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let json = std::fs::read_to_string(path)
            .map_err(|e| ScriptError::Io { path: shown.clone(), message: e.to_string() })?;
        Self::parse(&json, Some(shown))
    }

    /// A model whose every call is answered by `f`. An error from `f` is the call's error.
    pub fn from_fn<F>(f: F) -> Self
    where
        F: Fn(&ModelRequest) -> Result<ScriptReply, ModelError> + Send + Sync + 'static,
    {
        Self::with_source(Source::Fn(Box::new(f)))
    }

    /// How many model calls have been answered (calls that failed are not counted).
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::Relaxed)
    }

    /// Indices (0-based, in file order) of once-only steps that have not answered yet. Empty for a
    /// [`ScriptedModel::from_fn`] model. Handy to check that a test consumed its whole script.
    pub fn unused_steps(&self) -> Vec<usize> {
        match &self.source {
            Source::Steps(steps) => steps
                .iter()
                .enumerate()
                .filter(|(_, s)| !s.repeat && !s.used.load(Ordering::Acquire))
                .map(|(i, _)| i)
                .collect(),
            Source::Fn(_) => Vec::new(),
        }
    }

    fn parse(json: &str, path: Option<String>) -> Result<Self, ScriptError> {
        let raw: RawScript = serde_json::from_str(json).map_err(|e| {
            let (line, column) = (e.line(), e.column());
            let mut message = e.to_string();
            let suffix = format!(" at line {line} column {column}");
            if message.ends_with(&suffix) {
                message.truncate(message.len() - suffix.len());
            }
            ScriptError::Parse { path: path.clone(), line, column, message }
        })?;
        let mut steps = Vec::with_capacity(raw.steps.len());
        for (i, step) in raw.steps.into_iter().enumerate() {
            match Step::compile(i, step) {
                Ok(s) => steps.push(s),
                Err(message) => return Err(ScriptError::Invalid { path, message }),
            }
        }
        Ok(Self::with_source(Source::Steps(steps)))
    }

    fn answer(&self, request: &ModelRequest) -> Result<Vec<ModelDelta>, ModelError> {
        let deltas = match &self.source {
            Source::Steps(steps) => self.answer_from_steps(steps, request)?,
            Source::Fn(f) => self.answer_from_fn(f(request)?, request)?,
        };
        self.calls.fetch_add(1, Ordering::Relaxed);
        Ok(deltas)
    }

    fn answer_from_steps(&self, steps: &[Step], request: &ModelRequest) -> Result<Vec<ModelDelta>, ModelError> {
        let last = request.messages.last().and_then(Message::last_text).unwrap_or("");
        for step in steps {
            if !step.repeat && step.used.load(Ordering::Acquire) {
                continue;
            }
            if step.agent.as_ref().is_some_and(|re| !re.is_match(&request.agent_name)) {
                continue;
            }
            let caps = match &step.when {
                None => None,
                Some(re) if step.substitutes => match re.captures(last) {
                    Some(c) => Some(c),
                    None => continue,
                },
                Some(re) if re.is_match(last) => None,
                Some(_) => continue,
            };
            // Taking a once-only step is a single atomic swap: of concurrent callers, one wins.
            if !step.repeat && step.used.swap(true, Ordering::AcqRel) {
                continue;
            }
            return Ok(self.render_step(step, caps.as_ref(), request));
        }
        let used = steps.iter().filter(|s| !s.repeat && s.used.load(Ordering::Acquire)).count();
        Err(ModelError::NoAnswer {
            message: format!(
                "scripted model: no step matches agent '{}' and last message \"{}\" ({} steps, {} used up)",
                request.agent_name,
                quote(last),
                steps.len(),
                used
            ),
        })
    }

    fn next_id(&self) -> String {
        format!("call_{}", self.next_call_id.fetch_add(1, Ordering::Relaxed))
    }

    fn render_step(&self, step: &Step, caps: Option<&Captures<'_>>, request: &ModelRequest) -> Vec<ModelDelta> {
        let mut out = Render::new(step.blocks.len());
        let sub =
            |s: &'_ str| -> String { if step.substitutes { substitute(s, caps).into_owned() } else { s.to_owned() } };
        for block in &step.blocks {
            match block {
                Block::Text(text) => out.text(&subst_ref(text, step.substitutes, caps)),
                Block::Thinking { thinking, signature } => {
                    out.thinking(&subst_ref(thinking, step.substitutes, caps), sub(signature))
                }
                Block::Redacted(data) => out.redacted(sub(data)),
                Block::ToolUse { id, name, input, json } => {
                    let id = match id {
                        Some(id) => sub(id),
                        None => self.next_id(),
                    };
                    if step.substitutes {
                        let json = substitute_value(input, caps).to_string();
                        out.tool_use(id, sub(name), &json);
                    } else {
                        out.tool_use(id, name.clone(), json);
                    }
                }
            }
        }
        out.finish(step.usage, request)
    }

    fn answer_from_fn(&self, reply: ScriptReply, request: &ModelRequest) -> Result<Vec<ModelDelta>, ModelError> {
        let mut out = Render::new(reply.content.len());
        for block in reply.content {
            match block {
                ContentBlock::Text { text } => out.text(&text),
                ContentBlock::Thinking { thinking, signature } => {
                    out.thinking(&thinking, signature.unwrap_or_else(|| DEFAULT_SIGNATURE.to_owned()))
                }
                ContentBlock::RedactedThinking { data } => out.redacted(data),
                ContentBlock::ToolUse { id, name, input } => {
                    let id = if id.is_empty() { self.next_id() } else { id };
                    out.tool_use(id, name, &input.to_string());
                }
                ContentBlock::ToolResult { .. } => {
                    return Err(ModelError::Other {
                        message: format!(
                            "scripted model: the reply for agent '{}' holds a tool_result block, which a model cannot send",
                            request.agent_name
                        ),
                    });
                }
            }
        }
        Ok(out.finish(reply.usage, request))
    }
}

#[async_trait]
impl ModelProvider for ScriptedModel {
    fn name(&self) -> &str {
        "scripted"
    }

    async fn stream(&self, request: ModelRequest) -> Result<DeltaStream, ModelError> {
        let deltas = self.answer(&request)?;
        Ok(futures::stream::iter(deltas.into_iter().map(Ok)).boxed())
    }
}
