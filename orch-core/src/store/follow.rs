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

/// The highest seq known to be committed, without a read (e.g. the last one a notification carried):
/// every seq up to it is readable, since seq order is commit order. 0 when nothing is known.
pub type KnownSeq = Arc<dyn Fn() -> u64 + Send + Sync>;

/// Follows only the events of `store` that match `filter` (its seq range and limit are ignored) from
/// `since`. Each pass reads the matching events up to the log's last seq and then moves past every seq
/// it scanned, so events that do not match are neither decoded nor scanned twice.
pub fn follow_log_matching<S: Store + ?Sized>(
    store: Arc<S>,
    since: u64,
    wakeup: Wakeup,
    filter: EventQuery,
) -> EventStream {
    matching(store, since, wakeup, filter, None)
}

/// [`follow_log_matching`] for a store that knows committed seqs without reading them (`known`, which
/// `wakeup` must wait on): a pass reads the matching events up to the known seq, and the log's last seq
/// is read only on the first pass and after a wake-up that brought no known seq (its fallback
/// interval), so each wake-up costs one read instead of two.
pub fn follow_log_matching_known<S: Store + ?Sized>(
    store: Arc<S>,
    since: u64,
    wakeup: Wakeup,
    filter: EventQuery,
    known: KnownSeq,
) -> EventStream {
    matching(store, since, wakeup, filter, Some(known))
}

fn matching<S: Store + ?Sized>(
    store: Arc<S>,
    since: u64,
    wakeup: Wakeup,
    filter: EventQuery,
    known: Option<KnownSeq>,
) -> EventStream {
    struct State<S: ?Sized> {
        store: Arc<S>,
        scanned: u64,
        buf: std::collections::VecDeque<crate::wire::EventRecord>,
        wakeup: Wakeup,
        filter: EventQuery,
        known: Option<KnownSeq>,
        /// Whether the next pass that knows of nothing new asks the store (the first pass, and after a
        /// wake-up); otherwise it waits.
        ask: bool,
        failed: bool,
    }
    let state =
        State { store, scanned: since, buf: Default::default(), wakeup, filter, known, ask: true, failed: false };
    stream::unfold(state, |mut st| async move {
        if st.failed {
            return None;
        }
        loop {
            if let Some(r) = st.buf.pop_front() {
                return Some((Ok(r), st));
            }
            let known = st.known.as_ref().map_or(0, |k| k());
            let top = if known > st.scanned {
                st.ask = false;
                known
            } else if st.ask || st.known.is_none() {
                st.ask = false;
                match st.store.last_seq().await {
                    Ok(top) => top,
                    Err(e) => {
                        st.failed = true;
                        return Some((Err(e), st));
                    }
                }
            } else {
                st.scanned
            };
            if top <= st.scanned {
                (st.wakeup)(st.scanned).await;
                st.ask = true;
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use futures::StreamExt as _;

    use super::*;
    use crate::store::{Batch, MemoryStore};
    use crate::wire::{Event, EventKeys};

    async fn text(store: &MemoryStore, n: usize) {
        for i in 0..n {
            store
                .commit(Batch::new().event(EventKeys::default(), Event::Text { text: format!("t{i}") }))
                .await
                .unwrap();
        }
    }

    async fn next(stream: &mut EventStream) -> crate::wire::EventRecord {
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), stream.next()).await;
        got.expect("an event within 5 s").expect("the stream goes on").expect("no error")
    }

    /// A pass reads up to the known seq without asking the store for its last one; after a wake-up
    /// that brought no known seq (a fallback), it asks the store.
    #[tokio::test]
    async fn a_known_seq_bounds_the_read_and_a_wakeup_without_news_asks_the_store() {
        let store = Arc::new(MemoryStore::new());
        text(&store, 3).await;
        let known = Arc::new(AtomicU64::new(0));
        let (wake, woken) = tokio::sync::mpsc::unbounded_channel::<()>();
        let woken = Arc::new(tokio::sync::Mutex::new(woken));
        // As a store's: at once if a later seq is known, else on a message (a notification, a poll).
        let k = known.clone();
        let wakeup: Wakeup = Arc::new(move |seen| {
            let (woken, k) = (woken.clone(), k.clone());
            Box::pin(async move {
                if k.load(Ordering::SeqCst) <= seen {
                    woken.lock().await.recv().await;
                }
            })
        });
        let k = known.clone();
        let filter = EventQuery { types: vec!["Text".into()], ..EventQuery::default() };
        let mut stream =
            follow_log_matching_known(store.clone(), 0, wakeup, filter, Arc::new(move || k.load(Ordering::SeqCst)));

        // The first pass asks the store: all three.
        for want in 1..=3 {
            assert_eq!(next(&mut stream).await.seq, want);
        }
        // Two more appended, only the first known: the pass reads up to it, not beyond.
        text(&store, 2).await;
        known.store(4, Ordering::SeqCst);
        assert_eq!(next(&mut stream).await.seq, 4);
        let early = tokio::time::timeout(std::time::Duration::from_millis(200), stream.next()).await;
        assert!(early.is_err(), "seq 5 is not read before a wake-up: {early:?}");
        // A wake-up with nothing new known (the fallback): the store is asked, and 5 arrives.
        wake.send(()).unwrap();
        assert_eq!(next(&mut stream).await.seq, 5);
    }

    /// Without a known seq, every pass asks the store, as before.
    #[tokio::test]
    async fn without_a_known_seq_every_wakeup_asks_the_store() {
        let store = Arc::new(MemoryStore::new());
        text(&store, 1).await;
        let wakeup: Wakeup = Arc::new(|_seen| Box::pin(tokio::time::sleep(std::time::Duration::from_millis(20))));
        let mut stream = follow_log_matching(store.clone(), 0, wakeup, EventQuery::default());
        let first = tokio::time::timeout(std::time::Duration::from_secs(5), stream.next()).await.unwrap();
        assert_eq!(first.unwrap().unwrap().seq, 1);
        text(&store, 1).await;
        let second = tokio::time::timeout(std::time::Duration::from_secs(5), stream.next()).await.unwrap();
        assert_eq!(second.unwrap().unwrap().seq, 2);
    }
}
