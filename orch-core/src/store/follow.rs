//! A generic "replay, then live" follower over any store's `read_events`.

use std::sync::Arc;

use futures::future::BoxFuture;
use futures::stream::{self, StreamExt};

use super::{EventQuery, EventStream, Store};

/// Waits until events after the given seq may be available (a notification, a poll interval…).
/// It is called with the last seq the follower has seen and must return at once if a later one exists.
pub type Wakeup = Arc<dyn Fn(u64) -> BoxFuture<'static, ()> + Send + Sync>;

const PAGE: usize = 1000;

/// Follows the log of `store` from `since`: reads pages of `seq > last`, and when caught up waits on
/// `wakeup` before reading again. Because every read starts after the last seq delivered and seq order
/// is commit order, nothing is missed and nothing is delivered twice.
pub fn follow_log<S: Store + ?Sized>(store: Arc<S>, since: u64, wakeup: Wakeup) -> EventStream {
    struct State<S: ?Sized> {
        store: Arc<S>,
        last: u64,
        buf: std::collections::VecDeque<crate::wire::EventRecord>,
        wakeup: Wakeup,
        failed: bool,
    }
    let state = State { store, last: since, buf: Default::default(), wakeup, failed: false };
    stream::unfold(state, |mut st| async move {
        if st.failed {
            return None;
        }
        loop {
            if let Some(r) = st.buf.pop_front() {
                st.last = r.seq;
                return Some((Ok(r), st));
            }
            let q = EventQuery { after_seq: st.last, limit: Some(PAGE), ..EventQuery::default() };
            match st.store.read_events(&q).await {
                Ok(page) if page.is_empty() => (st.wakeup)(st.last).await,
                Ok(page) => st.buf.extend(page),
                Err(e) => {
                    st.failed = true;
                    return Some((Err(e), st));
                }
            }
        }
    })
    .boxed()
}

/// Follows only the events of `store` that match `filter` (its seq range and limit are ignored) from
/// `since`. Each pass reads the matching events up to the log's last seq and then moves past every seq
/// it scanned, so events that do not match are neither decoded nor scanned twice.
pub fn follow_log_matching<S: Store + ?Sized>(
    store: Arc<S>,
    since: u64,
    wakeup: Wakeup,
    filter: EventQuery,
) -> EventStream {
    struct State<S: ?Sized> {
        store: Arc<S>,
        scanned: u64,
        buf: std::collections::VecDeque<crate::wire::EventRecord>,
        wakeup: Wakeup,
        filter: EventQuery,
        failed: bool,
    }
    let state = State { store, scanned: since, buf: Default::default(), wakeup, filter, failed: false };
    stream::unfold(state, |mut st| async move {
        if st.failed {
            return None;
        }
        loop {
            if let Some(r) = st.buf.pop_front() {
                return Some((Ok(r), st));
            }
            let top = match st.store.last_seq().await {
                Ok(top) => top,
                Err(e) => {
                    st.failed = true;
                    return Some((Err(e), st));
                }
            };
            if top <= st.scanned {
                (st.wakeup)(st.scanned).await;
                continue;
            }
            let q = EventQuery { after_seq: st.scanned, until_seq: Some(top), limit: Some(PAGE), ..st.filter.clone() };
            match st.store.read_events(&q).await {
                Ok(page) => {
                    st.scanned = match page.last() {
                        Some(last) if page.len() >= PAGE => last.seq,
                        _ => top,
                    };
                    st.buf.extend(page);
                }
                Err(e) => {
                    st.failed = true;
                    return Some((Err(e), st));
                }
            }
        }
    })
    .boxed()
}
