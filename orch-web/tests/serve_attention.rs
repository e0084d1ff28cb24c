//! A person in the loop, as users meet it: a `.claude/settings.json` rule that asks before `Write`
//! parks an agent's run; `GET /api/attention` lists it, also after the server is killed and started
//! again; approving through `/api` writes the file; `orch attention` and `orch deny` do the same from a
//! terminal, with or without a server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::server::{self, get, post, post_raw};
use support::{orch, scripted, text};

/// A project whose settings ask a person before every `Write`, and a model that writes hello.txt,
/// then says what became of it.
fn project() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(".claude")).unwrap();
    std::fs::write(dir.path().join(".claude/settings.json"), r#"{"permissions": {"ask": ["Write"]}}"#).unwrap();
    let script = json!({"steps": [
        {"when": "(?i)^write hello", "reply": [
            {"type": "tool_use", "name": "Write", "input": {"file_path": "hello.txt", "content": "hi\n"}}]},
        {"when": "^Wrote ", "reply": [{"type": "text", "text": "The file is written."}]},
        {"when": "denied by a person: (.*)", "reply": [{"type": "text", "text": "Understood, not writing: $1"}]},
        {"repeat": true, "reply": [{"type": "text", "text": "ok"}]}
    ]});
    let model = scripted(dir.path(), "agent.json", &script);
    (dir, model)
}

/// Polls `GET path` until `done` holds for its body, up to 15 s.
async fn wait_for(base: &str, path: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let (status, body) = get(base, path).await;
        if status == 200 && done(&body) {
            return body;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "timed out waiting for {what}: {status} {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Creates agent alice on the server and commands her to write hello.txt; returns the parked
/// approval as `/api/attention` lists it.
async fn park_alice(base: &str) -> Value {
    let (s, body) = post(base, "/api/agents", &json!({"name": "alice", "system_prompt": "You write files."})).await;
    assert_eq!(s, 201, "{body}");
    let (s, body) = post(base, "/api/agents/alice/command", &json!({"prompt": "write hello.txt"})).await;
    assert_eq!(s, 202, "{body}");
    let inbox = wait_for(base, "/api/attention", "the parked run", |b| b["count"] == 1).await;
    inbox["items"][0].clone()
}

fn written(dir: &Path) -> bool {
    dir.join("hello.txt").exists()
}

#[tokio::test]
async fn an_asked_write_parks_survives_a_restart_and_runs_once_approved_through_the_api() {
    let (dir, model) = project();
    let srv = server::start(dir.path(), &model, &[], &[]);
    let item = park_alice(&srv.base).await;
    assert_eq!(item["kind"], "approval");
    assert_eq!(item["agent_name"], "alice");
    assert_eq!(item["tool"], "Write");
    assert_eq!(item["input"]["file_path"], "hello.txt");
    assert!(item["question"].as_str().unwrap().contains("\"Write\""), "{item}");
    assert!(item["created_at"].is_string());
    let id = item["id"].as_str().unwrap().to_string();
    assert!(!written(dir.path()), "nothing is written before a person approves");
    let (_, alice) = get(&srv.base, "/api/agents/alice").await;
    assert_eq!(alice["status"], "waiting");
    // A new command is refused while she waits, naming the approval.
    let (s, e) = post(&srv.base, "/api/agents/alice/command", &json!({"prompt": "something else"})).await;
    assert_eq!(s, 409, "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains(&id), "{e}");

    // Killed and started again on the same directory: still parked, still listed, nothing run.
    drop(srv);
    let srv = server::start(dir.path(), &model, &[], &[]);
    let (s, inbox) = get(&srv.base, "/api/attention").await;
    assert_eq!(s, 200);
    assert_eq!(inbox["count"], 1, "{inbox}");
    assert_eq!(inbox["items"][0]["id"], id.as_str());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!written(dir.path()));
    let (_, pending) = get(&srv.base, "/api/approvals").await;
    assert_eq!(pending["approvals"][0]["status"], "pending");

    // Bad requests.
    let (s, e) = post(&srv.base, "/api/approvals/not-a-uuid/approve", &json!({})).await;
    assert_eq!((s, e["error"]["code"].as_str()), (400, Some("bad_request")));
    let nil = "00000000-0000-0000-0000-000000000000";
    let (s, _) = post(&srv.base, &format!("/api/approvals/{nil}/approve"), &json!({})).await;
    assert_eq!(s, 404);
    let (s, _) = post(&srv.base, &format!("/api/approvals/{id}/answer"), &json!({})).await;
    assert_eq!(s, 422);
    let (s, _) = post(&srv.base, &format!("/api/approvals/{id}/deny"), &json!({"reason": 7})).await;
    assert_eq!(s, 422);
    let (s, _) = post_raw(&srv.base, &format!("/api/approvals/{id}/deny"), "{not json").await;
    assert_eq!(s, 400);
    assert!(!written(dir.path()), "a refused request decides nothing");

    // Approved: the tool runs, the turn completes.
    let (s, body) = post(&srv.base, &format!("/api/approvals/{id}/approve"), &json!({})).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["approval"]["status"], "approved");
    wait_for(&srv.base, "/api/agents/alice", "alice idle", |a| a["status"] == "idle").await;
    assert_eq!(std::fs::read_to_string(dir.path().join("hello.txt")).unwrap(), "hi\n");
    let (_, inbox) = get(&srv.base, "/api/attention").await;
    assert_eq!(inbox["count"], 0, "{inbox}");
    let (_, texts) = get(&srv.base, "/api/events?type=Text&order=desc&limit=1").await;
    assert_eq!(texts["events"][0]["text"], "The file is written.", "{texts}");
    // Twice is a conflict.
    let (s, e) = post(&srv.base, &format!("/api/approvals/{id}/deny"), &json!({"reason": "late"})).await;
    assert_eq!(s, 409, "{e}");
}

#[tokio::test]
async fn a_denial_from_the_cli_reaches_the_run_the_server_hosts() {
    let (dir, model) = project();
    let srv = server::start(dir.path(), &model, &[], &[]);
    let item = park_alice(&srv.base).await;
    let id = item["id"].as_str().unwrap().to_string();
    let out = orch()
        .arg("--cwd")
        .arg(dir.path())
        // The server takes the run up as soon as it sees the decision; on a machine loaded by other
        // tests that took longer than the default second once.
        .args(["--model", &model, "deny", &id, "--reason", "not in this repository", "--server-wait", "30"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The server, which follows the store, continued the run; the CLI did not run it a second time.
    let said = text(&out.stderr);
    assert!(said.contains("continue") && !said.contains("──"), "{said}");
    assert!(text(&out.stdout).trim().is_empty(), "{}", text(&out.stdout));
    wait_for(&srv.base, "/api/agents/alice", "alice idle", |a| a["status"] == "idle").await;
    assert!(!written(dir.path()));
    let (_, results) = get(&srv.base, "/api/events?type=ToolResult").await;
    let result = &results["events"][0];
    assert_eq!(result["is_error"], true);
    assert!(result["content"].as_str().unwrap().contains("not in this repository"), "{result}");
    let (_, texts) = get(&srv.base, "/api/events?type=Text&order=desc&limit=1").await;
    assert_eq!(texts["events"][0]["text"], "Understood, not writing: not in this repository");
}

#[test]
fn orch_attention_lists_a_parked_run_and_orch_deny_continues_it_without_a_server() {
    let (dir, model) = project();
    let cli =
        |args: &[&str]| orch().arg("--cwd").arg(dir.path()).args(["--model", &model]).args(args).output().unwrap();
    let out = cli(&["run", "--agent", "bob", "write hello.txt"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stderr);
    assert!(said.contains("waits for a person") && said.contains("orch approve "), "{said}");
    assert!(!written(dir.path()));

    let out = cli(&["attention"]);
    assert!(out.status.success());
    let listing = text(&out.stdout);
    assert!(
        listing.contains("approval") && listing.contains("bob") && listing.contains("Write(hello.txt)"),
        "{listing}"
    );
    let out = cli(&["attention", "--json"]);
    let item: Value = serde_json::from_str(text(&out.stdout).lines().next().unwrap()).unwrap();
    let id = item["id"].as_str().unwrap().to_string();

    // Bad ids are usage errors; an empty inbox says so.
    assert_eq!(cli(&["approve", "nope"]).status.code(), Some(2));
    assert_eq!(cli(&["approve", "00000000-0000-0000-0000-000000000000"]).status.code(), Some(2));

    let out = cli(&["deny", &id, "--reason", "ask me tomorrow"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("Understood, not writing: ask me tomorrow"), "{}", text(&out.stdout));
    assert!(!written(dir.path()));
    let again = orch().arg("--cwd").arg(dir.path()).args(["deny", &id]).output().unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(text(&again.stderr).contains("already denied"), "{}", text(&again.stderr));
    assert!(text(&cli(&["attention"]).stdout).contains("Nothing waits for a person"));
}

#[test]
fn a_bad_server_wait_is_a_usage_error_naming_it() {
    let (dir, model) = project();
    for bad in ["-1", "soon", "NaN", "1e15"] {
        let out = orch()
            .arg("--cwd")
            .arg(dir.path())
            .args(["--model", &model, "approve", "0193a9c2-0000-7000-8000-000000000000"])
            .arg(format!("--server-wait={bad}"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let said = text(&out.stderr);
        assert!(said.contains("--server-wait") && said.contains(bad), "{said}");
    }
}

/// Records a heartbeat row of a server (`orch serve`'s presence) in the project's store, last beaten
/// `ago` before now: what a server left behind, or a server that beats but does not follow the log.
fn server_row(dir: &Path, id: &str, ago: chrono::Duration) {
    support::heartbeat_row(dir, id, "server", ago);
}

/// The servers' heartbeat rows in the project's store.
fn server_rows(dir: &Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(dir.join(".orch/orch.db")).unwrap();
    let mut s = conn.prepare("SELECT id FROM workers WHERE role = 'server'").unwrap();
    s.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
}

#[test]
fn a_decision_waits_for_a_server_only_while_one_beats() {
    let (dir, model) = project();
    let cli =
        |args: &[&str]| orch().arg("--cwd").arg(dir.path()).args(["--model", &model]).args(args).output().unwrap();
    let mut ids = Vec::new();
    for agent in ["bob", "carol", "dan"] {
        let out = cli(&["run", "--agent", agent, "write hello.txt"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let out = cli(&["attention", "--json"]);
        let items: Vec<Value> = text(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let item = items.iter().find(|i| i["agent_name"] == agent).unwrap();
        ids.push(item["id"].as_str().unwrap().to_string());
    }

    // No server row: the run continues here at once.
    let out = cli(&["deny", &ids[0], "--reason", "no"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("no server follows this store"), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("Understood, not writing: no"), "{}", text(&out.stdout));

    // The row of a server killed a minute ago: it follows nothing, so nothing waits for it.
    server_row(dir.path(), "gone:1:aaaaaa", chrono::Duration::minutes(1));
    let out = cli(&["deny", &ids[1], "--reason", "not now"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("no server follows this store"), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("Understood, not writing: not now"), "{}", text(&out.stdout));

    // A live row whose server does not take the run up: waited for, up to --server-wait, then the run
    // continues here.
    server_row(dir.path(), "busy:2:bbbbbb", chrono::Duration::zero());
    let out = cli(&["deny", &ids[2], "--reason", "later", "--server-wait", "0.3"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stderr);
    assert!(!said.contains("no server follows") && said.contains("no server took the run up within 0.3 s"), "{said}");
    assert!(text(&out.stdout).contains("Understood, not writing: later"), "{}", text(&out.stdout));
    assert!(!written(dir.path()));
}

#[tokio::test]
async fn a_server_beats_its_presence_while_it_runs_and_removes_it_when_stopped() {
    let (dir, model) = project();
    let mut srv = server::start(dir.path(), &model, &[], &[]);
    // The row is in before the server listens.
    let rows = server_rows(dir.path());
    assert_eq!(rows.len(), 1, "{rows:?}");
    let pid = srv.child.id();
    assert!(rows[0].contains(&format!(":{pid}:")), "{rows:?} (pid {pid})");

    let status = srv.terminate();
    assert!(status.success(), "{status:?}");
    assert!(server_rows(dir.path()).is_empty(), "a stopped server leaves no presence behind");
}
