//! The state the page folds the event stream into: the agents (the fleet), the orchestrator's chat and
//! the workflow runs. Each is loaded from the REST API once and then kept current by applying every new
//! event of the stream, in seq order, once (the caller drops repeats with [`crate::buffer::EventBuffer`]).

use std::collections::{BTreeMap, HashSet};

use orch_core::wire::{
    Agent, AgentRole, AgentStatus, ChatMessage, Event, EventRecord, Id, Participant, Timestamp, WorkflowRecord,
    WorkflowStatus,
};

use crate::buffer::Class;
use crate::format;

/// One agent as its card shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentCard {
    /// The agent as last known.
    pub agent: Agent,
    /// What it did last (summary of its latest response, tool or hook event).
    pub activity: Option<String>,
    /// When its latest event happened.
    pub last_event: Option<Timestamp>,
    /// Its events received, by [`Class`].
    pub counts: [u32; 5],
}

/// An executing agent with no event for this long is flagged as stalled, in seconds.
pub const STALLED_AFTER: u64 = 120;

impl AgentCard {
    /// Seconds since its last event at `now_ms` (ms since the epoch), and whether it looks stalled (executing,
    /// silent for [`STALLED_AFTER`]).
    pub fn idle(&self, now_ms: f64) -> Option<(u64, bool)> {
        let last = self.last_event?;
        let secs = ((now_ms - last.timestamp_millis() as f64) / 1000.0).max(0.0) as u64;
        Some((secs, self.agent.status == AgentStatus::Executing && secs > STALLED_AFTER))
    }
}

/// The agents, the orchestrator's cost, and which agent is the orchestrator's own.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fleet {
    agents: BTreeMap<Id, AgentCard>,
    names: BTreeMap<Id, String>,
    /// The orchestrator's own agent (its turns are chat, not an agent card).
    pub orchestrator_agent: Option<Id>,
    /// The orchestrator's cost so far.
    pub orchestrator_cost: f64,
    /// The orchestrator's context use and window.
    pub orchestrator_context: (u64, Option<u64>),
}

impl Fleet {
    /// Takes `agents` (from `GET /api/agents`) as the current state.
    pub fn load(&mut self, agents: Vec<Agent>) {
        for a in agents {
            self.upsert(a);
        }
    }

    fn upsert(&mut self, agent: Agent) {
        self.names.insert(agent.id, agent.name.clone());
        if agent.role == AgentRole::Orchestrator {
            self.orchestrator_agent = Some(agent.id);
            return;
        }
        if agent.archived {
            self.agents.remove(&agent.id);
            return;
        }
        match self.agents.get_mut(&agent.id) {
            Some(card) => card.agent = agent,
            None => {
                let card = AgentCard { agent, activity: None, last_event: None, counts: [0; 5] };
                self.agents.insert(card.agent.id, card);
            }
        }
    }

    /// Applies one new event.
    pub fn apply(&mut self, r: &EventRecord) {
        let id = r.keys.agent_id;
        match &r.event {
            Event::AgentCreated { agent } => self.upsert((**agent).clone()),
            Event::AgentDeleted {} => {
                if let Some(id) = id {
                    self.agents.remove(&id);
                }
            }
            Event::OrchestratorCostsUpdated { total_cost_usd, .. } => self.orchestrator_cost = *total_cost_usd,
            _ => {}
        }
        if id.is_some() && id == self.orchestrator_agent {
            if let Event::AgentCostsUpdated { context_used, context_window, .. } = &r.event {
                self.orchestrator_context = (context_used.unwrap_or(self.orchestrator_context.0), *context_window);
            }
            return;
        }
        let Some(card) = id.and_then(|id| self.agents.get_mut(&id)) else { return };
        let class = Class::of(&r.event);
        card.counts[class.index()] = card.counts[class.index()].saturating_add(1);
        card.last_event = Some(r.timestamp);
        match &r.event {
            Event::AgentStatusChanged { new_status, .. } => card.agent.status = *new_status,
            Event::AgentCostsUpdated { total_usage, total_cost_usd, context_used, context_window, .. } => {
                card.agent.usage = *total_usage;
                card.agent.total_cost_usd = *total_cost_usd;
                if let Some(u) = context_used {
                    card.agent.context_used = *u;
                }
                if context_window.is_some() {
                    card.agent.context_window = *context_window;
                }
            }
            Event::SummaryUpdated { summary, .. } => card.activity = Some(format::one_line(summary)),
            Event::StepStart { step_name, .. } => card.agent.workflow_step = Some(step_name.clone()),
            e if matches!(class, Class::Response | Class::Tool | Class::Hook) => {
                card.activity = Some(format::truncate(&format::one_line(&e.summary()), 140));
            }
            _ => {}
        }
    }

    /// The agents' cards, oldest first.
    pub fn cards(&self) -> Vec<&AgentCard> {
        let mut v: Vec<&AgentCard> = self.agents.values().collect();
        v.sort_by(|a, b| a.agent.created_at.cmp(&b.agent.created_at).then(a.agent.name.cmp(&b.agent.name)));
        v
    }

    /// One agent's card.
    pub fn card(&self, id: Id) -> Option<&AgentCard> {
        self.agents.get(&id)
    }

    /// The name of agent `id` (also of deleted agents and the orchestrator's), if known.
    pub fn name_of(&self, id: Id) -> Option<&str> {
        if Some(id) == self.orchestrator_agent {
            return Some("orchestrator");
        }
        self.names.get(&id).map(String::as_str)
    }

    /// The header's stats: active agents (not complete), running ones, and the total cost (the
    /// orchestrator's and every agent's).
    pub fn stats(&self) -> (usize, usize, f64) {
        let active = self.agents.values().filter(|c| c.agent.status != AgentStatus::Complete).count();
        let running = self.agents.values().filter(|c| c.agent.status == AgentStatus::Executing).count();
        let cost = self.orchestrator_cost + self.agents.values().map(|c| c.agent.total_cost_usd).sum::<f64>();
        (active, running, cost)
    }
}

/// What a chat bubble holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bubble {
    /// The person.
    User,
    /// The orchestrator's answer.
    Orchestrator,
    /// A message from or to a managed agent.
    Agent,
    /// The orchestrator's thinking.
    Thinking,
    /// A tool the orchestrator called.
    Tool,
}

/// One chat bubble.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatItem {
    /// Unique key (the message id, `seq:N`, or `local:N` until the server echoes a sent message).
    pub key: String,
    /// Its kind.
    pub kind: Bubble,
    /// The text (markdown for messages).
    pub text: String,
    /// When.
    pub at: Timestamp,
}

/// The orchestrator's conversation, oldest first, and whether it is answering.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Chat {
    items: Vec<ChatItem>,
    keys: HashSet<String>,
    /// Whether the orchestrator is in a turn.
    pub typing: bool,
    local: u64,
}

impl Chat {
    fn add(&mut self, item: ChatItem) {
        if !self.keys.insert(item.key.clone()) {
            return;
        }
        if item.kind == Bubble::User
            && let Some(i) =
                self.items.iter().position(|x| x.key.starts_with("local:") && x.text.trim() == item.text.trim())
        {
            // The server's copy of a message this page sent replaces the optimistic one.
            let old = self.items.remove(i);
            self.keys.remove(&old.key);
        }
        let at = self.items.partition_point(|x| x.at <= item.at);
        self.items.insert(at, item);
    }

    /// Adds the messages of `GET /api/orchestrator/chat`.
    pub fn load(&mut self, messages: Vec<ChatMessage>) {
        for m in messages {
            self.add_message(&m);
        }
    }

    fn add_message(&mut self, m: &ChatMessage) {
        let kind = match (m.sender, m.receiver) {
            (Participant::User, _) => Bubble::User,
            (Participant::Orchestrator, Participant::User) => Bubble::Orchestrator,
            _ => Bubble::Agent,
        };
        self.add(ChatItem { key: m.id.to_string(), kind, text: m.message.clone(), at: m.created_at });
    }

    /// Shows a message the person just sent, until the server's copy arrives.
    pub fn add_local(&mut self, text: &str, at: Timestamp) {
        self.local += 1;
        let key = format!("local:{}", self.local);
        self.add(ChatItem { key, kind: Bubble::User, text: text.to_string(), at });
    }

    /// Applies one new event (`orchestrator_agent`: the orchestrator's own agent, whose thinking and
    /// tool calls are bubbles).
    pub fn apply(&mut self, r: &EventRecord, orchestrator_agent: Option<Id>) {
        let mine = r.keys.agent_id.is_some() && r.keys.agent_id == orchestrator_agent;
        match &r.event {
            Event::ChatMessage { message } => self.add_message(message),
            Event::Thinking { thinking, .. } if mine => self.add(ChatItem {
                key: format!("seq:{}", r.seq),
                kind: Bubble::Thinking,
                text: thinking.clone(),
                at: r.timestamp,
            }),
            Event::ToolUse { tool_name, tool_input, .. } if mine => {
                let name = tool_name.strip_prefix("mcp__mgmt__").unwrap_or(tool_name);
                self.add(ChatItem {
                    key: format!("seq:{}", r.seq),
                    kind: Bubble::Tool,
                    text: format!("{name} {}", format::truncate(&tool_input.to_string(), 200)),
                    at: r.timestamp,
                });
            }
            Event::UserPromptSubmit { .. } if mine => self.typing = true,
            Event::Stop { .. } if mine => self.typing = false,
            _ => {}
        }
    }

    /// The bubbles, oldest first.
    pub fn items(&self) -> &[ChatItem] {
        &self.items
    }
}

/// One square of a workflow lane: an event of that step.
#[derive(Debug, Clone, PartialEq)]
pub struct Square {
    /// The event's seq.
    pub seq: u64,
    /// Its class.
    pub class: Class,
    /// The event.
    pub record: EventRecord,
}

/// A workflow run with its lanes (one per step, in the order they first had events).
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// The run as last known.
    pub record: WorkflowRecord,
    /// `(step, squares)`; `_workflow` holds the run's own events.
    pub lanes: Vec<(String, Vec<Square>)>,
    seqs: HashSet<u64>,
}

impl Run {
    fn new(record: WorkflowRecord) -> Self {
        Self { record, lanes: Vec::new(), seqs: HashSet::new() }
    }

    fn push(&mut self, r: &EventRecord) {
        if !self.seqs.insert(r.seq) {
            return;
        }
        let step = r.keys.step.clone().unwrap_or_else(|| "_workflow".into());
        let square = Square { seq: r.seq, class: Class::of(&r.event), record: r.clone() };
        let lane = match self.lanes.iter_mut().position(|(s, _)| *s == step) {
            Some(i) => &mut self.lanes[i].1,
            None => {
                self.lanes.push((step, Vec::new()));
                let last = self.lanes.len() - 1;
                &mut self.lanes[last].1
            }
        };
        let at = lane.partition_point(|s| s.seq < square.seq);
        lane.insert(at, square);
    }

    /// Seconds it ran (until `now` while it runs), when it started.
    pub fn elapsed(&self, now: Timestamp) -> Option<u64> {
        if let Some(d) = self.record.duration_seconds.filter(|_| self.record.status.is_final()) {
            return Some(d);
        }
        let start = self.record.started_at?;
        let end = if self.record.status.is_final() { self.record.completed_at.unwrap_or(now) } else { now };
        Some((end - start).num_seconds().max(0) as u64)
    }

    /// Finds one of its events by seq.
    pub fn square(&self, seq: u64) -> Option<&Square> {
        self.lanes.iter().flat_map(|(_, l)| l.iter()).find(|s| s.seq == seq)
    }
}

/// The workflow runs, newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Workflows {
    runs: BTreeMap<Id, Run>,
}

impl Workflows {
    /// Takes `runs` (from `GET /api/adws`) as the current state.
    pub fn load(&mut self, runs: Vec<WorkflowRecord>) {
        for r in runs {
            self.upsert(r);
        }
    }

    fn upsert(&mut self, record: WorkflowRecord) {
        match self.runs.get_mut(&record.id) {
            Some(run) if run.record.updated_at <= record.updated_at => run.record = record,
            Some(_) => {}
            None => {
                self.runs.insert(record.id, Run::new(record));
            }
        }
    }

    /// Adds a run's stored events (from `GET /api/adws/{id}/events`).
    pub fn load_events(&mut self, id: Id, events: &[EventRecord]) {
        if let Some(run) = self.runs.get_mut(&id) {
            for e in events {
                run.push(e);
            }
        }
    }

    /// Applies one new event.
    pub fn apply(&mut self, r: &EventRecord) {
        if let Event::WorkflowUpdated { workflow } = &r.event {
            self.upsert((**workflow).clone());
            return;
        }
        if let Some(run) = r.keys.workflow_id.and_then(|id| self.runs.get_mut(&id)) {
            run.push(r);
        }
    }

    /// The runs, newest first.
    pub fn runs(&self) -> Vec<&Run> {
        let mut v: Vec<&Run> = self.runs.values().collect();
        v.sort_by_key(|r| std::cmp::Reverse(r.record.created_at));
        v
    }

    /// One run.
    pub fn run(&self, id: Id) -> Option<&Run> {
        self.runs.get(&id)
    }

    /// How many are running.
    pub fn running(&self) -> usize {
        self.runs.values().filter(|r| r.record.status == WorkflowStatus::InProgress).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::tests::record;
    use orch_core::wire::{Usage, WorkflowStatus};
    use serde_json::json;

    pub(crate) fn agent(id: u128, name: &str, role: &str) -> Agent {
        serde_json::from_value(json!({
            "id": Id::from_u128(id), "orchestrator_id": null, "name": name, "model": "haiku",
            "system_prompt": null, "working_dir": "/tmp", "status": "idle", "session_id": null, "role": role,
            "usage": {}, "total_cost_usd": 0.0, "metadata": {}, "workflow_id": null, "workflow_step": null,
            "archived": false, "created_at": "2026-12-03T08:00:00Z", "updated_at": "2026-12-03T08:00:00Z"
        }))
        .unwrap()
    }

    fn on(agent: u128, seq: u64, event: Event) -> EventRecord {
        let mut r = record(seq, event);
        r.keys.agent_id = Some(Id::from_u128(agent));
        r
    }

    #[test]
    fn the_fleet_follows_status_cost_and_activity() {
        let mut f = Fleet::default();
        f.load(vec![agent(9, "orchestrator", "orchestrator")]);
        f.apply(&record(1, Event::AgentCreated { agent: Box::new(agent(1, "alice", "agent")) }));
        f.apply(&on(
            1,
            2,
            Event::AgentStatusChanged { old_status: AgentStatus::Idle, new_status: AgentStatus::Executing },
        ));
        f.apply(&on(
            1,
            3,
            Event::ToolUse {
                tool_name: "Write".into(),
                tool_input: json!({"file_path": "hello.py"}),
                tool_use_id: "t".into(),
            },
        ));
        let usage = Usage { input_tokens: 10, output_tokens: 5, ..Usage::default() };
        f.apply(&on(
            1,
            4,
            Event::AgentCostsUpdated {
                model: "haiku".into(),
                usage,
                cost_usd: 0.5,
                total_usage: usage,
                total_cost_usd: 0.5,
                context_used: Some(1_000),
                context_window: Some(200_000),
            },
        ));
        f.apply(&record(
            5,
            Event::OrchestratorCostsUpdated {
                usage: Usage::default(),
                cost_usd: 0.25,
                total_usage: Usage::default(),
                total_cost_usd: 0.25,
            },
        ));
        let cards = f.cards();
        assert_eq!(cards.len(), 1, "the orchestrator's own agent has no card");
        let alice = cards[0];
        assert_eq!(alice.agent.status, AgentStatus::Executing);
        assert_eq!(alice.agent.context_used, 1_000);
        assert_eq!(alice.counts[Class::Tool.index()], 1);
        assert!(alice.activity.as_deref().is_some_and(|a| a.contains("hello.py")), "{:?}", alice.activity);
        assert_eq!(f.stats(), (1, 1, 0.75));
        let last = alice.last_event.map(|t| t.timestamp_millis() as f64).unwrap_or_default();
        assert_eq!(alice.idle(last + 5_000.0), Some((5, false)));
        assert_eq!(alice.idle(last + 600_000.0), Some((600, true)), "executing and silent: stalled");
        assert_eq!(f.name_of(Id::from_u128(9)), Some("orchestrator"));
        f.apply(&on(1, 6, Event::AgentDeleted {}));
        assert!(f.cards().is_empty());
        assert_eq!(f.name_of(Id::from_u128(1)), Some("alice"), "deleted agents keep their name in the stream");
    }

    fn chat(id: u128, sender: &str, receiver: &str, text: &str, at: &str) -> ChatMessage {
        serde_json::from_value(json!({"id": Id::from_u128(id), "orchestrator_id": Id::from_u128(100),
            "sender": sender, "receiver": receiver, "agent_id": null, "message": text, "summary": null,
            "metadata": {}, "created_at": at}))
        .unwrap()
    }

    #[test]
    fn chat_replaces_the_optimistic_message_and_tracks_typing() {
        let mut c = Chat::default();
        c.load(vec![chat(1, "user", "orchestrator", "hi", "2026-12-03T08:00:00Z")]);
        c.add_local("make alice", chrono::DateTime::from_timestamp(1_796_000_000, 0).unwrap_or_default());
        assert_eq!(c.items().len(), 2);
        let echo = chat(2, "user", "orchestrator", "make alice", "2026-12-03T08:01:00Z");
        c.apply(&record(7, Event::ChatMessage { message: Box::new(echo.clone()) }), None);
        c.apply(&record(7, Event::ChatMessage { message: Box::new(echo) }), None);
        assert_eq!(c.items().len(), 2, "{:?}", c.items());
        assert!(c.items().iter().all(|i| !i.key.starts_with("local:")));
        let orch = Some(Id::from_u128(9));
        c.apply(&on(9, 8, Event::UserPromptSubmit { prompt: "make alice".into(), prompt_length: 10 }), orch);
        assert!(c.typing);
        c.apply(
            &on(
                9,
                9,
                Event::ToolUse {
                    tool_name: "mcp__mgmt__create_agent".into(),
                    tool_input: json!({"name": "alice"}),
                    tool_use_id: "t".into(),
                },
            ),
            orch,
        );
        c.apply(&on(9, 10, Event::Text { text: "not a bubble: the chat message is".into() }), orch);
        assert_eq!(c.items().len(), 3, "the orchestrator's text is not a bubble: its chat message is");
        let tool = c.items().iter().find(|i| i.key == "seq:9").cloned();
        assert_eq!(tool.as_ref().map(|i| i.kind), Some(Bubble::Tool));
        assert!(tool.is_some_and(|i| i.text.starts_with("create_agent {")));
    }

    #[test]
    fn workflow_lanes_fill_by_step_once_per_seq() {
        let id = Id::from_u128(50);
        let wf: WorkflowRecord = serde_json::from_value(json!({
            "id": id, "orchestrator_id": null, "name": "demo", "workflow_type": "plan_build", "description": null,
            "status": "in_progress", "current_step": "plan", "total_steps": 2, "completed_steps": 0,
            "started_at": "2026-12-03T08:00:00Z", "completed_at": null, "duration_seconds": null,
            "input_data": {}, "output_data": {}, "error_message": null, "error_step": null, "error_count": 0,
            "metadata": {}, "created_at": "2026-12-03T08:00:00Z", "updated_at": "2026-12-03T08:00:00Z"
        }))
        .unwrap();
        let mut w = Workflows::default();
        w.load(vec![wf.clone()]);
        let mut step_event = record(3, Event::Text { text: "planning".into() });
        step_event.keys.workflow_id = Some(id);
        step_event.keys.step = Some("plan".into());
        w.apply(&step_event);
        w.load_events(id, std::slice::from_ref(&step_event));
        let mut own = record(
            2,
            Event::SystemLog { level: orch_core::wire::LogLevel::Info, message: "start".into(), metadata: json!({}) },
        );
        own.keys.workflow_id = Some(id);
        w.apply(&own);
        let run = w.run(id).unwrap();
        let lanes: Vec<(&str, usize)> = run.lanes.iter().map(|(s, l)| (s.as_str(), l.len())).collect();
        assert_eq!(lanes, [("plan", 1), ("_workflow", 1)]);
        assert_eq!(w.running(), 1);
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-03T08:01:05Z").unwrap().to_utc();
        assert_eq!(run.elapsed(now), Some(65));
        let mut done = wf;
        done.status = WorkflowStatus::Completed;
        done.duration_seconds = Some(30);
        done.updated_at = now;
        w.apply(&record(4, Event::WorkflowUpdated { workflow: Box::new(done) }));
        assert_eq!(w.running(), 0);
        assert_eq!(w.run(id).and_then(|r| r.elapsed(now)), Some(30));
        assert!(w.run(id).and_then(|r| r.square(3)).is_some());
    }
}
