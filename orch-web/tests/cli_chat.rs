//! `orch chat` and `orch agent create|command|status|interrupt|delete` as a user runs them, on a SQLite
//! file with the scripted model.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{json_lines, orch, run_in, script, text, wait_exit};

fn events(dir: &Path) -> Vec<Value> {
    let out = run_in(dir, &["events", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    json_lines(&out.stdout)
}

fn agents(dir: &Path) -> Vec<Value> {
    let out = run_in(dir, &["agent", "list", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    json_lines(&out.stdout)
}

/// Waits for `pred` on the agent list, up to 30 s.
fn wait_for(dir: &Path, what: &str, pred: impl Fn(&[Value]) -> bool) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if pred(&agents(dir)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

/// An orchestrator that creates `slow` and commands it; `slow` then runs `sleep 60` in Bash.
const SLOW_JOB: &str = r#"{"steps": [
          {"agent": "^orchestrator$", "when": "^start", "reply": [{"type": "tool_use", "name": "create_agent", "input": {"name": "slow", "system_prompt": "p"}}]},
          {"agent": "^orchestrator$", "when": "Created", "reply": [{"type": "tool_use", "name": "command_agent", "input": {"agent_name": "slow", "command": "sleep a while"}}]},
          {"agent": "^orchestrator$", "when": "dispatched", "reply": [{"type": "text", "text": "started"}]},
          {"agent": "^slow$", "when": "sleep", "reply": [{"type": "tool_use", "name": "Bash", "input": {"command": "sleep 60"}}]},
          {"agent": "^slow$", "repeat": true, "reply": [{"type": "text", "text": "late"}]}
        ]}"#;

/// Writes a scripted-model file into `dir`; returns the `--model` spec for it.
fn scripted_model(dir: &Path, script: &str) -> String {
    let file = dir.join("script.json");
    std::fs::write(&file, script).unwrap();
    format!("scripted:{}", file.display())
}

const ALICE: &str = "create an agent called alice for python work, then have her write hello.py";

#[test]
fn chat_creates_and_commands_an_agent_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let model = format!("scripted:{}", script("orchestrator.json").display());
    let out = run_in(dir.path(), &["--model", &model, "chat", ALICE]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("I'll create alice for the Python work."), "{stdout}");
    assert!(
        stdout.contains("[alice] hello.py is written and prints its greeting."),
        "agent replies streamed: {stdout}"
    );
    assert!(text(&out.stderr).contains("⏺ create_agent"), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(dir.path().join("hello.py")).unwrap(), "print(\"Hello from an orch agent!\")\n");
    let list = agents(dir.path());
    assert_eq!(list.len(), 1, "alice only, not the orchestrator's own record: {list:?}");
    assert_eq!(list[0]["name"], "alice");
    assert_eq!(list[0]["status"], "idle");

    // The log reads chat → orchestrator tool calls → agent events, in order.
    let evs = events(dir.path());
    let pos = |pred: &dyn Fn(&Value) -> bool| evs.iter().position(pred).unwrap_or_else(|| panic!("missing event"));
    let chat = pos(&|e| e["type"] == "ChatMessage" && e["message"]["sender"] == "user");
    let create = pos(&|e| e["type"] == "ToolUse" && e["tool_name"] == "create_agent");
    let created = pos(&|e| e["type"] == "AgentCreated" && e["agent"]["name"] == "alice");
    let command = pos(&|e| e["type"] == "ToolUse" && e["tool_name"] == "command_agent");
    let alice_id = list[0]["id"].clone();
    let prompt = pos(&|e| e["type"] == "UserPromptSubmit" && e["agent_id"] == alice_id);
    let write = pos(&|e| e["type"] == "ToolUse" && e["tool_name"] == "Write" && e["agent_id"] == alice_id);
    let files = pos(&|e| e["type"] == "FileTracking" && e["agent_id"] == alice_id);
    assert!(
        chat < create && create < created && created < command && command < prompt && prompt < write && write < files
    );
    let f = &evs[files];
    assert_eq!(f["file_changes"][0]["path"], "hello.py");
    assert_eq!(f["file_changes"][0]["tools"][0], "Write");
    let reply = pos(&|e| e["type"] == "ChatMessage" && e["message"]["sender"] == "orchestrator");
    assert!(reply > chat);

    // A second chat continues the same orchestrator; --new starts another.
    let again = run_in(dir.path(), &["--model", &model, "chat", "--json", "how is it going?"]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    let orch_ids: std::collections::BTreeSet<String> =
        json_lines(&again.stdout).iter().filter_map(|e| e["orchestrator_id"].as_str().map(String::from)).collect();
    assert_eq!(orch_ids.len(), 1);
    assert_eq!(orch_ids.into_iter().next(), evs[chat]["orchestrator_id"].as_str().map(String::from));
}

#[test]
fn chat_no_wait_records_the_started_runs_as_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let model = scripted_model(dir.path(), SLOW_JOB);
    let start = Instant::now();
    let out = run_in(dir.path(), &["--model", &model, "chat", "--no-wait", "start a slow job"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(start.elapsed() < Duration::from_secs(50), "did not wait for the 60 s job");
    let evs = events(dir.path());
    assert!(
        evs.iter().any(|e| e["type"] == "Stop" && e["reason"] == "interrupted"),
        "the run is recorded as interrupted"
    );
    wait_for(dir.path(), "slow idle", |a| a.iter().any(|x| x["name"] == "slow" && x["status"] == "idle"));
}

#[test]
fn agent_commands_create_command_status_interrupt_delete() {
    let dir = tempfile::tempdir().unwrap();
    let model = scripted_model(
        dir.path(),
        r#"{"steps": [
          {"agent": "^bob$", "when": "^wait", "repeat": true, "reply": [{"type": "tool_use", "name": "Bash", "input": {"command": "sleep 60"}}]},
          {"agent": "^bob$", "when": "^note", "repeat": true, "reply": [{"type": "tool_use", "name": "Write", "input": {"file_path": "note.txt", "content": "n\n"}}]},
          {"agent": "^bob$", "repeat": true, "reply": [{"type": "text", "text": "bob here"}]}
        ]}"#,
    );
    let d = dir.path();

    // Bad input: neither prompt nor template; unknown template; unknown agent.
    let out = run_in(d, &["--model", &model, "agent", "create", "bob"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let out = run_in(d, &["--model", &model, "agent", "create", "bob", "--template", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("Template 'nope' not found"), "{}", text(&out.stderr));
    let out = run_in(d, &["agent", "status", "nobody"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("Agent 'nobody' not found"), "{}", text(&out.stderr));

    let out = run_in(d, &["--model", &model, "agent", "create", "bob", "--system-prompt", "You are Bob."]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("Created agent 'bob'"), "{}", text(&out.stdout));
    let out = run_in(d, &["--model", &model, "agent", "create", "bob", "--system-prompt", "again"]);
    assert_eq!(out.status.code(), Some(2), "name taken");
    // An alias as the agent's model.
    let out = run_in(d, &["--model", "haiku", "agent", "create", "hai", "--system-prompt", "x"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("with model claude-haiku-4-5"), "{}", text(&out.stdout));

    let out = run_in(d, &["--model", &model, "agent", "command", "bob", "note this"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("bob here"), "reply streamed: {}", text(&out.stdout));
    assert!(d.join("note.txt").exists());
    let out = run_in(d, &["agent", "status", "bob", "--tail", "50"]);
    let s = text(&out.stdout);
    assert!(s.starts_with("📊 Agent Status: bob\nStatus: idle"), "{s}");
    assert!(s.contains("• [ToolUse] Write: note.txt") && s.contains("• [FileTracking]"), "{s}");

    // A run in another process: busy for a second command, and interrupted from here.
    let mut child = orch()
        .arg("--cwd")
        .arg(d)
        .args(["--model", &model, "agent", "command", "bob", "wait for me"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(d, "bob executing", |a| a.iter().any(|x| x["name"] == "bob" && x["status"] == "executing"));
    let out = run_in(d, &["--model", &model, "agent", "command", "bob", "note again"]);
    assert_eq!(out.status.code(), Some(1), "busy: {}", text(&out.stderr));
    assert!(text(&out.stderr).contains("Agent 'bob' is busy"), "{}", text(&out.stderr));
    let out = run_in(d, &["agent", "interrupt", "bob"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("Interrupted agent 'bob'"), "{}", text(&out.stdout));
    let status = wait_exit(&mut child, Duration::from_secs(20), "orch chat");
    assert_eq!(status.code(), Some(130), "the commanding process reports the interrupt");
    let out = run_in(d, &["agent", "interrupt", "bob"]);
    assert!(text(&out.stdout).contains("not currently running"), "{}", text(&out.stdout));

    let out = run_in(d, &["agent", "delete", "bob"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(agents(d).iter().all(|a| a["name"] != "bob"));
    let out = run_in(d, &["--model", &model, "agent", "create", "bob", "--system-prompt", "Bob again."]);
    assert!(out.status.success(), "a deleted name is reusable: {}", text(&out.stderr));
}

#[test]
fn summary_model_adds_summaries_and_bad_specs_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let agent_script = d.join("agent.json");
    std::fs::write(
        &agent_script,
        r#"{"steps": [{"agent": "^ann$", "repeat": true, "reply": [{"type": "text", "text": "the answer is 42"}]}]}"#,
    )
    .unwrap();
    let summary_script = d.join("summary.json");
    std::fs::write(
        &summary_script,
        r#"{"steps": [
          {"agent": "^summarizer$", "when": "answer is 42", "repeat": true, "reply": [{"type": "text", "text": "Ann reported the answer"}]},
          {"agent": "^summarizer$", "repeat": true, "reply": [{"type": "text", "text": "Something happened"}]}
        ]}"#,
    )
    .unwrap();
    let model = format!("scripted:{}", agent_script.display());
    let out = run_in(d, &["--model", &model, "agent", "create", "ann", "--system-prompt", "p"]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let bad = orch()
        .arg("--cwd")
        .arg(d)
        .env("ORCH_SUMMARY_MODEL", "nonsense")
        .args(["--model", &model, "agent", "command", "ann", "hi"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("ORCH_SUMMARY_MODEL"), "{}", text(&bad.stderr));

    let out = orch()
        .arg("--cwd")
        .arg(d)
        .env("ORCH_SUMMARY_MODEL", format!("scripted:{}", summary_script.display()))
        .args(["--model", &model, "agent", "command", "ann", "what is the answer?"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let evs = events(d);
    let text_seq = evs.iter().find(|e| e["type"] == "Text").unwrap()["seq"].clone();
    let summary = evs
        .iter()
        .find(|e| e["type"] == "SummaryUpdated" && e["target_seq"] == text_seq)
        .expect("the text block got a model summary");
    assert_eq!(summary["summary"], "Ann reported the answer");
    assert!(summary["agent_id"].is_string(), "keys copied from the summarised event");
    let status = text(&run_in(d, &["agent", "status", "ann"]).stdout);
    assert!(status.contains("• [Text] Ann reported the answer"), "status shows the model summary: {status}");
}

#[test]
fn bad_agent_settings_in_the_environment_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let model = format!("scripted:{}", script("orchestrator.json").display());
    for (var, value) in [("ORCH_MAX_AGENT_TURNS", "lots"), ("ORCH_AGENT_WARMUP", "maybe")] {
        let out = orch()
            .arg("--cwd")
            .arg(dir.path())
            .env(var, value)
            .args(["--model", &model, "chat", "hi"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{var}");
        let err = text(&out.stderr);
        assert!(err.contains(var) && err.contains(value), "{err}");
    }
    let out = orch()
        .arg("--cwd")
        .arg(dir.path())
        .env("ORCH_ORCHESTRATOR_PROMPT", dir.path().join("missing.md"))
        .args(["--model", &model, "chat", "hi"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("ORCH_ORCHESTRATOR_PROMPT"), "{}", text(&out.stderr));
    let out = run_in(dir.path(), &["--model", &model, "chat", "--orchestrator", "not-a-uuid", "hi"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("not an orchestrator id"), "{}", text(&out.stderr));
}

#[test]
fn a_chat_from_a_second_terminal_takes_over_the_orchestrator() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = scripted_model(
        d,
        r#"{"steps": [
          {"agent": "^orchestrator$", "when": "^first", "reply": [{"type": "tool_use", "name": "Bash", "input": {"command": "sleep 60"}}]},
          {"agent": "^orchestrator$", "when": "^second", "reply": [{"type": "text", "text": "second answered"}]},
          {"agent": "^orchestrator$", "repeat": true, "reply": [{"type": "text", "text": "stopped"}]}
        ]}"#,
    );
    let mut first = orch()
        .arg("--cwd")
        .arg(d)
        .args(["--model", &model, "chat", "first job"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !events(d).iter().any(|e| e["type"] == "PreToolUse") {
        assert!(start.elapsed() < Duration::from_secs(30), "the first chat never reached its Bash call");
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = run_in(d, &["--model", &model, "chat", "second job"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("second answered"), "{}", text(&out.stdout));
    let status = wait_exit(&mut first, Duration::from_secs(20), "the first orch chat");
    assert_eq!(status.code(), Some(130), "the first chat reports its turn was interrupted");
    let evs = events(d);
    assert!(evs.iter().any(|e| e["type"] == "SystemLog"
        && e["message"] == "Previous orchestrator task interrupted - refocusing on new message"));
}

#[test]
fn ctrl_c_on_chat_interrupts_the_runs_it_hosts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = scripted_model(d, SLOW_JOB);
    let mut chat = orch()
        .arg("--cwd")
        .arg(d)
        .args(["--model", &model, "chat", "start a slow job"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(d, "slow executing", |a| a.iter().any(|x| x["name"] == "slow" && x["status"] == "executing"));
    std::thread::sleep(Duration::from_millis(200));
    let ok = std::process::Command::new("kill").args(["-INT", &chat.id().to_string()]).status().unwrap();
    assert!(ok.success());
    let status = wait_exit(&mut chat, Duration::from_secs(20), "orch chat");
    assert_eq!(status.code(), Some(130));
    assert!(events(d).iter().any(|e| e["type"] == "Stop" && e["reason"] == "interrupted"));
    wait_for(d, "slow idle", |a| a.iter().any(|x| x["name"] == "slow" && x["status"] == "idle"));
}

/// The orchestrator's own `Result` events (not its agents').
fn orchestrator_results(evs: &[Value], agents: &[Value]) -> Vec<Value> {
    let agent_ids: Vec<&Value> = agents.iter().map(|a| &a["id"]).collect();
    evs.iter()
        .filter(|e| e["type"] == "Result" && e["orchestrator_id"].is_string() && !agent_ids.contains(&&e["agent_id"]))
        .cloned()
        .collect()
}

fn tokens(e: &Value) -> f64 {
    ["input_tokens", "output_tokens"].iter().map(|k| e["usage"][k].as_f64().unwrap_or(0.0)).sum()
}

#[test]
fn the_orchestrators_own_turns_are_priced_from_orch_prices() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let prices = d.join("prices.json");
    std::fs::write(&prices, r#"{"models": {"scripted": {"input": 1000.0, "output": 1000.0}}}"#).unwrap();
    let model = format!("scripted:{}", script("orchestrator.json").display());
    let out = orch()
        .arg("--cwd")
        .arg(d)
        .env("ORCH_PRICES", &prices)
        .args(["--model", &model, "chat", ALICE])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let results = orchestrator_results(&events(d), &agents(d));
    assert!(!results.is_empty());
    for r in &results {
        let expected = tokens(r) * 1000.0 / 1_000_000.0;
        assert!(expected > 0.0);
        let cost = r["cost_usd"].as_f64().unwrap();
        assert!((cost - expected).abs() < 1e-9, "the orchestrator's turn costs {cost}, expected {expected}: {r}");
    }
}

#[test]
fn the_orchestrators_own_model_resolves_orch_model_aliases() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let prices = d.join("prices.json");
    std::fs::write(
        &prices,
        r#"{"models": {"scripted": {"input": 1.0, "output": 1.0}, "boss-1": {"input": 2000.0, "output": 2000.0}}}"#,
    )
    .unwrap();
    let aliases = d.join("aliases.json");
    std::fs::write(&aliases, r#"{"boss": "boss-1"}"#).unwrap();
    let model = format!("scripted:{}", script("orchestrator.json").display());
    let out = orch()
        .arg("--cwd")
        .arg(d)
        .env("ORCH_PRICES", &prices)
        .env("ORCH_MODEL_ALIASES", &aliases)
        .env("ORCH_ORCHESTRATOR_MODEL", "boss")
        .args(["--model", &model, "chat", ALICE])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let evs = events(d);
    assert!(
        !evs.iter().any(|e| e["type"] == "SystemLog" && e["message"].as_str().unwrap_or("").contains("no price known")),
        "every model had a price"
    );
    let results = orchestrator_results(&evs, &agents(d));
    assert!(!results.is_empty());
    for r in &results {
        let expected = tokens(r) * 2000.0 / 1_000_000.0;
        let cost = r["cost_usd"].as_f64().unwrap();
        assert!((cost - expected).abs() < 1e-9, "priced as boss-1: {cost} vs {expected}: {r}");
    }
}

/// `agent create --compact-at`, `agent compact`, and the context in `agent status`.
#[test]
fn agent_compact_and_compact_at_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let model = scripted_model(
        dir.path(),
        r#"{"steps": [
          {"when": "^Summarize the conversation below", "repeat": true, "reply": [{"type": "text", "text": "SUMMARY: bob said hello twice"}]},
          {"agent": "^bob$", "repeat": true, "reply": [{"type": "text", "text": "bob here"}]}
        ]}"#,
    );
    let d = dir.path();
    let out = run_in(d, &["--model", &model, "agent", "create", "bob", "--system-prompt", "p", "--compact-at", "1.5"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("compact_at"), "the error names the setting: {}", text(&out.stderr));
    let out = run_in(
        d,
        &["--model", &model, "agent", "create", "bob", "--system-prompt", "p", "--compact-at", "0.5", "--json"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(created["compact_at"], 0.5);
    for prompt in ["hello", "hello again"] {
        let out = run_in(d, &["--model", &model, "agent", "command", "bob", prompt]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let out = run_in(d, &["agent", "status", "bob"]);
    assert!(text(&out.stdout).contains("Context: "), "status shows the context: {}", text(&out.stdout));
    let out = run_in(d, &["--model", &model, "agent", "compact", "bob", "keep", "names"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("SUMMARY: bob said hello twice"), "{}", text(&out.stdout));
    assert!(text(&out.stderr).contains("compacted"), "{}", text(&out.stderr));
    let events = json_lines(&run_in(d, &["events", "--json"]).stdout);
    let compacted = events.iter().find(|e| e["type"] == "Compacted").expect("a Compacted event");
    assert_eq!(compacted["trigger"], "manual");
    assert!(compacted["replaced"].as_array().is_some_and(|r| !r.is_empty()), "the replaced messages are kept");
    // The agent goes on after the compaction.
    let out = run_in(d, &["--model", &model, "agent", "command", "bob", "still there?"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("bob here"));
}
