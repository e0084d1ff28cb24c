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
//! | `system`/`compact_boundary` (`compact_metadata {trigger, pre_tokens}`) | `PreCompact`, then `Compacted` (see below) |
//! | `user` text "This session is being continued from a previous conversation…" (or `isCompactSummary`) after a `compact_boundary` | the `summary` of that `Compacted` |
//! | `assistant` text / thinking / tool_use | `Text` / `Thinking` / `ToolUse` + `PreToolUse` |
//! | `assistant` tool_use `Task` (id X) | also `SubagentStart { subagent_id: X, subagent_type, description, tool_use_id: X }` |
//! | `assistant` / `user` with `parent_tool_use_id: X` (the subagent's own calls) | the same events, with the agent's keys; never the agent's last text, turns or context |
//! | `assistant` from `<synthetic>` (API error) | `ModelError` |
//! | `user` tool_result | `PostToolUse` + `ToolResult` |
//! | `user` tool_result of `Task` call X | also the Rust `SubagentStop` hooks (in process), then `SubagentStop { subagent_id: X, tool_use_id: X, reason: end_turn or error, cost_usd: 0 }` |
//! | `result` | `AgentCostsUpdated` (usage incl. cache tokens, cost = `total_cost_usd`, added atomically; context, see below), `Stop`, `Result`, status `idle` (or `blocked` when `is_error`) |
//! | not JSON, unknown `type` | `SystemLog` WARNING (at most 20 per turn); the line is skipped |
//!
//! Compaction: the CLI compacts by itself and says only that it did (`trigger` `auto`/`manual`,
//! `pre_tokens`), so `Compacted` has `tokens_before: pre_tokens`, no replaced messages (`replaced` empty,
//! counts 0), the summary when the CLI prints its summary message (else empty), and `tokens_after` the
//! context of the first model call after it (0 when the turn makes none). It is recorded once the summary
//! and that call have been read, or at the first other line, or when the turn ends; never dropped. The Rust
//! `PreCompact` hooks do not run (the CLI gives no chance to veto or instruct its compaction).
//!
//! Subagents: the CLI runs a `Task` call's subagent in its own process and prints the subagent's messages
//! with the call's id as `parent_tool_use_id`; the subagent's id in events is that call id. Its cost is in
//! the turn's `total_cost_usd` (the CLI reports none per subagent), so `SubagentStop.cost_usd` is 0.
//! `SubagentStop` hooks see the subagent's last text (else the `Task` result) as `last_message`; their
//! decisions are recorded only (the CLI has already returned the result to the agent). A `Task` whose
//! result never came (interrupt, crash) gets its `SubagentStop` when the turn ends, with reason
//! `interrupted` or `error`.
//!
//! Context: each of the agent's own `assistant` lines carries its call's `message.usage`; the context used
//! is the last one's `input_tokens + cache_read_input_tokens + cache_creation_input_tokens` (its
//! `output_tokens` is the stream's first count, not the final one). The window is
//! `modelUsage.<model>.contextWindow` of the result line (the turn's model, else the largest), else orch's
//! default price table's. Both go in the result's `AgentCostsUpdated` and on the agent row (also when the
//! turn ends without a result line).
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
//! # Tools the CLI does not have
//!
//! With the `mcp` feature, tools of the turn other than the CLI's own (an orchestrator's management
//! tools, tools a host added) are served to the CLI over MCP for the turn (`--mcp-config`, named
//! `mcp__orch__<tool>`, or `mcp__mgmt__<tool>` for an orchestrator); see `mcp_bridge`. Without it they
//! are only listed in `--allowedTools`, which the CLI cannot use.
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

mod config;
#[cfg(feature = "mcp")]
mod mcp_bridge;
mod process;
mod turn;

pub use config::{BIN_ENV, ClaudeCodeConfig, SystemPromptMode};

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Instant;

use async_trait::async_trait;

use self::turn::Run;
use super::{AgentExecutor, RunError, RunOutcome, TurnContext};

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
}

#[async_trait]
impl AgentExecutor for ClaudeCodeExecutor {
    fn name(&self) -> &str {
        "claude-code"
    }

    async fn run_turn(&self, cx: TurnContext, prompt: Option<String>) -> Result<RunOutcome, RunError> {
        // Tools the CLI does not have (an orchestrator's management tools) reach it over MCP.
        #[cfg(feature = "mcp")]
        if mcp_bridge::wanted(&cx) {
            return mcp_bridge::run(self, cx, prompt).await;
        }
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
            keys: super::agent_keys(&cx.agent, None),
            model: model.clone().unwrap_or_else(|| "claude-code".to_string()),
            allowed: names.into_iter().collect(),
            rec: super::recorder::TurnRecorder::new(),
            session_id: cx.agent.session_id.clone(),
            session_dirty: false,
            init_seen: false,
            tool_names: HashMap::new(),
            message_ids: HashSet::new(),
            last_text: None,
            subagents: Vec::new(),
            compact: None,
            context_used: None,
            context_window: None,
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
