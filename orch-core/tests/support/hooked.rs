//! A memory store that shows a test every batch before committing it, and may commit other batches
//! first (another writer cutting in); it may also show the test every task it reads, and cut in before
//! an agent's prompts are read. Include with
//! `#[path = "support/hooked.rs"] mod hooked;`.
#![allow(dead_code)]

use async_trait::async_trait;
use orch_core::store::{
    AgentFilter, Batch, EventQuery, EventStream, MemoryStore, Store, StoreResult, StoreStatus, SystemLogQuery,
};
use orch_core::wire::{
    Agent, BudgetStatus, ChatMessage, EventRecord, Id, Message, Orchestrator, Plan, Prompt, SystemLog, Task, TaskGraph,
    Timestamp, WorkerInfo, WorkflowRecord,
};

/// What a [`Hooked`] store does before each commit: given the batch, the batches to commit first.
pub type Before = Box<dyn Fn(&Batch) -> Vec<Batch> + Send + Sync>;

/// What a [`Hooked`] store does on each `get_task`: given the task's id.
pub type OnRead = Box<dyn Fn(Id) + Send + Sync>;

/// What a [`Hooked`] store commits before each `list_prompts`: given the agent's id, the batches.
pub type OnPrompts = Box<dyn Fn(Id) -> Vec<Batch> + Send + Sync>;

/// A [`MemoryStore`] that calls `before` with every batch, commits what it returns, then the batch.
pub struct Hooked {
    pub inner: MemoryStore,
    before: Before,
    on_read: Option<OnRead>,
    on_prompts: Option<OnPrompts>,
}

impl Hooked {
    pub fn new(before: Before) -> Self {
        Self { inner: MemoryStore::new(), before, on_read: None, on_prompts: None }
    }

    /// Commits what `on_prompts` returns before every `list_prompts` (another writer cutting in
    /// between two reads).
    pub fn on_prompts(mut self, on_prompts: OnPrompts) -> Self {
        self.on_prompts = Some(on_prompts);
        self
    }

    /// Calls `on_read` with the id of every task read by `get_task`.
    pub fn on_read(mut self, on_read: OnRead) -> Self {
        self.on_read = Some(on_read);
        self
    }
}

#[async_trait]
impl Store for Hooked {
    async fn commit(&self, batch: Batch) -> StoreResult<Vec<EventRecord>> {
        let first = (self.before)(&batch);
        for b in first {
            self.inner.commit(b).await.unwrap();
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
        for b in self.on_prompts.as_ref().map(|f| f(agent_id)).unwrap_or_default() {
            self.inner.commit(b).await.unwrap();
        }
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
        if let Some(f) = &self.on_read {
            f(id);
        }
        self.inner.get_task(id).await
    }
    async fn list_tasks(&self, graph_id: Id) -> StoreResult<Vec<Task>> {
        self.inner.list_tasks(graph_id).await
    }
    async fn find_tasks(&self, graph_id: Id, names: &[String]) -> StoreResult<Vec<Task>> {
        self.inner.find_tasks(graph_id, names).await
    }
    async fn graph_facts(&self, graph_id: Id) -> StoreResult<Vec<orch_core::wire::Fact>> {
        self.inner.graph_facts(graph_id).await
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
