//! Rerun from a task through `orch serve` (`POST /api/tasks/{task}/rerun`), and the cost series by agent
//! and model over time that the dashboard's chart draws (`GET /api/costs?bucket=hour`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::scripted;
use support::server::{self, get, post};

/// Waits for graph `gid` to leave `running`: its JSON then.
async fn settled(base: &str, gid: &str) -> Value {
    let start = Instant::now();
    loop {
        assert!(start.elapsed() < Duration::from_secs(60), "the graph did not end");
        let (_, g) = get(base, &format!("/api/graphs/{gid}")).await;
        if g["graph"]["status"] != "running" {
            return g;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn task<'a>(graph: &'a Value, key: &str) -> &'a Value {
    graph["tasks"].as_array().unwrap().iter().find(|t| t["key"] == key).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completed_graph_reruns_from_a_task_and_its_dependents_and_completes_again() {
    let dir = tempfile::tempdir().unwrap();
    let model = scripted(
        dir.path(),
        "model.json",
        &json!({"steps": [{"repeat": true, "reply": [{"type": "text", "text": "done"}],
                           "usage": {"input_tokens": 1000, "output_tokens": 100}}]}),
    );
    let server = server::start(dir.path(), &model, &[], &[]);
    let base = server.base.as_str();
    let plan = json!({"tasks": [
        {"id": "research", "title": "Find the parser's entry point", "model": "claude-haiku-4-5"},
        {"id": "build", "title": "Add the parser", "depends_on": ["research"], "model": "claude-haiku-4-5"},
        {"id": "docs", "title": "Write the docs", "model": "claude-sonnet-4-5"},
    ]});
    let (s, p) = post(base, "/api/plans", &json!({"plan": plan, "requirements": "a parser"})).await;
    assert_eq!(s, 201, "{p}");
    let plan_id = p["id"].as_str().unwrap();
    post(base, &format!("/api/plans/{plan_id}/approve"), &json!({})).await;
    let (s, g) = post(base, "/api/graphs", &json!({"plan_id": plan_id, "start": true})).await;
    assert_eq!(s, 201, "{g}");
    let gid = g["graph"]["id"].as_str().unwrap().to_string();
    let g = settled(base, &gid).await;
    assert_eq!(g["graph"]["status"], "completed", "{g}");
    let research = task(&g, "research")["id"].as_str().unwrap().to_string();

    let (s, r) = post(base, &format!("/api/tasks/{research}/rerun"), &json!({})).await;
    assert_eq!(s, 200, "{r}");
    let keys: Vec<&str> = r["tasks"].as_array().unwrap().iter().map(|t| t["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["research", "build"], "the task and its dependent, not docs: {r}");
    let g = settled(base, &gid).await;
    assert_eq!(g["graph"]["status"], "completed", "{g}");
    assert_eq!((task(&g, "research")["attempt"].as_u64(), task(&g, "build")["attempt"].as_u64()), (Some(2), Some(2)));
    assert_eq!(task(&g, "docs")["attempt"], 1, "docs did not run again");

    let (s, e) = post(base, "/api/tasks/nope/rerun", &json!({})).await;
    assert_eq!(s, 400, "{e}");
    let (s, e) = post(base, "/api/tasks/00000000-0000-4000-8000-000000000000/rerun", &json!({})).await;
    assert_eq!(s, 404, "{e}");

    // Cost over time, a series per model and per agent, by the hour.
    let (s, c) = get(base, "/api/costs?bucket=hour").await;
    assert_eq!(s, 200, "{c}");
    assert_eq!(c["series"]["bucket"], "hour");
    let models: Vec<&String> = c["series"]["by_model"].as_object().unwrap().keys().collect();
    assert_eq!(models, ["claude-haiku-4-5", "claude-sonnet-4-5"], "{c}");
    let haiku = c["series"]["by_model"]["claude-haiku-4-5"].as_object().unwrap();
    assert!(haiku.keys().all(|k| k.len() == 13 && k.as_bytes()[10] == b'T'), "YYYY-MM-DDTHH: {haiku:?}");
    let sum: f64 = haiku.values().map(|v| v.as_f64().unwrap()).sum();
    assert!((sum - c["by_model"]["claude-haiku-4-5"]["cost_usd"].as_f64().unwrap()).abs() < 1e-9, "{c}");
    assert!(c["series"]["by_agent"].as_object().unwrap().len() >= 3, "an agent per attempt: {c}");
    let (s, e) = get(base, "/api/costs?bucket=week").await;
    assert_eq!(s, 400, "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("bucket 'week'"), "{e}");
}
