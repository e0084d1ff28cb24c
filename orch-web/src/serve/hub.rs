//! The server's one follower of the event log, shared by every WebSocket client.
//!
//! One task follows the store and renders each event once (orch's frame and the seed's frames, with
//! the agent names it has learned), then publishes it on a bounded broadcast channel. A client
//! subscribes to the channel first, then reads from the store what it needs before that (a replay
//! with `?since=`, or what it missed while it fell behind), skipping by seq what it already sent: so
//! nothing is missed or sent twice, and a client that falls further behind than the channel holds
//! costs the others nothing; it catches up from the store. With 1,000 clients the server holds one
//! follower and one window of rendered events, not 1,000.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use futures::StreamExt;
use orch_core::store::{EventQuery, Store};
use orch_core::wire::{Event, EventRecord, Id};
use tokio::sync::broadcast;

use super::frames::{AgentNames, event_frame, seed_frames};

/// Rendered events the channel holds for clients that are behind (about a second at 1,000 events/s);
/// a client further behind reads the store instead.
const WINDOW: usize = 1024;

/// Records read from the store at once when a client catches up.
pub const PAGE: usize = 256;

/// One event, rendered.
#[derive(Debug)]
pub struct Item {
    /// The event.
    pub record: EventRecord,
    /// orch's frame, then the seed's frames, as sent.
    pub frames: Vec<Utf8Bytes>,
}

/// The shared follower; see the [module documentation](self).
pub struct Hub {
    store: Arc<dyn Store>,
    orchestrator_agent: Id,
    tx: broadcast::Sender<Arc<Item>>,
    names: RwLock<HashMap<Id, String>>,
    /// The last seq published.
    head: AtomicU64,
}

struct Known<'a>(&'a HashMap<Id, String>);

impl AgentNames for Known<'_> {
    fn name_of(&self, id: Id) -> Option<String> {
        self.0.get(&id).cloned()
    }
}

impl Hub {
    /// Starts following `store` after `since`; frames name `orchestrator_agent` as the seed's
    /// orchestrator agent.
    pub fn start(store: Arc<dyn Store>, orchestrator_agent: Id, since: u64) -> Arc<Self> {
        let (tx, _) = broadcast::channel(WINDOW);
        let hub = Arc::new(Self {
            store,
            orchestrator_agent,
            tx,
            names: RwLock::new(HashMap::new()),
            head: AtomicU64::new(since),
        });
        let follower = hub.clone();
        tokio::spawn(async move { follower.follow().await });
        hub
    }

    /// Follows the log for as long as the server runs (a read error is retried after a second).
    async fn follow(self: Arc<Self>) {
        loop {
            let from = self.head.load(Ordering::Acquire);
            let mut events = self.store.subscribe(from);
            while let Some(next) = events.next().await {
                match next {
                    Ok(r) => {
                        let seq = r.seq;
                        let item = Arc::new(self.render(r).await);
                        self.head.store(seq, Ordering::Release);
                        // No receiver is fine: nobody is connected.
                        let _ = self.tx.send(item);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "the WebSocket hub could not read the log; retrying");
                        break;
                    }
                }
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// A receiver of the events published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Item>> {
        self.tx.subscribe()
    }

    /// Renders `r` (learning agent names from it, or from the store when unknown).
    pub async fn render(&self, r: EventRecord) -> Item {
        if let Event::AgentCreated { agent } = &r.event {
            self.learn(agent.id, agent.name.clone());
        }
        if let Some(id) = r.keys.agent_id {
            let known = self.read_names().contains_key(&id);
            if !known && let Ok(Some(a)) = self.store.get_agent(id).await {
                self.learn(id, a.name);
            }
        }
        let mut frames = vec![Utf8Bytes::from(event_frame(&r).to_string())];
        {
            let names = self.read_names();
            frames.extend(
                seed_frames(&r, self.orchestrator_agent, &Known(&names))
                    .into_iter()
                    .map(|f| Utf8Bytes::from(f.to_string())),
            );
        }
        Item { record: r, frames }
    }

    /// Up to [`PAGE`] records after `after`, rendered.
    pub async fn page(&self, after: u64) -> Result<Vec<Item>, orch_core::store::StoreError> {
        let records = self
            .store
            .read_events(&EventQuery { after_seq: after, limit: Some(PAGE), ..EventQuery::default() })
            .await?;
        let mut out = Vec::with_capacity(records.len());
        for r in records {
            out.push(self.render(r).await);
        }
        Ok(out)
    }

    fn learn(&self, id: Id, name: String) {
        self.names.write().unwrap_or_else(|p| p.into_inner()).insert(id, name);
    }

    fn read_names(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Id, String>> {
        self.names.read().unwrap_or_else(|p| p.into_inner())
    }
}
