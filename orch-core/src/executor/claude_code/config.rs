//! The executor's configuration: the binary, its environment, permissions, hooks and the system prompt.

use std::path::PathBuf;

#[cfg(doc)]
use super::relay_client;
#[cfg(doc)]
use crate::executor::RunError;

/// The environment variable naming the `claude` binary.
pub const BIN_ENV: &str = "ORCH_CLAUDE_BIN";

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
