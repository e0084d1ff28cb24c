//! `/ws` under load: 10,000 events appended by another process while clients replay from seq 0 and
//! 200 clients follow live; each receives every event once, in order, and a client that never reads
//! does not hold the others back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use futures::StreamExt;
use orch_core::store::Store;
use orch_core::wire::{Event, EventKeys, LogLevel, NewEvent};
use orch_store_sqlite::SqliteStore;
use serde_json::Value;
use support::server::{self, Ws};
use tokio_tungstenite::tungstenite::Message;

const EVENTS: u64 = 10_000;
const LIVE_CLIENTS: usize = 200;

/// Reads orch's event frames until seq `last`; returns their seqs. Panics when no frame comes for 60 s
/// (a stalled stream), not on the total time: 206 clients of 10,000 events on a loaded 2-core machine
/// may take long, and that is not what this test is about.
async fn collect(mut ws: Ws, last: u64) -> Vec<u64> {
    let mut seqs = Vec::new();
    loop {
        let next = tokio::time::timeout(Duration::from_secs(60), ws.next()).await;
        let msg = next.unwrap_or_else(|_| panic!("no frame for 60 s after seq {:?}", seqs.last()));
        let Some(msg) = msg else { panic!("the stream ended after seq {:?}", seqs.last()) };
        if let Message::Text(t) = msg.unwrap() {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v.get("frame").is_none() {
                let seq = v["seq"].as_u64().unwrap();
                seqs.push(seq);
                if seq >= last {
                    return seqs;
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_client_gets_every_event_once_in_order_while_another_process_appends() {
    let dir = tempfile::tempdir().unwrap();
    let server =
        server::start(dir.path(), &format!("scripted:{}", support::script("orchestrator.json").display()), &[], &[]);
    let url = format!("{}/ws", server.base.replacen("http://", "ws://", 1));
    // The server made the store; this process appends to the same file.
    let store = SqliteStore::open(dir.path().join(".orch/orch.db")).unwrap();
    let base = store.last_seq().await.unwrap();
    let last = base + EVENTS;

    // Live clients, connected before the appends start; one more that never reads.
    let mut live = Vec::new();
    for _ in 0..LIVE_CLIENTS {
        let (ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
        live.push(tokio::spawn(collect(ws, last)));
    }
    let (stuck, _) = tokio_tungstenite::connect_async(&url).await.unwrap();

    let appender = tokio::spawn(async move {
        for batch in 0..100u64 {
            let events = (0..EVENTS / 100)
                .map(|i| {
                    let event = Event::SystemLog {
                        level: LogLevel::Info,
                        message: format!("load {} {}", batch, "x".repeat(200 + (i as usize % 7) * 50)),
                        metadata: Value::Null,
                    };
                    NewEvent::new(EventKeys::default(), event)
                })
                .collect();
            store.append(events).await.unwrap();
            if batch % 10 == 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    });
    // Clients replaying from the start while the appends go on.
    let mut replays = Vec::new();
    for i in 0..5u64 {
        tokio::time::sleep(Duration::from_millis(30 * i)).await;
        let (ws, _) = tokio_tungstenite::connect_async(format!("{url}?since=0")).await.unwrap();
        replays.push(tokio::spawn(collect(ws, last)));
    }
    appender.await.unwrap();

    let all: Vec<u64> = (1..=last).collect();
    for r in replays {
        assert_eq!(r.await.unwrap(), all, "a replay from 0 has every event once, in order");
    }
    let expected: Vec<u64> = (base + 1..=last).collect();
    for (i, c) in live.into_iter().enumerate() {
        let seqs = c.await.unwrap();
        assert_eq!(seqs.len(), expected.len(), "live client {i}");
        assert_eq!(seqs, expected, "live client {i} has every event once, in order");
    }
    // The client that never reads is cut off (its socket is still open on this side), and the server
    // did not keep the backlog it never took.
    let health = url.replacen("ws://", "http://", 1).replace("/ws", "/api/health");
    let start = std::time::Instant::now();
    loop {
        let h: Value = reqwest::get(&health).await.unwrap().json().await.unwrap();
        if h["websocket_connections"] == 0 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(120), "the client that never reads was not cut off: {h}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).unwrap_or_default();
    let rss_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    assert!(rss_kb < 200 * 1024, "the server holds {rss_kb} kB after serving 206 clients 10,000 events");
    drop(stuck);
}
