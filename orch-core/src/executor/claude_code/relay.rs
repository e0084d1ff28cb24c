//! The hook relay: how Rust hooks run inside a Claude Code turn.
//!
//! For each run with hooks, the executor listens on a Unix domain socket in a fresh private temp dir
//! (mode 0700) and passes the CLI a generated settings file whose `PreToolUse`, `PostToolUse` and `Stop`
//! hooks run `<relay command> --socket <path>` (by default `orch hook-relay --socket <path>`). That
//! process sends the hook's stdin JSON to the socket with [`relay_client`], and prints the answer the
//! executor computed from the Rust hooks, in Claude Code's documented hook output format, exiting with
//! its exit code.
//!
//! Wire format on the socket: the client writes the hook's stdin bytes and shuts its write half; the
//! server answers one JSON object `{"exit_code": 0, "stdout": "...", "stderr": "..."}` ([`HookReply`])
//! and closes.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::hook::{HookDecision, HookEvent};

/// Largest hook input accepted on the socket.
const MAX_REQUEST_BYTES: u64 = 64 * 1024 * 1024;

/// What a hook command prints and how it exits, as Claude Code reads it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HookReply {
    /// Exit code: 0 (stdout may carry a JSON decision) or 2 (blocking, stderr is the reason).
    pub exit_code: i32,
    /// Printed on stdout.
    #[serde(default)]
    pub stdout: String,
    /// Printed on stderr.
    #[serde(default)]
    pub stderr: String,
}

/// The relay could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// Connecting, writing or reading failed (the orch process is gone, or the socket is wrong).
    #[error("cannot reach the orch hook relay at {path}: {source}")]
    Io {
        /// The socket.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// The relay closed without a valid answer (its run ended meanwhile).
    #[error("the orch hook relay at {path} gave no valid answer: {message}")]
    BadReply {
        /// The socket.
        path: PathBuf,
        /// Details.
        message: String,
    },
}

/// The client side of the relay, run by the `orch hook-relay --socket PATH` command: sends the hook's
/// stdin JSON to the executor's socket and returns what to print and the exit code.
pub fn relay_client(socket: &Path, stdin_json: &str) -> Result<HookReply, RelayError> {
    let io = |source| RelayError::Io { path: socket.to_path_buf(), source };
    let mut stream = UnixStream::connect(socket).map_err(io)?;
    stream.write_all(stdin_json.as_bytes()).map_err(io)?;
    stream.shutdown(std::net::Shutdown::Write).map_err(io)?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).map_err(io)?;
    serde_json::from_slice(&answer)
        .map_err(|e| RelayError::BadReply { path: socket.to_path_buf(), message: e.to_string() })
}

/// A hook call received on the socket, waiting for its answer.
pub(crate) struct RelayRequest {
    /// The hook's stdin JSON.
    pub raw: String,
    /// Where the answer goes.
    pub reply: oneshot::Sender<HookReply>,
}

/// The listening side: a private temp dir holding the socket and the settings file. Dropping it stops
/// listening and removes the dir.
pub(crate) struct RelayServer {
    dir: PathBuf,
    socket: PathBuf,
    stop: Arc<AtomicBool>,
}

impl RelayServer {
    /// Listens on a new socket; every hook call is sent to `tx`.
    pub fn start(tx: mpsc::UnboundedSender<RelayRequest>) -> std::io::Result<Self> {
        let name = format!("orch-cc-{}", crate::wire::new_id().simple());
        let mut base = std::env::temp_dir();
        // Unix socket paths are limited to about 100 bytes.
        if base.join(&name).join("relay.sock").as_os_str().len() > 100 {
            base = PathBuf::from("/tmp");
        }
        let dir = base.join(name);
        std::fs::create_dir(&dir)?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        let socket = dir.join("relay.sock");
        let listener = match UnixListener::bind(&socket) {
            Ok(l) => l,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let spawned = std::thread::Builder::new().name("orch-cc-relay".into()).spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let tx = tx.clone();
                let _ = std::thread::Builder::new().name("orch-cc-hook".into()).spawn(move || serve(conn, tx));
            }
        });
        if let Err(e) = spawned {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
        Ok(Self { dir, socket, stop })
    }

    /// The socket path.
    #[cfg(test)]
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Writes the settings file that routes the hooks to this relay; returns its path.
    pub fn write_settings(&self, relay_command: &[String], timeout_secs: u64) -> std::io::Result<PathBuf> {
        let path = self.dir.join("settings.json");
        let settings = settings_json(relay_command, &self.socket, timeout_secs);
        std::fs::write(&path, serde_json::to_vec_pretty(&settings).unwrap_or_default())?;
        Ok(path)
    }
}

impl Drop for RelayServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag and ends.
        let _ = UnixStream::connect(&self.socket);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn serve(mut conn: UnixStream, tx: mpsc::UnboundedSender<RelayRequest>) {
    let _ = conn.set_read_timeout(Some(std::time::Duration::from_secs(30)));
    let mut raw = Vec::new();
    if (&mut conn).take(MAX_REQUEST_BYTES).read_to_end(&mut raw).is_err() || raw.is_empty() {
        return;
    }
    let (reply_tx, reply_rx) = oneshot::channel();
    let request = RelayRequest { raw: String::from_utf8_lossy(&raw).into_owned(), reply: reply_tx };
    if tx.send(request).is_err() {
        return;
    }
    // This is a plain thread, not an async context, so blocking here is fine. A dropped sender (the run
    // ended) closes the connection without an answer: the client then lets the tool run.
    if let Ok(reply) = reply_rx.blocking_recv()
        && let Ok(bytes) = serde_json::to_vec(&reply)
    {
        let _ = conn.write_all(&bytes);
    }
}

/// Quotes a word for `sh` (Claude Code runs hook commands through a shell).
pub(crate) fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "_./:=@%+-,".contains(c));
    if plain { s.to_string() } else { format!("'{}'", s.replace('\'', r"'\''")) }
}

/// The generated settings: every tool (`"*"`) for `PreToolUse` and `PostToolUse`, and `Stop`, all
/// running the relay command. The Rust hooks' own matchers are applied by the executor.
pub(crate) fn settings_json(relay_command: &[String], socket: &Path, timeout_secs: u64) -> Value {
    let mut words: Vec<String> = relay_command.iter().map(|w| shell_quote(w)).collect();
    words.push("--socket".into());
    words.push(shell_quote(&socket.to_string_lossy()));
    let hook = json!({"type": "command", "command": words.join(" "), "timeout": timeout_secs});
    json!({"hooks": {
        "PreToolUse": [{"matcher": "*", "hooks": [hook.clone()]}],
        "PostToolUse": [{"matcher": "*", "hooks": [hook.clone()]}],
        "Stop": [{"hooks": [hook]}],
    }})
}

/// The tool output text of a `PostToolUse` input (`tool_response` is a string or a structured object).
pub(crate) fn tool_response_text(v: &Value) -> (String, bool) {
    match v.get("tool_response") {
        None | Some(Value::Null) => (String::new(), false),
        Some(Value::String(s)) => (s.clone(), s.starts_with("Error: ")),
        Some(other) => (other.to_string(), false),
    }
}

/// What the relay answers for the decisions of the Rust hooks at `event`.
///
/// `may_allow`: whether a rewritten input may be sent with `permissionDecision: "allow"` (only for
/// tools the run pre-approves anyway). Returns the reply and, for decisions the CLI cannot honour
/// exactly, a note to record.
pub(crate) fn reply_for(event: HookEvent, decisions: &[HookDecision], may_allow: bool) -> (HookReply, Option<String>) {
    let mut context = Vec::new();
    let mut deny = None;
    let mut rewrite = None;
    let mut stop = None;
    let mut note = None;
    for d in decisions {
        match d {
            HookDecision::Continue => {}
            HookDecision::Deny { reason } => deny = Some(reason.clone()),
            HookDecision::RewriteInput { input } => rewrite = Some(input.clone()),
            HookDecision::AddContext { context: c } => context.push(c.clone()),
            HookDecision::ReplaceOutput { output, .. } => {
                // The CLI cannot replace a built-in tool's output: the model gets the text as context.
                context.push(format!("[A hook replaced this tool's output with the following]\n{output}"));
                note = Some(
                    "Claude Code cannot replace a tool's output from a hook: the replacement was given to the model \
                     as additional context after the original output"
                        .to_string(),
                );
            }
            HookDecision::Stop { reason } => stop = Some(reason.clone()),
            HookDecision::Ask { question } if event == HookEvent::PreToolUse => {
                // The CLI runs in `-p` mode, where nobody answers its own `ask`: the call is denied.
                if deny.is_none() {
                    deny = Some(format!(
                        "needs a person's approval ({question}), which is not supported for claude-code agents yet"
                    ));
                }
                note = Some(
                    "a hook asked a person to approve a tool call of a claude-code agent; orch cannot park a Claude                      Code run yet, so the call was denied"
                        .to_string(),
                );
            }
            HookDecision::Ask { .. } => {}
        }
    }
    let mut out = serde_json::Map::new();
    let mut specific = serde_json::Map::new();
    match event {
        HookEvent::PreToolUse => {
            if let Some(reason) = deny {
                specific.insert("permissionDecision".into(), json!("deny"));
                specific.insert("permissionDecisionReason".into(), json!(reason));
            } else if let Some(input) = rewrite {
                if may_allow {
                    specific.insert("permissionDecision".into(), json!("allow"));
                    specific.insert("permissionDecisionReason".into(), json!("input rewritten by an orch hook"));
                }
                specific.insert("updatedInput".into(), input);
            }
            if !context.is_empty() {
                specific.insert("additionalContext".into(), json!(context.join("\n\n")));
            }
        }
        HookEvent::PostToolUse => {
            // A Deny after the tool ran means nothing (as in the native loop).
            if !context.is_empty() {
                specific.insert("additionalContext".into(), json!(context.join("\n\n")));
            }
        }
        HookEvent::UserPromptSubmit => {
            if let Some(reason) = deny {
                out.insert("decision".into(), json!("block"));
                out.insert("reason".into(), json!(reason));
            } else if !context.is_empty() {
                specific.insert("additionalContext".into(), json!(context.join("\n\n")));
            }
        }
        HookEvent::Stop | HookEvent::SubagentStop => {
            // Denying the stop sends the reason back to the model, which continues.
            if let Some(reason) = deny {
                out.insert("decision".into(), json!("block"));
                out.insert("reason".into(), json!(reason));
            }
            // Stopping at a stop is what happens anyway.
            stop = None;
        }
        HookEvent::PreCompact => {}
    }
    if let Some(reason) = stop {
        out.insert("continue".into(), json!(false));
        out.insert("stopReason".into(), json!(reason));
    }
    if !specific.is_empty() {
        specific.insert("hookEventName".into(), json!(event.as_str()));
        out.insert("hookSpecificOutput".into(), Value::Object(specific));
    }
    let stdout = if out.is_empty() { String::new() } else { Value::Object(out).to_string() };
    (HookReply { exit_code: 0, stdout, stderr: String::new() }, note)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn quotes_for_the_shell() {
        assert_eq!(shell_quote("/usr/bin/orch"), "/usr/bin/orch");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn settings_have_the_documented_shape() {
        let s = settings_json(&["/x/orch".into(), "hook-relay".into()], Path::new("/tmp/d/relay.sock"), 600);
        let pre = &s["hooks"]["PreToolUse"][0];
        assert_eq!(pre["matcher"], "*");
        assert_eq!(pre["hooks"][0]["type"], "command");
        assert_eq!(pre["hooks"][0]["command"], "/x/orch hook-relay --socket /tmp/d/relay.sock");
        assert_eq!(pre["hooks"][0]["timeout"], 600);
        assert!(s["hooks"]["PostToolUse"].is_array());
        assert!(s["hooks"]["Stop"][0]["hooks"].is_array());
    }

    #[test]
    fn decisions_become_documented_outputs() {
        let (r, _) = reply_for(HookEvent::PreToolUse, &[HookDecision::Deny { reason: "no".into() }], true);
        let v: Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(v["hookSpecificOutput"]["hookEventName"], "PreToolUse");
        assert_eq!(v["hookSpecificOutput"]["permissionDecision"], "deny");
        assert_eq!(v["hookSpecificOutput"]["permissionDecisionReason"], "no");
        assert_eq!(r.exit_code, 0);

        let (r, _) = reply_for(HookEvent::PreToolUse, &[HookDecision::RewriteInput { input: json!({"a": 1}) }], false);
        let v: Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(v["hookSpecificOutput"]["updatedInput"], json!({"a": 1}));
        assert!(v["hookSpecificOutput"].get("permissionDecision").is_none());

        let (r, _) = reply_for(HookEvent::Stop, &[HookDecision::Deny { reason: "go on".into() }], true);
        let v: Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(v, json!({"decision": "block", "reason": "go on"}));

        let (r, note) = reply_for(
            HookEvent::PostToolUse,
            &[HookDecision::ReplaceOutput { output: "X".into(), is_error: false }],
            true,
        );
        assert!(note.is_some());
        let v: Value = serde_json::from_str(&r.stdout).unwrap();
        assert!(v["hookSpecificOutput"]["additionalContext"].as_str().unwrap().ends_with('X'));

        let (r, note) = reply_for(HookEvent::PreToolUse, &[HookDecision::Ask { question: "write it?".into() }], true);
        assert!(r.stdout.contains(r#""permissionDecision":"deny""#), "{}", r.stdout);
        assert!(r.stdout.contains("not supported for claude-code agents yet"), "{}", r.stdout);
        assert!(note.is_some());
        let (r, _) = reply_for(HookEvent::PreToolUse, &[HookDecision::Continue], true);
        assert!(r.stdout.is_empty());
    }

    #[tokio::test]
    async fn client_and_server_talk() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let server = RelayServer::start(tx).unwrap();
        let socket = server.socket().to_path_buf();
        let answer = tokio::spawn(async move {
            let req = rx.recv().await.unwrap();
            assert_eq!(req.raw, r#"{"hook_event_name":"Stop"}"#);
            let _ = req.reply.send(HookReply { exit_code: 2, stdout: String::new(), stderr: "why".into() });
        });
        let s2 = socket.clone();
        let reply = tokio::task::spawn_blocking(move || relay_client(&s2, r#"{"hook_event_name":"Stop"}"#))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(reply.exit_code, 2);
        assert_eq!(reply.stderr, "why");
        answer.await.unwrap();
        let dir = socket.parent().unwrap().to_path_buf();
        drop(server);
        assert!(!dir.exists());
        assert!(relay_client(&socket, "{}").is_err());
    }
}
