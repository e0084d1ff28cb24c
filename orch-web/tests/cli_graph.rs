//! `orch graph run`, `orch worker`, `orch checkpoint` and `orch budget` as processes on one store: a
//! budget shared by two worker processes, workers that die mid-task, and checkpoints resolved from the
//! command line. The PostgreSQL variants run under `scripts/test.sh` (ignored by a plain `cargo test`:
//! they need the server).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Db, scripted, text, wait_exit};

/// A plan file of `n` independent tasks, each on Haiku.
fn plan_file(dir: &Path, n: usize) -> String {
    let tasks: Vec<Value> = (0..n)
        .map(|i| json!({"id": format!("t{i}"), "title": format!("task {i}"), "complexity": "simple", "model": "claude-haiku-4-5"}))
        .collect();
    let path = dir.join("plan.json");
    std::fs::write(&path, serde_json::to_vec(&json!({"tasks": tasks})).unwrap()).unwrap();
    path.display().to_string()
}

fn first_line(out: &std::process::Output) -> String {
    assert!(out.status.success(), "exit {:?}: {}", out.status.code(), text(&out.stderr));
    text(&out.stdout).lines().next().unwrap().trim().to_string()
}

fn graph_json(db: &Db, dir: &Path, id: &str) -> Value {
    let out = db.run(dir, &["graph", "show", id, "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn spawn_worker(db: &Db, dir: &Path, model: &str, graph: &str, concurrency: &str) -> Child {
    db.orch(dir)
        .args(["--model", model, "worker", "--graph", graph, "--concurrency", concurrency])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The task updates of the log.
fn task_updates(events: &[Value]) -> Vec<&Value> {
    events.iter().filter(|e| e["type"] == "TaskUpdated").map(|e| &e["task"]).collect()
}

/// The workers (`claimed_by`) that have started tasks so far.
fn workers_that_started_tasks(events: &[Value]) -> HashSet<String> {
    task_updates(events)
        .into_iter()
        .filter(|t| t["status"] == "running")
        .filter_map(|t| t["claimed_by"].as_str().map(str::to_string))
        .collect()
}

/// Polls the log until `done` holds of it, for at most a minute; the last log either way.
fn wait_for_log(db: &Db, dir: &Path, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let events = db.events(dir);
        if done(&events) || Instant::now() > deadline {
            return events;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn budget_shared_by_two_worker_processes(db: &Db) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // $0.031 a call (1,000 input and 6,000 output tokens of Haiku); a call reserves its upper bound
    // first (its whole 8,192-token allowance: about $0.042). A task makes two calls, and between them
    // waits for the file `go`, so that both workers hold tasks before any budget is settled: a worker
    // that started first cannot spend it all before the second has started.
    let gate = d.join("go");
    let model = scripted(
        d,
        "model.json",
        &json!({"steps": [
            {"when": "^# Task", "repeat": true,
             "reply": [{"type": "tool_use", "name": "Bash",
                        "input": {"command": format!("while [ ! -e '{}' ]; do sleep 0.02; done; echo released", gate.display())}}],
             "usage": {"input_tokens": 1000, "output_tokens": 6000}},
            {"when": "released", "repeat": true, "reply": [{"type": "text", "text": "done"}],
             "usage": {"input_tokens": 1000, "output_tokens": 6000}}
        ]}),
    );
    let plan = plan_file(d, 40);
    let id =
        first_line(&db.run(d, &["--model", &model, "graph", "run", "--file", &plan, "--budget", "0.5", "--no-worker"]));
    let mut a = spawn_worker(db, d, &model, &id, "4");
    let mut b = spawn_worker(db, d, &model, &id, "4");
    let started = workers_that_started_tasks(&wait_for_log(db, d, |e| workers_that_started_tasks(e).len() == 2));
    std::fs::write(&gate, "").unwrap();
    // Workers of one graph stop when it pauses.
    let sa = wait_exit(&mut a, Duration::from_secs(60), "worker a");
    let sb = wait_exit(&mut b, Duration::from_secs(60), "worker b");
    assert_eq!(started.len(), 2, "both processes started tasks within a minute: {started:?}");
    assert!(sa.success() && sb.success());
    let g = graph_json(db, d, &id);
    assert_eq!(g["graph"]["status"], "paused", "{g}");
    assert!(g["graph"]["error"].as_str().unwrap().starts_with("budget_exhausted"), "{g}");
    let cost = g["graph"]["cost_usd"].as_f64().unwrap();
    assert!(cost > 0.0 && cost <= 0.5 + 1e-9, "spent {cost} of a $0.50 limit");
    let done = g["tasks"].as_array().unwrap().iter().filter(|t| t["status"] == "completed").count();
    assert!(done > 0 && done < 40, "{done} of 40 tasks completed before the pause");
    let budget: Value = serde_json::from_slice(&db.run(d, &["budget", "--json"]).stdout).unwrap();
    assert!((budget["daily"]["spent_usd"].as_f64().unwrap() - cost).abs() < 1e-9, "{budget}");
    assert!(budget["daily"]["reserved_usd"].as_f64().unwrap().abs() < 1e-9, "every reservation settled: {budget}");

    // More budget, and the graph finishes here.
    let out = db.run(d, &["--model", &model, "graph", "resume", &id, "--budget", "5"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let g = graph_json(db, d, &id);
    assert_eq!(g["graph"]["status"], "completed", "{g}");
    let total: f64 = g["tasks"].as_array().unwrap().iter().map(|t| t["cost_usd"].as_f64().unwrap()).sum();
    assert!((g["graph"]["cost_usd"].as_f64().unwrap() - total).abs() < 1e-9);
    // Cost by wave and by model, in JSON and for people.
    assert!((g["cost"]["by_wave"]["1"].as_f64().unwrap() - total).abs() < 1e-9, "{}", g["cost"]);
    assert!((g["cost"]["by_model"]["claude-haiku-4-5"].as_f64().unwrap() - total).abs() < 1e-9, "{}", g["cost"]);
    let shown = text(&db.run(d, &["graph", "show", &id]).stdout);
    assert!(shown.contains(&format!("Wave 1 (${total:.4})")), "{shown}");
    assert!(shown.contains(&format!("Cost by model: claude-haiku-4-5 ${total:.4}")), "{shown}");
}

/// `--worktree`: the task works in a git worktree of its own, its change is committed with a message
/// naming it and merged into the main tree.
#[test]
fn graph_run_with_worktree_commits_and_merges_each_task() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .current_dir(d)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    git(&["init", "-q", "-b", "main"]);
    std::fs::write(d.join(".gitignore"), "model.json\nplan.json\n").unwrap();
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "start"]);
    let model = scripted(
        d,
        "model.json",
        &json!({"steps": [
            {"when": "^# Task", "reply": [{"type": "tool_use", "name": "Write", "input": {"file_path": "calc.py", "content": "print(1)"}}]},
            {"repeat": true, "reply": [{"type": "text", "text": "wrote calc.py"}]}
        ]}),
    );
    let plan = plan_file(d, 1);
    let out = Db::Sqlite.run(d, &["--model", &model, "graph", "run", "--file", &plan, "--worktree", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let end: Value = serde_json::from_str(text(&out.stdout).lines().last().unwrap()).unwrap();
    assert_eq!(end["graph"]["status"], "completed", "{end}");
    assert_eq!(end["graph"]["name"], "plan", "a graph of a plan file is named after the file");
    let output = end["tasks"][0]["output"].as_str().unwrap();
    assert!(output.contains("[git] commit") && output.contains("merged into the main tree"), "{output}");
    assert_eq!(std::fs::read_to_string(d.join("calc.py")).unwrap(), "print(1)");
    let subjects = git(&["log", "--format=%s"]);
    assert!(subjects.lines().any(|l| l == "t0: task 0"), "{subjects}");
    assert_eq!(git(&["worktree", "list"]).lines().count(), 1);
}

#[test]
fn a_budget_shared_by_two_worker_processes_is_never_passed_sqlite() {
    budget_shared_by_two_worker_processes(&Db::Sqlite);
}

#[test]
#[ignore = "needs PostgreSQL on 127.0.0.1:5432 (scripts/test.sh runs it)"]
fn a_budget_shared_by_two_worker_processes_is_never_passed_postgres() {
    budget_shared_by_two_worker_processes(&Db::postgres("graph_budget"));
}

/// Three workers share a graph; one is killed mid-task; every task completes exactly once, the killed
/// worker's task by another.
fn killed_worker_task_is_taken_over(db: &Db, n: usize) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = scripted(
        d,
        "model.json",
        &json!({"steps": [
            {"when": "^# Task", "repeat": true, "reply": [{"type": "tool_use", "name": "Bash", "input": {"command": "sleep 0.3; echo slept"}}]},
            {"when": "slept", "repeat": true, "reply": [{"type": "text", "text": "done"}]}
        ]}),
    );
    let plan = plan_file(d, n);
    let id = first_line(&db.run(d, &["--model", &model, "graph", "run", "--file", &plan, "--no-worker"]));
    let mut victim = spawn_worker(db, d, &model, &id, "4");
    let mut others = [spawn_worker(db, d, &model, &id, "4"), spawn_worker(db, d, &model, &id, "4")];
    let marker = format!(":{}:", victim.id());
    // Killed once it holds a task (each takes 0.3 s), however slowly it started.
    wait_for_log(db, d, |e| workers_that_started_tasks(e).iter().any(|w| w.contains(&marker)));
    victim.kill().unwrap();
    victim.wait().unwrap();
    for (i, w) in others.iter_mut().enumerate() {
        let s = wait_exit(w, Duration::from_secs(120), &format!("worker {i}"));
        assert!(s.success(), "worker {i}");
    }
    let g = graph_json(db, d, &id);
    assert_eq!(g["graph"]["status"], "completed", "{}", g["graph"]);
    let events = db.events(d);
    let updates = task_updates(&events);
    let mut completions: HashMap<&str, usize> = HashMap::new();
    for t in updates.iter().filter(|t| t["status"] == "completed") {
        *completions.entry(t["id"].as_str().unwrap()).or_default() += 1;
    }
    assert_eq!(completions.len(), n, "every task completed");
    assert!(completions.values().all(|c| *c == 1), "no task completed twice");
    let orphaned: HashSet<&str> = updates
        .iter()
        .filter(|t| t["status"] == "running" && t["claimed_by"].as_str().is_some_and(|w| w.contains(&marker)))
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert!(!orphaned.is_empty(), "the killed worker had claimed tasks");
    let taken_over = updates.iter().any(|t| {
        t["status"] == "running"
            && orphaned.contains(t["id"].as_str().unwrap())
            && t["claimed_by"].as_str().is_some_and(|w| !w.contains(&marker))
    });
    assert!(taken_over, "a task of the killed worker was run again by another");
}

#[test]
fn a_killed_workers_task_is_taken_over_and_every_task_completes_once_sqlite() {
    killed_worker_task_is_taken_over(&Db::Sqlite, 60);
}

#[test]
#[ignore = "needs PostgreSQL on 127.0.0.1:5432 (scripts/test.sh runs it)"]
fn a_killed_workers_task_is_taken_over_and_every_task_completes_once_postgres() {
    killed_worker_task_is_taken_over(&Db::postgres("graph_kill"), 200);
}

#[test]
fn checkpoints_are_listed_and_resolved_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = Db::Sqlite;
    std::fs::create_dir_all(d.join(".orch")).unwrap();
    std::fs::write(d.join(".orch/config.toml"), "[graphs]\nmax_attempts = 1\nretry_base_secs = 0.01\n").unwrap();
    // The task fails its verification command until a person's guidance reaches its prompt.
    let model = scripted(
        d,
        "model.json",
        &json!({"steps": [
            {"when": "use the flag", "repeat": true, "reply": [{"type": "tool_use", "name": "Write", "input": {"file_path": "ok.flag", "content": "ok"}}]},
            {"repeat": true, "reply": [{"type": "text", "text": "done"}]}
        ]}),
    );
    std::fs::write(
        d.join("plan.json"),
        serde_json::to_vec(&json!({"tasks": [
            {"id": "check", "title": "Make the flag", "verification": ["$ test -f ok.flag"]},
            {"id": "after", "title": "After", "depends_on": ["check"]},
            {"id": "free", "title": "Independent"}
        ]}))
        .unwrap(),
    )
    .unwrap();
    let plan = d.join("plan.json").display().to_string();
    let mut run = db
        .orch(d)
        .args(["--model", &model, "graph", "run", "--file", &plan])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let open = loop {
        let out = db.run(d, &["checkpoint", "list", "--json"]);
        let open = support::json_lines(&out.stdout);
        if !open.is_empty() {
            break open;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "no checkpoint was raised");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(open.len(), 1);
    assert_eq!(open[0]["key"], "check");
    assert!(open[0]["checkpoint"].as_str().unwrap().contains("verification failed"), "{}", open[0]);
    let task = open[0]["id"].as_str().unwrap();
    let out = db.run(d, &["checkpoint", "resolve", task, "--action", "maybe"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let out = db.run(d, &["checkpoint", "resolve", task, "--action", "retry", "--guidance", "use the flag"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let status = wait_exit(&mut run, Duration::from_secs(60), "orch graph run");
    let mut stderr = String::new();
    std::io::Read::read_to_string(run.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("needs a person: verification failed"), "{stderr}");
    assert!(stderr.contains("3 completed"), "{stderr}");
    // Every attempt shows as it starts, the first claim's too (started in that claim's commit, before
    // the command could have begun to follow the log, had it begun after the worker).
    for started in
        ["wave 1 check running (attempt 1, ", "wave 1 free running (attempt 1, ", "wave 1 check running (attempt 2, "]
    {
        assert!(stderr.contains(started), "{started}: {stderr}");
    }
    let out = db.run(d, &["checkpoint", "resolve", task, "--action", "skip"]);
    assert_eq!(out.status.code(), Some(2), "a completed task has no checkpoint: {}", text(&out.stderr));
}

#[test]
fn a_graph_left_to_workers_needs_no_model_where_it_is_started() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = Db::Sqlite;
    let plan = plan_file(d, 3);
    // No model here: starting a graph for others to run asks for none.
    let id = first_line(&db.run(d, &["graph", "run", "--file", &plan, "--no-worker"]));
    let g = graph_json(&db, d, &id);
    assert_eq!(g["graph"]["status"], "running", "{g}");
    // Running its tasks here does, and says how to give one; nothing stored is lost.
    let out = db.run(d, &["graph", "resume", &id]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("no model given"), "{}", text(&out.stderr));
    // A worker with a model finishes it.
    let model =
        scripted(d, "model.json", &json!({"steps": [{"repeat": true, "reply": [{"type": "text", "text": "done"}]}]}));
    let mut w = spawn_worker(&db, d, &model, &id, "2");
    assert!(wait_exit(&mut w, Duration::from_secs(60), "orch worker").success());
    let g = graph_json(&db, d, &id);
    assert_eq!(g["graph"]["status"], "completed", "{g}");
}

#[test]
fn graph_show_json_is_what_the_api_answers_with_the_plans_estimates() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = Db::Sqlite;
    let plan = d.join("plan.json");
    let tasks = json!({"tasks": [
        {"id": "design", "title": "Design", "estimated_cost_usd": 0.05, "estimated_minutes": 12},
        {"id": "build", "title": "Build", "depends_on": ["design"]}
    ]});
    std::fs::write(&plan, serde_json::to_vec(&tasks).unwrap()).unwrap();
    let id = first_line(&db.run(d, &["graph", "run", "--file", plan.to_str().unwrap(), "--no-worker"]));
    let g = graph_json(&db, d, &id);
    assert_eq!(g["estimates"], json!({"design": {"cost_usd": 0.05, "minutes": 12.0}}), "{g}");
    let waves = g["waves"].as_array().unwrap();
    assert_eq!(waves.len(), 2, "{g}");
    assert_eq!(waves[0]["status"], json!({"ready": 1}), "{g}");
    assert_eq!(waves[1]["status"], json!({"pending": 1}), "{g}");
    assert_eq!(g["tasks"].as_array().unwrap().len(), 2);
}
