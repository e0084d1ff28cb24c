//! Notifications and Telegram commands against a local stand-in of the Telegram Bot API (an axum
//! server on 127.0.0.1 speaking `getUpdates` and `sendMessage`) and of two webhooks: `orch serve`
//! tells an ADW run and a failed run; `orch notify` obeys `/interrupt` from an allowed chat only.
#![cfg(feature = "notify")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Path as UrlPath, State};
use serde_json::{Value, json};
use support::{Db, scripted, text, wait_exit};

const TOKEN: &str = "123456:TEST-TOKEN";

#[derive(Default)]
struct Recorded {
    /// `sendMessage` bodies.
    sent: Mutex<Vec<Value>>,
    /// Updates `getUpdates` hands out.
    updates: Mutex<Vec<Value>>,
    /// `getUpdates` calls.
    polls: AtomicUsize,
    /// Webhook bodies: (path, body).
    hooks: Mutex<Vec<(String, Value)>>,
}

/// The stand-in: `POST /bot<TOKEN>/<method>`, `POST /slack`, `POST /hook`.
struct BotApi {
    base: String,
    state: Arc<Recorded>,
    _runtime: tokio::runtime::Runtime,
}

async fn bot_method(
    State(state): State<Arc<Recorded>>,
    UrlPath((bot, method)): UrlPath<(String, String)>,
    body: Option<Json<Value>>,
) -> (axum::http::StatusCode, Json<Value>) {
    use axum::http::StatusCode;
    if bot != format!("bot{TOKEN}") {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"ok": false, "error_code": 401, "description": "Unauthorized"})),
        );
    }
    let body = body.map(|Json(b)| b).unwrap_or(Value::Null);
    match method.as_str() {
        "sendMessage" => {
            let mut sent = state.sent.lock().unwrap();
            sent.push(body.clone());
            let id = sent.len();
            (
                StatusCode::OK,
                Json(
                    json!({"ok": true, "result": {"message_id": id, "chat": {"id": body["chat_id"]}, "text": body["text"]}}),
                ),
            )
        }
        "getUpdates" => {
            state.polls.fetch_add(1, Ordering::SeqCst);
            let offset = body["offset"].as_i64().unwrap_or(0);
            // A short long-poll: answer at once when there are updates, else after a moment.
            for _ in 0..10 {
                let ready: Vec<Value> = state
                    .updates
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|u| u["update_id"].as_i64().unwrap() >= offset)
                    .cloned()
                    .collect();
                if !ready.is_empty() {
                    return (StatusCode::OK, Json(json!({"ok": true, "result": ready})));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            (StatusCode::OK, Json(json!({"ok": true, "result": []})))
        }
        _ => (StatusCode::NOT_FOUND, Json(json!({"ok": false, "error_code": 404, "description": "Not Found"}))),
    }
}

impl BotApi {
    fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let state = Arc::new(Recorded::default());
        let hook = |name: &'static str| {
            move |State(state): State<Arc<Recorded>>, Json(body): Json<Value>| async move {
                state.hooks.lock().unwrap().push((name.to_string(), body));
                "ok"
            }
        };
        let app = axum::Router::new()
            .route("/{bot}/{method}", axum::routing::post(bot_method))
            .route("/slack", axum::routing::post(hook("slack")))
            .route("/hook", axum::routing::post(hook("json")))
            .with_state(state.clone());
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        runtime.spawn(async move { axum::serve(listener, app).await });
        BotApi { base, state, _runtime: runtime }
    }

    /// The texts sent to `chat` so far.
    fn texts_to(&self, chat: &Value) -> Vec<String> {
        let sent = self.state.sent.lock().unwrap();
        sent.iter().filter(|m| &m["chat_id"] == chat).map(|m| m["text"].as_str().unwrap_or("").to_string()).collect()
    }

    /// A command typed in chat `chat`.
    fn command(&self, chat: i64, text: &str) {
        let mut updates = self.state.updates.lock().unwrap();
        let id = updates.len() as i64 + 1;
        updates.push(json!({"update_id": id, "message": {
            "message_id": id, "date": 0, "text": text,
            "chat": {"id": chat, "type": "private"}, "from": {"id": chat, "is_bot": false, "username": format!("user{chat}")}
        }}));
    }

    /// Waits until a text sent to `chat` satisfies `found`; returns it.
    fn wait_for(&self, chat: &Value, what: &str, found: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            if let Some(t) = self.texts_to(chat).into_iter().find(|t| found(t)) {
                return t;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "{what}: not sent to {chat}; sent: {:?}",
                self.texts_to(chat)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_for_polling(&self) {
        let start = Instant::now();
        while self.state.polls.load(Ordering::SeqCst) == 0 {
            assert!(start.elapsed() < Duration::from_secs(60), "the bot was never polled for commands");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// `.orch/config.toml`: `[notify]` with `keys`, its Telegram bot on `api`, then `tail`; the token in
/// `.env`.
fn configure(dir: &Path, api: &BotApi, keys: &str, tail: &str) {
    std::fs::create_dir_all(dir.join(".orch")).unwrap();
    let config = format!(
        "[notify]\n{keys}\n[notify.telegram]\nchat_id = 100\ncritical_chat_id = \"@critical\"\nallowed_chats = [100]\napi_base = \"{}\"\n{tail}",
        api.base
    );
    std::fs::write(dir.join(".orch/config.toml"), config).unwrap();
    std::fs::write(dir.join(".env"), format!("ORCH_TELEGRAM_BOT_TOKEN={TOKEN}\n")).unwrap();
}

#[test]
fn a_server_tells_an_adw_run_and_a_failure_to_their_chats_and_webhooks() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let api = BotApi::start();
    let hooks = format!(
        "[[notify.webhooks]]\nurl = \"{b}/slack\"\nformat = \"slack\"\nevents = [\"completed\", \"failed\"]\n[[notify.webhooks]]\nurl = \"{b}/hook\"\n",
        b = api.base
    );
    configure(d, &api, "stuck_after_secs = 3600", &hooks);

    let model = support::adw::model(d);
    let _server = support::server::start(d, &model, &["--no-worker"], &[]);
    let out =
        Db::Sqlite.run(d, &["--model", &model, "adw", "start", "plan_build", "--prompt", "Add a parser", "--wait"]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let chat = json!(100);
    let done = api.wait_for(&chat, "the run's completion", |t| t.starts_with("✅") && t.contains("(2/2 steps)"));
    assert!(done.contains("completed"), "{done}");
    let texts = api.texts_to(&chat);
    assert!(texts.iter().any(|t| t.starts_with("🔧 plan-") && t.contains(" starting ")), "{texts:?}");
    assert!(texts.iter().any(|t| t.starts_with("🔧 build-")), "{texts:?}");
    assert!(texts.iter().any(|t| t == "📝 File written: src/parser.rs (+1 line)"), "the build step's file: {texts:?}");
    assert!(texts.iter().any(|t| t.starts_with("✅ ") && t.contains("model calls")), "a step's end: {texts:?}");
    assert!(api.texts_to(&json!("@critical")).is_empty(), "nothing critical happened");

    // A run that fails: to the critical chat only.
    let empty = scripted(d, "empty.json", &json!({"steps": []}));
    let out = Db::Sqlite.run(d, &["--model", &empty, "run", "--agent", "doomed", "Do it"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let failed = api.wait_for(&json!("@critical"), "the failure", |t| t.starts_with("❌ "));
    assert!(failed.contains("failed: "), "{failed}");
    assert!(!api.texts_to(&chat).iter().any(|t| t.starts_with("❌")), "failures go to the critical chat");

    // The webhooks: Slack-compatible bodies for completions and failures only, JSON for everything.
    let start = Instant::now();
    loop {
        let hooks = api.state.hooks.lock().unwrap().clone();
        let slack: Vec<&Value> = hooks.iter().filter(|(p, _)| p == "slack").map(|(_, b)| b).collect();
        let json_hook: Vec<&Value> = hooks.iter().filter(|(p, _)| p == "json").map(|(_, b)| b).collect();
        let slack_failed = slack.iter().any(|b| b["text"].as_str().is_some_and(|t| t.starts_with("❌")));
        let json_failed = json_hook.iter().any(|b| b["event"] == "failed" && b["critical"] == true);
        if slack_failed && json_failed {
            assert!(slack.iter().all(|b| b.as_object().unwrap().len() == 1), "Slack bodies are {{\"text\": …}}");
            assert!(slack.iter().all(|b| !b["text"].as_str().unwrap().starts_with("🔧")), "filtered by events");
            assert!(json_hook.iter().any(|b| b["event"] == "task_started" && b["agent"].is_string()));
            assert!(json_hook.iter().any(|b| b["event"] == "file_changed"));
            assert!(json_hook.iter().all(|b| b["text"].is_string() && b["at"].is_string()));
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "webhooks received: {hooks:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn interrupt_is_obeyed_from_an_allowed_chat_and_refused_from_another() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let api = BotApi::start();
    configure(d, &api, "stuck_after_secs = 1", "");
    let mut notifier = Db::Sqlite
        .orch(d)
        .arg("notify")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    api.wait_for_polling();
    let (mut run, _id, _model) = support::adw::start_slow_build(&Db::Sqlite, d);
    let agents = Db::Sqlite.agents(d);
    let build = agents.iter().find_map(|a| a["name"].as_str().filter(|n| n.starts_with("build-"))).unwrap().to_string();

    // The build's command sleeps: the agent is reported stuck, to the critical chat.
    let prefix = format!("⚠️ {build} stuck for ");
    let stuck = api.wait_for(&json!("@critical"), "the stuck agent", |t| t.starts_with(&prefix));
    assert!(stuck.ends_with(" second") || stuck.ends_with(" seconds"), "{stuck}");

    api.command(999, &format!("/interrupt {build}"));
    let refusal = api.wait_for(&json!(999), "the refusal", |t| t.starts_with("⛔"));
    assert!(refusal.contains("999"), "{refusal}");
    assert!(run.try_wait().unwrap().is_none(), "a refused command stops nothing");
    let events = Db::Sqlite.events(d);
    assert!(!events.iter().any(|e| e["type"] == "InterruptRequested"), "no interrupt was asked for");
    let logged = events.iter().any(|e| {
        e["type"] == "SystemLog"
            && e["level"] == "WARNING"
            && e["message"].as_str().is_some_and(|m| m.contains("refused") && m.contains("999"))
    });
    assert!(logged, "the refusal is logged");

    api.command(100, "/status");
    let status = api.wait_for(&json!(100), "/status", |t| t.starts_with("orch:"));
    assert!(status.contains(&format!("executing: {build}")), "{status}");
    api.command(100, "/agents");
    let listed = api.wait_for(&json!(100), "/agents", |t| t.starts_with("•"));
    assert!(listed.contains(&format!("• {build} — executing")), "{listed}");

    api.command(100, &format!("/interrupt {build}"));
    let answer = api.wait_for(&json!(100), "/interrupt", |t| t.starts_with("⏹️"));
    assert!(answer.contains(&build), "{answer}");
    wait_exit(&mut run, Duration::from_secs(60), "the interrupted workflow run");
    let events = Db::Sqlite.events(d);
    assert!(
        events.iter().any(|e| e["type"] == "InterruptRequested" && e["requested_by"] == "telegram"),
        "the interrupt came from Telegram"
    );
    let build_id = Db::Sqlite.agents(d).iter().find(|a| a["name"] == build.as_str()).unwrap()["id"].clone();
    assert!(
        events.iter().any(|e| e["type"] == "Stop" && e["agent_id"] == build_id && e["reason"] == "interrupted"),
        "the build agent's turn was interrupted"
    );
    let _ = notifier.kill();
    let _ = notifier.wait();
}

#[test]
fn orch_config_shows_notify_settings_without_secrets_and_names_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let api = BotApi::start();
    configure(
        d,
        &api,
        "events = [\"failed\", \"stuck\"]",
        "[[notify.webhooks]]\nurl = \"https://hooks.example.com/services/T0/B0/SECRET\"\nformat = \"slack\"\n",
    );
    let out = Db::Sqlite.run(d, &["config", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(!shown.contains("TEST-TOKEN") && !shown.contains("SECRET"), "secrets stay hidden: {shown}");
    let v: Value = serde_json::from_str(&shown).unwrap();
    let setting = |key: &str| v["settings"].as_array().unwrap().iter().find(|e| e["key"] == key).unwrap().clone();
    assert_eq!(setting("notify.events")["value"], json!(["failed", "stuck"]));
    assert_eq!(setting("notify.telegram")["value"]["critical_chat_id"], "@critical");
    assert_eq!(setting("notify.telegram")["value"]["commands"], true);
    assert_eq!(setting("notify.webhooks")["value"][0]["url"], "https://hooks.example.com/…");
    assert!(setting("notify.telegram_bot_token")["source"]["kind"] == "dot_env");

    std::fs::write(d.join(".orch/config.toml"), "[notify]\nevents = [\"failed\", \"exploded\"]\n").unwrap();
    let out = Db::Sqlite.run(d, &["config"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("config.toml:2") && err.contains("exploded"), "{err}");

    // A Telegram channel without its token: `orch notify` says what is missing.
    std::fs::remove_file(d.join(".env")).unwrap();
    configure(d, &api, "", "");
    std::fs::remove_file(d.join(".env")).unwrap();
    let out = Db::Sqlite.run(d, &["notify"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("ORCH_TELEGRAM_BOT_TOKEN"), "{}", text(&out.stderr));
}

#[test]
fn a_parked_tool_call_is_told_and_approved_from_telegram() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let api = BotApi::start();
    configure(d, &api, "", "");
    std::fs::create_dir_all(d.join(".claude")).unwrap();
    std::fs::write(d.join(".claude/settings.json"), r#"{"permissions": {"ask": ["Write"]}}"#).unwrap();
    let model = scripted(
        d,
        "model.json",
        &json!({"steps": [
            {"when": "^Wrote", "reply": [{"type": "text", "text": "Written."}]},
            {"reply": [{"type": "tool_use", "name": "Write", "input": {"file_path": "notes.txt", "content": "hi\n"}}]}
        ]}),
    );
    let mut notifier = Db::Sqlite
        .orch(d)
        .args(["--model", &model, "notify"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    api.wait_for_polling();
    let out = Db::Sqlite.run(d, &["--model", &model, "run", "--agent", "writer", "Write notes.txt"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!d.join("notes.txt").exists(), "the call waits for a person");

    let asked = api.wait_for(&json!("@critical"), "the parked call", |t| t.starts_with("🙋 writer waits"));
    assert!(asked.contains("Write(notes.txt)"), "{asked}");
    let id = asked.rsplit("/approve ").next().unwrap().trim().to_string();
    api.command(100, &format!("/approve {id}"));
    let answer = api.wait_for(&json!(100), "/approve", |t| t.starts_with("✅ Approved"));
    assert!(answer.contains("Write") && answer.contains("writer"), "{answer}");
    support::wait_for_file(&d.join("notes.txt"), Duration::from_secs(60), "the approved Write");
    api.wait_for(&json!(100), "the continued run's end", |t| t.starts_with("✅ ") && t.contains("completed"));
    let _ = notifier.kill();
    let _ = notifier.wait();
}
