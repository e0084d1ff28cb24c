//! `orch db …` and `--db postgres://…` as a user runs them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;
use support::{drop_pg_schema as drop_schema, orch, pg_url, text};

fn demo_model() -> String {
    let p: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/scripts/demo.json");
    format!("scripted:{}", p.display())
}

fn run(dir: &Path, extra_env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut c = orch();
    c.arg("--cwd").arg(dir);
    for (k, v) in extra_env {
        c.env(k, v);
    }
    c.args(args).output().unwrap()
}

#[test]
fn sqlite_status_and_prune() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &[], &["--model", &demo_model(), "run", "--agent", "old", "write a greeting for Ada"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(dir.path(), &[], &["--model", &demo_model(), "run", "--agent", "kept", "hello"]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let st: Value = serde_json::from_slice(&run(dir.path(), &[], &["db", "status", "--json"]).stdout).unwrap();
    assert_eq!(st["backend"], "sqlite");
    let events = st["events"].as_u64().unwrap();
    assert!(events > 20);
    assert_eq!(st["last_seq"].as_u64().unwrap(), events);
    assert!(st["size_bytes"].as_u64().unwrap() > 0);
    let human = text(&run(dir.path(), &[], &["db", "status"]).stdout);
    assert!(human.contains("schema version") && human.contains(&format!("events:         {events}")), "{human}");
    let m = run(dir.path(), &[], &["db", "migrate"]);
    assert!(m.status.success() && text(&m.stdout).contains("schema version"), "{}", text(&m.stderr));

    // Archive the first agent (as `agent delete` will) and prune its events.
    let db = dir.path().join(".orch/orch.db");
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute("UPDATE agents SET archived = 1 WHERE name = 'old'", []).unwrap();
    }
    let out = run(dir.path(), &[], &["db", "prune", "--before", "2000-01-01"]);
    assert!(text(&out.stdout).contains("removed 0 events"), "{}", text(&out.stdout));
    let out = run(dir.path(), &[], &["db", "prune", "--before", "2999-01-01T00:00:00Z"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let removed: u64 = text(&out.stdout).split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(removed > 10, "{}", text(&out.stdout));
    let st: Value = serde_json::from_slice(&run(dir.path(), &[], &["db", "status", "--json"]).stdout).unwrap();
    assert_eq!(st["events"].as_u64().unwrap(), events - removed);
    assert_eq!(st["last_seq"].as_u64().unwrap(), events, "seqs are kept");
    let kept = text(&run(dir.path(), &[], &["events", "--agent", "kept"]).stdout);
    assert!(kept.lines().count() > 5, "{kept}");

    let out = run(dir.path(), &[], &["db", "prune", "--before", "last tuesday"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--before"));
}

#[test]
#[ignore = "needs PostgreSQL on 127.0.0.1:5432 (or ORCH_TEST_PG_URL); scripts/test.sh runs it with --ignored"]
fn postgres_store_from_the_cli() {
    let url = pg_url();
    let schema = format!("orch_cli_{}", uuid_like());
    struct Cleanup(String, String);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            drop_schema(&self.0, &self.1);
        }
    }
    let _cleanup = Cleanup(url.clone(), schema.clone());
    let env = [("ORCH_PG_SCHEMA", schema.as_str())];
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &env, &["--db", &url, "--model", &demo_model(), "run", "write a greeting for Ada"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("Done: hello.txt holds a 42-byte greeting."));
    assert!(!dir.path().join(".orch").exists(), "nothing goes to SQLite when --db is PostgreSQL");
    let ev = run(dir.path(), &env, &["--db", &url, "events", "--json"]);
    let lines: Vec<Value> = text(&ev.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(lines.iter().any(|e| e["type"] == "ToolUse" && e["tool_name"] == "Bash"));
    let st: Value =
        serde_json::from_slice(&run(dir.path(), &env, &["--db", &url, "db", "status", "--json"]).stdout).unwrap();
    assert_eq!(st["backend"], "postgres");
    assert_eq!(st["events"].as_u64().unwrap(), lines.len() as u64);
    // ORCH_DATABASE_URL works too.
    let list = orch()
        .arg("--cwd")
        .arg(dir.path())
        .env("ORCH_DATABASE_URL", &url)
        .env("ORCH_PG_SCHEMA", &schema)
        .args(["agent", "list"])
        .output()
        .unwrap();
    assert!(text(&list.stdout).contains("idle"), "{}", text(&list.stderr));
}

#[test]
#[ignore = "needs PostgreSQL on 127.0.0.1:5432 (or ORCH_TEST_PG_URL); scripts/test.sh runs it with --ignored"]
fn postgres_errors_are_clear_and_never_show_the_password() {
    let _url = pg_url();
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("postgres://orch:hunter2secret@127.0.0.1:1/test", "127.0.0.1:1"),
        ("postgres://postgres:hunter2secret@127.0.0.1:5432/no_such_db_for_orch", "no_such_db_for_orch"),
        ("postgres://postgres:hunter2secret@127.0.0.1:notaport/test", "notaport"),
    ];
    for (url, needle) in cases {
        let out = run(dir.path(), &[], &["--db", url, "agent", "list"]);
        let e = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{url}: {e}");
        assert!(e.contains(needle), "{url}: {e}");
        assert!(!e.contains("hunter2secret"), "the password leaked: {e}");
    }
}

fn uuid_like() -> String {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{:x}{:x}", t, std::process::id())
}

#[test]
fn processes_creating_one_new_database_at_once_all_succeed() {
    // Four processes open a database that does not exist yet, at the same moment, thirty times over.
    for round in 0..30 {
        let dir = tempfile::tempdir().unwrap();
        let children: Vec<_> = (0..4)
            .map(|_| {
                orch()
                    .arg("--cwd")
                    .arg(dir.path())
                    .args(["agent", "list", "--json"])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for c in children {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success(), "round {round}: {}", text(&out.stderr));
        }
    }
}

/// JSON nested `depth` levels deep (arrays in objects).
fn nested(depth: usize) -> String {
    let mut s = String::from("1");
    for i in 0..depth {
        s = if i % 2 == 0 { format!("[{s}]") } else { format!("{{\"k\":{s}}}") };
    }
    s
}

#[test]
fn events_of_unknown_types_and_undecodable_rows_are_listed_and_followed() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &[], &["--model", &demo_model(), "run", "--agent", "ada", "write a greeting for Ada"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // A newer orch appended an event type this build does not know; a row is too deeply nested to read.
    let db = dir.path().join(".orch/orch.db");
    let last: i64 = {
        let conn = rusqlite::Connection::open(&db).unwrap();
        let last: i64 = conn.query_row("SELECT last FROM event_seq", [], |r| r.get(0)).unwrap();
        let agent: String = conn.query_row("SELECT id FROM agents WHERE name = 'ada'", [], |r| r.get(0)).unwrap();
        let insert = |seq: i64, kind: &str, payload: &str| {
            conn.execute(
                "INSERT INTO events (seq, ts, agent_id, category, type, payload) \
                 VALUES (?1, '2026-01-01T00:00:00Z', ?2, 'response', ?3, ?4)",
                rusqlite::params![seq, agent, kind, payload],
            )
            .unwrap();
        };
        insert(last + 1, "FromANewerOrch", r#"{"type":"FromANewerOrch","answer":42}"#);
        insert(last + 2, "ToolUse", &format!(r#"{{"type":"ToolUse","tool_input":{}}}"#, nested(130)));
        conn.execute("UPDATE event_seq SET last = ?1", [last + 2]).unwrap();
        last
    };
    let out = run(dir.path(), &[], &["--model", &demo_model(), "run", "--agent", "ada", "hello"]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let ev = run(dir.path(), &[], &["events", "--json"]);
    assert!(ev.status.success(), "{}", text(&ev.stderr));
    let all = support::json_lines(&ev.stdout);
    let seqs: Vec<u64> = all.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "every row, in order");
    assert!(seqs.len() as i64 > last + 2, "the later run's events follow");
    let future = &all[last as usize];
    assert_eq!((future["type"].as_str(), future["answer"].as_u64()), (Some("FromANewerOrch"), Some(42)));
    let bad = &all[last as usize + 1];
    assert_eq!((bad["type"].as_str(), bad["stored_type"].as_str()), (Some("Undecodable"), Some("ToolUse")));
    assert!(bad["error"].as_str().unwrap().contains("recursion limit"), "{bad}");

    let human = run(dir.path(), &[], &["events"]);
    assert!(human.status.success(), "{}", text(&human.stderr));
    let lines = text(&human.stdout);
    assert_eq!(lines.lines().count(), seqs.len(), "{lines}");
    assert!(lines.contains("FromANewerOrch"), "{lines}");
    assert!(lines.contains("Undecodable ToolUse event"), "{lines}");

    let status = run(dir.path(), &[], &["agent", "status", "ada"]);
    assert!(status.status.success(), "{}", text(&status.stderr));

    // A follower replays past both rows (it would end at the first one that failed to decode).
    let mut follower = orch()
        .arg("--cwd")
        .arg(dir.path())
        .args(["events", "--follow", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut seen = Vec::new();
    {
        use std::io::BufRead;
        let mut lines = std::io::BufReader::new(follower.stdout.take().unwrap()).lines();
        while seen.len() < all.len() {
            match lines.next() {
                Some(Ok(line)) => seen.push(serde_json::from_str::<Value>(&line).unwrap()),
                _ => break,
            }
        }
    }
    let ok = std::process::Command::new("kill").args(["-INT", &follower.id().to_string()]).status().unwrap();
    assert!(ok.success());
    let out = follower.wait_with_output().unwrap();
    assert_eq!(seen, all, "stderr: {}", text(&out.stderr));
}
