//! Several real processes sharing one PostgreSQL schema: concurrent appenders and a follower, a migration
//! race, a follower whose connections are killed server-side.
//!
//! Child processes are this test binary running the same test again (`--exact NAME`) with
//! `ORCH_PG_TEST_CHILD` naming their part; each prints `CHILD OK` when done, which the parent checks.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use support::sqlx;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use orch_core::store::{EventQuery, EventStream, Store};
use orch_core::wire::{Event, EventKeys, EventRecord, NewEvent};
use orch_store_postgres::{PgOptions, PgStore, SCHEMA_VERSION};

const CHILD_ENV: &str = "ORCH_PG_TEST_CHILD";

fn tagged(producer: &str, i: u64) -> NewEvent {
    NewEvent::new(EventKeys::default(), Event::Text { text: format!("{producer}:{i}") })
}

/// Appends `n` events tagged `producer:i`: mostly batches of 100, every tenth hundred one by one.
async fn produce(store: &dyn Store, producer: &str, n: u64) {
    let mut i = 0;
    while i < n {
        if (i / 100) % 10 == 9 {
            let end = (i + 100).min(n);
            while i < end {
                store.append(vec![tagged(producer, i)]).await.unwrap();
                i += 1;
            }
        } else {
            let k = 100.min(n - i);
            let recs = store.append((i..i + k).map(|j| tagged(producer, j)).collect()).await.unwrap();
            assert!(recs.windows(2).all(|w| w[1].seq == w[0].seq + 1), "a batch gets consecutive seqs");
            i += k;
        }
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

/// `got` holds seqs 1..=total once each, in order, and every producer's events in its own order.
fn check_log(got: &[EventRecord], producers: &[(String, u64)]) {
    let total: u64 = producers.iter().map(|p| p.1).sum();
    let seqs: Vec<u64> = got.iter().map(|r| r.seq).collect();
    assert!(seqs == (1..=total).collect::<Vec<_>>(), "seqs are 1..={total}, once each, in order");
    let mut per: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for r in got {
        let Event::Text { text } = &r.event else { panic!("unexpected event {r:?}") };
        let (p, i) = text.split_once(':').unwrap();
        per.entry(p.to_string()).or_default().push(i.parse().unwrap());
    }
    for (p, n) in producers {
        assert!(
            per.get(p).cloned().unwrap_or_default() == (0..*n).collect::<Vec<_>>(),
            "{p}'s {n} events, each once, in its order"
        );
    }
}

/// The test whose children play `role`.
fn test_of(role: &str) -> &'static str {
    match role {
        "append" => "four_processes_append_while_a_fifth_follows",
        "start" => "ten_processes_starting_at_once_migrate_once",
        other => panic!("unknown child role {other}"),
    }
}

fn spawn_child(role: &str, envs: &[(&str, String)]) -> Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", test_of(role), "--include-ignored", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, role)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

fn wait_child(child: Child, what: &str) -> String {
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    // Indented, so the child's own "test result:" line is not taken for one of this binary.
    let shown = stdout.replace('\n', "\n    ");
    assert!(out.status.success(), "{what} failed: {}\n{shown}", out.status);
    assert!(stdout.contains("CHILD OK"), "{what} did not run its part (filtered out?):\n{shown}");
    stdout
}

fn env(key: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| panic!("{key} is not set"))
}

/// The part of a child process playing `role` (see [`test_of`]).
async fn child_part(role: &str) {
    let url = env("ORCH_PG_TEST_URL");
    let schema = env("ORCH_PG_TEST_SCHEMA");
    let options = || PgOptions { schema: Some(schema.clone()), pool_size: Some(4) };
    match role {
        "append" => {
            let name = env("ORCH_PG_TEST_NAME");
            let n: u64 = env("ORCH_PG_TEST_N").parse().unwrap();
            let store = PgStore::connect_with(&url, options()).await.unwrap();
            produce(&store, &name, n).await;
        }
        "start" => {
            // Start at the same instant as the nine others, then connect (and maybe migrate).
            let start_ms: u128 = env("ORCH_PG_TEST_START_MS").parse().unwrap();
            let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis();
            if start_ms > now_ms {
                tokio::time::sleep(Duration::from_millis((start_ms - now_ms) as u64)).await;
            }
            let name = env("ORCH_PG_TEST_NAME");
            let store = PgStore::connect_with(&url, options()).await.unwrap();
            let batch = store.append((0..5).map(|i| tagged(&name, i)).collect()).await.unwrap();
            assert_eq!(batch.len(), 5);
            for i in 5..10 {
                store.append(vec![tagged(&name, i)]).await.unwrap();
            }
            let mine: Vec<String> = store
                .read_events(&EventQuery::default())
                .await
                .unwrap()
                .into_iter()
                .filter_map(|r| match r.event {
                    Event::Text { text } if text.starts_with(&format!("{name}:")) => Some(text),
                    _ => None,
                })
                .collect();
            assert_eq!(mine, (0..10).map(|i| format!("{name}:{i}")).collect::<Vec<_>>());
        }
        other => panic!("unknown child role {other}"),
    }
    println!("CHILD OK");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL on 127.0.0.1:5432 (or ORCH_TEST_PG_URL); scripts/test.sh runs it with --ignored"]
async fn four_processes_append_while_a_fifth_follows() {
    if let Ok(role) = std::env::var(CHILD_ENV) {
        return child_part(&role).await;
    }
    let url = support::server();
    let (store, _guard) = support::fresh_store(&url).await;
    let mut sub = store.subscribe(0);
    let started = Instant::now();
    let names: Vec<String> = (1..=4).map(|i| format!("p{i}")).collect();
    let children: Vec<Child> = names
        .iter()
        .map(|name| {
            spawn_child(
                "append",
                &[
                    ("ORCH_PG_TEST_URL", url.clone()),
                    ("ORCH_PG_TEST_SCHEMA", store.schema().to_string()),
                    ("ORCH_PG_TEST_NAME", name.clone()),
                    ("ORCH_PG_TEST_N", "10000".into()),
                ],
            )
        })
        .collect();
    let follower = tokio::spawn(async move {
        let got = collect(&mut sub, 40_000).await;
        (sub, got)
    });
    for (c, name) in children.into_iter().zip(&names) {
        tokio::task::spawn_blocking({
            let name = name.clone();
            move || wait_child(c, &format!("appender {name}"))
        })
        .await
        .unwrap();
    }
    let (mut sub, got) = follower.await.unwrap();
    eprintln!("40,000 events from 4 processes followed in {:?}", started.elapsed());
    check_log(&got, &names.iter().map(|n| (n.clone(), 10_000)).collect::<Vec<_>>());
    assert!(tokio::time::timeout(Duration::from_millis(300), sub.next()).await.is_err(), "nothing more is delivered");
    assert_eq!(store.last_seq().await.unwrap(), 40_000);
    let stored = store.read_events(&EventQuery::default()).await.unwrap();
    assert!(stored == got, "the follower saw exactly the stored log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL on 127.0.0.1:5432 (or ORCH_TEST_PG_URL); scripts/test.sh runs it with --ignored"]
async fn ten_processes_starting_at_once_migrate_once() {
    if let Ok(role) = std::env::var(CHILD_ENV) {
        return child_part(&role).await;
    }
    let url = support::server();
    let schema = support::fresh_schema();
    let _guard = support::SchemaGuard::new(&url, &schema);
    let start_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() + 1500;
    let children: Vec<Child> = (0..10)
        .map(|i| {
            spawn_child(
                "start",
                &[
                    ("ORCH_PG_TEST_URL", url.clone()),
                    ("ORCH_PG_TEST_SCHEMA", schema.clone()),
                    ("ORCH_PG_TEST_NAME", format!("s{i}")),
                    ("ORCH_PG_TEST_START_MS", start_ms.to_string()),
                ],
            )
        })
        .collect();
    for (i, c) in children.into_iter().enumerate() {
        tokio::task::spawn_blocking(move || wait_child(c, &format!("starter {i}"))).await.unwrap();
    }
    let mut admin = support::admin(&url).await;
    let rows: Vec<(i64, String)> =
        sqlx::query_as(&format!("SELECT version, applied_by FROM \"{schema}\".orch_schema_version ORDER BY version"))
            .fetch_all(&mut admin)
            .await
            .unwrap();
    eprintln!("migrations applied: {rows:?}");
    assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), (1..=SCHEMA_VERSION).collect::<Vec<_>>(), "each once");
    let store =
        PgStore::connect_with(&url, PgOptions { schema: Some(schema.clone()), pool_size: Some(2) }).await.unwrap();
    let all = store.read_events(&EventQuery::default()).await.unwrap();
    assert_eq!(all.iter().map(|r| r.seq).collect::<Vec<_>>(), (1..=100).collect::<Vec<_>>(), "no gap");
    check_log(&all, &(0..10).map(|i| (format!("s{i}"), 10)).collect::<Vec<_>>());
}

/// The backend pids of connections whose application_name matches `pattern` (SQL LIKE).
async fn backends(admin: &mut sqlx::PgConnection, pattern: &str) -> Vec<i32> {
    sqlx::query_scalar("SELECT pid FROM pg_stat_activity WHERE application_name LIKE $1 ORDER BY pid")
        .bind(pattern)
        .fetch_all(admin)
        .await
        .unwrap()
}

async fn wait_for_backends(admin: &mut sqlx::PgConnection, pattern: &str, not: &[i32]) -> Vec<i32> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let pids: Vec<i32> = backends(admin, pattern).await.into_iter().filter(|p| !not.contains(p)).collect();
        if !pids.is_empty() {
            return pids;
        }
        assert!(Instant::now() < deadline, "no connection named like '{pattern}' appeared within 15 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn terminate(admin: &mut sqlx::PgConnection, pattern: &str) -> usize {
    let killed: Vec<bool> =
        sqlx::query_scalar("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE $1")
            .bind(pattern)
            .fetch_all(admin)
            .await
            .unwrap();
    killed.into_iter().filter(|k| *k).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL on 127.0.0.1:5432 (or ORCH_TEST_PG_URL); scripts/test.sh runs it with --ignored"]
async fn a_follower_whose_connections_are_killed_reconnects_and_misses_nothing() {
    let url = support::server();
    let schema = support::fresh_schema();
    let _guard = support::SchemaGuard::new(&url, &schema);
    let app = format!("orch_t_follow_{}", orch_core::wire::new_id().simple());
    let options = |pool| PgOptions { schema: Some(schema.clone()), pool_size: Some(pool) };
    let follower = Arc::new(
        PgStore::connect_with(&support::with_param(&url, &format!("application_name={app}")), options(3))
            .await
            .unwrap(),
    );
    // The writer is another store (its own pool and connections), as another process would be.
    let writer = PgStore::connect_with(&url, options(2)).await.unwrap();
    let mut admin = support::admin(&url).await;

    let sub = follower.subscribe(0);
    let total = 500usize;
    let collector = tokio::spawn(async move {
        let mut sub = sub;
        let got = collect(&mut sub, total).await;
        (sub, got)
    });
    produce(&writer, "a", 100).await;
    let listener_pattern = format!("{app} listener");
    let first = wait_for_backends(&mut admin, &listener_pattern, &[]).await;

    // 1. Kill the listening connection, append while it is down, and wait for it to come back.
    assert_eq!(terminate(&mut admin, &listener_pattern).await, 1, "the listener's backend was terminated");
    produce(&writer, "b", 100).await;
    let second = wait_for_backends(&mut admin, &listener_pattern, &first).await;
    eprintln!("listener reconnected: backend {first:?} -> {second:?}");
    produce(&writer, "c", 100).await;

    // 2. Kill every connection of the follower (pool and listener) and append again.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let killed = terminate(&mut admin, &format!("{app}%")).await;
    assert!(killed >= 2, "pool and listener connections were terminated ({killed})");
    produce(&writer, "d", 100).await;
    let third = wait_for_backends(&mut admin, &listener_pattern, &second).await;
    eprintln!("listener reconnected again: backend {second:?} -> {third:?}");

    // 3. More events after the second reconnection.
    produce(&writer, "e", 100).await;
    let (mut sub, got) = collector.await.unwrap();
    check_log(&got, &["a", "b", "c", "d", "e"].map(|p| (p.to_string(), 100)));
    assert!(tokio::time::timeout(Duration::from_millis(300), sub.next()).await.is_err(), "nothing more is delivered");

    // The follower's own pool recovered too: reads and appends work.
    assert_eq!(follower.read_events(&EventQuery::after(499)).await.unwrap().len(), 1);
    assert_eq!(follower.append(vec![tagged("f", 0)]).await.unwrap()[0].seq, 501);
}
