//! [`WorkflowRun`]'s git worktree: opened when the run starts (or reopened when it resumes), a commit
//! after each step that changed files, and merged, kept or left for resume when the run ends (see
//! [`crate::workflow::worktree`]).

use serde_json::{Value, json};

use super::{WorkflowError, WorkflowRun};
use crate::wire::{LogLevel, StepStatus, short_id};
use crate::workflow::worktree::{Isolation, WORKTREE_KEY, Worktree};

impl WorkflowRun<'_> {
    /// Opens the run's git worktree when it runs in one (its recorded one when resumed), recording it
    /// on the run.
    pub(super) async fn enter_worktree(&mut self, isolation: Isolation) -> Result<(), WorkflowError> {
        let isolation = isolation.with_input(&self.record.input_data).map_err(WorkflowError::Input)?;
        if !isolation.worktree {
            return Ok(());
        }
        let runtime = self.engine.supervisor.runner().runtime().clone();
        let recorded = self.record.output_data.get(WORKTREE_KEY).cloned();
        let tree = Worktree::open(
            runtime.as_ref(),
            &self.engine.working_dir,
            &self.record.name,
            &short_id(self.record.id),
            isolation.on_success,
            recorded.as_ref(),
        )
        .await
        .map_err(WorkflowError::Worktree)?;
        self.set_output(WORKTREE_KEY, tree.record());
        let message = format!("Working in git worktree {} on branch {}", tree.path.display(), tree.branch);
        self.worktree = Some(tree);
        self.save(Vec::new()).await?;
        self.log(None, LogLevel::Info, message, self.record.output_data[WORKTREE_KEY].clone()).await;
        Ok(())
    }

    /// Commits a step's changes in the run's worktree (if it has one): the StepEnd payload's
    /// `commit` (the new commit, or null when nothing changed) or `commit_error`.
    pub(super) async fn commit_step(&self, step: &str, status: StepStatus) -> Option<serde_json::Map<String, Value>> {
        let tree = self.worktree.as_ref()?;
        let runtime = self.engine.supervisor.runner().runtime().clone();
        let mut message = format!("{} {}: {step}", self.record.workflow_type, self.record.name);
        if status == StepStatus::Failed {
            message.push_str(" (failed attempt)");
        }
        let mut out = serde_json::Map::new();
        match tree.commit(runtime.as_ref(), &message).await {
            Ok(commit) => {
                out.insert("commit".into(), json!(commit));
            }
            Err(e) => {
                tracing::warn!(error = %e, step, "could not commit a workflow step's changes");
                out.insert("commit_error".into(), json!(e));
            }
        }
        Some(out)
    }

    /// Ends the run's worktree (if it has one) as the run ends: merged or kept on success, kept on a
    /// failure, left in place for a cancelled (resumable) run; recorded on the run.
    pub(super) async fn leave_worktree(&mut self, result: Result<(), WorkflowError>) -> Result<(), WorkflowError> {
        let Some(tree) = self.worktree.take() else {
            return result;
        };
        let runtime = self.engine.supervisor.runner().runtime().clone();
        let resumable = matches!(result, Err(WorkflowError::Interrupted { .. }));
        let message = format!("Merge {} ({} {})", tree.branch, self.record.workflow_type, self.record.name);
        let rec = tree.close(runtime.as_ref(), result.is_ok(), resumable, &message).await;
        let note = match rec["state"].as_str() {
            Some("merged") => format!("Merged branch {} into the main tree", tree.branch),
            Some("merge_skipped") => {
                format!("Branch {} not merged: {}", tree.branch, rec["merge_error"].as_str().unwrap_or_default())
            }
            Some("active") => format!("Worktree {} left for resume", tree.path.display()),
            _ => format!("Branch {} kept", tree.branch),
        };
        self.set_output(WORKTREE_KEY, rec.clone());
        self.log(None, LogLevel::Info, note, rec).await;
        result
    }
}
