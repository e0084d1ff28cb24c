//! Who runs a workflow run: its claim in the store (taken with a compare-and-swap, renewed while it
//! runs, released with its final state), whether the process holding it is gone, and runs started
//! in the background of this process.

use std::sync::Arc;

use super::{WorkflowEngine, WorkflowRecord};
use crate::Interrupt;
use crate::executor::lease;
use crate::store::{Batch, Change, Store, StoreError};
use crate::wire::{Id, RunLease, WorkflowStatus};

/// Whether `record` was started but the process that ran it (or was launched to run it) is gone:
/// `orch adw resume` continues it. A pending run that no process was given is not stale.
pub fn is_stale(record: &WorkflowRecord) -> bool {
    match record.status {
        WorkflowStatus::InProgress => record.run.as_ref().is_none_or(lease::is_stale),
        WorkflowStatus::Pending => record.run.as_ref().is_some_and(lease::is_stale),
        _ => false,
    }
}

/// Renews the run's claim until `stopped` resolves; a renewal that finds the claim taken over
/// interrupts the run (another process runs the workflow now).
pub(super) async fn renew_claim(
    id: Id,
    store: Arc<dyn Store>,
    runtime: Arc<dyn crate::runtime::Runtime>,
    mut claim: RunLease,
    interrupt: Interrupt,
    mut stopped: futures::channel::oneshot::Receiver<()>,
) {
    loop {
        if let futures::future::Either::Right(_) =
            futures::future::select(runtime.sleep(lease::LEASE_RENEW_EVERY), &mut stopped).await
        {
            return;
        }
        let next = lease::renewed(&claim);
        let swap = Change::SwapWorkflowRun { workflow_id: id, expect: Some(claim.run_id), lease: Some(next.clone()) };
        match store.commit(Batch::new().change(swap).relaxed()).await {
            Ok(_) => claim = next,
            Err(StoreError::WorkflowRunConflict { current, .. }) => {
                tracing::warn!(workflow = %id, holder = ?current, "the workflow's claim was taken over; interrupting this run");
                interrupt.trigger();
                return;
            }
            Err(e) => tracing::warn!(workflow = %id, error = %e, "could not renew a workflow's claim; will retry"),
        }
    }
}

/// Marks a run live in this process (for [`lease::is_stale`]) until dropped.
pub(super) struct Live(pub(super) Id);

impl Drop for Live {
    fn drop(&mut self) {
        lease::unregister(self.0);
    }
}

/// A run started in the background by [`WorkflowEngine::spawn`]: wait on it or interrupt it.
#[derive(Clone)]
pub struct WorkflowTicket {
    /// The run.
    pub id: Id,
    /// Its name.
    pub name: String,
    interrupt: Interrupt,
    done: futures::future::Shared<futures::future::BoxFuture<'static, Result<WorkflowRecord, String>>>,
}

impl std::fmt::Debug for WorkflowTicket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkflowTicket").field("id", &self.id).field("name", &self.name).finish_non_exhaustive()
    }
}

impl WorkflowTicket {
    /// Waits for the run to end: its final record, or why it could not run.
    pub async fn wait(&self) -> Result<WorkflowRecord, String> {
        self.done.clone().await
    }

    /// Interrupts the run (it ends cancelled, resumable).
    pub fn interrupt(&self) {
        self.interrupt.trigger();
    }
}

impl WorkflowEngine {
    /// Runs the recorded run in the background (on the runner's runtime), in this process.
    pub fn spawn(&self, record: &WorkflowRecord) -> WorkflowTicket {
        use futures::FutureExt;
        let (tx, rx) = futures::channel::oneshot::channel();
        let (engine, id, interrupt) = (self.clone(), record.id, Interrupt::new());
        let run_interrupt = interrupt.clone();
        let run = async move {
            let result = engine.run(id, Some(run_interrupt)).await.map_err(|e| e.to_string());
            if let Err(e) = &result {
                tracing::warn!(workflow = %id, error = %e, "a background workflow run failed to run");
            }
            let _ = tx.send(result);
        };
        self.supervisor.runner().runtime().spawn(run.boxed());
        let done = async move { rx.await.unwrap_or_else(|_| Err("the workflow run was dropped".to_string())) };
        WorkflowTicket { id, name: record.name.clone(), interrupt, done: done.boxed().shared() }
    }
}
