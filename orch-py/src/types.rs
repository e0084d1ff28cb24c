//! The records handed to Python: events, agents, run outcomes and workflow runs. Each keeps the Rust
//! record and converts fields on access; `to_dict()` gives the whole record as its wire JSON.

use orch_core::wire::{Agent as AgentRecord, EventRecord, Id, RunOutcome, Timestamp, WorkflowRecord};
use pyo3::prelude::*;

use crate::bridge::{serde_to_py, to_py};

fn id_str(id: Option<Id>) -> Option<String> {
    id.map(|i| i.to_string())
}

/// A timestamp as an aware `datetime` (UTC).
fn datetime<'py>(py: Python<'py>, t: &Timestamp) -> PyResult<Bound<'py, PyAny>> {
    let iso = t.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string();
    py.import("datetime")?.getattr("datetime")?.call_method1("fromisoformat", (iso,))
}

/// One appended event of the log.
#[pyclass(frozen, module = "orch._orch", name = "Event")]
pub struct Event {
    record: EventRecord,
}

impl Event {
    /// Wraps a record.
    pub fn new(record: EventRecord) -> Self {
        Self { record }
    }
}

#[pymethods]
impl Event {
    /// The global, gap-free sequence number (from 1).
    #[getter]
    fn seq(&self) -> u64 {
        self.record.seq
    }
    /// The event type (`Text`, `ToolUse`, `StepStart`, …).
    #[getter]
    fn r#type(&self) -> String {
        self.record.event.kind().to_string()
    }
    /// Its category: `agent`, `hook`, `response`, `system`, `chat`, `workflow`, …
    #[getter]
    fn category(&self) -> &'static str {
        self.record.event.category().as_str()
    }
    /// The agent it belongs to.
    #[getter]
    fn agent_id(&self) -> Option<String> {
        id_str(self.record.keys.agent_id)
    }
    /// The orchestrator it belongs to.
    #[getter]
    fn orchestrator_id(&self) -> Option<String> {
        id_str(self.record.keys.orchestrator_id)
    }
    /// The workflow run it belongs to.
    #[getter]
    fn workflow_id(&self) -> Option<String> {
        id_str(self.record.keys.workflow_id)
    }
    /// The workflow step it belongs to.
    #[getter]
    fn step(&self) -> Option<String> {
        self.record.keys.step.clone()
    }
    /// The run slug.
    #[getter]
    fn task_slug(&self) -> Option<String> {
        self.record.keys.task_slug.clone()
    }
    /// When it was appended (an aware `datetime`, UTC).
    #[getter]
    fn ts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        datetime(py, &self.record.timestamp)
    }
    /// The event's own fields (without `type` and the keys), as a dict.
    #[getter]
    fn payload<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let mut v = serde_json::to_value(&self.record.event).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.remove("type");
        }
        to_py(py, &v)
    }
    /// A one-line human summary.
    #[getter]
    fn summary(&self) -> String {
        self.record.event.summary()
    }
    /// The whole record as its wire JSON (flat: `seq`, `timestamp`, keys, `type`, fields).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        serde_to_py(py, &self.record)
    }
    /// This event as the class of its type (`orch.events`; `UnknownEvent` for a type this package
    /// does not know).
    fn typed<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        slf.py().import("orch.events")?.call_method1("typed", (slf,))
    }
    fn __repr__(&self) -> String {
        format!("<Event {} {}: {}>", self.record.seq, self.record.event.kind(), self.record.event.summary())
    }
}

/// An agent's record: status, model, tokens and cost.
#[pyclass(frozen, module = "orch._orch", name = "Agent")]
pub struct Agent {
    record: AgentRecord,
}

impl Agent {
    /// Wraps a record.
    pub fn new(record: AgentRecord) -> Self {
        Self { record }
    }
}

#[pymethods]
impl Agent {
    /// Its id.
    #[getter]
    fn id(&self) -> String {
        self.record.id.to_string()
    }
    /// Its name.
    #[getter]
    fn name(&self) -> String {
        self.record.name.clone()
    }
    /// `idle`, `executing`, `complete`, `blocked`, …
    #[getter]
    fn status(&self) -> &'static str {
        self.record.status.as_str()
    }
    /// Its model.
    #[getter]
    fn model(&self) -> String {
        self.record.model.clone()
    }
    /// Its working directory.
    #[getter]
    fn working_dir(&self) -> String {
        self.record.working_dir.clone()
    }
    /// The orchestrator it belongs to (None: a free-standing agent).
    #[getter]
    fn orchestrator_id(&self) -> Option<String> {
        id_str(self.record.orchestrator_id)
    }
    /// The workflow run it works for.
    #[getter]
    fn workflow_id(&self) -> Option<String> {
        id_str(self.record.workflow_id)
    }
    /// Input tokens over its life.
    #[getter]
    fn input_tokens(&self) -> u64 {
        self.record.usage.input_tokens
    }
    /// Output tokens over its life.
    #[getter]
    fn output_tokens(&self) -> u64 {
        self.record.usage.output_tokens
    }
    /// Its cost over its life, in USD.
    #[getter]
    fn total_cost_usd(&self) -> f64 {
        self.record.total_cost_usd
    }
    /// The whole record as its wire JSON.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        serde_to_py(py, &self.record)
    }
    fn __repr__(&self) -> String {
        format!("<Agent {} {} ({})>", self.record.name, self.record.status.as_str(), self.record.model)
    }
}

/// How a command's run ended.
#[pyclass(frozen, module = "orch._orch", name = "Outcome")]
pub struct Outcome {
    agent: String,
    outcome: RunOutcome,
}

impl Outcome {
    /// The outcome of agent `agent`'s run.
    pub fn new(agent: String, outcome: RunOutcome) -> Self {
        Self { agent, outcome }
    }
}

#[pymethods]
impl Outcome {
    /// The agent's name.
    #[getter]
    fn agent(&self) -> String {
        self.agent.clone()
    }
    /// `completed`, or `interrupted`.
    #[getter]
    fn status(&self) -> &'static str {
        if self.outcome.interrupted() { "interrupted" } else { "completed" }
    }
    /// Why the turn ended: `end_turn`, `max_turns`, `interrupted`, `hook: …`, …
    #[getter]
    fn stop_reason(&self) -> String {
        self.outcome.stop_reason.to_string()
    }
    /// The last text the model produced.
    #[getter]
    fn final_text(&self) -> Option<String> {
        self.outcome.final_text.clone()
    }
    /// The cost of this run in USD.
    #[getter]
    fn cost_usd(&self) -> f64 {
        self.outcome.cost_usd
    }
    /// Model calls made.
    #[getter]
    fn num_turns(&self) -> u32 {
        self.outcome.num_turns
    }
    /// Input tokens of this run.
    #[getter]
    fn input_tokens(&self) -> u64 {
        self.outcome.usage.input_tokens
    }
    /// Output tokens of this run.
    #[getter]
    fn output_tokens(&self) -> u64 {
        self.outcome.usage.output_tokens
    }
    /// Wall time in milliseconds.
    #[getter]
    fn duration_ms(&self) -> u64 {
        self.outcome.duration_ms
    }
    /// The run slug (the events' `task_slug`).
    #[getter]
    fn task_slug(&self) -> String {
        self.outcome.task_slug.clone()
    }
    /// The whole outcome as its wire JSON.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        serde_to_py(py, &self.outcome)
    }
    fn __repr__(&self) -> String {
        format!("<Outcome {} {} ${:.4}>", self.agent, self.outcome.stop_reason, self.outcome.cost_usd)
    }
}

/// A workflow run's record.
#[pyclass(frozen, module = "orch._orch", name = "WorkflowRun")]
pub struct WorkflowRun {
    record: WorkflowRecord,
}

impl WorkflowRun {
    /// Wraps a record.
    pub fn new(record: WorkflowRecord) -> Self {
        Self { record }
    }
}

#[pymethods]
impl WorkflowRun {
    /// Its id.
    #[getter]
    fn id(&self) -> String {
        self.record.id.to_string()
    }
    /// Its name (`TYPE-<8 characters>` unless named).
    #[getter]
    fn name(&self) -> String {
        self.record.name.clone()
    }
    /// The workflow type.
    #[getter]
    fn r#type(&self) -> String {
        self.record.workflow_type.clone()
    }
    /// `pending`, `in_progress`, `completed`, `failed`, `cancelled`.
    #[getter]
    fn status(&self) -> &'static str {
        self.record.status.as_str()
    }
    /// The step running (or that ran last).
    #[getter]
    fn current_step(&self) -> Option<String> {
        self.record.current_step.clone()
    }
    /// Steps completed.
    #[getter]
    fn completed_steps(&self) -> u32 {
        self.record.completed_steps
    }
    /// Steps in all.
    #[getter]
    fn total_steps(&self) -> u32 {
        self.record.total_steps
    }
    /// Why it failed or was cancelled.
    #[getter]
    fn error_message(&self) -> Option<String> {
        self.record.error_message.clone()
    }
    /// The step it failed in.
    #[getter]
    fn error_step(&self) -> Option<String> {
        self.record.error_step.clone()
    }
    /// Its duration in seconds, once ended.
    #[getter]
    fn duration_seconds(&self) -> Option<u64> {
        self.record.duration_seconds
    }
    /// Its inputs.
    #[getter]
    fn input<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.record.input_data)
    }
    /// Its outputs (plan path, verdict, …).
    #[getter]
    fn output<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.record.output_data)
    }
    /// The whole record as its wire JSON.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        serde_to_py(py, &self.record)
    }
    fn __repr__(&self) -> String {
        format!(
            "<WorkflowRun {} {} {} ({}/{})>",
            self.record.name,
            self.record.workflow_type,
            self.record.status.as_str(),
            self.record.completed_steps,
            self.record.total_steps
        )
    }
}
