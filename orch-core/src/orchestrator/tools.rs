//! The management tools the orchestrator's model is given: `create_agent`, `list_agents`,
//! `command_agent`, `check_agent_status`, `delete_agent`, `interrupt_agent`, `read_system_logs` and
//! `report_cost`. Result texts follow the seed's; errors come back to the model as tool errors
//! (`❌ Error: …`), never as a failed turn.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::agents::{AgentManager, CreateAgent, ManageError, StatusEntry, StatusReport};
use crate::executor::{Interrupted, RunTicket};
use crate::store::{EventQuery, SystemLogQuery};
use crate::tool::{Tool, ToolContext, ToolError, ToolOutput, ToolRegistry};
use crate::wire::{Agent, Event, Id, LogLevel};

/// The context window `report_cost` measures usage against.
pub const CONTEXT_WINDOW_TOKENS: u64 = 200_000;

/// At this share of the context window `report_cost` suggests compacting (the seed's 80 %).
pub const COMPACT_WARNING_PERCENT: f64 = 80.0;

/// The names of the management tools, in the order they are offered.
pub const MANAGEMENT_TOOLS: [&str; 8] = [
    "create_agent",
    "list_agents",
    "command_agent",
    "check_agent_status",
    "delete_agent",
    "interrupt_agent",
    "read_system_logs",
    "report_cost",
];

/// TypeScript-style signatures of the management tools (shown to people, e.g. on a dashboard).
pub const SIGNATURES: [&str; 8] = [
    "create_agent(name: string, system_prompt?: string, model?: string, subagent_template?: string)",
    "list_agents()",
    "command_agent(agent_name: string, command: string)",
    "check_agent_status(agent_name: string, tail_count = 10, offset = 0, verbose_logs = false)",
    "delete_agent(agent_name: string)",
    "interrupt_agent(agent_name: string)",
    "read_system_logs(offset = 0, limit = 50, message_contains?: string, level?: string)",
    "report_cost()",
];

/// What the tools share: the manager, and which orchestrator (and its own agent record) they serve.
#[derive(Clone)]
struct Ctx {
    manager: AgentManager,
    orchestrator_id: Id,
    orchestrator_agent_id: Id,
    started: StartedRuns,
}

/// The runs `command_agent` started, until taken (the orchestrator takes them at the end of each turn).
#[derive(Clone, Default, Debug)]
pub struct StartedRuns {
    runs: Arc<std::sync::Mutex<Vec<RunTicket>>>,
}

impl StartedRuns {
    /// The runs started since the last call, oldest first.
    pub fn take(&self) -> Vec<RunTicket> {
        self.runs.lock().map(|mut r| std::mem::take(&mut *r)).unwrap_or_default()
    }

    fn push(&self, t: RunTicket) {
        if let Ok(mut r) = self.runs.lock() {
            r.push(t);
        }
    }
}

/// Registers the eight management tools for the orchestrator `orchestrator_id`, whose own turns run
/// as the agent `orchestrator_agent_id`, into `registry`. Returns where the runs they start are
/// collected.
pub fn register_management_tools(
    registry: &mut ToolRegistry,
    manager: AgentManager,
    orchestrator_id: Id,
    orchestrator_agent_id: Id,
) -> StartedRuns {
    let started = StartedRuns::default();
    let ctx = Arc::new(Ctx { manager, orchestrator_id, orchestrator_agent_id, started: started.clone() });
    for kind in
        [Kind::Create, Kind::List, Kind::Command, Kind::Status, Kind::Delete, Kind::Interrupt, Kind::Logs, Kind::Cost]
    {
        registry.register(MgmtTool { kind, ctx: ctx.clone() });
    }
    started
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Create,
    List,
    Command,
    Status,
    Delete,
    Interrupt,
    Logs,
    Cost,
}

struct MgmtTool {
    kind: Kind,
    ctx: Arc<Ctx>,
}

fn err(message: impl std::fmt::Display) -> ToolOutput {
    ToolOutput::error(format!("❌ Error: {message}"))
}

fn opt_str(input: &Value, key: &str) -> Result<Option<String>, String> {
    match input.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!("'{key}' must be a string, got {other}")),
    }
}

fn req_str(input: &Value, key: &'static str) -> Result<String, String> {
    opt_str(input, key)?.ok_or_else(|| format!("'{key}' is required"))
}

fn opt_uint(input: &Value, key: &str, default: usize, max: usize) -> Result<usize, String> {
    match input.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v
            .as_u64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            .map(|n| (n as usize).min(max))
            .ok_or_else(|| format!("'{key}' must be a whole number ≥ 0, got {v}")),
    }
}

fn opt_bool(input: &Value, key: &str) -> Result<bool, String> {
    match input.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(true),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(false),
        Some(v) => Err(format!("'{key}' must be true or false, got {v}")),
    }
}

/// `1234567` → `1,234,567`.
pub fn group_digits(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn clip(s: &str, n: usize) -> String {
    crate::text::clip_chars(s, n, "...")
}

/// `Status`, `Model`, `Tokens` and `Cost` lines of an agent, each starting with `indent`.
fn agent_lines(a: &Agent, indent: &str) -> String {
    let u = &a.usage;
    let mut out = format!(
        "{indent}Status: {}\n{indent}Model: {}\n{indent}Tokens: {} (input {}, output {})\n{indent}Cost: ${:.4}",
        a.status,
        a.model,
        group_digits(u.input_tokens + u.output_tokens),
        group_digits(u.input_tokens),
        group_digits(u.output_tokens),
        a.total_cost_usd
    );
    match a.context_window {
        Some(window) if window > 0 => out.push_str(&format!(
            "\n{indent}Context: {} / {} tokens ({:.0} %)",
            group_digits(a.context_used),
            group_digits(window),
            a.context_used as f64 * 100.0 / window as f64
        )),
        _ if a.context_used > 0 => out.push_str(&format!("\n{indent}Context: {} tokens", group_digits(a.context_used))),
        _ => {}
    }
    out
}

fn agent_block(a: &Agent) -> String {
    format!("• {} (ID: {})\n{}", a.name, a.id, agent_lines(a, "  "))
}

/// The text of `check_agent_status` (also printed by `orch agent status`).
pub fn format_status(report: &StatusReport, verbose: bool) -> String {
    let a = &report.agent;
    let mut out = format!("📊 Agent Status: {}\n{}\n", a.name, agent_lines(a, ""));
    match &report.task_slug {
        None => out.push_str("\nNo recent activity"),
        Some(slug) if report.entries.is_empty() => out.push_str(&format!("Task: {slug}\n\nNo recent activity")),
        Some(slug) => {
            out.push_str(&format!("Task: {slug}\n\nRecent activity:"));
            for StatusEntry { record: rec, summary } in &report.entries {
                out.push_str(&format!("\n• [{}] {}", rec.event.kind(), summary));
                if verbose {
                    let payload = serde_json::to_value(&rec.event).unwrap_or(Value::Null);
                    out.push_str(&format!("\n  Payload: {}", clip(&payload.to_string(), 1000)));
                }
            }
        }
    }
    out
}

impl MgmtTool {
    async fn run(&self, input: &Value) -> Result<ToolOutput, String> {
        let m = &self.ctx.manager;
        let me = |e: ManageError| e.to_string();
        Ok(match self.kind {
            Kind::Create => {
                let req = CreateAgent {
                    name: req_str(input, "name")?,
                    system_prompt: opt_str(input, "system_prompt")?,
                    model: opt_str(input, "model")?,
                    template: opt_str(input, "subagent_template")?,
                    compact_at: None,
                };
                let a = m.create_agent(req).await.map_err(me)?;
                let mut text = format!("✅ Created agent '{}'\nID: {}\nModel: {}", a.name, a.id, a.model);
                if let Some(t) = &a.template {
                    text.push_str(&format!("\nTemplate: {}", t.name));
                }
                match &a.tools {
                    Some(tools) => text.push_str(&format!("\nTools: {}", tools.join(", "))),
                    None => text.push_str("\nTools: all"),
                }
                ToolOutput::text(text)
            }
            Kind::List => {
                let agents = m.list_agents().await.map_err(me)?;
                if agents.is_empty() {
                    ToolOutput::text("No agents found")
                } else {
                    let blocks: Vec<String> = agents.iter().map(agent_block).collect();
                    ToolOutput::text(format!("📋 Active Agents:\n\n{}", blocks.join("\n\n")))
                }
            }
            Kind::Command => {
                let name = req_str(input, "agent_name")?;
                let command = req_str(input, "command")?;
                let t = m.command_agent(&name, &command).await.map_err(me)?;
                self.ctx.started.push(t.clone());
                ToolOutput::text(format!(
                    "✅ Command dispatched to '{}'\nTask: {}\nCommand: {}\n\nThe agent is working in the background. Use check_agent_status(agent_name=\"{}\") to follow it.",
                    t.agent_name,
                    t.task_slug,
                    clip(&command, 100),
                    t.agent_name
                ))
            }
            Kind::Status => {
                let name = req_str(input, "agent_name")?;
                let tail = opt_uint(input, "tail_count", 10, 500)?;
                let offset = opt_uint(input, "offset", 0, usize::MAX)?;
                let verbose = opt_bool(input, "verbose_logs")?;
                let report = m.status(&name, tail, offset).await.map_err(me)?;
                ToolOutput::text(format_status(&report, verbose))
            }
            Kind::Delete => {
                let name = req_str(input, "agent_name")?;
                let was_running = m.agent(&name).await.map(|a| m.runner().is_running(a.id)).unwrap_or(false);
                let a = m.delete_agent(&name).await.map_err(me)?;
                let note = if was_running { " (its running command was interrupted first)" } else { "" };
                ToolOutput::text(format!("✅ Deleted agent '{}'{note}", a.name))
            }
            Kind::Interrupt => {
                let name = req_str(input, "agent_name")?;
                let agent = m.agent(&name).await.map_err(me)?;
                match m.interrupt_agent(&agent.name, Duration::from_secs(5)).await.map_err(me)? {
                    Interrupted::Stopped => ToolOutput::text(format!("✅ Interrupted agent '{}'", agent.name)),
                    Interrupted::Requested => ToolOutput::text(format!(
                        "✅ Interrupt requested for agent '{}' (it runs in another process)",
                        agent.name
                    )),
                    Interrupted::NotRunning => {
                        ToolOutput::text(format!("⚠️ Agent '{}' is not currently running", agent.name))
                    }
                }
            }
            Kind::Logs => {
                let offset = opt_uint(input, "offset", 0, usize::MAX)?;
                let limit = opt_uint(input, "limit", 50, 1000)?;
                let message_contains = opt_str(input, "message_contains")?;
                let level = match opt_str(input, "level")? {
                    None => None,
                    Some(l) => Some(match l.trim().to_ascii_uppercase().as_str() {
                        "DEBUG" => LogLevel::Debug,
                        "INFO" => LogLevel::Info,
                        "WARNING" | "WARN" => LogLevel::Warning,
                        "ERROR" => LogLevel::Error,
                        _ => return Err(format!("unknown level '{l}'; use DEBUG, INFO, WARNING or ERROR")),
                    }),
                };
                let q = SystemLogQuery { offset, limit, message_contains, level };
                let logs = m.store().list_system_logs(&q).await.map_err(|e| e.to_string())?;
                if logs.is_empty() {
                    ToolOutput::text("📋 No system logs found matching the criteria")
                } else {
                    let lines: Vec<String> = logs
                        .iter()
                        .map(|l| {
                            format!(
                                "[{}] {}: {}",
                                l.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                                l.level.as_str(),
                                l.summary.as_deref().unwrap_or(&l.message)
                            )
                        })
                        .collect();
                    ToolOutput::text(format!(
                        "📋 System Logs (showing {} of max {limit}):\n{}",
                        logs.len(),
                        lines.join("\n")
                    ))
                }
            }
            Kind::Cost => self.report_cost().await?,
        })
    }

    async fn report_cost(&self) -> Result<ToolOutput, String> {
        let store = self.ctx.manager.store();
        let o = store
            .get_orchestrator(self.ctx.orchestrator_id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("orchestrator {} not found", self.ctx.orchestrator_id))?;
        // The context in use is what the latest model call sent and received, not the running total.
        let q = EventQuery {
            agent_id: Some(self.ctx.orchestrator_agent_id),
            types: vec!["AgentCostsUpdated".into()],
            ..EventQuery::default()
        };
        let context = store
            .read_events(&q)
            .await
            .map_err(|e| e.to_string())?
            .last()
            .map(|r| match &r.event {
                Event::AgentCostsUpdated { usage, .. } => {
                    usage.input_tokens
                        + usage.cache_read_input_tokens
                        + usage.cache_creation_input_tokens
                        + usage.output_tokens
                }
                _ => 0,
            })
            .unwrap_or(0);
        // The turn that calls this tool is not added to the orchestrator's totals until it ends.
        let body = store.get_agent(self.ctx.orchestrator_agent_id).await.map_err(|e| e.to_string())?;
        let (usage, cost) = match body {
            Some(b) if b.total_cost_usd > o.total_cost_usd || b.usage.input_tokens > o.usage.input_tokens => {
                (b.usage, b.total_cost_usd)
            }
            _ => (o.usage, o.total_cost_usd),
        };
        let pct = context as f64 * 100.0 / CONTEXT_WINDOW_TOKENS as f64;
        let mut text = format!(
            "💰 Orchestrator Cost Report:\nOrchestrator ID: {}\nSession ID: {}\nStatus: {}\nTotal Cost: ${:.4}\nInput Tokens: {}\nOutput Tokens: {}\nTotal Tokens: {}\nContext Usage: {:.1}% ({} of {} tokens in the latest call)",
            o.id,
            o.session_id.as_deref().unwrap_or("Not set yet"),
            o.status,
            cost,
            group_digits(usage.input_tokens),
            group_digits(usage.output_tokens),
            group_digits(usage.input_tokens + usage.output_tokens),
            pct,
            group_digits(context),
            group_digits(CONTEXT_WINDOW_TOKENS)
        );
        if pct >= COMPACT_WARNING_PERCENT {
            text.push_str("\n⚠️ Context usage is high: consider compacting the conversation soon.");
        }
        Ok(ToolOutput::text(text))
    }
}

#[async_trait]
impl Tool for MgmtTool {
    fn name(&self) -> &str {
        MANAGEMENT_TOOLS[self.kind as usize]
    }

    fn description(&self) -> &str {
        match self.kind {
            Kind::Create => {
                "Create a named agent. Give either system_prompt or subagent_template (a template from .claude/agents; its prompt, model and tools apply). model: opus, sonnet, haiku/fast, a model id or claude-code[:MODEL]; default: the configured agent model. The agent starts idle; send it work with command_agent."
            }
            Kind::List => "List the live agents with their status, model, tokens and cost.",
            Kind::Command => {
                "Send a command (prompt) to an agent. It runs in the background and this returns at once; follow it with check_agent_status. A /slash-command at the start is expanded from .claude/commands. Refused while the agent is still running a command."
            }
            Kind::Status => {
                "An agent's status, cost and its latest run's recent activity: the last tail_count entries (skip the newest `offset`); verbose_logs adds each entry's payload."
            }
            Kind::Delete => "Delete an agent (interrupting its running command first). Its name can be reused.",
            Kind::Interrupt => "Stop an agent's running command. The agent stays and can be commanded again.",
            Kind::Logs => {
                "Read system logs, newest first: offset, limit (default 50), message_contains (case-insensitive), level (DEBUG, INFO, WARNING, ERROR)."
            }
            Kind::Cost => "Report this orchestrator's cost, tokens and context usage.",
        }
    }

    fn input_schema(&self) -> Value {
        let name = json!({"type": "string", "description": "The agent's name"});
        match self.kind {
            Kind::Create => json!({"type": "object", "properties": {
                "name": {"type": "string", "description": "Unique agent name, e.g. two words joined by a dash"},
                "system_prompt": {"type": "string"},
                "model": {"type": "string"},
                "subagent_template": {"type": "string"}
            }, "required": ["name"]}),
            Kind::List | Kind::Cost => json!({"type": "object", "properties": {}}),
            Kind::Command => json!({"type": "object", "properties": {
                "agent_name": name, "command": {"type": "string"}
            }, "required": ["agent_name", "command"]}),
            Kind::Status => json!({"type": "object", "properties": {
                "agent_name": name,
                "tail_count": {"type": "integer", "default": 10, "minimum": 0},
                "offset": {"type": "integer", "default": 0, "minimum": 0},
                "verbose_logs": {"type": "boolean", "default": false}
            }, "required": ["agent_name"]}),
            Kind::Delete | Kind::Interrupt => {
                json!({"type": "object", "properties": {"agent_name": name}, "required": ["agent_name"]})
            }
            Kind::Logs => json!({"type": "object", "properties": {
                "offset": {"type": "integer", "default": 0, "minimum": 0},
                "limit": {"type": "integer", "default": 50, "minimum": 1},
                "message_contains": {"type": "string"},
                "level": {"type": "string", "enum": ["DEBUG", "INFO", "WARNING", "ERROR"]}
            }}),
        }
    }

    fn log_before_call(&self) -> bool {
        true
    }

    async fn call(&self, _ctx: &ToolContext, input: Value) -> Result<ToolOutput, ToolError> {
        Ok(self.run(&input).await.unwrap_or_else(err))
    }
}
