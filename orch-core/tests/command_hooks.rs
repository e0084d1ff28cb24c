//! Claude Code settings hooks (`.claude/settings.json`, `.claude/settings.local.json`) guarding native agents.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use orch_core::executor::{AgentRunner, RunOptions};
use orch_core::hook::HookRegistry;
use orch_core::hook::command::{SettingsProblem, register_settings_hooks};
use orch_core::model::ModelRequest;
use orch_core::model::scripted::{ScriptReply, ScriptedModel};
use orch_core::store::{EventQuery, MemoryStore, Store};
use orch_core::tool::ToolRegistry;
use orch_core::wire::{ContentBlock, Event, EventRecord, Role};
use serde_json::{Value, json};

/// All tool results the model was given in a request's last message.
fn last_results(req: &ModelRequest) -> Vec<(String, bool)> {
    match req.messages.last() {
        Some(m) if m.role == Role::User => m
            .content
            .iter()
            .filter_map(|b| match b {
                ContentBlock::ToolResult { content, is_error, .. } => Some((content.clone(), *is_error)),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn write_settings(dir: &Path, file: &str, settings: &Value) {
    std::fs::create_dir_all(dir.join(".claude")).unwrap();
    std::fs::write(dir.join(".claude").join(file), serde_json::to_string_pretty(settings).unwrap()).unwrap();
}

fn pre_tool(matcher: &str, command: &str, timeout: Option<u64>) -> Value {
    let mut h = json!({"type": "command", "command": command});
    if let Some(t) = timeout {
        h["timeout"] = json!(t);
    }
    json!({"hooks": {"PreToolUse": [{"matcher": matcher, "hooks": [h]}]}})
}

struct Run {
    store: Arc<MemoryStore>,
    results: Vec<(String, bool)>,
    problems: Vec<SettingsProblem>,
}

/// Runs one native agent in `dir` (whose settings are already written) that makes one tool call and
/// then answers "ok"; returns the tool results the model saw.
async fn run_one_call(dir: &Path, tool: &str, input: Value) -> Run {
    let mut hooks = HookRegistry::new();
    let problems = register_settings_hooks(&mut hooks, dir);
    let results = Arc::new(Mutex::new(Vec::new()));
    let r2 = results.clone();
    let tool = tool.to_string();
    let model = ScriptedModel::from_fn(move |req: &ModelRequest| {
        let res = last_results(req);
        if res.is_empty() {
            return Ok(ScriptReply::tool_use("call_1", tool.clone(), input.clone()));
        }
        r2.lock().unwrap().extend(res);
        Ok(ScriptReply::text("ok"))
    });
    let store = Arc::new(MemoryStore::new());
    let runner =
        AgentRunner::builder(store.clone(), Arc::new(model)).tools(ToolRegistry::with_builtins()).hooks(hooks).build();
    let agent = runner.ensure_agent("tester", "scripted", dir.to_str().unwrap()).await.unwrap();
    let out = runner.run(agent.id, "do it", RunOptions::default()).await.unwrap();
    assert_eq!(out.final_text.as_deref(), Some("ok"));
    let results = results.lock().unwrap().clone();
    Run { store, results, problems }
}

async fn hook_events(store: &MemoryStore) -> Vec<(String, String, Option<String>)> {
    let evs: Vec<EventRecord> = store.read_events(&EventQuery::default()).await.unwrap();
    evs.into_iter()
        .filter_map(|e| match e.event {
            Event::HookInvoked { hook_event, decision, detail, .. } => Some((hook_event, decision.to_string(), detail)),
            _ => None,
        })
        .collect()
}

const NO_RM_RF: &str = r#"if grep -q 'rm -rf'; then echo "rm -rf is forbidden by team policy" >&2; exit 2; fi; exit 0"#;

#[tokio::test]
async fn exit_2_blocks_a_bash_call_and_the_stderr_reaches_the_model() {
    let dir = tempfile::tempdir().unwrap();
    write_settings(dir.path(), "settings.json", &pre_tool("Bash", NO_RM_RF, Some(10)));
    std::fs::create_dir(dir.path().join("keep")).unwrap();
    let run = run_one_call(dir.path(), "Bash", json!({"command": "rm -rf keep"})).await;
    assert!(run.problems.is_empty(), "{:?}", run.problems);
    assert!(dir.path().join("keep").exists(), "the blocked command must not run");
    assert_eq!(run.results.len(), 1);
    assert!(run.results[0].1, "a block is a tool error");
    assert!(run.results[0].0.contains("rm -rf is forbidden by team policy"), "{}", run.results[0].0);
    let hooks = hook_events(&run.store).await;
    assert!(hooks.iter().any(|(ev, d, _)| ev == "PreToolUse" && d == "deny"), "{hooks:?}");

    // A harmless command passes the same hook.
    let run = run_one_call(dir.path(), "Bash", json!({"command": "touch made.txt"})).await;
    assert!(dir.path().join("made.txt").exists());
    assert!(!run.results[0].1, "{:?}", run.results);
}

#[tokio::test]
async fn json_permission_decision_deny_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let out = json!({"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": "deny",
        "permissionDecisionReason": "json says no"}});
    let cmd = format!("cat >/dev/null; echo '{out}'");
    write_settings(dir.path(), "settings.json", &pre_tool("Bash", &cmd, None));
    let run = run_one_call(dir.path(), "Bash", json!({"command": "touch made.txt"})).await;
    assert!(!dir.path().join("made.txt").exists(), "the denied command must not run");
    assert!(run.results[0].1);
    assert!(run.results[0].0.contains("json says no"), "{}", run.results[0].0);
}

#[tokio::test]
async fn updated_input_rewrites_a_write() {
    let dir = tempfile::tempdir().unwrap();
    let script = r#"import json, sys
d = json.load(sys.stdin)
i = d["tool_input"]
i["content"] = "rewritten by hook\n"
print(json.dumps({"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": "allow", "updatedInput": i}}))
"#;
    std::fs::write(dir.path().join("rewrite.py"), script).unwrap();
    write_settings(
        dir.path(),
        "settings.json",
        &pre_tool("Write|Edit", "python3 \"$CLAUDE_PROJECT_DIR/rewrite.py\"", None),
    );
    let run = run_one_call(dir.path(), "Write", json!({"file_path": "a.txt", "content": "original"})).await;
    assert!(!run.results[0].1, "{:?}", run.results);
    assert_eq!(std::fs::read_to_string(dir.path().join("a.txt")).unwrap(), "rewritten by hook\n");
}

#[tokio::test]
async fn additional_context_reaches_the_tool_result() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "some notes\n").unwrap();
    let out = json!({"hookSpecificOutput": {"hookEventName": "PostToolUse",
        "additionalContext": "Remember: notes are confidential."}});
    let cmd = format!("cat >/dev/null; echo '{out}'");
    let settings =
        json!({"hooks": {"PostToolUse": [{"matcher": "Read", "hooks": [{"type": "command", "command": cmd}]}]}});
    write_settings(dir.path(), "settings.json", &settings);
    let run = run_one_call(dir.path(), "Read", json!({"file_path": "notes.txt"})).await;
    assert!(!run.results[0].1, "{:?}", run.results);
    assert!(run.results[0].0.contains("some notes"), "{}", run.results[0].0);
    assert!(run.results[0].0.contains("Remember: notes are confidential."), "{}", run.results[0].0);
}

fn process_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // A zombie waiting for its (re)parent to reap it is dead too.
        Ok(stat) => stat.rsplit(')').next().map(|rest| rest.trim_start().starts_with('Z')).unwrap_or(false),
    }
}

#[tokio::test]
async fn a_hanging_hook_is_cut_at_its_timeout_and_its_processes_killed() {
    let dir = tempfile::tempdir().unwrap();
    let cmd = r#"cat >/dev/null; sleep 30 & echo $! > "$CLAUDE_PROJECT_DIR/sleep.pid"; wait"#;
    write_settings(dir.path(), "settings.json", &pre_tool("Glob", cmd, Some(1)));
    let started = Instant::now();
    let run = run_one_call(dir.path(), "Glob", json!({"pattern": "*"})).await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(took >= Duration::from_millis(900), "took {took:?}");
    // The hook failing counts as Continue: the tool ran.
    assert!(!run.results[0].1, "{:?}", run.results);
    let hooks = hook_events(&run.store).await;
    let (_, decision, detail) = hooks.iter().find(|(ev, _, _)| ev == "PreToolUse").unwrap();
    assert_eq!(decision, "error");
    assert!(detail.as_deref().unwrap().contains("timed out after 1 s"), "{detail:?}");
    let pid: u32 = std::fs::read_to_string(dir.path().join("sleep.pid")).unwrap().trim().parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(3);
    while !process_gone(pid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(process_gone(pid), "the hook's sleep {pid} must be killed");
}

#[tokio::test]
async fn other_exit_codes_are_recorded_as_errors_and_do_not_block() {
    let dir = tempfile::tempdir().unwrap();
    write_settings(dir.path(), "settings.json", &pre_tool("Bash", "echo broken script >&2; exit 1", None));
    let run = run_one_call(dir.path(), "Bash", json!({"command": "touch made.txt"})).await;
    assert!(dir.path().join("made.txt").exists());
    let hooks = hook_events(&run.store).await;
    let (_, decision, detail) = hooks.iter().find(|(ev, _, _)| ev == "PreToolUse").unwrap();
    assert_eq!(decision, "error");
    let detail = detail.as_deref().unwrap();
    assert!(detail.contains("code 1") && detail.contains("broken script"), "{detail}");
}

#[tokio::test]
async fn hooks_receive_the_documented_stdin_json() {
    let dir = tempfile::tempdir().unwrap();
    let save = |name: &str| json!([{"hooks": [{"type": "command", "command": format!("cat > \"$CLAUDE_PROJECT_DIR/{name}.json\"")}]}]);
    let settings = json!({"hooks": {
        "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "cat > pre.json"}]}],
        "PostToolUse": save("post"),
        "UserPromptSubmit": save("prompt"),
        "Stop": save("stop"),
    }});
    write_settings(dir.path(), "settings.json", &settings);
    run_one_call(dir.path(), "Bash", json!({"command": "echo hello"})).await;
    let read = |name: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(format!("{name}.json"))).unwrap()).unwrap()
    };
    let cwd = dir.path().to_str().unwrap();

    let pre = read("pre");
    for key in ["session_id", "transcript_path", "cwd", "hook_event_name", "tool_name", "tool_input", "tool_use_id"] {
        assert!(pre.get(key).is_some(), "PreToolUse stdin lacks {key}: {pre}");
    }
    assert_eq!(pre["hook_event_name"], "PreToolUse");
    assert_eq!(pre["cwd"], cwd);
    assert_eq!(pre["tool_name"], "Bash");
    assert_eq!(pre["tool_input"], json!({"command": "echo hello"}));
    assert_eq!(pre["tool_use_id"], "call_1");
    assert!(!pre["session_id"].as_str().unwrap().is_empty());

    let post = read("post");
    assert_eq!(post["hook_event_name"], "PostToolUse");
    assert_eq!(post["tool_use_id"], "call_1");
    assert!(post["tool_response"].as_str().unwrap().contains("hello"), "{post}");
    assert_eq!(post["session_id"], pre["session_id"]);

    let prompt = read("prompt");
    assert_eq!(prompt["hook_event_name"], "UserPromptSubmit");
    assert_eq!(prompt["prompt"], "do it");
    assert_eq!(prompt["cwd"], cwd);

    let stop = read("stop");
    assert_eq!(stop["hook_event_name"], "Stop");
    assert_eq!(stop["stop_hook_active"], false);
}

#[tokio::test]
async fn invalid_settings_are_reported_and_settings_local_still_loads() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".claude")).unwrap();
    std::fs::write(dir.path().join(".claude/settings.json"), "{\"hooks\": {").unwrap();
    write_settings(dir.path(), "settings.local.json", &pre_tool("Bash", NO_RM_RF, None));
    std::fs::create_dir(dir.path().join("keep")).unwrap();
    let run = run_one_call(dir.path(), "Bash", json!({"command": "rm -rf keep"})).await;
    assert_eq!(run.problems.len(), 1, "{:?}", run.problems);
    assert!(run.problems[0].file.ends_with(".claude/settings.json"));
    assert!(run.problems[0].to_string().contains("invalid JSON"), "{}", run.problems[0]);
    assert!(dir.path().join("keep").exists(), "the settings.local.json hook must still block");
    assert!(run.results[0].0.contains("forbidden"), "{}", run.results[0].0);
}

#[tokio::test]
async fn both_files_load_in_order_and_bad_entries_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let settings = json!({"hooks": {
        "PreToolUse": [{"matcher": "Bash", "hooks": [
            {"type": "command", "command": "cat >/dev/null; echo shared >> order.txt"},
            {"type": "prompt", "prompt": "is this ok?"}
        ]}],
        "Notification": [{"hooks": [{"type": "command", "command": "true"}]}]
    }});
    write_settings(dir.path(), "settings.json", &settings);
    let local = json!({"hooks": {"PreToolUse": [
        {"matcher": "*", "hooks": [{"type": "command", "command": "cat >/dev/null; echo local >> order.txt"}]},
        {"matcher": "(", "hooks": [{"type": "command", "command": "true"}]}
    ]}});
    write_settings(dir.path(), "settings.local.json", &local);
    let run = run_one_call(dir.path(), "Bash", json!({"command": "true"})).await;
    assert_eq!(std::fs::read_to_string(dir.path().join("order.txt")).unwrap(), "shared\nlocal\n");
    let msgs: Vec<String> = run.problems.iter().map(ToString::to_string).collect();
    assert_eq!(msgs.len(), 3, "{msgs:?}");
    assert!(msgs.iter().any(|m| m.contains("\"prompt\" is not supported")), "{msgs:?}");
    assert!(
        msgs.iter().any(|m| m.contains("\"Notification\" is not supported") && m.contains("PreToolUse, PostToolUse")),
        "the skipped event is named with the supported ones: {msgs:?}"
    );
    assert!(msgs.iter().any(|m| m.contains("settings.local.json") && m.contains("matcher")), "{msgs:?}");
}

#[tokio::test]
async fn a_stop_hook_exiting_2_sends_the_model_back_to_work() {
    let dir = tempfile::tempdir().unwrap();
    let cmd = r#"cat >/dev/null; if [ ! -e stopped-once ]; then touch stopped-once; echo "run the tests first" >&2; exit 2; fi"#;
    write_settings(
        dir.path(),
        "settings.json",
        &json!({"hooks": {"Stop": [{"hooks": [{"type": "command", "command": cmd}]}]}}),
    );
    let mut hooks = HookRegistry::new();
    assert!(register_settings_hooks(&mut hooks, dir.path()).is_empty());
    let model = ScriptedModel::from_fn(|req: &ModelRequest| {
        let last = req.messages.last().and_then(|m| m.last_text()).unwrap_or("").to_string();
        Ok(if last.contains("run the tests first") {
            ScriptReply::text("tests pass")
        } else {
            ScriptReply::text("all done")
        })
    });
    let store = Arc::new(MemoryStore::new());
    let runner = AgentRunner::builder(store, Arc::new(model)).hooks(hooks).build();
    let agent = runner.ensure_agent("tester", "scripted", dir.path().to_str().unwrap()).await.unwrap();
    let out = runner.run(agent.id, "work", RunOptions::default()).await.unwrap();
    assert_eq!(out.num_turns, 2);
    assert_eq!(out.final_text.as_deref(), Some("tests pass"));
}
