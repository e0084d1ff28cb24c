//! `orch agent interrupt` from a second process reaches the process running the agent: `orch run` and
//! `orch agent command` stop early with exit 130, record a `Stop` event whose reason is `interrupted`,
//! and leave the agent idle (released by the process that ran it, not reset under it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Db, scripted, text, wait_for_file};

/// A model whose agents run `sh slow.sh` on a prompt starting with `go`, and answer `done` otherwise.
/// `slow.sh` appends `ran` to `marker.txt`, waits for a `release` file, then appends `finished`.
fn setup(db: &Db, dir: &Path) -> String {
    let slow = "echo ran >> marker.txt\ni=0; while [ ! -f release ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done\necho finished >> marker.txt\n";
    std::fs::write(dir.join("slow.sh"), slow).unwrap();
    let script = json!({"steps": [
        {"when": "^go", "repeat": true,
         "reply": [{"type": "tool_use", "name": "Bash", "input": {"command": "sh slow.sh"}}]},
        {"repeat": true, "reply": [{"type": "text", "text": "done"}]}
    ]});
    let model = scripted(dir, "model.json", &script);
    // An orchestrator with an agent of its own exists too: `agent interrupt` must still find the
    // free-standing agent of `orch run`.
    let out = db.run(dir, &["--model", &model, "agent", "create", "helper", "--system-prompt", "You help."]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    model
}

/// Waits for `child` to end; if it has not ended after a minute, lets its tool finish (so the test
/// ends) and fails.
fn wait_interrupted(mut child: Child, dir: &Path) -> std::process::Output {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            std::fs::write(dir.join("release"), "").unwrap();
            let out = child.wait_with_output().unwrap();
            panic!("the interrupt did not reach the running process: {}", text(&out.stderr));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn interrupted_from_elsewhere(db: Db, command: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let model = setup(&db, dir.path());
    if command[0] == "agent" {
        let out = db.run(dir.path(), &["--model", &model, "run", "--agent", "bob", "hello"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let running = db
        .orch(dir.path())
        .args(["--model", &model])
        .args(command)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_file(&dir.path().join("marker.txt"), Duration::from_secs(60), "the run's tool");

    let interrupt = db.run(dir.path(), &["agent", "interrupt", "bob"]);
    assert!(interrupt.status.success(), "{}", text(&interrupt.stderr));
    assert!(text(&interrupt.stdout).contains("Interrupted agent 'bob'"), "{}", text(&interrupt.stdout));

    let out = wait_interrupted(running, dir.path());
    assert_eq!(out.status.code(), Some(130), "{:?}: {}", out.status, text(&out.stderr));
    let marker = std::fs::read_to_string(dir.path().join("marker.txt")).unwrap();
    assert_eq!(marker, "ran\n", "the tool was stopped, not left to finish");

    let events = db.events(dir.path());
    let bob = db.agents(dir.path()).into_iter().find(|a| a["name"] == "bob").expect("bob is listed");
    assert_eq!(bob["status"], "idle");
    let of_bob: Vec<&Value> = events.iter().filter(|e| e["agent_id"] == bob["id"]).collect();
    let request = of_bob.iter().find(|e| e["type"] == "InterruptRequested").expect("an InterruptRequested event");
    assert_eq!(request["requested_by"], "cli", "{request}");
    let stop = of_bob.iter().rev().find(|e| e["type"] == "Stop").expect("a Stop event");
    assert_eq!(stop["reason"], "interrupted", "{stop}");
    assert!(stop["seq"].as_u64() > request["seq"].as_u64());
    let last_status = of_bob.iter().rev().find(|e| e["type"] == "AgentStatusChanged").unwrap();
    assert_eq!(last_status["new_status"], "idle");
    // The process that ran the turn recorded its end; nothing reset the agent from outside.
    assert!(
        !events
            .iter()
            .any(|e| e["type"] == "SystemLog" && e["message"].as_str().unwrap_or("").contains("reset to idle")),
        "the agent was reset under a running process"
    );
    // And it works again.
    let again = db.run(dir.path(), &["--model", &model, "run", "--agent", "bob", "hello"]);
    assert!(again.status.success(), "{}", text(&again.stderr));
}

#[test]
fn agent_interrupt_stops_orch_run_in_another_process_on_sqlite() {
    interrupted_from_elsewhere(Db::Sqlite, &["run", "--agent", "bob", "go"]);
}

#[test]
fn agent_interrupt_stops_agent_command_in_another_process_on_sqlite() {
    interrupted_from_elsewhere(Db::Sqlite, &["agent", "command", "bob", "go"]);
}

#[test]
#[ignore = "needs PostgreSQL on 127.0.0.1:5432 (or ORCH_TEST_PG_URL); scripts/test.sh runs it with --ignored"]
fn agent_interrupt_stops_orch_run_in_another_process_on_postgres() {
    interrupted_from_elsewhere(Db::postgres("interrupt_run"), &["run", "--agent", "bob", "go"]);
}

#[test]
#[ignore = "needs PostgreSQL on 127.0.0.1:5432 (or ORCH_TEST_PG_URL); scripts/test.sh runs it with --ignored"]
fn agent_interrupt_stops_agent_command_in_another_process_on_postgres() {
    interrupted_from_elsewhere(Db::postgres("interrupt_command"), &["agent", "command", "bob", "go"]);
}
