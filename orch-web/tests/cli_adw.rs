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

/// A plan agent as in TEAM; a build agent whose first reply (once per process) runs a command that
/// sleeps unless its marker exists, then answers.
const SLOW_BUILD: &str = r##"{"steps": [
  {"agent": "^plan-", "when": "ONLY", "repeat": true, "reply": [{"type": "text", "text": "`./specs/parser.md`"}]},
  {"agent": "^plan-", "when": "^Wrote", "repeat": true, "reply": [{"type": "text", "text": "Plan written."}]},
  {"agent": "^plan-", "repeat": true, "reply": [{"type": "tool_use", "name": "Write", "input": {"file_path": "specs/parser.md", "content": "# Plan\n"}}]},
  {"agent": "^build-", "reply": [{"type": "tool_use", "name": "Bash", "input": {"command": "test -f built.marker || (touch built.marker && sleep 30)"}}]},
  {"agent": "^build-", "repeat": true, "reply": [{"type": "text", "text": "Built."}]}
]}"##;

/// Starts `orch adw start plan_build --wait` on [`SLOW_BUILD`] in `d` as a child process and returns
/// it, the run's id and the model spec once the build step's command is running.
fn start_slow_build(d: &Path) -> (std::process::Child, String, String) {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    let file = d.join("slow.json");
    std::fs::write(&file, SLOW_BUILD).unwrap();
    let m = format!("scripted:{}", file.display());
    let mut child = support::orch()
        .arg("--cwd")
        .arg(d)
        .args(["--model", &m, "adw", "start", "plan_build", "--prompt", "Add a parser", "--wait"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    let id = first.trim().to_string();
    assert_eq!(id.len(), 36, "the id comes first: {first:?}");
    let start = Instant::now();
    while !d.join("built.marker").exists() {
        assert!(start.elapsed() < Duration::from_secs(60), "the build step never started its command");
        std::thread::sleep(Duration::from_millis(20));
    }
    (child, id, m)
}

#[test]
fn a_run_killed_mid_build_resumes_without_running_the_plan_again() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (mut child, id, m) = start_slow_build(d);
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
    let (mut child, id, m) = start_slow_build(d);
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

/// Runs git in `dir` with an identity of its own; its stdout.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .args(["-c", "user.name=test", "-c", "user.email=test@localhost"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", text(&out.stderr));
    text(&out.stdout)
}

/// `git status --porcelain` without orch's own files (the store in .orch/, the model scripts).
fn user_status(dir: &Path) -> String {
    git(dir, &["status", "--porcelain"])
        .lines()
        .filter(|l| !l.starts_with("?? .orch/") && !l.ends_with(".json"))
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn two_worktree_runs_at_once_commit_on_their_own_branches_and_leave_the_main_tree_alone() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    git(d, &["init", "-q"]);
    std::fs::write(d.join("README.md"), "# project\n").unwrap();
    git(d, &["add", "README.md"]);
    git(d, &["commit", "-q", "-m", "first"]);
    std::fs::write(d.join("README.md"), "# project\nwork in progress\n").unwrap();
    let m = model(d);
    // The store exists before the runs (so both processes open it, not create it).
    assert!(run_in(d, &["adw", "list"]).status.success());
    let head = git(d, &["rev-parse", "HEAD"]);
    let status = user_status(d);
    let start = |name: &str| {
        support::orch()
            .arg("--cwd")
            .arg(d)
            .args(["--model", &m, "adw", "start", "plan_build", "--prompt", "Add a parser", "--name", name])
            .args(["--worktree", "--wait", "--json"])
            .output()
    };
    let (one, two) = std::thread::scope(|s| {
        let one = s.spawn(|| start("one"));
        let two = s.spawn(|| start("two"));
        (one.join().unwrap().unwrap(), two.join().unwrap().unwrap())
    });
    for (out, name) in [(&one, "one"), (&two, "two")] {
        assert!(out.status.success(), "{name}: {}", text(&out.stderr));
        let log = git(d, &["log", "--format=%s", &format!("orch/{name}")]);
        assert_eq!(log, format!("plan_build {name}: build\nplan_build {name}: plan\nfirst\n"));
        assert_eq!(git(d, &["show", &format!("orch/{name}:src/parser.rs")]), "fn parse() {}\n");
    }
    assert_eq!(git(d, &["rev-parse", "HEAD"]), head);
    assert_eq!(user_status(d), status);
    assert_eq!(std::fs::read_to_string(d.join("README.md")).unwrap(), "# project\nwork in progress\n");
    assert!(!d.join("src").exists() && !d.join("specs").exists(), "the main tree got no files");
    let runs = json_lines(&run_in(d, &["adw", "list", "--json"]).stdout);
    assert_eq!(runs.len(), 2);
    assert!(runs.iter().all(|r| r["output_data"]["worktree"]["state"] == "kept"), "{runs:?}");
    let one = runs.iter().find(|r| r["name"] == "one").unwrap()["id"].as_str().unwrap().to_string();
    let shown = text(&run_in(d, &["adw", "show", &one]).stdout);
    assert!(shown.contains("completed (2/2 steps") && shown.contains(" · branch orch/one kept"), "{shown}");

    // --worktree outside a git repository is a usage error, before any run is recorded.
    let plain = tempfile::tempdir().unwrap();
    let m = model(plain.path());
    let out =
        run_in(plain.path(), &["--model", &m, "adw", "start", "plan_build", "--prompt", "x", "--worktree", "--wait"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("is not in a git repository"), "{}", text(&out.stderr));
}

/// The billing expert: the question agent answers; the self-improve agent rewrites its expertise.
const EXPERTS: &str = r##"{"steps": [
  {"agent": "^orchestrator$", "when": "^ask the billing expert", "reply": [{"type": "tool_use", "name": "start_adw", "input": {"name_of_adw": "ask-billing", "workflow_type": "expert_question", "prompt": "Where are refunds?", "domain": "billing"}}]},
  {"agent": "^orchestrator$", "when": "Started AI Developer Workflow", "reply": [{"type": "text", "text": "Asked."}]},
  {"agent": "^question-", "repeat": true, "reply": [{"type": "text", "text": "Refunds live in src/refund.rs."}]},
  {"agent": "^self_improve-", "when": "^Wrote", "repeat": true, "reply": [{"type": "text", "text": "Expertise updated."}]},
  {"agent": "^self_improve-", "repeat": true, "reply": [{"type": "tool_use", "name": "Write", "input": {"file_path": ".claude/commands/experts/billing/expertise.yaml", "content": "overview:\n  description: billing and refunds\n"}}]}
]}"##;

#[test]
fn the_billing_expert_answers_without_changes_and_improves_its_expertise() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let expertise = d.join(".claude/commands/experts/billing/expertise.yaml");
    std::fs::create_dir_all(expertise.parent().unwrap()).unwrap();
    std::fs::write(&expertise, "overview: {}\n").unwrap();
    git(d, &["init", "-q"]);
    git(d, &["add", "-A"]);
    git(d, &["commit", "-q", "-m", "first"]);
    let file = d.join("experts.json");
    std::fs::write(&file, EXPERTS).unwrap();
    let m = format!("scripted:{}", file.display());

    let out =
        run_in(d, &["--model", &m, "adw", "start", "expert_question", "--prompt", "Where are refunds?", "--wait"]);
    assert_eq!(out.status.code(), Some(2), "the domain is required: {}", text(&out.stderr));
    assert!(text(&out.stderr).contains("'domain' is required by expert_question"), "{}", text(&out.stderr));
    let out = run_in(d, &["--model", &m, "adw", "start", "expert_question", "--input", "domain", "--wait"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("expected KEY=VALUE"), "{}", text(&out.stderr));

    let ask = ["adw", "start", "expert_question", "--input", "domain=billing", "--prompt", "Where are refunds?"];
    let out = run_in(d, &[&["--model", m.as_str()], &ask[..], &["--wait"]].concat());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(user_status(d), "", "a question changes nothing");

    let improve = ["adw", "start", "expert_self_improve", "--input", "domain=billing", "--input", "max_lines=10"];
    let out = run_in(d, &[&["--model", m.as_str()], &improve[..], &["--wait"]].concat());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(&expertise).unwrap(), "overview:\n  description: billing and refunds\n");
    let runs = json_lines(&run_in(d, &["adw", "list", "--json"]).stdout);
    let improved = runs.iter().find(|r| r["workflow_type"] == "expert_self_improve").unwrap();
    assert_eq!(improved["input_data"]["max_lines"], 10, "--input values that are JSON are taken as such");
    let id = improved["id"].as_str().unwrap();
    let shown: Value = serde_json::from_slice(&run_in(d, &["adw", "show", id, "--json"]).stdout).unwrap();
    let file = &shown["steps"][0]["payload"]["file"];
    assert_eq!((file["before"].as_str(), file["lines_after"].as_u64()), (Some("overview: {}\n"), Some(2)), "{file}");

    // The orchestrator starts an expert with its domain.
    let out = run_in(d, &["--model", &m, "chat", "ask the billing expert"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let runs = json_lines(&run_in(d, &["adw", "list", "--json"]).stdout);
    let asked = runs.iter().find(|r| r["name"] == "ask-billing").unwrap();
    assert_eq!(
        (asked["status"].as_str(), asked["input_data"]["domain"].as_str()),
        (Some("completed"), Some("billing"))
    );
    assert_eq!(asked["output_data"]["answer"], "Refunds live in src/refund.rs.");
}
