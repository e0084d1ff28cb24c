//! An in-memory [`Store`]: for tests, benchmarks and throw-away runs. Nothing survives the process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use tokio::sync::Notify;

use super::{
    AgentFilter, EventQuery, EventStream, StepCommit, Store, StoreError, StoreResult, StoreStatus, SystemLogQuery,
    Wakeup, follow_log,
};
use crate::wire::{
    Agent, AgentStatus, ChatMessage, EventRecord, Id, Message, NewEvent, Orchestrator, Prompt, SystemLog, Usage,
    WorkflowRecord, now,
};

#[derive(Default)]
struct Data {
    orchestrators: Vec<Orchestrator>,
    agents: Vec<Agent>,
    prompts: Vec<Prompt>,
    chat: Vec<ChatMessage>,
    logs: Vec<SystemLog>,
    workflows: HashMap<Id, WorkflowRecord>,
    conversations: HashMap<Id, Vec<Message>>,
    /// The highest seq ever appended (events may have been pruned since).
    last_seq: u64,
    events: Vec<EventRecord>,
}

/// A store held in memory. Cheap to clone (clones share the data).
#[derive(Clone, Default)]
pub struct MemoryStore {
    data: Arc<Mutex<Data>>,
    notify: Arc<Notify>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemoryStore")
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn append_locked(d: &mut Data, events: Vec<NewEvent>) -> Vec<EventRecord> {
        let mut seq = d.last_seq;
        let ts = now();
        let start = d.events.len();
        d.events.extend(events.into_iter().map(|e| {
            seq += 1;
            EventRecord { seq, timestamp: ts, keys: e.keys, event: e.event }
        }));
        d.last_seq = seq;
        d.events[start..].to_vec()
    }

    fn lock(&self) -> MutexGuard<'_, Data> {
        // A poisoned lock only means another thread panicked mid-update; the data is still usable.
        self.data.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn not_found(what: &str, id: Id) -> StoreError {
    StoreError::NotFound { what: format!("{what} {id}") }
}

#[async_trait]
impl Store for MemoryStore {
    async fn create_orchestrator(&self, o: &Orchestrator) -> StoreResult<()> {
        self.lock().orchestrators.push(o.clone());
        Ok(())
    }

    async fn get_orchestrator(&self, id: Id) -> StoreResult<Option<Orchestrator>> {
        Ok(self.lock().orchestrators.iter().find(|o| o.id == id).cloned())
    }

    async fn list_orchestrators(&self, include_archived: bool) -> StoreResult<Vec<Orchestrator>> {
        let mut v: Vec<_> =
            self.lock().orchestrators.iter().filter(|o| include_archived || !o.archived).cloned().collect();
        v.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(v)
    }

    async fn update_orchestrator(&self, o: &Orchestrator) -> StoreResult<()> {
        let mut d = self.lock();
        let cur = d.orchestrators.iter_mut().find(|x| x.id == o.id).ok_or_else(|| not_found("orchestrator", o.id))?;
        cur.session_id = o.session_id.clone();
        cur.system_prompt = o.system_prompt.clone();
        cur.status = o.status;
        cur.working_dir = o.working_dir.clone();
        cur.metadata = o.metadata.clone();
        cur.archived = o.archived;
        cur.updated_at = now();
        Ok(())
    }

    async fn add_orchestrator_usage(&self, id: Id, usage: Usage, cost_usd: f64) -> StoreResult<Orchestrator> {
        let mut d = self.lock();
        let cur = d.orchestrators.iter_mut().find(|x| x.id == id).ok_or_else(|| not_found("orchestrator", id))?;
        cur.usage.add(&usage);
        cur.total_cost_usd += cost_usd;
        cur.updated_at = now();
        Ok(cur.clone())
    }

    async fn create_agent(&self, a: &Agent) -> StoreResult<()> {
        let mut d = self.lock();
        if !a.archived
            && d.agents.iter().any(|x| !x.archived && x.name == a.name && x.orchestrator_id == a.orchestrator_id)
        {
            return Err(StoreError::NameTaken { name: a.name.clone() });
        }
        d.agents.push(a.clone());
        Ok(())
    }

    async fn get_agent(&self, id: Id) -> StoreResult<Option<Agent>> {
        Ok(self.lock().agents.iter().find(|a| a.id == id).cloned())
    }

    async fn find_agent(&self, orchestrator_id: Option<Id>, name: &str) -> StoreResult<Option<Agent>> {
        Ok(self
            .lock()
            .agents
            .iter()
            .find(|a| !a.archived && a.name == name && a.orchestrator_id == orchestrator_id)
            .cloned())
    }

    async fn list_agents(&self, filter: &AgentFilter) -> StoreResult<Vec<Agent>> {
        let mut v: Vec<_> = self
            .lock()
            .agents
            .iter()
            .filter(|a| filter.include_archived || !a.archived)
            .filter(|a| filter.orchestrator_id.is_none() || a.orchestrator_id == filter.orchestrator_id)
            .cloned()
            .collect();
        v.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(v)
    }

    async fn set_agent_status(&self, id: Id, status: AgentStatus) -> StoreResult<AgentStatus> {
        let mut d = self.lock();
        let a = d.agents.iter_mut().find(|x| x.id == id).ok_or_else(|| not_found("agent", id))?;
        let old = a.status;
        a.status = status;
        a.updated_at = now();
        Ok(old)
    }

    async fn save_agent_state(
        &self,
        id: Id,
        state: Option<&serde_json::Value>,
        session_id: Option<&str>,
    ) -> StoreResult<()> {
        let mut d = self.lock();
        let a = d.agents.iter_mut().find(|x| x.id == id).ok_or_else(|| not_found("agent", id))?;
        a.state = state.cloned();
        a.session_id = session_id.map(str::to_string);
        a.updated_at = now();
        Ok(())
    }

    async fn add_agent_usage(&self, id: Id, usage: Usage, cost_usd: f64) -> StoreResult<Agent> {
        let mut d = self.lock();
        let a = d.agents.iter_mut().find(|x| x.id == id).ok_or_else(|| not_found("agent", id))?;
        a.usage.add(&usage);
        a.total_cost_usd += cost_usd;
        a.updated_at = now();
        Ok(a.clone())
    }

    async fn set_agent_metadata(&self, id: Id, metadata: &serde_json::Value) -> StoreResult<()> {
        let mut d = self.lock();
        let a = d.agents.iter_mut().find(|x| x.id == id).ok_or_else(|| not_found("agent", id))?;
        a.metadata = metadata.clone();
        a.updated_at = now();
        Ok(())
    }

    async fn archive_agent(&self, id: Id) -> StoreResult<()> {
        let mut d = self.lock();
        let a = d.agents.iter_mut().find(|x| x.id == id).ok_or_else(|| not_found("agent", id))?;
        a.archived = true;
        a.updated_at = now();
        Ok(())
    }

    async fn insert_prompt(&self, p: &Prompt) -> StoreResult<()> {
        self.lock().prompts.push(p.clone());
        Ok(())
    }

    async fn list_prompts(&self, agent_id: Id) -> StoreResult<Vec<Prompt>> {
        Ok(self.lock().prompts.iter().filter(|p| p.agent_id == Some(agent_id)).cloned().collect())
    }

    async fn insert_chat(&self, m: &ChatMessage) -> StoreResult<()> {
        self.lock().chat.push(m.clone());
        Ok(())
    }

    async fn list_chat(&self, orchestrator_id: Id, limit: usize) -> StoreResult<Vec<ChatMessage>> {
        let d = self.lock();
        let all: Vec<_> = d.chat.iter().filter(|m| m.orchestrator_id == orchestrator_id).cloned().collect();
        Ok(all[all.len().saturating_sub(limit)..].to_vec())
    }

    async fn insert_system_log(&self, l: &SystemLog) -> StoreResult<()> {
        self.lock().logs.push(l.clone());
        Ok(())
    }

    async fn list_system_logs(&self, q: &SystemLogQuery) -> StoreResult<Vec<SystemLog>> {
        let d = self.lock();
        let needle = q.message_contains.as_ref().map(|s| s.to_lowercase());
        Ok(d.logs
            .iter()
            .rev()
            .filter(|l| q.level.is_none_or(|lv| l.level == lv))
            .filter(|l| needle.as_ref().is_none_or(|n| l.message.to_lowercase().contains(n)))
            .skip(q.offset)
            .take(q.limit)
            .cloned()
            .collect())
    }

    async fn upsert_workflow(&self, w: &WorkflowRecord) -> StoreResult<()> {
        self.lock().workflows.insert(w.id, w.clone());
        Ok(())
    }

    async fn get_workflow(&self, id: Id) -> StoreResult<Option<WorkflowRecord>> {
        Ok(self.lock().workflows.get(&id).cloned())
    }

    async fn list_workflows(&self, orchestrator_id: Option<Id>, limit: usize) -> StoreResult<Vec<WorkflowRecord>> {
        let d = self.lock();
        let mut v: Vec<_> = d
            .workflows
            .values()
            .filter(|w| orchestrator_id.is_none() || w.orchestrator_id == orchestrator_id)
            .cloned()
            .collect();
        v.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        v.truncate(limit);
        Ok(v)
    }

    async fn commit_step(&self, step: StepCommit) -> StoreResult<Vec<EventRecord>> {
        let out = {
            let mut d = self.lock();
            let a =
                d.agents.iter_mut().find(|x| x.id == step.agent_id).ok_or_else(|| not_found("agent", step.agent_id))?;
            if let Some(status) = step.status {
                a.status = status;
            }
            if let Some((usage, cost)) = step.usage {
                a.usage.add(&usage);
                a.total_cost_usd += cost;
            }
            if let Some(saved) = step.state {
                a.state = saved.state;
                a.session_id = saved.session_id;
            }
            a.updated_at = now();
            if !step.messages.is_empty() {
                d.conversations.entry(step.agent_id).or_default().extend(step.messages);
            }
            Self::append_locked(&mut d, step.events)
        };
        if !out.is_empty() {
            self.notify.notify_waiters();
        }
        Ok(out)
    }

    async fn load_conversation(&self, agent_id: Id) -> StoreResult<Vec<Message>> {
        Ok(self.lock().conversations.get(&agent_id).cloned().unwrap_or_default())
    }

    async fn clear_conversation(&self, agent_id: Id) -> StoreResult<()> {
        self.lock().conversations.remove(&agent_id);
        Ok(())
    }

    async fn append(&self, events: Vec<NewEvent>) -> StoreResult<Vec<EventRecord>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let out = Self::append_locked(&mut self.lock(), events);
        self.notify.notify_waiters();
        Ok(out)
    }

    async fn read_events(&self, q: &EventQuery) -> StoreResult<Vec<EventRecord>> {
        let d = self.lock();
        // seq n is at index n-1: start from the first event after `after_seq`.
        let start = d.events.partition_point(|e| e.seq <= q.after_seq);
        let limit = q.limit.unwrap_or(usize::MAX);
        Ok(d.events[start..]
            .iter()
            .take_while(|r| q.until_seq.is_none_or(|u| r.seq <= u))
            .filter(|r| q.matches(r))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn last_seq(&self) -> StoreResult<u64> {
        Ok(self.lock().last_seq)
    }

    async fn status(&self) -> StoreResult<StoreStatus> {
        let d = self.lock();
        Ok(StoreStatus {
            backend: "memory".into(),
            location: "memory".into(),
            schema_version: 0,
            events: d.events.len() as u64,
            last_seq: d.last_seq,
            size_bytes: None,
        })
    }

    async fn prune_events(&self, before: crate::wire::Timestamp) -> StoreResult<u64> {
        let mut d = self.lock();
        let archived: std::collections::HashSet<Id> = d.agents.iter().filter(|a| a.archived).map(|a| a.id).collect();
        let n = d.events.len();
        d.events.retain(|e| !(e.timestamp < before && e.keys.agent_id.is_some_and(|a| archived.contains(&a))));
        Ok((n - d.events.len()) as u64)
    }

    fn subscribe(&self, since: u64) -> EventStream {
        let notify = self.notify.clone();
        let data = self.data.clone();
        let wakeup: Wakeup = Arc::new(move |last_seen| {
            let notify = notify.clone();
            let data = data.clone();
            Box::pin(async move {
                // Register interest, then re-check, so an append between the follower's read and
                // this wait is not slept through.
                let n = notify.notified();
                tokio::pin!(n);
                n.as_mut().enable();
                let last = data.lock().map(|d| d.last_seq).unwrap_or(0);
                if last > last_seen {
                    return;
                }
                n.await;
            })
        });
        follow_log(Arc::new(self.clone()), since, wakeup)
    }
}
