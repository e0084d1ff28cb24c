//! The operations behind the Python classes, as plain async Rust on the engine, each the engine call the
//! `orch` CLI makes for the same command (orch-web's cli.rs, chat.rs, adw.rs): no second implementation.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use orch_core::Interrupt;
use orch_core::config::{Flags, OrchConfig};
use orch_core::engine::{Engine, EngineBuilder};
use orch_core::model::ModelSpec;
use orch_core::orchestrator::{AgentManager, Interrupted, ManageError, Orchestrator};
use orch_core::store::{AgentFilter, EventQuery, Store};
use orch_core::wire::{CreateAgent, EventRecord, Id, PromptAuthor, WorkflowRecord};
use orch_core::workflow::{CodeWorkflows, WorkflowEngine, WorkflowTicket};
use serde_json::{Value, json};

use crate::error::Failure;
use crate::types::{Agent, Outcome};
use crate::winddown::StopOnDrop;

/// An open engine and the workflow runs this process started in the background.
pub struct Core {
    /// The engine (from the shared composition root, `orch_web::engine`).
    pub engine: Engine,
    /// The workflows registered from Python (`engine.workflows.register`).
    pub code: CodeWorkflows,
    tickets: Mutex<HashMap<Id, WorkflowTicket>>,
}

/// A shared [`Core`].
pub type Shared = Arc<Core>;

/// What `orch.open` was given.
#[derive(Debug, Default)]
pub struct OpenArgs {
    /// A store URL (`sqlite://…`, `sqlite::memory:`, `postgres://…`), a database file, or a working dir.
    pub target: Option<String>,
    /// The working dir (default: the current directory, or `target` when it is a directory).
    pub cwd: Option<PathBuf>,
    /// The store URL (as `--db`).
    pub db: Option<String>,
    /// The model spec (as `--model`: `scripted:PATH`, `anthropic:MODEL`, …).
    pub model: Option<String>,
    /// A cassette to record model calls to (as `--record`).
    pub record: Option<PathBuf>,
}

impl OpenArgs {
    /// The flags these arguments amount to: `target` is a store URL when it looks like one, a working
    /// dir when it is a directory, else a database file.
    fn flags(self) -> Result<Flags, Failure> {
        let mut flags = Flags { working_dir: self.cwd, database_url: self.db, model: self.model, record: self.record };
        if let Some(t) = self.target.map(|t| t.trim().to_string()).filter(|t| !t.is_empty()) {
            let is_url = ["postgres://", "postgresql://", "sqlite:"].iter().any(|p| t.starts_with(p));
            if !is_url && std::path::Path::new(&t).is_dir() {
                if flags.working_dir.is_some() {
                    return Err(Failure::usage(format!("'{t}' is a directory and cwd is given too: give one")));
                }
                flags.working_dir = Some(PathBuf::from(t));
            } else {
                if flags.database_url.is_some() {
                    return Err(Failure::usage(format!("'{t}' names a store and db is given too: give one")));
                }
                flags.database_url = Some(t);
            }
        }
        Ok(flags)
    }
}

/// Opens an engine: the configuration (flags, environment, `.env`, `.orch/config.toml`), then the
/// engine through the composition root every host shares.
pub async fn open(args: OpenArgs) -> Result<Shared, Failure> {
    let config = OrchConfig::load(args.flags()?)?;
    let engine = orch_web::engine::open_with(EngineBuilder::new(config)).await?;
    for problem in engine.hook_problems() {
        tracing::warn!("{problem}");
    }
    Ok(Arc::new(Core { engine, code: CodeWorkflows::new(), tickets: Mutex::new(HashMap::new()) }))
}

/// [`open`] as a future that is `Send` (what an awaitable needs): the store's opening future cannot be
/// shown `Send` by the compiler (a higher-ranked lifetime in the PostgreSQL driver), so it runs on a
/// thread of its own, blocking on the shared runtime, and this waits for its result.
pub async fn open_send(args: OpenArgs) -> Result<Shared, Failure> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("orch-open".into())
        .spawn(move || {
            let _ = tx.send(crate::bridge::runtime().block_on(open(args)));
        })
        .map_err(|e| Failure::new(orch_core::ErrorKind::Internal, format!("cannot start a thread: {e}")))?;
    rx.await.unwrap_or_else(|_| Err(Failure::new(orch_core::ErrorKind::Internal, "opening the engine failed")))
}

impl Core {
    fn store(&self) -> &Arc<dyn Store> {
        self.engine.store()
    }

    /// The engine's workflow runner, with the workflows registered from Python.
    pub fn workflows(&self) -> WorkflowEngine {
        self.engine.workflows().with_code(self.code.clone())
    }

    /// The manager owning agent `name`: the free-standing agents first, then the newest orchestrator's.
    async fn manager_for(&self, name: &str) -> Result<AgentManager, Failure> {
        let free = self.engine.agent_manager(None);
        match free.agent(name).await {
            Ok(_) => return Ok(free),
            Err(ManageError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        if let Some(o) = Orchestrator::latest(self.store().as_ref()).await? {
            let m = self.engine.agent_manager(Some(o.id));
            m.agent(name).await?;
            return Ok(m);
        }
        Err(ManageError::NotFound(name.trim().to_string()).into())
    }

    /// An agent by id or name: a free-standing one, else the newest orchestrator's, else any live one.
    async fn resolve_agent(&self, agent: &str) -> Result<Id, Failure> {
        if let Ok(id) = agent.trim().parse::<Id>() {
            return Ok(id);
        }
        let store = self.store();
        if let Some(a) = store.find_agent(None, agent).await? {
            return Ok(a.id);
        }
        if let Some(o) = Orchestrator::latest(store.as_ref()).await?
            && let Some(a) = store.find_agent(Some(o.id), agent).await?
        {
            return Ok(a.id);
        }
        let mut all = store.list_agents(&AgentFilter::default()).await?;
        all.retain(|a| a.name == agent && !orch_core::orchestrator::is_orchestrator_agent(a));
        all.sort_by_key(|a| a.created_at);
        all.last().map(|a| a.id).ok_or_else(|| ManageError::NotFound(agent.to_string()).into())
    }

    /// The query of `events`/`follow`.
    pub async fn query(
        &self,
        since: u64,
        agent: Option<String>,
        workflow: Option<String>,
        limit: Option<usize>,
    ) -> Result<EventQuery, Failure> {
        let agent_id = match agent {
            Some(a) => Some(self.resolve_agent(&a).await?),
            None => None,
        };
        let workflow_id = workflow.as_deref().map(parse_run_id).transpose()?;
        Ok(EventQuery { after_seq: since, agent_id, workflow_id, limit, ..EventQuery::default() })
    }
}

fn parse_run_id(id: &str) -> Result<Id, Failure> {
    id.trim().parse().map_err(|_| Failure::usage(format!("'{id}' is not a workflow run id (a UUID)")))
}

/// Creates a free-standing agent (`model`: an alias, model id or spec; default the engine's).
pub async fn create_agent(core: Shared, request: CreateAgent) -> Result<Agent, Failure> {
    if request.system_prompt.as_deref().is_none_or(|s| s.trim().is_empty()) && request.template.is_none() {
        return Err(Failure::usage("give system_prompt or template"));
    }
    let mut request = request;
    request.model = request.model.map(|m| match ModelSpec::parse(&m) {
        Ok(spec) => orch_core::engine::agent_model(&spec, core.engine.working_dir()),
        Err(_) => m,
    });
    let a = core.engine.agent_manager(None).create_agent(request).await?;
    Ok(Agent::new(a))
}

/// Runs `prompt` on agent `name` to its end (a leading `/command` is expanded); a failed run is an error.
pub async fn command(core: Shared, name: String, prompt: String) -> Result<Outcome, Failure> {
    let manager = core.manager_for(&name).await?;
    let ticket = manager.command_agent_streaming(&name, &prompt, PromptAuthor::Engineer, None).await?;
    // A caller that goes away (a cancelled await, Ctrl-C) interrupts the run, which records its end.
    let (runner, agent) = (manager.runner().clone(), ticket.agent_id);
    let watcher = runner.clone();
    let mut guard = StopOnDrop::new(
        move || {
            runner.interrupt(agent);
        },
        move || !watcher.is_running(agent),
    );
    let report = ticket.wait().await;
    guard.disarm();
    match report.result {
        Ok(o) => Ok(Outcome::new(report.agent_name, o)),
        Err(e) => Err(Failure::run_failed(format!("agent '{}' failed: {e}", report.agent_name))),
    }
}

/// Interrupts agent `name`'s run, here or in another process: `stopped`, `requested`, `not_running`.
pub async fn interrupt(core: Shared, name: String) -> Result<&'static str, Failure> {
    let manager = core.manager_for(&name).await?;
    Ok(match manager.interrupt_agent_by(&name, Duration::from_secs(5), "python").await? {
        Interrupted::Stopped => "stopped",
        Interrupted::Requested => "requested",
        Interrupted::NotRunning => "not_running",
    })
}

/// Deletes agent `name` (interrupting its run first); returns its last record.
pub async fn delete_agent(core: Shared, name: String) -> Result<Agent, Failure> {
    let manager = core.manager_for(&name).await?;
    Ok(Agent::new(manager.delete_agent(&name).await?))
}

/// The live agents (not the orchestrators' own records), as `orch agent list` shows them.
pub async fn agents(core: Shared) -> Result<Vec<Agent>, Failure> {
    let mut agents = core.store().list_agents(&AgentFilter::default()).await?;
    agents.retain(|a| !orch_core::orchestrator::is_orchestrator_agent(a));
    Ok(agents.into_iter().map(Agent::new).collect())
}

/// One agent by name (or id).
pub async fn agent(core: Shared, name: String) -> Result<Agent, Failure> {
    let id = core.resolve_agent(&name).await?;
    let a = core.store().get_agent(id).await?.ok_or_else(|| Failure::from(ManageError::NotFound(name)))?;
    Ok(Agent::new(a))
}

/// The events after `since`, oldest first.
pub async fn events(
    core: Shared,
    since: u64,
    agent: Option<String>,
    workflow: Option<String>,
    limit: Option<usize>,
) -> Result<Vec<EventRecord>, Failure> {
    let q = core.query(since, agent, workflow, limit).await?;
    Ok(core.store().read_events(&q).await?)
}

/// The newest event's seq (0 for an empty log).
pub async fn last_seq(core: Shared) -> Result<u64, Failure> {
    Ok(core.store().last_seq().await?)
}

/// The workflow types as dicts: `type`, `description`, `steps`, `inputs`, `source`, `worktree`; broken
/// files as `broken` and `error`.
pub fn workflow_types(core: &Core) -> Vec<Value> {
    let types = core.workflows().types();
    let mut out: Vec<Value> = types
        .specs
        .iter()
        .map(|s| {
            let steps: Vec<&str> = s.steps.iter().map(|st| st.name.as_str()).collect();
            json!({
                "type": s.name, "description": s.description, "steps": steps, "inputs": s.inputs,
                "source": s.source.as_ref().map(|p| p.display().to_string()), "worktree": s.isolation.worktree,
            })
        })
        .collect();
    let wf = core.workflows();
    for name in wf.code().names() {
        if let Some(w) = wf.code().get(&name) {
            out.retain(|t| t["type"] != json!(name));
            let (description, steps, inputs) = (w.description(), w.step_names(), w.required_inputs());
            out.push(json!({
                "type": name, "description": description, "steps": steps, "inputs": inputs,
                "source": "python", "worktree": false,
            }));
        }
    }
    out.extend(types.broken.iter().map(|b| json!({"broken": b.path.display().to_string(), "error": b.to_string()})));
    out
}

/// What `workflows.start` was asked for.
pub struct StartArgs {
    /// The workflow type.
    pub workflow_type: String,
    /// The task (the input `prompt`).
    pub prompt: Option<String>,
    /// Other inputs.
    pub inputs: serde_json::Map<String, Value>,
    /// The run's name.
    pub name: Option<String>,
    /// The steps' model (an alias or model id).
    pub model: Option<String>,
    /// Run it in a git worktree of its own.
    pub worktree: bool,
    /// Run it to its end before returning (else in the background of this process).
    pub wait: bool,
}

/// Records a run and runs it: to its end (`wait`), else in the background of this process.
pub async fn start_workflow(core: Shared, args: StartArgs) -> Result<WorkflowRecord, Failure> {
    if args.prompt.as_deref().is_some_and(|p| p.trim().is_empty()) {
        return Err(Failure::usage("the prompt is empty"));
    }
    let wf = core.workflows();
    let workflow = wf.workflow(&args.workflow_type)?;
    let mut input = Value::Object(args.inputs);
    if let Some(p) = args.prompt {
        input["prompt"] = json!(p);
    }
    if let Some(m) = args.model {
        input["model"] = json!(m);
    }
    if args.worktree {
        input["worktree"] = json!(true);
    }
    let record = wf.create(workflow.as_ref(), input, args.name, None).await?;
    if args.wait {
        return run_workflow(core, record.id).await;
    }
    let ticket = wf.spawn(&record);
    if let Ok(mut t) = core.tickets.lock() {
        t.insert(record.id, ticket);
    }
    Ok(record)
}

/// Runs (or resumes) run `id` here to its end, on a task of its own: a dropped caller cancels it, and
/// the run still records its end.
async fn run_workflow(core: Shared, id: Id) -> Result<WorkflowRecord, Failure> {
    let interrupt = Interrupt::new();
    let (wf, stop) = (core.workflows(), interrupt.clone());
    let task = tokio::spawn(async move { wf.run(id, Some(stop)).await });
    let done = task.abort_handle();
    let mut guard = StopOnDrop::trigger(interrupt, move || done.is_finished());
    let result = task.await;
    guard.disarm();
    match result {
        Ok(r) => Ok(r?),
        Err(e) => Err(Failure::new(orch_core::ErrorKind::Internal, format!("the workflow run's task failed: {e}"))),
    }
}

/// Continues run `id` (its process died, or it was cancelled) here, to its end.
pub async fn resume_workflow(core: Shared, id: String) -> Result<WorkflowRecord, Failure> {
    let id = parse_run_id(&id)?;
    run_workflow(core, id).await
}

/// Cancels run `id`, also one run by another process.
pub async fn cancel_workflow(core: Shared, id: String) -> Result<WorkflowRecord, Failure> {
    let id = parse_run_id(&id)?;
    Ok(core.workflows().cancel(id, "python", Duration::from_secs(30)).await?)
}

/// Run `id`'s record.
pub async fn get_workflow(core: Shared, id: String) -> Result<WorkflowRecord, Failure> {
    let run = parse_run_id(&id)?;
    core.store()
        .get_workflow(run)
        .await?
        .ok_or_else(|| Failure::new(orch_core::ErrorKind::NotFound, format!("workflow run {id} not found")))
}

/// The runs, newest first.
pub async fn list_workflows(core: Shared) -> Result<Vec<WorkflowRecord>, Failure> {
    Ok(core.store().list_workflows(None, 1000).await?)
}

/// Waits for run `id` to end: a run this process started in the background through its ticket, any
/// other by watching its record.
pub async fn wait_workflow(core: Shared, id: String) -> Result<WorkflowRecord, Failure> {
    let run = parse_run_id(&id)?;
    let ticket = core.tickets.lock().ok().and_then(|t| t.get(&run).cloned());
    if let Some(t) = ticket {
        let result = t.wait().await;
        if let Ok(mut tickets) = core.tickets.lock() {
            tickets.remove(&run);
        }
        return match result {
            Ok(r) => Ok(r),
            Err(e) => Err(Failure::new(orch_core::ErrorKind::Internal, e)),
        };
    }
    loop {
        let r = get_workflow(core.clone(), id.clone()).await?;
        if r.status.is_final() {
            return Ok(r);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
