//! A worker: beats in the store, claims due tasks up to its concurrency, runs each claimed attempt, and
//! claims again as soon as a slot frees or the log says work is ready (in-process wake-ups and the log's
//! own notifications; a jittered poll catches retries coming due and other processes' work). A task
//! the log says became ready is left for [`READY_GRACE`] to the worker whose ended attempt released it,
//! which claims at once, so the other workers do not all claim for one task.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use tracing::Instrument;

use super::GraphRunner;
use super::attempt::{AttemptHandle, Stop};
use super::launch::{Claimed, Launch};
use crate::graph::GraphError;
use crate::interrupt::Interrupt;
use crate::runtime::Runtime;
use crate::store::{Batch, Change, EventQuery};
use crate::wire::{
    Event, EventRecord, Fact, GraphStatus, Id, Starter, Task, TaskClaim, TaskGraph, TaskStatus, Timestamp, WorkerInfo,
    WorkerRole, now,
};

/// A worker's wake-ups: the log's task and graph events, as [`Store::subscribe_foreign`] gives them.
///
/// [`Store::subscribe_foreign`]: crate::store::Store::subscribe_foreign
type Wakes = futures::stream::Fuse<crate::store::EventStream>;

/// The dependencies of the tasks of one claim, read once (one read per graph, not one per task) by
/// whichever of their attempts first needs them, after its start: by task, those whose dependencies
/// were all found (the others read their own).
pub(crate) type SharedDeps = futures::future::Shared<futures::future::BoxFuture<'static, Arc<HashMap<Id, Vec<Task>>>>>;

/// The read of the dependencies of `tasks` (see [`SharedDeps`]).
pub(crate) fn deps_of<'a>(store: Arc<dyn crate::store::Store>, tasks: impl Iterator<Item = &'a Task>) -> SharedDeps {
    let wanted: Vec<(Id, Id, Vec<Id>)> =
        tasks.filter(|t| !t.depends_on.is_empty()).map(|t| (t.id, t.graph_id, t.depends_on.clone())).collect();
    async move {
        let mut names: HashMap<Id, Vec<String>> = HashMap::new();
        for (_, graph_id, depends_on) in &wanted {
            let graph = names.entry(*graph_id).or_default();
            for d in depends_on {
                let d = d.to_string();
                if !graph.contains(&d) {
                    graph.push(d);
                }
            }
        }
        let mut found: HashMap<Id, Task> = HashMap::new();
        for (graph_id, names) in names {
            match store.find_tasks(graph_id, &names).await {
                Ok(read) => found.extend(read.into_iter().map(|t| (t.id, t))),
                Err(e) => tracing::debug!(error = %e, graph = %graph_id, "reading dependencies failed; attempts read their own"),
            }
        }
        let by_task = wanted
            .into_iter()
            .filter_map(|(id, _, depends_on)| {
                let deps: Option<Vec<Task>> = depends_on.iter().map(|d| found.get(d).cloned()).collect();
                deps.map(|deps| (id, deps))
            })
            .collect();
        Arc::new(by_task)
    }
    .boxed()
    .shared()
}

/// How often the facts of a graph are read again for new attempts.
const FACTS_TTL: Duration = Duration::from_secs(2);

/// How long a worker leaves a task that the log says became ready to the worker that made it so
/// before claiming it itself. A task is mostly made ready by an attempt's end releasing it, and the
/// worker of that attempt claims at once (its slot just freed); every other worker (of this process
/// or any other) waking on the same event would claim for nothing, and a claim is a commit. A worker
/// that sees the task claimed (its `TaskUpdated`) within this time does not claim for it.
const READY_GRACE: Duration = Duration::from_millis(15);

/// Most attempts a worker may have running for its attempts' ends to claim for it. A quiet worker
/// gains latency from it (a released child starts as its parent ends, with no commit of its own); a
/// busy one loses throughput (a claim of one task in every end, where one claim refills many free
/// slots at once: measured, a 5,000-task graph at full load ran 17 % slower on SQLite and 60 % slower
/// on PostgreSQL with every end claiming).
const QUIET: usize = 4;

/// How an attempt's end claims the next task for its worker, in the same commit.
#[derive(Clone)]
pub(crate) struct ClaimOnEnd {
    /// The worker's id, as its claims name it.
    pub(crate) worker: String,
    /// The graph the worker is limited to.
    pub(crate) graph: Option<Id>,
    /// The worker's stop signal: once triggered, ends claim nothing.
    pub(crate) stop: Interrupt,
    /// The attempts the worker has running.
    pub(crate) running: Arc<AtomicUsize>,
}

impl ClaimOnEnd {
    /// Whether an end claims now: the worker is not stopping and is quiet (at most [`QUIET`]
    /// attempts running, the ending one included); a busy worker's loop refills its slots in batches.
    pub(crate) fn wanted(&self) -> bool {
        !self.stop.is_triggered() && self.running.load(Ordering::SeqCst) <= QUIET
    }
}

/// What an ended attempt hands back to its worker.
#[derive(Debug, Default)]
pub(crate) struct Ended {
    /// The facts it reported, when it completed.
    pub(crate) learned: Vec<Fact>,
    /// The tasks its end claimed for the worker (`None`: it tried no claim).
    pub(crate) claimed: Option<Vec<Claimed>>,
}

/// The claim of up to `limit` due tasks for `next`'s worker at `at`, starting their attempts with
/// `start` (see [`Launch`]).
pub(crate) fn task_claim(
    settings: &super::GraphSettings,
    next: &ClaimOnEnd,
    at: Timestamp,
    limit: u32,
    start: Option<Starter>,
) -> TaskClaim {
    TaskClaim {
        start,
        worker: next.worker.clone(),
        limit,
        graph_id: next.graph,
        now: at,
        deadline: at + chrono::Duration::from_std(settings.deadline).unwrap_or(chrono::Duration::hours(2)),
        stale_before: at - chrono::Duration::from_std(settings.stale_after).unwrap_or(chrono::Duration::seconds(5)),
    }
}

/// The tasks a commit's claim took for `worker`, from the records the commit appended.
pub(crate) fn claimed_by(records: &[EventRecord], worker: &str) -> Vec<Task> {
    records
        .iter()
        .filter_map(|r| match &r.event {
            Event::TaskUpdated { task }
                if task.status == TaskStatus::Running && task.claimed_by.as_deref() == Some(worker) =>
            {
                Some((**task).clone())
            }
            _ => None,
        })
        .collect()
}

/// What a worker did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkerReport {
    /// The worker's id.
    pub worker: String,
    /// Attempts it started.
    pub attempts: u64,
    /// The graph it was limited to, as it stood when the worker stopped.
    pub graph: Option<TaskGraph>,
}

/// Claims and runs tasks. Made by [`GraphRunner::worker`].
pub struct Worker {
    runner: GraphRunner,
    graph: Option<Id>,
    id: String,
    concurrency: u32,
    stop: Interrupt,
    /// The attempts running, for their ends (see [`ClaimOnEnd::wanted`]).
    running: Arc<AtomicUsize>,
    facts: HashMap<Id, (Instant, Vec<Fact>)>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").field("id", &self.id).field("graph", &self.graph).finish_non_exhaustive()
    }
}

fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.trim().is_empty())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok().map(|h| h.trim().to_string()))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// How long a heartbeat row may stay silent before the next worker or server to start removes it: its
/// process is long gone (its tasks were taken over after [`GraphSettings::stale_after`]), and `orch
/// workers` has shown it silent meanwhile.
///
/// [`GraphSettings::stale_after`]: super::GraphSettings::stale_after
pub const FORGET_SILENT_AFTER: Duration = Duration::from_secs(3600);

/// The change that removes the rows silent for longer than [`FORGET_SILENT_AFTER`], as of now.
pub fn forget_gone_workers() -> Change {
    let silent_before = now() - chrono::Duration::from_std(FORGET_SILENT_AFTER).unwrap_or(chrono::Duration::hours(1));
    Change::ForgetWorkers { silent_before }
}

/// Interrupts the running attempts of graph `g` (it was cancelled).
fn stop_graph(handles: &HashMap<Id, (Id, AttemptHandle)>, g: Id) {
    for (graph_id, h) in handles.values() {
        if *graph_id == g {
            h.stop(Stop::Cancelled);
        }
    }
}

/// A heartbeat row of this process in `role`, under a new id (`HOST:PID:random`), started and beaten
/// now. Workers beat such rows; so does `orch serve`, as a [`Server`](WorkerRole::Server), to be found
/// by the processes that would otherwise wait for it in vain.
pub fn this_process(role: WorkerRole, concurrency: u32) -> WorkerInfo {
    let random = crate::wire::new_id().simple().to_string();
    let host = host_name();
    let at = now();
    WorkerInfo {
        id: format!("{host}:{}:{}", std::process::id(), &random[random.len() - 6..]),
        host,
        pid: std::process::id(),
        concurrency,
        started_at: at,
        heartbeat_at: at,
        role,
    }
}

impl Worker {
    pub(crate) fn new(runner: GraphRunner, graph: Option<Id>) -> Self {
        let id = this_process(WorkerRole::Worker, 0).id;
        let concurrency = runner.settings.concurrency.max(1);
        let running = Arc::new(AtomicUsize::new(0));
        Self { runner, graph, id, concurrency, stop: Interrupt::new(), running, facts: HashMap::new() }
    }

    /// Runs at most `n` tasks at once (at least 1).
    pub fn concurrency(mut self, n: u32) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Its id, as its heartbeat row and its claims name it.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Triggering this stops the worker: running attempts are interrupted and their tasks released
    /// (back to ready, no failure counted), then [`Worker::run`] returns.
    pub fn stopper(&self) -> Interrupt {
        self.stop.clone()
    }

    fn info(&self, started_at: crate::wire::Timestamp) -> WorkerInfo {
        WorkerInfo {
            id: self.id.clone(),
            host: host_name(),
            pid: std::process::id(),
            concurrency: self.concurrency,
            started_at,
            heartbeat_at: now(),
            role: WorkerRole::Worker,
        }
    }

    /// Beats; the first beat (`first`) also forgets the rows of processes long gone.
    async fn beat(&self, started_at: crate::wire::Timestamp, first: bool) -> Result<(), GraphError> {
        let mut batch = Batch::new().change(Change::Heartbeat(Box::new(self.info(started_at))));
        if first {
            batch = batch.change(forget_gone_workers());
        }
        self.runner.store.commit(batch.relaxed()).await?;
        Ok(())
    }

    /// How this worker's attempts claim for it as they end.
    fn next_claim(&self) -> ClaimOnEnd {
        ClaimOnEnd {
            worker: self.id.clone(),
            graph: self.graph,
            stop: self.stop.clone(),
            running: self.running.clone(),
        }
    }

    /// Claims up to `n` tasks, their attempts started in the claim's commit.
    async fn claim(&self, n: u32) -> Result<Vec<Claimed>, GraphError> {
        let launch = Launch::new(&self.runner);
        let claim = task_claim(&self.runner.settings, &self.next_claim(), now(), n, launch.starter());
        // Relaxed: a claim lost to a power cut ends with the worker that made it.
        let records =
            self.runner.store.commit(Batch::new().change(Change::ClaimTasks(Box::new(claim))).relaxed()).await?;
        Ok(launch.claimed(claimed_by(&records, &self.id)))
    }

    /// The wake-up stream: the log's task and graph events from after `since`.
    fn follow(&self, since: u64) -> Wakes {
        let filter = EventQuery { types: vec!["TaskUpdated".into(), "GraphUpdated".into()], ..EventQuery::default() };
        self.runner.store.subscribe_foreign(since, filter).fuse()
    }

    /// While the log is not followed (every slot taken): stops the attempts of graphs cancelled
    /// elsewhere, read from their graphs' rows.
    async fn stop_cancelled(&self, handles: &HashMap<Id, (Id, AttemptHandle)>) {
        let graphs: std::collections::BTreeSet<Id> = handles.values().map(|(g, _)| *g).collect();
        for g in graphs {
            match self.runner.store.get_graph(g).await {
                Ok(Some(graph)) if graph.status == GraphStatus::Cancelled => stop_graph(handles, g),
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, graph = %g, "could not read a running graph"),
            }
        }
    }

    /// The facts completed tasks of `graph_id` reported (read again at most every two seconds).
    async fn facts(&mut self, graph_id: Id) -> Vec<Fact> {
        if let Some((at, facts)) = self.facts.get(&graph_id)
            && at.elapsed() < FACTS_TTL
        {
            return facts.clone();
        }
        let facts: Vec<Fact> = match self.runner.store.graph_facts(graph_id).await {
            Ok(facts) => facts,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the graph's facts");
                Vec::new()
            }
        };
        self.facts.insert(graph_id, (Instant::now(), facts.clone()));
        facts
    }

    fn poll_interval(&self) -> Duration {
        // Jitter of ±25 %, so idle workers of many processes do not poll in step.
        let base = self.runner.settings.poll;
        let nanos = u64::from(now().timestamp_subsec_nanos());
        let factor = 0.75 + (nanos % 500) as f64 / 1000.0;
        base.mul_f64(factor)
    }

    /// Frees the slot of an ended attempt; its findings reach this worker's next tasks at once (others'
    /// with the next read of the graph).
    fn ended(
        facts_of: &mut HashMap<Id, (Instant, Vec<Fact>)>,
        handles: &mut HashMap<Id, (Id, AttemptHandle)>,
        task_id: Id,
        learned: Vec<Fact>,
    ) {
        if let Some((graph_id, _)) = handles.remove(&task_id)
            && let Some((_, facts)) = facts_of.get_mut(&graph_id)
        {
            for f in learned {
                if !facts.contains(&f) {
                    facts.push(f);
                }
            }
        }
    }

    /// Starts an attempt of each claimed task (see [`Worker::start`]). Their dependencies are read
    /// at once, by the first attempt that needs them (see [`SharedDeps`]).
    async fn start_all(
        &mut self,
        tasks: Vec<Claimed>,
        handles: &mut HashMap<Id, (Id, AttemptHandle)>,
        report: &mut WorkerReport,
        done: &futures::channel::mpsc::UnboundedSender<(Id, Ended)>,
        runtime: &Arc<dyn Runtime>,
    ) {
        // They run here from now on: an end meanwhile sees them counted.
        self.running.store(handles.len() + tasks.len(), Ordering::SeqCst);
        let with_deps = tasks.iter().filter(|c| !c.task.depends_on.is_empty()).count();
        let deps = (with_deps > 1).then(|| deps_of(self.runner.store.clone(), tasks.iter().map(|c| &c.task)));
        for c in tasks {
            let d = deps.clone().filter(|_| !c.task.depends_on.is_empty());
            self.start(c, d, handles, report, done, runtime).await;
        }
    }

    /// Starts an attempt of the claimed task `c` (its dependencies read with others' by `deps`, if
    /// given) as a task of the runtime, or goes on with the attempt its claim started; its end comes
    /// back on `done`.
    async fn start(
        &mut self,
        c: Claimed,
        deps: Option<SharedDeps>,
        handles: &mut HashMap<Id, (Id, AttemptHandle)>,
        report: &mut WorkerReport,
        done: &futures::channel::mpsc::UnboundedSender<(Id, Ended)>,
        runtime: &Arc<dyn Runtime>,
    ) {
        let Claimed { task: t, started } = c;
        let facts = self.facts(t.graph_id).await;
        let (h, agent) = match started {
            Some(s) => (s.handle, Some(s.agent)),
            None => (AttemptHandle::new(), None),
        };
        handles.insert(t.id, (t.graph_id, h.clone()));
        report.attempts += 1;
        let runner = self.runner.clone();
        let done = done.clone();
        let next = self.next_claim();
        let id = t.id;
        let span = tracing::info_span!(
            "graph_task",
            otel.name = %format_args!("graph_task {}", t.key),
            orch.graph.id = %t.graph_id,
            orch.task.id = %t.id,
            orch.task.key = %t.key,
            orch.task.attempt = i64::from(t.attempt),
        );
        runtime.spawn(
            async move {
                // A panicking attempt still frees its slot (its task is taken over once its deadline
                // passes).
                let attempt = std::panic::AssertUnwindSafe(runner.run_attempt(t, agent, h, facts, deps, Some(next)));
                let ended = attempt.catch_unwind().await.unwrap_or_else(|_| {
                    tracing::error!(task = %id, "a task attempt panicked");
                    Ended::default()
                });
                let _ = done.unbounded_send((id, ended));
            }
            .instrument(span)
            .boxed(),
        );
    }

    /// Runs until stopped ([`Worker::stopper`]) or, for a worker limited to one graph, until that graph
    /// has ended or paused and none of its attempts runs here.
    ///
    /// Each attempt runs as a task of the runtime, so it goes on while the worker claims or beats; a
    /// store error of a claim, a heartbeat or a look at the graph is logged and tried again at the next
    /// poll (the attempts running here are not dropped for it). Only the first heartbeat's error ends
    /// the run: then the store is not usable at all.
    pub async fn run(self) -> Result<WorkerReport, GraphError> {
        // A worker limited to one graph runs in that graph's span (graph → task → agent run); the
        // tasks of a worker serving every graph are traces of their own.
        let span = match self.graph {
            Some(g) => tracing::info_span!("graph", otel.name = "graph", orch.graph.id = %g, orch.worker.id = %self.id),
            None => tracing::Span::none(),
        };
        self.run_loop().instrument(span).await
    }

    async fn run_loop(mut self) -> Result<WorkerReport, GraphError> {
        let store = self.runner.store.clone();
        let runtime = self.runner.supervisor.runner().runtime().clone();
        let started_at = now();
        self.beat(started_at, true).await?;
        let since = store.last_seq().await?;
        // The log is followed only while a slot is free: a worker running all it may has nothing to
        // claim for what the log says (and reading every other worker's task events costs both the
        // database and this process). Its next claim, as a slot frees, takes what became ready
        // meanwhile, and the log is followed again from that claim on.
        let mut wakes: Option<Wakes> = Some(self.follow(since));
        // While the log is not followed, when the running graphs were last read for a cancellation.
        let mut watched_at = Instant::now();
        // This process's own changes made through the runner (a task added, a graph started or
        // cancelled, a checkpoint resolved), which the log does not echo back to it.
        let mut nudges = self.runner.nudges.subscribe();
        let (done_tx, done_rx) = futures::channel::mpsc::unbounded::<(Id, Ended)>();
        let mut done_rx = done_rx.fuse();
        // The attempts running here, by task: their graph and their handle.
        let mut handles: HashMap<Id, (Id, AttemptHandle)> = HashMap::new();
        let mut report = WorkerReport { worker: self.id.clone(), ..WorkerReport::default() };
        let mut last_beat = Instant::now();
        let mut claim_now = true;
        let mut stopping = false;
        // Tasks the log said became ready, not yet seen claimed: when to claim for them.
        let mut ready_seen: HashMap<Id, Instant> = HashMap::new();
        // Whether an idle worker limited to one graph reads it to see if it ended: after what may have
        // ended it (an attempt, the graph's own event, a nudge, the poll), not after every task event.
        let mut check_graph = true;
        loop {
            if ready_seen.values().any(|due| *due <= Instant::now()) {
                claim_now = true;
            }
            if claim_now {
                // This claim takes ready tasks in order, whichever they are; or no slot is free, and
                // the next ended attempt claims.
                ready_seen.clear();
            }
            if self.stop.is_triggered() && !stopping {
                stopping = true;
                for (_, h) in handles.values() {
                    h.stop(Stop::Worker);
                }
            }
            if stopping && handles.is_empty() {
                break;
            }
            let full = handles.len() >= self.concurrency as usize;
            if full && !stopping {
                if wakes.take().is_some() {
                    watched_at = Instant::now();
                }
                if watched_at.elapsed() >= self.runner.settings.poll {
                    self.stop_cancelled(&handles).await;
                    watched_at = Instant::now();
                }
            } else if !full && !stopping && wakes.is_none() && !claim_now {
                // A slot freed with no claim to come (an ended attempt's own claim found too little):
                // the log is followed from here, and one claim takes what became ready unseen.
                match store.last_seq().await {
                    Ok(seq) => wakes = Some(self.follow(seq)),
                    Err(e) => tracing::warn!(error = %e, "reading the log's last seq failed; polling"),
                }
                claim_now = true;
            }
            if last_beat.elapsed() >= self.runner.settings.heartbeat {
                if let Err(e) = self.beat(started_at, false).await {
                    tracing::warn!(error = %e, "worker heartbeat failed");
                }
                last_beat = Instant::now();
            }
            let free = self.concurrency.saturating_sub(u32::try_from(handles.len()).unwrap_or(u32::MAX));
            if !stopping && claim_now && free > 0 {
                // Not following the log: where to follow it from if this claim leaves slots free. Read
                // before the claim, so the claim sees everything up to it (the seqs of the claim's own
                // events would not do: on PostgreSQL a commit takes its seqs after its statements ran,
                // so another commit could get a lower seq yet be invisible to the claim).
                let pre = if wakes.is_none() { store.last_seq().await.ok() } else { None };
                match self.claim(free).await {
                    Ok(claimed) => {
                        claim_now = u32::try_from(claimed.len()).unwrap_or(u32::MAX) == free;
                        self.start_all(claimed, &mut handles, &mut report, &done_tx, &runtime).await;
                        if wakes.is_none() && handles.len() < self.concurrency as usize {
                            // Slots left free: the log tells what becomes ready after this claim (with
                            // no seq read, the next turn of the loop reads one and claims again).
                            if let Some(seq) = pre {
                                wakes = Some(self.follow(seq));
                            }
                        }
                        if claim_now && handles.len() < self.concurrency as usize {
                            continue;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, worker = %self.id, "claiming tasks failed; trying again");
                        claim_now = false;
                    }
                }
            } else {
                claim_now = false;
            }
            if let Some(g) = self.graph
                && handles.is_empty()
                && !claim_now
                && std::mem::take(&mut check_graph)
            {
                match store.get_graph(g).await {
                    Ok(Some(graph)) if graph.status.is_final() || graph.status == GraphStatus::Paused => {
                        report.graph = Some(graph);
                        break;
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => return Err(GraphError::GraphNotFound(g)),
                    Err(e) => {
                        tracing::warn!(error = %e, graph = %g, "reading the graph failed; trying again");
                        check_graph = true;
                    }
                }
            }
            // The tasks ended attempts claimed for this worker, started after the wait below.
            let mut to_start: Vec<Claimed> = Vec::new();
            // Whether the wake-up stream ended (a store error): it is started again, with a claim.
            let mut lost = false;
            let wait = match ready_seen.values().min() {
                Some(due) => self.poll_interval().min(due.saturating_duration_since(Instant::now())),
                None => self.poll_interval(),
            };
            {
                let sleep = runtime.sleep(wait).fuse();
                // Once stopping, the stop signal is no longer a wake-up: it stays triggered, and a select
                // on it would spin without ever yielding, starving the attempts this loop waits for.
                let signal = &self.stop;
                let stop = async move {
                    if stopping {
                        futures::future::pending::<()>().await;
                    } else {
                        signal.triggered().await;
                    }
                }
                .fuse();
                let nudge = nudges.recv().fuse();
                let woken = async {
                    match wakes.as_mut() {
                        Some(w) => w.next().await,
                        None => futures::future::pending().await,
                    }
                }
                .fuse();
                futures::pin_mut!(sleep, stop, nudge, woken);
                futures::select! {
                    done = done_rx.next() => if let Some(first) = done {
                        // Every attempt that ended meanwhile frees its slot before the next claim, so one
                        // claim fills them all (claims are commits: one per ended attempt would cap the
                        // worker's rate at one claim's latency).
                        let mut ended = vec![first];
                        while let Ok(more) = done_rx.get_mut().try_recv() {
                            ended.push(more);
                        }
                        // An end that claimed (in its own commit) refilled its slot, or found nothing
                        // ready; one that did not try leaves the claim to this loop. Its claim took one
                        // task: more may be ready for slots still free.
                        let mut refill = false;
                        let mut claimed = Vec::new();
                        for (task_id, e) in ended {
                            Self::ended(&mut self.facts, &mut handles, task_id, e.learned);
                            match e.claimed {
                                Some(tasks) => {
                                    refill |= !tasks.is_empty();
                                    claimed.extend(tasks);
                                }
                                None => refill = true,
                            }
                            // The tasks ends claimed run here from now on (they start below).
                            self.running.store(handles.len() + claimed.len(), Ordering::SeqCst);
                        }
                        claim_now = refill && handles.len() + claimed.len() < self.concurrency as usize;
                        to_start = claimed;
                        check_graph = true;
                    },
                    ev = woken => match ev {
                        Some(Ok(r)) => match r.event {
                            Event::TaskUpdated { task } if self.graph.is_none_or(|g| g == task.graph_id) => {
                                let due = task.not_before.is_none_or(|t| t <= now());
                                if task.status == TaskStatus::Ready && due {
                                    ready_seen.entry(task.id).or_insert_with(|| Instant::now() + READY_GRACE);
                                } else {
                                    ready_seen.remove(&task.id);
                                }
                            }
                            Event::GraphUpdated { graph } => {
                                if graph.status == GraphStatus::Cancelled {
                                    stop_graph(&handles, graph.id);
                                }
                                claim_now = true;
                                check_graph = true;
                            }
                            _ => {}
                        },
                        Some(Err(e)) => {
                            tracing::debug!(error = %e, "worker wake-up stream failed");
                            lost = true;
                        }
                        None => lost = true,
                    },
                    n = nudge => {
                        if let Ok(super::Nudge::Cancelled(g)) = n {
                            stop_graph(&handles, g);
                        }
                        claim_now = true;
                        check_graph = true;
                    },
                    () = sleep => {
                        claim_now = true;
                        check_graph = true;
                    }
                    () = stop => {}
                }
            }
            if lost {
                wakes = None;
            }
            let started: Vec<Id> = to_start.iter().map(|c| c.task.id).collect();
            self.start_all(to_start, &mut handles, &mut report, &done_tx, &runtime).await;
            if stopping {
                for id in started {
                    if let Some((_, h)) = handles.get(&id) {
                        // Claimed as the worker began to stop: given back like the others.
                        h.stop(Stop::Worker);
                    }
                }
            }
        }
        if let Err(e) = store.commit(Batch::new().change(Change::RemoveWorker { id: self.id.clone() })).await {
            tracing::warn!(error = %e, "could not remove the worker's heartbeat row");
        }
        if report.graph.is_none()
            && let Some(g) = self.graph
        {
            report.graph = store.get_graph(g).await?;
        }
        Ok(report)
    }
}
