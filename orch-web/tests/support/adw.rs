//! Scripted teams for the workflow tests, and a run started then caught mid-build.

use std::path::Path;

use super::{Db, text};

/// A scripted team for plan → build → review: each agent writes its file, then answers; the plan agent
/// gives its plan's path when asked; the reviewer passes.
pub const TEAM: &str = r##"{"steps": [
  {"agent": "^plan-", "when": "ONLY", "repeat": true, "reply": [{"type": "text", "text": "`./specs/parser.md`"}]},
  {"agent": "^plan-", "when": "^Wrote", "repeat": true, "reply": [{"type": "text", "text": "Plan written."}]},
  {"agent": "^plan-", "repeat": true, "reply": [{"type": "tool_use", "name": "Write", "input": {"file_path": "specs/parser.md", "content": "# Plan\n"}}]},
  {"agent": "^build-", "when": "^Wrote", "repeat": true, "reply": [{"type": "text", "text": "Built."}]},
  {"agent": "^build-", "repeat": true, "reply": [{"type": "tool_use", "name": "Write", "input": {"file_path": "src/parser.rs", "content": "fn parse() {}\n"}}]},
  {"agent": "^review-", "when": "^Wrote", "repeat": true, "reply": [{"type": "text", "text": "VERDICT: PASS"}]},
  {"agent": "^review-", "repeat": true, "reply": [{"type": "tool_use", "name": "Write", "input": {"file_path": "app_review/review_1.md", "content": "VERDICT: PASS\n"}}]}
]}"##;

/// Writes [`TEAM`] into `dir` and returns its `--model` spec.
pub fn model(dir: &Path) -> String {
    let file = dir.join("team.json");
    std::fs::write(&file, TEAM).unwrap();
    format!("scripted:{}", file.display())
}

/// A plan agent as in TEAM; a build agent whose first reply (once per process) runs a command that
/// sleeps unless its marker exists, then answers.
pub const SLOW_BUILD: &str = r##"{"steps": [
  {"agent": "^plan-", "when": "ONLY", "repeat": true, "reply": [{"type": "text", "text": "`./specs/parser.md`"}]},
  {"agent": "^plan-", "when": "^Wrote", "repeat": true, "reply": [{"type": "text", "text": "Plan written."}]},
  {"agent": "^plan-", "repeat": true, "reply": [{"type": "tool_use", "name": "Write", "input": {"file_path": "specs/parser.md", "content": "# Plan\n"}}]},
  {"agent": "^build-", "reply": [{"type": "tool_use", "name": "Bash", "input": {"command": "test -f built.marker || (touch built.marker && sleep 30)"}}]},
  {"agent": "^build-", "repeat": true, "reply": [{"type": "text", "text": "Built."}]}
]}"##;

/// Writes [`SLOW_BUILD`] into `dir` and returns its `--model` spec.
pub fn slow_model(dir: &Path) -> String {
    let file = dir.join("slow.json");
    std::fs::write(&file, SLOW_BUILD).unwrap();
    format!("scripted:{}", file.display())
}

/// Waits until the slow build step's command runs (its marker exists).
pub fn wait_for_build(d: &Path) {
    super::wait_for_file_or_dir(
        &d.join("built.marker"),
        std::time::Duration::from_secs(60),
        "the build step's command",
    );
}

/// Starts `orch adw start plan_build --wait` on [`SLOW_BUILD`] in `d` on `db` as a child process and
/// returns it, the run's id and the model spec once the build step's command is running.
pub fn start_slow_build(db: &Db, d: &Path) -> (std::process::Child, String, String) {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let m = slow_model(d);
    let mut child = db
        .orch(d)
        .args(["--model", &m, "adw", "start", "plan_build", "--prompt", "Add a parser", "--wait"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    let id = first.trim().to_string();
    assert_eq!(id.len(), 36, "the id comes first: {first:?}");
    wait_for_build(d);
    (child, id, m)
}

/// The runs of `orch adw list --json`.
pub fn runs(db: &Db, d: &Path) -> Vec<serde_json::Value> {
    let out = db.run(d, &["adw", "list", "--json"]);
    assert!(out.status.success(), "orch adw list: {}", text(&out.stderr));
    super::json_lines(&out.stdout)
}
