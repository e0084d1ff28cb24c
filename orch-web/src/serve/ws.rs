//! `/ws`: the live event stream. The seed's `connection_established` at once; then every event of the
//! log as orch's frame and the seed's frames (see [`super::frames`]), rendered once for every client by
//! the server's [hub](super::hub). `?since=SEQ` replays the log after SEQ first (then
//! `{"frame":"live","last_seq"}`), then streams live: a client keeps the last seq it handled, so
//! nothing is missed or sent twice, and a slow client never delays the others or makes the server hold
//! its backlog (what it fell behind by is read from the store when it is ready for it). A client that stops reading
//! altogether is cut off after [`SEND_TIMEOUT`], told the seq to resume from when it can still be told.
//!
//! From the client: `{"type":"subscribe", "agent_id"?, "workflow_id"?, "types"?: [...],
//! "categories"?: [...]}` narrows the stream (answered `{"frame":"subscribed"}`; an empty one widens it
//! again); `{"type":"ping"}` is answered `{"frame":"pong"}`; the seed's ADW relay frames
//! (`adw_broadcast`, `agent_broadcast`) become events of the log, re-broadcast from there as the seed
//! does ([`relayed`]); other frames are ignored. orch's control frames have a `frame` key, as
//! [`orch_core::wire::WsFrame`] reads them.

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use orch_core::wire::{Event, EventCategory, EventKeys, EventRecord, Id, LogLevel, NewEvent};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::error::ApiError;
use super::hub::Item;
use super::state::AppState;

/// How long one frame may wait for the client to take it before the client is cut off.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the server pings (browsers answer by themselves), so idle connections stay open
/// through proxies and dead ones are noticed.
const PING_EVERY: Duration = Duration::from_secs(20);

/// The read and write buffers of a connection.
const BUFFER: usize = 4 * 1024;

/// The most a connection's unsent frames may hold (the send timeout cuts a client off long before).
const MAX_WRITE_BUFFER: usize = 4 * 1024 * 1024;

/// `?since=SEQ`.
#[derive(Debug, Deserialize)]
pub struct WsQuery {
    /// Replay the log after this seq first.
    since: Option<u64>,
}

/// Upgrades to the event stream.
pub async fn handler(
    ws: WebSocketUpgrade,
    State(state): State<AppState>,
    query: Result<Query<WsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query?;
    // Small buffers (frames are small; a bigger one grows as needed): a thousand idle clients hold
    // kilobytes each, not the default 128 KiB.
    let ws = ws.read_buffer_size(BUFFER).write_buffer_size(BUFFER).max_write_buffer_size(MAX_WRITE_BUFFER);
    Ok(ws.on_upgrade(move |socket| serve(socket, state, q.since)))
}

/// What a client asked to see.
#[derive(Debug, Default, Deserialize)]
struct Subscription {
    agent_id: Option<Id>,
    workflow_id: Option<Id>,
    #[serde(default)]
    types: Vec<String>,
    #[serde(default)]
    categories: Vec<EventCategory>,
}

impl Subscription {
    fn wants(&self, r: &EventRecord) -> bool {
        self.agent_id.is_none_or(|a| r.keys.agent_id == Some(a))
            && self.workflow_id.is_none_or(|w| r.keys.workflow_id == Some(w))
            && (self.types.is_empty() || self.types.iter().any(|t| t == r.event.kind()))
            && (self.categories.is_empty() || self.categories.contains(&r.event.category()))
    }
}

/// Counts the connection while it is open.
struct Open(AppState);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.websockets().fetch_sub(1, Ordering::Relaxed);
    }
}

/// The client is gone (or was cut off): stop serving it.
struct Gone;

type Sink = futures::stream::SplitSink<WebSocket, Message>;

/// One client's place in the log and what it asked for.
struct Client {
    filter: Subscription,
    /// The last seq handled (sent, or filtered out).
    last_sent: u64,
    /// With `?since=`: the seq after which `{"frame":"live"}` is sent.
    replay_until: Option<u64>,
}

impl Client {
    /// Sends `item` if the client wants it (cutting off a client that does not read), then the `live`
    /// frame when the replay is done.
    async fn deliver(&mut self, tx: &mut Sink, item: &Item) -> Result<(), Gone> {
        let seq = item.record.seq;
        if self.filter.wants(&item.record) {
            for f in &item.frames {
                match tokio::time::timeout(SEND_TIMEOUT, tx.send(Message::Text(f.clone()))).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return Err(Gone),
                    Err(_) => {
                        // The client does not read: cut it off, saying where to resume.
                        tracing::info!(seq, "a WebSocket client stopped reading; closing it");
                        let bye = json!({"frame": "cut_off", "reason": "the client stopped reading",
                                         "resume_from": self.last_sent + 1});
                        let _ = tokio::time::timeout(Duration::from_secs(1), send(tx, &bye)).await;
                        return Err(Gone);
                    }
                }
            }
        }
        self.last_sent = seq;
        if self.replay_until.is_some_and(|u| seq >= u) {
            self.replay_until = None;
            send(tx, &json!({"frame": "live", "last_seq": seq})).await.map_err(|_| Gone)?;
        }
        Ok(())
    }
}

async fn serve(socket: WebSocket, state: AppState, since: Option<u64>) {
    let n = state.websockets().fetch_add(1, Ordering::Relaxed);
    let _open = Open(state.clone());
    let (mut tx, mut rx) = socket.split();
    let hub = state.hub().clone();
    // Subscribed first: whatever the hub publishes from now on reaches this client; what came
    // before is read from the store (and what arrives twice is skipped by seq).
    let mut live = hub.subscribe();
    let store = state.engine().store().clone();
    let start = match since {
        Some(s) => s,
        None => store.last_seq().await.unwrap_or(0),
    };
    let hello = json!({
        "type": "connection_established", "frame": "seed", "client_id": format!("client_{n}"),
        "message": "Connected to Orchestrator Backend", "timestamp": chrono::Utc::now().to_rfc3339(),
    });
    if send(&mut tx, &hello).await.is_err() {
        return;
    }
    // The replay (with `since`) ends at the log's last seq now; `live` says so.
    let mut replay_until = match since {
        Some(_) => store.last_seq().await.ok(),
        None => None,
    };
    if let Some(until) = replay_until.filter(|u| *u <= start) {
        if send(&mut tx, &json!({"frame": "live", "last_seq": until.max(start)})).await.is_err() {
            return;
        }
        replay_until = None;
    }
    let mut client = Client { filter: Subscription::default(), last_sent: start, replay_until };
    // Behind: the store has events this client has not had that the channel will not bring (the
    // replay, or a stretch the client fell behind by); read them a page at a time.
    let mut behind = true;
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        tokio::select! {
            page = hub.page(client.last_sent), if behind => match page {
                Ok(items) if items.is_empty() => behind = false,
                Ok(items) => {
                    for item in &items {
                        if client.deliver(&mut tx, item).await.is_err() {
                            return;
                        }
                    }
                }
                Err(e) => {
                    let frame = json!({"frame": "error", "message": format!("the event log could not be read: {e}"),
                                       "resume_from": client.last_sent + 1});
                    let _ = send(&mut tx, &frame).await;
                    return;
                }
            },
            item = live.recv(), if !behind => match item {
                Ok(item) if item.record.seq <= client.last_sent => {}
                // A gap (the hub started later, or skipped ahead): read it from the store.
                Ok(item) if item.record.seq > client.last_sent + 1 => behind = true,
                Ok(item) => {
                    if client.deliver(&mut tx, &item).await.is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => behind = true,
                Err(broadcast::error::RecvError::Closed) => return,
            },
            incoming = rx.next() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    if let Some(event) = relayed(&text) {
                        // The seed's ADW scripts report here: their frames become events of the log,
                        // and reach every client (this one too) from there.
                        if let Err(e) = store.append(vec![event]).await {
                            tracing::warn!(error = %e, "could not record a relayed frame");
                        }
                        continue;
                    }
                    if let Some(reply) = on_client_frame(&text, &mut client.filter)
                        && send(&mut tx, &reply).await.is_err()
                    {
                        return;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
            _ = ping.tick() => {
                if tokio::time::timeout(SEND_TIMEOUT, tx.send(Message::Ping(Default::default()))).await.map_or(true, |r| r.is_err()) {
                    return;
                }
            }
        }
    }
}

/// The `broadcast_type`s the seed's relay sends (seed-contract.md §3.3).
const RELAYED: [&str; 9] = [
    "adw_created",
    "adw_updated",
    "adw_event",
    "adw_step_change",
    "adw_status",
    "adw_event_summary_update",
    "agent_created",
    "agent_status_changed",
    "agent_updated",
];

/// A relay frame of the seed's external ADW scripts (`{"type":"adw_broadcast"|"agent_broadcast",
/// "broadcast_type", …}`) as the event that records it: a system log holding the frame (under the
/// workflow it names, when that is an id); `None` for any other frame, or an unknown broadcast type.
fn relayed(text: &str) -> Option<NewEvent> {
    let v: Value = serde_json::from_str(text).ok()?;
    let kind = v.get("type").and_then(Value::as_str)?;
    if kind != "adw_broadcast" && kind != "agent_broadcast" {
        return None;
    }
    let broadcast = v.get("broadcast_type").and_then(Value::as_str).filter(|b| RELAYED.contains(b))?.to_string();
    let workflow_id = v.get("adw_id").and_then(Value::as_str).and_then(|s| s.parse::<Id>().ok());
    let keys = EventKeys { workflow_id, ..EventKeys::default() };
    let event = Event::SystemLog {
        level: LogLevel::Info,
        message: format!("relayed {broadcast} from an external ADW script"),
        metadata: json!({"relay": v}),
    };
    Some(NewEvent::new(keys, event))
}

/// A frame from the client: a subscription (answered with `subscribed`), a `ping` (answered with
/// `pong`); anything else is ignored.
fn on_client_frame(text: &str, filter: &mut Subscription) -> Option<Value> {
    let v: Value = serde_json::from_str(text).ok()?;
    match v.get("type").and_then(Value::as_str)? {
        "subscribe" => match serde_json::from_value::<Subscription>(v.clone()) {
            Ok(s) => {
                *filter = s;
                Some(json!({"frame": "subscribed", "filter": v}))
            }
            Err(e) => Some(json!({"frame": "error", "message": format!("bad subscribe frame: {e}")})),
        },
        "ping" => Some(json!({"frame": "pong", "timestamp": chrono::Utc::now().to_rfc3339()})),
        _ => None,
    }
}

async fn send(tx: &mut futures::stream::SplitSink<WebSocket, Message>, frame: &Value) -> Result<(), axum::Error> {
    tx.send(Message::Text(Utf8Bytes::from(frame.to_string()))).await
}
