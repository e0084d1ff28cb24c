//! Checks of agent steps and upkeep: atomic step commits, conversations, status counts, pruning.

use super::*;

/// `commit_step` stores status, usage, state, messages and events together; on failure nothing.
pub async fn commit_step_is_atomic(store: Arc<dyn Store>) {
    let mut a = agent("stepper", None, 1);
    a.usage = Usage::default();
    a.total_cost_usd = 0.0;
    store.create_agent(&a).await.unwrap();
    append_texts(&store, 0..2).await;
    let keys = EventKeys { agent_id: Some(a.id), ..EventKeys::default() };
    let usage = Usage { input_tokens: 5, output_tokens: 6, cache_read_input_tokens: 7, cache_creation_input_tokens: 8 };
    let state = serde_json::json!({"turn": 1, "pending": []});
    let messages = vec![
        Message::user_text("hello"),
        Message {
            role: Role::Assistant,
            content: vec![
                ContentBlock::Thinking { thinking: "hm".into(), signature: Some("sig".into()) },
                ContentBlock::ToolUse {
                    id: "toolu_1".into(),
                    name: "Read".into(),
                    input: serde_json::json!({"file_path": "a.rs"}),
                },
            ],
        },
    ];
    let recs = store
        .commit_step(StepCommit {
            agent_id: a.id,
            status: Some(AgentStatus::Executing),
            usage: Some((usage, 0.125)),
            state: Some(SavedState { state: Some(state.clone()), session_id: Some("s-1".into()) }),
            context: Some((150_000, Some(200_000))),
            messages: messages.clone(),
            changes: Vec::new(),
            events: vec![text(100, keys.clone()), text(101, keys.clone())],
        })
        .await
        .unwrap();
    assert_eq!(seqs(&recs), vec![3, 4], "commit_step events get the next seqs");
    let got = store.get_agent(a.id).await.unwrap().unwrap();
    assert_eq!(got.status, AgentStatus::Executing);
    assert_eq!((got.context_used, got.context_window), (150_000, Some(200_000)), "the context is recorded");
    assert_eq!(got.usage, usage);
    assert!((got.total_cost_usd - 0.125).abs() < 1e-12);
    assert_eq!(store.load_executor_state(a.id).await.unwrap(), Some(state));
    assert_eq!(got.session_id.as_deref(), Some("s-1"));
    assert_eq!(store.load_conversation(a.id).await.unwrap(), messages);
    assert_eq!(store.read_events(&EventQuery::after(2)).await.unwrap(), recs);

    // A step that changes nothing but appends events.
    let recs2 = store
        .commit_step(StepCommit { agent_id: a.id, events: vec![text(102, keys)], ..StepCommit::default() })
        .await
        .unwrap();
    assert_eq!(seqs(&recs2), vec![5]);
    let unchanged = store.get_agent(a.id).await.unwrap().unwrap();
    assert_eq!(unchanged.status, AgentStatus::Executing, "status untouched when None");
    assert_eq!(unchanged.usage, usage, "usage untouched when None");
    assert_eq!(unchanged.session_id.as_deref(), Some("s-1"), "state untouched when None");

    // A step for an unknown agent stores nothing.
    let failed = store
        .commit_step(StepCommit {
            agent_id: new_id(),
            status: Some(AgentStatus::Blocked),
            messages: vec![Message::user_text("lost")],
            events: vec![text(200, EventKeys::default())],
            ..StepCommit::default()
        })
        .await;
    assert!(matches!(failed, Err(StoreError::NotFound { .. })), "unknown agent: {failed:?}");
    assert_eq!(store.last_seq().await.unwrap(), 5, "a failed step appends no event");
    let next = append_texts(&store, 300..301).await;
    assert_eq!(seqs(&next), vec![6], "a failed step leaves no gap in seqs");
}

/// Conversations are per agent, appended in order, and can be cleared.
pub async fn conversation_load_and_clear(store: Arc<dyn Store>) {
    let a = agent("a", None, 1);
    let b = agent("b", None, 2);
    store.create_agent(&a).await.unwrap();
    store.create_agent(&b).await.unwrap();
    assert!(store.load_conversation(a.id).await.unwrap().is_empty());
    let mut want = Vec::new();
    for i in 0..3 {
        let m = vec![
            Message::user_text(format!("q{i}")),
            Message {
                role: Role::User,
                content: vec![ContentBlock::ToolResult {
                    tool_use_id: format!("t{i}"),
                    content: "ok".into(),
                    is_error: i == 1,
                }],
            },
        ];
        store.commit_step(StepCommit { agent_id: a.id, messages: m.clone(), ..StepCommit::default() }).await.unwrap();
        want.extend(m);
        store
            .commit_step(StepCommit {
                agent_id: b.id,
                messages: vec![Message::user_text("b")],
                ..StepCommit::default()
            })
            .await
            .unwrap();
    }
    assert_eq!(store.load_conversation(a.id).await.unwrap(), want, "messages in order, only this agent's");
    assert_eq!(store.load_conversation(b.id).await.unwrap().len(), 3);
    store.clear_conversation(a.id).await.unwrap();
    assert!(store.load_conversation(a.id).await.unwrap().is_empty(), "cleared");
    assert_eq!(store.load_conversation(b.id).await.unwrap().len(), 3, "other agents keep theirs");
    store
        .commit_step(StepCommit {
            agent_id: a.id,
            messages: vec![Message::user_text("fresh")],
            ..StepCommit::default()
        })
        .await
        .unwrap();
    assert_eq!(store.load_conversation(a.id).await.unwrap(), vec![Message::user_text("fresh")]);
    assert_eq!(store.last_seq().await.unwrap(), 0, "steps without events append nothing");
}

/// `status` reports the events and the last seq.
pub async fn status_counts_events(store: Arc<dyn Store>) {
    let st = store.status().await.unwrap();
    assert_eq!((st.events, st.last_seq), (0, 0), "an empty store");
    assert!(!st.backend.is_empty());
    store.append((1..=5).map(|i| text(i, EventKeys::default())).collect()).await.unwrap();
    let st = store.status().await.unwrap();
    assert_eq!((st.events, st.last_seq), (5, 5));
}

/// Pruning removes only events of archived agents appended before the date; seqs are never reused and
/// readers and followers skip the hole.
pub async fn prune_removes_only_old_events_of_archived_agents(store: Arc<dyn Store>) {
    let gone = agent("gone", None, 1);
    let live = agent("live", None, 2);
    store.create_agent(&gone).await.unwrap();
    store.create_agent(&live).await.unwrap();
    let keys = |id| EventKeys { agent_id: Some(id), ..EventKeys::default() };
    store.append((0..3).map(|i| text(i, keys(gone.id))).collect()).await.unwrap();
    store.append((0..2).map(|i| text(i, keys(live.id))).collect()).await.unwrap();
    store.append(vec![text(9, EventKeys::default())]).await.unwrap();
    store.archive_agent(gone.id).await.unwrap();

    let long_ago = crate::wire::now() - chrono::Duration::days(365);
    assert_eq!(store.prune_events(long_ago).await.unwrap(), 0, "nothing is that old");
    let later = crate::wire::now() + chrono::Duration::seconds(5);
    assert_eq!(store.prune_events(later).await.unwrap(), 3, "the archived agent's events");
    let left = store.read_events(&EventQuery::default()).await.unwrap();
    assert_eq!(left.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![4, 5, 6], "live and agent-less events stay");
    assert_eq!(store.last_seq().await.unwrap(), 6);
    let after = store.append(vec![text(10, EventKeys::default())]).await.unwrap();
    assert_eq!(after[0].seq, 7, "seqs are not reused after pruning");
    let st = store.status().await.unwrap();
    assert_eq!((st.events, st.last_seq), (4, 7));
    // A follower from the start skips the hole.
    let mut sub = store.subscribe(0);
    let mut seen = Vec::new();
    for _ in 0..4 {
        let r = tokio::time::timeout(std::time::Duration::from_secs(10), sub.next()).await.unwrap().unwrap().unwrap();
        seen.push(r.seq);
    }
    assert_eq!(seen, vec![4, 5, 6, 7]);
    assert_eq!(store.prune_events(later).await.unwrap(), 0, "pruning again removes nothing");
}

/// `ReleaseRun`: a run's end step releases the agent's claim with it, only if that run still holds it;
/// another run's claim, a claim released already and a missing agent are left as they are, with no
/// error. Ends of several agents at once (one group of the store's writer) release each its own.
pub async fn run_end_releases_only_its_own_claim(store: Arc<dyn Store>) {
    use crate::store::{Batch, Change};
    let lease = |pid: u32| crate::wire::RunLease {
        run_id: new_id(),
        task_slug: None,
        pid,
        process_start: Some(7),
        host: "host-a".into(),
        started_at: ts(1),
        expires_at: ts(31),
    };
    let claim = |id: Id, l: &crate::wire::RunLease| {
        Batch::new().change(Change::SwapRun { agent_id: id, expect: None, lease: Some(l.clone()) })
    };
    let end = |id: Id, run_id: Id, text: &str| {
        let step = StepCommit {
            agent_id: id,
            status: Some(AgentStatus::Idle),
            usage: Some((crate::wire::Usage { input_tokens: 10, output_tokens: 5, ..Default::default() }, 0.5)),
            messages: vec![Message::user_text(text)],
            changes: vec![Change::ReleaseRun { agent_id: id, run_id }],
            ..StepCommit::default()
        };
        Batch::from(step)
    };
    let a = agent("ender", None, 1);
    store.create_agent(&a).await.unwrap();
    let cost_before = a.total_cost_usd;
    let mine = lease(4001);
    store.commit(claim(a.id, &mine)).await.unwrap();

    // Another run's end releases nothing, and its step is still recorded.
    store.commit(end(a.id, new_id(), "not the holder")).await.unwrap();
    let got = store.get_agent(a.id).await.unwrap().unwrap();
    assert_eq!(got.run.as_ref(), Some(&mine), "another run's end keeps the holder's claim");
    assert_eq!(got.status, AgentStatus::Idle, "the step is recorded all the same");

    // The holder's end: step and release in one commit.
    store.commit(end(a.id, mine.run_id, "done")).await.unwrap();
    let got = store.get_agent(a.id).await.unwrap().unwrap();
    assert_eq!(got.run, None, "the holder's end released the claim");
    assert!((got.total_cost_usd - cost_before - 1.0).abs() < 1e-9, "both steps' usage is counted");
    assert_eq!(store.load_conversation(a.id).await.unwrap().len(), 2, "both steps' messages are stored");

    // Released again, or the release of a missing agent alone: nothing happens, no error.
    store.commit(Batch::new().change(Change::ReleaseRun { agent_id: a.id, run_id: mine.run_id })).await.unwrap();
    let missing = Batch::new().change(Change::ReleaseRun { agent_id: new_id(), run_id: new_id() });
    store.commit(missing).await.unwrap();
    let next = lease(4002);
    store.commit(claim(a.id, &next)).await.unwrap();
    store.commit(Batch::new().change(Change::ReleaseRun { agent_id: a.id, run_id: mine.run_id })).await.unwrap();
    assert_eq!(store.get_agent(a.id).await.unwrap().unwrap().run.as_ref(), Some(&next), "a late release is no release");

    // A release in a batch that fails is undone with it.
    let other = agent("other", None, 2);
    store.create_agent(&other).await.unwrap();
    let failing = Batch::new()
        .change(Change::ReleaseRun { agent_id: a.id, run_id: next.run_id })
        .change(Change::SwapRun { agent_id: other.id, expect: Some(new_id()), lease: None });
    assert!(store.commit(failing).await.is_err(), "a swap expecting a run that does not hold the agent fails");
    assert_eq!(store.get_agent(a.id).await.unwrap().unwrap().run.as_ref(), Some(&next), "the release was undone");

    // Several ends at once: each releases its own claim; the one naming another run releases nothing.
    let mut agents = Vec::new();
    for i in 0..8 {
        let ag = agent(&format!("many-{i}"), None, 10 + i64::from(i));
        store.create_agent(&ag).await.unwrap();
        let l = lease(5000 + i);
        store.commit(claim(ag.id, &l)).await.unwrap();
        agents.push((ag, l));
    }
    let ends = agents.iter().enumerate().map(|(i, (ag, l))| {
        let run_id = if i == 3 { new_id() } else { l.run_id };
        let (store, batch) = (store.clone(), end(ag.id, run_id, "done"));
        async move { store.commit(batch).await }
    });
    for r in futures::future::join_all(ends).await {
        r.unwrap();
    }
    for (i, (ag, l)) in agents.iter().enumerate() {
        let got = store.get_agent(ag.id).await.unwrap().unwrap();
        let want = if i == 3 { Some(l) } else { None };
        assert_eq!(got.run.as_ref(), want, "agent {i}'s claim after the ends");
        assert_eq!(got.status, AgentStatus::Idle, "agent {i}'s end is recorded");
    }
}
