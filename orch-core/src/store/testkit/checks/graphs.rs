//! Checks of plans, task graphs and tasks.

use super::*;
use crate::store::{Batch, Change};

/// Plan versions are rows of their own: the latest is read by default, any version on request; the
/// listing shows each plan once, at its latest version; an upsert replaces one version only.
pub async fn plans_are_versioned(store: Arc<dyn Store>) {
    let p1 = plan(1);
    let other = plan(2);
    store.insert_plan(&p1).await.unwrap();
    store.insert_plan(&other).await.unwrap();
    assert_eq!(store.get_plan(p1.id, None).await.unwrap().as_ref(), Some(&p1), "plan round-trips");
    assert_eq!(store.get_plan(new_id(), None).await.unwrap(), None);
    assert_eq!(store.get_plan(p1.id, Some(2)).await.unwrap(), None, "no such version yet");

    // Version 2 revises the tasks; version 1 is superseded in the same batch.
    let mut old = p1.clone();
    old.status = PlanStatus::Superseded;
    old.updated_at = ts(10);
    let mut v2 = p1.clone();
    v2.version = 2;
    v2.tasks.truncate(2);
    v2.model = None;
    v2.source_file = Some("plans/ü plan.json".into());
    v2.created_at = ts(10);
    v2.updated_at = ts(10);
    store
        .commit(
            Batch::new()
                .change(Change::UpsertPlan(Box::new(old.clone())))
                .change(Change::InsertPlan(Box::new(v2.clone()))),
        )
        .await
        .unwrap();
    // A second version 2 (a revision made at the same time) is refused, with its batch.
    let mut rival = v2.clone();
    rival.tasks.truncate(1);
    let last = store.last_seq().await.unwrap();
    let r = store
        .commit(
            Batch::new()
                .change(Change::InsertPlan(Box::new(rival.clone())))
                .event(EventKeys::default(), Event::PlanUpdated { plan: Box::new(rival) }),
        )
        .await;
    assert!(matches!(r, Err(StoreError::Duplicate { .. })), "a version is written once: {r:?}");
    assert_eq!(store.last_seq().await.unwrap(), last, "nothing of the refused batch is stored");
    assert_eq!(store.get_plan(p1.id, None).await.unwrap().as_ref(), Some(&v2), "the latest version by default");
    assert_eq!(store.get_plan(p1.id, Some(1)).await.unwrap().as_ref(), Some(&old), "an older version on request");

    let mut approved = v2.clone();
    approved.status = PlanStatus::Approved;
    approved.updated_at = ts(11);
    store.upsert_plan(&approved).await.unwrap();
    assert_eq!(store.get_plan(p1.id, Some(2)).await.unwrap().as_ref(), Some(&approved), "upsert replaces");
    assert_eq!(store.get_plan(p1.id, Some(1)).await.unwrap().as_ref(), Some(&old), "other versions untouched");

    let all = store.list_plans(100).await.unwrap();
    assert_eq!(all, vec![approved.clone(), other.clone()], "latest versions, newest first");
    assert_eq!(store.list_plans(1).await.unwrap(), vec![approved], "limit");
}

/// Graphs round-trip, an upsert replaces, the listing is newest first.
pub async fn graphs_upsert_get_list(store: Arc<dyn Store>) {
    let p = plan(1);
    let g1 = graph(Some(p.id), 1);
    let g2 = graph(None, 2);
    store.upsert_graph(&g2).await.unwrap();
    store.upsert_graph(&g1).await.unwrap();
    assert_eq!(store.get_graph(g1.id).await.unwrap().as_ref(), Some(&g1), "graph round-trips");
    assert_eq!(store.get_graph(new_id()).await.unwrap(), None);

    let mut running = g1.clone();
    running.status = GraphStatus::Paused;
    // Its spending is the store's (SettleBudget); an upsert keeps it.
    running.cost_usd = 1.25;
    running.budget_usd = None;
    running.error = Some("budget_exhausted: $2.50 of $2.50".into());
    running.started_at = Some(ts(5));
    running.updated_at = ts(6);
    store.upsert_graph(&running).await.unwrap();
    running.cost_usd = g1.cost_usd;
    assert_eq!(store.get_graph(g1.id).await.unwrap().as_ref(), Some(&running), "upsert replaces, keeps the cost");
    let all = store.list_graphs(100).await.unwrap();
    assert_eq!(ids(&all, |g| g.id), vec![g2.id, g1.id], "newest first, one row per id");
    assert_eq!(ids(&store.list_graphs(1).await.unwrap(), |g| g.id), vec![g2.id], "limit");
}

/// Tasks added to a graph at the same time (`AddTask`, each caller having read the same count) take
/// distinct positions after the graph's tasks, an empty key becoming the default of its position; the
/// graph counts them; each batch's `TaskUpdated` holds its task as stored. An added task is ready when
/// its dependencies completed or were skipped (or it has none), else pending. A taken key, or an ended
/// graph, refuses the add and stores nothing of it.
pub async fn added_tasks_take_the_next_positions(store: Arc<dyn Store>) {
    let g = graph(None, 1);
    let a = task(g.id, 0, 1, vec![], 1);
    let b = task(g.id, 1, 1, vec![], 2);
    let c = task(g.id, 2, 2, vec![a.id], 3);
    store
        .commit(Batch::new().change(Change::UpsertGraph(Box::new(g.clone()))).change(Change::InsertTasks(vec![
            a.clone(),
            b.clone(),
            c.clone(),
        ])))
        .await
        .unwrap();
    // Eight adds at once, every one built at position 3 (the count its caller read), half without a key.
    let adds = (0..8).map(|i| {
        let mut t = task(g.id, 3, if i % 2 == 0 { 2 } else { 5 }, if i % 2 == 0 { vec![a.id] } else { vec![] }, 10 + i);
        t.key = if i % 2 == 0 { String::new() } else { format!("named-{i}") };
        let store = store.clone();
        async move {
            let recs = store.commit(Batch::new().change(Change::AddTask(Box::new(t.clone())))).await.unwrap();
            (t, recs)
        }
    });
    let added = futures::future::join_all(adds).await;
    let mut positions = Vec::new();
    for (sent, recs) in &added {
        let stored = store.get_task(sent.id).await.unwrap().expect("an added task is stored");
        let recorded = match recs.first().map(|r| &r.event) {
            Some(Event::TaskUpdated { task }) => (**task).clone(),
            other => panic!("an add records its task first, got {other:?}"),
        };
        assert_eq!(recorded, stored, "the event holds the task as stored");
        if sent.key.is_empty() {
            assert_eq!(stored.key, Task::default_key(stored.index), "an empty key is its position's default");
        } else {
            assert_eq!(stored.key, sent.key, "a given key is kept");
        }
        let mut expect = sent.clone();
        expect.index = stored.index;
        expect.key = stored.key.clone();
        // Ready without dependencies; pending behind `a`, which has not completed.
        expect.status = if sent.depends_on.is_empty() { TaskStatus::Ready } else { TaskStatus::Pending };
        assert_eq!(stored, expect, "nothing else of the task changes");
        positions.push(stored.index);
    }
    positions.sort_unstable();
    assert_eq!(positions, (3..11).collect::<Vec<u32>>(), "distinct positions after the graph's tasks");
    let grown = store.get_graph(g.id).await.unwrap().unwrap();
    assert_eq!((grown.total_tasks, grown.waves), (11, 5), "counted, waves raised to the highest added");
    // The graph's row is recorded (once per add, or once for adds committed together): the last
    // record is the row as stored.
    let recorded: Vec<TaskGraph> = added
        .iter()
        .flat_map(|(_, recs)| recs.iter())
        .filter_map(|r| match &r.event {
            Event::GraphUpdated { graph } if graph.id == g.id => Some((**graph).clone()),
            _ => None,
        })
        .collect();
    assert_eq!(recorded.iter().max_by_key(|g| g.total_tasks), Some(&grown), "the graph's row is recorded");
    let listed: Vec<u32> = store.list_tasks(g.id).await.unwrap().iter().map(|t| t.index).collect();
    assert_eq!(listed, (0..11).collect::<Vec<u32>>());
    let children: Vec<Id> = added.iter().filter(|(t, _)| !t.depends_on.is_empty()).map(|(t, _)| t.id).collect();
    let found = store.find_tasks(g.id, &children.iter().map(Id::to_string).collect::<Vec<_>>()).await.unwrap();
    assert!(found.iter().all(|t| t.depends_on == vec![a.id]), "their dependencies are stored: {found:?}");

    // Behind tasks that completed or were skipped, an added task is ready, whatever it says.
    let mut done = b.clone();
    done.status = TaskStatus::Completed;
    let mut skipped = c.clone();
    skipped.status = TaskStatus::Skipped;
    let mut finish = Batch::new();
    for t in [done, skipped] {
        finish.push_change(Change::UpdateTask { task: Box::new(t), fence: None });
    }
    store.commit(finish).await.unwrap();
    let mut behind = task(g.id, 0, 3, vec![b.id, c.id], 20);
    behind.key = String::new();
    store.commit(Batch::new().change(Change::AddTask(Box::new(behind.clone())))).await.unwrap();
    let behind = store.get_task(behind.id).await.unwrap().unwrap();
    assert_eq!((behind.index, behind.status), (11, TaskStatus::Ready));
    let mut lone = task(g.id, 0, 1, vec![], 21);
    (lone.key, lone.status) = (String::new(), TaskStatus::Completed);
    store.commit(Batch::new().change(Change::AddTask(Box::new(lone.clone())))).await.unwrap();
    assert_eq!(store.get_task(lone.id).await.unwrap().unwrap().status, TaskStatus::Ready, "a new task is not done");
    let counted = 13;

    // A taken key: refused, nothing stored, no event, the graph not counted.
    let last = store.last_seq().await.unwrap();
    let mut dup = task(g.id, 0, 1, vec![], 30);
    dup.key = "named-1".into();
    let r = store.commit(Batch::new().change(Change::AddTask(Box::new(dup.clone())))).await;
    match &r {
        Err(StoreError::Duplicate { what }) => assert!(what.contains("'named-1'"), "the key is named: {what}"),
        other => panic!("a key the graph has must be a duplicate, got {other:?}"),
    }
    assert_eq!(store.get_task(dup.id).await.unwrap(), None);
    assert_eq!(store.last_seq().await.unwrap(), last);
    assert_eq!(store.get_graph(g.id).await.unwrap().unwrap().total_tasks, counted, "not counted");

    // An ended graph takes no task; a missing one is not found.
    let end = Change::SetGraphStatus {
        id: g.id,
        status: GraphStatus::Cancelled,
        error: None,
        from: vec![GraphStatus::Pending],
    };
    store.commit(Batch::new().change(end)).await.unwrap();
    let mut late = task(g.id, 0, 1, vec![], 31);
    late.key = String::new();
    let r = store.commit(Batch::new().change(Change::AddTask(Box::new(late.clone())))).await;
    assert!(matches!(r, Err(StoreError::GraphEnded { .. })), "an ended graph: {r:?}");
    assert_eq!(store.get_task(late.id).await.unwrap(), None);
    let nowhere = task(new_id(), 0, 1, vec![], 32);
    let r = store.commit(Batch::new().change(Change::AddTask(Box::new(nowhere)))).await;
    assert!(is_not_found(r), "a missing graph");
}

/// Tasks are inserted in one batch and listed by index; a taken id or a key the graph has fails the
/// whole batch; an update writes the progress and keeps the definition.
pub async fn tasks_insert_list_and_update(store: Arc<dyn Store>) {
    let g = graph(None, 1);
    let other = graph(None, 2);
    let a = task(g.id, 0, 1, vec![], 1);
    let b = task(g.id, 1, 2, vec![a.id], 2);
    let c = task(g.id, 2, 2, vec![a.id], 3);
    let elsewhere = task(other.id, 0, 1, vec![], 4);
    store
        .commit(Batch::new().change(Change::UpsertGraph(Box::new(g.clone()))).change(Change::InsertTasks(vec![
            c.clone(),
            a.clone(),
            b.clone(),
        ])))
        .await
        .unwrap();
    // The same key in another graph is fine.
    store.insert_tasks(std::slice::from_ref(&elsewhere)).await.unwrap();
    assert_eq!(store.list_tasks(g.id).await.unwrap(), vec![a.clone(), b.clone(), c.clone()], "by index");
    assert_eq!(store.get_task(b.id).await.unwrap().as_ref(), Some(&b), "task round-trips");
    assert_eq!(store.get_task(new_id()).await.unwrap(), None);
    assert_eq!(store.list_tasks(new_id()).await.unwrap(), Vec::<Task>::new());
    // Found by key, id or index, by index, each once, in its graph only.
    let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let find = |names: Vec<String>| {
        let store = store.clone();
        async move { store.find_tasks(g.id, &names).await.unwrap() }
    };
    assert_eq!(find(names(&["task-3", &a.id.to_string(), "1"])).await, vec![a.clone(), b.clone(), c.clone()]);
    assert_eq!(find(names(&["task-2", "task-2", &b.id.to_string()])).await, vec![b.clone()], "once");
    assert_eq!(find(names(&["nope", "7", &elsewhere.id.to_string(), ""])).await, Vec::<Task>::new());
    assert_eq!(find(Vec::new()).await, Vec::<Task>::new());
    assert_eq!(store.find_tasks(other.id, &names(&["task-1"])).await.unwrap(), vec![elsewhere.clone()]);

    // A duplicate key fails the batch: the new task before it is not stored either, nor the event.
    let fresh = task(g.id, 3, 3, vec![b.id], 5);
    let mut dup_key = task(g.id, 4, 1, vec![], 6);
    dup_key.key = a.key.clone();
    let last = store.last_seq().await.unwrap();
    let r = store
        .commit(
            Batch::new()
                .change(Change::InsertTasks(vec![fresh.clone(), dup_key]))
                .event(EventKeys::default(), Event::TaskUpdated { task: Box::new(fresh.clone()) }),
        )
        .await;
    match &r {
        Err(StoreError::Duplicate { what }) => assert!(what.contains("'task-1'"), "the key is named: {what}"),
        other => panic!("a key the graph has must be a duplicate, got {other:?}"),
    }
    assert_eq!(store.get_task(fresh.id).await.unwrap(), None, "nothing of the batch is stored");
    assert_eq!(store.last_seq().await.unwrap(), last, "nor its event");
    let r = store.insert_tasks(std::slice::from_ref(&a)).await;
    assert!(matches!(r, Err(StoreError::Duplicate { .. })), "a taken id: {r:?}");

    // Progress is written; the definition stays as inserted.
    let mut running = b.clone();
    running.status = TaskStatus::Running;
    running.attempt = 1;
    running.model = Some("anthropic:claude-haiku-4-5".into());
    running.claimed_by = Some("worker «1»".into());
    running.lease_until = Some(ts(40));
    running.not_before = Some(ts(20));
    running.agent_id = Some(new_id());
    running.cost_usd = 0.75;
    running.output = Some("partial\noutput".into());
    running.error = Some("first try timed out".into());
    running.started_at = Some(ts(21));
    running.updated_at = ts(22);
    let mut edited = running.clone();
    edited.title = "a new title".into();
    edited.description = "changed".into();
    edited.depends_on = vec![];
    edited.wave = 9;
    edited.key = "renamed".into();
    store.update_task(&edited, None).await.unwrap();
    assert_eq!(store.get_task(b.id).await.unwrap().as_ref(), Some(&running), "progress written, definition kept");

    let mut done = running.clone();
    done.status = TaskStatus::Completed;
    done.claimed_by = None;
    done.lease_until = None;
    done.not_before = None;
    done.error = None;
    done.completed_at = Some(ts(30));
    done.updated_at = ts(30);
    store.update_task(&done, None).await.unwrap();
    assert_eq!(store.list_tasks(g.id).await.unwrap(), vec![a, done, c], "cleared fields read back as none");

    let missing = task(g.id, 9, 1, vec![], 9);
    assert!(is_not_found(store.update_task(&missing, None).await), "updating a missing task");
    assert!(is_not_found(store.update_task(&missing, Some(0)).await), "fenced update of a missing task");
}

/// A graph's facts are the knowledge of its completed tasks, task by task in index order: not that of
/// tasks that did not complete (a failed attempt's report), nor of another graph's.
pub async fn graph_facts_are_those_of_completed_tasks(store: Arc<dyn Store>) {
    use crate::wire::Fact;
    let fact =
        |text: &str, tags: &[&str]| Fact { text: text.into(), tags: tags.iter().map(|t| t.to_string()).collect() };
    let g = graph(None, 1);
    let other = graph(None, 2);
    let tasks: Vec<Task> = (0..4).map(|i| task(g.id, i, 1, vec![], i64::from(i))).collect();
    let elsewhere = task(other.id, 0, 1, vec![], 9);
    // Inserted out of index order: the answer follows the index, not the insertion.
    store.insert_tasks(&[tasks[3].clone(), tasks[1].clone(), tasks[0].clone(), tasks[2].clone()]).await.unwrap();
    store.insert_tasks(std::slice::from_ref(&elsewhere)).await.unwrap();
    assert_eq!(store.graph_facts(g.id).await.unwrap(), Vec::<Fact>::new(), "nothing completed yet");

    let done = |t: &Task, status: TaskStatus, knowledge: Vec<Fact>| {
        let mut t = t.clone();
        t.status = status;
        t.attempt = 1;
        t.knowledge = knowledge;
        t
    };
    let updates = [
        done(&tasks[3], TaskStatus::Completed, vec![fact("the API is paged «ü»", &["code"])]),
        done(&tasks[0], TaskStatus::Completed, vec![fact("uses tokio", &[]), fact("tests need CI=true", &["test"])]),
        done(&tasks[1], TaskStatus::Completed, Vec::new()),
        done(&tasks[2], TaskStatus::Ready, vec![fact("from a failed attempt", &[])]),
        done(&elsewhere, TaskStatus::Completed, vec![fact("another graph's", &[])]),
    ];
    for t in &updates {
        store.update_task(t, Some(0)).await.unwrap();
    }
    let facts = store.graph_facts(g.id).await.unwrap();
    let texts: Vec<&str> = facts.iter().map(|f| f.text.as_str()).collect();
    assert_eq!(texts, ["uses tokio", "tests need CI=true", "the API is paged «ü»"], "completed tasks', by index");
    assert_eq!(facts[1].tags, ["test"], "tags round-trip");
    assert_eq!(store.graph_facts(other.id).await.unwrap(), vec![fact("another graph's", &[])]);
    assert_eq!(store.graph_facts(new_id()).await.unwrap(), Vec::<Fact>::new(), "an unknown graph has none");
}

/// A fenced update succeeds only at the attempt it names: a late worker cannot overwrite the attempt
/// that took over, and its failed batch stores nothing.
pub async fn task_updates_are_fenced(store: Arc<dyn Store>) {
    let g = graph(None, 1);
    let t = task(g.id, 0, 1, vec![], 1);
    store.insert_tasks(std::slice::from_ref(&t)).await.unwrap();

    let mut first = t.clone();
    first.status = TaskStatus::Running;
    first.attempt = 1;
    first.claimed_by = Some("worker-a".into());
    store.update_task(&first, Some(0)).await.unwrap();

    // Worker b takes over after a's lease expired: attempt 2.
    let mut second = first.clone();
    second.attempt = 2;
    second.claimed_by = Some("worker-b".into());
    store.update_task(&second, Some(1)).await.unwrap();

    // Worker a comes back and tries to complete attempt 1.
    let mut late = first.clone();
    late.status = TaskStatus::Completed;
    late.output = Some("stale result".into());
    let last = store.last_seq().await.unwrap();
    let r = store
        .commit(
            Batch::new()
                .change(Change::UpdateTask { task: Box::new(late.clone()), fence: Some(1) })
                .event(EventKeys::default(), Event::TaskUpdated { task: Box::new(late) }),
        )
        .await;
    match r {
        Err(StoreError::Fenced { task_id, expected, found }) => assert_eq!((task_id, expected, found), (t.id, 1, 2)),
        other => panic!("a late worker's write must be fenced off, got {other:?}"),
    }
    assert_eq!(store.get_task(t.id).await.unwrap().as_ref(), Some(&second), "the successor's state stands");
    assert_eq!(store.last_seq().await.unwrap(), last, "the late write's event is not appended");

    let mut finished = second.clone();
    finished.status = TaskStatus::Completed;
    finished.output = Some("result".into());
    store.update_task(&finished, Some(2)).await.unwrap();
    assert_eq!(store.get_task(t.id).await.unwrap().as_ref(), Some(&finished));
}
