//! `orch adw start` without `--wait` (a detached process runs it), runs whose process died, two
//! processes resuming one run at once, and the resume in another process on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::adw::{model, runs, slow_model, start_slow_build, wait_for_build};
use support::{Db, text};

/// Polls the run until `done` holds for it (up to a minute), then returns it; on a timeout, panics
/// with the run and its log.
fn wait_for_run(db: &Db, d: &Path, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let run = runs(db, d).into_iter().find(|r| r["id"] == id).expect("the run is listed");
        if done(&run) {
            return run;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let log = std::fs::read_to_string(d.join(format!(".orch/logs/adw-{id}.log"))).unwrap_or_default();
            panic!("{what}: the run did not get there within a minute: {run}\nlog:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts a detached run; returns its id (checking what `start` printed).
fn start_detached(db: &Db, d: &Path, m: &str, workflow: &str) -> String {
    let out = db.run(d, &["--model", m, "adw", "start", workflow, "--prompt", "Add a parser"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let id = text(&out.stdout).lines().next().unwrap_or_default().trim().to_string();
    assert_eq!(id.len(), 36, "the id alone comes first: {}", text(&out.stdout));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("in the background") && stderr.contains(&format!(".orch/logs/adw-{id}.log")), "{stderr}");
    id
}

fn kill(pid: u64) {
    let out = std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).output().unwrap();
    assert!(out.status.success(), "kill {pid}: {}", text(&out.stderr));
}

#[test]
fn a_detached_run_outlives_the_command_that_started_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = Db::Sqlite;
    let m = model(d);
    let id = start_detached(&db, d, &m, "plan_build_review");
    // `start` has exited; the run goes on in its own process.
    let done = wait_for_run(&db, d, &id, "completes", |r| r["status"] == "completed");
    assert_eq!(done["completed_steps"], 3);
    assert_eq!(done["output_data"]["verdict"], "PASS");
    assert_eq!(done["metadata"]["launch"]["mode"], "detached");
    assert!(done.get("run").is_none_or(Value::is_null), "a finished run is held by no process: {done}");
    assert!(d.join("src/parser.rs").exists(), "the build step ran in the working dir");
    // The detached process writes its last line after the run's record says completed.
    let log_file = d.join(format!(".orch/logs/adw-{id}.log"));
    let start = Instant::now();
    let log = loop {
        let log = std::fs::read_to_string(&log_file).unwrap();
        if log.contains("completed (3/3 steps") || start.elapsed() > Duration::from_secs(30) {
            break log;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(log.contains("Starting review step") && log.contains("completed (3/3 steps"), "{log}");

    // --json: the id, the process and the log in one object.
    let out = db.run(d, &["--model", &m, "adw", "start", "plan_build", "--prompt", "Again", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let started: Value = serde_json::from_str(text(&out.stdout).lines().next().unwrap()).unwrap();
    assert!(started["pid"].as_u64().is_some() && started["log"].as_str().unwrap().ends_with(".log"), "{started}");
    let id2 = started["id"].as_str().unwrap();
    wait_for_run(&db, d, id2, "the second run completes", |r| r["status"] == "completed");
}

#[test]
fn a_detached_run_whose_process_dies_is_stale_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = Db::Sqlite;
    let m = slow_model(d);
    let id = start_detached(&db, d, &m, "plan_build");
    wait_for_build(d);
    let run = wait_for_run(&db, d, &id, "runs the build step", |r| r["current_step"] == "build");
    assert_eq!(run["status"], "in_progress");
    assert_eq!(run["stale"], false, "its process is alive");
    let pid = run["run"]["pid"].as_u64().expect("the run names its process");
    let listing = text(&db.run(d, &["adw", "list"]).stdout);
    assert!(listing.contains(&format!("detached pid {pid}")), "the listing says who runs it: {listing}");

    kill(pid);
    let run = wait_for_run(&db, d, &id, "shows as stale", |r| r["stale"] == true);
    assert_eq!(run["status"], "in_progress");
    let shown = text(&db.run(d, &["adw", "show", &id]).stdout);
    assert!(shown.contains("(gone)") && shown.contains("orch adw resume"), "{shown}");

    let out = db.run(d, &["--model", &m, "adw", "resume", &id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let events = db.events(d);
    let starts = |step: &str| events.iter().filter(|e| e["type"] == "StepStart" && e["step"] == step).count();
    assert_eq!((starts("plan"), starts("build")), (1, 1), "the plan ran once; the build continued on its agent");
    assert_eq!(runs(&db, d)[0]["status"], "completed");
}

#[test]
fn of_two_processes_resuming_one_run_at_once_exactly_one_runs_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = Db::Sqlite;
    let (mut child, id, m) = start_slow_build(&db, d);
    child.kill().unwrap();
    child.wait().unwrap();
    let resume = || {
        db.orch(d)
            .args(["--model", &m, "adw", "resume", &id])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (resume(), resume());
    let outs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
    let ok = outs.iter().filter(|o| o.status.success()).count();
    assert_eq!(ok, 1, "exactly one resume runs it: {:?}", outs.iter().map(|o| text(&o.stderr)).collect::<Vec<_>>());
    let loser = outs.iter().find(|o| !o.status.success()).unwrap();
    let why = text(&loser.stderr);
    // Refused either while the winner runs it (busy) or after the winner finished (ended).
    assert!(why.contains("is busy") || why.contains("already ended"), "{why}");
    let events = db.events(d);
    let build_agents: std::collections::BTreeSet<String> = events
        .iter()
        .filter(|e| e["step"] == "build" && e["type"] == "UserPromptSubmit")
        .map(|e| e["agent_id"].to_string())
        .collect();
    assert_eq!(build_agents.len(), 1, "one build agent");
    let stops = events.iter().filter(|e| e["type"] == "StepEnd" && e["step"] == "build").count();
    assert_eq!(stops, 1, "the build step ended once");
    assert_eq!(runs(&db, d)[0]["status"], "completed");
}

#[test]
#[ignore = "needs PostgreSQL on 127.0.0.1:5432 (or ORCH_TEST_PG_URL); scripts/test.sh runs it with --ignored"]
fn on_postgres_a_run_killed_mid_build_is_resumed_by_another_process() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = Db::postgres("adw_resume");
    let (mut child, id, m) = start_slow_build(&db, d);
    child.kill().unwrap();
    child.wait().unwrap();
    let run = runs(&db, d).into_iter().find(|r| r["id"] == id.as_str()).unwrap();
    assert_eq!((run["status"].as_str(), run["stale"].as_bool()), (Some("in_progress"), Some(true)));

    let out = db.run(d, &["--model", &m, "adw", "resume", &id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let events = db.events(d);
    let starts = |step: &str| events.iter().filter(|e| e["type"] == "StepStart" && e["step"] == step).count();
    assert_eq!((starts("plan"), starts("build")), (1, 1), "the plan ran once; the build continued on its agent");
    let run = runs(&db, d).into_iter().find(|r| r["id"] == id.as_str()).unwrap();
    assert_eq!(run["status"], "completed");
    assert!(run.get("run").is_none_or(Value::is_null), "released: {run}");
}
