//! Git isolation of task attempts (`[graphs] worktree = true`, `orch graph run --worktree`): each
//! attempt works in a git worktree of its own (`<repo>/.orch/worktrees/graph-<graph>-<task key>`, on
//! branch `orch/graph-<graph>-<task key>`, a retry's with `-a<attempt>` added), from the main tree's
//! current commit. When the attempt ends its changes are committed on the branch with a message naming
//! the task; a completed task's branch is then merged into the main tree's current branch, so the
//! tasks that depend on it start from its work. An attempt that did not complete keeps its branch (its
//! work stays reviewable) and the worktree directory is removed either way.
//!
//! A merge needs a main tree without uncommitted changes to tracked files, and no conflict: when it
//! cannot happen the task raises a checkpoint naming the branch, for a person to merge it (then skip
//! the checkpoint) or to retry the task.

use std::path::Path;

use serde_json::{Value, json};

use crate::runtime::Runtime;
use crate::wire::{Task, short_id};
use crate::workflow::worktree::{OnSuccess, Worktree};

/// The worktree of one attempt.
pub(crate) struct AttemptTree {
    tree: Worktree,
}

/// What became of an attempt's worktree when it ended.
pub(crate) struct Closed {
    /// The record: `path`, `branch`, `base`, `state` (`merged`, `kept`, `merge_skipped`), `commit`
    /// (or `commit_error`), `merge_error`, `removed`.
    pub record: Value,
    /// One line for people.
    pub note: String,
    /// Why a completed task's branch could not be merged.
    pub merge_failed: Option<String>,
}

impl AttemptTree {
    /// Opens the attempt's worktree in the repository holding `working_dir`; an error says why it
    /// cannot (not a git repository, no commit yet, git failed).
    pub(crate) async fn open(runtime: &dyn Runtime, working_dir: &Path, task: &Task) -> Result<Self, String> {
        let name = format!("graph-{}-{}", short_id(task.graph_id), task.key);
        let tree =
            Worktree::open(runtime, working_dir, &name, &format!("a{}", task.attempt), OnSuccess::Merge, None).await?;
        Ok(Self { tree })
    }

    /// The agent's working directory inside the worktree.
    pub(crate) fn workdir(&self) -> &Path {
        &self.tree.workdir
    }

    /// The branch.
    pub(crate) fn branch(&self) -> &str {
        &self.tree.branch
    }

    /// Commits the attempt's changes, merges a `completed` task's branch, and removes the worktree.
    pub(crate) async fn close(self, runtime: &dyn Runtime, task: &Task, completed: bool) -> Closed {
        let message = if completed {
            format!(
                "{}: {}\n\nTask {} of graph {}, attempt {}.",
                task.key, task.title, task.id, task.graph_id, task.attempt
            )
        } else {
            format!(
                "{}: {} (attempt {} did not complete)\n\nTask {} of graph {}.",
                task.key, task.title, task.attempt, task.id, task.graph_id
            )
        };
        let commit = self.tree.commit(runtime, &message).await;
        let merge_message =
            format!("Merge {} (task {} of graph {})", self.tree.branch, task.key, short_id(task.graph_id));
        // A change that could not be committed is not merged: the branch is kept for a person.
        let mut record = self.tree.close(runtime, completed && commit.is_ok(), false, &merge_message).await;
        match &commit {
            Ok(c) => record["commit"] = json!(c),
            Err(e) => record["commit_error"] = json!(e),
        }
        let branch = &self.tree.branch;
        let merge_failed = match (completed, &commit, record["state"].as_str()) {
            (false, _, _) | (true, Ok(_), Some("merged")) => None,
            (true, Err(e), _) => Some(format!("its changes could not be committed on branch {branch}: {e}")),
            (true, Ok(_), _) => Some(format!(
                "its branch {branch} could not be merged: {}",
                record["merge_error"].as_str().unwrap_or("unknown error")
            )),
        };
        let note = match (record["state"].as_str(), &commit) {
            (Some("merged"), Ok(Some(c))) => format!("commit {} on {branch}, merged into the main tree", short_sha(c)),
            (Some("merged"), _) => format!("no changes on {branch}"),
            (_, Ok(Some(c))) => format!("commit {} kept on branch {branch}", short_sha(c)),
            (_, Ok(None)) => format!("no changes on {branch}"),
            (_, Err(e)) => format!("branch {branch}: the changes could not be committed: {e}"),
        };
        Closed { record, note, merge_failed }
    }
}

fn short_sha(sha: &str) -> &str {
    sha.get(..10).unwrap_or(sha)
}
