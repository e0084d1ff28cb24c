//! [`Supervisor`]: the one place agent runs are supervised, shared by the orchestrator, workflows and
//! task graphs.
//!
//! It starts runs in the background and hands out a [`RunTicket`] to wait on; refuses a second run of a
//! busy agent (here or in another process, through the agent's claim in the store); finishes a turn a
//! dead process left unfinished before the next prompt, under the same claim; marks a failed run's
//! agent `blocked` with an ERROR system log; stops runs here or in other processes; and resets agents
//! left `executing` by a process that is gone. [`RunObserver`]s (file tracking today) watch each
//! background run.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};

use super::{AgentRunner, RunError, RunOptions, RunOutcome};
use crate::runtime::Runtime;
use crate::store::{Batch, Change, Store, StoreError};
use crate::wire::{Agent, AgentStatus, Event, EventKeys, EventRecord, Id, LogLevel, NewEvent};

/// How one run ended, as its waiters see it.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The agent.
    pub agent_id: Id,
    /// Its name.
    pub agent_name: String,
    /// The run slug.
    pub task_slug: String,
    /// The outcome, or why the run failed.
    pub result: Result<RunOutcome, String>,
}

type DoneFuture = Shared<BoxFuture<'static, RunReport>>;

/// A run started in the background.
#[derive(Clone)]
pub struct RunTicket {
    /// The agent.
    pub agent_id: Id,
    /// Its name.
    pub agent_name: String,
    /// The run slug.
    pub task_slug: String,
    done: DoneFuture,
    /// The run's interrupt (it reaches the run even before the run has claimed its agent).
    interrupt: crate::Interrupt,
}

impl std::fmt::Debug for RunTicket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunTicket")
            .field("agent_name", &self.agent_name)
            .field("task_slug", &self.task_slug)
            .finish_non_exhaustive()
    }
}

impl RunTicket {
    /// Waits for the run to end.
    pub async fn wait(&self) -> RunReport {
        self.done.clone().await
    }

    /// Interrupts the run (it records a `Stop` and ends; the agent's next command continues it).
    pub fn interrupt(&self) {
        self.interrupt.trigger();
    }
}

/// What an interrupt did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interrupted {
    /// The run in this process was stopped.
    Stopped,
    /// The agent runs (or ran) in another process: it was asked to stop (an `InterruptRequested` event
    /// it follows), or, its process being gone, the agent was reset.
    Requested,
    /// The agent was not running.
    NotRunning,
}

/// Watches agent runs (background and foreground): told when one starts, fed its events as they commit, asked for what to
/// record when it ends. File tracking is one.
#[async_trait]
pub trait RunObserver: Send + Sync + 'static {
    /// Starts watching a run of `agent`, before it starts; `None`: nothing to watch.
    async fn start(&self, agent: &Agent, runtime: &Arc<dyn Runtime>) -> Option<Box<dyn RunWatch>>;
}

/// One observer's watch over one run.
#[async_trait]
pub trait RunWatch: Send + Sync {
    /// Events the run committed, in order (called on the commit path: keep it cheap).
    fn on_events(&self, records: &[EventRecord]);
    /// The run ended: the events to record about it (appended with the run's keys). Called once.
    async fn finish(&self, runtime: &Arc<dyn Runtime>) -> Vec<Event>;
}

struct Inner {
    runner: AgentRunner,
    runs: Mutex<HashMap<Id, RunTicket>>,
    observers: Vec<Arc<dyn RunObserver>>,
}

/// Supervises agent runs on one [`AgentRunner`]. Cheap to clone; clones share the runs.
#[derive(Clone)]
pub struct Supervisor {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("runner", &self.inner.runner)
            .field("observers", &self.inner.observers.len())
            .finish_non_exhaustive()
    }
}

/// The keys of an agent's events (of one run, with `task_slug`).
pub fn agent_keys(agent: &Agent, task_slug: Option<String>) -> EventKeys {
    EventKeys {
        agent_id: Some(agent.id),
        orchestrator_id: agent.orchestrator_id,
        workflow_id: agent.workflow_id,
        step: agent.workflow_step.clone(),
        task_slug,
    }
}

impl Supervisor {
    /// A supervisor of runs on `runner`, with these observers watching each run.
    pub fn new(runner: AgentRunner, observers: Vec<Arc<dyn RunObserver>>) -> Self {
        Self { inner: Arc::new(Inner { runner, runs: Mutex::new(HashMap::new()), observers }) }
    }

    /// The runner.
    pub fn runner(&self) -> &AgentRunner {
        &self.inner.runner
    }

    fn store(&self) -> &Arc<dyn Store> {
        self.inner.runner.store()
    }

    /// The background run of the agent started here, if one is going.
    pub fn running_ticket(&self, agent_id: Id) -> Option<RunTicket> {
        self.inner.runs.lock().ok().and_then(|r| r.get(&agent_id).cloned())
    }

    /// The background runs started here that have not ended.
    pub fn active_runs(&self) -> Vec<RunTicket> {
        self.inner.runs.lock().map(|r| r.values().cloned().collect()).unwrap_or_default()
    }

    /// Waits until no background run started here is going, including runs started meanwhile, and
    /// returns the reports of the runs it waited for.
    pub async fn wait_all(&self) -> Vec<RunReport> {
        let mut reports = Vec::new();
        loop {
            let runs = self.active_runs();
            if runs.is_empty() {
                return reports;
            }
            for r in futures::future::join_all(runs.iter().map(RunTicket::wait)).await {
                reports.push(r);
            }
        }
    }

    /// Runs `prompt` on the agent in the foreground and returns how the turn ended. The agent is
    /// claimed first (busy: [`RunError::AgentBusy`]); a turn a dead process left unfinished is finished
    /// first, under the same claim, with a WARNING log. Observers watch it as they watch background
    /// runs (a workflow step's or a graph task's file changes are recorded like a command's); a
    /// failure is only returned (the caller reports it its own way).
    pub async fn run(&self, agent: &Agent, prompt: String, options: RunOptions) -> Result<RunOutcome, RunError> {
        let runner = &self.inner.runner;
        let claim = runner.claim(agent.id, &agent.name, options.task_slug.clone(), options.interrupt.clone()).await?;
        self.run_claimed(agent, claim, prompt, options).await
    }

    /// [`Supervisor::run`] under a claim already taken (e.g. by
    /// [`AgentRunner::create_claimed`](super::AgentRunner::create_claimed), which creates the agent
    /// claimed): runs `prompt` in the foreground, observed, and releases the claim when it ends.
    pub async fn run_claimed(
        &self,
        agent: &Agent,
        claim: super::RunClaim,
        prompt: String,
        mut options: RunOptions,
    ) -> Result<RunOutcome, RunError> {
        let slug = options.task_slug.clone();
        let watches = self.watch(agent, &mut options).await;
        let result = self.run_resuming(&claim, agent, prompt, options).await;
        claim.release().await;
        self.record_watches(&watches, agent_keys(agent, slug)).await;
        result
    }

    /// Starts the observers' watches over a run of `agent` and routes the run's events to them (and
    /// to the host's own `on_events`, kept).
    async fn watch(&self, agent: &Agent, options: &mut RunOptions) -> Arc<Vec<Box<dyn RunWatch>>> {
        let runtime = self.inner.runner.runtime().clone();
        let mut watches: Vec<Box<dyn RunWatch>> = Vec::new();
        for o in &self.inner.observers {
            if let Some(w) = o.start(agent, &runtime).await {
                watches.push(w);
            }
        }
        let watches: Arc<Vec<Box<dyn RunWatch>>> = Arc::new(watches);
        if !watches.is_empty() {
            let sink = watches.clone();
            let host = options.on_events.take();
            options.on_events = Some(Arc::new(move |records: &[EventRecord]| {
                for w in sink.iter() {
                    w.on_events(records);
                }
                if let Some(cb) = &host {
                    cb(records);
                }
            }));
        }
        watches
    }

    /// Appends what each watch reports about the ended run, with the run's keys.
    async fn record_watches(&self, watches: &[Box<dyn RunWatch>], keys: EventKeys) {
        let runtime = self.inner.runner.runtime().clone();
        for w in watches {
            let events: Vec<NewEvent> =
                w.finish(&runtime).await.into_iter().map(|e| NewEvent::new(keys.clone(), e)).collect();
            if !events.is_empty()
                && let Err(e) = self.store().append(events).await
            {
                tracing::warn!(error = %e, "could not record an observer's report of a run");
            }
        }
    }

    async fn run_resuming(
        &self,
        claim: &super::RunClaim,
        agent: &Agent,
        prompt: String,
        options: RunOptions,
    ) -> Result<RunOutcome, RunError> {
        let runner = &self.inner.runner;
        // The prompt's turn is the claim's last (its end releases the claim); a turn left unfinished,
        // resumed first, is not.
        match runner.run_last(claim, Some(prompt.clone()), options.clone()).await {
            Err(RunError::UnfinishedTurn(_)) => {
                let note = format!(
                    "Agent '{}' had a turn left unfinished by a stopped process; resuming it first",
                    agent.name
                );
                let meta = serde_json::json!({"agent": agent.name});
                if let Err(e) = self.log(LogLevel::Warning, &note, meta, agent_keys(agent, None)).await {
                    tracing::warn!(error = %e, "could not record the resume warning");
                }
                let resume = RunOptions { task_slug: None, on_delta: None, ..options.clone() };
                runner.run_held(claim, None, resume).await?;
                runner.run_last(claim, Some(prompt), options).await
            }
            other => other,
        }
    }

    /// Starts `prompt` on the agent in the background and returns its ticket. The agent is claimed
    /// before this returns, so two commands sent at once never both start (the second gets
    /// [`RunError::AgentBusy`] naming the first). The run finishes a turn a dead process left first;
    /// observers watch it; if it fails, an ERROR system log says why and an agent it left `executing`
    /// becomes `blocked`. `options.task_slug` names the run (set it: the ticket carries it).
    /// A parked agent is refused with [`RunError::WaitingForPerson`].
    pub async fn start(&self, agent: &Agent, prompt: String, options: RunOptions) -> Result<RunTicket, RunError> {
        if let Some(t) = self.running_ticket(agent.id) {
            return Err(RunError::AgentBusy { name: agent.name.clone(), run: format!("task {}", t.task_slug) });
        }
        // Another process's live claim refuses at once; the claim itself is taken in the background
        // run (its durable commit would otherwise make every command wait for a sync). If two
        // processes race past this check, the claim's compare-and-swap decides and the loser's ticket
        // reports it busy, having run nothing.
        let current =
            self.store().get_agent(agent.id).await?.ok_or_else(|| RunError::AgentNotFound(agent.name.clone()))?;
        if let Some(held) = current.run.as_ref().filter(|l| !super::lease::is_stale(l)) {
            return Err(RunError::AgentBusy { name: agent.name.clone(), run: held.to_string() });
        }
        if current.status == AgentStatus::Waiting
            && let Some(waiting) = crate::approval::waiting_of(self.store().as_ref(), &current).await?
        {
            return Err(waiting);
        }
        Ok(self.spawn_run(agent, Some(prompt), None, options))
    }

    /// Continues in the background, under `claim`, the turn the agent left unfinished (e.g. a tool call
    /// a person just approved), and returns its ticket. Observers watch it as they watch [`start`]ed
    /// runs; a failure is reported the same way.
    ///
    /// [`start`]: Supervisor::start
    pub fn resume_claimed(&self, agent: &Agent, claim: super::RunClaim, options: RunOptions) -> RunTicket {
        let options = RunOptions { interrupt: Some(claim.interrupt().clone()), ..options };
        self.spawn_run(agent, None, Some(claim), options)
    }

    /// Registers a ticket and spawns the run: a new turn for `Some(prompt)` (finishing an unfinished
    /// one first), else the unfinished turn; under `claim`, or claiming the agent first.
    fn spawn_run(
        &self,
        agent: &Agent,
        prompt: Option<String>,
        claim: Option<super::RunClaim>,
        mut options: RunOptions,
    ) -> RunTicket {
        let slug = options.task_slug.clone().unwrap_or_default();
        let interrupt = options.interrupt.clone().unwrap_or_default();
        options.interrupt = Some(interrupt.clone());
        let (tx, rx) = futures::channel::oneshot::channel::<RunReport>();
        let fallback = RunReport {
            agent_id: agent.id,
            agent_name: agent.name.clone(),
            task_slug: slug.clone(),
            result: Err("the run was dropped before it ended".into()),
        };
        let done: DoneFuture = rx.map(move |r| r.unwrap_or(fallback)).boxed().shared();
        let ticket =
            RunTicket { agent_id: agent.id, agent_name: agent.name.clone(), task_slug: slug.clone(), done, interrupt };
        if let Ok(mut runs) = self.inner.runs.lock() {
            runs.insert(agent.id, ticket.clone());
        }
        let this = self.clone();
        let agent = agent.clone();
        self.inner.runner.runtime().spawn(
            async move {
                let report = this.execute(&agent, prompt, claim, slug, options).await;
                if let Ok(mut runs) = this.inner.runs.lock() {
                    runs.remove(&agent.id);
                }
                let _ = tx.send(report);
            }
            .boxed(),
        );
        ticket
    }

    /// One background run: observers, the run (resuming first), failure handling, observers' reports.
    async fn execute(
        &self,
        agent: &Agent,
        prompt: Option<String>,
        claim: Option<super::RunClaim>,
        slug: String,
        mut options: RunOptions,
    ) -> RunReport {
        let report =
            |result| RunReport { agent_id: agent.id, agent_name: agent.name.clone(), task_slug: slug.clone(), result };
        let claimed = match claim {
            Some(claim) => Ok(claim),
            None => {
                self.inner
                    .runner
                    .claim(agent.id, &agent.name, options.task_slug.clone(), options.interrupt.clone())
                    .await
            }
        };
        let claim = match claimed {
            Ok(claim) => claim,
            // Another process claimed it first: nothing ran, nothing to report as a failure of ours.
            Err(e @ RunError::AgentBusy { .. }) => return report(Err(e.to_string())),
            Err(e) => {
                let message = format!("Agent '{}' command failed: {e}", agent.name);
                self.after_failure(agent, &slug, &message).await;
                return report(Err(e.to_string()));
            }
        };
        let watches = self.watch(agent, &mut options).await;
        let result = match prompt {
            Some(prompt) => self.run_resuming(&claim, agent, prompt, options).await,
            None => self.inner.runner.run_last(&claim, None, options).await,
        };
        claim.release().await;
        let result = match result {
            Ok(outcome) => Ok(outcome),
            Err(e) => {
                let message = format!("Agent '{}' command failed: {e}", agent.name);
                tracing::warn!(agent = %agent.name, error = %e, "command run failed");
                self.after_failure(agent, &slug, &message).await;
                Err(e.to_string())
            }
        };
        self.record_watches(&watches, agent_keys(agent, Some(slug.clone()))).await;
        report(result)
    }

    /// A failed run: an ERROR system log, and the agent `blocked` if the failure left it executing.
    async fn after_failure(&self, agent: &Agent, slug: &str, message: &str) {
        let keys = agent_keys(agent, Some(slug.to_string()));
        let meta = serde_json::json!({"agent": agent.name, "task_slug": slug});
        let mut batch = Batch::new();
        if let Ok(Some(a)) = self.store().get_agent(agent.id).await
            && a.status == AgentStatus::Executing
        {
            batch.push_change(Change::SetAgentStatus { id: agent.id, status: AgentStatus::Blocked });
            let ev = Event::AgentStatusChanged { old_status: AgentStatus::Executing, new_status: AgentStatus::Blocked };
            batch.push_event(keys.clone(), ev);
        }
        batch.push_event(
            keys,
            Event::SystemLog { level: LogLevel::Error, message: message.to_string(), metadata: meta },
        );
        if let Err(e) = self.store().commit(batch).await {
            tracing::warn!(error = %e, agent = %agent.name, "could not record the failed run");
        }
    }

    /// Writes a system log: its `SystemLog` event, whose `system_logs` row is written in the same commit.
    pub async fn log(
        &self,
        level: LogLevel,
        message: &str,
        metadata: serde_json::Value,
        keys: EventKeys,
    ) -> Result<(), StoreError> {
        let batch = Batch::new().event(keys, Event::SystemLog { level, message: message.into(), metadata });
        self.store().commit(batch).await.map(drop)
    }

    /// Stops the agent's run: a background run of this supervisor at once, waiting up to `wait` for it
    /// to record its end; a run of this process; or a run of another process (see
    /// [`Supervisor::stop_elsewhere`]).
    pub async fn interrupt(&self, agent: &Agent, by: &str, wait: Duration) -> Result<Interrupted, StoreError> {
        if let Some(ticket) = self.running_ticket(agent.id) {
            ticket.interrupt.trigger();
            self.inner.runner.interrupt(agent.id);
            let runtime = self.inner.runner.runtime().clone();
            futures::future::select(ticket.wait().boxed(), runtime.sleep(wait)).await;
            return Ok(Interrupted::Stopped);
        }
        if self.inner.runner.interrupt(agent.id) {
            return Ok(Interrupted::Stopped);
        }
        self.stop_elsewhere(agent.id, by, wait).await
    }

    /// Stops a run of the agent held by another process. A holder that is alive is asked to stop (an
    /// `InterruptRequested` event it follows) and awaited up to `wait` for it to release the agent; a
    /// holder whose process is gone (or an agent left `executing` with no holder) is reset at once:
    /// the claim released and the status set to idle, with its event and a WARNING log, in one commit.
    pub async fn stop_elsewhere(&self, agent_id: Id, by: &str, wait: Duration) -> Result<Interrupted, StoreError> {
        let store = self.store();
        let Some(mut agent) = store.get_agent(agent_id).await? else { return Ok(Interrupted::NotRunning) };
        let keys = agent_keys(&agent, None);
        if let Some(lease) = agent.run.clone().filter(|l| !super::lease::is_stale(l)) {
            let ev = Event::InterruptRequested { requested_by: by.to_string() };
            store.append(vec![NewEvent::new(keys.clone(), ev)]).await?;
            // A run of another runner of this process gets it at once (its runner may follow no log).
            if super::lease::is_local(&lease) {
                super::lease::interrupt_local(lease.run_id);
            }
            let runtime = self.inner.runner.runtime().clone();
            let step = Duration::from_millis(20);
            let mut waited = Duration::ZERO;
            loop {
                match store.get_agent(agent_id).await? {
                    Some(a) if a.run.as_ref().is_some_and(|r| r.run_id == lease.run_id) => {}
                    Some(a) => {
                        agent = a;
                        break;
                    }
                    None => return Ok(Interrupted::Requested),
                }
                if waited >= wait {
                    tracing::warn!(agent = %agent.name, holder = %lease, "the run did not stop in time after an interrupt request");
                    return Ok(Interrupted::Requested);
                }
                runtime.sleep(step).await;
                waited += step;
            }
            // Released: if it left the agent executing, its turn ended without recording the end
            // (its host dropped it); reset below like any stale run.
            if agent.run.is_some() || agent.status != AgentStatus::Executing {
                return Ok(Interrupted::Requested);
            }
        } else if agent.run.is_none() && agent.status != AgentStatus::Executing {
            return Ok(Interrupted::NotRunning);
        }
        let mut batch = Batch::new();
        if let Some(lease) = &agent.run {
            batch.push_change(Change::SwapRun { agent_id, expect: Some(lease.run_id), lease: None });
        }
        if agent.status == AgentStatus::Executing {
            batch.push_change(Change::SetAgentStatus { id: agent_id, status: AgentStatus::Idle });
            let ev = Event::AgentStatusChanged { old_status: AgentStatus::Executing, new_status: AgentStatus::Idle };
            batch.push_event(keys.clone(), ev);
        }
        let message =
            format!("Agent '{}' was marked executing but the process running it is gone; reset to idle", agent.name);
        let metadata = serde_json::json!({"agent": agent.name});
        batch.push_event(keys, Event::SystemLog { level: LogLevel::Warning, message, metadata });
        match store.commit(batch).await {
            // Claimed by a new run meanwhile: nothing stale left to reset.
            Ok(_) | Err(StoreError::RunConflict { .. }) => Ok(Interrupted::Requested),
            Err(e) => Err(e),
        }
    }
}
