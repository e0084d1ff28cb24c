//! The Python classes over an open engine: `Engine` and `Workflows` whose methods return awaitables,
//! and `SyncEngine` and `SyncWorkflows` (`engine.sync`) whose methods block with the GIL released.

use std::path::PathBuf;

use orch_core::wire::CreateAgent;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::bridge::{awaitable, blocking, from_py, to_py};
use crate::core::{self, OpenArgs, Shared, StartArgs};
use crate::error::Failure;
use crate::follow::Follower;
use crate::hooks::{self, HookDecorator};
use crate::tools;
use crate::types::{Agent, Event, Outcome, WorkflowRun};

fn events_of(v: Vec<orch_core::wire::EventRecord>) -> Vec<Event> {
    v.into_iter().map(Event::new).collect()
}

fn runs_of(v: Vec<orch_core::wire::WorkflowRecord>) -> Vec<WorkflowRun> {
    v.into_iter().map(WorkflowRun::new).collect()
}

fn create_request(
    name: String,
    system_prompt: Option<String>,
    template: Option<String>,
    model: Option<String>,
    compact_at: Option<f64>,
) -> CreateAgent {
    CreateAgent { name, system_prompt, model, template, compact_at }
}

fn start_args(
    workflow_type: String,
    prompt: Option<String>,
    inputs: Option<&Bound<'_, PyDict>>,
    name: Option<String>,
    model: Option<String>,
    worktree: bool,
    wait: bool,
) -> PyResult<StartArgs> {
    let inputs = match inputs {
        Some(d) => match from_py(d.as_any())? {
            serde_json::Value::Object(m) => m,
            _ => return Err(Failure::usage("inputs must be a dict").into()),
        },
        None => serde_json::Map::new(),
    };
    Ok(StartArgs { workflow_type, prompt, inputs, name, model, worktree, wait })
}

/// `open`'s target (a `str` or a path-like) as text.
fn target_text(target: Option<PathBuf>) -> PyResult<Option<String>> {
    target
        .map(|t| {
            t.into_os_string()
                .into_string()
                .map_err(|t| Failure::usage(format!("{}: not valid UTF-8", t.to_string_lossy())).into())
        })
        .transpose()
}

/// Opens an engine (see `orch.open`).
#[pyfunction]
#[pyo3(signature = (target=None, *, model=None, cwd=None, db=None, record=None))]
pub fn open(
    py: Python<'_>,
    target: Option<PathBuf>,
    model: Option<String>,
    cwd: Option<PathBuf>,
    db: Option<String>,
    record: Option<PathBuf>,
) -> PyResult<Engine> {
    let args = OpenArgs { target: target_text(target)?, cwd, db, model, record };
    // Not `blocking`: that spawns the future, and the store's opening future cannot be shown `Send`.
    let core = py.detach(|| crate::bridge::runtime().block_on(core::open(args)))?;
    Ok(Engine { core })
}

/// `orch.open` as an awaitable.
#[pyfunction]
#[pyo3(signature = (target=None, *, model=None, cwd=None, db=None, record=None))]
pub fn open_async(
    py: Python<'_>,
    target: Option<PathBuf>,
    model: Option<String>,
    cwd: Option<PathBuf>,
    db: Option<String>,
    record: Option<PathBuf>,
) -> PyResult<Bound<'_, PyAny>> {
    let args = OpenArgs { target: target_text(target)?, cwd, db, model, record };
    awaitable(py, async move { core::open_send(args).await.map(|core| Engine { core }) })
}

/// An open engine: its store, agents, events and workflows. Methods return awaitables; `engine.sync`
/// has the same methods, blocking.
#[pyclass(frozen, module = "orch._orch", name = "Engine")]
pub struct Engine {
    core: Shared,
}

impl Engine {
    /// The open engine.
    pub fn core(&self) -> &Shared {
        &self.core
    }
}

#[pymethods]
impl Engine {
    /// The blocking view of this engine.
    #[getter]
    fn sync(&self) -> SyncEngine {
        SyncEngine { core: self.core.clone() }
    }

    /// The workflow runs (awaitable methods).
    #[getter]
    fn workflows(&self) -> Workflows {
        Workflows { core: self.core.clone() }
    }

    /// The working directory.
    #[getter]
    fn working_dir(&self) -> PathBuf {
        self.core.engine.working_dir().to_path_buf()
    }

    /// The default model spec, if one is configured.
    #[getter]
    fn model(&self) -> Option<String> {
        self.core.engine.spec().map(|s| s.to_string())
    }

    /// Problems found loading `.claude/settings*.json` hooks (the bad hooks were skipped).
    #[getter]
    fn hook_problems(&self) -> Vec<String> {
        self.core.engine.hook_problems().to_vec()
    }

    /// Creates a free-standing agent.
    #[pyo3(signature = (name, *, system_prompt=None, template=None, model=None, compact_at=None))]
    fn create_agent<'py>(
        &self,
        py: Python<'py>,
        name: String,
        system_prompt: Option<String>,
        template: Option<String>,
        model: Option<String>,
        compact_at: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let req = create_request(name, system_prompt, template, model, compact_at);
        awaitable(py, core::create_agent(self.core.clone(), req))
    }

    /// Runs `prompt` on agent `name` to its end.
    fn command<'py>(&self, py: Python<'py>, name: String, prompt: String) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, core::command(self.core.clone(), name, prompt))
    }

    /// Interrupts agent `name`'s run.
    fn interrupt<'py>(&self, py: Python<'py>, name: String) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, core::interrupt(self.core.clone(), name))
    }

    /// Deletes agent `name`.
    fn delete_agent<'py>(&self, py: Python<'py>, name: String) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, core::delete_agent(self.core.clone(), name))
    }

    /// The live agents.
    fn agents<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, core::agents(self.core.clone()))
    }

    /// One agent by name or id.
    fn agent<'py>(&self, py: Python<'py>, name: String) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, core::agent(self.core.clone(), name))
    }

    /// The events after `since`, oldest first.
    #[pyo3(signature = (since=0, *, agent=None, workflow=None, limit=None))]
    fn events<'py>(
        &self,
        py: Python<'py>,
        since: u64,
        agent: Option<String>,
        workflow: Option<String>,
        limit: Option<usize>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let core = self.core.clone();
        awaitable(py, async move { core::events(core, since, agent, workflow, limit).await.map(events_of) })
    }

    /// A live follower of the events after `since` (`async for ev in engine.follow()`).
    #[pyo3(signature = (since=0, *, agent=None, workflow=None))]
    fn follow(&self, since: u64, agent: Option<String>, workflow: Option<String>) -> Follower {
        Follower::new(self.core.clone(), since, agent, workflow)
    }

    /// The newest event's seq.
    fn last_seq<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, core::last_seq(self.core.clone()))
    }

    /// Adds `func` (sync or async) as a tool of this engine's agents; returns its name.
    #[pyo3(signature = (func, *, name=None, description=None, input_schema=None))]
    fn add_tool(
        &self,
        func: Bound<'_, PyAny>,
        name: Option<String>,
        description: Option<String>,
        input_schema: Option<Bound<'_, PyAny>>,
    ) -> PyResult<String> {
        tools::add(&self.core, &func, name, description, input_schema.as_ref())
    }

    /// `@engine.tool` or `@engine.tool(name, description, input_schema)`: adds the decorated function.
    #[pyo3(signature = (name=None, description=None, input_schema=None))]
    fn tool(
        &self,
        py: Python<'_>,
        name: Option<Bound<'_, PyAny>>,
        description: Option<String>,
        input_schema: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        tools::tool(&self.core, py, name, description, input_schema)
    }

    /// Removes the Python tool `name`; whether there was one.
    fn remove_tool(&self, name: &str) -> bool {
        tools::remove(&self.core, name)
    }

    /// `@engine.hook("PreToolUse", matcher)`: adds the decorated function (sync or async) as a hook.
    #[pyo3(signature = (event, matcher=None, *, name=None))]
    fn hook(&self, event: String, matcher: Option<String>, name: Option<String>) -> PyResult<HookDecorator> {
        HookDecorator::new(&self.core, event, matcher, name)
    }

    /// Adds `func` (sync or async) as a hook at `event` for tools matching `matcher`.
    #[pyo3(signature = (event, func, matcher=None, *, name=None))]
    fn add_hook(
        &self,
        event: &str,
        func: Bound<'_, PyAny>,
        matcher: Option<&str>,
        name: Option<String>,
    ) -> PyResult<()> {
        hooks::add(&self.core, event, &func, matcher, name)
    }

    fn __repr__(&self) -> String {
        format!("<orch.Engine {}>", self.core.engine.working_dir().display())
    }
}

/// The blocking view of an engine: the methods of `Engine`, returning their results.
#[pyclass(frozen, module = "orch._orch", name = "SyncEngine")]
pub struct SyncEngine {
    core: Shared,
}

#[pymethods]
impl SyncEngine {
    /// The workflow runs (blocking methods).
    #[getter]
    fn workflows(&self) -> SyncWorkflows {
        SyncWorkflows { core: self.core.clone() }
    }

    /// The awaitable view of this engine.
    #[getter]
    fn aio(&self) -> Engine {
        Engine { core: self.core.clone() }
    }

    /// The working directory.
    #[getter]
    fn working_dir(&self) -> PathBuf {
        self.core.engine.working_dir().to_path_buf()
    }

    /// Creates a free-standing agent.
    #[pyo3(signature = (name, *, system_prompt=None, template=None, model=None, compact_at=None))]
    fn create_agent(
        &self,
        py: Python<'_>,
        name: String,
        system_prompt: Option<String>,
        template: Option<String>,
        model: Option<String>,
        compact_at: Option<f64>,
    ) -> PyResult<Agent> {
        let req = create_request(name, system_prompt, template, model, compact_at);
        blocking(py, core::create_agent(self.core.clone(), req))
    }

    /// Runs `prompt` on agent `name` to its end; Ctrl-C interrupts the run.
    fn command(&self, py: Python<'_>, name: String, prompt: String) -> PyResult<Outcome> {
        blocking(py, core::command(self.core.clone(), name, prompt))
    }

    /// Interrupts agent `name`'s run.
    fn interrupt(&self, py: Python<'_>, name: String) -> PyResult<&'static str> {
        blocking(py, core::interrupt(self.core.clone(), name))
    }

    /// Deletes agent `name`.
    fn delete_agent(&self, py: Python<'_>, name: String) -> PyResult<Agent> {
        blocking(py, core::delete_agent(self.core.clone(), name))
    }

    /// The live agents.
    fn agents(&self, py: Python<'_>) -> PyResult<Vec<Agent>> {
        blocking(py, core::agents(self.core.clone()))
    }

    /// One agent by name or id.
    fn agent(&self, py: Python<'_>, name: String) -> PyResult<Agent> {
        blocking(py, core::agent(self.core.clone(), name))
    }

    /// The events after `since`, oldest first.
    #[pyo3(signature = (since=0, *, agent=None, workflow=None, limit=None))]
    fn events(
        &self,
        py: Python<'_>,
        since: u64,
        agent: Option<String>,
        workflow: Option<String>,
        limit: Option<usize>,
    ) -> PyResult<Vec<Event>> {
        let core = self.core.clone();
        blocking(py, async move { core::events(core, since, agent, workflow, limit).await.map(events_of) })
    }

    /// A live follower of the events after `since` (`for ev in engine.sync.follow()`).
    #[pyo3(signature = (since=0, *, agent=None, workflow=None))]
    fn follow(&self, since: u64, agent: Option<String>, workflow: Option<String>) -> Follower {
        Follower::new(self.core.clone(), since, agent, workflow)
    }

    /// The newest event's seq.
    fn last_seq(&self, py: Python<'_>) -> PyResult<u64> {
        blocking(py, core::last_seq(self.core.clone()))
    }

    /// Adds `func` (sync or async) as a tool of this engine's agents; returns its name.
    #[pyo3(signature = (func, *, name=None, description=None, input_schema=None))]
    fn add_tool(
        &self,
        func: Bound<'_, PyAny>,
        name: Option<String>,
        description: Option<String>,
        input_schema: Option<Bound<'_, PyAny>>,
    ) -> PyResult<String> {
        tools::add(&self.core, &func, name, description, input_schema.as_ref())
    }

    /// `@engine.tool` or `@engine.tool(name, description, input_schema)`: adds the decorated function.
    #[pyo3(signature = (name=None, description=None, input_schema=None))]
    fn tool(
        &self,
        py: Python<'_>,
        name: Option<Bound<'_, PyAny>>,
        description: Option<String>,
        input_schema: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        tools::tool(&self.core, py, name, description, input_schema)
    }

    /// Removes the Python tool `name`; whether there was one.
    fn remove_tool(&self, name: &str) -> bool {
        tools::remove(&self.core, name)
    }

    /// `@engine.hook("PreToolUse", matcher)`: adds the decorated function (sync or async) as a hook.
    #[pyo3(signature = (event, matcher=None, *, name=None))]
    fn hook(&self, event: String, matcher: Option<String>, name: Option<String>) -> PyResult<HookDecorator> {
        HookDecorator::new(&self.core, event, matcher, name)
    }

    /// Adds `func` (sync or async) as a hook at `event` for tools matching `matcher`.
    #[pyo3(signature = (event, func, matcher=None, *, name=None))]
    fn add_hook(
        &self,
        event: &str,
        func: Bound<'_, PyAny>,
        matcher: Option<&str>,
        name: Option<String>,
    ) -> PyResult<()> {
        hooks::add(&self.core, event, &func, matcher, name)
    }

    fn __repr__(&self) -> String {
        format!("<orch.SyncEngine {}>", self.core.engine.working_dir().display())
    }
}

/// Workflow runs (ADWs): types, start, resume, cancel, get, list, wait; awaitable methods.
#[pyclass(frozen, module = "orch._orch", name = "Workflows")]
pub struct Workflows {
    core: Shared,
}

#[pymethods]
impl Workflows {
    /// Registers a Python workflow class (`orch.workflow.Workflow`) on the engine's workflow runner; its
    /// type name. Runs of it start, resume and cancel as any workflow's, in this process.
    fn register(&self, workflow: &Bound<'_, PyAny>) -> PyResult<String> {
        crate::workflows::register_class(&self.core, workflow)
    }

    /// The workflow types: built-ins and `.orch/workflows/*.toml` (broken files as `broken`/`error`).
    fn types<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        core::workflow_types(&self.core).iter().map(|v| to_py(py, v)).collect()
    }

    /// Records a run of `workflow_type` and runs it: to its end (`wait=True`), else in the background
    /// of this process (`wait(id)` waits for it).
    #[pyo3(signature = (workflow_type, prompt=None, *, inputs=None, name=None, model=None, worktree=false, wait=true))]
    #[allow(clippy::too_many_arguments)]
    fn start<'py>(
        &self,
        py: Python<'py>,
        workflow_type: String,
        prompt: Option<String>,
        inputs: Option<&Bound<'py, PyDict>>,
        name: Option<String>,
        model: Option<String>,
        worktree: bool,
        wait: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let args = start_args(workflow_type, prompt, inputs, name, model, worktree, wait)?;
        let core = self.core.clone();
        awaitable(py, async move { core::start_workflow(core, args).await.map(WorkflowRun::new) })
    }

    /// Continues run `id` here to its end.
    fn resume<'py>(&self, py: Python<'py>, id: String) -> PyResult<Bound<'py, PyAny>> {
        let core = self.core.clone();
        awaitable(py, async move { core::resume_workflow(core, id).await.map(WorkflowRun::new) })
    }

    /// Cancels run `id` (also one another process runs).
    fn cancel<'py>(&self, py: Python<'py>, id: String) -> PyResult<Bound<'py, PyAny>> {
        let core = self.core.clone();
        awaitable(py, async move { core::cancel_workflow(core, id).await.map(WorkflowRun::new) })
    }

    /// Run `id`'s record.
    fn get<'py>(&self, py: Python<'py>, id: String) -> PyResult<Bound<'py, PyAny>> {
        let core = self.core.clone();
        awaitable(py, async move { core::get_workflow(core, id).await.map(WorkflowRun::new) })
    }

    /// The runs, newest first.
    fn list<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let core = self.core.clone();
        awaitable(py, async move { core::list_workflows(core).await.map(runs_of) })
    }

    /// Waits for run `id` to end.
    fn wait<'py>(&self, py: Python<'py>, id: String) -> PyResult<Bound<'py, PyAny>> {
        let core = self.core.clone();
        awaitable(py, async move { core::wait_workflow(core, id).await.map(WorkflowRun::new) })
    }
}

/// Workflow runs with blocking methods (`engine.sync.workflows`).
#[pyclass(frozen, module = "orch._orch", name = "SyncWorkflows")]
pub struct SyncWorkflows {
    core: Shared,
}

#[pymethods]
impl SyncWorkflows {
    /// Registers a Python workflow class (`orch.workflow.Workflow`) on the engine's workflow runner; its
    /// type name. Runs of it start, resume and cancel as any workflow's, in this process.
    fn register(&self, workflow: &Bound<'_, PyAny>) -> PyResult<String> {
        crate::workflows::register_class(&self.core, workflow)
    }

    /// The workflow types.
    fn types<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        core::workflow_types(&self.core).iter().map(|v| to_py(py, v)).collect()
    }

    /// Records a run and runs it (to its end with `wait=True`); Ctrl-C cancels a run waited for.
    #[pyo3(signature = (workflow_type, prompt=None, *, inputs=None, name=None, model=None, worktree=false, wait=true))]
    #[allow(clippy::too_many_arguments)]
    fn start(
        &self,
        py: Python<'_>,
        workflow_type: String,
        prompt: Option<String>,
        inputs: Option<&Bound<'_, PyDict>>,
        name: Option<String>,
        model: Option<String>,
        worktree: bool,
        wait: bool,
    ) -> PyResult<WorkflowRun> {
        let args = start_args(workflow_type, prompt, inputs, name, model, worktree, wait)?;
        let core = self.core.clone();
        blocking(py, async move { core::start_workflow(core, args).await.map(WorkflowRun::new) })
    }

    /// Continues run `id` here to its end.
    fn resume(&self, py: Python<'_>, id: String) -> PyResult<WorkflowRun> {
        let core = self.core.clone();
        blocking(py, async move { core::resume_workflow(core, id).await.map(WorkflowRun::new) })
    }

    /// Cancels run `id`.
    fn cancel(&self, py: Python<'_>, id: String) -> PyResult<WorkflowRun> {
        let core = self.core.clone();
        blocking(py, async move { core::cancel_workflow(core, id).await.map(WorkflowRun::new) })
    }

    /// Run `id`'s record.
    fn get(&self, py: Python<'_>, id: String) -> PyResult<WorkflowRun> {
        let core = self.core.clone();
        blocking(py, async move { core::get_workflow(core, id).await.map(WorkflowRun::new) })
    }

    /// The runs, newest first.
    fn list(&self, py: Python<'_>) -> PyResult<Vec<WorkflowRun>> {
        let core = self.core.clone();
        blocking(py, async move { core::list_workflows(core).await.map(runs_of) })
    }

    /// Waits for run `id` to end.
    fn wait(&self, py: Python<'_>, id: String) -> PyResult<WorkflowRun> {
        let core = self.core.clone();
        blocking(py, async move { core::wait_workflow(core, id).await.map(WorkflowRun::new) })
    }
}
