//! What `/ws` sends for one event of the log: orch's own frame ([`WsFrame::Event`]: the flat record,
//! `{"seq": 7, "type": "Text", …}`) and, where the seed's dashboard has a message type for it
//! (seed-contract.md §3.2), a frame in the seed's shape so the seed's dashboard updates live from this
//! server. A seed frame also carries the event's `seq`, and `"frame": "seed"`, so orch's own clients
//! (which decode [`WsFrame`]) take it for a control frame they may ignore.

use orch_core::wire::{Event, EventRecord, Id, WorkflowStatus, WsFrame};
use serde_json::{Value, json};

/// Names of agents, for the seed's `agent_log.agent_name`.
pub trait AgentNames {
    /// The name of agent `id`, if known.
    fn name_of(&self, id: Id) -> Option<String>;
}

/// orch's frame for `r`.
pub fn event_frame(r: &EventRecord) -> Value {
    serde_json::to_value(WsFrame::Event(Box::new(r.clone()))).unwrap_or_default()
}

/// The event's own fields (its JSON without the record's keys and type).
pub fn payload(r: &EventRecord) -> Value {
    let mut v = serde_json::to_value(&r.event).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.remove("type");
    }
    v
}

/// The seed's frames for `r` (none when the seed has no message for it). `orchestrator_agent` is the
/// agent the hosted orchestrator's own turns run as: its blocks are chat bubbles, not agent logs.
pub fn seed_frames(r: &EventRecord, orchestrator_agent: Id, names: &dyn AgentNames) -> Vec<Value> {
    let ts = r.timestamp.to_rfc3339();
    let agent_id = r.keys.agent_id;
    let orchestrator_id = r.keys.orchestrator_id;
    let mut frames = Vec::new();
    let mine = agent_id == Some(orchestrator_agent);
    match &r.event {
        Event::AgentCreated { agent } if !mine => frames.push(json!({
            "type": "agent_created",
            "agent": {"id": agent.id, "name": agent.name, "model": agent.model, "status": agent.status.as_str(),
                      "orchestrator_agent_id": agent.orchestrator_id, "working_dir": agent.working_dir,
                      "adw_id": agent.workflow_id, "adw_step": agent.workflow_step,
                      "input_tokens": agent.usage.input_tokens, "output_tokens": agent.usage.output_tokens,
                      "total_cost": agent.total_cost_usd},
        })),
        Event::AgentStatusChanged { old_status, new_status } if !mine => frames.push(json!({
            "type": "agent_status_changed", "agent_id": agent_id,
            "old_status": old_status.as_str(), "new_status": new_status.as_str(),
        })),
        Event::AgentCostsUpdated { total_usage, total_cost_usd, .. } if !mine => frames.push(json!({
            "type": "agent_updated", "agent_id": agent_id,
            "agent": {"input_tokens": total_usage.input_tokens, "output_tokens": total_usage.output_tokens,
                      "total_cost": total_cost_usd},
        })),
        Event::AgentDeleted {} => frames.push(json!({"type": "agent_deleted", "agent_id": agent_id})),
        Event::OrchestratorCostsUpdated { total_usage, total_cost_usd, .. } => frames.push(json!({
            "type": "orchestrator_updated",
            "orchestrator": {"id": orchestrator_id, "input_tokens": total_usage.input_tokens,
                             "output_tokens": total_usage.output_tokens, "total_cost": total_cost_usd, "updated_at": ts},
        })),
        Event::ChatMessage { message } => frames.push(json!({
            "type": "orchestrator_chat",
            "message": {"id": message.id, "orchestrator_agent_id": message.orchestrator_id,
                        "sender_type": message.sender, "receiver_type": message.receiver,
                        "message": message.message, "agent_id": message.agent_id,
                        "metadata": message.metadata, "timestamp": message.created_at.to_rfc3339()},
        })),
        Event::Thinking { thinking, .. } if mine => frames.push(json!({
            "type": "thinking_block",
            "data": {"id": r.seq.to_string(), "orchestrator_agent_id": orchestrator_id, "thinking": thinking,
                     "timestamp": ts},
        })),
        Event::ToolUse { tool_name, tool_input, tool_use_id } if mine => frames.push(json!({
            "type": "tool_use_block",
            "data": {"id": r.seq.to_string(), "orchestrator_agent_id": orchestrator_id, "tool_name": tool_name,
                     "tool_input": tool_input, "tool_use_id": tool_use_id, "timestamp": ts},
        })),
        Event::UserPromptSubmit { .. } if mine => {
            frames.push(json!({"type": "chat_typing", "orchestrator_agent_id": orchestrator_id, "is_typing": true}));
        }
        Event::Stop { .. } if mine => {
            frames.push(json!({"type": "chat_typing", "orchestrator_agent_id": orchestrator_id, "is_typing": false}));
            frames.push(json!({"type": "chat_stream", "chunk": "", "is_complete": true}));
        }
        Event::SummaryUpdated { summary, .. } if !mine => {
            frames.push(json!({"type": "agent_summary_update", "agent_id": agent_id, "summary": summary}));
        }
        Event::SystemLog { metadata, .. } if metadata.get("relay").is_some_and(Value::is_object) => {
            frames.extend(relay_frame(&metadata["relay"]));
        }
        Event::SystemLog { metadata, .. } if metadata.get("autocomplete").is_some() => {
            let epoch = r.timestamp.timestamp_micros() as f64 / 1e6;
            match metadata["autocomplete"].as_str() {
                Some("started") => frames.push(json!({
                    "type": "autocomplete_started", "orchestrator_agent_id": orchestrator_id,
                    "user_input": metadata["user_input"], "timestamp": epoch,
                })),
                Some("completed") => frames.push(json!({
                    "type": "autocomplete_completed", "orchestrator_agent_id": orchestrator_id, "timestamp": epoch,
                })),
                _ => {}
            }
        }
        Event::WorkflowUpdated { workflow } => {
            let adw = adw_row(workflow);
            if workflow.status == WorkflowStatus::Pending && workflow.started_at.is_none() {
                frames.push(json!({"type": "adw_created", "adw": adw}));
            } else {
                frames.push(json!({"type": "adw_updated", "adw_id": workflow.id, "adw": adw}));
            }
        }
        _ => {}
    }
    // Agent logs: hooks, response blocks and file tracking of managed agents (not the orchestrator's).
    if !mine && let Some(id) = agent_id {
        let category = r.event.category().as_str();
        let log_type = match &r.event {
            Event::Text { .. } => Some("TextBlock"),
            Event::Thinking { .. } => Some("ThinkingBlock"),
            Event::ToolUse { .. } => Some("ToolUseBlock"),
            Event::FileTracking { .. } => Some("FileTrackingBlock"),
            _ if category == "hook" => Some(r.event.kind()),
            _ => None,
        };
        if let Some(event_type) = log_type {
            let category = match &r.event {
                Event::FileTracking { .. } => "file_tracking",
                _ => category,
            };
            frames.push(json!({
                "type": "agent_log",
                "log": {"id": r.seq.to_string(), "agent_id": id, "agent_name": names.name_of(id),
                        "task_slug": r.keys.task_slug, "entry_index": r.seq, "event_category": category,
                        "event_type": event_type, "content": r.event.summary(), "summary": r.event.summary(),
                        "payload": payload(r), "timestamp": ts},
            }));
        }
    }
    // Workflow runs: step changes and every event of a run on its swimlane.
    let relay = matches!(&r.event, Event::SystemLog { metadata, .. } if metadata.get("relay").is_some());
    if let Some(adw_id) = r.keys.workflow_id
        && !matches!(r.event, Event::WorkflowUpdated { .. })
        && !relay
    {
        if let Event::StepStart { step_name, .. } | Event::StepEnd { step_name, .. } = &r.event {
            frames.push(json!({
                "type": "adw_step_change", "adw_id": adw_id, "step": step_name,
                "event_type": r.event.kind(), "payload": payload(r),
            }));
        }
        frames.push(json!({
            "type": "adw_event", "adw_id": adw_id,
            "event": {"id": r.seq.to_string(), "adw_id": adw_id, "adw_step": r.keys.step,
                      "event_category": r.event.category().as_str(), "event_type": r.event.kind(),
                      "content": r.event.summary(), "agent_id": agent_id, "payload": payload(r),
                      "summary": r.event.summary(), "timestamp": ts},
        }));
    }
    for f in &mut frames {
        if let Some(o) = f.as_object_mut() {
            o.insert("seq".into(), json!(r.seq));
            o.insert("frame".into(), json!("seed"));
            o.entry("timestamp").or_insert_with(|| json!(ts.clone()));
        }
    }
    frames
}

/// The frame the seed's server re-broadcasts for a relay frame of its ADW scripts: the same name and
/// fields, except `adw_status`, which becomes `adw_updated` with the status fields as its `adw`.
fn relay_frame(relay: &Value) -> Option<Value> {
    let broadcast = relay.get("broadcast_type")?.as_str()?;
    let mut frame = relay.as_object()?.clone();
    for k in ["type", "broadcast_type", "timestamp"] {
        frame.remove(k);
    }
    if broadcast == "adw_status" {
        let adw = json!({"status": frame.remove("status"), "current_step": frame.remove("current_step"),
                         "completed_steps": frame.remove("completed_steps"), "error_message": frame.remove("error_message")});
        frame.insert("adw".into(), adw);
        frame.insert("type".into(), json!("adw_updated"));
    } else {
        frame.insert("type".into(), json!(broadcast));
    }
    Some(Value::Object(frame))
}

/// The seed's ADW row (AdwFull) of a run, with the fields the seed forgot to send live.
pub fn adw_row(w: &orch_core::wire::WorkflowRecord) -> Value {
    json!({
        "id": w.id, "orchestrator_agent_id": w.orchestrator_id, "adw_name": w.name,
        "workflow_type": w.workflow_type, "description": w.description, "status": w.status.as_str(),
        "current_step": w.current_step, "total_steps": w.total_steps, "completed_steps": w.completed_steps,
        "started_at": w.started_at, "completed_at": w.completed_at, "duration_seconds": w.duration_seconds,
        "error_message": w.error_message, "error_step": w.error_step, "error_count": w.error_count,
        "input_data": w.input_data, "output_data": w.output_data, "metadata": w.metadata,
        "created_at": w.created_at, "updated_at": w.updated_at,
    })
}
