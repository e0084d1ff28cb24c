//! A store that counts what is asked of it: each read by method, each commit by the changes it
//! carries, and the events appended. For benchmarks that report store calls per unit of work.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use orch_core::store::{AgentFilter, Batch, EventQuery, EventStream, Store, StoreResult, StoreStatus, SystemLogQuery};
use orch_core::wire::{
    Agent, BudgetStatus, ChatMessage, EventRecord, Id, Message, Orchestrator, Plan, Prompt, SystemLog, Task, TaskGraph,
    Timestamp, WorkerInfo, WorkflowRecord,
};

/// Wraps a store and counts the calls made through it.
pub struct Counting {
    inner: Arc<dyn Store>,
    counts: Mutex<BTreeMap<String, u64>>,
}

impl Counting {
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self { inner, counts: Mutex::default() }
    }

    fn count(&self, what: impl Into<String>) {
        *self.counts.lock().unwrap().entry(what.into()).or_default() += 1;
    }

    /// The counts so far, by call (`read get_agent`, `commit [SwapRun]`, `events`…).
    pub fn counts(&self) -> BTreeMap<String, u64> {
        self.counts.lock().unwrap().clone()
    }

    /// Prints the counts divided by `per` (e.g. tasks run), the largest first, with totals of reads
    /// and commits.
    pub fn print_per(&self, per: u64, unit: &str) {
        let counts = self.counts();
        let total = |prefix: &str| counts.iter().filter(|(k, _)| k.starts_with(prefix)).map(|(_, v)| v).sum::<u64>();
        let per = per.max(1) as f64;
        println!(
            "store calls per {unit}: {:.2} reads, {:.2} commits, {:.2} events",
            total("read ") as f64 / per,
            total("commit ") as f64 / per,
            counts.get("events").copied().unwrap_or(0) as f64 / per
        );
        let mut rows: Vec<_> = counts.iter().filter(|(k, _)| k.as_str() != "events").collect();
        rows.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (what, n) in rows {
            println!("  {:>6.2}  {what}", *n as f64 / per);
        }
    }
}

/// The names of a batch's changes, in order, repeats folded (`[CreateAgent, UpdateTask]`).
fn label(batch: &Batch) -> String {
    let mut names: Vec<String> = Vec::new();
    for c in &batch.changes {
        let debug = format!("{c:?}");
        let name: String = debug.chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
        if names.last() != Some(&name) {
            names.push(name);
        }
    }
    format!("commit [{}]", names.join(", "))
}

#[async_trait]
impl Store for Counting {
    async fn commit(&self, batch: Batch) -> StoreResult<Vec<EventRecord>> {
        self.count(label(&batch));
        for _ in &batch.events {
            self.count("events");
        }
        self.inner.commit(batch).await
    }
    async fn get_orchestrator(&self, id: Id) -> StoreResult<Option<Orchestrator>> {
        self.count("read get_orchestrator");
        self.inner.get_orchestrator(id).await
    }
    async fn list_orchestrators(&self, include_archived: bool) -> StoreResult<Vec<Orchestrator>> {
        self.count("read list_orchestrators");
        self.inner.list_orchestrators(include_archived).await
    }
    async fn get_agent(&self, id: Id) -> StoreResult<Option<Agent>> {
        self.count("read get_agent");
        self.inner.get_agent(id).await
    }
    async fn find_agent(&self, orchestrator_id: Option<Id>, name: &str) -> StoreResult<Option<Agent>> {
        self.count("read find_agent");
        self.inner.find_agent(orchestrator_id, name).await
    }
    async fn list_agents(&self, filter: &AgentFilter) -> StoreResult<Vec<Agent>> {
        self.count("read list_agents");
        self.inner.list_agents(filter).await
    }
    async fn load_conversation(&self, agent_id: Id) -> StoreResult<Vec<Message>> {
        self.count("read load_conversation");
        self.inner.load_conversation(agent_id).await
    }
    async fn load_executor_state(&self, agent_id: Id) -> StoreResult<Option<serde_json::Value>> {
        self.count("read load_executor_state");
        self.inner.load_executor_state(agent_id).await
    }
    async fn list_prompts(&self, agent_id: Id) -> StoreResult<Vec<Prompt>> {
        self.count("read list_prompts");
        self.inner.list_prompts(agent_id).await
    }
    async fn list_chat(&self, orchestrator_id: Id, limit: usize) -> StoreResult<Vec<ChatMessage>> {
        self.count("read list_chat");
        self.inner.list_chat(orchestrator_id, limit).await
    }
    async fn list_system_logs(&self, query: &SystemLogQuery) -> StoreResult<Vec<SystemLog>> {
        self.count("read list_system_logs");
        self.inner.list_system_logs(query).await
    }
    async fn get_workflow(&self, id: Id) -> StoreResult<Option<WorkflowRecord>> {
        self.count("read get_workflow");
        self.inner.get_workflow(id).await
    }
    async fn list_workflows(&self, orchestrator_id: Option<Id>, limit: usize) -> StoreResult<Vec<WorkflowRecord>> {
        self.count("read list_workflows");
        self.inner.list_workflows(orchestrator_id, limit).await
    }
    async fn get_plan(&self, id: Id, version: Option<u32>) -> StoreResult<Option<Plan>> {
        self.count("read get_plan");
        self.inner.get_plan(id, version).await
    }
    async fn list_plans(&self, limit: usize) -> StoreResult<Vec<Plan>> {
        self.count("read list_plans");
        self.inner.list_plans(limit).await
    }
    async fn get_graph(&self, id: Id) -> StoreResult<Option<TaskGraph>> {
        self.count("read get_graph");
        self.inner.get_graph(id).await
    }
    async fn list_graphs(&self, limit: usize) -> StoreResult<Vec<TaskGraph>> {
        self.count("read list_graphs");
        self.inner.list_graphs(limit).await
    }
    async fn get_task(&self, id: Id) -> StoreResult<Option<Task>> {
        self.count("read get_task");
        self.inner.get_task(id).await
    }
    async fn list_tasks(&self, graph_id: Id) -> StoreResult<Vec<Task>> {
        self.count("read list_tasks");
        self.inner.list_tasks(graph_id).await
    }
    async fn find_tasks(&self, graph_id: Id, names: &[String]) -> StoreResult<Vec<Task>> {
        self.count("read find_tasks");
        self.inner.find_tasks(graph_id, names).await
    }

    async fn graph_facts(&self, graph_id: Id) -> StoreResult<Vec<orch_core::wire::Fact>> {
        self.count("read graph_facts");
        self.inner.graph_facts(graph_id).await
    }
    async fn budget(&self, day: &str, month: &str) -> StoreResult<BudgetStatus> {
        self.count("read budget");
        self.inner.budget(day, month).await
    }
    async fn list_workers(&self) -> StoreResult<Vec<WorkerInfo>> {
        self.count("read list_workers");
        self.inner.list_workers().await
    }
    async fn read_events(&self, query: &EventQuery) -> StoreResult<Vec<EventRecord>> {
        self.count("read read_events");
        self.inner.read_events(query).await
    }
    async fn last_seq(&self) -> StoreResult<u64> {
        self.count("read last_seq");
        self.inner.last_seq().await
    }
    async fn status(&self) -> StoreResult<StoreStatus> {
        self.count("read status");
        self.inner.status().await
    }
    async fn prune_events(&self, before: Timestamp) -> StoreResult<u64> {
        self.count("commit prune_events");
        self.inner.prune_events(before).await
    }
    fn subscribe(&self, since: u64) -> EventStream {
        self.count("subscribe");
        self.inner.subscribe(since)
    }
    fn local_files(&self) -> Vec<std::path::PathBuf> {
        self.inner.local_files()
    }
    fn shared_with_other_processes(&self) -> bool {
        self.inner.shared_with_other_processes()
    }
    fn subscribe_foreign(&self, since: u64, filter: EventQuery) -> EventStream {
        self.count("subscribe_foreign");
        self.inner.subscribe_foreign(since, filter)
    }
}
