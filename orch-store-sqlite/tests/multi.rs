//! Several stores — in this process and in child processes — sharing one SQLite file.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use orch_core::store::testkit::Writes;
use orch_core::store::{EventQuery, EventStream, Store, StoreError};
use orch_core::wire::{Agent, Event, EventKeys, EventRecord, NewEvent};
use orch_store_sqlite::SqliteStore;

const CHILD_ENV: &str = "ORCH_SQLITE_TEST_CHILD_DB";

fn tagged(producer: &str, i: u64) -> NewEvent {
    NewEvent::new(EventKeys::default(), Event::Text { text: format!("{producer}:{i}") })
}

/// Appends `n` events tagged `producer:i`, in batches of 1..=4.
async fn produce(store: Arc<dyn Store>, producer: String, n: u64) {
    let mut i = 0;
    while i < n {
        let k = (i % 4 + 1).min(n - i);
        store.append((i..i + k).map(|j| tagged(&producer, j)).collect()).await.unwrap();
        i += k;
    }
}

async fn collect(sub: &mut EventStream, n: usize) -> Vec<EventRecord> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        match tokio::time::timeout(Duration::from_secs(30), sub.next()).await {
            Ok(Some(Ok(r))) => out.push(r),
            Ok(Some(Err(e))) => panic!("subscription failed: {e}"),
            Ok(None) => panic!("subscription ended"),
            Err(_) => panic!("no event within 30 s after {} of {n}", out.len()),
        }
    }
    out
}

/// Checks that `got` holds seqs 1..=n once each, in order, and every producer's events in its own order.
fn check_log(got: &[EventRecord], producers: &[(&str, u64)]) {
    let total: u64 = producers.iter().map(|p| p.1).sum();
    assert_eq!(got.iter().map(|r| r.seq).collect::<Vec<_>>(), (1..=total).collect::<Vec<_>>(), "no gap, no duplicate");
    let mut per: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for r in got {
        let Event::Text { text } = &r.event else { panic!("unexpected event {r:?}") };
        let (p, i) = text.split_once(':').unwrap();
        per.entry(p.to_string()).or_default().push(i.parse().unwrap());
    }
    for (p, n) in producers {
        assert_eq!(per.get(*p).cloned().unwrap_or_default(), (0..*n).collect::<Vec<_>>(), "{p}'s events in order");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_stores_on_one_file_append_concurrently_and_a_third_sees_everything_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let a: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
    let b: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
    let c: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
    let mut sub = c.subscribe(0);
    let mut tasks = Vec::new();
    let names = ["a0", "a1", "a2", "b0", "b1", "b2"];
    for name in names {
        let store = if name.starts_with('a') { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(produce(store, name.to_string(), 150)));
    }
    // A late subscriber starting mid-stream.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut late = c.subscribe(0);
    let got = collect(&mut sub, 900).await;
    for t in tasks {
        t.await.unwrap();
    }
    let producers: Vec<_> = names.iter().map(|n| (*n, 150)).collect();
    check_log(&got, &producers);
    assert_eq!(collect(&mut late, 900).await, got, "a late subscriber gets the same log");
    assert!(tokio::time::timeout(Duration::from_millis(200), sub.next()).await.is_err(), "nothing more is delivered");
    for s in [&a, &b, &c] {
        assert_eq!(s.read_events(&EventQuery::default()).await.unwrap(), got, "every store reads the same log");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn live_names_are_unique_across_stores_on_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let stores: Vec<Arc<dyn Store>> = (0..3).map(|_| Arc::new(SqliteStore::open(&path).unwrap()) as _).collect();
    let mut tasks = Vec::new();
    for i in 0..30 {
        let store = stores[i % 3].clone();
        tasks.push(tokio::spawn(async move { store.create_agent(&Agent::new("builder", "m", "/w")).await }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => ok += 1,
            Err(StoreError::NameTaken { name }) => assert_eq!(name, "builder"),
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    assert_eq!(ok, 1, "exactly one live 'builder'");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_request_does_not_undo_the_others_coalesced_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path().join("orch.db")).unwrap());
    let mut tasks = Vec::new();
    for i in 0..50u64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let created = store.create_agent(&Agent::new("same", "m", "/w")).await;
            let appended = store.append(vec![tagged("t", i)]).await.unwrap();
            (created.is_ok(), appended[0].seq)
        }));
    }
    let mut created = 0;
    let mut seqs = BTreeSet::new();
    for t in tasks {
        let (c, s) = t.await.unwrap();
        created += usize::from(c);
        seqs.insert(s);
    }
    assert_eq!(created, 1);
    assert_eq!(seqs, (1..=50).collect::<BTreeSet<_>>(), "every append committed, no gap");
    assert_eq!(store.list_agents(&Default::default()).await.unwrap().len(), 1);
}

/// The name of the test below, which its child processes run (this test binary, filtered to it).
const CHILD_TEST: &str = "other_processes_appends_reach_a_subscriber_once_in_order";

/// Two child processes and this one append to one file; a subscriber here gets every event once, in order.
/// The children are this test binary running this same test with [`CHILD_ENV`] set: they append, then
/// print `CHILD OK <name>`, which the parent checks (so a child that ran nothing fails the test).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn other_processes_appends_reach_a_subscriber_once_in_order() {
    if let Ok(path) = std::env::var(CHILD_ENV) {
        let name = std::env::var("ORCH_SQLITE_TEST_CHILD_NAME").unwrap();
        let n: u64 = std::env::var("ORCH_SQLITE_TEST_CHILD_N").unwrap().parse().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
        produce(store, name.clone(), n).await;
        println!("CHILD OK {name}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let here: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
    let mut sub = here.subscribe(0);
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = ["p1", "p2"]
        .into_iter()
        .map(|name| {
            let child = std::process::Command::new(&exe)
                .args(["--exact", CHILD_TEST, "--test-threads=1", "--nocapture"])
                .env(CHILD_ENV, &path)
                .env("ORCH_SQLITE_TEST_CHILD_NAME", name)
                .env("ORCH_SQLITE_TEST_CHILD_N", "300")
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            (name, child)
        })
        .collect();
    let local = tokio::spawn(produce(here.clone(), "local".into(), 200));
    let got = collect(&mut sub, 800).await;
    local.await.unwrap();
    for (name, child) in children {
        let out = child.wait_with_output().unwrap();
        // Indented, so the child's own "test result:" line is not taken for one of this binary.
        let stdout = String::from_utf8_lossy(&out.stdout).replace('\n', "\n    ");
        assert!(out.status.success(), "child {name} failed: {}\n{stdout}", out.status);
        assert!(stdout.contains(&format!("CHILD OK {name}")), "child {name} did not run its part:\n{stdout}");
    }
    check_log(&got, &[("p1", 300), ("p2", 300), ("local", 200)]);
    assert!(tokio::time::timeout(Duration::from_millis(200), sub.next()).await.is_err(), "nothing more is delivered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_append_failing_midway_leaves_no_gap() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orch.db");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
    // Make some inserts fail after others of the same append have been written.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER boom BEFORE INSERT ON events WHEN NEW.payload LIKE '%boom%' \
             BEGIN SELECT RAISE(ABORT, 'boom'); END;",
        )
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..40u64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut batch = vec![tagged("t", i * 3), tagged("t", i * 3 + 1)];
            if i % 2 == 0 {
                batch.push(tagged("boom", i));
            }
            store.append(batch).await.map(|r| r.len())
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(n) => {
                assert_eq!(n, 2);
                ok += 1;
            }
            Err(e) => assert!(e.to_string().contains("boom"), "{e}"),
        }
    }
    assert_eq!(ok, 20);
    let all = store.read_events(&EventQuery::default()).await.unwrap();
    assert_eq!(all.iter().map(|r| r.seq).collect::<Vec<_>>(), (1..=40).collect::<Vec<_>>(), "no gap, nothing partial");
    assert_eq!(store.append(vec![tagged("t", 999)]).await.unwrap()[0].seq, 41);
}
