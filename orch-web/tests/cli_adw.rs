//! `orch adw`: types, a run followed to its end, listings, details, and bad input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::Value;
use support::adw::{model, start_slow_build};
use support::{Db, json_lines, run_in, text};

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
    let out = run_in(d, &["--model", &m, "adw", "start", "plan_build", "--prompt", " ", "--wait"]);
    assert_eq!(out.status.code(), Some(2), "an empty prompt: {}", text(&out.stderr));
    assert!(text(&out.stderr).contains("--prompt is empty"), "{}", text(&out.stderr));
    let out = run_in(d, &["--model", &m, "adw", "start", "nope", "--prompt", "x"]);
    assert_eq!(out.status.code(), Some(2), "an unknown type is refused before anything is started");
    assert!(!d.join(".orch/logs").exists(), "no detached process was started");
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

#[test]
fn a_run_killed_mid_build_resumes_without_running_the_plan_again() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (mut child, id, m) = start_slow_build(&Db::Sqlite, d);
    child.kill().unwrap();
    child.wait().unwrap();
    let runs = json_lines(&run_in(d, &["adw", "list", "--json"]).stdout);
    assert_eq!(runs[0]["status"], "in_progress", "a killed run is left in progress");
    assert_eq!(runs[0]["stale"], true, "its process is gone");
    assert!(text(&run_in(d, &["adw", "list"]).stdout).contains(" stale "), "the listing says so");

    let out = run_in(d, &["--model", &m, "adw", "resume", &id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let runs = json_lines(&run_in(d, &["adw", "list", "--json"]).stdout);
    assert_eq!(runs[0]["status"], "completed");
    assert_eq!(runs[0]["completed_steps"], 2);
    let events = json_lines(&run_in(d, &["events", "--json"]).stdout);
    let starts = |step: &str| events.iter().filter(|e| e["type"] == "StepStart" && e["step"] == step).count();
    assert_eq!(starts("plan"), 1, "the plan step ran once");
    assert_eq!(starts("build"), 1, "the build step continued on its agent");
    let plan_agent =
        events.iter().find(|e| e["type"] == "StepStart" && e["step"] == "plan").unwrap()["agent_id"].clone();
    let prompts = events.iter().filter(|e| e["type"] == "UserPromptSubmit" && e["agent_id"] == plan_agent).count();
    assert_eq!(prompts, 2, "the plan agent got its command and the plan-path question, once each");
    // A finished run cannot be resumed.
    let out = run_in(d, &["--model", &m, "adw", "resume", &id]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("already ended"), "{}", text(&out.stderr));
}

/// The orchestrator starts a workflow with start_adw, `orch chat` waits for it, and a later chat
/// checks it with check_adw (by the run's name, which the scripted orchestrator knows).
const ORCHESTRATED: &str = r##"{"steps": [
  {"agent": "^orchestrator$", "when": "^run the parser workflow", "reply": [{"type": "tool_use", "name": "start_adw", "input": {"name_of_adw": "parser-adw", "workflow_type": "plan_build", "prompt": "Add a parser"}}]},
  {"agent": "^orchestrator$", "when": "Started AI Developer Workflow", "reply": [{"type": "text", "text": "Started it."}]},
  {"agent": "^orchestrator$", "when": "^how is it going", "reply": [{"type": "tool_use", "name": "check_adw", "input": {"adw_id": "parser-adw"}}]},
  {"agent": "^orchestrator$", "when": "ADW Status", "reply": [{"type": "text", "text": "It is done."}]},
  {"agent": "^plan-", "when": "ONLY", "repeat": true, "reply": [{"type": "text", "text": "`./specs/parser.md`"}]},
  {"agent": "^plan-", "when": "^Wrote", "repeat": true, "reply": [{"type": "text", "text": "Plan written."}]},
  {"agent": "^plan-", "repeat": true, "reply": [{"type": "tool_use", "name": "Write", "input": {"file_path": "specs/parser.md", "content": "# Plan\n"}}]},
  {"agent": "^build-", "when": "^Wrote", "repeat": true, "reply": [{"type": "text", "text": "Built."}]},
  {"agent": "^build-", "repeat": true, "reply": [{"type": "tool_use", "name": "Write", "input": {"file_path": "src/parser.rs", "content": "fn parse() {}\n"}}]}
]}"##;

#[test]
fn the_orchestrator_starts_a_workflow_and_checks_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let file = d.join("orch.json");
    std::fs::write(&file, ORCHESTRATED).unwrap();
    let m = format!("scripted:{}", file.display());
    let out = run_in(d, &["--model", &m, "chat", "run the parser workflow"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("Started it."), "{}", text(&out.stdout));
    assert!(d.join("src/parser.rs").exists(), "chat waited for the workflow it started");
    let runs = json_lines(&run_in(d, &["adw", "list", "--json"]).stdout);
    assert_eq!(runs.len(), 1);
    assert_eq!((runs[0]["name"].as_str(), runs[0]["status"].as_str()), (Some("parser-adw"), Some("completed")));
    assert!(runs[0]["orchestrator_id"].is_string(), "the run belongs to the orchestrator");

    let out = run_in(d, &["--model", &m, "chat", "how is it going"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("It is done."), "{}", text(&out.stdout));
    let events = json_lines(&run_in(d, &["events", "--json"]).stdout);
    let check =
        events.iter().find(|e| e["type"] == "ToolResult" && e["tool_name"] == "check_adw").expect("check_adw ran");
    let content = check["content"].as_str().unwrap();
    assert!(content.contains("📊 ADW Status: parser-adw"), "{content}");
    assert!(content.contains("Status: ✅ completed") && content.contains("Progress: 2/2 steps"), "{content}");
    assert!(content.contains("[build] StepEnd"), "{content}");
}

#[test]
fn a_run_in_another_process_is_cancelled_then_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (mut child, id, m) = start_slow_build(&Db::Sqlite, d);
    let out = run_in(d, &["adw", "cancel", &id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("Cancelled workflow run"), "{}", text(&out.stdout));
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "the process running it reports the cancel");
    let runs = json_lines(&run_in(d, &["adw", "list", "--json"]).stdout);
    assert_eq!(runs[0]["status"], "cancelled");
    assert_eq!(runs[0]["error_step"], "build");

    let out = run_in(d, &["--model", &m, "adw", "resume", &id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let runs = json_lines(&run_in(d, &["adw", "list", "--json"]).stdout);
    assert_eq!(runs[0]["status"], "completed");
    let events = json_lines(&run_in(d, &["events", "--json"]).stdout);
    let attempts: Vec<u64> = events
        .iter()
        .filter(|e| e["type"] == "StepStart" && e["step"] == "build")
        .map(|e| e["attempt"].as_u64().unwrap())
        .collect();
    assert_eq!(attempts, [1, 2], "the cancelled step ran again with a new agent");
    assert_eq!(events.iter().filter(|e| e["type"] == "StepStart" && e["step"] == "plan").count(), 1);
}
