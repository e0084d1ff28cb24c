//! The Claude Code executor: runs an agent turn with the `claude` CLI in `-p` mode and records what its
//! `stream-json` output says as the same events a native turn records. Unix only (process groups and a
//! Unix socket for hooks); behind the `tokio` feature.
//!
//! # The command
//!
//! `claude -p PROMPT --output-format stream-json --verbose [--model M] [--resume SESSION]
//! [--permission-mode MODE] [--allowedTools A,B] [--append-system-prompt=TEXT] --max-turns N
//! [--settings FILE] [extra args]`, spawned with tokio in the agent's working dir, stdin `/dev/null`
//! (a piped, silent stdin makes the CLI wait 3 s), its own process group, and the parent's environment
//! plus [`ClaudeCodeConfig::env`].
//!
//! - Binary: [`ClaudeCodeConfig::binary`], by default `$ORCH_CLAUDE_BIN` or `claude` (looked up on `PATH`).
//! - Model: the agent's model `claude-code` runs the CLI's default; `claude-code:M` passes `--model M`
//!   unchanged. orch's own aliases are deliberately *not* applied: the CLI resolves its own (`sonnet`,
//!   `opus`, …) to the newest models it knows, which orch's table may lag behind.
//! - Session: the `session_id` of the `init` line (and of the `result` line) is saved as the agent's
//!   `session_id`; the next turn passes `--resume SESSION`. Resuming needs the same working dir and the
//!   same `CLAUDE_CONFIG_DIR`/`HOME` as the first run (the CLI keeps sessions there).
//! - Permissions: [`ClaudeCodeConfig::permission_mode`] (default `acceptEdits`) plus `--allowedTools`
//!   with the names of the turn's tools (the runner's registry: `Bash,Edit,Glob,Grep,Read,Write` by
//!   default), which pre-approves them; this works as root. When the run restricts tools
//!   ([`RunOptions::allowed_tools`](crate::executor::RunOptions)), the mode is `dontAsk`, so tools outside
//!   the list are refused (Claude Code still lets read-only tools run). `bypassPermissions` as root makes
//!   the CLI exit at once unless `IS_SANDBOX=1` is in the environment: set it in
//!   [`ClaudeCodeConfig::env`] only inside a real sandbox.
//! - System prompt: appended to Claude Code's own with `--append-system-prompt` (default, keeps its tool
//!   instructions), or replacing it with `--system-prompt` ([`SystemPromptMode::Replace`], the seed's
//!   SDK behaviour). Neither flag is exercised by the loopback observations in the spec; both are in
//!   the CLI's documented flag list.
//! - `--max-turns` from the run options.
//!
//! # Events
//!
//! Each stdout line is parsed as it arrives; events are committed whenever the CLI has nothing more
//! buffered, so followers see progress live:
//!
//! | stream-json | events |
//! | --- | --- |
//! | `system`/`init` | `SystemLog` INFO (session, model, tools); the session id is saved |
//! | `system`/`api_retry` | `ModelRetry` |
//! | `system`/`compact_boundary` | `PreCompact` |
//! | `assistant` text / thinking / tool_use | `Text` / `Thinking` / `ToolUse` + `PreToolUse` |
//! | `assistant` from `<synthetic>` (API error) | `ModelError` |
//! | `user` tool_result | `PostToolUse` + `ToolResult` |
//! | `result` | `AgentCostsUpdated` (usage incl. cache tokens, cost = `total_cost_usd`, added atomically), `Stop`, `Result`, status `idle` (or `blocked` when `is_error`) |
//! | not JSON, unknown `type` | `SystemLog` WARNING (at most 20 per turn); the line is skipped |
//!
//! Before the process starts the turn records `AgentStatusChanged` (→ executing) and `UserPromptSubmit`,
//! and runs the Rust `UserPromptSubmit` hooks in process (deny / stop end the turn without starting the
//! CLI; added context is appended to the prompt), exactly as the native loop does.
//!
//! An `is_error` result (API error, `error_max_turns`, `error_during_execution`,
//! `error_max_budget_usd`) leaves the agent `blocked` and returns [`RunError::Model`]; so does an exit
//! without a result line (the error quotes the exit status and the end of stderr). A missing binary is
//! a [`RunError::Config`] naming `ORCH_CLAUDE_BIN` and the path, recorded nowhere (nothing ran). An
//! interrupt kills the CLI's whole process group (hook processes and tool children included), reaps
//! it, and records `Stop { reason: "interrupted" }`, leaving the agent idle; the CLI reports cost only
//! in its result line, so an interrupted turn's cost is not known.
//!
//! # Hooks
//!
//! When the runner has hooks, the turn starts a relay (see [`relay_client`]) and passes `--settings FILE`
//! whose `PreToolUse`/`PostToolUse` (matcher `*`) and `Stop` hooks run
//! `<relay command> --socket PATH`. The executor runs the matching Rust hooks for each call, records
//! `HookInvoked` events (committed before answering, so they precede the tool's effects), and answers in
//! Claude Code's hook output format:
//!
//! | decision | answer |
//! | --- | --- |
//! | PreToolUse `Deny` | `hookSpecificOutput.permissionDecision: "deny"` + `permissionDecisionReason` (the tool result is exactly the reason) |
//! | PreToolUse `RewriteInput` | `hookSpecificOutput.updatedInput`, with `permissionDecision: "allow"` only for tools the run pre-approves |
//! | `AddContext` (Pre/PostToolUse) | `hookSpecificOutput.additionalContext` |
//! | `Stop` (Pre/PostToolUse) | `continue: false` + `stopReason` |
//! | Stop hook `Deny` | `decision: "block"` + `reason` (the model continues with the reason) |
//!
//! What the CLI cannot honour exactly: `ReplaceOutput` (the CLI always gives the model the tool's real
//! output; the replacement is sent as additional context after it, and a WARNING is recorded);
//! `Stop` at `PreToolUse` also skips the tool (native runs it, then stops); `Deny` at `PostToolUse` is
//! ignored (as in native). `updatedInput` and `additionalContext` are documented by Claude Code but not
//! covered by the loopback observations. Stop hooks the CLI did not call (interrupt, failures) are run
//! in process when the turn ends, as native does.

mod relay;
mod stream;

pub use relay::{HookReply, RelayError, relay_client};

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::sync::mpsc;

use self::relay::{RelayRequest, RelayServer, hook_event, reply_for, tool_response_text};
use self::stream::{Block, Line, ResultLine, parse_line};
use super::native::task_slug;
use super::{AgentExecutor, RunError, RunOutcome, TurnContext};
use crate::hook::{HookDecision, HookEvent, HookInput};
use crate::model::{BlockStart, ModelDelta, ModelError};
use crate::store::{Change, SavedState, StepCommit};
use crate::wire::{AgentStatus, EndReason, Event, EventKeys, LogLevel, NewEvent, Timestamp, Usage, now};

/// The environment variable naming the `claude` binary.
pub const BIN_ENV: &str = "ORCH_CLAUDE_BIN";

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
/// Bytes of stderr kept for error messages.
const STDERR_TAIL: usize = 4096;

/// How the agent's system prompt reaches Claude Code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SystemPromptMode {
    /// `--append-system-prompt`: after Claude Code's own prompt, which keeps its tool instructions.
    #[default]
    Append,
    /// `--system-prompt`: instead of Claude Code's own prompt (what the seed's SDK call did).
    Replace,
}

/// How to run the `claude` CLI.
#[derive(Clone)]
pub struct ClaudeCodeConfig {
    /// The `claude` executable: a path, or a name looked up on `PATH`. Default `$ORCH_CLAUDE_BIN`, else `claude`.
    pub binary: PathBuf,
    /// Extra environment for the CLI (and, through it, its hooks and tools), e.g. `ANTHROPIC_API_KEY`,
    /// `CLAUDE_CONFIG_DIR`, `CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1`.
    pub env: Vec<(String, String)>,
    /// The hook relay command, before `--socket PATH`. Default: when this program is the `orch`
    /// binary, its own path and `hook-relay`; otherwise empty. A program embedding orch-core sets it to
    /// an `orch` binary (`["/path/to/orch", "hook-relay"]`) or to its own command that calls
    /// [`relay_client`]. Empty: a turn with hooks fails with a [`RunError::Config`] rather than running
    /// the tools unguarded.
    pub relay_command: Vec<String>,
    /// `--permission-mode` when the run does not restrict tools (default `acceptEdits`; `None`: not passed).
    pub permission_mode: Option<String>,
    /// How the agent's system prompt is passed.
    pub system_prompt_mode: SystemPromptMode,
    /// Arguments added after orch's own (e.g. `--setting-sources`, `project`).
    pub extra_args: Vec<String>,
    /// `timeout` (seconds) of the generated hook entries: how long the CLI waits for a Rust hook.
    pub hook_timeout_secs: u64,
}

impl ClaudeCodeConfig {
    /// The defaults, with the binary from `ORCH_CLAUDE_BIN` if set.
    pub fn from_env() -> Self {
        let binary = std::env::var_os(BIN_ENV).filter(|v| !v.is_empty()).map(PathBuf::from);
        // Only the `orch` binary is known to have the `hook-relay` subcommand: never run another
        // program with those arguments.
        let relay_command = match std::env::current_exe() {
            Ok(exe) if exe.file_stem().is_some_and(|s| s == "orch") => {
                vec![exe.to_string_lossy().into_owned(), "hook-relay".to_string()]
            }
            _ => Vec::new(),
        };
        Self {
            binary: binary.unwrap_or_else(|| PathBuf::from("claude")),
            env: Vec::new(),
            relay_command,
            permission_mode: Some("acceptEdits".to_string()),
            system_prompt_mode: SystemPromptMode::Append,
            extra_args: Vec::new(),
            hook_timeout_secs: 600,
        }
    }

    /// Uses this binary.
    pub fn with_binary(mut self, binary: impl Into<PathBuf>) -> Self {
        self.binary = binary.into();
        self
    }

    /// Adds an environment variable for the CLI.
    pub fn with_env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Uses this hook relay command (before `--socket PATH`), e.g. `["/usr/bin/orch", "hook-relay"]`.
    pub fn with_relay_command(mut self, command: Vec<String>) -> Self {
        self.relay_command = command;
        self
    }
}

impl std::fmt::Debug for ClaudeCodeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Environment values may be secrets (API keys): only their names are shown.
        let env: Vec<&str> = self.env.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("ClaudeCodeConfig")
            .field("binary", &self.binary)
            .field("env", &env)
            .field("relay_command", &self.relay_command)
            .field("permission_mode", &self.permission_mode)
            .field("system_prompt_mode", &self.system_prompt_mode)
            .field("extra_args", &self.extra_args)
            .field("hook_timeout_secs", &self.hook_timeout_secs)
            .finish()
    }
}

impl Default for ClaudeCodeConfig {
    fn default() -> Self {
        Self::from_env()
    }
}

/// Runs agent turns with the Claude Code CLI. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct ClaudeCodeExecutor {
    config: ClaudeCodeConfig,
}

impl ClaudeCodeExecutor {
    /// An executor with this configuration.
    pub fn new(config: ClaudeCodeConfig) -> Self {
        Self { config }
    }

    /// Its configuration.
    pub fn config(&self) -> &ClaudeCodeConfig {
        &self.config
    }

    /// The `--model` value for an agent's model string: `None` for `claude-code`, `Some(M)` for
    /// `claude-code:M`; an error for any other provider.
    pub fn model_arg(agent_model: &str) -> Result<Option<String>, String> {
        let m = agent_model.trim();
        if m == "claude-code" || m == "claude-code:" {
            return Ok(None);
        }
        match m.strip_prefix("claude-code:") {
            Some(target) => Ok(Some(target.to_string())),
            None => {
                Err(format!("its model '{agent_model}' is not a Claude Code model (claude-code or claude-code:MODEL)"))
            }
        }
    }

    fn args(&self, cx: &TurnContext, model: Option<&str>, prompt: &str, settings: Option<&Path>) -> Vec<String> {
        let mut a: Vec<String> = vec!["-p".into()];
        // The prompt is positional; one starting with '-' goes after `--` at the end instead.
        let dash_prompt = prompt.starts_with('-');
        if !dash_prompt {
            a.push(prompt.to_string());
        }
        a.extend(["--output-format", "stream-json", "--verbose"].map(String::from));
        if let Some(m) = model {
            a.extend(["--model".to_string(), m.to_string()]);
        }
        if let Some(s) = cx.agent.session_id.as_deref().filter(|s| !s.is_empty()) {
            a.extend(["--resume".to_string(), s.to_string()]);
        }
        let mode =
            if cx.options.allowed_tools.is_some() { Some("dontAsk") } else { self.config.permission_mode.as_deref() };
        if let Some(mode) = mode {
            a.extend(["--permission-mode".to_string(), mode.to_string()]);
        }
        let tools = cx.tools.names();
        if !tools.is_empty() {
            a.extend(["--allowedTools".to_string(), tools.join(",")]);
        }
        if let Some(sp) = cx.agent.system_prompt.as_deref().filter(|s| !s.trim().is_empty()) {
            let flag = match self.config.system_prompt_mode {
                SystemPromptMode::Append => "--append-system-prompt",
                SystemPromptMode::Replace => "--system-prompt",
            };
            a.push(format!("{flag}={sp}"));
        }
        a.extend(["--max-turns".to_string(), cx.options.max_turns.to_string()]);
        if let Some(s) = settings {
            a.extend(["--settings".to_string(), s.to_string_lossy().into_owned()]);
        }
        a.extend(self.config.extra_args.iter().cloned());
        if dash_prompt {
            a.extend(["--".to_string(), prompt.to_string()]);
        }
        a
    }

    fn spawn_error(&self, agent: &str, e: &std::io::Error) -> RunError {
        let bin = self.config.binary.display();
        let message = match e.kind() {
            std::io::ErrorKind::NotFound => format!(
                "cannot start the Claude Code CLI: '{bin}' was not found; install it or set {BIN_ENV} to the path of the `claude` executable"
            ),
            std::io::ErrorKind::PermissionDenied => format!(
                "cannot start the Claude Code CLI: '{bin}' is not executable (permission denied); check {BIN_ENV}"
            ),
            _ => format!("cannot start the Claude Code CLI '{bin}' (from {BIN_ENV} or the default `claude`): {e}"),
        };
        RunError::Config { agent: agent.to_string(), message }
    }
}

#[async_trait]
impl AgentExecutor for ClaudeCodeExecutor {
    fn name(&self) -> &str {
        "claude-code"
    }

    async fn run_turn(&self, cx: TurnContext, prompt: Option<String>) -> Result<RunOutcome, RunError> {
        // Claude Code turns are not resumed mid-way: the next prompt continues the session.
        let Some(prompt) = prompt else {
            return Err(RunError::NothingToResume(cx.agent.name.clone()));
        };
        // The CLI runs the project's settings hooks itself; relaying them too would run them twice.
        let cx = TurnContext { hooks: cx.hooks.without_settings_hooks(), ..cx };
        let model = Self::model_arg(&cx.agent.model)
            .map_err(|message| RunError::Config { agent: cx.agent.name.clone(), message })?;
        if !cx.hooks.is_empty() && self.config.relay_command.is_empty() {
            return Err(RunError::Config {
                agent: cx.agent.name.clone(),
                message: "the run has hooks but ClaudeCodeConfig::relay_command is empty, so Claude Code cannot \
                          call them; set it to an `orch` binary and `hook-relay`"
                    .into(),
            });
        }
        if !Path::new(&cx.agent.working_dir).is_dir() {
            return Err(RunError::Config {
                agent: cx.agent.name.clone(),
                message: format!("its working directory '{}' does not exist", cx.agent.working_dir),
            });
        }
        let mut names: Vec<String> = cx.tools.names().into_iter().map(str::to_string).collect();
        names.sort();
        let mut run = Run {
            exec: self,
            cx: &cx,
            keys: EventKeys {
                agent_id: Some(cx.agent.id),
                orchestrator_id: cx.agent.orchestrator_id,
                workflow_id: cx.agent.workflow_id,
                step: cx.agent.workflow_step.clone(),
                task_slug: None,
            },
            model: model.clone().unwrap_or_else(|| "claude-code".to_string()),
            allowed: names.into_iter().collect(),
            buf: Vec::new(),
            changes: Vec::new(),
            status: None,
            usage: None,
            session_id: cx.agent.session_id.clone(),
            session_dirty: false,
            init_seen: false,
            tool_names: HashMap::new(),
            message_ids: HashSet::new(),
            last_text: None,
            warnings: 0,
            stop_hooks_ran: false,
            model_error_emitted: false,
            result: None,
            eof: false,
            block_index: 0,
            started: Instant::now(),
            slug: String::new(),
        };
        run.run(prompt, model).await
    }
}

fn clip(s: &str, n: usize) -> String {
    crate::text::clip_chars(s, n, "")
}

/// Kills the process group on drop unless disarmed (a dropped turn must not leave the CLI running).
struct GroupGuard {
    pgid: Option<u32>,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.pgid.take() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Kills the child's whole process group (the CLI, its hooks and tool processes) and reaps the child.
async fn kill_and_reap(child: &mut tokio::process::Child, guard: &mut GroupGuard) {
    if let Some(pid) = guard.pgid.take() {
        let _ = tokio::process::Command::new("kill")
            .arg("-KILL")
            .arg("--")
            .arg(format!("-{pid}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await;
    }
    let _ = child.start_kill();
    let _ = tokio::time::timeout(Duration::from_secs(2), child.wait()).await;
}

async fn read_tail(stderr: Option<tokio::process::ChildStderr>) -> String {
    let Some(mut r) = stderr else { return String::new() };
    let mut kept: Vec<u8> = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                kept.extend_from_slice(&buf[..n]);
                if kept.len() > 2 * STDERR_TAIL {
                    kept.drain(..kept.len() - STDERR_TAIL);
                }
            }
        }
    }
    let start = kept.len().saturating_sub(STDERR_TAIL);
    String::from_utf8_lossy(&kept[start..]).trim().to_string()
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

enum End {
    Result,
    Eof,
    Interrupted,
}

struct Run<'a> {
    exec: &'a ClaudeCodeExecutor,
    cx: &'a TurnContext,
    keys: EventKeys,
    /// Model name for events.
    model: String,
    /// Tools the run pre-approves.
    allowed: HashSet<String>,
    buf: Vec<NewEvent>,
    /// Entity changes to store with the next commit (the turn's prompt row).
    changes: Vec<Change>,
    status: Option<AgentStatus>,
    usage: Option<(Usage, f64)>,
    session_id: Option<String>,
    session_dirty: bool,
    init_seen: bool,
    /// Tool call id → tool name.
    tool_names: HashMap<String, String>,
    /// Assistant message ids seen (model calls, when no result line says).
    message_ids: HashSet<String>,
    last_text: Option<String>,
    warnings: u32,
    stop_hooks_ran: bool,
    model_error_emitted: bool,
    result: Option<ResultLine>,
    eof: bool,
    block_index: usize,
    started: Instant,
    slug: String,
}

impl Run<'_> {
    fn emit(&mut self, event: Event) {
        self.buf.push(NewEvent::new(self.keys.clone(), event));
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
        if self.buf.is_empty()
            && self.changes.is_empty()
            && self.status.is_none()
            && self.usage.is_none()
            && !self.session_dirty
        {
            return Ok(());
        }
        let state = if self.session_dirty {
            self.session_dirty = false;
            Some(SavedState { state: None, session_id: self.session_id.clone() })
        } else {
            None
        };
        let step = StepCommit {
            agent_id: self.cx.agent.id,
            status: self.status.take(),
            usage: self.usage.take(),
            state,
            messages: Vec::new(),
            changes: std::mem::take(&mut self.changes),
            events: std::mem::take(&mut self.buf),
        };
        self.cx.commit(step).await?;
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
        let row = crate::wire::Prompt {
            id: crate::wire::new_id(),
            agent_id: Some(self.cx.agent.id),
            task_slug: Some(self.slug.clone()),
            author: self.cx.options.author,
            prompt_text: prompt.to_string(),
            summary: None,
            session_id: self.cx.agent.session_id.clone(),
            created_at: at,
        };
        self.changes.push(Change::InsertPrompt(Box::new(row)));
    }

    async fn run(&mut self, prompt: String, model: Option<String>) -> Result<RunOutcome, RunError> {
        let at = now();
        self.slug = self.cx.options.task_slug.clone().unwrap_or_else(|| task_slug(&prompt, at));
        self.keys.task_slug = Some(self.slug.clone());
        let old = self.cx.agent.status;
        if old != AgentStatus::Executing {
            self.emit(Event::AgentStatusChanged { old_status: old, new_status: AgentStatus::Executing });
        }
        self.status = Some(AgentStatus::Executing);
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
                                self.process_line(&line);
                                line.clear();
                            }
                            self.eof = true;
                        }
                        Ok(_) => {
                            self.process_line(&line);
                            line.clear();
                        }
                        Err(e) => {
                            self.warn(format!("cannot read Claude Code's output: {e}"), "");
                            self.eof = true;
                        }
                    }
                    if reader.buffer().is_empty() || self.buf.len() >= MAX_BATCH || self.eof {
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
        self.emit(Event::AgentCostsUpdated {
            model: self.model.clone(),
            usage: r.usage,
            cost_usd: r.total_cost_usd,
            total_usage,
            total_cost_usd: self.cx.agent.total_cost_usd + r.total_cost_usd,
        });
        self.usage = Some((r.usage, r.total_cost_usd));
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

    /// Ends the turn: Stop hooks the CLI did not run, `Stop` and `Result` events, status idle or blocked.
    async fn finish(&mut self, e: Ending) -> Result<RunOutcome, RunError> {
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
        self.emit(Event::AgentStatusChanged { old_status: AgentStatus::Executing, new_status });
        self.status = Some(new_status);
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

    /// Records what one stdout line says.
    fn process_line(&mut self, raw: &[u8]) {
        let text = String::from_utf8_lossy(raw);
        let text = text.trim_end_matches(['\n', '\r']);
        if text.trim().is_empty() {
            return;
        }
        match parse_line(text) {
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
            Line::Compact { pre_tokens } => self.emit(Event::PreCompact { tokens_before: pre_tokens }),
            Line::Assistant { blocks, api_error, message_id } => {
                if let Some(id) = message_id {
                    self.message_ids.insert(id);
                }
                if let Some(message) = api_error {
                    self.model_error_emitted = true;
                    self.emit(Event::ModelError { model: self.model.clone(), message, retryable: false });
                }
                for b in blocks {
                    let index = self.block_index;
                    self.block_index += 1;
                    match b {
                        Block::Text(text) => {
                            self.delta(ModelDelta::BlockStart { index, block: BlockStart::Text });
                            self.delta(ModelDelta::Text { index, text: text.clone() });
                            self.delta(ModelDelta::BlockStop { index });
                            self.last_text = Some(text.clone());
                            self.emit(Event::Text { text });
                        }
                        Block::Thinking { thinking, signature } => {
                            self.delta(ModelDelta::BlockStart { index, block: BlockStart::Thinking });
                            self.delta(ModelDelta::Thinking { index, thinking: thinking.clone() });
                            self.delta(ModelDelta::BlockStop { index });
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
                            self.delta(ModelDelta::BlockStart {
                                index,
                                block: BlockStart::ToolUse { id: id.clone(), name: name.clone() },
                            });
                            self.delta(ModelDelta::InputJson { index, partial_json: input.to_string() });
                            self.delta(ModelDelta::BlockStop { index });
                            self.tool_names.insert(id.clone(), name.clone());
                            self.emit(Event::ToolUse {
                                tool_name: name.clone(),
                                tool_input: input.clone(),
                                tool_use_id: id.clone(),
                            });
                            self.emit(Event::PreToolUse { tool_name: name, tool_input: input, tool_use_id: id });
                        }
                    }
                }
            }
            Line::User { results } => {
                for r in results {
                    let name = self.tool_names.get(&r.tool_use_id).cloned().unwrap_or_else(|| "unknown".into());
                    self.emit(Event::PostToolUse {
                        tool_name: name.clone(),
                        result: Some(clip(&r.content, POST_TOOL_RESULT_CHARS)),
                        is_error: r.is_error,
                        tool_use_id: r.tool_use_id.clone(),
                    });
                    self.emit(Event::ToolResult {
                        tool_use_id: r.tool_use_id,
                        tool_name: name,
                        content: r.content,
                        is_error: r.is_error,
                    });
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
                        self.process_line(line);
                        line.clear();
                    }
                    self.eof = true;
                }
                Ok(Ok(_)) => {
                    self.process_line(line);
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
        let Some(event) = hook_event(name) else {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn model_args() {
        assert_eq!(ClaudeCodeExecutor::model_arg("claude-code"), Ok(None));
        assert_eq!(ClaudeCodeExecutor::model_arg("claude-code:sonnet"), Ok(Some("sonnet".into())));
        assert!(ClaudeCodeExecutor::model_arg("anthropic:claude").is_err());
    }
}
