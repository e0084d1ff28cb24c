//! The page's connection to `orch serve`: the first loads over REST, then the live stream on `/ws`,
//! reconnected with backoff after any disconnect and resumed after the last seq received, so nothing
//! is missed and (with the buffer's de-duplication) nothing shows twice.

use std::cell::RefCell;
use std::time::Duration;

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::Value;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{CloseEvent, MessageEvent, Request, RequestInit, WebSocket};

use super::{Conn, Ui};
use crate::backoff::Backoff;
use crate::protocol::{self, Incoming};

/// How long a WebSocket may take to open before it is given up and retried.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How many of the newest events the page loads at first.
const FIRST_PAGE: usize = 2_000;

/// Received events wait this long to be applied together (one re-render per batch, not per event).
const BATCH: Duration = Duration::from_millis(40);

#[derive(Default)]
struct Socket {
    ws: Option<WebSocket>,
    /// Bumped per connection; callbacks of an older one are ignored.
    generation: u32,
    /// The last seq received: where the next connection resumes.
    cursor: u64,
    backoff: Backoff,
    /// Whether the first loads succeeded.
    loaded: bool,
    /// Events received and not applied yet.
    pending: Vec<orch_core::wire::EventRecord>,
    flush_scheduled: bool,
    retry: Option<TimeoutHandle>,
    /// The live socket's callbacks (kept alive as long as it is).
    callbacks: Vec<Closure<dyn FnMut(JsValue)>>,
}

thread_local! {
    static SOCKET: RefCell<Socket> = RefCell::new(Socket::default());
}

fn with_socket<T>(f: impl FnOnce(&mut Socket) -> T) -> T {
    SOCKET.with(|s| f(&mut s.borrow_mut()))
}

thread_local! {
    static TOKEN: RefCell<Option<Option<String>>> = const { RefCell::new(None) };
}

/// The server's token, when it needs one: given once in the page's address (`/?token=…`, then taken
/// out of the address bar so it is not bookmarked or shared) and kept for the tab's session.
pub fn token() -> Option<String> {
    TOKEN.with(|t| t.borrow_mut().get_or_insert_with(read_token).clone())
}

fn read_token() -> Option<String> {
    const KEY: &str = "orch-token";
    let window = web_sys::window()?;
    let storage = window.session_storage().ok().flatten();
    let location = window.location();
    let (given, rest) = protocol::token_in_query(&location.search().unwrap_or_default());
    if let Some(t) = given {
        if let Some(s) = &storage {
            let _ = s.set_item(KEY, &t);
        }
        let clean =
            format!("{}{}{}", location.pathname().unwrap_or_default(), rest, location.hash().unwrap_or_default());
        if let Ok(history) = window.history() {
            let _ = history.replace_state_with_url(&JsValue::NULL, "", Some(&clean));
        }
        return Some(t);
    }
    storage.and_then(|s| s.get_item(KEY).ok().flatten()).filter(|t| !t.is_empty())
}

/// A JSON request to the page's own server; the answer's JSON, or a message saying what failed.
pub async fn request(method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
    let window = web_sys::window().ok_or("no window")?;
    let init = RequestInit::new();
    init.set_method(method);
    if let Some(b) = body {
        init.set_body(&JsValue::from_str(&b.to_string()));
    }
    let req = Request::new_with_str_and_init(path, &init).map_err(js_error)?;
    if body.is_some() {
        req.headers().set("content-type", "application/json").map_err(js_error)?;
    }
    if let Some(t) = token() {
        req.headers().set("authorization", &format!("Bearer {t}")).map_err(js_error)?;
    }
    let resp: web_sys::Response = JsFuture::from(window.fetch_with_request(&req))
        .await
        .map_err(|e| format!("the server did not answer ({})", js_error(e)))?
        .dyn_into()
        .map_err(js_error)?;
    let text = JsFuture::from(resp.text().map_err(js_error)?).await.map_err(js_error)?.as_string().unwrap_or_default();
    if !resp.ok() {
        return Err(protocol::error_message(resp.status(), &text));
    }
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(&text).map_err(|e| format!("{path}: not JSON ({e})"))
}

fn js_error(e: JsValue) -> String {
    e.as_string()
        .or_else(|| e.dyn_ref::<js_sys::Error>().map(|e| String::from(e.message())))
        .unwrap_or_else(|| "unknown error".into())
}

/// Loads the page's data, then connects the stream (retrying with backoff while the server is away).
pub fn start(ui: Ui) {
    spawn_local(async move {
        match first_load(ui).await {
            Ok(cursor) => {
                with_socket(|s| {
                    s.loaded = true;
                    s.cursor = s.cursor.max(cursor);
                });
                connect(ui);
            }
            Err(e) => {
                leptos::logging::warn!("orch: loading the dashboard failed: {e}");
                schedule_retry(ui);
            }
        }
    });
}

/// GETs the orchestrator, agents, chat, workflows and the newest events; the log's last seq.
async fn first_load(ui: Ui) -> Result<u64, String> {
    let agents = request("GET", "/api/agents", None).await?;
    ui.fleet.update(|f| f.load(protocol::agents(&agents)));
    if let Ok(o) = request("GET", "/api/orchestrator", None).await {
        let agent = protocol::orchestrator_agent(&o);
        let cost = protocol::orchestrator_cost(&o);
        ui.fleet.update(|f| {
            if agent.is_some() {
                f.orchestrator_agent = agent;
            }
            if let Some((cost, used, window)) = cost {
                f.orchestrator_cost = cost;
                f.orchestrator_context = (used, window);
            }
        });
    }
    let chat = request("GET", "/api/orchestrator/chat?limit=500", None).await?;
    ui.chat.update(|c| c.load(protocol::chat(&chat)));
    if let Ok(runs) = request("GET", "/api/adws", None).await {
        ui.workflows.update(|w| w.load(protocol::workflows(&runs)));
    }
    refresh_attention(ui);
    if let Ok(types) = request("GET", "/api/adws/types", None).await {
        ui.workflow_types.set(protocol::workflow_types(&types));
    }
    let page = request("GET", &format!("/api/events?order=desc&limit={FIRST_PAGE}"), None).await?;
    let (events, last_seq) = protocol::events(&page);
    ui.apply(events);
    Ok(last_seq)
}

/// Opens the stream after the cursor.
fn connect(ui: Ui) {
    let Some(window) = web_sys::window() else { return };
    let location = window.location();
    let (protocol_name, host) = (location.protocol().unwrap_or_default(), location.host().unwrap_or_default());
    let (generation, cursor) = with_socket(|s| {
        s.generation = s.generation.wrapping_add(1);
        if let Some(old) = s.ws.take() {
            let _ = old.close();
        }
        s.callbacks.clear();
        (s.generation, s.cursor)
    });
    let ws = match WebSocket::new(&protocol::ws_url(&protocol_name, &host, cursor, token().as_deref())) {
        Ok(ws) => ws,
        Err(e) => {
            leptos::logging::warn!("orch: cannot open the event stream: {}", js_error(e));
            schedule_retry(ui);
            return;
        }
    };
    ui.conn.set(Conn::Connecting);
    let current = move || with_socket(|s| s.generation == generation);
    let on_open = Closure::<dyn FnMut(JsValue)>::new(move |_: JsValue| {
        if current() {
            ui.conn.set(Conn::Replaying);
            spawn_local(check_same_log(cursor));
        }
    });
    let on_message = Closure::<dyn FnMut(JsValue)>::new(move |e: JsValue| {
        if !current() {
            return;
        }
        let Some(text) = e.dyn_ref::<MessageEvent>().and_then(|m| m.data().as_string()) else { return };
        ui.frames.update(|n| *n += 1);
        match protocol::parse_frame(&text) {
            Incoming::Event(r) => queue(ui, *r),
            Incoming::Live(last) => {
                with_socket(|s| {
                    s.backoff.reset();
                    s.cursor = s.cursor.max(last);
                });
                ui.conn.set(Conn::Live);
            }
            // The server closes next; the cursor already is the last seq received, where it resumes.
            Incoming::Ending(_) => {}
            Incoming::Other => {}
        }
    });
    let on_close = Closure::<dyn FnMut(JsValue)>::new(move |e: JsValue| {
        if !current() {
            return;
        }
        let code = e.dyn_ref::<CloseEvent>().map(|c| c.code()).unwrap_or(0);
        leptos::logging::log!("orch: the event stream closed (code {code}); reconnecting");
        with_socket(|s| s.ws = None);
        schedule_retry(ui);
    });
    ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
    let watchdog = ws.clone();
    set_timeout(
        move || {
            if current() && watchdog.ready_state() == WebSocket::CONNECTING {
                // A handshake that hangs would block the stream for good: give up on it and retry.
                let _ = watchdog.close();
                with_socket(|s| s.ws = None);
                schedule_retry(ui);
            }
        },
        HANDSHAKE_TIMEOUT,
    );
    with_socket(|s| {
        s.ws = Some(ws);
        s.callbacks = vec![on_open, on_message, on_close];
    });
}

/// After a reconnect: when the server's log ends before `cursor`, it is another store now (a new
/// database on the same address) and nothing on the page belongs to it, so the page starts afresh.
async fn check_same_log(cursor: u64) {
    if cursor == 0 {
        return;
    }
    if let Ok(v) = request("GET", "/api/events?limit=1", None).await
        && let Some(last) = v.get("last_seq").and_then(Value::as_u64)
        && last < cursor
    {
        leptos::logging::warn!("orch: the server's log ends at {last}, before this page's {cursor}: reloading");
        if let Some(w) = web_sys::window() {
            let _ = w.location().reload();
        }
    }
}

/// Queues a received event; the batch is applied shortly.
fn queue(ui: Ui, r: orch_core::wire::EventRecord) {
    let schedule = with_socket(|s| {
        s.cursor = s.cursor.max(r.seq);
        s.pending.push(r);
        !std::mem::replace(&mut s.flush_scheduled, true)
    });
    if schedule {
        set_timeout(
            move || {
                let batch = with_socket(|s| {
                    s.flush_scheduled = false;
                    std::mem::take(&mut s.pending)
                });
                ui.apply(batch);
            },
            BATCH,
        );
    }
}

/// Shows the banner and tries again after the backoff's next delay.
fn schedule_retry(ui: Ui) {
    let (delay, attempt) = with_socket(|s| {
        if let Some(h) = s.retry.take() {
            h.clear();
        }
        let d = s.backoff.next_delay(js_sys::Math::random());
        (d, s.backoff.attempt())
    });
    ui.conn.set(Conn::Down { retry_at: js_sys::Date::now() + delay as f64, attempt });
    let handle = set_timeout_with_handle(move || retry(ui), Duration::from_millis(delay)).ok();
    with_socket(|s| s.retry = handle);
}

fn retry(ui: Ui) {
    with_socket(|s| s.retry = None);
    if with_socket(|s| s.loaded) { connect(ui) } else { start(ui) }
}

/// The banner's "Retry now".
pub fn reconnect_now(ui: Ui) {
    if let Some(h) = with_socket(|s| s.retry.take()) {
        h.clear();
    }
    retry(ui);
}

/// Sends a chat message to the orchestrator (shown at once, replaced by the server's copy).
pub fn send_chat(ui: Ui, text: String) {
    let text = text.trim().to_string();
    if text.is_empty() {
        return;
    }
    let now = chrono::DateTime::from_timestamp_millis(js_sys::Date::now() as i64).unwrap_or_default();
    ui.chat.update(|c| c.add_local(&text, now));
    spawn_local(async move {
        let body = serde_json::json!({"message": text});
        if let Err(e) = request("POST", "/api/orchestrator/chat", Some(&body)).await {
            ui.notice.set(Some(format!("The message was not sent: {e}")));
        }
    });
}

/// POSTs an action (start, cancel, resume a workflow) and shows a failure.
pub fn post(ui: Ui, path: String, body: Value, what: &'static str) {
    spawn_local(async move {
        if let Err(e) = request("POST", &path, Some(&body)).await {
            ui.notice.set(Some(format!("{what} failed: {e}")));
        }
    });
}

/// Loads one workflow run's stored events into its lanes.
pub fn load_workflow_events(ui: Ui, id: orch_core::wire::Id) {
    spawn_local(async move {
        if let Ok(v) = request("GET", &format!("/api/adws/{id}/events"), None).await {
            let events = protocol::workflow_events(&v);
            ui.workflows.update(|w| w.load_events(id, &events));
        }
    });
}

/// POSTs an action and runs `then` once it succeeded (a failure is shown).
pub fn post_then(ui: Ui, path: String, body: Value, what: &'static str, then: impl FnOnce() + 'static) {
    spawn_local(async move {
        match request("POST", &path, Some(&body)).await {
            Ok(_) => then(),
            Err(e) => ui.notice.set(Some(format!("{what} failed: {e}"))),
        }
    });
}

/// POSTs several actions one after the other (a batch from the inbox), then fetches the inbox again;
/// the failures are shown together.
pub fn post_all(ui: Ui, requests: Vec<(String, Value)>, what: &'static str) {
    spawn_local(async move {
        let mut failed = Vec::new();
        for (path, body) in &requests {
            if let Err(e) = request("POST", path, Some(body)).await {
                failed.push(e);
            }
        }
        if !failed.is_empty() {
            ui.notice.set(Some(format!(
                "{what}: {} of {} failed: {}",
                failed.len(),
                requests.len(),
                failed.join("; ")
            )));
        }
        refresh_attention(ui);
    });
}

/// Fetches the inbox again (`GET /api/attention`; a server without it has an empty inbox).
pub fn refresh_attention(ui: Ui) {
    spawn_local(async move {
        if let Ok(v) = request("GET", "/api/attention", None).await {
            let mut items: Vec<orch_core::wire::AttentionItem> = protocol::list(&v, "items");
            crate::inbox::sort(&mut items);
            let fresh: Vec<String> = ui.attention.with_untracked(|old| {
                crate::inbox::newly_waiting(old, &items).iter().map(|i| i.question.clone()).collect()
            });
            if !fresh.is_empty() && ui.notify.get_untracked() {
                notify(&fresh);
            }
            ui.attention.set(items);
        }
    });
}

thread_local! {
    static ATTENTION_SCHEDULED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Events that may change the inbox arrived: fetch it again shortly (once for a burst).
pub fn attention_changed(ui: Ui) {
    if ATTENTION_SCHEDULED.with(|s| s.replace(true)) {
        return;
    }
    set_timeout(
        move || {
            ATTENTION_SCHEDULED.with(|s| s.set(false));
            refresh_attention(ui);
        },
        Duration::from_millis(300),
    );
}

/// Loads `/api/costs` and `/api/budgets` into `data`.
pub fn load_costs(ui: Ui, data: RwSignal<(Value, Value)>) {
    spawn_local(async move {
        // Hourly buckets: the chart's cost over time.
        let costs = request("GET", "/api/costs?bucket=hour", None).await;
        let budgets = request("GET", "/api/budgets", None).await.unwrap_or(Value::Null);
        match costs {
            Ok(c) => data.set((c, budgets)),
            Err(e) => ui.notice.set(Some(format!("Loading the costs failed: {e}"))),
        }
    });
}

/// Loads the palette's system panel (`GET /get_orchestrator`); left as it was on a failure.
pub fn load_system(into: RwSignal<protocol::System>) {
    spawn_local(async move {
        if let Ok(v) = request("GET", "/get_orchestrator", None).await {
            into.set(protocol::system(&v));
        }
    });
}

/// Loads the list of task graphs.
pub fn load_graphs(ui: Ui) {
    spawn_local(async move {
        if let Ok(v) = request("GET", "/api/graphs", None).await {
            ui.graphs.update(|g| g.load_list(&v));
        }
    });
}

/// Loads who works on the store (`GET /api/workers`) into `into`; a failure keeps what was shown.
pub fn load_workers(into: RwSignal<crate::workers::Workers>) {
    spawn_local(async move {
        if let Ok(v) = request("GET", "/api/workers", None).await {
            into.set(crate::workers::Workers::from_json(&v));
        }
    });
}

/// Loads one graph with its tasks.
pub fn load_graph(ui: Ui, id: orch_core::wire::Id) {
    spawn_local(async move {
        if let Ok(v) = request("GET", &format!("/api/graphs/{id}"), None).await {
            ui.graphs.update(|g| g.load_graph(&v));
        }
    });
}

/// Asks the autocomplete expert for suggestions to continue `input` (none on any failure).
pub fn suggest(input: String, then: impl FnOnce(Vec<protocol::Suggestion>) + 'static) {
    spawn_local(async move {
        let body = serde_json::json!({"input": input});
        let found = request("POST", "/api/autocomplete", Some(&body)).await.map(|v| protocol::suggestions(&v));
        then(found.unwrap_or_default());
    });
}

/// Tells the autocomplete expert what the person did with its suggestions (best effort).
pub fn autocomplete_feedback(body: Value) {
    spawn_local(async move {
        let _ = request("POST", "/api/autocomplete/feedback", Some(&body)).await;
    });
}

/// A browser notification that something started waiting for a person (when notifications are allowed
/// and the page is not in front).
fn notify(questions: &[String]) {
    use web_sys::{Notification, NotificationOptions, NotificationPermission};
    let hidden = web_sys::window().and_then(|w| w.document()).is_some_and(|d| d.hidden());
    if !hidden || Notification::permission() != NotificationPermission::Granted {
        return;
    }
    let options = NotificationOptions::new();
    options.set_body(&crate::format::truncate(questions.first().map_or("", String::as_str), 200));
    let title = if questions.len() == 1 {
        "orch: 1 thing needs you".to_string()
    } else {
        format!("orch: {} things need you", questions.len())
    };
    let _ = Notification::new_with_options(&title, &options);
}

/// Asks the browser for permission to notify (from a click, as browsers require).
pub fn ask_to_notify(ui: Ui) {
    use web_sys::{Notification, NotificationPermission};
    if Notification::permission() == NotificationPermission::Granted {
        ui.notify.set(true);
        return;
    }
    if let Ok(promise) = Notification::request_permission() {
        spawn_local(async move {
            let granted =
                JsFuture::from(promise).await.ok().and_then(|v| v.as_string()).is_some_and(|p| p == "granted");
            ui.notify.set(granted);
            if !granted {
                ui.notice.set(Some("The browser did not allow notifications.".into()));
            }
        });
    }
}
