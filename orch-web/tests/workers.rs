//! Who works on a store: `orch workers` and `GET /api/workers` list the heartbeat rows of workers and
//! servers, each alive or silent.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;

use serde_json::{Value, json};
use support::server::{self, get};
use support::{json_lines, orch, scripted, text};

fn model(dir: &Path) -> String {
    scripted(dir, "model.json", &json!({"steps": [{"repeat": true, "reply": [{"type": "text", "text": "ok"}]}]}))
}

/// A heartbeat row of a worker that last beat `ago` before now, as a killed `orch worker` leaves it.
fn worker_row(dir: &Path, id: &str, ago: chrono::Duration) {
    support::heartbeat_row(dir, id, "worker", ago);
}

#[tokio::test]
async fn workers_and_servers_are_listed_alive_or_silent() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = model(d);
    let out = orch().arg("--cwd").arg(d).arg("workers").output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("No worker or server has beaten on this store"), "{}", text(&out.stdout));

    // A worker killed two hours ago is forgotten by the next process to start, here a server (its
    // presence and its task worker); one killed ten minutes ago is still shown, silent.
    worker_row(d, "ancient:4242:abcdef", chrono::Duration::hours(2));
    let srv = server::start(d, &model, &[], &[]);
    worker_row(d, "gone:4242:abcdef", chrono::Duration::minutes(10));

    // The server's task worker beats its first row as it starts, beside the server's listening.
    let start = std::time::Instant::now();
    let body = loop {
        let (status, body) = get(&srv.base, "/api/workers").await;
        assert_eq!(status, 200, "{body}");
        if body["count"] == 3 {
            break body;
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(15), "three rows: {body}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let rows = body["workers"].as_array().unwrap();
    let pid = srv.child.id();
    let of = |role: &str, alive: bool| {
        rows.iter().filter(|w| w["role"] == role && w["alive"] == alive && w["pid"] == pid).count()
    };
    assert_eq!((of("server", true), of("worker", true)), (1, 1), "{body}");
    let gone = rows.iter().find(|w| w["id"] == "gone:4242:abcdef").unwrap();
    assert_eq!((gone["alive"].as_bool(), gone["role"].as_str()), (Some(false), Some("worker")), "{gone}");
    assert!(gone["silent_secs"].as_f64().unwrap() >= 600.0, "{gone}");
    assert_eq!(rows.last().unwrap()["id"], "gone:4242:abcdef", "most recent first");
    assert!(rows.iter().all(|w| w["id"] != "ancient:4242:abcdef"), "{body}");

    // The same from a terminal.
    let out = orch().arg("--cwd").arg(d).arg("workers").output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    let line =
        |id: &str| table.lines().find(|l| l.contains(id)).unwrap_or_else(|| panic!("{id} in:\n{table}")).to_string();
    assert!(line("gone:4242:abcdef").contains("silent for 10 min"), "{table}");
    let server_id = rows.iter().find(|w| w["role"] == "server").unwrap()["id"].as_str().unwrap().to_string();
    assert!(line(&server_id).starts_with("server") && line(&server_id).contains("alive"), "{table}");
    let out = orch().arg("--cwd").arg(d).args(["workers", "--json"]).output().unwrap();
    let listed: Vec<Value> = json_lines(&out.stdout);
    assert_eq!(listed.len(), 3);
    assert_eq!(listed.iter().filter(|w| w["alive"] == true).count(), 2, "{listed:?}");
}
