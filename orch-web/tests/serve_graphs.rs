//! Plans, task graphs, checkpoints, costs and budgets through `orch serve`'s `/api`, and the task queue
//! as an external agent uses it: claim with a lease, heartbeat, complete, fail, release.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::scripted;
use support::server::{self, get, post, post_raw, put};

/// A scripted model answering every call with `done`, at Haiku's prices.
fn done_model(dir: &Path) -> String {
    scripted(
        dir,
        "model.json",
        &json!({"steps": [{"repeat": true, "reply": [{"type": "text", "text": "done"}],
                           "usage": {"input_tokens": 1000, "output_tokens": 100}}]}),
    )
}

/// Two tasks, `build` after `research`.
fn two_tasks() -> Value {
    json!({"tasks": [
        {"id": "research", "title": "Find the parser's entry point", "task_type": "research", "complexity": "medium"},
        {"id": "build", "title": "Add the parser", "depends_on": ["research"], "model": "claude-haiku-4-5"},
    ]})
}

/// Posts a plan, approves it and makes its graph (started unless `start` is false): the graph's JSON.
async fn graph_of(base: &str, plan: Value, start: bool) -> Value {
    let (s, p) = post(base, "/api/plans", &json!({"plan": plan, "requirements": "a parser"})).await;
    assert_eq!(s, 201, "{p}");
    let plan_id = p["id"].as_str().unwrap().to_string();
    let (s, e) = post(base, "/api/graphs", &json!({"plan_id": plan_id})).await;
    assert_eq!(s, 409, "a draft plan makes no graph: {e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("approve"), "{e}");
    let (s, a) = post(base, &format!("/api/plans/{plan_id}/approve"), &json!({})).await;
    assert_eq!((s, a["status"].as_str()), (200, Some("approved")), "{a}");
    let (s, g) = post(base, "/api/graphs", &json!({"plan_id": plan_id, "start": start, "name": "parser"})).await;
    assert_eq!(s, 201, "{g}");
    g
}

fn task_id(graph: &Value, key: &str) -> String {
    graph["tasks"].as_array().unwrap().iter().find(|t| t["key"] == key).unwrap()["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_agent_runs_a_graph_over_rest() {
    let dir = tempfile::tempdir().unwrap();
    let server = server::start(dir.path(), &done_model(dir.path()), &["--no-worker"], &[]);
    let base = server.base.as_str();

    let g = graph_of(base, two_tasks(), true).await;
    let gid = g["graph"]["id"].as_str().unwrap().to_string();
    assert_eq!(g["graph"]["status"], "running", "{g}");
    assert_eq!(g["waves"].as_array().unwrap().len(), 2, "{g}");
    assert_eq!(g["waves"][0]["tasks"], json!([task_id(&g, "research")]), "{g}");
    let (research, build) = (task_id(&g, "research"), task_id(&g, "build"));

    // Only the first wave is due.
    let (s, c) = post(base, "/api/tasks/claim", &json!({"worker": "codex-1", "limit": 5, "lease_secs": 60})).await;
    assert_eq!(s, 200, "{c}");
    let claimed = c["tasks"].as_array().unwrap();
    assert_eq!(claimed.len(), 1, "{c}");
    assert_eq!(claimed[0]["task"]["id"], research.as_str());
    assert_eq!(claimed[0]["task"]["claimed_by"], "codex-1");
    assert!(claimed[0]["prompt"].as_str().unwrap().contains("Find the parser's entry point"), "{c}");
    let attempt = claimed[0]["task"]["attempt"].as_u64().unwrap();

    // Nothing else is due; another agent gets nothing.
    let (s, none) = post(base, "/api/tasks/claim", &json!({"worker": "codex-2"})).await;
    assert_eq!((s, none["tasks"].as_array().unwrap().len()), (200, 0), "{none}");

    // A heartbeat extends the lease; one from another worker or attempt is refused.
    let (s, h) =
        post(base, &format!("/api/tasks/{research}/heartbeat"), &json!({"worker": "codex-1", "attempt": attempt}))
            .await;
    assert_eq!(s, 200, "{h}");
    let (s, e) =
        post(base, &format!("/api/tasks/{research}/heartbeat"), &json!({"worker": "codex-2", "attempt": attempt}))
            .await;
    assert_eq!((s, e["error"]["code"].as_str()), (409, Some("conflict")), "{e}");
    let (s, _) = post(
        base,
        &format!("/api/tasks/{research}/complete"),
        &json!({"worker": "codex-1", "attempt": attempt + 1, "output": "x"}),
    )
    .await;
    assert_eq!(s, 409, "a report of another attempt is refused");

    // Completing it releases `build`, which gets its output and the fact it reported.
    let (s, done) = post(
        base,
        &format!("/api/tasks/{research}/complete"),
        &json!({"worker": "codex-1", "attempt": attempt, "output": "the entry point is parse_expr in src/expr.rs",
                "knowledge": [{"text": "tests live in tests/expr.rs"}], "cost_usd": 0.25}),
    )
    .await;
    assert_eq!(
        (s, done["task"]["status"].as_str(), done["next"].as_str()),
        (200, Some("completed"), Some("completed"))
    );
    let (_, c) = post(base, "/api/tasks/claim", &json!({"worker": "codex-1", "graph_id": gid})).await;
    let next = &c["tasks"][0];
    assert_eq!(next["task"]["id"], build.as_str(), "{c}");
    let prompt = next["prompt"].as_str().unwrap();
    assert!(prompt.contains("parse_expr in src/expr.rs"), "the dependency's output is handed on: {prompt}");
    assert!(prompt.contains("tests live in tests/expr.rs"), "the fact is handed on: {prompt}");
    let attempt = next["task"]["attempt"].as_u64().unwrap();

    // A failure without retry raises a checkpoint, which a person skips: the graph completes.
    let (s, f) = post(
        base,
        &format!("/api/tasks/{build}/fail"),
        &json!({"worker": "codex-1", "attempt": attempt, "error": "the tests do not build", "retry": false}),
    )
    .await;
    assert_eq!((s, f["next"].as_str()), (200, Some("checkpoint")), "{f}");
    let (_, cps) = get(base, &format!("/api/checkpoints?graph={gid}")).await;
    let cps = cps["checkpoints"].as_array().unwrap();
    assert_eq!(cps.len(), 1);
    assert!(cps[0]["checkpoint"].as_str().unwrap().contains("the tests do not build"), "{cps:?}");
    let (s, e) = post(base, &format!("/api/checkpoints/{build}/resolve"), &json!({"action": "later"})).await;
    assert_eq!(s, 400, "{e}");
    let (s, r) = post(base, &format!("/api/checkpoints/{build}/resolve"), &json!({"action": "skip"})).await;
    assert_eq!((s, r["status"].as_str()), (200, Some("skipped")), "{r}");
    let (s, e) = post(base, &format!("/api/checkpoints/{build}/resolve"), &json!({"action": "skip"})).await;
    assert_eq!(s, 409, "nothing waits any more: {e}");

    let (_, g) = get(base, &format!("/api/graphs/{gid}")).await;
    assert_eq!(g["graph"]["status"], "completed", "{g}");
    assert!((g["graph"]["cost_usd"].as_f64().unwrap() - 0.25).abs() < 1e-9, "the reported cost is the graph's: {g}");
    assert!((g["cost"]["by_wave"]["1"].as_f64().unwrap() - 0.25).abs() < 1e-9, "{g}");
    let (_, b) = get(base, "/api/budgets").await;
    assert!(b["daily"]["spent_usd"].as_f64().unwrap() >= 0.25 - 1e-9, "spent today: {b}");
    let (_, costs) = get(base, "/api/costs").await;
    assert!((costs["by_graph"][&gid]["cost_usd"].as_f64().unwrap() - 0.25).abs() < 1e-9, "{costs}");
    let (_, t) = get(base, &format!("/api/tasks/{research}")).await;
    assert_eq!(t["task"]["output"], "the entry point is parse_expr in src/expr.rs", "{t}");
    // No more work, and a finished graph cannot be resumed.
    let (s, e) = post(base, &format!("/api/graphs/{gid}/run"), &json!({})).await;
    assert_eq!(s, 409, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_that_runs_out_goes_to_the_next_claim_and_the_late_report_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = server::start(dir.path(), &done_model(dir.path()), &["--no-worker"], &[]);
    let base = server.base.as_str();
    let g = graph_of(base, json!({"tasks": [{"id": "only", "title": "One task"}]}), true).await;
    let only = task_id(&g, "only");
    let (_, c) = post(base, "/api/tasks/claim", &json!({"worker": "slow", "lease_secs": 5})).await;
    assert_eq!(c["tasks"].as_array().unwrap().len(), 1, "{c}");
    let start = Instant::now();
    let taken = loop {
        assert!(start.elapsed() < Duration::from_secs(30), "the lease never ran out");
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (_, c) = post(base, "/api/tasks/claim", &json!({"worker": "fast"})).await;
        if let Some(t) = c["tasks"].as_array().unwrap().first() {
            break t.clone();
        }
    };
    assert!(start.elapsed() >= Duration::from_secs(3), "taken over before the lease ran out");
    assert_eq!((taken["task"]["id"].as_str(), taken["task"]["attempt"].as_u64()), (Some(only.as_str()), Some(2)));
    let (s, _) =
        post(base, &format!("/api/tasks/{only}/complete"), &json!({"worker": "slow", "attempt": 1, "output": "late"}))
            .await;
    assert_eq!(s, 409, "the first agent's late report is refused");
    let (s, r) = post(base, &format!("/api/tasks/{only}/release"), &json!({"worker": "fast", "attempt": 2})).await;
    assert_eq!((s, r["task"]["status"].as_str()), (200, Some("ready")), "{r}");
    let (_, t) = get(base, &format!("/api/tasks/{only}")).await;
    assert_eq!(t["task"]["output"], Value::Null, "{t}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_runs_a_graph_with_its_own_worker_and_reports_costs() {
    let dir = tempfile::tempdir().unwrap();
    let server = server::start(dir.path(), &done_model(dir.path()), &[], &[]);
    let base = server.base.as_str();
    let g = graph_of(base, two_tasks(), true).await;
    let gid = g["graph"]["id"].as_str().unwrap().to_string();
    let start = Instant::now();
    let g = loop {
        assert!(start.elapsed() < Duration::from_secs(60), "the graph did not complete");
        let (_, g) = get(base, &format!("/api/graphs/{gid}")).await;
        if g["graph"]["status"] != "running" {
            break g;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(g["graph"]["status"], "completed", "{g}");
    for t in g["tasks"].as_array().unwrap() {
        assert_eq!(t["output"], "done", "{t}");
    }
    let (_, t) = get(base, &format!("/api/tasks/{}", task_id(&g, "build"))).await;
    let sessions = t["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{t}");
    let (_, events) = get(base, &format!("/api/events?agent={}", sessions[0]["agent_id"].as_str().unwrap())).await;
    assert!(!events["events"].as_array().unwrap().is_empty(), "the session's log is there");
    // A graph task's attempts by the task's id, or by their run's slug.
    let (_, by_task) = get(base, &format!("/api/events?task={}", task_id(&g, "build"))).await;
    let by_task = by_task["events"].as_array().unwrap().clone();
    assert!(!by_task.is_empty());
    let slug = by_task[0]["task_slug"].as_str().unwrap().to_string();
    assert!(slug.ends_with("-build") && by_task.iter().all(|e| e["task_slug"] == slug.as_str()), "{by_task:?}");
    let (_, by_run) = get(base, &format!("/api/events?run={slug}")).await;
    assert_eq!(by_run["events"].as_array().unwrap().len(), by_task.len());
    let (s, _) = get(base, "/api/events?task=00000000-0000-4000-8000-000000000000").await;
    assert_eq!(s, 404);

    let (s, costs) = get(base, "/api/costs").await;
    assert_eq!(s, 200, "{costs}");
    let total = costs["total"]["cost_usd"].as_f64().unwrap();
    assert!(total > 0.0, "{costs}");
    assert_eq!(costs["total"]["calls"], 2, "one model call per task: {costs}");
    assert!((costs["by_graph"][&gid]["cost_usd"].as_f64().unwrap() - total).abs() < 1e-9, "{costs}");
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert!((costs["by_day"][&today]["cost_usd"].as_f64().unwrap() - total).abs() < 1e-9, "{costs}");
    let (_, none) = get(base, "/api/costs?to=2000-01-01").await;
    assert_eq!(none["total"]["calls"], 0, "{none}");
    let (s, e) = get(base, "/api/costs?from=yesterday").await;
    assert_eq!(s, 400, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_routes_refuse_bad_input_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let server = server::start(dir.path(), &done_model(dir.path()), &["--no-worker"], &[]);
    let base = server.base.as_str();
    let unknown = "00000000-0000-4000-8000-000000000000";
    for path in ["/api/graphs/nope", "/api/plans/nope", "/api/tasks/nope"] {
        let (s, e) = get(base, path).await;
        assert_eq!((s, e["error"]["code"].as_str()), (400, Some("bad_request")), "{path}: {e}");
    }
    for path in [format!("/api/graphs/{unknown}"), format!("/api/plans/{unknown}"), format!("/api/tasks/{unknown}")] {
        let (s, e) = get(base, &path).await;
        assert_eq!((s, e["error"]["code"].as_str()), (404, Some("not_found")), "{path}: {e}");
    }
    // A cycle is refused, naming it; nothing is stored.
    let cycle = json!({"tasks": [{"id": "a", "title": "A", "depends_on": ["b"]}, {"id": "b", "title": "B", "depends_on": ["a"]}]});
    let (s, e) = post(base, "/api/plans", &json!({"plan": cycle})).await;
    assert_eq!(s, 400, "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("cycle"), "{e}");
    let (_, plans) = get(base, "/api/plans").await;
    assert_eq!(plans["plans"], json!([]));
    let (s, _) = post(base, "/api/plans", &json!({})).await;
    assert_eq!(s, 400);
    let (s, _) = post(base, "/api/plans", &json!({"plan": two_tasks(), "extra": 1})).await;
    assert_eq!(s, 422, "unknown fields are refused");
    let (s, _) = post_raw(base, "/api/plans", "{\"plan\": ").await;
    assert_eq!(s, 400);
    let (s, _) = post(base, "/api/graphs", &json!({"plan_id": unknown})).await;
    assert_eq!(s, 404);
    let (s, _) = post(base, "/api/graphs", &json!({"plan_id": 7})).await;
    assert_eq!(s, 422);

    let g = graph_of(base, two_tasks(), false).await;
    let gid = g["graph"]["id"].as_str().unwrap().to_string();
    assert_eq!(g["graph"]["status"], "pending");
    let (s, e) = post(base, "/api/tasks/claim", &json!({"worker": "x"})).await;
    assert_eq!((s, e["tasks"].as_array().map(Vec::len)), (200, Some(0)), "a pending graph's tasks are not due: {e}");
    for (body, what) in [
        (json!({"worker": ""}), "an empty worker"),
        (json!({"worker": "x", "limit": 0}), "limit 0"),
        (json!({"worker": "x", "limit": 1000}), "limit 1000"),
        (json!({"worker": "x", "lease_secs": 1}), "a 1 s lease"),
        (json!({"worker": "x", "graph_id": "nope"}), "a bad graph id"),
    ] {
        let (s, e) = post(base, "/api/tasks/claim", &body).await;
        assert_eq!(s, 400, "{what}: {e}");
    }
    let (s, _) = post(base, "/api/tasks/claim", &json!({"worker": "x", "graph_id": unknown})).await;
    assert_eq!(s, 404);

    // Tasks are added to a graph that has not ended; a dependency must exist.
    let (s, t) = post(
        base,
        &format!("/api/graphs/{gid}/tasks"),
        &json!({"title": "Document it", "depends_on": ["build"], "complexity": "simple",
                "estimated_cost_usd": 0.02, "estimated_minutes": 4}),
    )
    .await;
    assert_eq!((s, t["wave"].as_u64()), (201, Some(3)), "{t}");
    assert_eq!((t["estimated_cost_usd"].as_f64(), t["estimated_minutes"].as_f64()), (Some(0.02), Some(4.0)), "{t}");
    let (s, e) = post(base, &format!("/api/graphs/{gid}/tasks"), &json!({"title": "X", "estimated_minutes": -3})).await;
    assert_eq!(s, 400, "{e}");
    assert!(e.to_string().contains("estimated_minutes"), "the error names the field: {e}");
    let (s, e) = post(base, &format!("/api/graphs/{gid}/tasks"), &json!({"title": "X", "depends_on": ["nope"]})).await;
    assert_eq!(s, 400, "{e}");
    let (s, _) = post(base, &format!("/api/graphs/{gid}/tasks"), &json!({"title": "X", "complexity": "huge"})).await;
    assert_eq!(s, 400);
    // Run with a budget (an empty body is fine too), then cancel.
    let (s, e) = post(base, &format!("/api/graphs/{gid}/run"), &json!({"budget_usd": -1})).await;
    assert_eq!(s, 400, "{e}");
    let r = server::client().post(format!("{base}/api/graphs/{gid}/run")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (s, c) = post(base, &format!("/api/graphs/{gid}/cancel"), &json!({})).await;
    assert_eq!((s, c["status"].as_str()), (200, Some("cancelled")), "{c}");
    let (s, _) = post(base, &format!("/api/graphs/{gid}/tasks"), &json!({"title": "Late"})).await;
    assert_eq!(s, 409, "a cancelled graph takes no task");

    // Budgets: set, read, remove; bad values refused.
    let (s, b) = put(base, "/api/budgets", &json!({"daily_usd": 5.0})).await;
    assert_eq!((s, b["daily"]["limit_usd"].as_f64()), (200, Some(5.0)), "{b}");
    let (s, b) = put(base, "/api/budgets", &json!({"daily_usd": null, "monthly_usd": 50})).await;
    assert_eq!(
        (s, b["daily"]["limit_usd"].clone(), b["monthly"]["limit_usd"].as_f64()),
        (200, Value::Null, Some(50.0))
    );
    let (s, _) = put(base, "/api/budgets", &json!({})).await;
    assert_eq!(s, 400);
    let (s, _) = put(base, "/api/budgets", &json!({"daily_usd": "lots"})).await;
    assert_eq!(s, 422);
    let (s, _) = put(base, "/api/budgets", &json!({"monthly_usd": -3})).await;
    assert_eq!(s, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_and_slash_commands_are_listed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join(".claude/commands/git")).unwrap();
    std::fs::create_dir_all(d.join(".claude/agents")).unwrap();
    std::fs::write(
        d.join(".claude/commands/git/commit.md"),
        "---\ndescription: Commit the work\n---\nCommit $ARGUMENTS\n",
    )
    .unwrap();
    std::fs::write(
        d.join(".claude/agents/reviewer.md"),
        "---\nname: reviewer\ndescription: Reviews code\nmodel: haiku\n---\nYou review code.\n",
    )
    .unwrap();
    let server = server::start(d, &done_model(d), &["--no-worker"], &[]);
    let (s, c) = get(&server.base, "/api/commands").await;
    assert_eq!(s, 200);
    let commit = c["commands"].as_array().unwrap().iter().find(|c| c["name"] == "git:commit").expect("git:commit");
    assert_eq!(commit["description"], "Commit the work");
    let (_, t) = get(&server.base, "/api/templates").await;
    let reviewer = t["templates"].as_array().unwrap().iter().find(|t| t["name"] == "reviewer").expect("reviewer");
    assert_eq!(reviewer["description"], "Reviews code");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_is_logged_without_its_query() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let mut child = support::orch()
        .env("ORCH_LOG", "orch::http=info")
        .env("ORCH_LOG_FORMAT", "json")
        .arg("--cwd")
        .arg(dir.path())
        .args(["--model", &done_model(dir.path()), "serve", "--port", "0", "--token", "s3cret-token"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = line.trim().strip_prefix("orch serve: listening on ").unwrap().to_string();
    let (s, _) = get(&base, "/api/health?token=s3cret-token").await;
    assert_eq!(s, 200);
    let (s, _) = get(&base, "/api/graphs?token=wrong").await;
    assert_eq!(s, 403);
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let logs = String::from_utf8_lossy(&out.stderr);
    assert!(!logs.contains("s3cret-token") && !logs.contains("wrong"), "a query is logged: {logs}");
    let requests: Vec<Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["target"] == "orch::http")
        .collect();
    let seen: Vec<(String, u64)> = requests
        .iter()
        .map(|v| (v["fields"]["path"].as_str().unwrap().to_string(), v["fields"]["status"].as_u64().unwrap()))
        .collect();
    assert_eq!(seen, vec![("/api/health".to_string(), 200), ("/api/graphs".to_string(), 403)], "{logs}");
    assert!(requests.iter().all(|v| v["fields"]["ms"].is_number() && v["fields"]["method"] == "GET"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_gives_running_tasks_back_and_the_next_server_finishes_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The first attempt's command runs for 30 s; once the marker exists, attempts answer at once.
    let model = scripted(
        d,
        "slow.json",
        &json!({"steps": [
            {"agent": "-a1$", "reply": [{"type": "tool_use", "name": "Bash",
                "input": {"command": "test -f started.marker || (touch started.marker && sleep 30)"}}]},
            {"repeat": true, "reply": [{"type": "text", "text": "done"}]},
        ]}),
    );
    let mut first = server::start(d, &model, &[], &[]);
    let g = graph_of(
        &first.base,
        json!({"tasks": [{"id": "slow", "title": "Slow task", "complexity": "medium", "tools": ["Bash"]}]}),
        true,
    )
    .await;
    let gid = g["graph"]["id"].as_str().unwrap().to_string();
    support::wait_for_file_or_dir(&d.join("started.marker"), Duration::from_secs(60), "the task's command");

    let status = first.terminate();
    assert!(status.success(), "{status:?}");
    drop(first);

    // Given back, not failed: ready, no holder, no failure counted, and no worker row left behind.
    let db = format!("sqlite://{}", d.join(".orch/orch.db").display());
    let out =
        support::orch().arg("--cwd").arg(d).args(["--db", &db, "graph", "show", &gid, "--json"]).output().unwrap();
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    let task = &shown["tasks"][0];
    assert_eq!((task["status"].as_str(), task["failures"].as_u64()), (Some("ready"), Some(0)), "{task}");
    assert_eq!(task["claimed_by"], Value::Null, "{task}");

    let second = server::start(d, &model, &[], &[]);
    let start = Instant::now();
    loop {
        let (_, g) = get(&second.base, &format!("/api/graphs/{gid}")).await;
        if g["graph"]["status"] == "completed" {
            assert_eq!(g["tasks"][0]["attempt"], 2, "{g}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "the next server did not finish the task: {g}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_status_workflow_summaries_and_queue_depths() {
    let dir = tempfile::tempdir().unwrap();
    let server = server::start(dir.path(), &done_model(dir.path()), &["--no-worker"], &[]);
    let base = server.base.as_str();

    let (s, a) = post(base, "/api/agents", &json!({"name": "rev", "system_prompt": "You review."})).await;
    assert_eq!(s, 201, "{a}");
    let (s, _) = post(base, "/api/agents/rev/command", &json!({"prompt": "review it"})).await;
    assert_eq!(s, 202);
    // The agent and its recent activity are two reads: the agent may be seen idle before its run's
    // start while the activity already shows the prompt. Done is idle with the reply in the activity.
    let start = Instant::now();
    let status = loop {
        let (s, st) = get(base, "/api/agents/rev/status?tail=5").await;
        assert_eq!(s, 200, "{st}");
        if st["agent"]["status"] == "idle" && st["entries"].to_string().contains("done") {
            break st;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the run did not end with its reply among its recent activity: {st}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status["task_slug"].is_string(), "{status}");
    let (s, _) = get(base, "/api/agents/nobody/status").await;
    assert_eq!(s, 404);

    // A workflow run's summary by step.
    let (s, w) = post(base, "/api/adws", &json!({"type": "plan_build", "prompt": "Add a parser"})).await;
    assert_eq!(s, 202, "{w}");
    let id = w["id"].as_str().unwrap().to_string();
    let start = Instant::now();
    loop {
        let (_, r) = get(base, &format!("/api/adws/{id}")).await;
        if ["completed", "failed"].contains(&r["status"].as_str().unwrap_or("")) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "the run did not end: {r}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (s, sum) = get(base, &format!("/api/adws/{id}/summary")).await;
    assert_eq!(s, 200, "{sum}");
    assert_eq!(sum["steps"][0]["step"], "plan", "{sum}");
    assert!(sum["steps"][0]["event_count"].as_u64().unwrap() > 0 && sum["total_events"].as_u64().unwrap() > 0);
    let (s, _) = get(base, "/api/adws/00000000-0000-4000-8000-000000000000/summary").await;
    assert_eq!(s, 404);

    // Queue depths: a running graph's ready and pending tasks.
    graph_of(base, two_tasks(), true).await;
    let metrics = server::client().get(format!("{base}/api/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("orch_graph_tasks{status=\"ready\"} 1"), "{metrics}");
    assert!(metrics.contains("orch_graph_tasks{status=\"pending\"} 1"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_through_the_server_interrupts_its_own_running_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = scripted(
        d,
        "slow.json",
        &json!({"steps": [
            {"agent": "-a1$", "reply": [{"type": "tool_use", "name": "Bash",
                "input": {"command": "touch started.marker && sleep 600"}}]},
            {"repeat": true, "reply": [{"type": "text", "text": "done"}]},
        ]}),
    );
    let server = server::start(d, &model, &[], &[]);
    let base = server.base.as_str();
    let g = graph_of(
        base,
        json!({"tasks": [{"id": "slow", "title": "Slow", "complexity": "medium", "tools": ["Bash"]}]}),
        true,
    )
    .await;
    let gid = g["graph"]["id"].as_str().unwrap().to_string();
    support::wait_for_file_or_dir(&d.join("started.marker"), Duration::from_secs(60), "the task's command");
    let (s, c) = post(base, &format!("/api/graphs/{gid}/cancel"), &json!({})).await;
    assert_eq!((s, c["status"].as_str()), (200, Some("cancelled")), "{c}");
    // The attempt's agent is interrupted (its 10-minute command with it) and the task ends cancelled.
    let start = Instant::now();
    loop {
        let (_, g) = get(base, &format!("/api/graphs/{gid}")).await;
        let (_, ev) = get(base, "/api/events?type=Stop").await;
        let stopped = ev["events"].as_array().unwrap().iter().any(|e| e["reason"] == "interrupted");
        if g["tasks"][0]["status"] == "cancelled" && stopped {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(120), "the running attempt was not interrupted: {g} {ev}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
