//! An attempt's end committed with its run's end: when nothing is left to do after the agent answers
//! (no verification command, no QA review, no worktree), the task's completion, the dependents it
//! releases and the worker's next claim join the commit that records the agent's answer and ends its
//! run ([`RunEnd`]). A task then costs one commit less, and its dependents are claimable as soon as the
//! answer is stored. Whatever else ends the run (an error, a stop, a budget refused, the agent asking
//! for a person) leaves the end to the attempt, as before; so does a refused join (the attempt was
//! taken over), which the attempt's own end then finds fenced too.

use std::sync::{Arc, Mutex};

use super::GraphSettings;
use super::attempt::{AttemptHandle, End, ending};
use super::budget::BudgetGate;
use super::launch::{Claimed, Launch};
use super::prompt::read_knowledge;
use super::qa::{commands, criteria};
use super::stuck::{Stuck, Watch};
use super::worker::{ClaimOnEnd, claimed_by, task_claim};
use crate::executor::{RunEnd, TurnResult};
use crate::store::{Batch, Change, StoreError};
use crate::wire::{EventRecord, Task};

/// Joins a completed attempt's end to its run's end.
pub(super) struct JoinedEnd {
    /// The task as its attempt started it.
    task: Task,
    fence: u32,
    settings: GraphSettings,
    /// How the end claims for the worker, and what starts the tasks it claims.
    next: Option<(ClaimOnEnd, Launch)>,
    handle: AttemptHandle,
    gate: Arc<BudgetGate>,
    watch: Arc<Watch>,
    stuck: Arc<Mutex<Option<Stuck>>>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The task as the joined batch ends it, and whether that batch claims for the worker.
    offered: Option<(Task, bool)>,
    /// The task as stored by the joined commit, and what its claim took (`None`: it tried none).
    done: Option<(Task, Option<Vec<Claimed>>)>,
}

/// What the attempt hands over for its end to be joined to the run's.
pub(super) struct JoinParts {
    pub(super) handle: AttemptHandle,
    pub(super) gate: Arc<BudgetGate>,
    pub(super) watch: Arc<Watch>,
    pub(super) stuck: Arc<Mutex<Option<Stuck>>>,
}

impl JoinedEnd {
    /// A join for the attempt at `fence` of `task` (as started), if its end may join the run's: nothing
    /// runs after the agent answers (`worktree`: the attempt has a worktree to commit and merge).
    pub(super) fn new(
        task: &Task,
        fence: u32,
        settings: &GraphSettings,
        worktree: bool,
        next: Option<(ClaimOnEnd, Launch)>,
        parts: JoinParts,
    ) -> Option<Self> {
        let review = settings.qa_model.is_some() && !criteria(&task.verification).is_empty();
        if worktree || commands(&task.verification).next().is_some() || review {
            return None;
        }
        Some(Self {
            task: task.clone(),
            fence,
            settings: settings.clone(),
            next,
            handle: parts.handle,
            gate: parts.gate,
            watch: parts.watch,
            stuck: parts.stuck,
            state: Mutex::default(),
        })
    }

    /// The task as the joined commit stored it, and what its claim took, once that commit succeeded.
    pub(super) fn take_done(&self) -> Option<(Task, Option<Vec<Claimed>>)> {
        self.lock().done.take()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the attempt would end otherwise than completed whatever the agent answered: a budget
    /// refused, a stop, the stuck watch, a question for a person (in the ending batch too).
    fn ends_otherwise(&self, ending: &Batch) -> bool {
        self.gate.refused().is_some()
            || self.handle.stopped().is_some()
            || self.stuck.lock().unwrap_or_else(|p| p.into_inner()).is_some()
            || self.watch.check_asked().is_some()
            || Watch::asks_in(ending.events.iter().map(|e| &e.event))
    }
}

impl RunEnd for JoinedEnd {
    fn join(&self, run_end: &Batch) -> Option<Batch> {
        let result = TurnResult::of(run_end)?;
        if !result.answered() || self.ends_otherwise(run_end) {
            return None;
        }
        let answer = result.result.unwrap_or_default().to_string();
        let end = End::Completed { knowledge: read_knowledge(&answer), output: answer };
        let mut task = self.task.clone();
        // A fresh agent: its one turn is all the attempt cost.
        let mut batch = ending(&self.settings, &mut task, self.fence, end, result.cost_usd, Vec::new());
        let next = self.next.as_ref().filter(|(n, _)| n.wanted());
        if let Some((n, launch)) = next {
            let claim = task_claim(&self.settings, n, task.updated_at, 1, launch.starter());
            batch.push_change(Change::ClaimTasks(Box::new(claim)));
        }
        self.lock().offered = Some((task, next.is_some()));
        Some(batch)
    }

    fn joined(&self, outcome: Result<&[EventRecord], &StoreError>) {
        let mut state = self.lock();
        let offered = state.offered.take();
        if let (Ok(records), Some((task, claimed))) = (outcome, offered) {
            let claimed = match (&self.next, claimed) {
                (Some((n, launch)), true) => Some(launch.claimed(claimed_by(records, &n.worker))),
                _ => None,
            };
            state.done = Some((task, claimed));
        }
    }
}
