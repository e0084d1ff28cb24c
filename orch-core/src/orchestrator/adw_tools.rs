//! The orchestrator's workflow tools, `start_adw` and `check_adw` (the seed's texts): runs start in the
//! background in this process, on the engine's workflows; their tickets are collected so a host can
//! wait for them (or interrupt them) before it exits.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::{Value, json};

use crate::store::EventQuery;
use crate::tool::{Tool, ToolContext, ToolError, ToolOutput, ToolRegistry};
use crate::wire::{Id, WorkflowRecord, WorkflowStatus};
use crate::workflow::{WorkflowEngine, WorkflowTicket};

/// TypeScript-style signatures of the workflow tools.
pub const ADW_SIGNATURES: [&str; 2] = [
    "start_adw(name_of_adw: string, workflow_type: string, prompt: string, description?: string, domain?: string, worktree?: boolean)",
    "check_adw(adw_id: string, tail_count = 10, event_type?: string, include_step_details = false)",
];

/// The workflow runs `start_adw` started, until taken.
#[derive(Clone, Default, Debug)]
pub struct StartedWorkflows {
    runs: Arc<Mutex<Vec<WorkflowTicket>>>,
}

impl StartedWorkflows {
    /// The runs started since the last call, oldest first.
    pub fn take(&self) -> Vec<WorkflowTicket> {
        self.runs.lock().map(|mut r| std::mem::take(&mut *r)).unwrap_or_default()
    }

    fn push(&self, t: WorkflowTicket) {
        if let Ok(mut r) = self.runs.lock() {
            r.push(t);
        }
    }
}

/// Registers `start_adw` and `check_adw` for the orchestrator `orchestrator_id` into `registry`.
pub fn register_adw_tools(
    registry: &mut ToolRegistry,
    workflows: WorkflowEngine,
    orchestrator_id: Id,
) -> StartedWorkflows {
    let started = StartedWorkflows::default();
    let ctx = Arc::new(Ctx { workflows, orchestrator_id, started: started.clone() });
    registry.register(StartAdw(ctx.clone()));
    registry.register(CheckAdw(ctx));
    started
}

struct Ctx {
    workflows: WorkflowEngine,
    orchestrator_id: Id,
    started: StartedWorkflows,
}

struct StartAdw(Arc<Ctx>);
struct CheckAdw(Arc<Ctx>);

fn text(input: &Value, key: &str) -> Option<String> {
    input.get(key).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
}

fn error(message: impl std::fmt::Display) -> ToolOutput {
    ToolOutput::error(format!("❌ Error: {message}"))
}

#[async_trait]
impl Tool for StartAdw {
    fn name(&self) -> &str {
        "start_adw"
    }

    fn description(&self) -> &str {
        "Start an AI developer workflow (e.g. plan_build_review_fix): each step runs a fresh agent with one slash command. It runs in the background; follow it with check_adw."
    }

    fn input_schema(&self) -> Value {
        let types: Vec<String> = self.0.workflows.types().specs.into_iter().map(|s| s.name).collect();
        json!({"type": "object", "properties": {
            "name_of_adw": {"type": "string", "description": "A short name for this run"},
            "workflow_type": {"type": "string", "enum": types},
            "prompt": {"type": "string", "description": "The task"},
            "description": {"type": "string"},
            "domain": {"type": "string", "description": "For the expert_* types: the expert's domain (.claude/commands/experts/<domain>/)"},
            "worktree": {"type": "boolean", "description": "Run it in a git worktree of its own, on branch orch/<name>, leaving the main tree alone (several runs can then work on the repository at once)"}
        }, "required": ["name_of_adw", "workflow_type", "prompt"]})
    }

    fn log_before_call(&self) -> bool {
        true
    }

    async fn call(&self, _ctx: &ToolContext, input: Value) -> Result<ToolOutput, ToolError> {
        let (Some(name), Some(kind), Some(prompt)) =
            (text(&input, "name_of_adw"), text(&input, "workflow_type"), text(&input, "prompt"))
        else {
            return Ok(error("name_of_adw, workflow_type and prompt are all required"));
        };
        let workflows = &self.0.workflows;
        let workflow = match workflows.workflow(&kind) {
            Ok(w) => w,
            Err(e) => return Ok(error(e)),
        };
        let mut request = json!({"prompt": prompt});
        if let Some(d) = text(&input, "description") {
            request["description"] = json!(d);
        }
        if let Some(d) = text(&input, "domain") {
            request["domain"] = json!(d);
        }
        if let Some(w) = input.get("worktree").and_then(Value::as_bool) {
            request["worktree"] = json!(w);
        }
        let record = match workflows.create(workflow.as_ref(), request, Some(name), Some(self.0.orchestrator_id)).await
        {
            Ok(r) => r,
            Err(e) => return Ok(error(format!("Failed to start workflow: {e}"))),
        };
        self.0.started.push(workflows.spawn(&record));
        Ok(ToolOutput::text(format!(
            "✅ Started AI Developer Workflow\nADW ID: {}\nName: {}\nType: {}\nStatus: running (in this process)\n\nFollow it with check_adw(adw_id=\"{}\"). Do not command or delete its agents unless asked to.",
            record.id, record.name, record.workflow_type, record.id
        )))
    }
}

fn icon(status: WorkflowStatus) -> &'static str {
    match status {
        WorkflowStatus::Pending => "⏳",
        WorkflowStatus::InProgress => "🔄",
        WorkflowStatus::Completed => "✅",
        WorkflowStatus::Failed => "❌",
        WorkflowStatus::Cancelled => "🚫",
    }
}

impl CheckAdw {
    /// The run named by `adw_id`: its id, or (a convenience over the seed) its name, newest first.
    async fn find(&self, adw_id: &str) -> Result<Option<WorkflowRecord>, String> {
        let store = self.0.workflows.store();
        if let Ok(id) = adw_id.parse::<Id>() {
            return store.get_workflow(id).await.map_err(|e| e.to_string());
        }
        let runs = store.list_workflows(Some(self.0.orchestrator_id), 1000).await.map_err(|e| e.to_string())?;
        Ok(runs.into_iter().find(|r| r.name == adw_id))
    }
}

#[async_trait]
impl Tool for CheckAdw {
    fn name(&self) -> &str {
        "check_adw"
    }

    fn description(&self) -> &str {
        "An AI developer workflow's status, progress, error and recent activity (the last tail_count events, optionally of one event_type; include_step_details adds payloads). adw_id is the id start_adw gave (or the run's name)."
    }

    fn input_schema(&self) -> Value {
        json!({"type": "object", "properties": {
            "adw_id": {"type": "string"},
            "tail_count": {"type": "integer", "default": 10, "minimum": 0},
            "event_type": {"type": "string"},
            "include_step_details": {"type": "boolean", "default": false}
        }, "required": ["adw_id"]})
    }

    async fn call(&self, _ctx: &ToolContext, input: Value) -> Result<ToolOutput, ToolError> {
        let Some(adw_id) = text(&input, "adw_id") else { return Ok(error("adw_id is required")) };
        let tail = input.get("tail_count").and_then(Value::as_u64).unwrap_or(10).min(1000) as usize;
        let event_type = text(&input, "event_type");
        let details = input.get("include_step_details").and_then(Value::as_bool).unwrap_or(false);
        let r = match self.find(&adw_id).await {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(error(format!("ADW '{adw_id}' not found"))),
            Err(e) => return Ok(error(e)),
        };
        let mut out = format!(
            "📊 ADW Status: {}\nStatus: {} {}\nType: {}\nProgress: {}/{} steps",
            r.name,
            icon(r.status),
            r.status.as_str(),
            r.workflow_type,
            r.completed_steps,
            r.total_steps
        );
        if let Some(step) = &r.current_step {
            out.push_str(&format!("\nCurrent Step: {step}"));
        }
        if let Some(at) = r.started_at {
            out.push_str(&format!("\nStarted: {}", at.format("%Y-%m-%d %H:%M:%S UTC")));
        }
        if let Some(d) = r.duration_seconds {
            out.push_str(&format!("\nDuration: {d}s"));
        }
        if let Some(e) = &r.error_message {
            out.push_str(&format!("\n⚠️ Error: {e}"));
        }
        if let Some(s) = &r.error_step {
            out.push_str(&format!("\nError Step: {s}"));
        }
        if let Some(v) = r.output_data.get("verdict").and_then(Value::as_str) {
            out.push_str(&format!("\nReview Verdict: {v}"));
        }
        let q = EventQuery {
            workflow_id: Some(r.id),
            types: event_type.iter().cloned().collect(),
            ..EventQuery::default()
        };
        let events = match self.0.workflows.store().read_events(&q).await {
            Ok(e) => e,
            Err(e) => return Ok(error(e)),
        };
        match &event_type {
            Some(t) => out.push_str(&format!("\n\n🔍 Recent Activity (filtered by: {t}):")),
            None => out.push_str("\n\n🔍 Recent Activity:"),
        }
        let start = events.len().saturating_sub(tail);
        for e in &events[start..] {
            let step = e.keys.step.as_deref().unwrap_or("-");
            out.push_str(&format!("\n• [{step}] {}: {}", e.event.kind(), e.event.summary()));
            if details {
                let payload = serde_json::to_value(&e.event).unwrap_or(Value::Null);
                out.push_str(&format!("\n  Payload: {}", crate::text::clip_chars(&payload.to_string(), 1000, "...")));
            }
        }
        if events.is_empty() {
            out.push_str("\nNo activity yet");
        }
        Ok(ToolOutput::text(out))
    }
}
