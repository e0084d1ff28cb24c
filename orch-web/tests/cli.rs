//! Tests of the `orch` binary as a user runs it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{json_lines, orch, run_in, text};

fn demo_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/scripts/demo.json")
}

#[test]
fn demo_run_uses_tools_and_records_events() {
    let dir = tempfile::tempdir().unwrap();
    let model = format!("scripted:{}", demo_script().display());
    let out = run_in(dir.path(), &["--model", &model, "run", "write a greeting for Ada"]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("I'll write a greeting for Ada to hello.txt."), "{stdout}");
    assert!(stdout.contains("Done: hello.txt holds a 42-byte greeting."), "{stdout}");
    assert!(text(&out.stderr).contains("Write: hello.txt"), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("hello.txt")).unwrap(),
        "Hello, Ada! Greetings from an orch agent.\n"
    );
    assert!(dir.path().join(".orch/orch.db").exists());

    let ev = run_in(dir.path(), &["events", "--json"]);
    assert!(ev.status.success(), "{}", text(&ev.stderr));
    let events = json_lines(&ev.stdout);
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    for t in ["AgentCreated", "UserPromptSubmit", "Thinking", "ToolUse", "PreToolUse", "ToolResult", "Stop", "Result"] {
        assert!(types.contains(&t), "missing {t} in {types:?}");
    }
    let tools: Vec<&str> =
        events.iter().filter(|e| e["type"] == "ToolUse").map(|e| e["tool_name"].as_str().unwrap()).collect();
    assert_eq!(tools, ["Write", "Read", "Bash"]);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["seq"].as_u64().unwrap(), i as u64 + 1);
    }

    // Human-readable listing and agent list.
    let ev = run_in(dir.path(), &["events", "--agent", "agent", "--limit", "3"]);
    assert_eq!(text(&ev.stdout).lines().count(), 3, "{}", text(&ev.stdout));
    let list = run_in(dir.path(), &["agent", "list"]);
    let l = text(&list.stdout);
    assert!(l.contains("agent") && l.contains("idle"), "{l}");

    // --json run prints events as JSON lines.
    let out = run_in(dir.path(), &["--model", &model, "run", "--json", "hello?"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines = json_lines(&out.stdout);
    assert!(lines.iter().any(|e| e["type"] == "Text" && e["text"].as_str().unwrap().contains("only knows one job")));
    assert_eq!(lines.last().unwrap()["type"], "AgentStatusChanged");
}

#[test]
fn model_spec_errors_name_orch_model_and_the_forms() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_in(dir.path(), &["run", "hi"]);
    assert_eq!(out.status.code(), Some(2));
    let e = text(&out.stderr);
    assert!(e.contains("ORCH_MODEL") && e.contains("scripted:PATH") && e.contains("anthropic:MODEL"), "{e}");

    // A bad spec names where it came from: the flag, or the variable.
    let out = run_in(dir.path(), &["--model", "gpt5", "run", "hi"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--model"), "{}", text(&out.stderr));
    let out = orch().arg("--cwd").arg(dir.path()).env("ORCH_MODEL", "gpt5").args(["run", "hi"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("ORCH_MODEL"), "{}", text(&out.stderr));

    let out =
        orch().arg("--cwd").arg(dir.path()).env("ORCH_MODEL", "nosuch:thing").args(["run", "hi"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unknown provider 'nosuch'"), "{}", text(&out.stderr));
    // Nothing was created for a failed start.
    assert!(!dir.path().join(".orch").exists());
}

#[test]
fn malformed_script_reports_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        "{\"steps\": [\n  {\"reply\": [{\"type\": \"text\", \"text\": \"a\"}]}\n  {\"reply\": []}\n]}\n",
    )
    .unwrap();
    let out = run_in(dir.path(), &["--model", &format!("scripted:{}", bad.display()), "run", "hi"]);
    assert_eq!(out.status.code(), Some(2));
    let e = text(&out.stderr);
    assert!(e.contains("line 3"), "{e}");
    assert!(e.contains("column"), "{e}");
}

#[test]
fn bad_databases_give_clear_errors_and_stay_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let model = format!("scripted:{}", demo_script().display());

    // A path whose parent is a file cannot be created.
    std::fs::write(dir.path().join("afile"), "x").unwrap();
    let db = dir.path().join("afile/orch.db");
    let out = run_in(dir.path(), &["--db", &format!("sqlite://{}", db.display()), "--model", &model, "run", "hi"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("afile"), "{}", text(&out.stderr));

    // A corrupt file is reported and left as it was.
    let corrupt = dir.path().join("corrupt.db");
    let junk: Vec<u8> = (0..8192u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&corrupt, &junk).unwrap();
    let out = run_in(dir.path(), &["--db", corrupt.to_str().unwrap(), "agent", "list"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("not a valid orch database"), "{}", text(&out.stderr));
    assert_eq!(std::fs::read(&corrupt).unwrap(), junk);

    // A PostgreSQL server that is not there: a clear error naming the URL, without its password.
    let out = run_in(dir.path(), &["--db", "postgres://u:secret@127.0.0.1:1/x", "agent", "list"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("127.0.0.1:1"), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("secret"), "{}", text(&out.stderr));
}

#[test]
fn database_from_a_newer_orch_is_refused_and_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let model = format!("scripted:{}", demo_script().display());
    let out = run_in(dir.path(), &["--model", &model, "run", "write a greeting for Bo"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let db = dir.path().join(".orch/orch.db");
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        let v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        conn.execute_batch(&format!("PRAGMA user_version = {}", v + 100)).unwrap();
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
    }
    let before = std::fs::read(&db).unwrap();
    for args in [&["agent", "list"][..], &["events"][..], &["--model", &model, "run", "hi"][..]] {
        let out = run_in(dir.path(), args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out.stderr));
        let e = text(&out.stderr);
        assert!(e.contains("newer") && e.contains("orch.db"), "{e}");
    }
    assert_eq!(std::fs::read(&db).unwrap(), before, "the newer database must not be modified");
}

#[test]
fn usage_errors_exit_2() {
    let out = orch().args(["run"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = orch().args(["frobnicate"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = orch().args(["--cwd", "/definitely/not/here", "agent", "list"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("/definitely/not/here"));
}

fn sigint(child: &Child) {
    let ok = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(ok.success());
}

fn wait_with_timeout(mut child: Child, limit: Duration) -> Output {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("process did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn ctrl_c_interrupts_the_run_records_stop_and_exits_130() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("slow.json");
    std::fs::write(
        &script,
        r#"{"steps": [{"when": "^nap", "reply": [{"type": "tool_use", "name": "Bash", "input": {"command": "echo started > started; sleep 30"}}]},
                     {"repeat": true, "reply": [{"type": "text", "text": "awake"}]}]}"#,
    )
    .unwrap();
    let child = orch()
        .arg("--cwd")
        .arg(dir.path())
        .args(["--model", &format!("scripted:{}", script.display()), "run", "nap"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !dir.path().join("started").exists() {
        assert!(start.elapsed() < Duration::from_secs(30), "the command never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    sigint(&child);
    let out = wait_with_timeout(child, Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(130), "stderr: {}", text(&out.stderr));
    let ev = json_lines(&run_in(dir.path(), &["events", "--json"]).stdout);
    assert!(ev.iter().any(|e| e["type"] == "Stop" && e["reason"] == "interrupted"), "{ev:?}");
    let list = json_lines(&run_in(dir.path(), &["agent", "list", "--json"]).stdout);
    assert_eq!(list[0]["status"], "idle");
}

#[test]
fn two_runs_at_once_and_a_follower_see_every_event_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("busy.json");
    // Each run: 5 tool steps with a short Bash sleep, so the two runs interleave.
    std::fs::write(
        &script,
        r#"{"steps": [{"repeat": true,
                        "reply": [{"type": "tool_use", "name": "Bash", "input": {"command": "sleep 0.05; echo tick"}}]}]}"#,
    )
    .unwrap();
    let model = format!("scripted:{}", script.display());
    // Create the database first so the follower opens an existing one.
    let out = run_in(dir.path(), &["agent", "list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let follower = orch()
        .arg("--cwd")
        .arg(dir.path())
        .args(["events", "--follow", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let spawn_run = |name: &str| {
        orch()
            .arg("--cwd")
            .arg(dir.path())
            .args(["--model", &model, "run", "--agent", name, "--max-turns", "5", "go"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let a = spawn_run("alpha");
    let b = spawn_run("beta");
    let oa = wait_with_timeout(a, Duration::from_secs(120));
    let ob = wait_with_timeout(b, Duration::from_secs(120));
    assert!(oa.status.success(), "alpha: {}", text(&oa.stderr));
    assert!(ob.status.success(), "beta: {}", text(&ob.stderr));
    // Everything both runs recorded.
    let all = json_lines(&run_in(dir.path(), &["events", "--json"]).stdout);
    let last = all.last().unwrap()["seq"].as_u64().unwrap();
    assert_eq!(all.len() as u64, last);
    // Give the follower time to print up to `last`, then stop it.
    std::thread::sleep(Duration::from_millis(1500));
    sigint(&follower);
    let out = wait_with_timeout(follower, Duration::from_secs(20));
    let seen = json_lines(&out.stdout);
    let seqs: Vec<u64> = seen.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=last).collect::<Vec<_>>(), "the follower must see every event once, in order");
    assert_eq!(seen, all);
    // Both agents ran all their steps.
    assert_eq!(all.iter().filter(|e| e["type"] == "Stop" && e["reason"] == "max_turns").count(), 2);
    assert_eq!(all.iter().filter(|e| e["type"] == "ToolResult").count(), 10);
}

#[test]
fn default_model_is_anthropic_sonnet_when_a_key_is_set() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on port 9 of loopback: the call fails fast, without retries.
    let out = orch()
        .arg("--cwd")
        .arg(dir.path())
        .env("ANTHROPIC_API_KEY", "sk-test-secret-value")
        .env("ANTHROPIC_BASE_URL", "http://127.0.0.1:9")
        .env("ORCH_MODEL_MAX_RETRIES", "0")
        .args(["run", "hello"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let e = text(&out.stderr);
    assert!(e.contains("connect") || e.contains("connection"), "{e}");
    assert!(!e.contains("sk-test-secret-value"), "the key leaked: {e}");
    let list = json_lines(&run_in(dir.path(), &["agent", "list", "--json"]).stdout);
    assert!(list[0]["model"].as_str().unwrap().starts_with("anthropic:claude-sonnet"), "{list:?}");
    assert_eq!(list[0]["status"], "blocked");

    // A provider whose key is missing is a usage error naming the variable.
    let out = run_in(dir.path(), &["--model", "anthropic:claude-sonnet-4-5", "run", "hi"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("ANTHROPIC_API_KEY"), "{}", text(&out.stderr));
}

#[test]
fn models_lists_providers_aliases_prices_and_never_a_key() {
    let out = orch().env("ANTHROPIC_API_KEY", "sk-ant-very-secret").args(["models"]).output().unwrap();
    assert!(out.status.success());
    let s = text(&out.stdout);
    for needle in ["anthropic:MODEL", "openai:MODEL", "ollama:MODEL", "claude-code", "sonnet", "claude-haiku-4-5"] {
        assert!(s.contains(needle), "missing {needle}: {s}");
    }
    assert!(s.contains("ANTHROPIC_API_KEY set"), "{s}");
    assert!(s.contains("OPENAI_API_KEY not set"), "{s}");
    assert!(!s.contains("very-secret"));
    let out = orch().env("ANTHROPIC_API_KEY", "sk-ant-very-secret").args(["models", "--json"]).output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let anthropic = v["providers"].as_array().unwrap().iter().find(|p| p["name"] == "anthropic").unwrap();
    assert_eq!(anthropic["key_set"], true);
    assert_eq!(v["aliases"]["opus"], "claude-opus-4-8");
    // Aliases can be overridden with a file.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("aliases.json");
    std::fs::write(&file, r#"{"Sonnet": "claude-sonnet-4-5", "mini": "gpt-4.1-mini"}"#).unwrap();
    let out = orch().env("ORCH_MODEL_ALIASES", &file).args(["models", "--json"]).output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["aliases"]["sonnet"], "claude-sonnet-4-5");
    assert_eq!(v["aliases"]["mini"], "gpt-4.1-mini");
    std::fs::write(&file, "{not json").unwrap();
    let out = orch().env("ORCH_MODEL_ALIASES", &file).args(["models"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("ORCH_MODEL_ALIASES") && text(&out.stderr).contains("line 1"));
    assert!(v["prices_usd_per_mtok"]["claude-sonnet-4-5"]["input"].as_f64().unwrap() > 0.0);
    assert!(!text(&out.stdout).contains("very-secret"));
}

#[test]
fn a_recorded_run_replays_offline_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let cassette = dir.path().join("cassettes/demo.jsonl");
    let model = format!("scripted:{}", demo_script().display());
    let rec = run_in(
        dir.path(),
        &["--model", &model, "--record", cassette.to_str().unwrap(), "run", "write a greeting for Ada"],
    );
    assert!(rec.status.success(), "{}", text(&rec.stderr));
    assert_eq!(std::fs::read_to_string(&cassette).unwrap().lines().count(), 4);

    let dir2 = tempfile::tempdir().unwrap();
    let replay = format!("replay:{}", cassette.display());
    let out = run_in(dir2.path(), &["--model", &replay, "run", "write a greeting for Ada"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), text(&rec.stdout));
    assert!(dir2.path().join("hello.txt").exists());

    // A different prompt no longer matches the recording: a clear diff, exit 1.
    let dir3 = tempfile::tempdir().unwrap();
    let out = run_in(dir3.path(), &["--model", &replay, "run", "write a greeting for Bob"]);
    assert_eq!(out.status.code(), Some(1));
    let e = text(&out.stderr);
    assert!(e.contains("Ada") && e.contains("Bob"), "{e}");
}

#[test]
fn claude_settings_hooks_guard_native_agents() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".claude")).unwrap();
    std::fs::write(
        dir.path().join(".claude/settings.json"),
        r#"{"hooks": {"PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command",
            "command": "if grep -q 'wc -c'; then echo 'byte counting is not allowed here' >&2; exit 2; fi"}]}]}}"#,
    )
    .unwrap();
    let model = format!("scripted:{}", demo_script().display());
    let out = run_in(dir.path(), &["--model", &model, "run", "--json", "write a greeting for Ada"]);
    let events = json_lines(&out.stdout);
    let result = events.iter().find(|e| e["type"] == "ToolResult" && e["tool_name"] == "Bash").unwrap();
    assert_eq!(result["is_error"], true);
    assert!(result["content"].as_str().unwrap().contains("byte counting is not allowed here"), "{result}");
    assert!(events.iter().any(|e| e["type"] == "HookInvoked" && e["decision"] == "deny"));

    // A broken settings file is reported, never fatal.
    std::fs::write(dir.path().join(".claude/settings.local.json"), "{oops").unwrap();
    let out = run_in(dir.path(), &["--model", &model, "run", "hello"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("settings.local.json"), "{}", text(&out.stderr));
}

#[test]
fn slash_commands_expand_with_their_allowed_tools() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".claude/commands/greet")).unwrap();
    std::fs::write(
        dir.path().join(".claude/commands/greet/file.md"),
        "---\ndescription: Greet someone in a file\nargument-hint: [name] [file]\nallowed-tools: Write\nmodel: haiku\n---\nwrite a greeting for $1 into $2 ($ARGUMENTS)\n",
    )
    .unwrap();
    let script = dir.path().join("s.json");
    std::fs::write(
        &script,
        r#"{"steps": [{"when": "^write a greeting for (.+) into (\\S+) \\((.*)\\)", "reply": [{"type": "text", "text": "for $1 in $2, args [$3]"}]},
                     {"repeat": true, "reply": [{"type": "text", "text": "no match"}]}]}"#,
    )
    .unwrap();
    let model = format!("scripted:{}", script.display());
    let out = run_in(dir.path(), &["--model", &model, "run", "--json", "/greet:file \"Ada L\" hi.txt"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let events = json_lines(&out.stdout);
    let reply = events.iter().find(|e| e["type"] == "Text").unwrap();
    assert_eq!(reply["text"], "for Ada L in hi.txt, args [\"Ada L\" hi.txt]", "{reply}");
    let cost = events.iter().find(|e| e["type"] == "AgentCostsUpdated").unwrap();
    assert_eq!(cost["model"], "claude-haiku-4-5", "the command's model applies to this run");

    let out = run_in(dir.path(), &["--model", &model, "run", "/nosuch thing"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("/greet:file"), "{}", text(&out.stderr));
}

#[test]
fn templates_lists_commands_agents_and_problems() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".claude/commands/git")).unwrap();
    std::fs::create_dir_all(dir.path().join(".claude/agents")).unwrap();
    std::fs::write(
        dir.path().join(".claude/commands/git/commit.md"),
        "---\ndescription: Commit staged work\n---\nCommit.\n",
    )
    .unwrap();
    std::fs::write(dir.path().join(".claude/commands/broken.md"), "---\ndescription: never closed\n").unwrap();
    std::fs::write(
        dir.path().join(".claude/agents/reviewer.md"),
        "---\nname: reviewer\ndescription: Reviews diffs\ntools: Read, Grep\n---\nYou review code.\n",
    )
    .unwrap();
    let out = run_in(dir.path(), &["templates"]);
    assert!(out.status.success());
    let s = text(&out.stdout);
    assert!(s.contains("/git:commit") && s.contains("Commit staged work"), "{s}");
    assert!(s.contains("reviewer") && s.contains("Read, Grep"), "{s}");
    assert!(text(&out.stderr).contains("broken.md"), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&run_in(dir.path(), &["templates", "--json"]).stdout).unwrap();
    assert_eq!(v["commands"][0]["name"], "git:commit");
    assert_eq!(v["agents"][0]["tools"], serde_json::json!(["Read", "Grep"]));
    assert_eq!(v["problems"].as_array().unwrap().len(), 1);
}
