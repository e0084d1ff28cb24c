//! The checks, one `async fn(Arc<dyn Store>)` each, by topic: entities, the event log, agent steps,
//! plans and task graphs, the task queue and the budgets.

mod entities;
mod events;
mod graphs;
mod reserving;
mod starts;
mod steps;
mod work;

use std::collections::BTreeSet;

use futures::StreamExt;

use super::Writes;
use super::fixtures::*;
use super::*;
use crate::store::{AgentFilter, EventQuery, EventStream, SavedState, StepCommit, StoreError, SystemLogQuery};
use crate::wire::{ContentBlock, EventCategory, Message, NewEvent, Role, new_id};

pub use entities::*;
pub use events::*;
pub use graphs::*;
pub use reserving::*;
pub use starts::*;
pub use steps::*;
pub use work::*;

fn ids<T>(v: &[T], id: impl Fn(&T) -> Id) -> Vec<Id> {
    v.iter().map(id).collect()
}

fn seqs(v: &[EventRecord]) -> Vec<u64> {
    v.iter().map(|r| r.seq).collect()
}

fn is_not_found<T: std::fmt::Debug>(r: Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::NotFound { .. }))
}

async fn next_event(stream: &mut EventStream, what: &str) -> EventRecord {
    match tokio::time::timeout(EVENT_TIMEOUT, stream.next()).await {
        Ok(Some(Ok(r))) => r,
        Ok(Some(Err(e))) => panic!("{what}: subscription failed: {e}"),
        Ok(None) => panic!("{what}: subscription ended"),
        Err(_) => panic!("{what}: no event within {EVENT_TIMEOUT:?}"),
    }
}

async fn collect_events(stream: &mut EventStream, n: usize, what: &str) -> Vec<EventRecord> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let r = next_event(stream, &format!("{what} (got {} of {n})", out.len())).await;
        out.push(r);
    }
    out
}

/// Collects `n` events in a task, so the subscriber is already waiting when they are appended.
fn spawn_collect(
    mut stream: EventStream,
    n: usize,
    what: &'static str,
) -> tokio::task::JoinHandle<(EventStream, Vec<EventRecord>)> {
    tokio::spawn(async move {
        let got = collect_events(&mut stream, n, what).await;
        (stream, got)
    })
}

async fn append_texts(store: &Arc<dyn Store>, range: std::ops::Range<u64>) -> Vec<EventRecord> {
    store.append(range.map(|i| text(i, EventKeys::default())).collect()).await.expect("append")
}
