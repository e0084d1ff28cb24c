//! `GET /api/events?limit=100` under load (issue 14): CONNECTIONS (default 50) concurrent keep-alive
//! clients on loopback for SECONDS (default 5) against a server whose SQLite log holds EVENTS (default
//! 20,000) events: requests/s and latency p50/p99, oldest-first pages and newest-first pages, against a
//! same-run baseline of `GET /api/health` (the server's cheapest route) at the same concurrency.
//!
//! Run: `cargo bench -p orch-web --bench api_events` (env: CONNECTIONS, SECONDS, EVENTS).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::{Duration, Instant};

use orch_core::store::Store;
use orch_core::wire::{Event, EventKeys, LogLevel, NewEvent};
use orch_store_sqlite::SqliteStore;
use support::{env, percentile, serve};

/// Runs `connections` clients, each sending `GET url` back to back for `seconds`; every answer must be
/// 200. Returns (requests/s, latencies in ms).
async fn load(url: String, connections: usize, seconds: u64) -> (f64, Vec<f64>) {
    let client = reqwest::Client::builder().pool_max_idle_per_host(connections).build().unwrap();
    let until = Instant::now() + Duration::from_secs(seconds);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (client, url) = (client.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while Instant::now() < until {
                let t = Instant::now();
                let r = client.get(&url).send().await.unwrap();
                assert_eq!(r.status(), 200, "{url}");
                let body = r.bytes().await.unwrap();
                assert!(!body.is_empty());
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    (all.len() as f64 / start.elapsed().as_secs_f64(), all)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let connections = env("CONNECTIONS", 50) as usize;
    let seconds = env("SECONDS", 5);
    let events = env("EVENTS", 20_000);
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path());
    let store = SqliteStore::open(dir.path().join(".orch/orch.db")).unwrap();
    for batch in 0..events.div_ceil(1000) {
        let n = 1000.min(events - batch * 1000);
        let batch: Vec<NewEvent> = (0..n)
            .map(|i| {
                let event = Event::SystemLog {
                    level: LogLevel::Info,
                    message: format!("event {} of the benchmark, with some text to page through", batch * 1000 + i),
                    metadata: serde_json::json!({"i": i}),
                };
                NewEvent::new(EventKeys::default(), event)
            })
            .collect();
        store.append(batch).await.unwrap();
    }
    let base = format!("http://{}", server.1);
    println!(
        "orch serve, GET /api/events?limit=100: {connections} connections for {seconds} s each, {events} events in the SQLite log"
    );
    let mut rows = Vec::new();
    for (name, path) in [
        ("baseline GET /api/health", "/api/health"),
        ("GET /api/events?limit=100", "/api/events?limit=100"),
        ("GET /api/events?limit=100&order=desc", "/api/events?limit=100&order=desc"),
    ] {
        let (rps, mut lat) = load(format!("{base}{path}"), connections, seconds).await;
        let (p50, p99) = (percentile(&mut lat, 0.5), percentile(&mut lat, 0.99));
        rows.push((name, rps, p50, p99));
    }
    let baseline = rows[0].1;
    for (name, rps, p50, p99) in rows {
        println!(
            "  {name:<40} {rps:8.0} req/s ({:.2}x the baseline)  p50 {p50:6.1} ms  p99 {p99:6.1} ms",
            rps / baseline.max(1.0)
        );
    }
}
