//! Running workflows: the run's record and its events, one fresh agent per step, on the shared
//! [`Supervisor`]; every change commits with its event through the one write path.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use serde_json::{Value, json};
use tracing::Instrument;

use super::spec::{WorkflowFileError, WorkflowSpec, load_dir};
use super::worktree::{self, Isolation, Worktree};
use super::{builtin, spans};
use crate::Interrupt;
use crate::executor::{RunError, RunOptions, RunOutcome, Supervisor, agent_keys, lease};
use crate::store::{Batch, Change, EventQuery, Store, StoreError};
use crate::template::{SlashCommand, TemplateError, Templates};
use crate::wire::{
    Agent, EndReason, Event, EventKeys, Id, LogLevel, StepStatus, WorkflowRecord, WorkflowStatus, new_id, now, short_id,
};

// The run's git worktree (opened at its start, a commit per step, closed at its end), apart from the
// step runner; a child module, so it reaches the run's fields.
#[path = "run_worktree.rs"]
mod run_worktree;

// Who runs a run (its claim in the store, renewed while it runs), and runs in the background.
#[path = "run_claim.rs"]
mod run_claim;
use run_claim::{Live, renew_claim};
pub use run_claim::{WorkflowTicket, is_stale};

// What a run did before it was resumed, read from its events.
#[path = "run_prior.rs"]
mod run_prior;
pub use run_prior::PriorSteps;

/// What went wrong with a workflow run.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    /// No workflow of that type.
    #[error("unknown workflow type '{name}'; available: {available}")]
    UnknownType {
        /// The type asked for.
        name: String,
        /// The types there are.
        available: String,
    },
    /// The type's file is broken.
    #[error("workflow type '{name}' cannot be used: {error}")]
    BrokenType {
        /// The type.
        name: String,
        /// Why.
        error: String,
    },
    /// No such run.
    #[error("workflow run {0} not found")]
    NotFound(String),
    /// The input lacks something the workflow needs.
    #[error("workflow input: {0}")]
    Input(String),
    /// Another live process runs it.
    #[error("workflow run {id} is busy: {holder} runs it")]
    Busy {
        /// The run.
        id: Id,
        /// Who runs it.
        holder: String,
    },
    /// The run has ended already.
    #[error("workflow run {id} has already ended ({status})")]
    Ended {
        /// The run.
        id: Id,
        /// How it ended.
        status: String,
    },
    /// A step failed; the run is marked failed with it as `error_step`.
    #[error("step {step} failed: {message}")]
    Step {
        /// The step.
        step: String,
        /// Why.
        message: String,
    },
    /// The run was interrupted (cancelled).
    #[error("workflow run interrupted during step {step}")]
    Interrupted {
        /// The step that was running.
        step: String,
    },
    /// The run's git worktree could not be made or reopened.
    #[error("git worktree: {0}")]
    Worktree(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl WorkflowError {
    /// The error's kind (exit codes, HTTP statuses).
    pub fn kind(&self) -> crate::ErrorKind {
        match self {
            Self::UnknownType { .. } | Self::BrokenType { .. } | Self::Input(_) => crate::ErrorKind::Usage,
            Self::NotFound(_) => crate::ErrorKind::NotFound,
            Self::Ended { .. } => crate::ErrorKind::Conflict,
            Self::Busy { .. } => crate::ErrorKind::Busy,
            Self::Step { .. } | Self::Worktree(_) => crate::ErrorKind::Internal,
            Self::Interrupted { .. } => crate::ErrorKind::Interrupted,
            Self::Store(e) => e.kind(),
        }
    }
}

/// A workflow: ordered steps, each run by a fresh agent with one prompt. Rust users implement it for
/// workflows in code; [`super::DataWorkflow`] runs the TOML ones (and the built-ins).
#[async_trait]
pub trait Workflow: Send + Sync {
    /// Its type name (`plan_build`, …).
    fn name(&self) -> &str;
    /// One line for listings.
    fn description(&self) -> &str;
    /// Its steps' names, in order (for `total_steps` and listings).
    fn step_names(&self) -> Vec<String>;
    /// Inputs it requires (`prompt`, …).
    fn required_inputs(&self) -> Vec<String> {
        Vec::new()
    }
    /// Whether its runs work in a git worktree of their own (a run's input `worktree` and
    /// `on_success` override it); none by default.
    fn isolation(&self) -> Isolation {
        Isolation::default()
    }
    /// Runs the steps through `run` ([`WorkflowRun::run_step`], [`WorkflowRun::end_step`], …). An
    /// error fails the run (naming the step for [`WorkflowError::Step`]).
    async fn run(&self, run: &mut WorkflowRun<'_>) -> Result<(), WorkflowError>;
}

/// One step to run.
#[derive(Debug, Clone, Default)]
pub struct StepRequest {
    /// The step's name.
    pub name: String,
    /// Its prompt; a leading `/command` is expanded from the working dir's `.claude/commands`, else
    /// from the built-in defaults (`plan`, `build`, `review`, `fix`).
    pub prompt: String,
    /// Its model (`None`: the command's, else the engine's default).
    pub model: Option<String>,
    /// Its tools (`None`: the command's, else every tool).
    pub allowed_tools: Option<Vec<String>>,
}

/// A step's run: its agent and how the run went.
#[derive(Debug)]
pub struct StepRun {
    /// The step's agent.
    pub agent: Agent,
    /// The run's outcome, or why it could not run.
    pub outcome: Result<RunOutcome, RunError>,
    /// When the step started.
    pub started: Instant,
}

impl StepRun {
    /// The agent's final text, when the run ended normally.
    pub fn final_text(&self) -> Option<&str> {
        self.outcome.as_ref().ok().and_then(|o| o.final_text.as_deref())
    }

    /// Why the step's run failed, if it did (an error, a blocked agent, an interrupt).
    pub fn failure(&self) -> Option<String> {
        match &self.outcome {
            Err(e) => Some(e.to_string()),
            Ok(o) if o.stop_reason == EndReason::Error => {
                Some(o.final_text.clone().unwrap_or_else(|| "the agent's run failed".into()))
            }
            Ok(o) if o.stop_reason == EndReason::Interrupted => Some("interrupted".into()),
            Ok(o) if o.stop_reason == EndReason::Waiting => Some(
                "the step's agent waits for a person to approve a tool call (`orch attention`); a workflow step \
                 cannot wait for one yet"
                    .into(),
            ),
            Ok(_) => None,
        }
    }

    /// Whether the run was interrupted.
    pub fn interrupted(&self) -> bool {
        matches!(&self.outcome, Ok(o) if o.interrupted())
    }
}

/// Runs workflows on a [`Supervisor`]: their records, steps and agents.
#[derive(Clone)]
pub struct WorkflowEngine {
    supervisor: Supervisor,
    store: Arc<dyn Store>,
    working_dir: PathBuf,
    default_model: String,
    code: super::CodeWorkflows,
}

/// The workflow types of a working dir: the built-ins and `.orch/workflows/*.toml` (a file wins over
/// a built-in of the same name), and the files that could not be read.
#[derive(Debug, Clone)]
pub struct WorkflowTypes {
    /// Usable types, by name.
    pub specs: Vec<WorkflowSpec>,
    /// Broken files.
    pub broken: Vec<Arc<WorkflowFileError>>,
}

impl WorkflowTypes {
    /// The type named `name`.
    pub fn get(&self, name: &str) -> Option<&WorkflowSpec> {
        self.specs.iter().find(|s| s.name == name)
    }
}

impl WorkflowEngine {
    /// Workflows in `working_dir`, their steps run on `supervisor`; a step without a model runs on
    /// `default_model`.
    pub fn new(supervisor: Supervisor, working_dir: impl Into<PathBuf>, default_model: impl Into<String>) -> Self {
        let store = supervisor.runner().store().clone();
        let (working_dir, default_model) = (working_dir.into(), default_model.into());
        Self { supervisor, store, working_dir, default_model, code: super::CodeWorkflows::default() }
    }

    /// These workflows with `code`'s: found by name before the built-ins and the files.
    pub fn with_code(mut self, code: super::CodeWorkflows) -> Self {
        self.code = code;
        self
    }

    /// The workflows registered in code.
    pub fn code(&self) -> &super::CodeWorkflows {
        &self.code
    }

    /// The working dir.
    pub fn working_dir(&self) -> &Path {
        &self.working_dir
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The types there are.
    pub fn types(&self) -> WorkflowTypes {
        let mut specs = builtin::builtins();
        let (files, broken) = load_dir(&self.working_dir);
        for f in files {
            specs.retain(|s| s.name != f.name);
            specs.push(f);
        }
        specs.sort_by(|a, b| a.name.cmp(&b.name));
        WorkflowTypes { specs, broken: broken.into_iter().map(Arc::new).collect() }
    }

    /// The workflow of type `name`: one registered in code, else a file's or a built-in.
    pub fn workflow(&self, name: &str) -> Result<Arc<dyn Workflow>, WorkflowError> {
        if let Some(w) = self.code.get(name) {
            return Ok(w);
        }
        let types = self.types();
        if let Some(spec) = types.get(name) {
            return Ok(Arc::new(super::DataWorkflow::new(spec.clone())));
        }
        if let Some(b) = types.broken.iter().find(|b| b.path.file_stem().is_some_and(|s| s == name)) {
            return Err(WorkflowError::BrokenType { name: name.into(), error: b.to_string() });
        }
        let available: Vec<&str> = types.specs.iter().map(|s| s.name.as_str()).collect();
        Err(WorkflowError::UnknownType { name: name.into(), available: available.join(", ") })
    }

    /// Records a new, pending run of `workflow` with `input` (`prompt`, `model`, …).
    pub async fn create(
        &self,
        workflow: &dyn Workflow,
        mut input: Value,
        name: Option<String>,
        orchestrator_id: Option<Id>,
    ) -> Result<WorkflowRecord, WorkflowError> {
        let Some(fields) = input.as_object_mut() else {
            return Err(WorkflowError::Input("the input must be a JSON object".into()));
        };
        for key in workflow.required_inputs() {
            let present =
                fields.get(&key).is_some_and(|v| !v.is_null() && v.as_str().is_none_or(|s| !s.trim().is_empty()));
            if !present {
                return Err(WorkflowError::Input(format!("'{key}' is required by {}", workflow.name())));
            }
        }
        fields.entry("working_dir").or_insert_with(|| json!(self.working_dir.display().to_string()));
        let isolation = workflow.isolation().with_input(&input).map_err(WorkflowError::Input)?;
        if isolation.worktree {
            let runtime = self.supervisor.runner().runtime().clone();
            worktree::check_repository(runtime.as_ref(), &self.working_dir).await.map_err(WorkflowError::Input)?;
        }
        let id = new_id();
        let at = now();
        let short = short_id(id);
        let record = WorkflowRecord {
            id,
            orchestrator_id,
            name: name
                .map(|n| n.trim().to_string())
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| format!("{}-{short}", workflow.name())),
            workflow_type: workflow.name().to_string(),
            description: Some(workflow.description().to_string()).filter(|d| !d.is_empty()),
            status: WorkflowStatus::Pending,
            current_step: None,
            total_steps: u32::try_from(workflow.step_names().len()).unwrap_or(u32::MAX),
            completed_steps: 0,
            started_at: None,
            completed_at: None,
            duration_seconds: None,
            input_data: input,
            output_data: json!({}),
            error_message: None,
            error_step: None,
            error_count: 0,
            metadata: json!({}),
            run: None,
            created_at: at,
            updated_at: at,
        };
        self.store.commit(record_batch(&record, Vec::new())).await?;
        Ok(record)
    }

    /// Runs the recorded run `id` to its end and returns its final record: a pending run from its
    /// first step; a run whose process died mid-way (resume) from where it stopped: completed steps
    /// are not run again, and the interrupted step's agent finishes its turn without re-running the
    /// tool calls it completed; a cancelled run likewise. A run that completed or failed, or that a
    /// live process runs, is refused.
    /// `interrupt` cancels it (the running step's agent is interrupted).
    pub async fn run(&self, id: Id, interrupt: Option<Interrupt>) -> Result<WorkflowRecord, WorkflowError> {
        let record = self.store.get_workflow(id).await?.ok_or_else(|| WorkflowError::NotFound(id.to_string()))?;
        if record.status.is_final() && record.status != WorkflowStatus::Cancelled {
            return Err(WorkflowError::Ended { id, status: record.status.as_str().into() });
        }
        if let Some(holder) = record.run.as_ref().filter(|h| !lease::is_stale(h)) {
            return Err(WorkflowError::Busy { id, holder: holder.to_string() });
        }
        let workflow = self.workflow(&record.workflow_type)?;
        let interrupt = interrupt.unwrap_or_default();
        let holder = lease::new_lease(new_id(), Some(record.name.clone()));
        lease::register(holder.run_id, interrupt.clone());
        let _live = Live(holder.run_id);
        let resuming = matches!(record.status, WorkflowStatus::InProgress | WorkflowStatus::Cancelled);
        let prior = if resuming { PriorSteps::read(self.store.as_ref(), id).await? } else { PriorSteps::default() };
        let expect = record.run.as_ref().map(|h| h.run_id);
        let mut run = WorkflowRun { engine: self, record, interrupt, started: Instant::now(), prior, worktree: None };
        run.record.status = WorkflowStatus::InProgress;
        run.record.started_at.get_or_insert_with(now);
        run.record.completed_at = None;
        run.record.duration_seconds = None;
        run.record.error_message = None;
        run.record.error_step = None;
        run.record.run = Some(holder.clone());
        if let Some(m) = run.record.metadata.as_object_mut() {
            // Where builds before the claim column kept the holder.
            m.remove("runner");
        }
        // The claim and the new state commit together: of two processes resuming one run at once,
        // exactly one gets it; the other is told who runs it.
        run.record.updated_at = now();
        let claim = Change::SwapWorkflowRun { workflow_id: id, expect, lease: Some(holder.clone()) };
        let message = match resuming {
            true => format!("Workflow resumed: {}", run.record.name),
            false => format!("Workflow started: {}", run.record.name),
        };
        let started = Event::SystemLog { level: LogLevel::Info, message, metadata: run.record.input_data.clone() };
        match self.store.commit(record_batch(&run.record, vec![(run.keys(None), started)]).change(claim)).await {
            Ok(_) => {}
            Err(StoreError::WorkflowRunConflict { current, .. }) => {
                let holder = current.map_or_else(|| "another process".to_string(), |h| h.to_string());
                return Err(WorkflowError::Busy { id, holder });
            }
            Err(e) => return Err(e.into()),
        }
        let (stop_renewal, stopped) = futures::channel::oneshot::channel::<()>();
        let runtime = self.supervisor.runner().runtime().clone();
        runtime.spawn(Box::pin(renew_claim(
            id,
            self.store.clone(),
            runtime.clone(),
            holder,
            run.interrupt.clone(),
            stopped,
        )));
        // The run's span: its steps (and their agents' runs) nest in it.
        let span = spans::workflow_span(&run.record);
        let finished = async move {
            let result = match run.enter_worktree(workflow.isolation()).await {
                Ok(()) => workflow.run(&mut run).await,
                Err(e) => Err(e),
            };
            let result = run.leave_worktree(result).await;
            drop(stop_renewal);
            run.finish(result).await
        };
        spans::ended(finished.instrument(span.clone()).await, &span)
    }

    /// Cancels run `id`: the running step's agent is interrupted (here, or in the process running
    /// it, through the log), and that process marks the run cancelled (waiting up to `wait` for it);
    /// a run no live process holds is marked cancelled here. A cancelled run can be resumed.
    pub async fn cancel(&self, id: Id, by: &str, wait: std::time::Duration) -> Result<WorkflowRecord, WorkflowError> {
        let record = self.store.get_workflow(id).await?.ok_or_else(|| WorkflowError::NotFound(id.to_string()))?;
        if record.status.is_final() {
            return Err(WorkflowError::Ended { id, status: record.status.as_str().into() });
        }
        let holder = record.run.clone();
        let live = holder.as_ref().is_some_and(|h| !lease::is_stale(h));
        if let Some(h) = holder.as_ref().filter(|h| live && lease::is_local(h)) {
            // A run of this process: its interrupt reaches the running step.
            lease::interrupt_local(h.run_id);
        }
        if let Some((_, agent_id, _)) = PriorSteps::read(self.store.as_ref(), id).await?.open
            && let Some(agent) = self.store.get_agent(agent_id).await?
        {
            self.supervisor.interrupt(&agent, by, wait).await?;
        }
        if live {
            // The holder marks the run cancelled when its step ends; wait for it.
            let runtime = self.supervisor.runner().runtime().clone();
            let deadline = Instant::now() + wait;
            while Instant::now() < deadline {
                match self.store.get_workflow(id).await? {
                    Some(r) if r.status.is_final() => return Ok(r),
                    _ => runtime.sleep(std::time::Duration::from_millis(50)).await,
                }
            }
            if holder.as_ref().is_some_and(|h| !lease::is_stale(h)) {
                return Err(WorkflowError::Busy { id, holder: holder.map(|h| h.to_string()).unwrap_or_default() });
            }
        }
        let mut record = self.store.get_workflow(id).await?.ok_or_else(|| WorkflowError::NotFound(id.to_string()))?;
        if record.status.is_final() {
            return Ok(record);
        }
        record.status = WorkflowStatus::Cancelled;
        record.completed_at = Some(now());
        record.error_message = Some(format!("cancelled by {by}"));
        record.error_step = record.current_step.clone();
        record.updated_at = now();
        // Released from the (dead) holder it had, if it still has that one: a process that claimed it
        // meanwhile wins, and this cancel is refused.
        let expect = record.run.take().map(|h| h.run_id);
        let release = Change::SwapWorkflowRun { workflow_id: id, expect, lease: None };
        match self.store.commit(record_batch(&record, Vec::new()).change(release)).await {
            Ok(_) => Ok(record),
            Err(StoreError::WorkflowRunConflict { current, .. }) => {
                let holder = current.map_or_else(|| "another process".to_string(), |h| h.to_string());
                Err(WorkflowError::Busy { id, holder })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// [`WorkflowEngine::create`] then [`WorkflowEngine::run`].
    pub async fn start(
        &self,
        workflow_type: &str,
        input: Value,
        name: Option<String>,
        interrupt: Option<Interrupt>,
    ) -> Result<WorkflowRecord, WorkflowError> {
        let workflow = self.workflow(workflow_type)?;
        let record = self.create(workflow.as_ref(), input, name, None).await?;
        self.run(record.id, interrupt).await
    }
}

/// The record's row and its `WorkflowUpdated` event, with `extra` events, as one batch.
fn record_batch(record: &WorkflowRecord, extra: Vec<(EventKeys, Event)>) -> Batch {
    let keys =
        EventKeys { workflow_id: Some(record.id), orchestrator_id: record.orchestrator_id, ..EventKeys::default() };
    let mut batch = Batch::new()
        .change(Change::UpsertWorkflow(Box::new(record.clone())))
        .event(keys, Event::WorkflowUpdated { workflow: Box::new(record.clone()) });
    for (k, e) in extra {
        batch.push_event(k, e);
    }
    batch
}

/// A step's prompt after slash-command expansion, with the command's model and tools.
type Expanded = (String, Option<String>, Option<Vec<String>>);

/// A run in progress: what a [`Workflow`] drives its steps through.
pub struct WorkflowRun<'a> {
    engine: &'a WorkflowEngine,
    record: WorkflowRecord,
    interrupt: Interrupt,
    started: Instant,
    prior: PriorSteps,
    worktree: Option<Worktree>,
}

impl WorkflowRun<'_> {
    /// The run's id.
    pub fn id(&self) -> Id {
        self.record.id
    }

    /// The run's input.
    pub fn input(&self) -> &Value {
        &self.record.input_data
    }

    /// The record as it is now.
    pub fn record(&self) -> &WorkflowRecord {
        &self.record
    }

    /// The working dir of its agents: the engine's, or its place in the run's git worktree.
    pub fn working_dir(&self) -> &Path {
        self.worktree.as_ref().map_or(&self.engine.working_dir, |w| &w.workdir)
    }

    /// What the run did before this process took it over (empty for a fresh run).
    pub fn prior(&self) -> &PriorSteps {
        &self.prior
    }

    /// The run's interrupt, triggered when it is cancelled (a step done in code stops on it).
    pub fn interrupt(&self) -> &Interrupt {
        &self.interrupt
    }

    /// Starts a step that runs no agent (a workflow in code doing its work itself): records
    /// `StepStart` with the run now at this step. End it with [`WorkflowRun::end_step`].
    pub async fn start_step(&mut self, step: &str, attempt: u32) -> Result<(), WorkflowError> {
        self.record.current_step = Some(step.to_string());
        let start =
            Event::StepStart { step_name: step.to_string(), prompt: String::new(), model: String::new(), attempt };
        let keys = self.keys(Some(step));
        self.save(vec![(keys, start)]).await
    }

    /// Continues the step a dead process left open, on its agent: an unfinished turn is resumed
    /// (completed tool calls are not run again); a finished turn gives its result; a turn that never
    /// started runs `request`'s prompt.
    pub async fn resume_step(&mut self, request: StepRequest, agent_id: Id) -> Result<StepRun, WorkflowError> {
        let started = Instant::now();
        let step = request.name.clone();
        let Some(agent) = self.engine.store.get_agent(agent_id).await? else {
            return self.run_step(request, 1).await;
        };
        self.prior.open = None;
        let options = RunOptions {
            task_slug: Some(format!("{}-{step}", self.record.name)),
            interrupt: Some(self.interrupt.clone()),
            allowed_tools: request.allowed_tools.clone(),
            ..RunOptions::default()
        };
        let unfinished = self
            .engine
            .store
            .load_executor_state(agent_id)
            .await?
            .is_some_and(|s| s.get("phase").and_then(Value::as_str).is_some_and(|p| p != "idle"));
        self.log(Some(&step), LogLevel::Info, format!("Resuming the {step} step on agent {}", agent.name), Value::Null)
            .await;
        if unfinished {
            let span = spans::step_span(&step, 1, &agent);
            let outcome = self.engine.supervisor.runner().resume(agent_id, options).instrument(span).await;
            return Ok(StepRun { agent, outcome, started });
        }
        let q = EventQuery { agent_id: Some(agent_id), types: vec!["Result".into()], ..EventQuery::default() };
        if let Some(last) = self.engine.store.read_events(&q).await?.pop()
            && let Event::Result { is_error, stop_reason, num_turns, duration_ms, usage, cost_usd, result } = last.event
        {
            let stop_reason = if is_error { EndReason::Error } else { stop_reason };
            let task_slug = last.keys.task_slug.unwrap_or_default();
            let outcome =
                RunOutcome { stop_reason, num_turns, usage, cost_usd, final_text: result, duration_ms, task_slug };
            return Ok(StepRun { agent, outcome: Ok(outcome), started });
        }
        let (prompt, _, command_tools) =
            self.expand(&request.prompt).map_err(|message| WorkflowError::Step { step: step.clone(), message })?;
        let options = RunOptions { allowed_tools: options.allowed_tools.or(command_tools), ..options };
        let span = spans::step_span(&step, 1, &agent);
        let outcome = self.engine.supervisor.run(&agent, prompt, options).instrument(span).await;
        Ok(StepRun { agent, outcome, started })
    }

    /// Sets a field of the run's output (stored with the next change).
    pub fn set_output(&mut self, key: &str, value: Value) {
        if !self.record.output_data.is_object() {
            self.record.output_data = json!({});
        }
        if let Some(o) = self.record.output_data.as_object_mut() {
            o.insert(key.to_string(), value);
        }
    }

    fn keys(&self, step: Option<&str>) -> EventKeys {
        EventKeys {
            workflow_id: Some(self.record.id),
            orchestrator_id: self.record.orchestrator_id,
            step: step.map(str::to_string),
            ..EventKeys::default()
        }
    }

    /// Stores the record, with `extra` events, in one commit.
    async fn save(&mut self, extra: Vec<(EventKeys, Event)>) -> Result<(), WorkflowError> {
        self.record.updated_at = now();
        // Relaxed: what a run records between steps is rebuilt from the steps' own (synced) commits
        // when a power cut loses it (resume continues an open step from its agent's Result), and the
        // next step's agent commit syncs it anyway.
        self.engine.store.commit(record_batch(&self.record, extra).relaxed()).await?;
        Ok(())
    }

    /// Appends a system log of the run (best effort: a failed append is logged, not fatal).
    pub async fn log(&self, step: Option<&str>, level: LogLevel, message: String, metadata: Value) {
        let batch = Batch::new().event(self.keys(step), Event::SystemLog { level, message, metadata });
        if let Err(e) = self.engine.store.commit(batch).await {
            tracing::warn!(error = %e, "could not record a workflow log");
        }
    }

    /// Runs one step: creates its agent (`<step>-<first 8 of the run id>`, `-<attempt>` after the
    /// first), records `StepStart` with the run now at this step, and runs the prompt to its end. The
    /// step is not ended: call [`WorkflowRun::end_step`] once its outputs are known.
    pub async fn run_step(&mut self, request: StepRequest, attempt: u32) -> Result<StepRun, WorkflowError> {
        let started = Instant::now();
        let step = request.name.clone();
        let (prompt, command_model, command_tools) =
            self.expand(&request.prompt).map_err(|message| WorkflowError::Step { step: step.clone(), message })?;
        let model = request
            .model
            .or(command_model)
            .or_else(|| self.record.input_data.get("model").and_then(Value::as_str).map(str::to_string))
            .filter(|m| !m.trim().is_empty());
        let name = match attempt {
            0 | 1 => format!("{step}-{}", short_id(self.record.id)),
            n => format!("{step}-{}-{n}", short_id(self.record.id)),
        };
        let mut agent = Agent::new(name, model.unwrap_or_default(), self.working_dir().display().to_string());
        if agent.model.is_empty() {
            agent.model = self.engine.default_model.clone();
        }
        agent.orchestrator_id = self.record.orchestrator_id;
        agent.workflow_id = Some(self.record.id);
        agent.workflow_step = Some(step.clone());
        self.record.current_step = Some(step.clone());
        let agent_keys = agent_keys(&agent, None);
        let created = (agent_keys.clone(), Event::AgentCreated { agent: Box::new(agent.clone()) });
        let start =
            Event::StepStart { step_name: step.clone(), prompt: prompt.clone(), model: agent.model.clone(), attempt };
        self.record.updated_at = now();
        // Relaxed: the agent's first commit of its turn, a moment later, syncs this one with it.
        let batch = record_batch(&self.record, vec![created, (agent_keys, start)])
            .change(Change::CreateAgent(Box::new(agent.clone())))
            .relaxed();
        self.engine.store.commit(batch).await?;
        let options = RunOptions {
            allowed_tools: request.allowed_tools.or(command_tools),
            task_slug: Some(format!("{}-{step}", self.record.name)),
            interrupt: Some(self.interrupt.clone()),
            ..RunOptions::default()
        };
        let span = spans::step_span(&step, attempt, &agent);
        let outcome = self.engine.supervisor.run(&agent, prompt, options).instrument(span).await;
        Ok(StepRun { agent, outcome, started })
    }

    /// Asks a step's agent one more question (a turn of its own) and returns its answer.
    pub async fn ask(&mut self, step: &StepRun, question: &str) -> Result<String, WorkflowError> {
        let options = RunOptions {
            task_slug: Some(format!(
                "{}-{}-ask",
                self.record.name,
                step.agent.workflow_step.clone().unwrap_or_default()
            )),
            interrupt: Some(self.interrupt.clone()),
            ..RunOptions::default()
        };
        let agent = self.engine.store.get_agent(step.agent.id).await?.unwrap_or_else(|| step.agent.clone());
        match self.engine.supervisor.run(&agent, question.to_string(), options).await {
            Ok(o) => Ok(o.final_text.unwrap_or_default()),
            Err(e) => Err(WorkflowError::Step {
                step: step.agent.workflow_step.clone().unwrap_or_default(),
                message: format!("asking the agent failed: {e}"),
            }),
        }
    }

    /// Ends a step: `StepEnd` with `payload`, and the run's progress (a success counts as completed).
    pub async fn end_step(
        &mut self,
        step: &str,
        status: StepStatus,
        started: Option<Instant>,
        payload: Value,
    ) -> Result<(), WorkflowError> {
        let duration_ms = started.map_or(0, |s| s.elapsed().as_millis() as u64);
        if status == StepStatus::Success || status == StepStatus::Skipped {
            self.record.completed_steps = self.record.completed_steps.saturating_add(1);
        }
        self.set_output(&format!("{step}_executed"), json!(status != StepStatus::Skipped));
        let mut payload = payload;
        if status != StepStatus::Skipped
            && let Some(commit) = self.commit_step(step, status).await
            && let Some(fields) = payload.as_object_mut()
        {
            fields.extend(commit);
        }
        let end = Event::StepEnd { step_name: step.to_string(), status, duration_ms, payload };
        let keys = self.keys(Some(step));
        self.save(vec![(keys, end)]).await
    }

    /// Expands a leading `/command`: the working dir's own, else a built-in default.
    fn expand(&self, prompt: &str) -> Result<Expanded, String> {
        let templates = Templates::load(self.working_dir());
        match templates.expand(prompt) {
            Ok(Some(e)) => Ok((e.prompt, e.model, e.allowed_tools)),
            Ok(None) => Ok((prompt.to_string(), None, None)),
            Err(TemplateError::UnknownCommand { name, .. }) => {
                let Some(text) = builtin::default_command_for(&name) else {
                    let file = name.replace(':', "/");
                    return Err(format!("unknown command /{name}: add .claude/commands/{file}.md"));
                };
                let arguments = prompt
                    .trim_start()
                    .strip_prefix('/')
                    .and_then(|r| r.strip_prefix(name.as_str()))
                    .unwrap_or("")
                    .trim();
                let command = SlashCommand::from_markdown(name.clone(), Path::new("<built-in>"), &text)
                    .map_err(|e| format!("the built-in /{name} command is broken: {e}"))?;
                Ok((command.render(arguments), command.model.clone(), None))
            }
        }
    }

    /// Marks the run ended: completed, failed (with `error_step`) or cancelled.
    async fn finish(mut self, result: Result<(), WorkflowError>) -> Result<WorkflowRecord, WorkflowError> {
        let (status, error) = match &result {
            Ok(()) => (WorkflowStatus::Completed, None),
            Err(WorkflowError::Interrupted { step }) => {
                (WorkflowStatus::Cancelled, Some((step.clone(), "cancelled".to_string())))
            }
            Err(WorkflowError::Step { step, message }) => {
                (WorkflowStatus::Failed, Some((step.clone(), message.clone())))
            }
            Err(e) => {
                (WorkflowStatus::Failed, Some((self.record.current_step.clone().unwrap_or_default(), e.to_string())))
            }
        };
        self.record.status = status;
        self.record.completed_at = Some(now());
        let secs = self
            .record
            .started_at
            .map(|s| (now() - s).num_seconds().max(0) as u64)
            .unwrap_or_else(|| self.started.elapsed().as_secs());
        self.record.duration_seconds = Some(secs);
        if let Some((step, message)) = error {
            self.record.error_message = Some(message);
            self.record.error_step = Some(step).filter(|s| !s.is_empty());
            self.record.error_count = self.record.error_count.saturating_add(1);
        }
        let message = match status {
            WorkflowStatus::Completed => format!("Workflow completed in {secs}s"),
            other => format!("Workflow {}: {}", other.as_str(), self.record.error_message.clone().unwrap_or_default()),
        };
        let level = if status == WorkflowStatus::Completed { LogLevel::Info } else { LogLevel::Error };
        let ended = Event::SystemLog { level, message, metadata: self.record.output_data.clone() };
        // The final state, its log line and the release of the claim commit together.
        self.record.updated_at = now();
        let expect = self.record.run.take().map(|h| h.run_id);
        let release = Change::SwapWorkflowRun { workflow_id: self.record.id, expect, lease: None };
        let batch = record_batch(&self.record, vec![(self.keys(None), ended)]).change(release);
        self.engine.store.commit(batch).await?;
        match result {
            Err(WorkflowError::Store(e)) => Err(WorkflowError::Store(e)),
            _ => Ok(self.record),
        }
    }
}
