//! Commands from Telegram, read by long polling (`getUpdates`): `/status`, `/agents`, `/interrupt NAME`
//! and `/approve ID` (a parked tool call, or a graph task's checkpoint, which then runs again), obeyed
//! only from the chats of `notify.telegram.allowed_chats`. A command from any other chat gets a
//! refusal and is logged (a WARNING system log in the event log, and a `tracing` warning).

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use orch_core::Interrupt;
use orch_core::approval::{ApprovalError, Approvals};
use orch_core::engine::Engine;
use orch_core::executor::Interrupted;
use orch_core::graph::Resolution;
use orch_core::store::AgentFilter;
use orch_core::wire::{AgentStatus, ApprovalDecision, Event, EventKeys, Id, LogLevel, NewEvent};
use serde_json::{Value, json};

use super::channel::Telegram;
use super::format::clip;

/// How long one `getUpdates` call waits for a message (below the HTTP client's timeout).
const POLL: Duration = Duration::from_secs(25);
/// How long `/interrupt` waits for the run to stop.
const INTERRUPT_WAIT: Duration = Duration::from_secs(5);
/// Lines of `/agents` at most.
const MAX_AGENTS: usize = 40;

const HELP: &str = "orch commands:\n/status — what runs now\n/agents — the agents\n/interrupt NAME — stop an agent's run\n/approve ID — approve a parked tool call, or retry a task at its checkpoint";

/// Polls the bot for commands until `stop` triggers; failures of the Bot API are logged and retried
/// with a growing pause.
pub async fn poll(engine: Engine, bot: Arc<Telegram>, allowed: Vec<i64>, stop: Interrupt) {
    let mut offset: i64 = 0;
    let mut pause = Duration::from_secs(1);
    loop {
        let updates = tokio::select! {
            _ = stop.triggered() => return,
            r = bot.updates(offset, POLL) => r,
        };
        match updates {
            Ok(updates) => {
                pause = Duration::from_secs(1);
                for u in updates {
                    if let Some(id) = u.get("update_id").and_then(Value::as_i64) {
                        offset = offset.max(id + 1);
                    }
                    handle(&engine, &bot, &allowed, &u).await;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading Telegram commands failed; trying again");
                tokio::select! {
                    _ = stop.triggered() => return,
                    _ = tokio::time::sleep(pause) => {}
                }
                pause = (pause * 2).min(Duration::from_secs(60));
            }
        }
    }
}

/// Answers one update, if it is a command.
async fn handle(engine: &Engine, bot: &Telegram, allowed: &[i64], update: &Value) {
    let Some(message) = update.get("message") else { return };
    let (Some(chat), Some(text)) =
        (message.pointer("/chat/id").and_then(Value::as_i64), message.get("text").and_then(Value::as_str))
    else {
        return;
    };
    let text = text.trim();
    if !text.starts_with('/') {
        return;
    }
    let reply = if allowed.contains(&chat) {
        tracing::info!(chat, command = %clip(text, 80), "a Telegram command");
        run(engine, text).await
    } else {
        refuse(engine, chat, message, text).await
    };
    if let Err(e) = bot.send_text(&json!(chat), &reply).await {
        tracing::warn!(chat, error = %e, "could not answer a Telegram command");
    }
}

/// Logs a command from a chat off the allow-list, and says no.
async fn refuse(engine: &Engine, chat: i64, message: &Value, text: &str) -> String {
    let from = message.pointer("/from/username").and_then(Value::as_str).unwrap_or("?");
    let command = clip(text, 80);
    tracing::warn!(chat, from, %command, "refused a Telegram command: the chat is not in notify.telegram.allowed_chats");
    let log = Event::SystemLog {
        level: LogLevel::Warning,
        message: format!(
            "Telegram: refused '{command}' from chat {chat} (@{from}): not in notify.telegram.allowed_chats"
        ),
        metadata: json!({"chat_id": chat, "from": from, "command": command}),
    };
    if let Err(e) = engine.store().append(vec![NewEvent::new(EventKeys::default(), log)]).await {
        tracing::warn!(error = %e, "could not log a refused Telegram command");
    }
    format!("⛔ Refused: this chat ({chat}) may not command orch.")
}

/// Runs a command from an allowed chat; returns the answer.
async fn run(engine: &Engine, text: &str) -> String {
    let mut words = text.split_whitespace();
    let command = words.next().unwrap_or("").split('@').next().unwrap_or("");
    let arg = words.collect::<Vec<_>>().join(" ");
    let answer = match command {
        "/status" => status(engine).await,
        "/agents" => agents(engine).await,
        "/interrupt" if !arg.is_empty() => interrupt(engine, &arg).await,
        "/approve" if !arg.is_empty() => approve(engine, &arg).await,
        "/interrupt" => Ok("Usage: /interrupt NAME".to_string()),
        "/approve" => Ok("Usage: /approve ID (see the 🙋 message)".to_string()),
        "/help" | "/start" => Ok(HELP.to_string()),
        other => Ok(format!("Unknown command {other}.\n{HELP}")),
    };
    answer.unwrap_or_else(|e| format!("❌ {e}"))
}

/// The live agents other than orchestrators' own.
async fn live_agents(engine: &Engine) -> Result<Vec<orch_core::wire::Agent>, String> {
    let mut agents = engine.store().list_agents(&AgentFilter::default()).await.map_err(|e| e.to_string())?;
    agents.retain(|a| !a.archived && !orch_core::orchestrator::is_orchestrator_agent(a));
    Ok(agents)
}

async fn status(engine: &Engine) -> Result<String, String> {
    let agents = live_agents(engine).await?;
    let count = |s: AgentStatus| agents.iter().filter(|a| a.status == s).count();
    let busy: Vec<&str> =
        agents.iter().filter(|a| a.status == AgentStatus::Executing).map(|a| a.name.as_str()).collect();
    let workflows = engine.store().list_workflows(None, 50).await.map_err(|e| e.to_string())?;
    let running: Vec<String> = workflows
        .iter()
        .filter(|w| !w.status.is_final())
        .map(|w| format!("{} ({})", w.name, w.status.as_str()))
        .collect();
    let waiting = Approvals::new(engine.supervisor().clone()).pending().await.map_err(|e| e.to_string())?.len();
    let mut out = format!(
        "orch: {} agents — {} executing, {} waiting, {} blocked, {} idle",
        agents.len(),
        count(AgentStatus::Executing),
        count(AgentStatus::Waiting),
        count(AgentStatus::Blocked),
        count(AgentStatus::Idle)
    );
    if !busy.is_empty() {
        let _ = write!(out, "\nexecuting: {}", busy.join(", "));
    }
    let _ = write!(out, "\nworkflows running: {}", if running.is_empty() { "none".into() } else { running.join(", ") });
    let _ = write!(out, "\nwaiting for a person: {waiting}");
    Ok(out)
}

async fn agents(engine: &Engine) -> Result<String, String> {
    let agents = live_agents(engine).await?;
    if agents.is_empty() {
        return Ok("No agents".into());
    }
    let mut out = String::new();
    for a in agents.iter().take(MAX_AGENTS) {
        let _ = writeln!(out, "• {} — {}, {}, ${:.4}", a.name, a.status.as_str(), a.model, a.total_cost_usd);
    }
    if agents.len() > MAX_AGENTS {
        let _ = writeln!(out, "… and {} more", agents.len() - MAX_AGENTS);
    }
    Ok(out.trim_end().to_string())
}

async fn interrupt(engine: &Engine, name: &str) -> Result<String, String> {
    let agents = live_agents(engine).await?;
    let mut named: Vec<_> = agents.into_iter().filter(|a| a.name == name).collect();
    // Of agents sharing a name (under different orchestrators), the one running.
    named.sort_by_key(|a| a.status != AgentStatus::Executing);
    let Some(agent) = named.into_iter().next() else { return Err(format!("no agent named '{name}'")) };
    let done = engine.supervisor().interrupt(&agent, "telegram", INTERRUPT_WAIT).await.map_err(|e| e.to_string())?;
    Ok(match done {
        Interrupted::Stopped => format!("⏹️ Interrupted {name}"),
        Interrupted::Requested => format!("⏹️ Interrupted {name} (its run was in another process)"),
        Interrupted::NotRunning => format!("{name} is not running"),
    })
}

async fn approve(engine: &Engine, id: &str) -> Result<String, String> {
    let id: Id = id.trim().parse().map_err(|_| format!("'{id}' is not an approval or task id"))?;
    let approvals = Approvals::new(engine.supervisor().clone());
    match approvals.resolve(id, ApprovalDecision::Approve, None, "telegram").await {
        Ok(resolved) => {
            let text =
                format!("✅ Approved {} of {}; its run continues", resolved.approval.tool_name, resolved.agent.name);
            let _ticket = resolved.continue_in_background(engine.supervisor());
            Ok(text)
        }
        Err(ApprovalError::NotFound(_)) => {
            let runner = engine.graph_runner().map_err(|e| e.to_string())?;
            let task = runner.resolve(id, Resolution::Retry, None).await.map_err(|e| e.to_string())?;
            Ok(format!("✅ {} will run again", task.key))
        }
        Err(e) => Err(e.to_string()),
    }
}
