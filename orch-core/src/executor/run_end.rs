//! Work that commits with the end of a run: a host that records something when a run ends (a task
//! graph completing the task the run was for) joins the commit that ends the run, one commit instead
//! of two, and whatever the end decides (dependents released, the next task claimed) is visible in the
//! same commit as the agent's answer.

use crate::ErrorKind;
use crate::store::{Batch, StoreError};
use crate::wire::{EndReason, Event, EventRecord};

/// Joins the commit that ends a run. Set on [`RunOptions::end`](super::RunOptions::end); used only when
/// that commit is the last thing the run does with its agent (a run's last turn, on an executor that
/// [ends with its last commit](super::AgentExecutor::ends_with_its_last_commit)); otherwise the host
/// records its end itself after the run, as it would without this.
pub trait RunEnd: Send + Sync + 'static {
    /// With the batch that ends the run (the agent's status set back, the turn's `Result` event among
    /// its events, see [`TurnResult::of`]): what to commit with it (its changes after the run's, its
    /// events after the run's), or `None` to let it commit alone.
    fn join(&self, ending: &Batch) -> Option<Batch>;

    /// What became of a joined commit: its records (the run's and the joined batch's) when it
    /// committed; or why the store refused it (a fenced write, a missing row: see [`refused`]), in
    /// which case the run's end was committed again without the joined batch. A failure of the store
    /// itself (the commit may or may not have happened) is also reported here, and fails the run.
    fn joined(&self, outcome: Result<&[EventRecord], &StoreError>);
}

/// Whether the store refused a commit for what it asked (a fenced write, a missing row, a conflict):
/// nothing of it was stored, and the same commit without the refused part may succeed.
pub fn refused(e: &StoreError) -> bool {
    matches!(e.kind(), ErrorKind::NotFound | ErrorKind::Conflict | ErrorKind::Busy)
}

/// How a turn ended, read from the `Result` event of the batch that ends it.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnResult<'a> {
    /// Why it stopped.
    pub stop_reason: &'a EndReason,
    /// Whether it ended in an error.
    pub is_error: bool,
    /// The agent's last text.
    pub result: Option<&'a str>,
    /// What the turn cost, USD.
    pub cost_usd: f64,
}

impl<'a> TurnResult<'a> {
    /// The `Result` event of `batch`, if it has one.
    pub fn of(batch: &'a Batch) -> Option<Self> {
        batch.events.iter().rev().find_map(|e| match &e.event {
            Event::Result { is_error, stop_reason, cost_usd, result, .. } => {
                Some(TurnResult { stop_reason, is_error: *is_error, result: result.as_deref(), cost_usd: *cost_usd })
            }
            _ => None,
        })
    }

    /// Whether the turn ended as the agent meant it to: it answered and stopped, no error.
    pub fn answered(&self) -> bool {
        !self.is_error && *self.stop_reason == EndReason::EndTurn
    }
}
