//! A task added to a running graph while its dependency completes: `add_task` reads the graph, then
//! another writer completes the dependency (and changes the graph's limit) before `add_task` commits.
//! Made deterministic by a store that runs that other writer's commit just before the one inserting
//! the task.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use orch_core::ErrorKind;
use orch_core::graph::{NewTask, PlanOrigin, TaskGraphs, read_plan_text};
use orch_core::store::{
    AgentFilter, Batch, Change, EventQuery, EventStream, MemoryStore, Store, StoreResult, StoreStatus, SystemLogQuery,
};
use orch_core::wire::{
    Agent, BudgetStatus, ChatMessage, EventRecord, GraphStatus, Id, Message, Orchestrator, Plan, Prompt, SystemLog,
    Task, TaskGraph, TaskStatus, Timestamp, WorkerInfo, WorkflowRecord, now,
};

/// A store that commits `cut_in` right before the first batch that inserts tasks.
struct CutIn {
    inner: MemoryStore,
    cut_in: Mutex<Option<Batch>>,
}

#[async_trait]
impl Store for CutIn {
    async fn commit(&self, batch: Batch) -> StoreResult<Vec<EventRecord>> {
        if batch.changes.iter().any(|c| matches!(c, Change::InsertTasks(_))) {
            let first = self.cut_in.lock().unwrap().take();
            if let Some(first) = first {
                self.inner.commit(first).await.unwrap();
            }
        }
        self.inner.commit(batch).await
    }
    async fn get_orchestrator(&self, id: Id) -> StoreResult<Option<Orchestrator>> {
        self.inner.get_orchestrator(id).await
    }
    async fn list_orchestrators(&self, include_archived: bool) -> StoreResult<Vec<Orchestrator>> {
        self.inner.list_orchestrators(include_archived).await
    }
    async fn get_agent(&self, id: Id) -> StoreResult<Option<Agent>> {
        self.inner.get_agent(id).await
    }
    async fn find_agent(&self, orchestrator_id: Option<Id>, name: &str) -> StoreResult<Option<Agent>> {
        self.inner.find_agent(orchestrator_id, name).await
    }
    async fn list_agents(&self, filter: &AgentFilter) -> StoreResult<Vec<Agent>> {
        self.inner.list_agents(filter).await
    }
    async fn load_conversation(&self, agent_id: Id) -> StoreResult<Vec<Message>> {
        self.inner.load_conversation(agent_id).await
    }
    async fn load_executor_state(&self, agent_id: Id) -> StoreResult<Option<serde_json::Value>> {
        self.inner.load_executor_state(agent_id).await
    }
    async fn list_prompts(&self, agent_id: Id) -> StoreResult<Vec<Prompt>> {
        self.inner.list_prompts(agent_id).await
    }
    async fn list_chat(&self, orchestrator_id: Id, limit: usize) -> StoreResult<Vec<ChatMessage>> {
        self.inner.list_chat(orchestrator_id, limit).await
    }
    async fn list_system_logs(&self, query: &SystemLogQuery) -> StoreResult<Vec<SystemLog>> {
        self.inner.list_system_logs(query).await
    }
    async fn get_workflow(&self, id: Id) -> StoreResult<Option<WorkflowRecord>> {
        self.inner.get_workflow(id).await
    }
    async fn list_workflows(&self, orchestrator_id: Option<Id>, limit: usize) -> StoreResult<Vec<WorkflowRecord>> {
        self.inner.list_workflows(orchestrator_id, limit).await
    }
    async fn get_plan(&self, id: Id, version: Option<u32>) -> StoreResult<Option<Plan>> {
        self.inner.get_plan(id, version).await
    }
    async fn list_plans(&self, limit: usize) -> StoreResult<Vec<Plan>> {
        self.inner.list_plans(limit).await
    }
    async fn get_graph(&self, id: Id) -> StoreResult<Option<TaskGraph>> {
        self.inner.get_graph(id).await
    }
    async fn list_graphs(&self, limit: usize) -> StoreResult<Vec<TaskGraph>> {
        self.inner.list_graphs(limit).await
    }
    async fn get_task(&self, id: Id) -> StoreResult<Option<Task>> {
        self.inner.get_task(id).await
    }
    async fn list_tasks(&self, graph_id: Id) -> StoreResult<Vec<Task>> {
        self.inner.list_tasks(graph_id).await
    }
    async fn budget(&self, day: &str, month: &str) -> StoreResult<BudgetStatus> {
        self.inner.budget(day, month).await
    }
    async fn list_workers(&self) -> StoreResult<Vec<WorkerInfo>> {
        self.inner.list_workers().await
    }
    async fn read_events(&self, query: &EventQuery) -> StoreResult<Vec<EventRecord>> {
        self.inner.read_events(query).await
    }
    async fn last_seq(&self) -> StoreResult<u64> {
        self.inner.last_seq().await
    }
    async fn status(&self) -> StoreResult<StoreStatus> {
        self.inner.status().await
    }
    async fn prune_events(&self, before: Timestamp) -> StoreResult<u64> {
        self.inner.prune_events(before).await
    }
    fn subscribe(&self, since: u64) -> EventStream {
        self.inner.subscribe(since)
    }
    fn shared_with_other_processes(&self) -> bool {
        self.inner.shared_with_other_processes()
    }
}

/// A running graph of `plan` whose task `a` completed and `b` runs (attempt 1).
async fn running(store: &Arc<CutIn>, plan: &str) -> (TaskGraphs, TaskGraph, Vec<Task>) {
    let graphs = TaskGraphs::new(store.clone());
    let plan = graphs.create_plan("race", read_plan_text(plan).unwrap().tasks, PlanOrigin::default()).await.unwrap();
    graphs.approve(plan.id).await.unwrap();
    let (graph, mut tasks) = graphs.create_graph(plan.id, None).await.unwrap();
    let start =
        Change::SetGraphStatus { id: graph.id, status: GraphStatus::Running, error: None, from: vec![graph.status] };
    let at = now();
    tasks[0].status = TaskStatus::Completed;
    tasks[0].completed_at = Some(at);
    tasks[1].status = TaskStatus::Running;
    tasks[1].attempt = 1;
    tasks[1].claimed_by = Some("elsewhere".into());
    tasks[1].started_at = Some(at);
    let mut batch = Batch::new().change(start);
    for t in &tasks[..2] {
        batch.push_change(Change::UpdateTask { task: Box::new(t.clone()), fence: None });
    }
    store.commit(batch).await.unwrap();
    (graphs, graph, tasks)
}

/// `b` completing (its worker's commit) and the graph's limit raised, by other writers.
fn b_completes(graph: &TaskGraph, b: &Task) -> Batch {
    let mut done = b.clone();
    done.status = TaskStatus::Completed;
    done.completed_at = Some(now());
    done.claimed_by = None;
    Batch::new()
        .change(Change::FinishTask { task: Box::new(done), fence: 1 })
        .change(Change::SetGraphBudget { id: graph.id, limit_usd: Some(5.0) })
}

#[tokio::test]
async fn a_task_added_while_its_dependency_completes_is_released_and_the_graph_keeps_its_limit() {
    let store = Arc::new(CutIn { inner: MemoryStore::new(), cut_in: Mutex::new(None) });
    let plan =
        r#"[{"id": "a", "title": "A"}, {"id": "b", "title": "B", "depends_on": ["a"]}, {"id": "x", "title": "X"}]"#;
    let (graphs, graph, tasks) = running(&store, plan).await;
    *store.cut_in.lock().unwrap() = Some(b_completes(&graph, &tasks[1]));

    let c = graphs
        .add_task(
            graph.id,
            NewTask { key: "c".into(), title: "C".into(), depends_on: vec!["b".into()], ..NewTask::default() },
        )
        .await
        .unwrap();
    assert!(store.cut_in.lock().unwrap().is_none(), "the other writer's commit came between read and commit");

    // b's completion could not see c; add_task looked again after its commit and released it.
    assert_eq!(c.status, TaskStatus::Ready);
    assert_eq!(store.get_task(c.id).await.unwrap().unwrap().status, TaskStatus::Ready);
    let (after, all) = graphs.graph(graph.id).await.unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!((after.total_tasks, after.status), (4, GraphStatus::Running));
    assert_eq!(after.budget_usd, Some(5.0), "the limit set meanwhile is kept");
}

#[tokio::test]
async fn a_task_added_while_the_last_open_task_completes_is_refused() {
    let store = Arc::new(CutIn { inner: MemoryStore::new(), cut_in: Mutex::new(None) });
    let (graphs, graph, tasks) =
        running(&store, r#"[{"id": "a", "title": "A"}, {"id": "b", "title": "B", "depends_on": ["a"]}]"#).await;
    *store.cut_in.lock().unwrap() = Some(b_completes(&graph, &tasks[1]));

    let refused = graphs
        .add_task(
            graph.id,
            NewTask { key: "c".into(), title: "C".into(), depends_on: vec!["b".into()], ..NewTask::default() },
        )
        .await
        .unwrap_err();
    // b was the graph's last open task: the graph completed before the task could be added.
    assert_eq!(refused.kind(), ErrorKind::Conflict, "{refused}");
    assert!(refused.to_string().contains("has ended (completed)"), "{refused}");
    let (after, all) = graphs.graph(graph.id).await.unwrap();
    assert_eq!((after.status, after.total_tasks, all.len()), (GraphStatus::Completed, 2, 2), "nothing added");
}
