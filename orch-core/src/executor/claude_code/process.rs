//! The `claude` child process: its command line, starting it, its stderr, and killing its process group.

use std::path::Path;
use std::time::Duration;

use tokio::io::AsyncReadExt;

use super::{BIN_ENV, ClaudeCodeExecutor, SystemPromptMode};
use crate::executor::{RunError, TurnContext};
use crate::runtime::kill_process_group;

/// Bytes of stderr kept for error messages.
const STDERR_TAIL: usize = 4096;

impl ClaudeCodeExecutor {
    pub(super) fn args(
        &self,
        cx: &TurnContext,
        model: Option<&str>,
        prompt: &str,
        settings: Option<&Path>,
    ) -> Vec<String> {
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

    pub(super) fn spawn_error(&self, agent: &str, e: &std::io::Error) -> RunError {
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

/// Kills the process group on drop unless disarmed (a dropped turn must not leave the CLI running).
pub(super) struct GroupGuard {
    pub(super) pgid: Option<u32>,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.pgid.take() {
            kill_process_group(pid);
        }
    }
}

/// Kills the child's whole process group (the CLI, its hooks and tool processes) and reaps the child.
pub(super) async fn kill_and_reap(child: &mut tokio::process::Child, guard: &mut GroupGuard) {
    // The guard's pgid, not `child.id()`: the child may be reaped already while its group lives on.
    if let Some(pid) = guard.pgid.take() {
        kill_process_group(pid);
    }
    let _ = child.start_kill();
    let _ = tokio::time::timeout(Duration::from_secs(2), child.wait()).await;
}

pub(super) async fn read_tail(stderr: Option<tokio::process::ChildStderr>) -> String {
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
