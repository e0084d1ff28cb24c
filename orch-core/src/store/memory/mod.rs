//! An in-memory [`Store`]: for tests, benchmarks and throw-away runs. Nothing survives the process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use tokio::sync::Notify;

use super::{
    AgentFilter, Batch, Change, EventQuery, EventStream, Store, StoreError, StoreResult, StoreStatus, SystemLogQuery,
    Wakeup, follow_log,
};
use crate::wire::{
    Agent, AgentStatus, ChatMessage, EventRecord, Id, Message, NewEvent, Orchestrator, Plan, Prompt, RunLease,
    SystemLog, Task, TaskGraph, Timestamp, Usage, WorkflowRecord, now,
};

mod work;

#[derive(Default)]
struct Data {
    orchestrators: Vec<Orchestrator>,
    agents: Vec<Agent>,
    /// Where each agent is in `agents` (every change of a step looks its agent up).
    agent_index: HashMap<Id, usize>,
    prompts: Vec<Prompt>,
    chat: Vec<ChatMessage>,
    logs: Vec<SystemLog>,
    workflows: HashMap<Id, WorkflowRecord>,
    /// Plan versions, by id and version.
    plans: std::collections::BTreeMap<(Id, u32), Plan>,
    graphs: HashMap<Id, TaskGraph>,
    tasks: HashMap<Id, Task>,
    conversations: HashMap<Id, Vec<Message>>,
    /// Executors' saved loop states, by agent.
    executor_states: HashMap<Id, serde_json::Value>,
    /// Workers' heartbeat rows, budget limits and spending.
    work: work::WorkData,
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
    async fn commit(&self, batch: Batch) -> StoreResult<Vec<EventRecord>> {
        let out = {
            let mut d = self.lock();
            let batch = batch.projected();
            let mut undo = Vec::with_capacity(batch.changes.len());
            let mut generated = Vec::new();
            let mut pending: std::collections::VecDeque<Change> = batch.changes.into();
            while let Some(change) = pending.pop_front() {
                let start = match &change {
                    Change::ClaimTasks(c) => c.start.clone(),
                    _ => None,
                };
                let from = generated.len();
                match apply(&mut d, change, &mut generated) {
                    Ok(u) => undo.push(u),
                    Err(e) => {
                        for u in undo.into_iter().rev() {
                            u.revert(&mut d);
                        }
                        return Err(e);
                    }
                }
                // A claim with a starter: its started tasks' agents and states are applied next, and
                // their events replace the claim's.
                if let Some(s) = start {
                    let (agents, tasks, events) = super::start_claimed(&s, generated.split_off(from));
                    let fenced = tasks.into_iter().map(|t| {
                        let fence = Some(t.attempt);
                        Change::UpdateTask { task: Box::new(t), fence }
                    });
                    let next: Vec<Change> =
                        agents.into_iter().map(|a| Change::CreateAgent(Box::new(a))).chain(fenced).collect();
                    for c in next.into_iter().rev() {
                        pending.push_front(c);
                    }
                    generated.extend(events);
                }
            }
            let mut events = batch.events;
            events.extend(generated);
            Self::append_locked(&mut d, events)
        };
        if !out.is_empty() {
            self.notify.notify_waiters();
        }
        Ok(out)
    }

    async fn get_orchestrator(&self, id: Id) -> StoreResult<Option<Orchestrator>> {
        let d = self.lock();
        Ok(d.orchestrators.iter().find(|o| o.id == id).map(|o| orchestrator_view(&d, o)))
    }

    async fn list_orchestrators(&self, include_archived: bool) -> StoreResult<Vec<Orchestrator>> {
        let d = self.lock();
        let mut v: Vec<_> = d
            .orchestrators
            .iter()
            .filter(|o| include_archived || !o.archived)
            .map(|o| orchestrator_view(&d, o))
            .collect();
        v.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(v)
    }

    async fn get_agent(&self, id: Id) -> StoreResult<Option<Agent>> {
        let d = self.lock();
        Ok(d.agent_index.get(&id).and_then(|&i| d.agents.get(i)).cloned())
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

    async fn list_prompts(&self, agent_id: Id) -> StoreResult<Vec<Prompt>> {
        Ok(self.lock().prompts.iter().filter(|p| p.agent_id == Some(agent_id)).cloned().collect())
    }

    async fn list_chat(&self, orchestrator_id: Id, limit: usize) -> StoreResult<Vec<ChatMessage>> {
        let d = self.lock();
        let all: Vec<_> = d.chat.iter().filter(|m| m.orchestrator_id == orchestrator_id).cloned().collect();
        Ok(all[all.len().saturating_sub(limit)..].to_vec())
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

    async fn get_plan(&self, id: Id, version: Option<u32>) -> StoreResult<Option<Plan>> {
        let d = self.lock();
        Ok(match version {
            Some(v) => d.plans.get(&(id, v)).cloned(),
            None => d.plans.range((id, 0)..=(id, u32::MAX)).next_back().map(|(_, p)| p.clone()),
        })
    }

    async fn list_plans(&self, limit: usize) -> StoreResult<Vec<Plan>> {
        let d = self.lock();
        let mut latest: HashMap<Id, &Plan> = HashMap::new();
        for ((id, _), p) in &d.plans {
            // The map is ordered by version within an id, so the last one seen is the latest.
            latest.insert(*id, p);
        }
        let mut v: Vec<Plan> = latest.into_values().cloned().collect();
        v.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        v.truncate(limit);
        Ok(v)
    }

    async fn get_graph(&self, id: Id) -> StoreResult<Option<TaskGraph>> {
        Ok(self.lock().graphs.get(&id).cloned())
    }

    async fn list_graphs(&self, limit: usize) -> StoreResult<Vec<TaskGraph>> {
        let mut v: Vec<TaskGraph> = self.lock().graphs.values().cloned().collect();
        v.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        v.truncate(limit);
        Ok(v)
    }

    async fn get_task(&self, id: Id) -> StoreResult<Option<Task>> {
        Ok(self.lock().tasks.get(&id).cloned())
    }

    async fn list_tasks(&self, graph_id: Id) -> StoreResult<Vec<Task>> {
        let mut v: Vec<Task> = self.lock().tasks.values().filter(|t| t.graph_id == graph_id).cloned().collect();
        v.sort_by(|a, b| a.index.cmp(&b.index).then(a.id.cmp(&b.id)));
        Ok(v)
    }

    async fn budget(&self, day: &str, month: &str) -> StoreResult<crate::wire::BudgetStatus> {
        Ok(work::budget(&self.lock(), day, month))
    }

    async fn list_workers(&self) -> StoreResult<Vec<crate::wire::WorkerInfo>> {
        Ok(work::workers(&self.lock()))
    }

    async fn load_conversation(&self, agent_id: Id) -> StoreResult<Vec<Message>> {
        Ok(self.lock().conversations.get(&agent_id).cloned().unwrap_or_default())
    }

    async fn load_executor_state(&self, agent_id: Id) -> StoreResult<Option<serde_json::Value>> {
        Ok(self.lock().executor_states.get(&agent_id).cloned())
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

    fn shared_with_other_processes(&self) -> bool {
        false
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

/// How to take back one applied change when a later change of the same batch fails.
enum Undo {
    PopOrchestrator,
    Orchestrator(Box<Orchestrator>),
    PopAgent,
    AgentStatus { id: Id, status: AgentStatus, updated_at: Timestamp },
    AgentState { id: Id, state: Option<serde_json::Value>, session_id: Option<String>, updated_at: Timestamp },
    AgentUsage { id: Id, usage: Usage, cost: f64, updated_at: Timestamp },
    AgentContext { id: Id, used: u64, window: Option<u64> },
    AgentMetadata { id: Id, metadata: serde_json::Value, updated_at: Timestamp },
    AgentArchived { id: Id, archived: bool, run: Option<RunLease>, updated_at: Timestamp },
    AgentRun { id: Id, run: Option<RunLease> },
    Conversation { agent_id: Id, len: Option<usize> },
    Restore { agent_id: Id, messages: Vec<Message> },
    PopPrompt,
    PopChat,
    PopLog,
    Workflow { id: Id, old: Option<Box<WorkflowRecord>> },
    Plan { key: (Id, u32), old: Option<Box<Plan>> },
    Graph { id: Id, old: Option<Box<TaskGraph>> },
    RemoveTasks(Vec<Id>),
    Task(Box<Task>),
    Work(Box<work::WorkUndo>),
}

impl Undo {
    fn revert(self, d: &mut Data) {
        match self {
            Undo::PopOrchestrator => {
                d.orchestrators.pop();
            }
            Undo::Orchestrator(o) => {
                if let Some(cur) = d.orchestrators.iter_mut().find(|x| x.id == o.id) {
                    *cur = *o;
                }
            }
            Undo::PopAgent => {
                if let Some(a) = d.agents.pop() {
                    d.agent_index.remove(&a.id);
                }
            }
            Undo::AgentStatus { id, status, updated_at } => {
                if let Some(a) = agent_mut(d, id) {
                    a.status = status;
                    a.updated_at = updated_at;
                }
            }
            Undo::AgentState { id, state, session_id, updated_at } => {
                match state {
                    Some(state) => d.executor_states.insert(id, state),
                    None => d.executor_states.remove(&id),
                };
                if let Some(a) = agent_mut(d, id) {
                    a.session_id = session_id;
                    a.updated_at = updated_at;
                }
            }
            Undo::AgentUsage { id, usage, cost, updated_at } => {
                if let Some(a) = agent_mut(d, id) {
                    a.usage = usage;
                    a.total_cost_usd = cost;
                    a.updated_at = updated_at;
                }
            }
            Undo::AgentContext { id, used, window } => {
                if let Some(a) = agent_mut(d, id) {
                    a.context_used = used;
                    a.context_window = window;
                }
            }
            Undo::AgentMetadata { id, metadata, updated_at } => {
                if let Some(a) = agent_mut(d, id) {
                    a.metadata = metadata;
                    a.updated_at = updated_at;
                }
            }
            Undo::AgentArchived { id, archived, run, updated_at } => {
                if let Some(a) = agent_mut(d, id) {
                    a.archived = archived;
                    a.run = run;
                    a.updated_at = updated_at;
                }
            }
            Undo::AgentRun { id, run } => {
                if let Some(a) = agent_mut(d, id) {
                    a.run = run;
                }
            }
            Undo::Conversation { agent_id, len: Some(len) } => {
                if let Some(c) = d.conversations.get_mut(&agent_id) {
                    c.truncate(len);
                }
            }
            Undo::Conversation { agent_id, len: None } => {
                d.conversations.remove(&agent_id);
            }
            Undo::Restore { agent_id, messages } => {
                d.conversations.insert(agent_id, messages);
            }
            Undo::PopPrompt => {
                d.prompts.pop();
            }
            Undo::PopChat => {
                d.chat.pop();
            }
            Undo::PopLog => {
                d.logs.pop();
            }
            Undo::Workflow { id, old: Some(w) } => {
                d.workflows.insert(id, *w);
            }
            Undo::Workflow { id, old: None } => {
                d.workflows.remove(&id);
            }
            Undo::Plan { key, old: Some(p) } => {
                d.plans.insert(key, *p);
            }
            Undo::Plan { key, old: None } => {
                d.plans.remove(&key);
            }
            Undo::Graph { id, old: Some(g) } => {
                d.graphs.insert(id, *g);
            }
            Undo::Graph { id, old: None } => {
                d.graphs.remove(&id);
            }
            Undo::RemoveTasks(ids) => {
                for id in ids {
                    d.tasks.remove(&id);
                }
            }
            Undo::Task(t) => {
                d.tasks.insert(t.id, *t);
            }
            Undo::Work(w) => w.revert(d),
        }
    }
}

/// An orchestrator as read: its status and usage are those of its own agent (the live agent named
/// `orchestrator` under it), stored once there; without that agent, its own.
fn orchestrator_view(d: &Data, o: &Orchestrator) -> Orchestrator {
    let mut o = o.clone();
    if let Some(a) = d
        .agents
        .iter()
        .find(|a| !a.archived && a.orchestrator_id == Some(o.id) && a.name == crate::wire::ORCHESTRATOR_AGENT_NAME)
    {
        o.status = a.status;
        o.usage = a.usage;
        o.total_cost_usd = a.total_cost_usd;
        o.context_used = a.context_used;
        o.context_window = a.context_window;
    }
    o
}

fn agent_mut(d: &mut Data, id: Id) -> Option<&mut Agent> {
    let i = *d.agent_index.get(&id)?;
    d.agents.get_mut(i)
}

fn find_agent_mut(d: &mut Data, id: Id) -> StoreResult<&mut Agent> {
    agent_mut(d, id).ok_or_else(|| not_found("agent", id))
}

/// Applies one change, returning how to take it back. Events the change itself records (claims,
/// released tasks, ended graphs) are pushed to `generated`.
fn apply(d: &mut Data, change: Change, generated: &mut Vec<NewEvent>) -> StoreResult<Undo> {
    Ok(match change {
        Change::CreateOrchestrator(o) => {
            d.orchestrators.push(*o);
            Undo::PopOrchestrator
        }
        Change::UpdateOrchestrator(o) => {
            let cur =
                d.orchestrators.iter_mut().find(|x| x.id == o.id).ok_or_else(|| not_found("orchestrator", o.id))?;
            let old = Box::new(cur.clone());
            cur.session_id = o.session_id;
            cur.system_prompt = o.system_prompt;
            cur.status = o.status;
            cur.working_dir = o.working_dir;
            cur.metadata = o.metadata;
            cur.archived = o.archived;
            cur.updated_at = now();
            Undo::Orchestrator(old)
        }
        Change::CreateAgent(a) => {
            if !a.archived
                && d.agents.iter().any(|x| !x.archived && x.name == a.name && x.orchestrator_id == a.orchestrator_id)
            {
                return Err(StoreError::NameTaken { name: a.name.clone() });
            }
            d.agent_index.insert(a.id, d.agents.len());
            d.agents.push(*a);
            Undo::PopAgent
        }
        Change::SetAgentStatus { id, status } => {
            let a = find_agent_mut(d, id)?;
            let undo = Undo::AgentStatus { id, status: a.status, updated_at: a.updated_at };
            a.status = status;
            a.updated_at = now();
            undo
        }
        Change::SaveAgentState { id, state } => {
            let a = find_agent_mut(d, id)?;
            let session_id = std::mem::replace(&mut a.session_id, state.session_id);
            let updated_at = std::mem::replace(&mut a.updated_at, now());
            let old = match state.state {
                Some(new) => d.executor_states.insert(id, new),
                None => d.executor_states.remove(&id),
            };
            Undo::AgentState { id, state: old, session_id, updated_at }
        }
        Change::AddAgentUsage { id, usage, cost_usd } => {
            let a = find_agent_mut(d, id)?;
            let undo = Undo::AgentUsage { id, usage: a.usage, cost: a.total_cost_usd, updated_at: a.updated_at };
            a.usage.add(&usage);
            a.total_cost_usd += cost_usd;
            a.updated_at = now();
            undo
        }
        Change::SetAgentContext { id, used, window } => {
            let a = find_agent_mut(d, id)?;
            let undo = Undo::AgentContext { id, used: a.context_used, window: a.context_window };
            a.context_used = used;
            a.context_window = window;
            undo
        }
        Change::SetAgentMetadata { id, metadata } => {
            let a = find_agent_mut(d, id)?;
            let undo = Undo::AgentMetadata {
                id,
                metadata: std::mem::replace(&mut a.metadata, metadata),
                updated_at: a.updated_at,
            };
            a.updated_at = now();
            undo
        }
        Change::ArchiveAgent { id } => {
            let a = find_agent_mut(d, id)?;
            let undo = Undo::AgentArchived { id, archived: a.archived, run: a.run.take(), updated_at: a.updated_at };
            a.archived = true;
            a.updated_at = now();
            undo
        }
        Change::SwapRun { agent_id, expect, lease } => {
            let a = find_agent_mut(d, agent_id)?;
            if a.run.as_ref().map(|r| r.run_id) != expect {
                return Err(StoreError::RunConflict { agent_id, current: a.run.clone().map(Box::new) });
            }
            Undo::AgentRun { id: agent_id, run: std::mem::replace(&mut a.run, lease) }
        }
        Change::ReleaseRun { agent_id, run_id } => {
            // Not held by that run (or no such agent): nothing released, the same holder put back.
            let a = agent_mut(d, agent_id);
            let before = a.as_ref().and_then(|a| a.run.clone());
            if let Some(a) = a.filter(|a| a.run.as_ref().is_some_and(|r| r.run_id == run_id)) {
                a.run = None;
            }
            Undo::AgentRun { id: agent_id, run: before }
        }
        Change::AppendMessages { agent_id, messages } => {
            let len = d.conversations.get(&agent_id).map(Vec::len);
            d.conversations.entry(agent_id).or_default().extend(messages);
            Undo::Conversation { agent_id, len }
        }
        Change::ClearConversation { agent_id } => {
            Undo::Restore { agent_id, messages: d.conversations.remove(&agent_id).unwrap_or_default() }
        }
        Change::InsertPrompt(p) => {
            d.prompts.push(*p);
            Undo::PopPrompt
        }
        Change::InsertChat(m) => {
            d.chat.push(*m);
            Undo::PopChat
        }
        Change::InsertSystemLog(l) => {
            d.logs.push(*l);
            Undo::PopLog
        }
        Change::UpsertWorkflow(mut w) => {
            let id = w.id;
            // The holder is the store's, changed only by SwapWorkflowRun.
            w.run = d.workflows.get(&id).and_then(|old| old.run.clone());
            Undo::Workflow { id, old: d.workflows.insert(id, *w).map(Box::new) }
        }
        Change::SwapWorkflowRun { workflow_id, expect, lease } => {
            let Some(w) = d.workflows.get_mut(&workflow_id) else {
                return Err(not_found("workflow", workflow_id));
            };
            if w.run.as_ref().map(|r| r.run_id) != expect {
                return Err(StoreError::WorkflowRunConflict { workflow_id, current: w.run.clone().map(Box::new) });
            }
            let old = Box::new(w.clone());
            w.run = lease;
            Undo::Workflow { id: workflow_id, old: Some(old) }
        }
        Change::InsertPlan(p) => {
            let key = (p.id, p.version);
            if d.plans.contains_key(&key) {
                return Err(StoreError::Duplicate { what: format!("plan {} version {}", p.id, p.version) });
            }
            d.plans.insert(key, *p);
            Undo::Plan { key, old: None }
        }
        Change::UpsertPlan(p) => {
            let key = (p.id, p.version);
            Undo::Plan { key, old: d.plans.insert(key, *p).map(Box::new) }
        }
        Change::UpsertGraph(mut g) => {
            let id = g.id;
            // Its spending is the store's, changed only by SettleBudget.
            if let Some(old) = d.graphs.get(&id) {
                g.cost_usd = old.cost_usd;
            }
            Undo::Graph { id, old: d.graphs.insert(id, *g).map(Box::new) }
        }
        Change::InsertTasks(tasks) => insert_tasks(d, tasks)?,
        Change::UpdateTask { task, fence } => {
            let cur = d.tasks.get_mut(&task.id).ok_or_else(|| not_found("task", task.id))?;
            if let Some(expected) = fence
                && cur.attempt != expected
            {
                return Err(StoreError::Fenced { task_id: task.id, expected, found: cur.attempt });
            }
            let old = Box::new(cur.clone());
            cur.set_progress(&task);
            Undo::Task(old)
        }
        other => work::apply(d, other, generated)?,
    })
}

/// Fails with `Duplicate` when one of `tasks` has an id taken (by a stored task or one before it) or
/// a key its graph has.
fn refuse_taken(d: &Data, tasks: &[Task]) -> StoreResult<()> {
    let mut keys: std::collections::HashSet<(Id, &str)> =
        d.tasks.values().map(|t| (t.graph_id, t.key.as_str())).collect();
    let mut ids = std::collections::HashSet::new();
    for t in tasks {
        if d.tasks.contains_key(&t.id) || !ids.insert(t.id) {
            return Err(StoreError::Duplicate { what: format!("task {}", t.id) });
        }
        if !keys.insert((t.graph_id, t.key.as_str())) {
            return Err(StoreError::Duplicate { what: format!("task key '{}' in graph {}", t.key, t.graph_id) });
        }
    }
    Ok(())
}

/// Inserts tasks, all or none: a taken id, or a key its graph has, fails the change.
fn insert_tasks(d: &mut Data, tasks: Vec<Task>) -> StoreResult<Undo> {
    refuse_taken(d, &tasks)?;
    let ids: Vec<Id> = tasks.iter().map(|t| t.id).collect();
    for t in tasks {
        d.tasks.insert(t.id, t);
    }
    Ok(Undo::RemoveTasks(ids))
}
