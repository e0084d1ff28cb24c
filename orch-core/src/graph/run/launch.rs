//! Attempts started by the commit that claims their tasks: a worker's claim (and an ended attempt's
//! claim for its worker) carries a [`Starter`] that routes each claimed task's model and makes its
//! attempt's agent, created claimed for its run in that same commit. A task is then running with its
//! agent the moment it is claimed, with no second commit between the claim and the run: a child
//! released by its parent's end starts with that very commit. A task the starter cannot start there
//! (its provider is down, or it needs a git worktree first) is started by its attempt as before.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde_json::json;

use super::GraphRunner;
use super::attempt::AttemptHandle;
use crate::executor::NewClaimed;
use crate::wire::{Agent, Id, Started, Starter, Task, now, short_id};

/// The agent of an attempt of `task` on `model` in `workdir` (on `branch`, with a worktree), and the
/// name of its run.
pub(super) fn attempt_agent(task: &Task, model: &str, workdir: &Path, branch: Option<&str>) -> (Agent, String) {
    let name = format!("{}-{}-a{}", task.key, short_id(task.graph_id), task.attempt);
    let mut agent = Agent::new(name, model.to_string(), workdir.display().to_string());
    agent.metadata = json!({
        "graph_id": task.graph_id, "task_id": task.id, "task_key": task.key, "attempt": task.attempt,
    });
    if let Some(b) = branch {
        agent.metadata["branch"] = json!(b);
    }
    (agent, format!("graph-{}-{}", short_id(task.graph_id), task.key))
}

/// An attempt its claim started: its agent, created claimed with the claim's commit, and its handle.
pub(crate) struct Prestart {
    pub(crate) agent: NewClaimed,
    pub(crate) handle: AttemptHandle,
}

/// A task a claim took for a worker, with its attempt if the claim started it.
pub(crate) struct Claimed {
    pub(crate) task: Task,
    pub(crate) started: Option<Prestart>,
}

impl std::fmt::Debug for Claimed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Claimed").field("task", &self.task.key).field("started", &self.started.is_some()).finish()
    }
}

/// The starter of one claim, and the attempts it made, found again by the agent ids the commit
/// recorded. Those it made that the commit did not keep (a store retrying its transaction calls the
/// starter again) are dropped with it.
pub(crate) struct Launch {
    starter: Option<Starter>,
    made: Arc<Mutex<HashMap<Id, Prestart>>>,
}

impl Launch {
    /// A launch for `runner`'s attempts. Attempts in git worktrees are started by their attempt (the
    /// worktree comes before the agent), so their runner's claims start none.
    pub(crate) fn new(runner: &GraphRunner) -> Self {
        let made: Arc<Mutex<HashMap<Id, Prestart>>> = Arc::default();
        let starter = (!runner.settings.worktree).then(|| {
            let (router, workdir, kept) = (runner.router.clone(), runner.working_dir.clone(), made.clone());
            Starter::new(move |claimed: &Task| {
                // A provider known to be down: the attempt releases the task to wait for it.
                let model = router.pick(&router.route(claimed)).ok()?;
                let (agent, slug) = attempt_agent(claimed, &model, &workdir, None);
                let mut task = claimed.clone();
                task.agent_id = Some(agent.id);
                task.model = Some(model);
                task.updated_at = now();
                let handle = AttemptHandle::new();
                let agent = NewClaimed::new(agent, Some(slug), handle.interrupt.clone());
                let started =
                    Started { agent: Box::new(agent.agent().clone()), created: agent.created(), task: Box::new(task) };
                kept.lock().unwrap_or_else(|p| p.into_inner()).insert(agent.agent().id, Prestart { agent, handle });
                Some(started)
            })
        });
        Self { starter, made }
    }

    /// The starter a claim carries.
    pub(crate) fn starter(&self) -> Option<Starter> {
        self.starter.clone()
    }

    /// The claimed `tasks` (as the commit recorded them), each with its attempt if the claim started it.
    pub(crate) fn claimed(&self, tasks: Vec<Task>) -> Vec<Claimed> {
        let mut made = self.made.lock().unwrap_or_else(|p| p.into_inner());
        tasks
            .into_iter()
            .map(|task| {
                let started = task.agent_id.and_then(|a| made.remove(&a));
                Claimed { task, started }
            })
            .collect()
    }
}
