//! Checks of the event log: appends, reads with filters and paging, subscriptions.

use super::*;

/// `seq` starts at 1, batches get consecutive seqs, seqs increase across batches, timestamps are set,
/// an empty append consumes nothing.
pub async fn append_seq_starts_at_one_and_is_gap_free(store: Arc<dyn Store>) {
    assert_eq!(store.last_seq().await.unwrap(), 0, "an empty log has last_seq 0");
    assert!(store.read_events(&EventQuery::default()).await.unwrap().is_empty());
    assert!(store.append(Vec::new()).await.unwrap().is_empty(), "empty append");
    assert_eq!(store.last_seq().await.unwrap(), 0, "an empty append consumes no seq");

    let before = crate::wire::now() - chrono::Duration::seconds(5);
    let one = append_texts(&store, 0..1).await;
    assert_eq!(seqs(&one), vec![1], "the first seq is 1");
    let batch = append_texts(&store, 1..4).await;
    assert_eq!(seqs(&batch), vec![2, 3, 4], "a batch gets consecutive seqs");
    assert!(store.append(Vec::new()).await.unwrap().is_empty());
    let more = append_texts(&store, 4..9).await;
    assert_eq!(seqs(&more), vec![5, 6, 7, 8, 9], "seqs continue across batches");
    let after = crate::wire::now() + chrono::Duration::seconds(5);
    assert_eq!(store.last_seq().await.unwrap(), 9);

    let all = store.read_events(&EventQuery::default()).await.unwrap();
    assert_eq!(seqs(&all), (1..=9).collect::<Vec<_>>());
    let appended: Vec<_> = one.into_iter().chain(batch).chain(more).collect();
    assert_eq!(all, appended, "read_events returns exactly what append returned");
    for (i, r) in all.iter().enumerate() {
        assert_eq!(r.event, Event::Text { text: format!("event {i}") }, "events keep their order");
        assert!(r.timestamp >= before && r.timestamp <= after, "timestamp {} is the append time", r.timestamp);
    }
}

/// Every event variant round-trips through the store byte-identically (serde JSON).
pub async fn every_event_variant_round_trips(store: Arc<dyn Store>) {
    let events = every_event();
    let keys = EventKeys {
        agent_id: Some(new_id()),
        orchestrator_id: Some(new_id()),
        workflow_id: Some(new_id()),
        step: Some("plan".into()),
        task_slug: Some("task-ü".into()),
    };
    // Half in one batch, half one by one.
    let (batch, singles) = events.split_at(events.len() / 2);
    let mut appended =
        store.append(batch.iter().map(|e| NewEvent::new(keys.clone(), e.clone())).collect()).await.unwrap();
    for e in singles {
        appended.extend(store.append(vec![NewEvent::new(EventKeys::default(), e.clone())]).await.unwrap());
    }
    let read = store.read_events(&EventQuery::default()).await.unwrap();
    assert_eq!(read.len(), events.len());
    assert_eq!(read, appended, "read_events returns exactly what append returned");
    for (r, e) in read.iter().zip(&events) {
        assert_eq!(&r.event, e, "{} round-trips", e.kind());
        assert_eq!(
            serde_json::to_string(&r.event).unwrap(),
            serde_json::to_string(e).unwrap(),
            "{} serializes byte-identically after the round trip",
            e.kind()
        );
        let by_type = store
            .read_events(&EventQuery { types: vec![e.kind().to_string()], ..EventQuery::default() })
            .await
            .unwrap();
        assert_eq!(seqs(&by_type), vec![r.seq], "type filter finds {}", e.kind());
    }
}

/// Event keys round-trip, whichever are set.
pub async fn event_keys_round_trip(store: Arc<dyn Store>) {
    let full = EventKeys {
        agent_id: Some(new_id()),
        orchestrator_id: Some(new_id()),
        workflow_id: Some(new_id()),
        step: Some("review — 2nd".into()),
        task_slug: Some("fix-login-🐛".into()),
    };
    let variants = vec![
        EventKeys::default(),
        full.clone(),
        EventKeys { agent_id: full.agent_id, ..EventKeys::default() },
        EventKeys { orchestrator_id: full.orchestrator_id, ..EventKeys::default() },
        EventKeys { workflow_id: full.workflow_id, step: full.step.clone(), ..EventKeys::default() },
        EventKeys { task_slug: full.task_slug.clone(), ..EventKeys::default() },
        EventKeys { step: Some(String::new()), task_slug: Some(String::new()), ..EventKeys::default() },
    ];
    let appended =
        store.append(variants.iter().enumerate().map(|(i, k)| text(i as u64, k.clone())).collect()).await.unwrap();
    let read = store.read_events(&EventQuery::default()).await.unwrap();
    assert_eq!(read, appended);
    for (r, k) in read.iter().zip(&variants) {
        assert_eq!(&r.keys, k, "keys round-trip");
    }
    let empty_step =
        store.read_events(&EventQuery { step: Some(String::new()), ..EventQuery::default() }).await.unwrap();
    assert_eq!(seqs(&empty_step), vec![7], "an empty step is a value, not absent");
}

fn keys_for(i: u64, agents: &[Id], orchs: &[Id], wfs: &[Id]) -> EventKeys {
    EventKeys {
        agent_id: if i % 4 == 3 { None } else { Some(agents[(i % 3) as usize]) },
        orchestrator_id: if i.is_multiple_of(5) { None } else { Some(orchs[(i % 2) as usize]) },
        workflow_id: if i.is_multiple_of(3) { Some(wfs[(i % 2) as usize]) } else { None },
        step: if i.is_multiple_of(3) { Some(["plan", "build"][(i % 2) as usize].into()) } else { None },
        task_slug: if i % 7 < 3 { Some(format!("t{}", i % 2)) } else { None },
    }
}

/// `read_events` filters: seq range, limit, agent, orchestrator, workflow, step, task slug, category,
/// type, and combinations.
pub async fn read_events_filters(store: Arc<dyn Store>) {
    let agents = [new_id(), new_id(), new_id()];
    let orchs = [new_id(), new_id()];
    let wfs = [new_id(), new_id()];
    let samples = every_event();
    let mut appended = Vec::new();
    let mut i = 0u64;
    while i < 90 {
        let n = 1 + (i % 4);
        let batch: Vec<_> = (i..i + n)
            .map(|j| NewEvent::new(keys_for(j, &agents, &orchs, &wfs), samples[j as usize % samples.len()].clone()))
            .collect();
        appended.extend(store.append(batch).await.unwrap());
        i += n;
    }
    let total = appended.len() as u64;
    assert_eq!(seqs(&appended), (1..=total).collect::<Vec<_>>());

    let expect = |pred: &dyn Fn(&EventRecord) -> bool| -> Vec<EventRecord> {
        appended.iter().filter(|r| pred(r)).cloned().collect()
    };
    let check = |q: EventQuery, want: Vec<EventRecord>, what: &'static str| {
        let store = store.clone();
        async move {
            let got = store.read_events(&q).await.unwrap();
            assert_eq!(seqs(&got), seqs(&want), "{what}: {q:?}");
            assert_eq!(got, want, "{what}: records equal");
        }
    };
    check(EventQuery::default(), appended.clone(), "everything").await;
    check(EventQuery::after(40), expect(&|r| r.seq > 40), "after_seq").await;
    check(EventQuery::after(total), vec![], "after the last").await;
    check(EventQuery::after(total + 100), vec![], "far after the last").await;
    check(EventQuery { until_seq: Some(10), ..EventQuery::default() }, expect(&|r| r.seq <= 10), "until_seq").await;
    check(
        EventQuery { after_seq: 10, until_seq: Some(20), ..EventQuery::default() },
        expect(&|r| r.seq > 10 && r.seq <= 20),
        "seq window",
    )
    .await;
    check(EventQuery { after_seq: 20, until_seq: Some(20), ..EventQuery::default() }, vec![], "empty window").await;
    check(EventQuery { limit: Some(7), ..EventQuery::default() }, appended[..7].to_vec(), "limit").await;
    check(EventQuery { limit: Some(0), ..EventQuery::default() }, vec![], "limit 0").await;
    check(
        EventQuery { after_seq: 5, limit: Some(3), ..EventQuery::default() },
        appended[5..8].to_vec(),
        "after_seq + limit",
    )
    .await;
    check(
        EventQuery { agent_id: Some(agents[1]), ..EventQuery::default() },
        expect(&|r| r.keys.agent_id == Some(agents[1])),
        "agent",
    )
    .await;
    check(
        EventQuery { orchestrator_id: Some(orchs[0]), ..EventQuery::default() },
        expect(&|r| r.keys.orchestrator_id == Some(orchs[0])),
        "orchestrator",
    )
    .await;
    check(
        EventQuery { workflow_id: Some(wfs[1]), ..EventQuery::default() },
        expect(&|r| r.keys.workflow_id == Some(wfs[1])),
        "workflow",
    )
    .await;
    check(
        EventQuery { step: Some("plan".into()), ..EventQuery::default() },
        expect(&|r| r.keys.step.as_deref() == Some("plan")),
        "step",
    )
    .await;
    check(
        EventQuery { task_slug: Some("t1".into()), ..EventQuery::default() },
        expect(&|r| r.keys.task_slug.as_deref() == Some("t1")),
        "task_slug",
    )
    .await;
    check(
        EventQuery { categories: vec![EventCategory::Hook], ..EventQuery::default() },
        expect(&|r| r.event.category() == EventCategory::Hook),
        "category",
    )
    .await;
    check(
        EventQuery { categories: vec![EventCategory::Agent, EventCategory::Chat], ..EventQuery::default() },
        expect(&|r| matches!(r.event.category(), EventCategory::Agent | EventCategory::Chat)),
        "categories",
    )
    .await;
    check(
        EventQuery { types: vec!["PreToolUse".into()], ..EventQuery::default() },
        expect(&|r| r.event.kind() == "PreToolUse"),
        "type",
    )
    .await;
    check(
        EventQuery { types: vec!["Text".into(), "ToolResult".into(), "NoSuchType".into()], ..EventQuery::default() },
        expect(&|r| matches!(r.event.kind(), "Text" | "ToolResult")),
        "types",
    )
    .await;
    check(EventQuery { types: vec!["NoSuchType".into()], ..EventQuery::default() }, vec![], "unknown type").await;
    check(EventQuery { agent_id: Some(new_id()), ..EventQuery::default() }, vec![], "unknown agent").await;
    check(
        EventQuery {
            after_seq: 3,
            until_seq: Some(80),
            agent_id: Some(agents[0]),
            orchestrator_id: Some(orchs[0]),
            categories: vec![EventCategory::Hook, EventCategory::Response, EventCategory::Agent],
            limit: Some(4),
            ..EventQuery::default()
        },
        expect(&|r| {
            r.seq > 3
                && r.seq <= 80
                && r.keys.agent_id == Some(agents[0])
                && r.keys.orchestrator_id == Some(orchs[0])
                && matches!(r.event.category(), EventCategory::Hook | EventCategory::Response | EventCategory::Agent)
        })
        .into_iter()
        .take(4)
        .collect(),
        "combination with limit",
    )
    .await;
    check(
        EventQuery {
            workflow_id: Some(wfs[0]),
            step: Some("plan".into()),
            task_slug: Some("t0".into()),
            ..EventQuery::default()
        },
        expect(&|r| {
            r.keys.workflow_id == Some(wfs[0])
                && r.keys.step.as_deref() == Some("plan")
                && r.keys.task_slug.as_deref() == Some("t0")
        }),
        "workflow + step + task",
    )
    .await;
}

/// Paging with `after_seq` = the last seq of the previous page returns every event exactly once.
pub async fn read_events_paging(store: Arc<dyn Store>) {
    let agents = [new_id(), new_id(), new_id()];
    let orchs = [new_id(), new_id()];
    let wfs = [new_id(), new_id()];
    let all = store.append((0..250).map(|i| text(i, keys_for(i, &agents, &orchs, &wfs))).collect()).await.unwrap();
    for (filter, page) in [(None, 7usize), (None, 1), (Some(agents[2]), 5), (Some(agents[0]), 1000)] {
        let mut got = Vec::new();
        let mut after = 0;
        let mut pages = 0;
        loop {
            let q = EventQuery { after_seq: after, agent_id: filter, limit: Some(page), ..EventQuery::default() };
            let p = store.read_events(&q).await.unwrap();
            assert!(p.len() <= page, "a page holds at most `limit` events");
            let Some(last) = p.last() else { break };
            after = last.seq;
            got.extend(p);
            pages += 1;
            assert!(pages <= 300, "paging does not terminate");
        }
        let want: Vec<_> = all.iter().filter(|r| filter.is_none() || r.keys.agent_id == filter).cloned().collect();
        assert_eq!(seqs(&got), seqs(&want), "paging by {page} (filter {filter:?}) returns every event once");
    }
}

/// 4 concurrent appenders × 250 events produce seqs 1..=1000 with no gap, each appender's events in its
/// own order.
pub async fn concurrent_appends_are_gap_free(store: Arc<dyn Store>) {
    let mut tasks = Vec::new();
    for t in 0..4u64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            let mut i = 0;
            while i < 250 {
                // Mix single appends and small batches.
                let n = if t % 2 == 0 { 1 } else { (i % 5 + 1).min(250 - i) };
                let batch: Vec<_> = (i..i + n).map(|j| text(t * 1000 + j, EventKeys::default())).collect();
                let recs = store.append(batch).await.unwrap();
                assert_eq!(recs.len() as u64, n);
                assert!(recs.windows(2).all(|w| w[1].seq == w[0].seq + 1), "a batch gets consecutive seqs");
                got.extend(recs.into_iter().map(|r| r.seq));
                i += n;
            }
            got
        }));
    }
    let mut returned = BTreeSet::new();
    for t in tasks {
        for s in t.await.expect("appender panicked") {
            assert!(returned.insert(s), "seq {s} returned twice");
        }
    }
    assert_eq!(returned, (1..=1000).collect::<BTreeSet<_>>(), "returned seqs are 1..=1000");
    assert_eq!(store.last_seq().await.unwrap(), 1000);
    let all = store.read_events(&EventQuery::default()).await.unwrap();
    assert_eq!(seqs(&all), (1..=1000).collect::<Vec<_>>(), "the log holds 1..=1000 with no gap");
    for t in 0..4u64 {
        let mine: Vec<u64> = all
            .iter()
            .filter_map(|r| match &r.event {
                Event::Text { text } => text.strip_prefix("event ").and_then(|n| n.parse::<u64>().ok()),
                _ => None,
            })
            .filter(|n| n / 1000 == t)
            .collect();
        assert_eq!(mine, (t * 1000..t * 1000 + 250).collect::<Vec<_>>(), "appender {t}'s events in order");
    }
}

/// `subscribe(since)` replays the stored events after `since`, then delivers live ones.
pub async fn subscribe_replays_then_live(store: Arc<dyn Store>) {
    let stored = append_texts(&store, 0..5).await;
    let mut from_start = store.subscribe(0);
    let mut from_two = store.subscribe(2);
    assert_eq!(collect_events(&mut from_start, 5, "replay from 0").await, stored, "replay from 0");
    assert_eq!(collect_events(&mut from_two, 3, "replay from 2").await, stored[2..].to_vec(), "replay from 2");
    // The subscribers are caught up and waiting (in tasks) when the live events are appended.
    let live_a = spawn_collect(from_start, 3, "live (from 0)");
    let live_b = spawn_collect(from_two, 3, "live (from 2)");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut live = append_texts(&store, 5..6).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    live.extend(append_texts(&store, 6..8).await);
    let (mut from_start, got_a) = live_a.await.expect("subscriber panicked");
    let (mut from_two, got_b) = live_b.await.expect("subscriber panicked");
    assert_eq!(got_a, live, "live events after the replay");
    assert_eq!(got_b, live, "live events after the replay");
    let single = append_texts(&store, 8..9).await;
    assert_eq!(next_event(&mut from_start, "live single").await, single[0]);
    assert_eq!(next_event(&mut from_two, "live single").await, single[0]);
    // A subscription that starts in the future sees only what comes after.
    let future = spawn_collect(store.subscribe(12), 2, "subscribe(12)");
    for i in 9..14 {
        append_texts(&store, i..i + 1).await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (_, got) = future.await.expect("subscriber panicked");
    assert_eq!(seqs(&got), vec![13, 14]);
}

/// `subscribe(last_seq)` yields only events appended afterwards.
pub async fn subscribe_from_last_yields_only_new(store: Arc<dyn Store>) {
    append_texts(&store, 0..10).await;
    let last = store.last_seq().await.unwrap();
    let mut sub = store.subscribe(last);
    let quiet = tokio::time::timeout(Duration::from_millis(300), sub.next()).await;
    assert!(quiet.is_err(), "subscribe(last) must not replay old events, got {quiet:?}");
    let new = append_texts(&store, 10..12).await;
    assert_eq!(collect_events(&mut sub, 2, "new events").await, new);
    let quiet = tokio::time::timeout(Duration::from_millis(200), sub.next()).await;
    assert!(quiet.is_err(), "no duplicate after the live events, got {quiet:?}");
    // A subscription on an empty-to-start log works too.
    let mut sub2 = store.subscribe(store.last_seq().await.unwrap());
    tokio::task::yield_now().await;
    let more = append_texts(&store, 12..13).await;
    assert_eq!(next_event(&mut sub2, "after idle").await, more[0]);
}

/// Subscribers starting while appenders run concurrently see every event after `since` exactly once,
/// in seq order.
pub async fn subscribe_with_concurrent_appenders(store: Arc<dyn Store>) {
    append_texts(&store, 0..10).await;
    let per_task = 60u64;
    let tasks = 4u64;
    let mut appenders = Vec::new();
    for t in 0..tasks {
        let store = store.clone();
        appenders.push(tokio::spawn(async move {
            let mut i = 0;
            while i < per_task {
                let n = if t == 0 { 3.min(per_task - i) } else { 1 };
                let batch: Vec<_> = (i..i + n).map(|j| text(t * 1000 + j, EventKeys::default())).collect();
                store.append(batch).await.unwrap();
                i += n;
                if i % 20 == 0 {
                    // Let the subscribers catch up and wait for the next append.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                } else if i % 5 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        }));
    }
    // Subscribers start while the appenders run (one before any await, others a little later).
    let total = 10 + per_task * tasks;
    let mut subscribers = Vec::new();
    for (k, since) in [4u64, 0, 10, 7].into_iter().enumerate() {
        let store = store.clone();
        subscribers.push(tokio::spawn(async move {
            if k > 0 {
                tokio::time::sleep(Duration::from_millis(k as u64 * 3)).await;
            }
            let mut sub = store.subscribe(since);
            let got = collect_events(&mut sub, (total - since) as usize, "concurrent subscriber").await;
            let quiet = tokio::time::timeout(Duration::from_millis(100), sub.next()).await;
            assert!(quiet.is_err(), "no event beyond the last appended, got {quiet:?}");
            (since, got)
        }));
    }
    for a in appenders {
        a.await.expect("appender panicked");
    }
    let all = store.read_events(&EventQuery::default()).await.unwrap();
    assert_eq!(seqs(&all), (1..=total).collect::<Vec<_>>());
    for s in subscribers {
        let (since, got) = s.await.expect("subscriber panicked");
        assert_eq!(seqs(&got), (since + 1..=total).collect::<Vec<_>>(), "subscribe({since}): no gap, no duplicate");
        assert_eq!(got, all[since as usize..].to_vec(), "subscribe({since}) delivers the stored records");
    }
}
