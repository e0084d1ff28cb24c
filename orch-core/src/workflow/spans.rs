//! The `tracing` spans of workflow runs: a run's span, and its steps' spans inside it (each step's
//! agent run nests in its step). An OpenTelemetry exporter (see `orch_web::engine::init_logging`)
//! turns them into a trace: workflow → step → agent run → model and tool calls.

use crate::wire::{Agent, WorkflowRecord};

/// The span of a workflow run; its status is recorded when the run ends.
pub(super) fn workflow_span(record: &WorkflowRecord) -> tracing::Span {
    tracing::info_span!(
        "workflow",
        otel.name = %format_args!("workflow {}", record.workflow_type),
        orch.workflow.id = %record.id,
        orch.workflow.type = %record.workflow_type,
        orch.workflow.name = %record.name,
        orch.workflow.status = tracing::field::Empty,
    )
}

/// The span of one step's agent run.
pub(super) fn step_span(step: &str, attempt: u32, agent: &Agent) -> tracing::Span {
    tracing::info_span!(
        "workflow_step",
        otel.name = %format_args!("workflow_step {step}"),
        orch.workflow.step = step,
        orch.workflow.attempt = i64::from(attempt),
        gen_ai.agent.name = %agent.name,
    )
}

/// Records how a run ended on its span, and passes the result on.
pub(super) fn ended<E>(result: Result<WorkflowRecord, E>, span: &tracing::Span) -> Result<WorkflowRecord, E> {
    if let Ok(r) = &result {
        span.record("orch.workflow.status", r.status.as_str());
    }
    result
}
