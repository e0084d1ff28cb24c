//! `orch serve` as its clients see it: the seed dashboard's start-up requests, a chat that creates
//! and commands an agent with the WebSocket frames it produces, orch's `/api`, errors, and tokens.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use futures::SinkExt;
use serde_json::{Value, json};
use support::server::{self, Server, client, connect, frames_until, get, next_frame, post};
use support::{orch, script, text};
use tokio_tungstenite::tungstenite::Message;

/// Starts `orch serve --port 0 ARGS…` in `dir` with the demo orchestrator script.
fn serve(dir: &Path, args: &[&str]) -> Server {
    serve_with(dir, &format!("scripted:{}", script("orchestrator.json").display()), args)
}

/// Starts `orch serve --port 0 ARGS…` in `dir` with `model`.
fn serve_with(dir: &Path, model: &str, args: &[&str]) -> Server {
    server::start(dir, model, args, &[])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_dashboard_starts_up_and_a_chat_creates_and_commands_an_agent() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), &[]);
    let base = server.base.clone();

    // The seed dashboard's start-up (seed-contract.md §4.1), in its order.
    let (s, headers) = get(&base, "/get_headers").await;
    assert_eq!((s, headers["status"].as_str()), (200, Some("success")));
    assert_eq!(Path::new(headers["cwd"].as_str().unwrap()).canonicalize().unwrap(), dir.path().canonicalize().unwrap());
    let (s, o) = get(&base, "/get_orchestrator").await;
    assert_eq!((s, o["status"].as_str()), (200, Some("success")), "{o}");
    let orchestrator_id = o["orchestrator"]["id"].as_str().unwrap().to_string();
    assert!(o["orchestrator"]["total_cost"].is_number() && o["orchestrator"]["input_tokens"].is_number(), "{o}");
    assert!(o["orchestrator"]["metadata"]["system_message_info"]["cwd"].is_string(), "{o}");
    for key in ["slash_commands", "agent_templates", "orchestrator_tools", "adw_workflows"] {
        assert!(o[key].is_array(), "{key}: {o}");
    }
    assert_eq!(o["orchestrator_tools"].as_array().unwrap().len(), 10);
    assert!(o["adw_workflows"].as_array().unwrap().iter().any(|w| w["type"] == "plan_build"), "{o}");
    let mut ws = connect(&base, "").await;
    let hello = next_frame(&mut ws).await;
    assert_eq!(hello["type"], "connection_established", "{hello}");
    assert!(hello["client_id"].as_str().unwrap().starts_with("client_"));
    let (s, agents) = get(&base, "/list_agents").await;
    assert_eq!((s, agents["agents"].as_array().map(Vec::len)), (200, Some(0)), "{agents}");
    // The browser's preflight before the POST, from the dashboard's dev origin.
    let preflight = client()
        .request(reqwest::Method::OPTIONS, format!("{base}/load_chat"))
        .header("Origin", "http://127.0.0.1:5175")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "preflight: {}", preflight.status());
    let h = preflight.headers();
    assert_eq!(h["access-control-allow-origin"], "http://127.0.0.1:5175");
    assert_eq!(h["access-control-allow-credentials"], "true");
    assert!(h["access-control-allow-headers"].to_str().unwrap().contains("content-type"));
    let (s, chat) = post(&base, "/load_chat", &json!({"orchestrator_agent_id": orchestrator_id, "limit": 2000})).await;
    assert_eq!((s, chat["status"].as_str(), chat["turn_count"].as_u64()), (200, Some("success"), Some(0)), "{chat}");
    let (s, events) = get(&base, "/get_events?limit=2000").await;
    assert_eq!((s, events["status"].as_str()), (200, Some("success")), "{events}");

    // A chat: the reply comes over the WebSocket only.
    let message = "create an agent called alice for python work, then have her write hello.py";
    let (s, sent) =
        post(&base, "/send_chat", &json!({"message": message, "orchestrator_agent_id": orchestrator_id})).await;
    assert_eq!((s, sent["status"].as_str()), (200, Some("success")), "{sent}");
    let frames = frames_until(&mut ws, |f| {
        f["type"] == "agent_log" && f["log"]["event_type"] == "Stop" && f["log"]["agent_name"] == "alice"
    })
    .await;
    let of = |t: &str| frames.iter().filter(|f| f["type"] == t).collect::<Vec<_>>();
    let user_echo = of("orchestrator_chat");
    assert!(user_echo.iter().any(|f| f["message"]["message"] == message && f["message"]["sender_type"] == "user"));
    assert!(
        user_echo.iter().any(|f| f["message"]["sender_type"] == "orchestrator"),
        "the orchestrator's reply: {user_echo:#?}"
    );
    assert!(of("thinking_block").iter().any(|f| f["data"]["thinking"].is_string()));
    assert!(of("tool_use_block").iter().any(|f| f["data"]["tool_name"] == "create_agent"));
    assert!(of("agent_created").iter().any(|f| f["agent"]["name"] == "alice"));
    assert!(of("agent_status_changed").iter().any(|f| f["new_status"] == "executing"), "{frames:#?}");
    assert!(
        of("agent_log").iter().any(|f| f["log"]["event_type"] == "ToolUseBlock" && f["log"]["agent_name"] == "alice")
    );
    // Every event also arrives as orch's own frame (the flat record, no `frame` key), in seq order with
    // no gap; it decodes as orch's wire type.
    let own: Vec<&Value> = frames.iter().filter(|f| f.get("frame").is_none()).collect();
    for f in &own {
        let decoded: orch_core::wire::WsFrame = serde_json::from_value((*f).clone()).unwrap();
        assert!(matches!(decoded, orch_core::wire::WsFrame::Event(_)), "{f}");
    }
    let seqs: Vec<u64> = own.iter().map(|f| f["seq"].as_u64().unwrap()).collect();
    assert!(!seqs.is_empty() && seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");

    let (_, agents) = get(&base, "/list_agents").await;
    let alice = agents["agents"].as_array().unwrap().iter().find(|a| a["name"] == "alice").cloned().unwrap();
    assert!(alice["total_cost"].is_number() && alice["log_count"].as_u64().unwrap() > 0, "{alice}");
    assert!(dir.path().join("hello.py").exists(), "alice wrote hello.py");

    // orch's API sees the same.
    let (s, api_agents) = get(&base, "/api/agents").await;
    assert_eq!(s, 200);
    assert!(api_agents["agents"].as_array().unwrap().iter().any(|a| a["name"] == "alice"));
    assert!(
        api_agents["agents"].as_array().unwrap().iter().all(|a| a["role"] != "orchestrator"),
        "the orchestrator's own record is not listed: {api_agents}"
    );
    // …but `/api/orchestrator` names the agent its turns run as, whose events the dashboard shows as
    // the chat's thinking and action bubbles.
    let (s, o) = get(&base, "/api/orchestrator").await;
    assert_eq!(s, 200, "{o}");
    let own_agent = o["agent_id"].as_str().unwrap_or_else(|| panic!("no agent_id: {o}")).to_string();
    let (_, all) = get(&base, "/api/events?limit=1000").await;
    assert!(
        all["events"].as_array().unwrap().iter().any(|e| e["agent_id"] == own_agent.as_str() && e["type"] == "ToolUse"),
        "the orchestrator's tool calls carry agent_id {own_agent}"
    );
    let (s, newest) = get(&base, "/api/events?order=desc&limit=5").await;
    assert_eq!(s, 200, "{newest}");
    let newest: Vec<u64> = newest["events"].as_array().unwrap().iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(newest.len() == 5 && newest.windows(2).all(|w| w[0] > w[1]), "newest first: {newest:?}");

    // A client that reconnects from a seq gets exactly what followed it.
    let from = seqs[seqs.len() / 2];
    let mut again = connect(&base, &format!("?since={from}")).await;
    assert_eq!(next_frame(&mut again).await["type"], "connection_established");
    let replay = frames_until(&mut again, |f| f["frame"] == "live").await;
    let replayed: Vec<u64> =
        replay.iter().filter(|f| f.get("frame").is_none()).map(|f| f["seq"].as_u64().unwrap()).collect();
    let expected: Vec<u64> = seqs.iter().copied().filter(|s| *s > from).collect();
    assert!(replayed.starts_with(&expected), "replayed from {from}: {replayed:?}");
    assert!(replayed.windows(2).all(|w| w[1] == w[0] + 1), "no gap, no double: {replayed:?}");
    assert_eq!(replay.last().unwrap()["last_seq"].as_u64(), replayed.last().copied(), "live after the replay");
    let _ = ws.send(Message::Close(None)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_errors_with_the_right_status() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), &[]);
    let base = server.base.clone();
    let (s, e) = get(&base, "/api/agents/nobody").await;
    assert_eq!((s, e["error"]["code"].as_str()), (404, Some("not_found")), "{e}");
    let (s, e) = get(&base, "/api/adws/not-a-uuid").await;
    assert_eq!(s, 400, "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("not-a-uuid"), "{e}");
    let (s, e) = get(&base, "/adws/not-a-uuid").await;
    assert_eq!(s, 400, "the seed answered 500 here: {e}");
    assert!(e["detail"].is_string(), "the seed's error shape: {e}");
    let (s, e) = get(&base, "/adws/0192d9b4-7c1e-7000-8000-000000000001").await;
    assert_eq!(s, 404, "{e}");
    assert!(e["detail"].as_str().unwrap().starts_with("ADW not found"), "{e}");
    let (s, e) = get(&base, "/no/such/route").await;
    assert_eq!((s, e["detail"].as_str()), (404, Some("Not Found")));
    let (s, e) = get(&base, "/api/no/such/route").await;
    assert_eq!((s, e["error"]["code"].as_str()), (404, Some("not_found")));
    let (s, e) = get(&base, "/api/events?limit=0").await;
    assert_eq!(s, 400, "{e}");
    let (s, e) = get(&base, "/api/events?category=nope").await;
    assert_eq!(s, 400, "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("nope"), "{e}");
    let (s, e) = get(&base, "/api/events?since=minus-one").await;
    assert_eq!(s, 400, "{e}");

    let raw = |path: &str, body: &'static str| {
        let url = format!("{base}{path}");
        async move {
            let r = client().post(url).header("content-type", "application/json").body(body).send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (s, e) = raw("/api/agents", "{not json").await;
    assert_eq!((s, e["error"]["code"].as_str()), (400, Some("bad_request")), "{e}");
    let (s, e) = raw("/api/agents", r#"{"name": 7}"#).await;
    assert_eq!((s, e["error"]["code"].as_str()), (422, Some("invalid_body")), "{e}");
    let (s, e) = raw("/send_chat", r#"{"message": "hi"}"#).await;
    assert_eq!(s, 422, "a missing field, as the seed answers: {e}");
    let (s, e) = post(&base, "/api/agents", &json!({"name": "", "model": "sonnet"})).await;
    assert_eq!(s, 400, "a bad agent name: {e}");
    let big = "x".repeat(2 * 1024 * 1024);
    let r = client().post(format!("{base}/api/orchestrator/chat")).json(&json!({"message": big})).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 413);
    let (s, e) = post(&base, "/api/adws", &json!({"type": "nope", "prompt": "x"})).await;
    assert_eq!(s, 400, "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("nope"), "{e}");
    let (s, e) = post(&base, "/api/open-file", &json!({"file_path": "/etc/passwd"})).await;
    assert_eq!((s, e["status"].as_str()), (200, Some("error")), "disabled unless IDE_ENABLED: {e}");

    // What was stored before is all still there: the server answers normally.
    let (s, h) = get(&base, "/api/ready").await;
    assert_eq!((s, h["status"].as_str()), (200, Some("ready")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_guards_every_request_and_other_addresses_need_one() {
    let dir = tempfile::tempdir().unwrap();
    // Reachable from other machines without a token: refused before anything starts.
    let out = orch().arg("--cwd").arg(dir.path()).args(["serve", "--host", "0.0.0.0", "--port", "0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("without a token"), "{}", text(&out.stderr));

    let server = serve(dir.path(), &["--token", "s3cr%t"]);
    let base = server.base.clone();
    let (s, e) = get(&base, "/api/agents").await;
    assert_eq!((s, e["error"]["code"].as_str()), (401, Some("unauthorized")), "{e}");
    let r = client().get(format!("{base}/api/agents")).bearer_auth("wrong").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let r = client().get(format!("{base}/api/agents")).bearer_auth("s3cr%t").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = client().get(format!("{base}/list_agents?token=s3cr%25t")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200, "the token as a query parameter, escaped");
    let r = client().get(format!("{base}/")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200, "the landing page holds no data");
    let url = format!("{}/ws", base.replacen("http://", "ws://", 1));
    assert!(tokio_tungstenite::connect_async(&url).await.is_err(), "a WebSocket without the token is refused");
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("{url}?token=s3cr%25t")).await.unwrap();
    assert_eq!(next_frame(&mut ws).await["type"], "connection_established");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_stopped_mid_workflow_resumes_it_when_started_again() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = support::adw::slow_model(d);
    let mut server = serve_with(d, &model, &[]);
    let (s, started) = post(&server.base, "/api/adws", &json!({"type": "plan_build", "prompt": "Add a parser"})).await;
    assert_eq!(s, 202, "{started}");
    let id = started["id"].as_str().unwrap().to_string();
    support::adw::wait_for_build(d);

    // SIGTERM while the build step runs: the server stops (a hang would fail here, not a slow stop).
    let status = server.terminate();
    assert!(status.success(), "a stop on SIGTERM is a clean exit: {status:?}");
    drop(server);

    // Started again on the same store, it continues the run from the build step.
    let server = serve_with(d, &model, &[]);
    let start = Instant::now();
    let run = loop {
        let (_, run) = get(&server.base, &format!("/api/adws/{id}")).await;
        if run["status"] == "completed" || run["status"] == "failed" {
            break run;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "the run was not continued: {run}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(run["status"], "completed", "{run}");
    let (_, events) = get(&server.base, &format!("/api/events?workflow={id}&type=StepStart&limit=100")).await;
    let steps: Vec<&str> = events["events"].as_array().unwrap().iter().map(|e| e["step"].as_str().unwrap()).collect();
    assert_eq!(steps, ["plan", "build"], "the plan step ran once; the build step continued on its agent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_that_start_work_are_rate_limited_and_metrics_count_answers() {
    let dir = tempfile::tempdir().unwrap();
    let model = format!("scripted:{}", script("orchestrator.json").display());
    let server = server::start(dir.path(), &model, &[], &[("ORCH_RATE_LIMIT", "2")]);
    let base = server.base.clone();
    // Two empty messages are refused as bad input, but they count: the third is refused for the rate.
    for _ in 0..2 {
        let (s, _) = post(&base, "/api/orchestrator/chat", &json!({"message": " "})).await;
        assert_eq!(s, 400);
    }
    let r =
        client().post(format!("{base}/api/orchestrator/chat")).json(&json!({"message": "hi"})).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 429);
    let wait: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "retry after {wait} s");
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "rate_limited");
    // Reads are not limited.
    for _ in 0..5 {
        assert_eq!(get(&base, "/api/agents").await.0, 200);
    }
    let text = client().get(format!("{base}/api/metrics")).send().await.unwrap().text().await.unwrap();
    let value = |name: &str| -> u64 {
        let line = text.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name} in {text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert_eq!(value("orch_http_rate_limited_total"), 1, "{text}");
    assert!(value("orch_http_responses_total{class=\"4xx\"}") >= 3, "{text}");
    assert!(value("orch_http_responses_total{class=\"2xx\"}") >= 5, "{text}");
    assert!(value("orch_events_total") > 0, "{text}");
    assert_eq!(value("orch_websocket_clients"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_adw_relay_frames_become_events_and_reach_every_client() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), &[]);
    let base = server.base.clone();
    let mut dashboard = connect(&base, "").await;
    assert_eq!(next_frame(&mut dashboard).await["type"], "connection_established");
    // The seed's relay: waits for connection_established, then only sends.
    let mut relay = connect(&base, "").await;
    assert_eq!(next_frame(&mut relay).await["type"], "connection_established");
    let adw = "0192d9b4-7c1e-7000-8000-0000000000aa";
    let status = json!({"type": "adw_broadcast", "broadcast_type": "adw_status", "adw_id": adw, "status": "in_progress",
                        "current_step": "build", "completed_steps": 1, "error_message": null, "timestamp": "2025-01-01T00:00:00"});
    relay.send(Message::Text(status.to_string().into())).await.unwrap();
    let event = json!({"type": "adw_broadcast", "broadcast_type": "adw_event", "adw_id": adw,
                       "event": {"id": "e1", "adw_step": "build", "event_type": "ToolUseBlock", "summary": "Write x"}});
    relay.send(Message::Text(event.to_string().into())).await.unwrap();
    relay.send(Message::Text("not json".into())).await.unwrap();
    relay
        .send(Message::Text(json!({"type": "adw_broadcast", "broadcast_type": "nope"}).to_string().into()))
        .await
        .unwrap();

    let frames = frames_until(&mut dashboard, |f| f["type"] == "adw_event").await;
    let updated = frames.iter().find(|f| f["type"] == "adw_updated").expect("adw_status arrives as adw_updated");
    assert_eq!(updated["adw_id"], adw);
    assert_eq!(updated["adw"]["status"], "in_progress");
    assert_eq!(updated["adw"]["current_step"], "build");
    let ev = frames.last().unwrap();
    assert_eq!(ev["event"]["summary"], "Write x", "{ev}");
    // Both are events of the log now, under the workflow they name; the bad frames are not.
    let (_, logged) = get(&base, &format!("/api/events?workflow={adw}")).await;
    let relayed: Vec<&Value> = logged["events"].as_array().unwrap().iter().collect();
    assert_eq!(relayed.len(), 2, "{logged}");
    assert!(relayed.iter().all(|e| e["type"] == "SystemLog" && e["metadata"]["relay"].is_object()));
}
