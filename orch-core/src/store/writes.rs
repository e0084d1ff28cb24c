//! One-change writes over [`Store::commit`], for tests and the conformance suite: each is a [`Batch`]
//! of a single change and no event. Engine code commits a change together with the event that records
//! it instead (see [`Batch`]).

#![allow(missing_docs)]

use async_trait::async_trait;
use serde_json::Value;

use super::{Batch, Change, SavedState, StepCommit, Store, StoreError, StoreResult};
use crate::wire::{
    Agent, AgentStatus, ChatMessage, EventRecord, Id, Orchestrator, Plan, Prompt, SystemLog, Task, TaskGraph, Usage,
    WorkflowRecord,
};

async fn one(store: &(impl Store + ?Sized), change: Change) -> StoreResult<()> {
    store.commit(Batch::new().change(change)).await.map(drop)
}

/// Single-change writes on any [`Store`].
#[async_trait]
pub trait Writes: Store {
    async fn create_orchestrator(&self, o: &Orchestrator) -> StoreResult<()> {
        one(self, Change::CreateOrchestrator(Box::new(o.clone()))).await
    }
    async fn update_orchestrator(&self, o: &Orchestrator) -> StoreResult<()> {
        one(self, Change::UpdateOrchestrator(Box::new(o.clone()))).await
    }
    async fn create_agent(&self, a: &Agent) -> StoreResult<()> {
        one(self, Change::CreateAgent(Box::new(a.clone()))).await
    }
    async fn set_agent_status(&self, id: Id, status: AgentStatus) -> StoreResult<AgentStatus> {
        let old = self.get_agent(id).await?.ok_or_else(|| StoreError::NotFound { what: format!("agent {id}") })?;
        one(self, Change::SetAgentStatus { id, status }).await?;
        Ok(old.status)
    }
    async fn save_agent_state(&self, id: Id, state: Option<&Value>, session_id: Option<&str>) -> StoreResult<()> {
        let state = SavedState { state: state.cloned(), session_id: session_id.map(str::to_string) };
        one(self, Change::SaveAgentState { id, state }).await
    }
    async fn add_agent_usage(&self, id: Id, usage: Usage, cost_usd: f64) -> StoreResult<Agent> {
        one(self, Change::AddAgentUsage { id, usage, cost_usd }).await?;
        self.get_agent(id).await?.ok_or_else(|| StoreError::NotFound { what: format!("agent {id}") })
    }
    async fn set_agent_metadata(&self, id: Id, metadata: &Value) -> StoreResult<()> {
        one(self, Change::SetAgentMetadata { id, metadata: metadata.clone() }).await
    }
    async fn archive_agent(&self, id: Id) -> StoreResult<()> {
        one(self, Change::ArchiveAgent { id }).await
    }
    async fn insert_prompt(&self, p: &Prompt) -> StoreResult<()> {
        one(self, Change::InsertPrompt(Box::new(p.clone()))).await
    }
    async fn insert_chat(&self, m: &ChatMessage) -> StoreResult<()> {
        one(self, Change::InsertChat(Box::new(m.clone()))).await
    }
    async fn insert_system_log(&self, l: &SystemLog) -> StoreResult<()> {
        one(self, Change::InsertSystemLog(Box::new(l.clone()))).await
    }
    async fn upsert_workflow(&self, w: &WorkflowRecord) -> StoreResult<()> {
        one(self, Change::UpsertWorkflow(Box::new(w.clone()))).await
    }
    async fn insert_plan(&self, p: &Plan) -> StoreResult<()> {
        one(self, Change::InsertPlan(Box::new(p.clone()))).await
    }
    async fn upsert_plan(&self, p: &Plan) -> StoreResult<()> {
        one(self, Change::UpsertPlan(Box::new(p.clone()))).await
    }
    async fn upsert_graph(&self, g: &TaskGraph) -> StoreResult<()> {
        one(self, Change::UpsertGraph(Box::new(g.clone()))).await
    }
    async fn insert_tasks(&self, tasks: &[Task]) -> StoreResult<()> {
        one(self, Change::InsertTasks(tasks.to_vec())).await
    }
    async fn update_task(&self, task: &Task, fence: Option<u32>) -> StoreResult<()> {
        one(self, Change::UpdateTask { task: Box::new(task.clone()), fence }).await
    }
    async fn commit_step(&self, step: StepCommit) -> StoreResult<Vec<EventRecord>> {
        self.commit(step.into()).await
    }
    async fn clear_conversation(&self, agent_id: Id) -> StoreResult<()> {
        one(self, Change::ClearConversation { agent_id }).await
    }
}

impl<S: Store + ?Sized> Writes for S {}
