//! One attempt of one task: route its model, create its agent (recorded on the task in the same
//! commit), write its prompt, run it on the supervisor under the budget gate and the stuck watch, check
//! it, and end the attempt with one fenced commit: completed (releasing dependents), back to ready (a
//! retry after backoff, or a release without failure), blocked on a checkpoint, or cancelled.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use serde_json::json;

use super::budget::{BudgetGate, warn_near_limits};
use super::isolate::{AttemptTree, Closed};
use super::joined::{JoinParts, JoinedEnd};
use super::launch::{Claimed, Launch, attempt_agent};
use super::prompt::{OUTPUT_CHARS, read_knowledge};
use super::qa::{Review, commands};
use super::stuck::{Stuck, Watch};
use super::worker::{ClaimOnEnd, Ended, SharedDeps, claimed_by, task_claim};
use super::{GraphRunner, GraphSettings};
use crate::executor::{NewClaimed, RunClaim, RunError, RunOptions};
use crate::interrupt::Interrupt;
use crate::runtime::ProcessSpec;
use crate::store::{Batch, Change, StoreError};
use crate::text::clip_chars;
use crate::wire::{Agent, EndReason, Event, EventKeys, Fact, GraphStatus, LogLevel, Task, TaskStatus, now};

/// Why a worker interrupts an attempt from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The worker is stopping: the task goes back to ready, no failure counted.
    Worker,
    /// The graph was cancelled.
    Cancelled,
}

/// A running attempt's handle, kept by its worker.
#[derive(Clone)]
pub(crate) struct AttemptHandle {
    pub(crate) interrupt: Interrupt,
    pub(crate) stop: Arc<std::sync::Mutex<Option<Stop>>>,
}

impl AttemptHandle {
    pub(crate) fn new() -> Self {
        Self { interrupt: Interrupt::new(), stop: Arc::new(std::sync::Mutex::new(None)) }
    }

    pub(crate) fn stop(&self, why: Stop) {
        *self.stop.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
        self.interrupt.trigger();
    }

    pub(super) fn stopped(&self) -> Option<Stop> {
        *self.stop.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// How an attempt ended.
pub(super) enum End {
    Completed {
        output: String,
        knowledge: Vec<Fact>,
    },
    Failed(String),
    Checkpoint(String),
    /// Back to ready without a failure (the worker stops, the provider is unavailable, the budget).
    Release {
        not_before: Option<Duration>,
        note: String,
    },
    Budget(String),
    Cancelled,
}

impl GraphRunner {
    /// Runs one claimed attempt of `task` to its end, which claims the next task for the worker
    /// (`next`) in the same commit. `started`: its agent, when its claim's commit created it (else the
    /// attempt creates it). `deps`: the read of its dependencies with those of the other tasks of its
    /// claim (`None`, or the task not found there: the attempt reads them). Returns the facts it
    /// reported when it completed and what its end claimed.
    pub(crate) async fn run_attempt(
        &self,
        task: Task,
        started: Option<NewClaimed>,
        handle: AttemptHandle,
        facts: Vec<Fact>,
        deps: Option<SharedDeps>,
        next: Option<ClaimOnEnd>,
    ) -> Ended {
        let key = task.key.clone();
        match self.attempt(task, started, &handle, facts, deps, next.as_ref()).await {
            Ok(ended) => ended,
            Err(AttemptError::Fenced(e)) => {
                tracing::info!(task = %key, error = %e, "attempt taken over by another worker");
                Ended::default()
            }
            Err(AttemptError::Store(e)) => {
                tracing::warn!(task = %key, error = %e, "an attempt could not be recorded; its lease will expire");
                Ended::default()
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn attempt(
        &self,
        mut task: Task,
        started: Option<NewClaimed>,
        handle: &AttemptHandle,
        facts: Vec<Fact>,
        deps: Option<SharedDeps>,
        next: Option<&ClaimOnEnd>,
    ) -> Result<Ended, AttemptError> {
        let fence = task.attempt;
        let runtime = self.supervisor.runner().runtime().clone();
        let (agent, claim, tree) = match started {
            Some(new) => {
                let agent = new.agent().clone();
                (agent, self.supervisor.runner().adopt(new).await?, None)
            }
            None => match self.begin(&mut task, fence, handle, next).await? {
                Begun::Running(running) => *running,
                Begun::Ended(ended) => return Ok(ended),
            },
        };
        let Some(model) = task.model.clone() else {
            return Err(AttemptError::Store(StoreError::Backend(format!("task {} started without a model", task.key))));
        };
        let workdir = tree.as_ref().map_or_else(|| self.working_dir.clone(), |t| t.workdir().to_path_buf());
        let slug = claim.lease().task_slug.clone();
        // The prompt (its dependencies' outputs read from the store, unless its worker read them)
        // after the start, which does not need it: a released child's attempt starts with its
        // claim's commit and one more, no read between them.
        let read = match deps {
            Some(shared) => Some(shared.await),
            None => None,
        };
        let prompt = match self.prompt_of(&task, &facts, read.as_deref()).await {
            Ok(p) => p,
            Err(e) => {
                // The claim is released as it is dropped; the task's lease expires and it runs again.
                drop(claim);
                if let Some(t) = tree {
                    t.close(runtime.as_ref(), &task, false).await;
                }
                return Err(e.into());
            }
        };

        let gate = Arc::new(BudgetGate::new(self.store.clone(), task.graph_id));
        let watch = Arc::new(Watch::new(self.settings.stuck));
        let stuck: Arc<std::sync::Mutex<Option<Stuck>>> = Arc::default();
        let observer = watch.clone();
        // The end of an attempt with nothing to do after the agent answers joins the run's end.
        let parts =
            JoinParts { handle: handle.clone(), gate: gate.clone(), watch: watch.clone(), stuck: stuck.clone() };
        let claims = next.map(|n| (n.clone(), Launch::new(self)));
        let joined = JoinedEnd::new(&task, fence, &self.settings, tree.is_some(), claims, parts).map(Arc::new);
        let options = RunOptions {
            task_slug: slug,
            interrupt: Some(handle.interrupt.clone()),
            gate: Some(gate.clone()),
            on_events: Some(Arc::new(move |records| observer.observe(records))),
            end: joined.clone().map(|j| j as Arc<dyn crate::executor::RunEnd>),
            ..RunOptions::default()
        };
        let run = self.supervisor.run_claimed(&agent, claim, prompt, options).fuse();
        let watchdog = {
            let (watch, stuck, interrupt, runtime) =
                (watch.clone(), stuck.clone(), handle.interrupt.clone(), self.supervisor.runner().runtime().clone());
            async move {
                loop {
                    runtime.sleep(watch.tick()).await;
                    if let Some(s) = watch.check() {
                        *stuck.lock().unwrap_or_else(|p| p.into_inner()) = Some(s);
                        interrupt.trigger();
                        return;
                    }
                }
            }
        }
        .fuse();
        futures::pin_mut!(run, watchdog);
        let outcome = loop {
            futures::select! {
                o = run => break o,
                () = watchdog => {}
            }
        };
        if let Some((done, claimed)) = joined.as_ref().and_then(|j| j.take_done()) {
            // Completed with the run's end: nothing of the attempt is left to record.
            task = done;
            warn_near_limits(&self.store, task.graph_id, &self.warned).await;
            return Ok(Ended { learned: task.knowledge.clone(), claimed });
        }
        let mut cost = match &outcome {
            // A fresh agent: its one turn is all it cost.
            Ok(o) => o.cost_usd,
            Err(_) => self.store.get_agent(agent.id).await.ok().flatten().map_or(0.0, |a| a.total_cost_usd),
        };
        let mut notes: Vec<Note> = Vec::new();
        let stuck = stuck.lock().unwrap_or_else(|p| p.into_inner()).clone().or_else(|| watch.check_asked());
        let end = if let Some(reason) = gate.refused() {
            End::Budget(reason)
        } else if handle.stopped() == Some(Stop::Cancelled) {
            End::Cancelled
        } else if handle.stopped() == Some(Stop::Worker) {
            End::Release { not_before: None, note: "its worker stopped".into() }
        } else {
            match (stuck, outcome) {
                (Some(Stuck::AskedHuman(q)), _) => End::Checkpoint(format!("the agent asks for a person: {q}")),
                (Some(Stuck::Rule(r)), _) => End::Failed(format!("stuck: {r}")),
                (None, Ok(o)) if o.stop_reason == EndReason::EndTurn => {
                    let answer = o.final_text.unwrap_or_default();
                    match self.verify(&task, &workdir, &handle.interrupt).await {
                        Ok(()) => {
                            self.check(&task, answer, &workdir, &gate, &handle.interrupt, &mut cost, &mut notes).await
                        }
                        Err(why) => End::Checkpoint(format!("verification failed: {why}")),
                    }
                }
                (None, Ok(o)) => End::Failed(format!("the agent stopped: {}", o.stop_reason)),
                (None, Err(RunError::Model(e))) if e.is_retryable() => {
                    self.router.mark_down(&model, self.settings.provider_down_for);
                    End::Release {
                        not_before: Some(self.settings.provider_down_for.min(Duration::from_secs(5))),
                        note: format!("the provider of {model} is unavailable: {e}"),
                    }
                }
                (None, Err(e)) => End::Failed(e.to_string()),
            }
        };
        // A budget refused to the reviewer pauses the graph like one refused to the agent.
        let end = match (gate.refused(), end) {
            (Some(reason), End::Completed { .. } | End::Checkpoint(_)) => End::Budget(reason),
            (_, end) => end,
        };
        // The worktree's changes are committed (and a completed task's merged) before the task ends,
        // so its dependents start from them.
        let end = match tree {
            Some(t) => {
                let closed = t.close(runtime.as_ref(), &task, matches!(end, End::Completed { .. })).await;
                notes.push(Note::git(&task, &closed));
                match (end, closed.merge_failed) {
                    (End::Completed { .. }, Some(why)) => End::Checkpoint(why),
                    (End::Completed { mut output, knowledge }, None) => {
                        output.push_str(&format!("\n\n[git] {}", closed.note));
                        End::Completed { output, knowledge }
                    }
                    (end, _) => end,
                }
            }
            None => end,
        };
        let claimed = self.end(&mut task, fence, end, cost, notes, next).await?;
        warn_near_limits(&self.store, task.graph_id, &self.warned).await;
        let learned = if task.status == TaskStatus::Completed { task.knowledge.clone() } else { Vec::new() };
        Ok(Ended { learned, claimed })
    }

    /// Starts an attempt its claim did not start: routes its model, opens its worktree, and creates its
    /// agent claimed for its run with the task's new state, in one commit. An attempt that cannot start
    /// (its provider is down, no worktree) ends here.
    async fn begin(
        &self,
        task: &mut Task,
        fence: u32,
        handle: &AttemptHandle,
        next: Option<&ClaimOnEnd>,
    ) -> Result<Begun, AttemptError> {
        let route = self.router.route(task);
        let model = match self.router.pick(&route) {
            Ok(m) => m,
            Err(until) => {
                let wait = until.saturating_duration_since(std::time::Instant::now());
                let note = format!("waiting: the provider of {} is unavailable", route.model);
                let end = End::Release { not_before: Some(wait), note };
                let claimed = self.end(task, fence, end, 0.0, Vec::new(), next).await?;
                return Ok(Begun::Ended(Ended { learned: Vec::new(), claimed }));
            }
        };
        let runtime = self.supervisor.runner().runtime().clone();
        let tree = if self.settings.worktree {
            match AttemptTree::open(runtime.as_ref(), &self.working_dir, task).await {
                Ok(t) => Some(t),
                Err(e) => {
                    let end = End::Checkpoint(format!("no git worktree for the task: {e}"));
                    let claimed = self.end(task, fence, end, 0.0, Vec::new(), next).await?;
                    return Ok(Begun::Ended(Ended { learned: Vec::new(), claimed }));
                }
            }
        } else {
            None
        };
        let workdir = tree.as_ref().map_or_else(|| self.working_dir.clone(), |t| t.workdir().to_path_buf());
        let (agent, slug) = attempt_agent(task, &model, &workdir, tree.as_ref().map(|t| t.branch()));
        task.agent_id = Some(agent.id);
        task.model = Some(model);
        task.updated_at = now();
        // The agent is created claimed for its run, with the task's new state, in one commit. Relaxed,
        // as the claim before it: a power cut that loses the start also ends this worker, and the
        // task's lease then expires and it runs again. The first durable commit after it (the model
        // call's step) makes it durable too, so nothing the agent did is recorded without its start.
        let with = Batch::new()
            .change(Change::UpdateTask { task: Box::new(task.clone()), fence: Some(fence) })
            .event(EventKeys::default(), Event::TaskUpdated { task: Box::new(task.clone()) })
            .relaxed();
        let runner = self.supervisor.runner();
        match runner.create_claimed(agent.clone(), with, Some(slug), Some(handle.interrupt.clone())).await {
            Ok((claim, _)) => Ok(Begun::Running(Box::new((agent, claim, tree)))),
            Err(e) => {
                // Taken over or the store failed before the agent existed: the worktree goes (nothing
                // in it yet).
                if let Some(t) = tree {
                    t.close(runtime.as_ref(), task, false).await;
                }
                Err(e.into())
            }
        }
    }

    /// Runs the task's verification commands (`$ command` items) in the attempt's working directory;
    /// other items are criteria for the agent (in its prompt) and a reviewing pass.
    async fn verify(&self, task: &Task, workdir: &std::path::Path, interrupt: &Interrupt) -> Result<(), String> {
        for cmd in commands(&task.verification) {
            let spec = ProcessSpec {
                program: "sh".into(),
                args: vec!["-c".into(), cmd.to_string()],
                cwd: workdir.to_path_buf(),
                env: Vec::new(),
                timeout: Some(Duration::from_secs(600)),
                output_limit: 16 * 1024,
                confine: None,
            };
            let out = self
                .supervisor
                .runner()
                .runtime()
                .run_process(spec, interrupt.clone())
                .await
                .map_err(|e| format!("`{cmd}` could not run: {e}"))?;
            if out.exit_code != Some(0) {
                let tail = clip_chars(out.stderr.trim(), 500, "…");
                let tail = if tail.is_empty() { String::new() } else { format!(": {tail}") };
                return Err(match out.exit_code {
                    Some(c) => format!("`{cmd}` exited with {c}{tail}"),
                    None => format!("`{cmd}` was killed{tail}"),
                });
            }
        }
        Ok(())
    }

    /// The checks of a completed attempt after its commands passed: the QA review when a QA model is
    /// set and the task has criteria to review. Adds the review's cost and its note.
    #[allow(clippy::too_many_arguments)]
    async fn check(
        &self,
        task: &Task,
        mut answer: String,
        workdir: &std::path::Path,
        gate: &Arc<BudgetGate>,
        interrupt: &Interrupt,
        cost: &mut f64,
        notes: &mut Vec<Note>,
    ) -> End {
        let Some(model) = self.settings.qa_model.as_deref() else {
            return End::Completed { knowledge: read_knowledge(&answer), output: answer };
        };
        let Some((review, spent)) = self.review(task, &answer, workdir, model, gate.clone(), interrupt).await else {
            return End::Completed { knowledge: read_knowledge(&answer), output: answer };
        };
        *cost += spent;
        notes.push(Note::qa(task, model, &review));
        match review {
            Review::Pass(why) => {
                let knowledge = read_knowledge(&answer);
                answer.push_str(&format!("\n\n[qa] passed: {why}"));
                End::Completed { knowledge, output: answer }
            }
            Review::Fail(why) => End::Checkpoint(format!("QA failed: {why}")),
        }
    }

    /// Ends the attempt in one fenced commit, with its notes (its worktree's end, its review), which
    /// also claims the next task for the worker when `next` wants it (the slot this attempt frees): the
    /// dependents it releases are claimable in that same commit, so a child starts as its parent ends.
    /// Returns the tasks claimed (`None`: no claim was tried).
    async fn end(
        &self,
        task: &mut Task,
        fence: u32,
        end: End,
        attempt_cost: f64,
        notes: Vec<Note>,
        next: Option<&ClaimOnEnd>,
    ) -> Result<Option<Vec<Claimed>>, AttemptError> {
        let mut batch = ending(&self.settings, task, fence, end, attempt_cost, notes);
        let next = next.filter(|n| n.wanted()).map(|n| (n, Launch::new(self)));
        if let Some((n, launch)) = &next {
            let claim = task_claim(&self.settings, n, task.updated_at, 1, launch.starter());
            batch.push_change(Change::ClaimTasks(Box::new(claim)));
        }
        let records = self.store.commit(batch).await?;
        Ok(next.map(|(n, launch)| launch.claimed(claimed_by(&records, &n.worker))))
    }
}

/// The batch that ends the attempt at `fence` of `task` (which it updates as it will be stored): the
/// task's new state, its events and notes, and the fenced `FinishTask`.
pub(super) fn ending(
    settings: &GraphSettings,
    task: &mut Task,
    fence: u32,
    end: End,
    attempt_cost: f64,
    notes: Vec<Note>,
) -> Batch {
    let at = now();
    task.cost_usd += attempt_cost;
    task.updated_at = at;
    task.claimed_by = None;
    task.lease_until = None;
    let mut batch = Batch::new();
    let mut log: Option<(LogLevel, String)> = None;
    match end {
        End::Completed { output, knowledge } => {
            task.status = TaskStatus::Completed;
            task.output = Some(clip_chars(&output, OUTPUT_CHARS, "\n…(cut)"));
            task.knowledge = knowledge;
            task.error = None;
            task.completed_at = Some(at);
        }
        End::Failed(why) => {
            task.failures += 1;
            task.error = Some(why.clone());
            if task.failures >= settings.max_attempts {
                task.status = TaskStatus::Blocked;
                task.checkpoint = Some(format!("failed {} attempts; the last: {why}", task.failures));
                log = Some((LogLevel::Warning, format!("Task {} raised a checkpoint: retries exhausted", task.key)));
            } else {
                task.status = TaskStatus::Ready;
                let wait = settings.backoff(task.failures);
                task.not_before = chrono::Duration::from_std(wait).ok().map(|d| at + d);
                log = Some((
                    LogLevel::Warning,
                    format!(
                        "Task {} attempt {} failed ({why}); retry in {:.1} s",
                        task.key,
                        task.attempt,
                        wait.as_secs_f64()
                    ),
                ));
            }
        }
        End::Checkpoint(why) => {
            task.status = TaskStatus::Blocked;
            task.error = Some(why.clone());
            task.checkpoint = Some(why);
            log = Some((LogLevel::Warning, format!("Task {} raised a checkpoint", task.key)));
        }
        End::Release { not_before, note } => {
            task.status = TaskStatus::Ready;
            task.not_before = not_before.and_then(|d| chrono::Duration::from_std(d).ok()).map(|d| at + d);
            log = Some((LogLevel::Info, format!("Task {} released: {note}", task.key)));
        }
        End::Budget(reason) => {
            task.status = TaskStatus::Ready;
            batch.push_change(Change::SetGraphStatus {
                id: task.graph_id,
                status: GraphStatus::Paused,
                error: Some(reason.clone()),
                from: vec![GraphStatus::Running],
            });
            log = Some((LogLevel::Warning, format!("Task {} waits: {reason}", task.key)));
        }
        End::Cancelled => {
            task.status = TaskStatus::Cancelled;
            task.completed_at = Some(at);
        }
    }
    batch.push_event(EventKeys::default(), Event::TaskUpdated { task: Box::new(task.clone()) });
    for n in notes {
        batch.push_event(
            EventKeys::default(),
            Event::SystemLog { level: n.level, message: n.message, metadata: n.metadata },
        );
    }
    if let Some((level, message)) = log {
        let metadata = json!({"graph_id": task.graph_id, "task_id": task.id, "attempt": task.attempt});
        batch.push_event(EventKeys::default(), Event::SystemLog { level, message, metadata });
    }
    batch.push_change(Change::FinishTask { task: Box::new(task.clone()), fence });
    batch
}

/// A log line of an attempt's end, recorded with it.
pub(super) struct Note {
    pub(super) level: LogLevel,
    pub(super) message: String,
    pub(super) metadata: serde_json::Value,
}

impl Note {
    fn git(task: &Task, closed: &Closed) -> Self {
        Note {
            level: if closed.merge_failed.is_some() { LogLevel::Warning } else { LogLevel::Info },
            message: format!("Task {} attempt {}: {}", task.key, task.attempt, closed.note),
            metadata: json!({
                "graph_id": task.graph_id, "task_id": task.id, "attempt": task.attempt, "worktree": closed.record,
            }),
        }
    }

    fn qa(task: &Task, model: &str, review: &Review) -> Self {
        let (pass, why) = match review {
            Review::Pass(w) => (true, w),
            Review::Fail(w) => (false, w),
        };
        Note {
            level: if pass { LogLevel::Info } else { LogLevel::Warning },
            message: format!(
                "QA of task {} attempt {}: {} — {why}",
                task.key,
                task.attempt,
                if pass { "passed" } else { "failed" }
            ),
            metadata: json!({
                "event": "qa", "graph_id": task.graph_id, "task_id": task.id, "attempt": task.attempt,
                "qa": {"pass": pass, "notes": why, "model": model},
            }),
        }
    }
}

/// How an attempt's own start went.
enum Begun {
    /// Its agent runs for it, claimed (in its worktree, if it has one).
    Running(Box<(Agent, RunClaim, Option<AttemptTree>)>),
    /// It could not start, and ended.
    Ended(Ended),
}

/// Why an attempt could not be recorded.
enum AttemptError {
    /// Another worker took the attempt over.
    Fenced(StoreError),
    /// The store failed.
    Store(StoreError),
}

/// A run's start that failed: its store's error as such, anything else as a store failure (the
/// attempt cannot go on; its lease expires).
impl From<RunError> for AttemptError {
    fn from(e: RunError) -> Self {
        match e {
            RunError::Store(e) => e.into(),
            other => Self::Store(StoreError::Backend(other.to_string())),
        }
    }
}

impl From<StoreError> for AttemptError {
    fn from(e: StoreError) -> Self {
        match e {
            e @ StoreError::Fenced { .. } => Self::Fenced(e),
            e => Self::Store(e),
        }
    }
}
