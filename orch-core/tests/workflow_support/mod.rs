//! Helpers shared by the workflow tests: what a scripted model reads off a request, and git.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use orch_core::model::ModelRequest;
use orch_core::wire::{ContentBlock, Role};

/// The text of the request's last message.
pub fn last_text(req: &ModelRequest) -> String {
    req.messages.last().and_then(|m| m.last_text()).unwrap_or("").to_string()
}

/// Whether the request's last message carries a tool result (the model's call came back).
pub fn after_tool(req: &ModelRequest) -> bool {
    req.messages
        .last()
        .is_some_and(|m| m.role == Role::User && m.content.iter().any(|b| matches!(b, ContentBlock::ToolResult { .. })))
}

/// Runs git in `dir` (with an identity of its own) and returns its stdout; panics when it fails.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .args(["-c", "user.name=test", "-c", "user.email=test@localhost"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}
