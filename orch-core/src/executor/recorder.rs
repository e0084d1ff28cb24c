//! [`TurnRecorder`]: the bookkeeping of one turn that every executor shares — events, entity changes,
//! the status change and the usage of the step in progress, stored together as one [`StepCommit`].

use super::TurnContext;
use crate::store::{Batch, Change, SavedState, StepCommit, StoreError};
use crate::wire::{AgentStatus, Event, EventKeys, EventRecord, Message, NewEvent, Prompt, Timestamp, Usage, new_id};

/// What a turn has to store at its next commit.
#[derive(Debug, Default)]
pub struct TurnRecorder {
    events: Vec<NewEvent>,
    changes: Vec<Change>,
    status: Option<AgentStatus>,
    usage: Option<(Usage, f64)>,
    context: Option<(u64, Option<u64>)>,
}

impl TurnRecorder {
    /// Nothing pending.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records an event with `keys`.
    pub fn emit(&mut self, keys: &EventKeys, event: Event) {
        self.events.push(NewEvent::new(keys.clone(), event));
    }

    /// Events waiting for the next commit.
    pub fn pending_events(&self) -> usize {
        self.events.len()
    }

    /// Whether nothing waits for a commit.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
            && self.changes.is_empty()
            && self.status.is_none()
            && self.usage.is_none()
            && self.context.is_none()
    }

    /// The agent's status changes from `old` to `new`: the event (when it changes) and the row.
    pub fn status_change(&mut self, keys: &EventKeys, old: AgentStatus, new: AgentStatus) {
        if old != new {
            self.emit(keys, Event::AgentStatusChanged { old_status: old, new_status: new });
        }
        self.status = Some(new);
    }

    /// Adds one model call's usage and cost to the step's.
    pub fn add_usage(&mut self, usage: &Usage, cost_usd: f64) {
        self.usage = Some(match self.usage.take() {
            Some((mut u, c)) => {
                u.add(usage);
                (u, c + cost_usd)
            }
            None => (*usage, cost_usd),
        });
    }

    /// The context the step's last model call used and its model's window, recorded on the agent.
    pub fn context(&mut self, used: u64, window: Option<u64>) {
        self.context = Some((used, window));
    }

    /// A change stored with the next commit.
    pub fn change(&mut self, change: Change) {
        self.changes.push(change);
    }

    /// The turn's prompt row, stored with the next commit.
    pub fn prompt(&mut self, cx: &TurnContext, task_slug: &str, prompt_text: &str, at: Timestamp) {
        let row = Prompt {
            id: new_id(),
            agent_id: Some(cx.agent.id),
            task_slug: Some(task_slug.to_string()),
            author: cx.options.author,
            prompt_text: prompt_text.to_string(),
            summary: None,
            session_id: cx.agent.session_id.clone(),
            created_at: at,
        };
        self.changes.push(Change::InsertPrompt(Box::new(row)));
    }

    /// Stores everything pending, with the executor's `state` and new conversation `messages`, in one
    /// atomic commit ([`TurnContext::commit`]), and returns the appended records.
    pub async fn commit(
        &mut self,
        cx: &TurnContext,
        state: Option<SavedState>,
        messages: Vec<Message>,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let step = self.take_step(cx, state, messages);
        cx.commit(step).await
    }

    /// [`TurnRecorder::commit`] with a [`ModelGate`](super::ModelGate)'s `reservation` change in the
    /// same commit. When the store refuses it ([`StoreError::BudgetExhausted`]), nothing of the merged
    /// commit is stored and the step is committed alone. Returns the records and whether the
    /// reservation was stored.
    pub async fn commit_reserving(
        &mut self,
        cx: &TurnContext,
        state: Option<SavedState>,
        messages: Vec<Message>,
        reservation: Change,
    ) -> Result<(Vec<EventRecord>, bool), StoreError> {
        let alone = Batch::from(self.take_step(cx, state, messages));
        let mut merged = alone.clone();
        merged.push_change(reservation);
        match cx.commit(merged).await {
            Ok(records) => Ok((records, true)),
            Err(e @ StoreError::BudgetExhausted { .. }) => {
                tracing::debug!(error = %e, agent = %cx.agent.name, "the reservation was refused; the step commits alone");
                Ok((cx.commit(alone).await?, false))
            }
            Err(e) => Err(e),
        }
    }

    /// Everything pending as one step, leaving nothing pending.
    fn take_step(&mut self, cx: &TurnContext, state: Option<SavedState>, messages: Vec<Message>) -> StepCommit {
        StepCommit {
            agent_id: cx.agent.id,
            status: self.status.take(),
            usage: self.usage.take(),
            state,
            context: self.context.take(),
            messages,
            changes: std::mem::take(&mut self.changes),
            events: std::mem::take(&mut self.events),
        }
    }
}
