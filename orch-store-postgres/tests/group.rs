//! Group commit: batches committed at the same time share transactions, yet each caller gets its own
//! answer — its own records with gap-free seqs, or its own error — and a failing batch fails no other.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeSet;

use orch_core::store::testkit::fixtures::{claimed, completed, wave_graph};
use orch_core::store::{Batch, Change, EventQuery, Store, StoreError};
use orch_core::wire::{
    BudgetScope, Event, EventKeys, GraphStatus, Reservation, Task, TaskClaim, TaskStatus, WorkerInfo, now,
};

fn claim_all(n: u32) -> Batch {
    let at = now();
    Batch::new().change(Change::ClaimTasks(Box::new(TaskClaim {
        worker: "w".into(),
        limit: n,
        graph_id: None,
        now: at,
        deadline: at + chrono::Duration::hours(1),
        stale_before: at - chrono::Duration::seconds(30),
        start: None,
    })))
}

/// Stores a running graph of `n` tasks in `waves` waves (see `wave_graph`); returns it.
async fn stored_graph(store: &orch_store_postgres::PgStore, n: u64, waves: u64) -> orch_core::wire::TaskGraph {
    let (graph, tasks) = wave_graph(n, waves);
    store
        .commit(Batch::new().change(Change::UpsertGraph(Box::new(graph.clone()))).change(Change::InsertTasks(tasks)))
        .await
        .unwrap();
    graph
}

/// A connection of its own whose open transaction holds graph `id`'s row (in `schema`) until it is
/// rolled back.
async fn hold_graph_row(url: &str, schema: &str, id: orch_core::wire::Id) -> support::sqlx::PgConnection {
    use support::sqlx;
    let mut admin = support::admin(url).await;
    sqlx::raw_sql("BEGIN").execute(&mut admin).await.unwrap();
    sqlx::query(&format!("SELECT 1 FROM \"{schema}\".task_graphs WHERE id = $1 FOR UPDATE"))
        .bind(id)
        .execute(&mut admin)
        .await
        .unwrap();
    admin
}

/// The batch completing `t`, fenced by `fence`, with its own event naming the task.
fn finish(t: &Task, fence: u32) -> Batch {
    let Change::FinishTask { task, .. } = completed(t.clone()) else { unreachable!() };
    Batch::new()
        .change(Change::FinishTask { task: task.clone(), fence })
        .event(EventKeys::default(), Event::TaskUpdated { task })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL on 127.0.0.1:5432 (or ORCH_TEST_PG_URL); scripts/test.sh runs it with --ignored"]
async fn concurrent_batches_get_their_own_results_and_a_failing_one_fails_no_other() {
    let url = support::server();
    let (store, _guard) = support::fresh_store(&url).await;
    // 40 tasks in 2 waves: each of the 20 of wave 2 depends on one of wave 1.
    let graph = stored_graph(&store, 40, 2).await;
    let info = WorkerInfo {
        id: "w".into(),
        host: "test".into(),
        pid: 1,
        concurrency: 40,
        started_at: now(),
        heartbeat_at: now(),
        role: orch_core::wire::WorkerRole::Worker,
    };
    store.commit(Batch::new().change(Change::Heartbeat(Box::new(info)))).await.unwrap();
    let first = claimed(store.commit(claim_all(40)).await.unwrap());
    assert_eq!(first.len(), 20, "wave 1");
    let before = store.last_seq().await.unwrap();

    // All at once: every fourth with a stale fence.
    let stale = |i: usize| i % 4 == 1;
    let results = futures::future::join_all(first.iter().enumerate().map(|(i, t)| {
        let store = store.clone();
        let fence = if stale(i) { t.attempt + 1 } else { t.attempt };
        let batch = finish(t, fence);
        async move { store.commit(batch).await }
    }))
    .await;
    let mut seqs = BTreeSet::new();
    for (i, (t, r)) in first.iter().zip(&results).enumerate() {
        if stale(i) {
            assert!(matches!(r, Err(StoreError::Fenced { task_id, .. }) if *task_id == t.id), "{i}: {r:?}");
            continue;
        }
        let records = r.as_ref().unwrap_or_else(|e| panic!("{i}: {e}"));
        // Its own event first (then, maybe, those its group's finished tasks recorded themselves).
        match &records[0].event {
            Event::TaskUpdated { task } => assert_eq!((task.id, task.status), (t.id, TaskStatus::Completed)),
            other => panic!("{i}: {other:?}"),
        }
        for (a, b) in records.iter().zip(records.iter().skip(1)) {
            assert_eq!(b.seq, a.seq + 1, "a batch's seqs are consecutive");
        }
        for r in records {
            assert!(seqs.insert(r.seq), "seq {} handed out twice", r.seq);
        }
    }
    // The log holds exactly what was handed out: no gap, nothing of the failed batches.
    let logged: BTreeSet<u64> =
        store.read_events(&EventQuery::after(before)).await.unwrap().into_iter().map(|r| r.seq).collect();
    assert_eq!(logged, seqs);
    assert_eq!(seqs.iter().copied().collect::<Vec<_>>(), (before + 1..=before + seqs.len() as u64).collect::<Vec<_>>());

    // The 15 completed parents released their children; the fenced ones' tasks still run.
    let now_tasks = store.list_tasks(graph.id).await.unwrap();
    let count = |s: TaskStatus| now_tasks.iter().filter(|t| t.status == s).count();
    assert_eq!((count(TaskStatus::Completed), count(TaskStatus::Running)), (15, 5));
    assert_eq!((count(TaskStatus::Ready), count(TaskStatus::Pending)), (15, 5));
    let released: usize = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .flatten()
        .filter(|r| matches!(&r.event, Event::TaskUpdated { task } if task.status == TaskStatus::Ready))
        .count();
    assert_eq!(released, 15, "each release recorded once");

    // The rest, each round all at once: the graph ends exactly once.
    let mut rest: Vec<Task> = now_tasks.into_iter().filter(|t| t.status == TaskStatus::Running).collect();
    let mut ends = Vec::new();
    while !rest.is_empty() {
        rest.extend(claimed(store.commit(claim_all(40)).await.unwrap()));
        let results = futures::future::join_all(rest.iter().map(|t| {
            let store = store.clone();
            let batch = finish(t, t.attempt);
            async move { store.commit(batch).await }
        }))
        .await;
        ends.extend(results.into_iter().flat_map(|r| r.unwrap()).filter_map(|r| match r.event {
            Event::GraphUpdated { graph } => Some(graph.status),
            _ => None,
        }));
        rest = claimed(store.commit(claim_all(40)).await.unwrap());
    }
    assert_eq!(ends, vec![GraphStatus::Completed]);
    assert_eq!(store.get_graph(graph.id).await.unwrap().unwrap().status, GraphStatus::Completed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL on 127.0.0.1:5432 (or ORCH_TEST_PG_URL); scripts/test.sh runs it with --ignored"]
async fn grouped_reservations_never_pass_a_limit_and_settlements_add_up() {
    let url = support::server();
    let (store, _guard) = support::fresh_store(&url).await;
    let (mut graph, _) = wave_graph(1, 1);
    graph.budget_usd = Some(1.0);
    store.commit(Batch::new().change(Change::UpsertGraph(Box::new(graph.clone())))).await.unwrap();
    let limit = Change::SetBudgetLimit { scope: BudgetScope::Daily, limit_usd: Some(10.0) };
    store.commit(Batch::new().change(limit)).await.unwrap();
    let r = Reservation { graph_id: Some(graph.id), amount: 0.1, day: "2026-12-03".into(), month: "2026-12".into() };

    // 25 reservations of $0.10 at once against the graph's $1.00: ten fit.
    let results = futures::future::join_all((0..25).map(|_| {
        let (store, r) = (store.clone(), r.clone());
        async move { store.commit(Batch::new().change(Change::ReserveBudget(Box::new(r)))).await }
    }))
    .await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 10, "{results:?}");
    for e in results.iter().filter_map(|r| r.as_ref().err()) {
        assert!(matches!(e, StoreError::BudgetExhausted { scope, .. } if scope.starts_with("graph")), "{e}");
    }
    let day = store.budget("2026-12-03", "2026-12").await.unwrap().daily;
    assert!((day.reserved_usd - 1.0).abs() < 1e-9, "{day:?}");

    // Settled at once for $0.05 each: spent on the day and on the graph, nothing left reserved.
    futures::future::join_all((0..10).map(|_| {
        let (store, r) = (store.clone(), r.clone());
        async move {
            let settle = Change::SettleBudget { reservation: Box::new(r), actual: 0.05 };
            store.commit(Batch::new().change(settle)).await.unwrap()
        }
    }))
    .await;
    let day = store.budget("2026-12-03", "2026-12").await.unwrap().daily;
    assert!((day.spent_usd - 0.5).abs() < 1e-9 && day.reserved_usd.abs() < 1e-9, "{day:?}");
    let cost = store.get_graph(graph.id).await.unwrap().unwrap().cost_usd;
    assert!((cost - 0.5).abs() < 1e-9, "{cost}");
    // The graph's room is what it did not spend: ten more reservations of $0.05 fit, not eleven.
    let half = Reservation { amount: 0.05, ..r };
    for i in 0..11 {
        let res = store.commit(Batch::new().change(Change::ReserveBudget(Box::new(half.clone())))).await;
        assert_eq!(res.is_ok(), i < 10, "{i}: {res:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL on 127.0.0.1:5432 (or ORCH_TEST_PG_URL); scripts/test.sh runs it with --ignored"]
async fn grouped_agent_steps_and_lease_swaps_end_as_one_at_a_time() {
    use orch_core::executor::lease::new_lease;
    use orch_core::store::testkit::fixtures::agent;
    use orch_core::store::{SavedState, StepCommit};
    use orch_core::wire::{AgentStatus, Message, Prompt, PromptAuthor, Usage, new_id};

    let url = support::server();
    let (store, _guard) = support::fresh_store(&url).await;
    let agents: Vec<_> = (0..30).map(|i| agent(&format!("a{i}"), None, i)).collect();
    for a in &agents {
        store.commit(Batch::new().change(Change::CreateAgent(Box::new(a.clone())))).await.unwrap();
    }
    // A step of a turn's start for each agent (status, usage, state, context, messages, its prompt row),
    // and one of an agent that does not exist, all at once: grouped, each gets its own answer.
    let step = |id, i: u64| {
        let prompt = Prompt {
            id: new_id(),
            agent_id: Some(id),
            task_slug: Some(format!("s{i}")),
            author: PromptAuthor::Engineer,
            prompt_text: format!("do {i}"),
            summary: None,
            session_id: None,
            created_at: now(),
        };
        let usage = Usage { input_tokens: 10 + i, output_tokens: i, ..Usage::default() };
        StepCommit {
            agent_id: id,
            status: Some(AgentStatus::Executing),
            usage: Some((usage, 0.5)),
            state: Some(SavedState { state: Some(serde_json::json!({"i": i})), session_id: Some(format!("s{i}")) }),
            context: Some((100 + i, Some(1000))),
            messages: vec![Message::user_text(format!("first {i}")), Message::user_text(format!("second {i}"))],
            changes: vec![Change::InsertPrompt(Box::new(prompt))],
            events: vec![orch_core::wire::NewEvent::new(EventKeys::default(), Event::Text { text: format!("{i}") })],
        }
    };
    let ghost = new_id();
    let mut batches: Vec<Batch> = agents.iter().enumerate().map(|(i, a)| Batch::from(step(a.id, i as u64))).collect();
    batches.insert(7, Batch::from(step(ghost, 99)));
    let results = futures::future::join_all(batches.into_iter().map(|b| {
        let store = store.clone();
        async move { store.commit(b).await }
    }))
    .await;
    for (i, r) in results.iter().enumerate() {
        if i == 7 {
            assert!(matches!(r, Err(StoreError::NotFound { .. })), "the missing agent's step: {r:?}");
        } else {
            assert_eq!(r.as_ref().map(Vec::len).unwrap_or_else(|e| panic!("{i}: {e}")), 1, "{i}: its own event");
        }
    }
    for (i, a) in agents.iter().enumerate() {
        let i = i as u64;
        let got = store.get_agent(a.id).await.unwrap().unwrap();
        assert_eq!(got.status, AgentStatus::Executing);
        assert_eq!(
            (got.usage.input_tokens, got.usage.output_tokens),
            (a.usage.input_tokens + 10 + i, a.usage.output_tokens + i)
        );
        assert!((got.total_cost_usd - a.total_cost_usd - 0.5).abs() < 1e-9);
        assert_eq!(got.session_id.as_deref(), Some(format!("s{i}").as_str()));
        assert_eq!((got.context_used, got.context_window), (100 + i, Some(1000)));
        assert_eq!(store.load_executor_state(a.id).await.unwrap(), Some(serde_json::json!({"i": i})));
        let texts: Vec<String> =
            store.load_conversation(a.id).await.unwrap().iter().map(|m| format!("{:?}", m.content)).collect();
        assert_eq!(texts.len(), 2, "{texts:?}");
        assert!(texts[0].contains(&format!("first {i}")) && texts[1].contains(&format!("second {i}")), "{texts:?}");
        let prompts = store.list_prompts(a.id).await.unwrap();
        assert_eq!(prompts.iter().map(|p| p.prompt_text.as_str()).collect::<Vec<_>>(), vec![format!("do {i}")]);
    }

    // Lease swaps at once: each agent claimed by a run; a second claim of agent 0 expecting nothing,
    // in the same round, conflicts alone. Then each released, expecting its run.
    let runs: Vec<_> = agents.iter().map(|_| new_lease(new_id(), None)).collect();
    let mut swaps: Vec<Batch> = agents
        .iter()
        .zip(&runs)
        .map(|(a, l)| Batch::new().change(Change::SwapRun { agent_id: a.id, expect: None, lease: Some(l.clone()) }))
        .collect();
    let rival = new_lease(new_id(), None);
    swaps.push(Batch::new().change(Change::SwapRun { agent_id: agents[0].id, expect: None, lease: Some(rival) }));
    let results = futures::future::join_all(swaps.into_iter().map(|b| {
        let store = store.clone();
        async move { store.commit(b.relaxed()).await }
    }))
    .await;
    let conflicts = results.iter().filter(|r| matches!(r, Err(StoreError::RunConflict { .. }))).count();
    assert_eq!(conflicts, 1, "{results:?}");
    assert!(results.iter().filter(|r| r.is_ok()).count() == agents.len());
    let holder = store.get_agent(agents[0].id).await.unwrap().unwrap().run.map(|l| l.run_id);
    assert!(holder.is_some());
    let releases = futures::future::join_all(agents.iter().map(|a| {
        let store = store.clone();
        async move {
            let held = store.get_agent(a.id).await.unwrap().unwrap().run.map(|l| l.run_id);
            assert!(held.is_some(), "every agent is held");
            store.commit(Batch::new().change(Change::SwapRun { agent_id: a.id, expect: held, lease: None })).await
        }
    }))
    .await;
    assert!(releases.iter().all(Result::is_ok), "{releases:?}");
    for a in &agents {
        assert!(store.get_agent(a.id).await.unwrap().unwrap().run.is_none());
    }

    // Runs' ends at once, each a step that releases its run's claim (`ReleaseRun`, written by the
    // steps' one update); agent 0's names another run, and keeps its holder.
    let runs: Vec<_> = agents.iter().map(|_| new_lease(new_id(), None)).collect();
    for (a, l) in agents.iter().zip(&runs) {
        let claim = Change::SwapRun { agent_id: a.id, expect: None, lease: Some(l.clone()) };
        store.commit(Batch::new().change(claim).relaxed()).await.unwrap();
    }
    let ends = futures::future::join_all(agents.iter().zip(&runs).enumerate().map(|(i, (a, l))| {
        let store = store.clone();
        let run_id = if i == 0 { new_id() } else { l.run_id };
        let step = StepCommit {
            agent_id: a.id,
            status: Some(AgentStatus::Idle),
            usage: Some((Usage::default(), 0.0)),
            messages: vec![Message::user_text(format!("end {i}"))],
            changes: vec![Change::ReleaseRun { agent_id: a.id, run_id }],
            ..StepCommit::default()
        };
        async move { store.commit(Batch::from(step)).await }
    }))
    .await;
    assert!(ends.iter().all(Result::is_ok), "{ends:?}");
    for (i, (a, l)) in agents.iter().zip(&runs).enumerate() {
        let got = store.get_agent(a.id).await.unwrap().unwrap();
        assert_eq!(got.status, AgentStatus::Idle, "agent {i}'s end is recorded");
        let want = if i == 0 { Some(l.run_id) } else { None };
        assert_eq!(got.run.map(|r| r.run_id), want, "agent {i}'s claim after its end");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL on 127.0.0.1:5432 (or ORCH_TEST_PG_URL); scripts/test.sh runs it with --ignored"]
async fn grouped_model_call_steps_with_their_settlements_end_as_one_at_a_time() {
    use orch_core::store::testkit::fixtures::agent;
    use orch_core::wire::{AgentStatus, Message, Usage, new_id};

    let url = support::server();
    let (store, _guard) = support::fresh_store(&url).await;
    let (graph, _) = wave_graph(1, 1);
    store.commit(Batch::new().change(Change::UpsertGraph(Box::new(graph.clone())))).await.unwrap();
    let agents: Vec<_> = (0..24).map(|i| agent(&format!("m{i}"), None, i)).collect();
    for a in &agents {
        store.commit(Batch::new().change(Change::CreateAgent(Box::new(a.clone())))).await.unwrap();
    }
    let r = Reservation { graph_id: Some(graph.id), amount: 0.1, day: "2026-12-03".into(), month: "2026-12".into() };
    for _ in &agents {
        store.commit(Batch::new().change(Change::ReserveBudget(Box::new(r.clone())))).await.unwrap();
    }
    // Each agent's model call: its step (status, usage and cost, the reply) and the settlement of its
    // reservation at the real cost, in one batch, all at once. One more names a graph that does not
    // exist: it fails alone, its agent's step not written.
    let call = |a: &orch_core::wire::Agent, i: usize, graph_id| {
        let cost = 0.01 * (i + 1) as f64;
        Batch::new()
            .change(Change::SetAgentStatus { id: a.id, status: AgentStatus::Executing })
            .change(Change::AddAgentUsage {
                id: a.id,
                usage: Usage { input_tokens: 100, output_tokens: i as u64, ..Usage::default() },
                cost_usd: cost,
            })
            .change(Change::AppendMessages { agent_id: a.id, messages: vec![Message::user_text(format!("r{i}"))] })
            .change(Change::SettleBudget { reservation: Box::new(Reservation { graph_id, ..r.clone() }), actual: cost })
            .event(EventKeys::default(), Event::Text { text: format!("{i}") })
    };
    let mut batches: Vec<Batch> = agents.iter().enumerate().map(|(i, a)| call(a, i, Some(graph.id))).collect();
    let stray = agent("stray", None, 99);
    store.commit(Batch::new().change(Change::CreateAgent(Box::new(stray.clone())))).await.unwrap();
    batches.insert(5, call(&stray, 99, Some(new_id())));
    let results = futures::future::join_all(batches.into_iter().map(|b| {
        let store = store.clone();
        async move { store.commit(b).await }
    }))
    .await;
    for (i, res) in results.iter().enumerate() {
        if i == 5 {
            assert!(matches!(res, Err(StoreError::NotFound { .. })), "the stray graph's settlement: {res:?}");
        } else {
            assert_eq!(res.as_ref().map(Vec::len).unwrap_or_else(|e| panic!("{i}: {e}")), 1, "{i}: its own event");
        }
    }
    let mut total = 0.0;
    for (i, a) in agents.iter().enumerate() {
        let got = store.get_agent(a.id).await.unwrap().unwrap();
        let cost = 0.01 * (i + 1) as f64;
        total += cost;
        assert_eq!(got.status, AgentStatus::Executing, "{i}");
        assert_eq!(got.usage.output_tokens, a.usage.output_tokens + i as u64, "{i}");
        assert!((got.total_cost_usd - a.total_cost_usd - cost).abs() < 1e-9, "{i}");
        assert_eq!(store.load_conversation(a.id).await.unwrap().len(), 1, "{i}");
    }
    let stray_now = store.get_agent(stray.id).await.unwrap().unwrap();
    assert_eq!((stray_now.status, stray_now.total_cost_usd), (stray.status, stray.total_cost_usd));
    assert!(store.load_conversation(stray.id).await.unwrap().is_empty());
    // Every settlement counted once: the graph's cost and the day's spending are the calls' costs, and
    // no reservation is left.
    let cost = store.get_graph(graph.id).await.unwrap().unwrap().cost_usd;
    assert!((cost - total).abs() < 1e-9, "{cost} != {total}");
    let day = store.budget("2026-12-03", "2026-12").await.unwrap().daily;
    assert!((day.spent_usd - total).abs() < 1e-9 && day.reserved_usd.abs() < 1e-9, "{day:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL on 127.0.0.1:5432 (or ORCH_TEST_PG_URL); scripts/test.sh runs it with --ignored"]
async fn attempts_start_while_another_transaction_holds_their_graphs_row() {
    use orch_core::store::testkit::fixtures::agent;
    use support::sqlx;

    let url = support::server();
    let (store, guard) = support::fresh_store(&url).await;
    let graph = stored_graph(&store, 8, 1).await;
    let running = claimed(store.commit(claim_all(8)).await.unwrap());
    assert_eq!(running.len(), 8);
    // Another transaction holds the graph's row, as a reservation, a settlement or a cancel does for
    // its whole transaction.
    let mut admin = hold_graph_row(&url, &guard.schema, graph.id).await;
    // The eight attempts start at once, each its agent created with its task's new state (grouped):
    // they lock their tasks' rows only, so they do not wait for the graph's.
    let starts = futures::future::join_all(running.iter().enumerate().map(|(i, t)| {
        let store = store.clone();
        let a = agent(&format!("s{i}"), None, i as i64);
        let mut t = t.clone();
        t.agent_id = Some(a.id);
        async move {
            let fence = t.attempt;
            let batch = Batch::new()
                .change(Change::CreateAgent(Box::new(a)))
                .change(Change::UpdateTask { task: Box::new(t), fence: Some(fence) });
            store.commit(batch).await
        }
    }));
    let started = tokio::time::timeout(std::time::Duration::from_secs(30), starts).await;
    sqlx::raw_sql("ROLLBACK").execute(&mut admin).await.unwrap();
    let results = started.expect("the attempts' starts waited for the graph's row");
    for (i, r) in results.iter().enumerate() {
        assert!(r.is_ok(), "{i}: {r:?}");
    }
    for t in &running {
        let stored = store.get_task(t.id).await.unwrap().unwrap();
        assert!(stored.agent_id.is_some(), "{}: its agent recorded", t.key);
        assert!(store.get_agent(stored.agent_id.unwrap()).await.unwrap().is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL on 127.0.0.1:5432 (or ORCH_TEST_PG_URL); scripts/test.sh runs it with --ignored"]
async fn grouped_run_ends_with_their_tasks_claim_children_only_after_their_parents_completed() {
    use orch_core::store::testkit::fixtures::agent;
    use orch_core::wire::{AgentStatus, Message, Usage};

    let url = support::server();
    let (store, _guard) = support::fresh_store(&url).await;
    // 40 tasks in 2 waves: each of the 20 of wave 2 depends on one of wave 1.
    let graph = stored_graph(&store, 40, 2).await;
    let parents = claimed(store.commit(claim_all(20)).await.unwrap());
    assert_eq!(parents.len(), 20, "wave 1");
    let agents: Vec<_> = (0..20).map(|i| agent(&format!("e{i}"), None, i)).collect();
    let r = Reservation { graph_id: Some(graph.id), amount: 0.1, day: "2026-12-03".into(), month: "2026-12".into() };
    for a in &agents {
        store.commit(Batch::new().change(Change::CreateAgent(Box::new(a.clone())))).await.unwrap();
        store.commit(Batch::new().change(Change::ReserveBudget(Box::new(r.clone())))).await.unwrap();
    }
    // Each run's end: the agent's last step with its settlement, then its task completed and a claim of
    // one task for the worker, in one batch, all at once; every fifth with a stale fence.
    let stale = |i: usize| i % 5 == 2;
    let end = |i: usize, a: &orch_core::wire::Agent, t: &Task| {
        let Change::FinishTask { task, fence } = completed(t.clone()) else { unreachable!() };
        let fence = if stale(i) { fence + 1 } else { fence };
        let claim = claim_all(1).changes.remove(0);
        Batch::new()
            .change(Change::SetAgentStatus { id: a.id, status: AgentStatus::Idle })
            .change(Change::AddAgentUsage { id: a.id, usage: Usage::default(), cost_usd: 0.01 })
            .change(Change::AppendMessages { agent_id: a.id, messages: vec![Message::user_text(format!("r{i}"))] })
            .change(Change::SettleBudget { reservation: Box::new(r.clone()), actual: 0.01 })
            .change(Change::FinishTask { task: task.clone(), fence })
            .change(claim)
            .event(EventKeys::default(), Event::Text { text: format!("{i}") })
            .event(EventKeys::default(), Event::TaskUpdated { task })
    };
    // The ends come in the reverse order of their tasks: a claim taking the first ready task it finds
    // would take the child released by a later batch of its group, not its own.
    let results = futures::future::join_all(agents.iter().zip(parents.iter().rev()).enumerate().map(|(i, (a, t))| {
        let store = store.clone();
        let batch = end(i, a, t);
        async move { store.commit(batch).await }
    }))
    .await;
    let mut claimed_here = Vec::new();
    for (i, (res, a)) in results.iter().zip(&agents).enumerate() {
        let got = store.get_agent(a.id).await.unwrap().unwrap();
        if stale(i) {
            assert!(matches!(res, Err(StoreError::Fenced { .. })), "{i}: {res:?}");
            assert_eq!(got.status, a.status, "{i}: nothing of a refused batch is written");
            assert!(store.load_conversation(a.id).await.unwrap().is_empty(), "{i}");
            continue;
        }
        let records = res.as_ref().unwrap_or_else(|e| panic!("{i}: {e}"));
        assert_eq!(got.status, AgentStatus::Idle, "{i}");
        assert_eq!(store.load_conversation(a.id).await.unwrap().len(), 1, "{i}");
        assert!(
            matches!(&records[0].event, Event::Text { text } if *text == i.to_string()),
            "{i}: its own events first"
        );
        // What its claim took comes back to it: at most the one task it asked for.
        let mine = claimed(records.clone());
        assert!(mine.len() <= 1, "{i}: {mine:?}");
        claimed_here.extend(mine);
    }
    // Each end's finish released its task's child, which its claim may take whatever the group.
    assert_eq!(claimed_here.len(), 16, "each end that was not refused claimed a child");
    let ids: BTreeSet<_> = claimed_here.iter().map(|t| t.id).collect();
    assert_eq!(ids.len(), claimed_here.len(), "no task claimed twice");
    // In the log, every claimed child follows the completion of each of its parents.
    let log = store.read_events(&EventQuery::default()).await.unwrap();
    let seq_of = |id, status| {
        log.iter()
            .find(|r| matches!(&r.event, Event::TaskUpdated { task } if task.id == id && task.status == status))
            .map(|r| r.seq)
    };
    for child in &claimed_here {
        let started = seq_of(child.id, TaskStatus::Running).unwrap();
        // Released (made ready) before it was claimed: a claim never takes a child that a later batch
        // of its group released.
        let ready = seq_of(child.id, TaskStatus::Ready).unwrap_or_else(|| panic!("{} never ready", child.key));
        assert!(ready < started, "child {} claimed at {started} before it was released at {ready}", child.key);
        for parent in &child.depends_on {
            let done = seq_of(*parent, TaskStatus::Completed).unwrap_or_else(|| panic!("{} never completed", parent));
            assert!(done < started, "child {} claimed at {started} before its parent completed at {done}", child.key);
        }
    }
    // Each settlement counted once.
    let cost = store.get_graph(graph.id).await.unwrap().unwrap().cost_usd;
    assert!((cost - 0.01 * 16.0).abs() < 1e-9, "{cost}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL on 127.0.0.1:5432 (or ORCH_TEST_PG_URL); scripts/test.sh runs it with --ignored"]
async fn grouped_adds_take_distinct_positions_and_a_refused_one_refuses_no_other() {
    use orch_core::store::testkit::fixtures::task;
    use support::sqlx;

    let url = support::server();
    let (store, guard) = support::fresh_store(&url).await;
    let graph = stored_graph(&store, 3, 1).await;
    let ended = stored_graph(&store, 1, 1).await;
    let cancel = Change::SetGraphStatus {
        id: ended.id,
        status: GraphStatus::Cancelled,
        error: None,
        from: vec![GraphStatus::Running, GraphStatus::Pending],
    };
    store.commit(Batch::new().change(cancel)).await.unwrap();
    let add = |t: Task| {
        let store = store.clone();
        tokio::spawn(async move { store.commit(Batch::new().change(Change::AddTask(Box::new(t.clone())))).await })
    };
    // Another transaction holds the graph's row: the first add waits for it in the graph lane's one
    // writer, and the adds after it queue and are committed together once it is let go.
    let mut admin = hold_graph_row(&url, &guard.schema, graph.id).await;
    let first = task(graph.id, 0, 1, vec![], 100);
    let mut sent = vec![first.clone()];
    let mut waiting = vec![add(first)];
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // Ten more, each built at position 0: half without a key, one with a key another has, one for an
    // ended graph.
    for i in 0..10u32 {
        let mut t = task(if i == 7 { ended.id } else { graph.id }, 0, 1 + i % 3, vec![], 101 + i64::from(i));
        t.key = match i {
            _ if i % 2 == 0 => String::new(),
            5 => "named-3".into(),
            _ => format!("named-{i}"),
        };
        sent.push(t.clone());
        waiting.push(add(t));
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    sqlx::raw_sql("ROLLBACK").execute(&mut admin).await.unwrap();
    let mut results = Vec::new();
    for w in waiting {
        results.push(tokio::time::timeout(std::time::Duration::from_secs(30), w).await.unwrap().unwrap());
    }

    let mut positions = Vec::new();
    let mut refused = Vec::new();
    for (t, r) in sent.iter().zip(&results) {
        match r {
            Ok(recs) => {
                let stored = store.get_task(t.id).await.unwrap().expect("an added task is stored");
                assert!(
                    matches!(recs.first().map(|r| &r.event), Some(Event::TaskUpdated { task }) if **task == stored),
                    "its record holds it as stored: {recs:?}"
                );
                if t.key.is_empty() {
                    assert_eq!(stored.key, format!("task-{}", stored.index + 1));
                }
                positions.push(stored.index);
            }
            Err(e) => {
                assert_eq!(store.get_task(t.id).await.unwrap(), None, "a refused add stores nothing");
                refused.push((t.key.clone(), e.to_string()));
            }
        }
    }
    positions.sort_unstable();
    assert_eq!(positions, (3..12).collect::<Vec<u32>>(), "nine adds, distinct positions after the three tasks");
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert!(refused.iter().any(|(k, e)| k == "named-3" && e.contains("'named-3'")), "the taken key: {refused:?}");
    assert!(refused.iter().any(|(_, e)| e.contains("ended")), "the ended graph: {refused:?}");
    let grown = store.get_graph(graph.id).await.unwrap().unwrap();
    assert_eq!(grown.total_tasks, 12);
    assert_eq!(store.get_graph(ended.id).await.unwrap().unwrap().total_tasks, 1);
    // The log holds each add's task as stored.
    let log = store.read_events(&EventQuery::default()).await.unwrap();
    let added: BTreeSet<u32> = log
        .iter()
        .filter_map(|r| match &r.event {
            Event::TaskUpdated { task } if task.graph_id == graph.id && task.index >= 3 => Some(task.index),
            _ => None,
        })
        .collect();
    assert_eq!(added, (3..12).collect::<BTreeSet<u32>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL on 127.0.0.1:5432 (or ORCH_TEST_PG_URL); scripts/test.sh runs it with --ignored"]
async fn a_task_added_while_its_dependency_completes_elsewhere_waits_and_is_ready() {
    use orch_core::store::testkit::fixtures::task;
    use support::sqlx;

    let url = support::server();
    let (store, guard) = support::fresh_store(&url).await;
    let graph = stored_graph(&store, 2, 1).await;
    let parent = store.list_tasks(graph.id).await.unwrap().remove(0);
    // Another process completes the parent: its transaction has written the row but not committed.
    let mut other = support::admin(&url).await;
    sqlx::raw_sql("BEGIN").execute(&mut other).await.unwrap();
    sqlx::query(&format!("UPDATE \"{}\".tasks SET status = 'completed' WHERE id = $1", guard.schema))
        .bind(parent.id)
        .execute(&mut other)
        .await
        .unwrap();
    let child = task(graph.id, 0, 2, vec![parent.id], 50);
    let adding = {
        let store = store.clone();
        let child = child.clone();
        tokio::spawn(async move { store.commit(Batch::new().change(Change::AddTask(Box::new(child)))).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!adding.is_finished(), "the add waits for the transaction finishing its dependency");
    sqlx::raw_sql("COMMIT").execute(&mut other).await.unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(30), adding).await.unwrap().unwrap().unwrap();
    let stored = store.get_task(child.id).await.unwrap().unwrap();
    assert_eq!(stored.status, TaskStatus::Ready, "it sees its dependency completed");
}
