//! A process killed mid-turn costs the next command no wait: its claim on the agent is stale at once
//! (its process is gone), so nobody asks it to stop (no `InterruptRequested` event) and nobody waits
//! for it; the next command takes the agent over, resumes the unfinished turn first, and succeeds.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use support::{Db, scripted, text, wait_for_file};

/// The orchestrator creates an agent and has it `run slow.sh`; `have NAME say hi` commands NAME again;
/// anything else gets `ok` (after a `list_agents` call for `look around`). Agents run `sh slow.sh` on
/// `run slow.sh`, answer `hi` to `say hi` and `done` otherwise.
///
/// `slow.sh`, the first time, writes `started` and waits for a `release` file; later it returns at once.
fn setup(dir: &Path) -> String {
    let slow = "if [ -f started ]; then echo again >> runs.txt; exit 0; fi\n\
                echo first >> runs.txt; echo x > started\n\
                i=0; while [ ! -f release ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done\n";
    std::fs::write(dir.join("slow.sh"), slow).unwrap();
    let script = json!({"steps": [
        {"agent": "^orchestrator$", "when": "(?i)create an agent called (\\w+)",
         "reply": [{"type": "tool_use", "name": "create_agent", "input": {"name": "$1", "system_prompt": "You run scripts."}}]},
        {"agent": "^orchestrator$", "when": "Created agent '(\\w+)'",
         "reply": [{"type": "tool_use", "name": "command_agent", "input": {"agent_name": "$1", "command": "run slow.sh"}}]},
        {"agent": "^orchestrator$", "when": "(?i)have (\\w+) say hi",
         "reply": [{"type": "tool_use", "name": "command_agent", "input": {"agent_name": "$1", "command": "say hi"}}]},
        {"agent": "^orchestrator$", "when": "(?i)look around", "repeat": true,
         "reply": [{"type": "tool_use", "name": "list_agents", "input": {}}]},
        {"agent": "^orchestrator$", "repeat": true, "reply": [{"type": "text", "text": "ok"}]},
        {"when": "^run slow.sh", "repeat": true,
         "reply": [{"type": "tool_use", "name": "Bash", "input": {"command": "sh slow.sh"}}]},
        {"when": "^say hi", "repeat": true, "reply": [{"type": "text", "text": "hi"}]},
        {"repeat": true, "reply": [{"type": "text", "text": "done"}]}
    ]});
    scripted(dir, "model.json", &script)
}

fn spawn(db: &Db, dir: &Path, model: &str, args: &[&str]) -> Child {
    db.orch(dir).args(["--model", model]).args(args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap()
}

/// SIGKILLs `child` once `started` exists (its turn is inside the slow step), and lets the orphaned
/// step end.
fn kill_mid_turn(mut child: Child, dir: &Path) {
    wait_for_file(&dir.join("started"), Duration::from_secs(60), "the slow step");
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(support::signal_of(&status), Some(9), "{status:?}");
    std::fs::write(dir.join("release"), "").unwrap();
}

fn last_seq(events: &[Value]) -> u64 {
    events.last().and_then(|e| e["seq"].as_u64()).unwrap_or(0)
}

/// After `since`: no `InterruptRequested` (nobody asked the dead process to stop).
fn no_interrupt_request_after(events: &[Value], since: u64) {
    let asked: Vec<&Value> =
        events.iter().filter(|e| e["seq"].as_u64().unwrap() > since && e["type"] == "InterruptRequested").collect();
    assert!(asked.is_empty(), "a dead process was asked to stop: {asked:?}");
}

fn runs(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("runs.txt")).unwrap_or_default()
}

#[test]
fn a_chat_killed_while_its_agent_runs_costs_the_next_chat_no_wait() {
    let db = Db::Sqlite;
    let dir = tempfile::tempdir().unwrap();
    let model = setup(dir.path());
    kill_mid_turn(spawn(&db, dir.path(), &model, &["chat", "create an agent called bob"]), dir.path());
    let killed_at = last_seq(&db.events(dir.path()));
    let bob = db.agents(dir.path()).into_iter().find(|a| a["name"] == "bob").unwrap();
    assert_eq!(bob["status"], "executing", "the killed run left bob executing");

    let out = db.run(dir.path(), &["--model", &model, "chat", "have bob say hi"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let events = db.events(dir.path());
    no_interrupt_request_after(&events, killed_at);
    // bob's unfinished turn was resumed (its tool ran again), then the new command ran.
    assert_eq!(runs(dir.path()), "first\nagain\n");
    let texts: Vec<&str> = events
        .iter()
        .filter(|e| e["agent_id"] == bob["id"] && e["type"] == "Text")
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["done", "hi"]);
    let bob = db.agents(dir.path()).into_iter().find(|a| a["name"] == "bob").unwrap();
    assert_eq!(bob["status"], "idle");
}

#[test]
fn a_chat_killed_mid_orchestrator_turn_costs_the_next_chat_no_wait() {
    let db = Db::Sqlite;
    let dir = tempfile::tempdir().unwrap();
    let model = setup(dir.path());
    // The orchestrator's own tool call is held by a settings hook the first time it runs.
    std::fs::create_dir_all(dir.path().join(".claude")).unwrap();
    let hook = json!({"hooks": {"PreToolUse": [{"matcher": "list_agents",
        "hooks": [{"type": "command", "command": "sh slow.sh >/dev/null"}]}]}});
    std::fs::write(dir.path().join(".claude/settings.json"), hook.to_string()).unwrap();
    kill_mid_turn(spawn(&db, dir.path(), &model, &["chat", "look around"]), dir.path());
    let killed_at = last_seq(&db.events(dir.path()));

    let out = db.run(dir.path(), &["--model", &model, "chat", "hello"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let events = db.events(dir.path());
    no_interrupt_request_after(&events, killed_at);
    // The unfinished turn was resumed first (its tool call ran again), then the new message answered.
    assert_eq!(runs(dir.path()), "first\nagain\n");
    let chat: Vec<&str> = events
        .iter()
        .filter(|e| e["type"] == "ChatMessage")
        .map(|e| e["message"]["message"].as_str().unwrap())
        .collect();
    assert_eq!(chat.last(), Some(&"ok"), "{chat:?}");
    let list = db.run(dir.path(), &["--model", &model, "chat", "hello again"]);
    assert!(list.status.success(), "{}", text(&list.stderr));
}

#[test]
fn a_killed_orch_run_is_resumed_or_reset_at_once() {
    let db = Db::Sqlite;
    let dir = tempfile::tempdir().unwrap();
    let model = setup(dir.path());
    kill_mid_turn(spawn(&db, dir.path(), &model, &["run", "--agent", "bob", "run slow.sh"]), dir.path());
    let killed_at = last_seq(&db.events(dir.path()));

    let out = db.run(dir.path(), &["--model", &model, "resume", "--agent", "bob"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(runs(dir.path()), "first\nagain\n");
    no_interrupt_request_after(&db.events(dir.path()), killed_at);

    // Killed again; this time `agent interrupt` resets the agent at once instead of asking the dead
    // process to stop.
    std::fs::remove_file(dir.path().join("started")).unwrap();
    std::fs::remove_file(dir.path().join("release")).unwrap();
    kill_mid_turn(spawn(&db, dir.path(), &model, &["run", "--agent", "bob", "run slow.sh"]), dir.path());
    let killed_at = last_seq(&db.events(dir.path()));
    let out = db.run(dir.path(), &["agent", "interrupt", "bob"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let events = db.events(dir.path());
    no_interrupt_request_after(&events, killed_at);
    let bob = db.agents(dir.path()).into_iter().find(|a| a["name"] == "bob").unwrap();
    assert_eq!(bob["status"], "idle");
    assert!(
        events.iter().any(|e| e["seq"].as_u64().unwrap() > killed_at
            && e["type"] == "SystemLog"
            && e["message"].as_str().unwrap().contains("process running it is gone")),
        "the reset is logged"
    );
}
