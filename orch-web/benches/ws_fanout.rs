//! `orch serve` under WebSocket load (issue 14): events appended to the server's SQLite file by this
//! process at RATE events/s (default 1,000) for SECONDS (default 5), fanned out to CLIENTS WebSocket
//! clients (default 100) on loopback; the delivery latency (append committed → frame received) at
//! p50/p99, against a same-run baseline of one client; and the server's RSS idle and with IDLE_CLIENTS
//! (default 1,000) connected clients.
//!
//! Run: `cargo bench -p orch-web --bench ws_fanout` (env: RATE, SECONDS, CLIENTS, IDLE_CLIENTS).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use orch_core::store::Store;
use orch_core::wire::{Event, EventKeys, LogLevel, NewEvent};
use orch_store_sqlite::SqliteStore;
use serde_json::Value;
use support::{env, percentile, rss_mb, serve};
use tokio_tungstenite::tungstenite::Message;

/// Appends RATE events/s for SECONDS while `clients` clients read; each event carries its append time
/// (µs since `t0`). Returns every client's latencies in ms.
async fn run(addr: &str, store: Arc<SqliteStore>, clients: usize, rate: u64, seconds: u64) -> Vec<f64> {
    let t0 = Instant::now();
    let first = store.last_seq().await.unwrap() + 1;
    let total = rate * seconds;
    let last = first + total - 1;
    let mut readers = Vec::new();
    for _ in 0..clients {
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws")).await.unwrap();
        readers.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while let Some(Ok(msg)) = ws.next().await {
                let Message::Text(t) = msg else { continue };
                let v: Value = serde_json::from_str(&t).unwrap();
                if v.get("frame").is_some() {
                    continue;
                }
                if let Some(at) = v["metadata"]["at_us"].as_u64() {
                    lat.push((t0.elapsed().as_micros() as f64 - at as f64) / 1000.0);
                }
                if v["seq"].as_u64().unwrap_or(0) >= last {
                    break;
                }
            }
            lat
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Batches every 10 ms (RATE/100 events each), paced to the wall clock.
    let per_tick = (rate / 100).max(1);
    let start = Instant::now();
    let mut sent = 0;
    while sent < total {
        let n = per_tick.min(total - sent);
        let at = t0.elapsed().as_micros() as u64;
        let events = (0..n)
            .map(|i| {
                let event = Event::SystemLog {
                    level: LogLevel::Info,
                    message: format!("fan-out {}", sent + i),
                    metadata: serde_json::json!({"at_us": at}),
                };
                NewEvent::new(EventKeys::default(), event)
            })
            .collect();
        store.append(events).await.unwrap();
        sent += n;
        let due = start + Duration::from_millis(10 * sent / per_tick);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            tokio::time::sleep(wait).await;
        }
    }
    let mut all = Vec::new();
    for r in readers {
        let lat = tokio::time::timeout(Duration::from_secs(120), r).await.expect("delivered").unwrap();
        assert_eq!(lat.len() as u64, total, "every event reached every client");
        all.extend(lat);
    }
    all
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rate = env("RATE", 1000);
    let seconds = env("SECONDS", 5);
    let clients = env("CLIENTS", 100) as usize;
    let idle_clients = env("IDLE_CLIENTS", 1000) as usize;
    println!("orch serve, WebSocket fan-out: {rate} events/s for {seconds} s, SQLite file, loopback");
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path());
    let pid = server.0.id();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = rss_mb(pid);
    let store = Arc::new(SqliteStore::open(dir.path().join(".orch/orch.db")).unwrap());

    let mut one = run(&server.1, store.clone(), 1, rate, seconds).await;
    let mut many = run(&server.1, store.clone(), clients, rate, seconds).await;
    let (b50, b99) = (percentile(&mut one, 0.5), percentile(&mut one, 0.99));
    let (m50, m99) = (percentile(&mut many, 0.5), percentile(&mut many, 0.99));
    println!("  baseline, 1 client:   p50 {b50:7.1} ms  p99 {b99:7.1} ms");
    println!(
        "  {clients} clients:         p50 {m50:7.1} ms  p99 {m99:7.1} ms  (goal p99 < 50 ms); p99 ratio {:.2}x",
        m99 / b99.max(0.001)
    );

    let mut held = Vec::new();
    for _ in 0..idle_clients {
        match tokio_tungstenite::connect_async(format!("ws://{}/ws", server.1)).await {
            Ok((ws, _)) => held.push(ws),
            Err(e) => {
                println!("  stopped connecting at {} clients: {e}", held.len());
                break;
            }
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let loaded = rss_mb(pid);
    println!(
        "  server RSS: idle {idle:.1} MB (goal < 30 MB); with {} connected clients {loaded:.1} MB (goal < 100 MB)",
        held.len()
    );
}
