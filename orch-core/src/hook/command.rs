//! Claude Code settings hooks for native agents: the `hooks` section of `<cwd>/.claude/settings.json`
//! and `<cwd>/.claude/settings.local.json`, run as shell commands with Claude Code's stdin JSON,
//! exit codes and JSON stdout decisions, so a team's existing hook scripts guard orch agents unchanged.
//!
//! ```json
//! {"hooks": {"PreToolUse": [{"matcher": "Bash",
//!   "hooks": [{"type": "command", "command": "./guard.sh", "timeout": 60}]}]}}
//! ```
//!
//! How a command's result becomes a [`HookDecision`]:
//! - exit 0 with JSON on stdout: `continue: false` → `Stop` (with `stopReason`);
//!   `hookSpecificOutput.permissionDecision: "deny"` or `decision: "block"` → `Deny` (for PostToolUse,
//!   where the tool already ran, `AddContext` with the reason); `permissionDecision: "ask"` (PreToolUse)
//!   → `Ask`, its `permissionDecisionReason` the question; `hookSpecificOutput.updatedInput`
//!   (or a top-level `updatedInput`) → `RewriteInput`; `hookSpecificOutput.additionalContext` →
//!   `AddContext`; anything else → `Continue`. Only the first of these that applies is returned.
//! - exit 0 without JSON: `Continue` (for UserPromptSubmit, non-empty stdout is added as context).
//! - exit 2: `Deny` with the trimmed stderr as the reason (for Stop hooks: "do not stop, because …";
//!   for PostToolUse: `AddContext`, as the tool already ran).
//! - any other exit code, a timeout (the process group is killed) or a failure to start: a
//!   [`HookError`], which the registry records as an `error` decision and treats as `Continue`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Hook, HookDecision, HookError, HookEvent, HookInput, HookRegistry};

/// Default timeout of a command hook, in seconds (Claude Code's default).
pub const DEFAULT_TIMEOUT_SECS: u64 = 60;

/// Bytes of stdout and of stderr kept from a hook command, each.
const OUTPUT_LIMIT: usize = 1 << 20;

/// Characters of stderr quoted in an error.
const STDERR_TAIL: usize = 500;

/// A hook that runs a shell command (`sh -c <command>`) in the agent's working directory, the way
/// Claude Code runs `type: "command"` hooks.
#[derive(Debug, Clone)]
pub struct CommandHook {
    name: String,
    command: String,
    timeout: Duration,
    from_settings: bool,
}

impl CommandHook {
    /// A hook running `command` through `sh -c`, killed after `timeout`.
    pub fn new(command: impl Into<String>, timeout: Duration) -> Self {
        let command = command.into();
        let name = format!("command: {}", clip(&command, 120));
        Self { name, command, timeout, from_settings: false }
    }

    /// Replaces the name shown in `HookInvoked` events.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Marks the hook as loaded from `.claude/settings*.json` (see [`Hook::is_claude_settings_hook`]).
    pub fn from_settings(mut self) -> Self {
        self.from_settings = true;
        self
    }

    /// The command string.
    pub fn command(&self) -> &str {
        &self.command
    }

    /// The timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

fn clip(s: &str, max: usize) -> String {
    crate::text::clip_chars(s, max, "…")
}

fn tail(s: &str, max: usize) -> String {
    let s = s.trim();
    let n = s.chars().count();
    if n <= max { s.to_string() } else { format!("…{}", s.chars().skip(n - max).collect::<String>()) }
}

/// The JSON a Claude Code hook receives on stdin for `input`.
pub fn stdin_json(input: &HookInput) -> Value {
    let mut m = Map::new();
    m.insert("session_id".into(), json!(input.agent_id.to_string()));
    m.insert("transcript_path".into(), json!(""));
    m.insert("cwd".into(), json!(input.working_dir));
    m.insert("permission_mode".into(), json!("bypassPermissions"));
    m.insert("hook_event_name".into(), json!(input.event.as_str()));
    match input.event {
        HookEvent::PreToolUse | HookEvent::PostToolUse => {
            m.insert("tool_name".into(), json!(input.tool_name.clone().unwrap_or_default()));
            m.insert("tool_input".into(), input.tool_input.clone().unwrap_or_else(|| json!({})));
            m.insert("tool_use_id".into(), json!(input.tool_use_id.clone().unwrap_or_default()));
            if input.event == HookEvent::PostToolUse {
                m.insert("tool_response".into(), json!(input.tool_output.clone().unwrap_or_default()));
                m.insert("is_error".into(), json!(input.tool_is_error.unwrap_or(false)));
            }
        }
        HookEvent::UserPromptSubmit => {
            m.insert("prompt".into(), json!(input.prompt.clone().unwrap_or_default()));
        }
        HookEvent::Stop | HookEvent::SubagentStop => {
            m.insert("stop_hook_active".into(), json!(false));
            if let Some(r) = &input.stop_reason {
                m.insert("stop_reason".into(), json!(r));
            }
            if let Some(text) = &input.last_message {
                m.insert("last_assistant_message".into(), json!(text));
            }
            if let Some(id) = &input.subagent_id {
                m.insert("agent_id".into(), json!(id));
            }
        }
        HookEvent::PreCompact => {
            m.insert("trigger".into(), json!(input.trigger.as_deref().unwrap_or("auto")));
            m.insert("custom_instructions".into(), json!(input.custom_instructions.clone().unwrap_or_default()));
        }
    }
    Value::Object(m)
}

/// Turns an exit-0 stdout into a decision (see the module docs).
fn decide_from_stdout(event: HookEvent, stdout: &str) -> HookDecision {
    let trimmed = stdout.trim();
    let Ok(Value::Object(v)) = serde_json::from_str::<Value>(trimmed) else {
        if event == HookEvent::UserPromptSubmit && !trimmed.is_empty() {
            return HookDecision::AddContext { context: trimmed.to_string() };
        }
        return HookDecision::Continue;
    };
    let text = |o: &Map<String, Value>, k: &str| o.get(k).and_then(Value::as_str).map(str::to_string);
    if v.get("continue").and_then(Value::as_bool) == Some(false) {
        let reason = text(&v, "stopReason").unwrap_or_else(|| "stopped by a hook".into());
        return HookDecision::Stop { reason };
    }
    let specific = v.get("hookSpecificOutput").and_then(Value::as_object).cloned().unwrap_or_default();
    let block = |reason: String| {
        if event == HookEvent::PostToolUse {
            HookDecision::AddContext { context: reason }
        } else {
            HookDecision::Deny { reason }
        }
    };
    if specific.get("permissionDecision").and_then(Value::as_str) == Some("deny") {
        let reason = text(&specific, "permissionDecisionReason").unwrap_or_else(|| "denied by a hook".into());
        return block(reason);
    }
    if specific.get("permissionDecision").and_then(Value::as_str) == Some("ask") && event == HookEvent::PreToolUse {
        let question = text(&specific, "permissionDecisionReason")
            .filter(|q| !q.trim().is_empty())
            .unwrap_or_else(|| "a hook asks a person to approve this tool call".into());
        return HookDecision::Ask { question };
    }
    if v.get("decision").and_then(Value::as_str) == Some("block") {
        let reason = text(&v, "reason").unwrap_or_else(|| "blocked by a hook".into());
        return block(reason);
    }
    if let Some(input) = specific.get("updatedInput").or_else(|| v.get("updatedInput"))
        && input.is_object()
        && matches!(event, HookEvent::PreToolUse)
    {
        return HookDecision::RewriteInput { input: input.clone() };
    }
    if let Some(context) = text(&specific, "additionalContext").filter(|c| !c.is_empty()) {
        return HookDecision::AddContext { context };
    }
    HookDecision::Continue
}

async fn read_capped<R: tokio::io::AsyncRead + Unpin>(mut r: R) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = OUTPUT_LIMIT.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
    kept
}

/// How a hook command ended.
struct Finished {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl CommandHook {
    async fn run(&self, cwd: &Path, stdin: Vec<u8>, env: &[(&str, String)]) -> Result<Finished, HookError> {
        let mut cmd = tokio::process::Command::new("sh");
        cmd.arg("-c")
            .arg(&self.command)
            .current_dir(cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        #[cfg(unix)]
        cmd.process_group(0);
        let mut child = cmd
            .spawn()
            .map_err(|e| HookError(format!("could not start `sh -c {}` in {}: {e}", self.command, cwd.display())))?;
        let child_stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        // A hook that does not read its stdin must not block us: write in the background, ignore EPIPE.
        let in_task = tokio::spawn(async move {
            if let Some(mut w) = child_stdin {
                let _ = w.write_all(&stdin).await;
                let _ = w.shutdown().await;
            }
        });
        let out_task = tokio::spawn(async move {
            match stdout {
                Some(s) => read_capped(s).await,
                None => Vec::new(),
            }
        });
        let err_task = tokio::spawn(async move {
            match stderr {
                Some(s) => read_capped(s).await,
                None => Vec::new(),
            }
        });
        let status = match tokio::time::timeout(self.timeout, child.wait()).await {
            Ok(status) => status.map_err(|e| HookError(format!("waiting for the hook command failed: {e}")))?,
            Err(_) => {
                crate::runtime::kill_child_group(&mut child);
                let _ = child.wait().await;
                in_task.abort();
                out_task.abort();
                err_task.abort();
                return Err(HookError(format!(
                    "hook command timed out after {} s (killed): {}",
                    self.timeout.as_secs_f64(),
                    clip(&self.command, 200)
                )));
            }
        };
        in_task.abort();
        // Grandchildren still holding the pipes open could keep the readers waiting; bound that wait.
        let grace = Duration::from_secs(2);
        let out = tokio::time::timeout(grace, out_task).await.ok().and_then(Result::ok).unwrap_or_default();
        let err = tokio::time::timeout(grace, err_task).await.ok().and_then(Result::ok).unwrap_or_default();
        Ok(Finished {
            code: status.code(),
            stdout: String::from_utf8_lossy(&out).into_owned(),
            stderr: String::from_utf8_lossy(&err).into_owned(),
        })
    }
}

#[async_trait]
impl Hook for CommandHook {
    fn name(&self) -> &str {
        &self.name
    }

    fn is_claude_settings_hook(&self) -> bool {
        self.from_settings
    }

    async fn call(&self, input: &HookInput) -> Result<HookDecision, HookError> {
        let stdin = serde_json::to_vec(&stdin_json(input))
            .map_err(|e| HookError(format!("could not encode the hook input: {e}")))?;
        let cwd = PathBuf::from(&input.working_dir);
        let env =
            [("CLAUDE_PROJECT_DIR", input.working_dir.clone()), ("CLAUDE_CODE_SESSION_ID", input.agent_id.to_string())];
        let done = self.run(&cwd, stdin, &env).await?;
        match done.code {
            Some(0) => Ok(decide_from_stdout(input.event, &done.stdout)),
            Some(2) => {
                let reason = done.stderr.trim();
                let reason = if reason.is_empty() { "blocked by a hook (exit 2)" } else { reason };
                Ok(if input.event == HookEvent::PostToolUse {
                    HookDecision::AddContext { context: reason.to_string() }
                } else {
                    HookDecision::Deny { reason: reason.to_string() }
                })
            }
            Some(code) => {
                Err(HookError(format!("hook command exited with code {code}: {}", tail(&done.stderr, STDERR_TAIL))))
            }
            None => Err(HookError(format!("hook command was killed by a signal: {}", tail(&done.stderr, STDERR_TAIL)))),
        }
    }
}

/// Something wrong in a settings file; the offending file or entry is skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", file.display())]
pub struct SettingsProblem {
    /// The settings file.
    pub file: PathBuf,
    /// What was wrong and what was skipped.
    pub message: String,
}

/// One command hook read from a settings file.
#[derive(Debug, Clone)]
pub struct SettingsHook {
    /// When it runs.
    pub event: HookEvent,
    /// Tool-name regex (anchored by the registry); `None` for all tools.
    pub matcher: Option<String>,
    /// The hook.
    pub hook: CommandHook,
    /// The file it came from.
    pub source: PathBuf,
}

/// The settings files read, in order: `.claude/settings.json`, then `.claude/settings.local.json`.
pub fn settings_files(cwd: &Path) -> [PathBuf; 2] {
    let dir = cwd.join(".claude");
    [dir.join("settings.json"), dir.join("settings.local.json")]
}

/// Reads the command hooks of one settings file's text.
pub fn parse_settings(file: &Path, text: &str) -> (Vec<SettingsHook>, Vec<SettingsProblem>) {
    let mut hooks = Vec::new();
    let mut problems = Vec::new();
    let mut problem = |message: String| problems.push(SettingsProblem { file: file.to_path_buf(), message });
    let root: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            problem(format!("invalid JSON ({e}); file skipped"));
            return (hooks, problems);
        }
    };
    let Some(root) = root.as_object() else {
        problem("not a JSON object; file skipped".into());
        return (hooks, problems);
    };
    let Some(by_event) = root.get("hooks") else { return (hooks, problems) };
    let Some(by_event) = by_event.as_object() else {
        problem("\"hooks\" is not an object; file skipped".into());
        return (hooks, problems);
    };
    for (event_name, groups) in by_event {
        let event = match event_name.parse::<HookEvent>() {
            Ok(event) => event,
            Err(e) => {
                problem(format!("{e}; skipped"));
                continue;
            }
        };
        let Some(groups) = groups.as_array() else {
            problem(format!("hooks.{event_name} is not a list; skipped"));
            continue;
        };
        for (gi, group) in groups.iter().enumerate() {
            let at = format!("hooks.{event_name}[{gi}]");
            let Some(group) = group.as_object() else {
                problem(format!("{at} is not an object; skipped"));
                continue;
            };
            let matcher = match group.get("matcher") {
                None | Some(Value::Null) => None,
                Some(Value::String(m)) if m.is_empty() || m == "*" => None,
                Some(Value::String(m)) => Some(m.clone()),
                Some(_) => {
                    problem(format!("{at}.matcher is not a string; skipped"));
                    continue;
                }
            };
            let Some(entries) = group.get("hooks").and_then(Value::as_array) else {
                problem(format!("{at}.hooks is missing or not a list; skipped"));
                continue;
            };
            for (hi, entry) in entries.iter().enumerate() {
                let at = format!("{at}.hooks[{hi}]");
                let Some(entry) = entry.as_object() else {
                    problem(format!("{at} is not an object; skipped"));
                    continue;
                };
                match entry.get("type").and_then(Value::as_str) {
                    Some("command") => {}
                    Some(other) => {
                        problem(format!("{at}: hook type \"{other}\" is not supported (only \"command\"); skipped"));
                        continue;
                    }
                    None => {
                        problem(format!("{at}: missing \"type\"; skipped"));
                        continue;
                    }
                }
                let Some(command) = entry.get("command").and_then(Value::as_str).filter(|c| !c.trim().is_empty())
                else {
                    problem(format!("{at}: missing or empty \"command\"; skipped"));
                    continue;
                };
                let timeout = match entry.get("timeout") {
                    None | Some(Value::Null) => DEFAULT_TIMEOUT_SECS as f64,
                    Some(t) => match t.as_f64().filter(|t| t.is_finite() && *t > 0.0) {
                        Some(t) => t,
                        None => {
                            problem(format!("{at}: \"timeout\" must be a positive number of seconds; skipped"));
                            continue;
                        }
                    },
                };
                hooks.push(SettingsHook {
                    event,
                    matcher: matcher.clone(),
                    hook: CommandHook::new(command, Duration::from_secs_f64(timeout.min(86_400.0))).from_settings(),
                    source: file.to_path_buf(),
                });
            }
        }
    }
    (hooks, problems)
}

/// Reads the command hooks of `<cwd>/.claude/settings.json` and then `<cwd>/.claude/settings.local.json`.
/// Missing files are fine; a file that cannot be read or parsed is reported and skipped, never fatal.
pub fn load_settings_hooks(cwd: &Path) -> (Vec<SettingsHook>, Vec<SettingsProblem>) {
    let mut hooks = Vec::new();
    let mut problems = Vec::new();
    for file in settings_files(cwd) {
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                problems.push(SettingsProblem { file: file.clone(), message: format!("cannot read ({e}); skipped") });
                continue;
            }
        };
        let (h, p) = parse_settings(&file, &text);
        hooks.extend(h);
        problems.extend(p);
    }
    (hooks, problems)
}

/// Registers the command hooks of `cwd`'s Claude Code settings into `registry`, then its permission
/// rules (`permissions.deny` / `permissions.ask`, see [`super::permissions`]) as one more PreToolUse
/// hook, and returns the problems found (bad files, unsupported events or hook types, invalid matcher
/// regexes, bad rules), each of which skipped only what it names.
pub fn register_settings_hooks(registry: &mut HookRegistry, cwd: &Path) -> Vec<SettingsProblem> {
    let (hooks, mut problems) = load_settings_hooks(cwd);
    for h in hooks {
        if let Err(e) = registry.register_arc(h.event, h.matcher.as_deref(), Arc::new(h.hook)) {
            problems.push(SettingsProblem { file: h.source, message: format!("{e}; hook skipped") });
        }
    }
    problems.extend(super::permissions::register_permission_rules(registry, cwd));
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdout_decisions() {
        let deny = r#"{"hookSpecificOutput":{"hookEventName":"PreToolUse","permissionDecision":"deny","permissionDecisionReason":"R"}}"#;
        assert_eq!(decide_from_stdout(HookEvent::PreToolUse, deny), HookDecision::Deny { reason: "R".into() });
        let block = r#"{"decision":"block","reason":"keep going"}"#;
        assert_eq!(decide_from_stdout(HookEvent::Stop, block), HookDecision::Deny { reason: "keep going".into() });
        assert_eq!(
            decide_from_stdout(HookEvent::PostToolUse, block),
            HookDecision::AddContext { context: "keep going".into() }
        );
        let stop = r#"{"continue":false,"stopReason":"halt"}"#;
        assert_eq!(decide_from_stdout(HookEvent::PreToolUse, stop), HookDecision::Stop { reason: "halt".into() });
        assert_eq!(decide_from_stdout(HookEvent::PreToolUse, "not json"), HookDecision::Continue);
        assert_eq!(
            decide_from_stdout(HookEvent::UserPromptSubmit, "extra\n"),
            HookDecision::AddContext { context: "extra".into() }
        );
        let ask = r#"{"hookSpecificOutput":{"permissionDecision":"ask","permissionDecisionReason":"Q?"}}"#;
        assert_eq!(decide_from_stdout(HookEvent::PreToolUse, ask), HookDecision::Ask { question: "Q?".into() });
        let allow = r#"{"hookSpecificOutput":{"permissionDecision":"allow"}}"#;
        assert_eq!(decide_from_stdout(HookEvent::PreToolUse, allow), HookDecision::Continue);
    }

    #[test]
    fn parse_reports_bad_shapes() {
        let f = Path::new("s.json");
        let (h, p) = parse_settings(f, "{");
        assert!(h.is_empty() && p.len() == 1 && p[0].message.contains("invalid JSON"));
        let (h, p) = parse_settings(f, r#"{"hooks":"notalist"}"#);
        assert!(h.is_empty() && p.len() == 1);
        let text = r#"{"hooks":{"PreToolUse":[{"matcher":"Bash","hooks":[
            {"type":"command","command":"true","timeout":5},{"type":"prompt","prompt":"x"}]}],
            "Notification":[], "Stop":[{"hooks":[{"type":"command","command":"true"}]}]}}"#;
        let (h, p) = parse_settings(f, text);
        assert_eq!(h.len(), 2);
        assert_eq!(h[0].matcher.as_deref(), Some("Bash"));
        assert_eq!(h[0].hook.timeout(), Duration::from_secs(5));
        assert_eq!(h[1].event, HookEvent::Stop);
        assert_eq!(h[1].hook.timeout(), Duration::from_secs(DEFAULT_TIMEOUT_SECS));
        assert_eq!(p.len(), 2, "{p:?}");
    }
}
