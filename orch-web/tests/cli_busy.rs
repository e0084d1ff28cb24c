//! One agent never runs two turns at once, across processes: `orch run`, `orch agent command` and
//! `orch resume` started while another process runs the agent are refused, naming the run in progress,
//! and the agent's tool runs once. On SQLite and on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::time::Duration;

use serde_json::json;
use support::{Db, scripted, text, wait_for_file};

/// A model whose agents run `sh slow.sh` on a prompt starting with `go`, and answer `done` otherwise.
/// `slow.sh` appends a line to `marker.txt`, then waits for a `release` file.
fn setup(dir: &Path) -> String {
    let slow =
        "echo ran >> marker.txt\ni=0; while [ ! -f release ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done\n";
    std::fs::write(dir.join("slow.sh"), slow).unwrap();
    let script = json!({"steps": [
        {"when": "^go", "repeat": true,
         "reply": [{"type": "tool_use", "name": "Bash", "input": {"command": "sh slow.sh"}}]},
        {"repeat": true, "reply": [{"type": "text", "text": "done"}]}
    ]});
    scripted(dir, "model.json", &script)
}

fn spawn(db: &Db, dir: &Path, model: &str, args: &[&str]) -> Child {
    db.orch(dir).args(["--model", model]).args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
}

fn marker_lines(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("marker.txt")).map(|s| s.lines().count()).unwrap_or(0)
}

/// Starts two processes with `args` at once. Waits until one of them has ended, or both have started
/// the tool (a failure, checked by the caller); then lets the tool finish and returns both outputs
/// with their pids.
fn race(db: &Db, dir: &Path, model: &str, args: &[&str]) -> Vec<(u32, Output)> {
    let mut children = vec![spawn(db, dir, model, args), spawn(db, dir, model, args)];
    let start = std::time::Instant::now();
    loop {
        let ended = children.iter_mut().any(|c| c.try_wait().unwrap().is_some());
        if ended || marker_lines(dir) >= 2 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "neither process ended nor did both run the tool");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::write(dir.join("release"), "").unwrap();
    children
        .into_iter()
        .map(|c| {
            let pid = c.id();
            (pid, c.wait_with_output().unwrap())
        })
        .collect()
}

/// Exactly one of `outputs` succeeded; the other exited 1 saying `bob` is busy with the winner's run.
fn one_ran_one_refused(outputs: &[(u32, Output)], dir: &Path) {
    let describe = || {
        outputs
            .iter()
            .map(|(pid, o)| format!("pid {pid}: {:?}\nstderr: {}", o.status, text(&o.stderr)))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(marker_lines(dir), 1, "the tool ran more than once:\n{}", describe());
    let winners: Vec<&(u32, Output)> = outputs.iter().filter(|(_, o)| o.status.success()).collect();
    let losers: Vec<&(u32, Output)> = outputs.iter().filter(|(_, o)| !o.status.success()).collect();
    assert_eq!((winners.len(), losers.len()), (1, 1), "{}", describe());
    let (winner, loser) = (winners[0].0, &losers[0].1);
    assert_eq!(loser.status.code(), Some(1), "{}", describe());
    let err = text(&loser.stderr);
    assert!(err.contains("'bob'") && err.contains("busy"), "{err}");
    assert!(err.contains(&format!("process {winner} ")), "the refusal names the run in progress: {err}");
}

fn two_runs_at_once(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let model = setup(dir.path());
    let outputs = race(&db, dir.path(), &model, &["run", "--agent", "bob", "go"]);
    one_ran_one_refused(&outputs, dir.path());
    let agents = db.agents(dir.path());
    assert_eq!(agents.len(), 1, "{agents:?}");
    assert_eq!(agents[0]["status"], "idle");
}

fn two_commands_at_once(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let model = setup(dir.path());
    let out = db.orch(dir.path()).args(["--model", &model, "run", "--agent", "bob", "hello"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let outputs = race(&db, dir.path(), &model, &["agent", "command", "bob", "go"]);
    one_ran_one_refused(&outputs, dir.path());
    assert_eq!(db.agents(dir.path())[0]["status"], "idle");
}

fn resume_while_another_process_runs(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let model = setup(dir.path());
    let running = spawn(&db, dir.path(), &model, &["run", "--agent", "bob", "go"]);
    wait_for_file(&dir.path().join("marker.txt"), Duration::from_secs(60), "the first run's tool");
    let mut resume = spawn(&db, dir.path(), &model, &["resume", "--agent", "bob"]);
    let start = std::time::Instant::now();
    while resume.try_wait().unwrap().is_none() && marker_lines(dir.path()) < 2 {
        assert!(start.elapsed() < Duration::from_secs(60), "resume neither ended nor ran the tool");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::write(dir.path().join("release"), "").unwrap();
    let resume = resume.wait_with_output().unwrap();
    let (pid, first) = (running.id(), running.wait_with_output().unwrap());
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert_eq!(marker_lines(dir.path()), 1, "the tool ran twice; resume: {}", text(&resume.stderr));
    assert_eq!(resume.status.code(), Some(1), "{}", text(&resume.stderr));
    let err = text(&resume.stderr);
    assert!(err.contains("'bob'") && err.contains("busy") && err.contains(&format!("process {pid} ")), "{err}");
}

#[test]
fn two_runs_of_one_agent_at_once_on_sqlite() {
    two_runs_at_once(Db::Sqlite);
}

#[test]
fn two_commands_to_one_agent_at_once_on_sqlite() {
    two_commands_at_once(Db::Sqlite);
}

#[test]
fn resume_while_another_process_runs_the_agent_on_sqlite() {
    resume_while_another_process_runs(Db::Sqlite);
}

#[test]
#[ignore = "needs PostgreSQL on 127.0.0.1:5432 (or ORCH_TEST_PG_URL); scripts/test.sh runs it with --ignored"]
fn two_runs_of_one_agent_at_once_on_postgres() {
    two_runs_at_once(Db::postgres("busy_run"));
}

#[test]
#[ignore = "needs PostgreSQL on 127.0.0.1:5432 (or ORCH_TEST_PG_URL); scripts/test.sh runs it with --ignored"]
fn two_commands_to_one_agent_at_once_on_postgres() {
    two_commands_at_once(Db::postgres("busy_command"));
}

#[test]
#[ignore = "needs PostgreSQL on 127.0.0.1:5432 (or ORCH_TEST_PG_URL); scripts/test.sh runs it with --ignored"]
fn resume_while_another_process_runs_the_agent_on_postgres() {
    resume_while_another_process_runs(Db::postgres("busy_resume"));
}
