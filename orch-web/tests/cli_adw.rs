//! `orch adw`: types, a run followed to its end, listings, details, and bad input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;

use serde_json::Value;
use support::{json_lines, run_in, text};

/// A scripted team for plan → build → review: each agent writes its file, then answers; the plan agent
/// gives its plan's path when asked; the reviewer passes.
const TEAM: &str = r##"{"steps": [
  {"agent": "^plan-", "when": "ONLY", "repeat": true, "reply": [{"type": "text", "text": "`./specs/parser.md`"}]},
  {"agent": "^plan-", "when": "^Wrote", "repeat": true, "reply": [{"type": "text", "text": "Plan written."}]},
  {"agent": "^plan-", "repeat": true, "reply": [{"type": "tool_use", "name": "Write", "input": {"file_path": "specs/parser.md", "content": "# Plan\n"}}]},
  {"agent": "^build-", "when": "^Wrote", "repeat": true, "reply": [{"type": "text", "text": "Built."}]},
  {"agent": "^build-", "repeat": true, "reply": [{"type": "tool_use", "name": "Write", "input": {"file_path": "src/parser.rs", "content": "fn parse() {}\n"}}]},
  {"agent": "^review-", "when": "^Wrote", "repeat": true, "reply": [{"type": "text", "text": "VERDICT: PASS"}]},
  {"agent": "^review-", "repeat": true, "reply": [{"type": "tool_use", "name": "Write", "input": {"file_path": "app_review/review_1.md", "content": "VERDICT: PASS\n"}}]}
]}"##;

fn model(dir: &Path) -> String {
    let file = dir.join("team.json");
    std::fs::write(&file, TEAM).unwrap();
    format!("scripted:{}", file.display())
}

#[test]
fn a_run_is_followed_to_its_end_then_listed_and_shown() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = run_in(d, &["adw", "types"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let types = text(&out.stdout);
    for t in ["plan_build ", "plan_build_review ", "plan_build_review_fix "] {
        assert!(types.contains(t), "{types}");
    }
    let m = model(d);
    let out = run_in(d, &["--model", &m, "adw", "start", "plan_build_review", "--prompt", "Add a parser", "--wait"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let id = stdout.lines().next().unwrap().trim().to_string();
    assert_eq!(id.len(), 36, "the run's id comes first: {stdout}");
    let stderr = text(&out.stderr);
    assert!(stderr.contains("Starting plan step") && stderr.contains("review success"), "{stderr}");
    assert!(d.join("specs/parser.md").exists() && d.join("src/parser.rs").exists());

    let runs = json_lines(&run_in(d, &["adw", "list", "--json"]).stdout);
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["id"], id.as_str());
    assert_eq!(runs[0]["status"], "completed");
    assert_eq!(runs[0]["output_data"]["verdict"], "PASS");
    let shown: Value = serde_json::from_slice(&run_in(d, &["adw", "show", &id, "--json"]).stdout).unwrap();
    let steps: Vec<&str> = shown["steps"].as_array().unwrap().iter().map(|s| s["step"].as_str().unwrap()).collect();
    assert_eq!(steps, ["plan", "build", "review"]);
    assert!(
        shown["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["status"] == "success" && s["events"].as_u64().unwrap() > 0)
    );
    let out = run_in(d, &["adw", "show", &id]);
    assert!(text(&out.stdout).contains("completed (3/3 steps"), "{}", text(&out.stdout));
}

#[test]
fn bad_input_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let m = model(d);
    let out = run_in(d, &["--model", &m, "adw", "start", "plan_build", "--prompt", "x"]);
    assert_eq!(out.status.code(), Some(2), "no --wait: {}", text(&out.stderr));
    assert!(text(&out.stderr).contains("--wait"));
    let out = run_in(d, &["--model", &m, "adw", "start", "nope", "--prompt", "x", "--wait"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unknown workflow type 'nope'"), "{}", text(&out.stderr));
    let out = run_in(d, &["adw", "show", "not-an-id"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run_in(d, &["adw", "show", "0192d9b4-7c1e-7000-8000-000000000001"]);
    assert_eq!(out.status.code(), Some(2), "not found: {}", text(&out.stderr));
    assert!(text(&out.stderr).contains("not found"), "{}", text(&out.stderr));
    std::fs::create_dir_all(d.join(".orch/workflows")).unwrap();
    std::fs::write(
        d.join(".orch/workflows/bad.toml"),
        "[[steps]]\nname = \"a\"\nprompt = \"p\"\nwhen = 'steps.zz == \"x\"'\n",
    )
    .unwrap();
    let out = run_in(d, &["adw", "types"]);
    assert!(out.status.success());
    let listing = text(&out.stdout);
    assert!(listing.contains("BROKEN") && listing.contains("bad.toml:4"), "{listing}");
    assert!(listing.contains("plan_build "), "the good types stay listed: {listing}");
}
