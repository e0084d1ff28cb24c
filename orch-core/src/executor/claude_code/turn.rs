//! One turn: reading the CLI's `stream-json` output, relaying hooks, committing events, and how it ends.

use std::collections::{HashMap, HashSet};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

use super::process::{GroupGuard, kill_and_reap, read_tail};
use super::relay::{RelayRequest, RelayServer, reply_for, tool_response_text};
use super::stream::{Block, Line, ResultLine, parse_line};
use super::{ClaudeCodeExecutor, HookReply};
use crate::executor::native::{GENERAL_PURPOSE, TASK_TOOL, task_slug};
use crate::executor::{RunError, RunOutcome, TurnContext, TurnRecorder};
use crate::hook::{HookDecision, HookEvent, HookInput};
use crate::model::{BlockStart, ModelDelta, ModelError, PriceTable};
use crate::store::SavedState;
use crate::wire::{AgentStatus, CompactTrigger, EndReason, Event, EventKeys, LogLevel, Timestamp, Usage, now};

/// Characters of a tool result kept in the `PostToolUse` event (the full text is in `ToolResult`).
const POST_TOOL_RESULT_CHARS: usize = 500;
/// Characters of a prompt kept in the `UserPromptSubmit` event.
const PROMPT_EVENT_CHARS: usize = 1000;
/// Warnings about unreadable lines recorded per turn.
const MAX_WARNINGS: u32 = 20;
/// Events buffered before a commit even while more output is waiting.
const MAX_BATCH: usize = 64;
/// How long a `PreToolUse` hook call waits for the `assistant` line of its tool call to be read.
const CATCH_UP: Duration = Duration::from_millis(500);
/// How long the CLI may take to exit after its result line.
const EXIT_GRACE: Duration = Duration::from_secs(5);
fn clip(s: &str, n: usize) -> String {
    crate::text::clip_chars(s, n, "")
}

async fn recv_opt(rx: &mut Option<mpsc::UnboundedReceiver<RelayRequest>>) -> Option<RelayRequest> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// How a turn ends.
struct Ending {
    reason: String,
    is_error: bool,
    num_turns: u32,
    duration_ms: u64,
    usage: Usage,
    cost_usd: f64,
    text: Option<String>,
    error: Option<ModelError>,
}

/// A `compact_boundary` whose `Compacted` event waits for the summary and the first call after it.
pub(super) struct PendingCompact {
    trigger: CompactTrigger,
    tokens_before: u64,
    summary: Option<String>,
}

/// A subagent the CLI is running: a `Task` call whose result has not come yet.
pub(super) struct OpenSubagent {
    /// The `Task` call id (also the subagent's id in events).
    id: String,
    /// Its last text, for `SubagentStop` hooks.
    last_text: Option<String>,
}

enum End {
    Result,
    Eof,
    Interrupted,
}

pub(super) struct Run<'a> {
    pub(super) exec: &'a ClaudeCodeExecutor,
    pub(super) cx: &'a TurnContext,
    pub(super) keys: EventKeys,
    /// Model name for events.
    pub(super) model: String,
    /// Tools the run pre-approves.
    pub(super) allowed: HashSet<String>,
    /// Events, changes, status and usage of the step in progress.
    pub(super) rec: TurnRecorder,
    pub(super) session_id: Option<String>,
    pub(super) session_dirty: bool,
    pub(super) init_seen: bool,
    /// Tool call id → tool name.
    pub(super) tool_names: HashMap<String, String>,
    /// Assistant message ids seen (model calls, when no result line says).
    pub(super) message_ids: HashSet<String>,
    /// The agent's own last text (never a subagent's).
    pub(super) last_text: Option<String>,
    /// Subagents started and not yet finished, in start order.
    pub(super) subagents: Vec<OpenSubagent>,
    /// A compaction whose `Compacted` event is not recorded yet.
    pub(super) compact: Option<PendingCompact>,
    /// The context the agent's last model call used (its `message.usage`), when known.
    pub(super) context_used: Option<u64>,
    /// The context window `modelUsage` of the result line gave.
    pub(super) context_window: Option<u64>,
    pub(super) warnings: u32,
    pub(super) stop_hooks_ran: bool,
    pub(super) model_error_emitted: bool,
    pub(super) result: Option<ResultLine>,
    pub(super) eof: bool,
    pub(super) block_index: usize,
    pub(super) started: Instant,
    pub(super) slug: String,
}

impl Run<'_> {
    fn emit(&mut self, event: Event) {
        self.rec.emit(&self.keys, event);
    }

    fn warn(&mut self, message: String, line: &str) {
        self.warnings += 1;
        if self.warnings > MAX_WARNINGS {
            return;
        }
        tracing::warn!(agent = %self.cx.agent.name, "{message}");
        let message = if self.warnings == MAX_WARNINGS {
            format!("{message} (further warnings of this turn are not recorded)")
        } else {
            message
        };
        self.emit(Event::SystemLog {
            level: LogLevel::Warning,
            message,
            metadata: json!({"executor": "claude-code", "line": clip(line, 500)}),
        });
    }

    fn set_session(&mut self, id: String) {
        if !id.is_empty() && self.session_id.as_deref() != Some(id.as_str()) {
            self.session_id = Some(id);
            self.session_dirty = true;
        }
    }

    /// Stores everything pending in one atomic commit.
    async fn commit(&mut self) -> Result<(), RunError> {
        if self.rec.is_empty() && !self.session_dirty {
            return Ok(());
        }
        let state = if self.session_dirty {
            self.session_dirty = false;
            Some(SavedState { state: None, session_id: self.session_id.clone() })
        } else {
            None
        };
        self.rec.commit(self.cx, state, Vec::new()).await?;
        Ok(())
    }

    fn hook_input(&self, event: HookEvent) -> HookInput {
        HookInput::for_agent(event, &self.cx.agent)
    }

    /// Runs the matching Rust hooks in order, recording each invocation, as the native loop does.
    async fn run_hooks(&mut self, input: &mut HookInput) -> Vec<HookDecision> {
        let run = self.cx.hooks.run(input).await;
        for e in run.events {
            self.emit(e);
        }
        run.decisions
    }

    fn delta(&self, delta: ModelDelta) {
        if let Some(cb) = &self.cx.options.on_delta {
            cb(&delta);
        }
    }

    /// Queues the turn's prompt row for the next commit.
    fn insert_prompt(&mut self, prompt: &str, at: Timestamp) {
        self.rec.prompt(self.cx, &self.slug, prompt, at);
    }

    pub(super) async fn run(&mut self, prompt: String, model: Option<String>) -> Result<RunOutcome, RunError> {
        let at = now();
        self.slug = self.cx.options.task_slug.clone().unwrap_or_else(|| task_slug(&prompt, at));
        self.keys.task_slug = Some(self.slug.clone());
        self.rec.status_change(&self.keys, self.cx.agent.status, AgentStatus::Executing);
        self.emit(Event::UserPromptSubmit {
            prompt: clip(&prompt, PROMPT_EVENT_CHARS),
            prompt_length: prompt.chars().count(),
        });
        let mut hin = self.hook_input(HookEvent::UserPromptSubmit);
        hin.prompt = Some(prompt.clone());
        let mut full_prompt = prompt.clone();
        for d in self.run_hooks(&mut hin).await {
            let early = match d {
                HookDecision::Deny { reason } => Some(format!("denied: {reason}")),
                HookDecision::Stop { reason } => Some(format!("hook: {reason}")),
                HookDecision::AddContext { context } => {
                    full_prompt.push_str("\n\n");
                    full_prompt.push_str(&context);
                    None
                }
                _ => None,
            };
            if let Some(reason) = early {
                self.insert_prompt(&prompt, at);
                return self.finish(self.plain_ending(reason, false, None)).await;
            }
        }

        // The hook relay, when there are hooks.
        let (tx, rx) = mpsc::unbounded_channel();
        let (relay, mut relay_rx) = if self.cx.hooks.is_empty() {
            drop(tx);
            (None, None)
        } else {
            let relay = RelayServer::start(tx).map_err(|e| RunError::Config {
                agent: self.cx.agent.name.clone(),
                message: format!("cannot start the hook relay socket: {e}"),
            })?;
            (Some(relay), Some(rx))
        };
        let settings = match &relay {
            Some(r) => {
                Some(r.write_settings(&self.exec.config.relay_command, self.exec.config.hook_timeout_secs).map_err(
                    |e| RunError::Config {
                        agent: self.cx.agent.name.clone(),
                        message: format!("cannot write the hook settings file: {e}"),
                    },
                )?)
            }
            None => None,
        };

        let args = self.exec.args(self.cx, model.as_deref(), &full_prompt, settings.as_deref());
        let mut cmd = tokio::process::Command::new(&self.exec.config.binary);
        cmd.args(&args)
            .current_dir(&self.cx.agent.working_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .process_group(0);
        for (k, v) in &self.exec.config.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().map_err(|e| self.exec.spawn_error(&self.cx.agent.name, &e))?;
        let mut guard = GroupGuard { pgid: child.id() };
        tracing::debug!(agent = %self.cx.agent.name, pid = ?child.id(), ?args, "claude-code started");
        let stderr_task = tokio::spawn(read_tail(child.stderr.take()));
        let Some(stdout) = child.stdout.take() else {
            kill_and_reap(&mut child, &mut guard).await;
            return Err(RunError::Config { agent: self.cx.agent.name.clone(), message: "no stdout pipe".into() });
        };
        self.insert_prompt(&prompt, at);
        self.commit().await?;

        let mut reader = BufReader::new(stdout);
        let mut line = Vec::new();
        let interrupt = self.cx.interrupt.clone();
        let end = loop {
            if self.result.is_some() {
                break End::Result;
            }
            if self.eof {
                break End::Eof;
            }
            tokio::select! {
                biased;
                _ = interrupt.triggered() => break End::Interrupted,
                r = reader.read_until(b'\n', &mut line) => {
                    match r {
                        Ok(0) => {
                            if !line.is_empty() {
                                self.process_line(&line).await;
                                line.clear();
                            }
                            self.eof = true;
                        }
                        Ok(_) => {
                            self.process_line(&line).await;
                            line.clear();
                        }
                        Err(e) => {
                            self.warn(format!("cannot read Claude Code's output: {e}"), "");
                            self.eof = true;
                        }
                    }
                    if reader.buffer().is_empty() || self.rec.pending_events() >= MAX_BATCH || self.eof {
                        self.commit().await?;
                    }
                }
                Some(req) = recv_opt(&mut relay_rx) => {
                    self.handle_hook(req, &mut reader, &mut line).await?;
                }
            }
        };
        // No more hook calls are answered; pending ones let their tool run.
        drop(relay_rx);
        let ending = match end {
            End::Interrupted => {
                kill_and_reap(&mut child, &mut guard).await;
                stderr_task.abort();
                self.plain_ending("interrupted".into(), false, None)
            }
            End::Result => {
                match tokio::time::timeout(EXIT_GRACE, child.wait()).await {
                    Ok(_) => guard.pgid = None,
                    Err(_) => kill_and_reap(&mut child, &mut guard).await,
                }
                stderr_task.abort();
                self.result_ending()
            }
            End::Eof => {
                let status = tokio::select! {
                    s = child.wait() => Some(s),
                    _ = interrupt.triggered() => None,
                };
                match status {
                    None => {
                        kill_and_reap(&mut child, &mut guard).await;
                        stderr_task.abort();
                        self.plain_ending("interrupted".into(), false, None)
                    }
                    Some(status) => {
                        guard.pgid = None;
                        // A grandchild holding stderr open must not hold the turn.
                        let mut stderr_task = stderr_task;
                        let tail = match tokio::time::timeout(Duration::from_secs(1), &mut stderr_task).await {
                            Ok(Ok(tail)) => tail,
                            _ => {
                                stderr_task.abort();
                                String::new()
                            }
                        };
                        let how = match status {
                            Ok(s) => match s.code() {
                                Some(c) => format!("exited with code {c}"),
                                None => format!("was killed ({s})"),
                            },
                            Err(e) => format!("could not be waited for ({e})"),
                        };
                        let stderr = if tail.is_empty() {
                            "stderr was empty".to_string()
                        } else {
                            format!("stderr ends with: {tail}")
                        };
                        let message = format!(
                            "the Claude Code CLI '{}' {how} without a result line; {stderr}",
                            self.exec.config.binary.display()
                        );
                        self.emit(Event::ModelError {
                            model: self.model.clone(),
                            message: message.clone(),
                            retryable: false,
                        });
                        self.plain_ending("error".into(), true, Some(ModelError::Other { message }))
                    }
                }
            }
        };
        drop(relay);
        self.finish(ending).await
    }

    fn plain_ending(&self, reason: String, is_error: bool, error: Option<ModelError>) -> Ending {
        let text = match &error {
            Some(e) => Some(e.to_string()),
            None => self.last_text.clone(),
        };
        Ending {
            reason,
            is_error,
            num_turns: u32::try_from(self.message_ids.len()).unwrap_or(u32::MAX),
            duration_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            usage: Usage::default(),
            cost_usd: 0.0,
            text,
            error,
        }
    }

    fn result_ending(&mut self) -> Ending {
        let r = self.result.take().unwrap_or_default();
        // A failed resume reports a session id that holds nothing; keep the agent's own then.
        if let Some(s) = r.session_id.clone()
            && (self.init_seen || self.session_id.is_none())
        {
            self.set_session(s);
        }
        if let Some(m) = &r.model {
            self.model = m.clone();
        }
        let mut total_usage = self.cx.agent.usage;
        total_usage.add(&r.usage);
        self.context_window = r.context_window(&self.model);
        let context_window = self.window();
        self.emit(Event::AgentCostsUpdated {
            model: self.model.clone(),
            usage: r.usage,
            cost_usd: r.total_cost_usd,
            total_usage,
            total_cost_usd: self.cx.agent.total_cost_usd + r.total_cost_usd,
            context_used: self.context_used,
            context_window,
        });
        self.rec.add_usage(&r.usage, r.total_cost_usd);
        let reason = r.stop_reason();
        let text = r.text().or_else(|| self.last_text.clone());
        let error = if r.is_error {
            let detail = text.clone().unwrap_or_else(|| "no details".into());
            let error = match r.api_error_status {
                Some(429) => ModelError::RateLimited { message: detail, retry_after: None },
                Some(529) => ModelError::Overloaded { message: detail },
                Some(401) | Some(403) => ModelError::Auth { message: detail },
                Some(s) if s >= 500 => ModelError::Server { status: s, message: detail },
                Some(s) => ModelError::InvalidRequest { kind: format!("http {s}"), message: detail },
                None => {
                    ModelError::Other { message: format!("Claude Code ended the turn with {}: {detail}", r.subtype) }
                }
            };
            if r.api_error_status.is_some() && !self.model_error_emitted {
                self.emit(Event::ModelError {
                    model: self.model.clone(),
                    message: error.to_string(),
                    retryable: error.is_retryable(),
                });
            }
            Some(error)
        } else {
            None
        };
        Ending {
            reason,
            is_error: r.is_error,
            num_turns: r.num_turns,
            duration_ms: r
                .duration_ms
                .unwrap_or_else(|| u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)),
            usage: r.usage,
            cost_usd: r.total_cost_usd,
            text,
            error,
        }
    }

    /// The model's context window: as the result line gave it, else as orch's default price table knows it.
    fn window(&self) -> Option<u64> {
        self.context_window.or_else(|| PriceTable::default().context_window(&self.model))
    }

    /// Ends the turn: a pending `Compacted`, subagents left open, the context, Stop hooks the CLI did
    /// not run, `Stop` and `Result` events, status idle or blocked.
    async fn finish(&mut self, e: Ending) -> Result<RunOutcome, RunError> {
        self.flush_compact(0);
        // A subagent whose `Task` result never came ended with the turn.
        let reason = if e.reason == "interrupted" { EndReason::Interrupted } else { EndReason::Error };
        for sub in std::mem::take(&mut self.subagents) {
            self.subagent_stop(sub, reason.clone(), None).await;
        }
        if let Some(used) = self.context_used {
            let window = self.window();
            self.rec.context(used, window);
        }
        if !self.stop_hooks_ran {
            let mut hin = self.hook_input(HookEvent::Stop);
            hin.stop_reason = Some(e.reason.clone());
            // Too late to continue the turn: decisions are recorded only.
            let _ = self.run_hooks(&mut hin).await;
        }
        self.emit(Event::Stop {
            reason: EndReason::parse(&e.reason),
            num_turns: e.num_turns,
            duration_ms: e.duration_ms,
        });
        self.emit(Event::Result {
            is_error: e.is_error,
            stop_reason: EndReason::parse(&e.reason),
            num_turns: e.num_turns,
            duration_ms: e.duration_ms,
            usage: e.usage,
            cost_usd: e.cost_usd,
            result: e.text.clone(),
        });
        let new_status = if e.is_error { AgentStatus::Blocked } else { AgentStatus::Idle };
        self.rec.status_change(&self.keys, AgentStatus::Executing, new_status);
        self.commit().await?;
        if let Some(err) = e.error {
            return Err(RunError::Model(err));
        }
        Ok(RunOutcome {
            stop_reason: EndReason::parse(&e.reason),
            num_turns: e.num_turns,
            usage: e.usage,
            cost_usd: e.cost_usd,
            final_text: e.text,
            duration_ms: e.duration_ms,
            task_slug: self.slug.clone(),
        })
    }

    /// Records a pending compaction's `Compacted` event; `tokens_after` is the context of the first call
    /// after it, 0 when not known.
    fn flush_compact(&mut self, tokens_after: u64) {
        if let Some(c) = self.compact.take() {
            self.emit(Event::Compacted {
                trigger: c.trigger,
                tokens_before: c.tokens_before,
                tokens_after,
                messages_replaced: 0,
                messages_kept: 0,
                summary: c.summary.unwrap_or_default(),
                replaced: Vec::new(),
            });
        }
    }

    /// A subagent ended: the Rust `SubagentStop` hooks run in process (their decisions are recorded only:
    /// the CLI has already moved on), then `SubagentStop`. The CLI reports no cost per subagent (it is
    /// in the turn's total), so its cost is 0.
    async fn subagent_stop(&mut self, sub: OpenSubagent, reason: EndReason, result: Option<String>) {
        let mut hin = self.hook_input(HookEvent::SubagentStop);
        hin.subagent_id = Some(sub.id.clone());
        hin.tool_use_id = Some(sub.id.clone());
        hin.stop_reason = Some(reason.to_string());
        hin.last_message = sub.last_text.or(result);
        let _ = self.run_hooks(&mut hin).await;
        self.emit(Event::SubagentStop {
            subagent_id: sub.id.clone(),
            tool_use_id: Some(sub.id),
            reason: Some(reason),
            cost_usd: 0.0,
        });
    }

    /// Records what one stdout line says.
    async fn process_line(&mut self, raw: &[u8]) {
        let text = String::from_utf8_lossy(raw);
        let text = text.trim_end_matches(['\n', '\r']);
        if text.trim().is_empty() {
            return;
        }
        let parsed = parse_line(text);
        // A compaction's `Compacted` waits for the summary message and the first call after it; any
        // other line records it.
        if self.compact.is_some() {
            match &parsed {
                Line::User { summary: Some(summary), results, .. } if results.is_empty() => {
                    if let Some(c) = self.compact.as_mut() {
                        c.summary = Some(summary.clone());
                    }
                    return;
                }
                Line::Ignored => {}
                Line::Assistant { parent: None, context, .. } => self.flush_compact(*context),
                _ => self.flush_compact(0),
            }
        }
        match parsed {
            Line::Init { session_id, model, tools, raw } => {
                self.init_seen = true;
                if let Some(s) = session_id.clone() {
                    self.set_session(s);
                }
                if let Some(m) = model.clone() {
                    self.model = m;
                }
                let message = format!(
                    "Claude Code session {} started (model {}, {} tools)",
                    session_id.as_deref().unwrap_or("?"),
                    model.as_deref().unwrap_or("?"),
                    tools.len()
                );
                let keep =
                    ["session_id", "model", "tools", "permissionMode", "claude_code_version", "cwd", "apiKeySource"];
                let metadata: serde_json::Map<String, Value> =
                    keep.iter().filter_map(|k| raw.get(*k).map(|v| ((*k).to_string(), v.clone()))).collect();
                self.emit(Event::SystemLog { level: LogLevel::Info, message, metadata: Value::Object(metadata) });
            }
            Line::Retry { attempt, wait_ms, error } => {
                self.emit(Event::ModelRetry { model: self.model.clone(), attempt, wait_ms, error });
            }
            Line::Compact { trigger, pre_tokens } => {
                self.emit(Event::PreCompact { tokens_before: pre_tokens });
                self.compact = Some(PendingCompact { trigger, tokens_before: pre_tokens, summary: None });
                // What the last call used is gone with the compaction.
                self.context_used = None;
            }
            Line::User { summary: Some(_), results, .. } if results.is_empty() => {}
            Line::Assistant { blocks, api_error, message_id, parent, context } => {
                // A subagent's line: recorded as the agent's events (the CLI runs it in the same process),
                // but its text is not the agent's and its calls are not the agent's turns.
                let sub = parent.as_ref().map(|p| self.subagents.iter().position(|s| &s.id == p));
                if sub.is_none() {
                    if let Some(id) = message_id {
                        self.message_ids.insert(id);
                    }
                    if context > 0 {
                        self.context_used = Some(context);
                    }
                }
                if let Some(message) = api_error {
                    self.model_error_emitted = true;
                    self.emit(Event::ModelError { model: self.model.clone(), message, retryable: false });
                }
                // Live deltas are the agent's own output only.
                let own = sub.is_none();
                for b in blocks {
                    let index = self.block_index;
                    if own {
                        self.block_index += 1;
                    }
                    match b {
                        Block::Text(text) => {
                            if own {
                                self.delta(ModelDelta::BlockStart { index, block: BlockStart::Text });
                                self.delta(ModelDelta::Text { index, text: text.clone() });
                                self.delta(ModelDelta::BlockStop { index });
                                self.last_text = Some(text.clone());
                            } else if let Some(Some(i)) = sub
                                && let Some(s) = self.subagents.get_mut(i)
                            {
                                s.last_text = Some(text.clone());
                            }
                            self.emit(Event::Text { text });
                        }
                        Block::Thinking { thinking, signature } => {
                            if own {
                                self.delta(ModelDelta::BlockStart { index, block: BlockStart::Thinking });
                                self.delta(ModelDelta::Thinking { index, thinking: thinking.clone() });
                                self.delta(ModelDelta::BlockStop { index });
                            }
                            self.emit(Event::Thinking { thinking, signature });
                        }
                        Block::ToolUse { id, name, input } => {
                            // Claude Code runs its tools itself; only what is stored is bounded, so the
                            // log stays readable.
                            let input = if crate::wire::tool_input_too_deep(&input) {
                                crate::wire::too_deep_input_marker()
                            } else {
                                input
                            };
                            if own {
                                self.delta(ModelDelta::BlockStart {
                                    index,
                                    block: BlockStart::ToolUse { id: id.clone(), name: name.clone() },
                                });
                                self.delta(ModelDelta::InputJson { index, partial_json: input.to_string() });
                                self.delta(ModelDelta::BlockStop { index });
                            }
                            self.tool_names.insert(id.clone(), name.clone());
                            self.emit(Event::ToolUse {
                                tool_name: name.clone(),
                                tool_input: input.clone(),
                                tool_use_id: id.clone(),
                            });
                            let task = (name == TASK_TOOL).then(|| {
                                let field = |k: &str| input.get(k).and_then(Value::as_str).map(str::to_string);
                                (field("subagent_type").unwrap_or_else(|| GENERAL_PURPOSE.into()), field("description"))
                            });
                            self.emit(Event::PreToolUse {
                                tool_name: name,
                                tool_input: input,
                                tool_use_id: id.clone(),
                            });
                            // The CLI runs a `Task` call's subagent itself; its lines name the call as
                            // their `parent_tool_use_id`.
                            if let Some((subagent_type, description)) = task
                                && !self.subagents.iter().any(|s| s.id == id)
                            {
                                self.emit(Event::SubagentStart {
                                    subagent_id: id.clone(),
                                    subagent_type,
                                    description: description.unwrap_or_default(),
                                    tool_use_id: id.clone(),
                                });
                                self.subagents.push(OpenSubagent { id, last_text: None });
                            }
                        }
                    }
                }
            }
            Line::User { results, .. } => {
                for r in results {
                    let name = self.tool_names.get(&r.tool_use_id).cloned().unwrap_or_else(|| "unknown".into());
                    self.emit(Event::PostToolUse {
                        tool_name: name.clone(),
                        result: Some(clip(&r.content, POST_TOOL_RESULT_CHARS)),
                        is_error: r.is_error,
                        tool_use_id: r.tool_use_id.clone(),
                    });
                    let sub = self.subagents.iter().position(|s| s.id == r.tool_use_id);
                    let done = sub.map(|i| (self.subagents.remove(i), r.is_error, r.content.clone()));
                    self.emit(Event::ToolResult {
                        tool_use_id: r.tool_use_id,
                        tool_name: name,
                        content: r.content,
                        is_error: r.is_error,
                    });
                    // The `Task` call's result: its subagent has ended.
                    if let Some((sub, is_error, content)) = done {
                        let reason = if is_error { EndReason::Error } else { EndReason::EndTurn };
                        self.subagent_stop(sub, reason, Some(content)).await;
                    }
                }
            }
            Line::Result(r) => self.result = Some(*r),
            Line::Ignored => {}
            Line::Unknown { kind } => self
                .warn(format!("Claude Code printed a stream-json line of unknown type '{kind}'; it was skipped"), text),
            Line::NotJson { error } => self.warn(
                format!("Claude Code printed a line that is not JSON ({error}); it was skipped: {}", clip(text, 200)),
                text,
            ),
        }
    }

    /// Reads output for up to [`CATCH_UP`] until the tool call `id` has been seen, so a hook's events
    /// follow the `ToolUse` they belong to.
    async fn catch_up(&mut self, id: &str, reader: &mut BufReader<tokio::process::ChildStdout>, line: &mut Vec<u8>) {
        let deadline = Instant::now() + CATCH_UP;
        while !self.tool_names.contains_key(id) && !self.eof && self.result.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match tokio::time::timeout(left, reader.read_until(b'\n', line)).await {
                Err(_) => break,
                Ok(Ok(0)) => {
                    if !line.is_empty() {
                        self.process_line(line).await;
                        line.clear();
                    }
                    self.eof = true;
                }
                Ok(Ok(_)) => {
                    self.process_line(line).await;
                    line.clear();
                }
                Ok(Err(_)) => self.eof = true,
            }
        }
    }

    /// Answers one hook call from the CLI with the Rust hooks' decisions.
    async fn handle_hook(
        &mut self,
        req: RelayRequest,
        reader: &mut BufReader<tokio::process::ChildStdout>,
        line: &mut Vec<u8>,
    ) -> Result<(), RunError> {
        let v: Value = match serde_json::from_str(&req.raw) {
            Ok(v) => v,
            Err(e) => {
                self.warn(
                    format!("the hook relay received input that is not JSON ({e}); the hook was skipped"),
                    &req.raw,
                );
                let _ = req.reply.send(HookReply::default());
                return Ok(());
            }
        };
        let name = v.get("hook_event_name").and_then(Value::as_str).unwrap_or_default();
        let Ok(event) = name.parse::<HookEvent>() else {
            let _ = req.reply.send(HookReply::default());
            return Ok(());
        };
        let mut hin = self.hook_input(event);
        hin.tool_name = v.get("tool_name").and_then(Value::as_str).map(str::to_string);
        hin.tool_input = v.get("tool_input").cloned();
        hin.tool_use_id = v.get("tool_use_id").and_then(Value::as_str).map(str::to_string);
        match event {
            HookEvent::PreToolUse => {
                if let Some(id) = hin.tool_use_id.clone() {
                    self.catch_up(&id, reader, line).await;
                }
            }
            HookEvent::PostToolUse => {
                let (out, is_error) = tool_response_text(&v);
                hin.tool_output = Some(out);
                hin.tool_is_error = Some(is_error);
            }
            HookEvent::UserPromptSubmit => hin.prompt = v.get("prompt").and_then(Value::as_str).map(str::to_string),
            HookEvent::Stop | HookEvent::SubagentStop => {
                self.stop_hooks_ran = true;
                hin.stop_reason = Some("end_turn".into());
            }
            HookEvent::PreCompact => {}
        }
        let decisions = self.run_hooks(&mut hin).await;
        let may_allow = hin.tool_name.as_deref().is_some_and(|t| self.allowed.contains(t));
        let (reply, note) = reply_for(event, &decisions, may_allow);
        if let Some(note) = note {
            self.warn(note, "");
        }
        // The hook's events are stored before the CLI acts on the answer.
        self.commit().await?;
        let _ = req.reply.send(reply);
        Ok(())
    }
}
