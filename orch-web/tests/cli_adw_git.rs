//! `orch adw` with git: two `--worktree` runs at once on one repository, and the agent experts (also
//! started by the orchestrator).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;

use serde_json::Value;
use support::adw::model;
use support::{json_lines, run_in, text};

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

    // A detached run (no --wait) works in its worktree too.
    let out = run_in(
        d,
        &["--model", &m, "adw", "start", "plan_build", "--prompt", "Add a parser", "--name", "three", "--worktree"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let id = text(&out.stdout).lines().next().unwrap().trim().to_string();
    let started = std::time::Instant::now();
    loop {
        let runs = json_lines(&run_in(d, &["adw", "list", "--json"]).stdout);
        let run = runs.iter().find(|r| r["id"] == id.as_str()).unwrap();
        if run["status"] == "completed" {
            assert_eq!(run["output_data"]["worktree"]["branch"], "orch/three");
            break;
        }
        assert!(!["failed", "cancelled"].contains(&run["status"].as_str().unwrap()), "{run}");
        assert!(started.elapsed() < std::time::Duration::from_secs(60), "the detached run never completed: {run}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(git(d, &["log", "--format=%s", "orch/three"]).lines().next(), Some("plan_build three: build"));
    assert_eq!(git(d, &["rev-parse", "HEAD"]), head);
    assert!(!d.join("src").exists());

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

    let types = text(&run_in(d, &["adw", "types"]).stdout);
    let line = types.lines().find(|l| l.starts_with("expert_question ")).unwrap_or_default();
    assert!(line.ends_with("(built-in) --input domain=…"), "the listing says what else it needs: {types}");
    std::fs::create_dir_all(d.join(".orch/workflows")).unwrap();
    let iso = "worktree = true\non_success = \"merge\"\n[[steps]]\nname = \"a\"\nprompt = \"x\"\n";
    std::fs::write(d.join(".orch/workflows/iso.toml"), iso).unwrap();
    let listed = json_lines(&run_in(d, &["adw", "types", "--json"]).stdout);
    let iso = listed.iter().find(|t| t["type"] == "iso").unwrap();
    assert_eq!((iso["worktree"].as_bool(), iso["on_success"].as_str()), (Some(true), Some("merge")));
    assert!(text(&run_in(d, &["adw", "types"]).stdout).contains("(in a worktree, merge on success)"));

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
