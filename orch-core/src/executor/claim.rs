//! Runs' claims on their agents: an agent created already claimed for one run (in a commit of its own,
//! or in a commit the caller makes, such as a task claim's), and the [`RunClaim`] a run holds, whose
//! lease is renewed until the run ends and released with it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures::FutureExt;

use super::lease::{self, LEASE_RENEW_EVERY};
use super::runner::{Running, RunningGuard};
use super::{AgentRunner, RunError};
use crate::Interrupt;
use crate::runtime::Runtime;
use crate::store::{Batch, Change, Store, StoreError};
use crate::wire::{Agent, Event, EventRecord, Id, NewEvent, RunLease, new_id};

/// An agent to be created already claimed for one run, in a commit its caller makes: its row (holding
/// the run's lease) and its `AgentCreated` event go into that commit, then [`AgentRunner::adopt`] turns
/// it into the run's [`RunClaim`]. Made without any read or write, so it can be made inside a store's
/// transaction (a [`Starter`](crate::wire::Starter) of a task claim). The run counts as live in this
/// process from here on; dropped unadopted (the commit failed, or did not take it), it no longer does.
pub struct NewClaimed {
    agent: Agent,
    interrupt: Interrupt,
    task_slug: Option<String>,
    registered: Registered,
}

impl std::fmt::Debug for NewClaimed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewClaimed").field("agent", &self.agent.id).field("task_slug", &self.task_slug).finish()
    }
}

impl NewClaimed {
    /// `agent`, to be created claimed for a run named `task_slug` (in errors and its lease) that
    /// `interrupt` stops.
    pub fn new(mut agent: Agent, task_slug: Option<String>, interrupt: Interrupt) -> Self {
        let lease = lease::new_lease(new_id(), task_slug.clone());
        let registered = Registered::new(lease.run_id, interrupt.clone());
        agent.run = Some(lease);
        Self { agent, interrupt, task_slug, registered }
    }

    /// The agent as its row is to be stored, holding the run's lease.
    pub fn agent(&self) -> &Agent {
        &self.agent
    }

    /// The agent's `AgentCreated` event: the agent as `create_agent` records it (claims are not events).
    pub fn created(&self) -> NewEvent {
        let mut agent = self.agent.clone();
        agent.run = None;
        NewEvent::new(super::agent_keys(&agent, None), Event::AgentCreated { agent: Box::new(agent) })
    }
}

impl AgentRunner {
    /// Creates `agent` already claimed for one run: the agent (holding the run's lease), its
    /// `AgentCreated` event and what `with` carries (the caller's own changes and events, e.g. the
    /// task the agent works for) in one commit, as durable as `with` asks ([`Batch::relaxed`] for a
    /// start that a power cut may lose with the process). No other run can take the agent between its
    /// creation and its run, nothing is read first, and the run's first turn reads nothing back either:
    /// a new agent has no conversation and no saved state. Fails as that commit fails (e.g.
    /// [`StoreError::NameTaken`], or a fenced change of `with`), with nothing stored. Returns the
    /// claim, run with [`AgentRunner::run_claimed`] (or a [`Supervisor`](super::Supervisor)'s
    /// `run_claimed`), and the records the commit appended.
    pub async fn create_claimed(
        &self,
        agent: Agent,
        with: Batch,
        task_slug: Option<String>,
        interrupt: Option<Interrupt>,
    ) -> Result<(RunClaim, Vec<EventRecord>), RunError> {
        if let Some(r) = self.shared.running().get(&agent.id) {
            return Err(RunError::AgentBusy { name: agent.name.clone(), run: r.describe.clone() });
        }
        if self.store.shared_with_other_processes() {
            self.watch_interrupt_requests().await;
        }
        let new = NewClaimed::new(agent, task_slug, interrupt.unwrap_or_default());
        let created = new.created();
        let mut batch = Batch::new().change(Change::CreateAgent(Box::new(new.agent.clone())));
        batch.events.push(created);
        batch.durability = with.durability;
        batch.changes.extend(with.changes);
        batch.events.extend(with.events);
        let records = self.store.commit(batch).await?;
        let claim = self.adopt(new).await?;
        Ok((claim, records))
    }

    /// The claim of a run on an agent that `new` described and a commit of the caller's created (see
    /// [`NewClaimed`]): the run holds the agent from here, its lease renewed until it ends. Fails with
    /// [`RunError::AgentBusy`] only if this process already runs an agent of that id.
    pub async fn adopt(&self, new: NewClaimed) -> Result<RunClaim, RunError> {
        let NewClaimed { agent, interrupt, task_slug, registered } = new;
        if self.store.shared_with_other_processes() {
            self.watch_interrupt_requests().await;
        }
        {
            let mut running = self.shared.running();
            if let Some(r) = running.get(&agent.id) {
                return Err(RunError::AgentBusy { name: agent.name.clone(), run: r.describe.clone() });
            }
            let describe = match &task_slug {
                Some(slug) => format!("task {slug} (in this process)"),
                None => "a run in this process".to_string(),
            };
            // No interrupt request for the agent can precede its creation: every one is meant for it.
            running.insert(agent.id, Running { interrupt: interrupt.clone(), since_seq: 0, describe });
        }
        let guard = RunningGuard { shared: self.shared.clone(), id: agent.id };
        let Some(lease) = agent.run.clone() else {
            return Err(RunError::Store(StoreError::Backend(format!("agent {} was made without a lease", agent.id))));
        };
        Ok(RunClaim::hold(self, agent.id, interrupt, lease, registered, guard, Some(agent)))
    }
}

/// What a claim's lease renewal follows: the run's interrupt, the claim's end (`stopped` resolves when
/// the claim is dropped) and whether the run's last commit released it already (`ended`).
struct Renewal {
    interrupt: Interrupt,
    stopped: futures::channel::oneshot::Receiver<()>,
    ended: Arc<AtomicBool>,
}

/// Renews a claim's lease until the claim ends. A renewal that finds the claim taken over interrupts
/// the run: another process runs the agent now. One that finds it released by the run's own end
/// stops quietly.
async fn renew_lease(agent_id: Id, store: Arc<dyn Store>, runtime: Arc<dyn Runtime>, mut lease: RunLease, r: Renewal) {
    let Renewal { interrupt, mut stopped, ended } = r;
    loop {
        if let futures::future::Either::Right(_) =
            futures::future::select(runtime.sleep(LEASE_RENEW_EVERY), &mut stopped).await
        {
            return;
        }
        if ended.load(Ordering::SeqCst) {
            return;
        }
        let next = lease::renewed(&lease);
        let swap = Change::SwapRun { agent_id, expect: Some(lease.run_id), lease: Some(next.clone()) };
        match store.commit(Batch::new().change(swap).relaxed()).await {
            Ok(_) => lease = next,
            Err(StoreError::RunConflict { .. }) if ended.load(Ordering::SeqCst) => return,
            Err(StoreError::RunConflict { current, .. }) => {
                tracing::warn!(run = %lease.run_id, holder = ?current, "the agent's claim was taken over; interrupting this run");
                interrupt.trigger();
                return;
            }
            Err(e) => tracing::warn!(error = %e, "could not renew a run's lease; will retry"),
        }
    }
}

/// An agent claimed for one run by [`AgentRunner::claim`]; dropping it releases the agent.
pub struct RunClaim {
    agent_id: Id,
    interrupt: Interrupt,
    lease: RunLease,
    store: Arc<dyn Store>,
    runtime: Arc<dyn Runtime>,
    released: bool,
    /// Set once the commit that ended the run's last turn released the claim in the store with it.
    ended: Arc<AtomicBool>,
    /// The agent as [`AgentRunner::create_claimed`] stored it, until its first turn takes it.
    fresh: Mutex<Option<Agent>>,
    /// Dropped with the claim, which stops the lease renewal.
    _stop_renewal: futures::channel::oneshot::Sender<()>,
    _registered: Registered,
    _guard: RunningGuard,
}

/// A run registered as live in this process ([`lease::register`]) until dropped.
pub(super) struct Registered(Id);

impl Registered {
    /// Registers the run `run_id`, stopped by `interrupt`.
    pub(super) fn new(run_id: Id, interrupt: Interrupt) -> Self {
        lease::register(run_id, interrupt);
        Self(run_id)
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        lease::unregister(self.0);
    }
}

impl RunClaim {
    /// The claim of a run whose lease the store holds now: renewed from here until it is dropped.
    /// `fresh`: the agent as just created, when the claim created it.
    pub(super) fn hold(
        runner: &AgentRunner,
        agent_id: Id,
        interrupt: Interrupt,
        lease: RunLease,
        registered: Registered,
        guard: RunningGuard,
        fresh: Option<Agent>,
    ) -> Self {
        let (stop, stopped) = futures::channel::oneshot::channel::<()>();
        let ended = Arc::new(AtomicBool::new(false));
        let renewal = Renewal { interrupt: interrupt.clone(), stopped, ended: ended.clone() };
        let (store, runtime) = (runner.store.clone(), runner.runtime.clone());
        runtime.spawn(renew_lease(agent_id, store.clone(), runtime.clone(), lease.clone(), renewal).boxed());
        RunClaim {
            agent_id,
            interrupt,
            lease,
            store,
            runtime,
            released: false,
            ended,
            fresh: Mutex::new(fresh),
            _stop_renewal: stop,
            _registered: registered,
            _guard: guard,
        }
    }

    /// The claimed agent.
    pub fn agent_id(&self) -> Id {
        self.agent_id
    }

    /// The run's interrupt.
    pub fn interrupt(&self) -> &Interrupt {
        &self.interrupt
    }

    /// The lease held in the store.
    pub fn lease(&self) -> &RunLease {
        &self.lease
    }

    /// The agent as the claim created it, the first time only (its first turn needs no reads).
    pub(super) fn take_fresh(&self) -> Option<Agent> {
        self.fresh.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// Releases the claim in the store and here. (Dropping a claim releases it too, in the background.)
    /// A claim whose run's last commit released it already in the store is only let go here.
    pub async fn release(mut self) {
        self.released = true;
        if !self.ended.load(Ordering::SeqCst) {
            release_lease(self.store.as_ref(), self.agent_id, self.lease.run_id).await;
        }
    }

    /// The release that the commit ending a run's last turn carries ([`TurnContext::release`]).
    ///
    /// [`TurnContext::release`]: super::TurnContext::release
    pub(super) fn end_release(&self) -> super::EndRelease {
        super::EndRelease::new(self.lease.run_id, self.ended.clone())
    }
}

async fn release_lease(store: &dyn Store, agent_id: Id, run_id: Id) {
    let swap = Change::SwapRun { agent_id, expect: Some(run_id), lease: None };
    match store.commit(Batch::new().change(swap).relaxed()).await {
        // Taken over, or the agent was deleted: nothing of ours to release.
        Ok(_) | Err(StoreError::RunConflict { .. }) | Err(StoreError::NotFound { .. }) => {}
        Err(e) => {
            tracing::warn!(error = %e, %agent_id, "could not release the agent's claim; it goes stale when this process ends")
        }
    }
}

impl Drop for RunClaim {
    fn drop(&mut self) {
        if !self.released && !self.ended.load(Ordering::SeqCst) {
            let (store, agent_id, run_id) = (self.store.clone(), self.agent_id, self.lease.run_id);
            self.runtime.spawn(async move { release_lease(store.as_ref(), agent_id, run_id).await }.boxed());
        }
    }
}

impl std::fmt::Debug for RunClaim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunClaim").field("agent_id", &self.agent_id).field("lease", &self.lease).finish_non_exhaustive()
    }
}
