//! Checks of the entities: orchestrators, agents, prompts, chat, system logs, workflows.

use super::*;

/// Orchestrators: create, get, list newest first with the archived filter, update the mutable fields
/// (usage and cost unchanged by update).
pub async fn orchestrator_crud(store: Arc<dyn Store>) {
    assert!(store.list_orchestrators(true).await.unwrap().is_empty(), "a fresh store has no orchestrators");
    let o1 = orchestrator(1);
    let o2 = orchestrator(2);
    let o3 = orchestrator(3);
    // Inserted out of creation order on purpose.
    store.create_orchestrator(&o2).await.unwrap();
    store.create_orchestrator(&o1).await.unwrap();
    store.create_orchestrator(&o3).await.unwrap();
    assert_eq!(store.get_orchestrator(o1.id).await.unwrap().as_ref(), Some(&o1), "orchestrator round-trips");
    assert_eq!(store.get_orchestrator(new_id()).await.unwrap(), None, "unknown orchestrator is None");
    let listed = store.list_orchestrators(false).await.unwrap();
    assert_eq!(ids(&listed, |o| o.id), vec![o3.id, o2.id, o1.id], "orchestrators are listed newest first");
    assert_eq!(listed[1], o2);

    let mut changed = o2.clone();
    changed.session_id = None;
    changed.system_prompt = "new prompt".into();
    changed.status = AgentStatus::Executing;
    changed.working_dir = "/elsewhere".into();
    changed.metadata = serde_json::json!({"changed": true});
    changed.archived = true;
    // Usage and cost are not changed by update_orchestrator.
    changed.usage.input_tokens = 999;
    changed.total_cost_usd = 99.0;
    store.update_orchestrator(&changed).await.unwrap();
    let got = store.get_orchestrator(o2.id).await.unwrap().expect("updated orchestrator exists");
    assert_eq!(got.session_id, None);
    assert_eq!(got.system_prompt, "new prompt");
    assert_eq!(got.status, AgentStatus::Executing);
    assert_eq!(got.working_dir, "/elsewhere");
    assert_eq!(got.metadata, serde_json::json!({"changed": true}));
    assert!(got.archived);
    assert_eq!(got.usage, o2.usage, "update_orchestrator must not change usage");
    assert_eq!(got.total_cost_usd, o2.total_cost_usd, "update_orchestrator must not change cost");
    assert_eq!(got.created_at, o2.created_at, "created_at is kept");

    let live = store.list_orchestrators(false).await.unwrap();
    assert_eq!(ids(&live, |o| o.id), vec![o3.id, o1.id], "archived orchestrators are hidden by default");
    let all = store.list_orchestrators(true).await.unwrap();
    assert_eq!(ids(&all, |o| o.id), vec![o3.id, o2.id, o1.id], "include_archived lists them all");
}

/// An orchestrator's status and usage are those of its own agent (the live agent named `orchestrator`
/// under it), stored once there; without that agent, the orchestrator's own.
pub async fn orchestrator_status_and_usage_are_its_agents(store: Arc<dyn Store>) {
    let o = orchestrator(1);
    store.create_orchestrator(&o).await.unwrap();
    let alone = store.get_orchestrator(o.id).await.unwrap().unwrap();
    assert_eq!((alone.status, alone.usage), (o.status, o.usage), "without its agent: its own values");
    let mut own = agent("orchestrator", Some(o.id), 2);
    own.usage = Usage::default();
    own.total_cost_usd = 0.0;
    own.status = AgentStatus::Idle;
    store.create_agent(&own).await.unwrap();
    // Another agent of the orchestrator does not count.
    let mut other = agent("worker", Some(o.id), 3);
    other.status = AgentStatus::Blocked;
    store.create_agent(&other).await.unwrap();
    let once = Usage { input_tokens: 1, output_tokens: 2, cache_read_input_tokens: 3, cache_creation_input_tokens: 4 };
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move { store.add_agent_usage(own.id, once, 0.01).await.unwrap() }));
    }
    for t in tasks {
        t.await.expect("task panicked");
    }
    store.set_agent_status(own.id, AgentStatus::Executing).await.unwrap();
    let got = store.get_orchestrator(o.id).await.unwrap().unwrap();
    let expected =
        Usage { input_tokens: 50, output_tokens: 100, cache_read_input_tokens: 150, cache_creation_input_tokens: 200 };
    assert_eq!(got.usage, expected, "its agent's usage, every concurrent increment counted");
    assert!((got.total_cost_usd - 0.50).abs() < 1e-9, "its agent's cost, got {}", got.total_cost_usd);
    assert_eq!(got.status, AgentStatus::Executing, "its agent's status");
    assert_eq!((got.context_used, got.context_window), (own.context_used, own.context_window), "its agent's context");
    assert_eq!(got.system_prompt, o.system_prompt, "its own other fields");
    let listed = store.list_orchestrators(false).await.unwrap();
    assert_eq!((listed[0].status, listed[0].usage), (AgentStatus::Executing, expected), "listed the same way");
    store.archive_agent(own.id).await.unwrap();
    let back = store.get_orchestrator(o.id).await.unwrap().unwrap();
    assert_eq!((back.status, back.usage), (o.status, o.usage), "an archived agent no longer counts");
}

/// Agents: create, get, find, list (newest first, orchestrator and archived filters).
pub async fn agent_create_get_find_list(store: Arc<dyn Store>) {
    let oa = orchestrator(1);
    let ob = orchestrator(2);
    store.create_orchestrator(&oa).await.unwrap();
    store.create_orchestrator(&ob).await.unwrap();
    let a1 = agent("alpha", Some(oa.id), 10);
    let a2 = agent("beta", Some(oa.id), 12);
    let b1 = agent("alpha", Some(ob.id), 11);
    let mut free = agent("loner", None, 13);
    free.role = AgentRole::Subagent;
    free.parent_id = Some(a1.id);
    free.template = None;
    free.tools = None;
    free.session_id = Some("sess".into());
    free.workflow_id = Some(new_id());
    for a in [&a2, &a1, &free, &b1] {
        store.create_agent(a).await.unwrap();
    }
    assert_eq!(store.get_agent(a1.id).await.unwrap().as_ref(), Some(&a1), "agent round-trips");
    assert_eq!(store.get_agent(free.id).await.unwrap().as_ref(), Some(&free), "agent round-trips");
    assert_eq!(store.get_agent(new_id()).await.unwrap(), None);

    assert_eq!(store.find_agent(Some(oa.id), "alpha").await.unwrap().map(|a| a.id), Some(a1.id));
    assert_eq!(store.find_agent(Some(ob.id), "alpha").await.unwrap().map(|a| a.id), Some(b1.id));
    assert_eq!(store.find_agent(None, "loner").await.unwrap().map(|a| a.id), Some(free.id));
    assert_eq!(store.find_agent(None, "alpha").await.unwrap(), None, "None means agents without orchestrator");
    assert_eq!(store.find_agent(Some(oa.id), "loner").await.unwrap(), None);
    assert_eq!(store.find_agent(Some(oa.id), "ALPHA").await.unwrap(), None, "names are case-sensitive");

    let all = store.list_agents(&AgentFilter::default()).await.unwrap();
    assert_eq!(ids(&all, |a| a.id), vec![free.id, a2.id, b1.id, a1.id], "agents are listed newest first");
    let of_a = store.list_agents(&AgentFilter { orchestrator_id: Some(oa.id), include_archived: false }).await.unwrap();
    assert_eq!(ids(&of_a, |a| a.id), vec![a2.id, a1.id], "orchestrator filter");

    store.archive_agent(a2.id).await.unwrap();
    let live = store.list_agents(&AgentFilter::default()).await.unwrap();
    assert_eq!(ids(&live, |a| a.id), vec![free.id, b1.id, a1.id], "archived agents are hidden by default");
    let with_archived =
        store.list_agents(&AgentFilter { orchestrator_id: Some(oa.id), include_archived: true }).await.unwrap();
    assert_eq!(ids(&with_archived, |a| a.id), vec![a2.id, a1.id], "include_archived shows them");
    let archived = store.get_agent(a2.id).await.unwrap().expect("archived agents can still be read");
    assert!(archived.archived);
    assert_eq!(store.find_agent(Some(oa.id), "beta").await.unwrap(), None, "find ignores archived agents");
}

/// A name is unique among the live agents of one orchestrator; archiving frees it; other orchestrators
/// (and agents without one) have their own namespace.
pub async fn agent_name_unique_among_live_agents(store: Arc<dyn Store>) {
    let oa = orchestrator(1);
    let ob = orchestrator(2);
    store.create_orchestrator(&oa).await.unwrap();
    store.create_orchestrator(&ob).await.unwrap();
    let first = agent("builder", Some(oa.id), 1);
    store.create_agent(&first).await.unwrap();
    match store.create_agent(&agent("builder", Some(oa.id), 2)).await {
        Err(StoreError::NameTaken { name }) => assert_eq!(name, "builder"),
        other => panic!("a second live 'builder' under the same orchestrator must be NameTaken, got {other:?}"),
    }
    store.create_agent(&agent("builder", Some(ob.id), 3)).await.expect("same name under another orchestrator");
    let no_orch = agent("builder", None, 4);
    store.create_agent(&no_orch).await.expect("same name without orchestrator");
    assert!(
        matches!(store.create_agent(&agent("builder", None, 5)).await, Err(StoreError::NameTaken { .. })),
        "names are unique among agents without orchestrator too"
    );
    assert_eq!(
        store.list_agents(&AgentFilter { orchestrator_id: Some(oa.id), include_archived: true }).await.unwrap().len(),
        1,
        "the refused agent was not stored"
    );

    store.archive_agent(first.id).await.unwrap();
    let second = agent("builder", Some(oa.id), 6);
    store.create_agent(&second).await.expect("the name is free again after archive_agent");
    assert_eq!(store.find_agent(Some(oa.id), "builder").await.unwrap().map(|a| a.id), Some(second.id));
    assert!(
        matches!(store.create_agent(&agent("builder", Some(oa.id), 7)).await, Err(StoreError::NameTaken { .. })),
        "the new live agent holds the name"
    );
    store.archive_agent(second.id).await.unwrap();
    let third = agent("builder", Some(oa.id), 8);
    store.create_agent(&third).await.expect("several archived agents may share a name");
    let all = store.list_agents(&AgentFilter { orchestrator_id: Some(oa.id), include_archived: true }).await.unwrap();
    assert_eq!(ids(&all, |a| a.id), vec![third.id, second.id, first.id]);
}

/// `set_agent_status` returns the previous status.
pub async fn agent_status_returns_previous(store: Arc<dyn Store>) {
    let a = agent("a", None, 1);
    store.create_agent(&a).await.unwrap();
    assert_eq!(store.set_agent_status(a.id, AgentStatus::Executing).await.unwrap(), AgentStatus::Idle);
    assert_eq!(store.set_agent_status(a.id, AgentStatus::Blocked).await.unwrap(), AgentStatus::Executing);
    assert_eq!(store.set_agent_status(a.id, AgentStatus::Blocked).await.unwrap(), AgentStatus::Blocked);
    let got = store.get_agent(a.id).await.unwrap().unwrap();
    assert_eq!(got.status, AgentStatus::Blocked);
    assert_eq!(got.usage, a.usage, "other fields untouched");
    for s in [AgentStatus::Waiting, AgentStatus::Complete, AgentStatus::Idle] {
        store.set_agent_status(a.id, s).await.unwrap();
        assert_eq!(store.get_agent(a.id).await.unwrap().unwrap().status, s, "every status is stored");
    }
}

/// `save_agent_state` round-trips the JSON state and session id; `None` clears them.
pub async fn agent_state_round_trips(store: Arc<dyn Store>) {
    let a = agent("a", None, 1);
    store.create_agent(&a).await.unwrap();
    let state = serde_json::json!({
        "messages": [{"role": "user", "content": [{"type": "text", "text": "héllo \"there\"\n"}]}],
        "pending": [{"id": "toolu_1", "input": {"n": u64::MAX, "f": 0.1, "neg": -5}}],
        "empty": {}, "null": null, "flag": false,
    });
    store.save_agent_state(a.id, Some(&state), Some("sess-123")).await.unwrap();
    let got = store.get_agent(a.id).await.unwrap().unwrap();
    assert_eq!(store.load_executor_state(a.id).await.unwrap().as_ref(), Some(&state), "state round-trips");
    assert_eq!(got.session_id.as_deref(), Some("sess-123"));
    assert_eq!(got.name, a.name, "other fields untouched");

    store.save_agent_state(a.id, None, None).await.unwrap();
    let got = store.get_agent(a.id).await.unwrap().unwrap();
    assert_eq!(store.load_executor_state(a.id).await.unwrap(), None, "None clears the state");
    assert_eq!(got.session_id, None, "None clears the session");
}

/// `add_agent_usage` is a single atomic increment: 50 concurrent adds are all counted.
pub async fn agent_usage_is_atomic(store: Arc<dyn Store>) {
    let mut a = agent("a", None, 1);
    a.usage = Usage::default();
    a.total_cost_usd = 0.0;
    store.create_agent(&a).await.unwrap();
    let once = Usage { input_tokens: 1, output_tokens: 2, cache_read_input_tokens: 3, cache_creation_input_tokens: 4 };
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move { store.add_agent_usage(a.id, once, 0.01).await.unwrap() }));
    }
    // Commits do not return rows; atomicity shows in the total (read-modify-writes would lose some).
    for t in tasks {
        t.await.expect("task panicked");
    }
    let got = store.get_agent(a.id).await.unwrap().unwrap();
    assert_eq!(
        got.usage,
        Usage { input_tokens: 50, output_tokens: 100, cache_read_input_tokens: 150, cache_creation_input_tokens: 200 },
        "50 concurrent increments are all counted"
    );
    assert!((got.total_cost_usd - 0.50).abs() < 1e-9, "cost is 0.50, got {}", got.total_cost_usd);
}

/// Metadata is replaced; archive keeps the agent readable.
pub async fn agent_metadata_and_archive(store: Arc<dyn Store>) {
    let a = agent("a", None, 1);
    store.create_agent(&a).await.unwrap();
    let meta = serde_json::json!({"colour": "blue", "n": [1, 2, 3], "deep": {"k": "v"}});
    store.set_agent_metadata(a.id, &meta).await.unwrap();
    assert_eq!(store.get_agent(a.id).await.unwrap().unwrap().metadata, meta);
    let replaced = serde_json::json!({"only": 1});
    store.set_agent_metadata(a.id, &replaced).await.unwrap();
    assert_eq!(store.get_agent(a.id).await.unwrap().unwrap().metadata, replaced, "metadata is replaced");
    store.archive_agent(a.id).await.unwrap();
    let got = store.get_agent(a.id).await.unwrap().unwrap();
    assert!(got.archived);
    assert_eq!(got.metadata, replaced);
}

/// Updates of unknown entities fail with `NotFound`.
pub async fn missing_entities_are_not_found(store: Arc<dyn Store>) {
    let id = new_id();
    let mut o = orchestrator(1);
    o.id = id;
    assert!(is_not_found(store.update_orchestrator(&o).await), "update_orchestrator");
    assert!(is_not_found(store.set_agent_status(id, AgentStatus::Executing).await), "set_agent_status");
    assert!(is_not_found(store.save_agent_state(id, None, None).await), "save_agent_state");
    assert!(is_not_found(store.add_agent_usage(id, Usage::default(), 1.0).await), "add_agent_usage");
    assert!(is_not_found(store.set_agent_metadata(id, &serde_json::json!({})).await), "set_agent_metadata");
    assert!(is_not_found(store.archive_agent(id).await), "archive_agent");
    assert!(is_not_found(store.commit_step(StepCommit { agent_id: id, ..StepCommit::default() }).await), "commit_step");
    assert_eq!(store.get_orchestrator(id).await.unwrap(), None, "nothing was created");
    assert_eq!(store.get_agent(id).await.unwrap(), None, "nothing was created");
}

/// An agent's prompts, oldest first, and only its own.
pub async fn prompts_oldest_first(store: Arc<dyn Store>) {
    let a = agent("a", None, 1);
    let b = agent("b", None, 2);
    store.create_agent(&a).await.unwrap();
    store.create_agent(&b).await.unwrap();
    let pa: Vec<_> = (0..4).map(|i| prompt(Some(a.id), 10 + i)).collect();
    store.insert_prompt(&prompt(Some(b.id), 11)).await.unwrap();
    store.insert_prompt(&prompt(None, 12)).await.unwrap();
    for p in &pa {
        store.insert_prompt(p).await.unwrap();
    }
    assert_eq!(store.list_prompts(a.id).await.unwrap(), pa, "prompts round-trip, oldest first");
    assert_eq!(store.list_prompts(b.id).await.unwrap().len(), 1);
    assert!(store.list_prompts(new_id()).await.unwrap().is_empty());
}

/// The latest N chat messages of an orchestrator, oldest first.
pub async fn chat_latest_oldest_first(store: Arc<dyn Store>) {
    let o1 = orchestrator(1);
    let o2 = orchestrator(2);
    store.create_orchestrator(&o1).await.unwrap();
    store.create_orchestrator(&o2).await.unwrap();
    let mut m1 = Vec::new();
    for i in 0..6 {
        let mut m = chat(o1.id, 10 + i, &format!("message {i} 💬"));
        if i == 3 {
            m.agent_id = Some(new_id());
            m.receiver = Participant::Agent;
            m.summary = None;
        }
        store.insert_chat(&m).await.unwrap();
        m1.push(m);
        store.insert_chat(&chat(o2.id, 20 + i, "other")).await.unwrap();
    }
    assert_eq!(store.list_chat(o1.id, 3).await.unwrap(), m1[3..].to_vec(), "latest 3, oldest first");
    assert_eq!(store.list_chat(o1.id, 100).await.unwrap(), m1, "all, oldest first");
    assert!(store.list_chat(o1.id, 0).await.unwrap().is_empty(), "limit 0");
    assert!(store.list_chat(new_id(), 10).await.unwrap().is_empty());
}

/// System logs: newest first, offset/limit, case-insensitive `message_contains`, exact level.
pub async fn system_logs_filters_and_paging(store: Arc<dyn Store>) {
    let specs = [
        (LogLevel::Info, "Server started"),
        (LogLevel::Debug, "tick"),
        (LogLevel::Error, "Disk ERROR on /dev/sda"),
        (LogLevel::Warning, "disk almost full"),
        (LogLevel::Info, "Agent builder created"),
        (LogLevel::Error, "model error: 529 overloaded"),
        (LogLevel::Info, "ÉCOLE résumé"),
        (LogLevel::Debug, "tock"),
        (LogLevel::Info, "100% done_ [x]"),
        (LogLevel::Info, "Server stopped"),
    ];
    let logs: Vec<_> = specs.iter().enumerate().map(|(i, (l, m))| log(*l, m, i as i64)).collect();
    for l in &logs {
        store.insert_system_log(l).await.unwrap();
    }
    let newest_first: Vec<_> = logs.iter().rev().cloned().collect();
    let q = |offset, limit| SystemLogQuery { offset, limit, ..SystemLogQuery::default() };
    assert_eq!(store.list_system_logs(&q(0, 100)).await.unwrap(), newest_first, "newest first");
    assert_eq!(store.list_system_logs(&q(0, 3)).await.unwrap(), newest_first[..3].to_vec(), "limit");
    assert_eq!(store.list_system_logs(&q(3, 4)).await.unwrap(), newest_first[3..7].to_vec(), "offset");
    assert_eq!(store.list_system_logs(&q(8, 10)).await.unwrap(), newest_first[8..].to_vec(), "last page");
    assert!(store.list_system_logs(&q(10, 10)).await.unwrap().is_empty(), "past the end");

    let contains =
        |s: &str| SystemLogQuery { limit: 100, message_contains: Some(s.to_string()), ..SystemLogQuery::default() };
    let msgs = |v: Vec<SystemLog>| v.into_iter().map(|l| l.message).collect::<Vec<_>>();
    assert_eq!(
        msgs(store.list_system_logs(&contains("error")).await.unwrap()),
        vec!["model error: 529 overloaded", "Disk ERROR on /dev/sda"],
        "message_contains is case-insensitive"
    );
    assert_eq!(
        msgs(store.list_system_logs(&contains("DISK")).await.unwrap()),
        vec!["disk almost full", "Disk ERROR on /dev/sda"]
    );
    assert_eq!(msgs(store.list_system_logs(&contains("école")).await.unwrap()), vec!["ÉCOLE résumé"], "unicode");
    assert_eq!(
        msgs(store.list_system_logs(&contains("% done_")).await.unwrap()),
        vec!["100% done_ [x]"],
        "no wildcard interpretation"
    );
    assert!(store.list_system_logs(&contains("%")).await.unwrap().len() == 1, "'%' is literal");
    assert!(store.list_system_logs(&contains("_")).await.unwrap().len() == 1, "'_' is literal");
    assert!(store.list_system_logs(&contains("nothing like this")).await.unwrap().is_empty());

    let level = |l| SystemLogQuery { limit: 100, level: Some(l), ..SystemLogQuery::default() };
    assert_eq!(
        msgs(store.list_system_logs(&level(LogLevel::Debug)).await.unwrap()),
        vec!["tock", "tick"],
        "exact level"
    );
    let both =
        SystemLogQuery { offset: 1, limit: 1, level: Some(LogLevel::Info), message_contains: Some("server".into()) };
    assert_eq!(msgs(store.list_system_logs(&both).await.unwrap()), vec!["Server started"], "filters + paging");
}

/// Workflows: upsert inserts then replaces; get; list newest first with orchestrator filter and limit.
pub async fn workflows_upsert_get_list(store: Arc<dyn Store>) {
    let o = orchestrator(1);
    store.create_orchestrator(&o).await.unwrap();
    let w1 = workflow(Some(o.id), 1);
    let w2 = workflow(Some(o.id), 2);
    let w3 = workflow(None, 3);
    for w in [&w2, &w3, &w1] {
        store.upsert_workflow(w).await.unwrap();
    }
    assert_eq!(store.get_workflow(w1.id).await.unwrap().as_ref(), Some(&w1), "workflow round-trips");
    assert_eq!(store.get_workflow(new_id()).await.unwrap(), None);

    let mut done = w1.clone();
    done.status = WorkflowStatus::Completed;
    done.current_step = Some("review".into());
    done.completed_steps = 4;
    done.started_at = Some(ts(100));
    done.completed_at = Some(ts(160));
    done.duration_seconds = Some(60);
    done.output_data = serde_json::json!({"verdict": "PASS", "files": ["a.rs"]});
    done.error_message = Some("transient".into());
    done.error_step = Some("build".into());
    done.error_count = 1;
    done.updated_at = ts(160);
    store.upsert_workflow(&done).await.unwrap();
    assert_eq!(store.get_workflow(w1.id).await.unwrap().as_ref(), Some(&done), "upsert replaces");

    let all = store.list_workflows(None, 100).await.unwrap();
    assert_eq!(ids(&all, |w| w.id), vec![w3.id, w2.id, w1.id], "newest first, one row per id");
    let of_o = store.list_workflows(Some(o.id), 100).await.unwrap();
    assert_eq!(ids(&of_o, |w| w.id), vec![w2.id, w1.id], "orchestrator filter");
    let limited = store.list_workflows(None, 2).await.unwrap();
    assert_eq!(ids(&limited, |w| w.id), vec![w3.id, w2.id], "limit");
}

/// The process running a workflow: claimed, renewed, taken over and released only by a
/// compare-and-swap; an upsert of the record never changes it; a conflict names the holder.
pub async fn workflow_run_is_compare_and_swap(store: Arc<dyn Store>) {
    use crate::store::{Batch, Change};
    let w = workflow(None, 1);
    store.upsert_workflow(&w).await.unwrap();
    let lease = |i: i64| crate::wire::RunLease {
        run_id: new_id(),
        task_slug: None,
        pid: 4000 + u32::try_from(i).unwrap(),
        process_start: Some(7),
        host: "host-a".into(),
        started_at: ts(i),
        expires_at: ts(i + 30),
    };
    let swap = |expect: Option<Id>, lease: Option<crate::wire::RunLease>| {
        Batch::new().change(Change::SwapWorkflowRun { workflow_id: w.id, expect, lease })
    };
    let first = lease(1);
    store.commit(swap(None, Some(first.clone()))).await.unwrap();
    assert_eq!(store.get_workflow(w.id).await.unwrap().unwrap().run.as_ref(), Some(&first), "claimed");

    // A second claimer expecting no holder loses, and learns who holds it.
    let second = lease(2);
    match store.commit(swap(None, Some(second.clone()))).await {
        Err(StoreError::WorkflowRunConflict { workflow_id, current }) => {
            assert_eq!(workflow_id, w.id);
            assert_eq!(current.as_deref(), Some(&first), "the conflict names the holder");
        }
        other => panic!("a second claim must conflict, got {other:?}"),
    }

    // An upsert (every step's record save) keeps the holder.
    let mut saved = w.clone();
    saved.status = WorkflowStatus::InProgress;
    saved.updated_at = ts(3);
    store.upsert_workflow(&saved).await.unwrap();
    let read = store.get_workflow(w.id).await.unwrap().unwrap();
    assert_eq!(read.status, WorkflowStatus::InProgress);
    assert_eq!(read.run.as_ref(), Some(&first), "an upsert does not touch the holder");
    let listed = store.list_workflows(None, 10).await.unwrap();
    assert_eq!(listed[0].run.as_ref(), Some(&first), "listed with its holder");

    // A failed swap inside a batch rolls the whole batch back.
    let mut lost = saved.clone();
    lost.status = WorkflowStatus::Failed;
    let batch = Batch::new().change(Change::UpsertWorkflow(Box::new(lost))).change(Change::SwapWorkflowRun {
        workflow_id: w.id,
        expect: Some(second.run_id),
        lease: None,
    });
    assert!(store.commit(batch).await.is_err());
    assert_eq!(store.get_workflow(w.id).await.unwrap().unwrap().status, WorkflowStatus::InProgress, "rolled back");

    // Take-over from the expected holder, then release.
    store.commit(swap(Some(first.run_id), Some(second.clone()))).await.unwrap();
    assert_eq!(store.get_workflow(w.id).await.unwrap().unwrap().run.as_ref(), Some(&second), "taken over");
    store.commit(swap(Some(second.run_id), None)).await.unwrap();
    assert_eq!(store.get_workflow(w.id).await.unwrap().unwrap().run, None, "released");
    assert!(
        matches!(
            store.commit(swap(Some(second.run_id), None)).await,
            Err(StoreError::WorkflowRunConflict { current: None, .. })
        ),
        "releasing twice conflicts"
    );
    let unknown = Batch::new().change(Change::SwapWorkflowRun { workflow_id: new_id(), expect: None, lease: None });
    assert!(is_not_found(store.commit(unknown).await), "an unknown workflow is not found");
}
