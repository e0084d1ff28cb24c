//! `/ws`: the live event stream. The seed's `connection_established` at once; then every event of the
//! log as orch's frame and the seed's frames (see [`super::frames`]). `?since=SEQ` replays the log
//! after SEQ first (then `{"frame":"live","last_seq"}`), then streams live: each client follows the log itself from the last seq it sent, so nothing
//! is missed or sent twice, and a slow client never delays the others or makes the server hold its
//! backlog (it is read from the store when the client is ready for it). A client that stops reading
//! altogether is cut off after [`SEND_TIMEOUT`], told the seq to resume from when it can still be told.
//!
//! From the client: `{"type":"subscribe", "agent_id"?, "workflow_id"?, "types"?: [...],
//! "categories"?: [...]}` narrows the stream (answered `{"frame":"subscribed"}`; an empty one widens it
//! again); `{"type":"ping"}` is answered `{"frame":"pong"}`; the seed's ADW relay frames
//! (`adw_broadcast`, `agent_broadcast`) become events of the log, re-broadcast from there as the seed
//! does ([`relayed`]); other frames are ignored. orch's control frames have a `frame` key, as
//! [`orch_core::wire::WsFrame`] reads them.

use std::collections::HashMap;
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

use super::error::ApiError;
use super::frames::{AgentNames, event_frame, seed_frames};
use super::state::AppState;

/// How long one frame may wait for the client to take it before the client is cut off.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the server pings (browsers answer by themselves), so idle connections stay open
/// through proxies and dead ones are noticed.
const PING_EVERY: Duration = Duration::from_secs(20);

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

/// Agent names learned from the log (and looked up in the store when missing).
#[derive(Default)]
struct Names(HashMap<Id, String>);

impl AgentNames for Names {
    fn name_of(&self, id: Id) -> Option<String> {
        self.0.get(&id).cloned()
    }
}

/// Counts the connection while it is open.
struct Open(AppState);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.websockets().fetch_sub(1, Ordering::Relaxed);
    }
}

async fn serve(socket: WebSocket, state: AppState, since: Option<u64>) {
    let n = state.websockets().fetch_add(1, Ordering::Relaxed);
    let _open = Open(state.clone());
    let (mut tx, mut rx) = socket.split();
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
    let orchestrator_agent = state.orchestrator().agent_id();
    let mut events = store.subscribe(start);
    let mut names = Names::default();
    let mut filter = Subscription::default();
    let mut last_sent = start;
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        tokio::select! {
            next = events.next() => {
                let r = match next {
                    Some(Ok(r)) => r,
                    Some(Err(e)) => {
                        let frame = json!({"frame": "error", "message": format!("the event log could not be read: {e}"),
                                           "resume_from": last_sent + 1});
                        let _ = send(&mut tx, &frame).await;
                        return;
                    }
                    None => return,
                };
                let seq = r.seq;
                if let orch_core::wire::Event::AgentCreated { agent } = &r.event {
                    names.0.insert(agent.id, agent.name.clone());
                }
                if let Some(id) = r.keys.agent_id
                    && !names.0.contains_key(&id)
                    && let Ok(Some(a)) = store.get_agent(id).await
                {
                    names.0.insert(id, a.name);
                }
                if filter.wants(&r) {
                    let mut frames = vec![event_frame(&r)];
                    frames.extend(seed_frames(&r, orchestrator_agent, &names));
                    for f in &frames {
                        match tokio::time::timeout(SEND_TIMEOUT, send(&mut tx, f)).await {
                            Ok(Ok(())) => {}
                            Ok(Err(_)) => return,
                            Err(_) => {
                                // The client does not read: cut it off, saying where to resume.
                                tracing::info!(seq, "a WebSocket client stopped reading; closing it");
                                let bye = json!({"frame": "cut_off", "reason": "the client stopped reading",
                                                 "resume_from": last_sent + 1});
                                let _ = tokio::time::timeout(Duration::from_secs(1), send(&mut tx, &bye)).await;
                                return;
                            }
                        }
                    }
                }
                last_sent = seq;
                if replay_until.is_some_and(|u| seq >= u) {
                    replay_until = None;
                    if send(&mut tx, &json!({"frame": "live", "last_seq": seq})).await.is_err() {
                        return;
                    }
                }
            }
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
                    if let Some(reply) = on_client_frame(&text, &mut filter)
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
