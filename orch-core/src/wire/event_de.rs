//! Reading events and event records from JSON, written by hand.
//!
//! serde's derive for an internally tagged enum buffers the input and generates, for every variant, a
//! visitor over its private buffer type; with [`EventRecord`]'s two flattened parts on top, that was
//! more than half of the browser dashboard's WebAssembly. Here the JSON is read once into a
//! [`serde_json::Value`] and every field is taken from its object, so each field type's `Deserialize` is
//! built for one deserializer (`Value`), the one the rest of a reader already uses.
//!
//! What is accepted is what the derive accepted: fields of other names are ignored; an `Option` field
//! may be missing or `null`; a field marked `#[serde(default)]` in the enum may be missing; any other
//! missing field is an error naming it (`missing field `text``). Writing is still serde's derive, so the
//! JSON written is unchanged.

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use super::{Event, EventKeys, EventRecord, UnknownEvent};

type Fields = Map<String, Value>;
type Error = serde_json::Error;

/// The JSON field that names an event's type.
pub(super) const TYPE_TAG: &str = "type";

/// A field that must be present.
fn req<T: DeserializeOwned>(m: &mut Fields, name: &'static str) -> Result<T, Error> {
    match m.remove(name) {
        Some(v) => T::deserialize(v).map_err(|e| Error::custom(format_args!("field `{name}`: {e}"))),
        None => Err(Error::missing_field(name)),
    }
}

/// A field that may be missing (or `null`): `None` then.
fn opt<T: DeserializeOwned>(m: &mut Fields, name: &'static str) -> Result<Option<T>, Error> {
    match m.remove(name) {
        Some(v) => Option::<T>::deserialize(v).map_err(|e| Error::custom(format_args!("field `{name}`: {e}"))),
        None => Ok(None),
    }
}

/// A field with a default: its default when missing.
fn def<T: DeserializeOwned + Default>(m: &mut Fields, name: &'static str) -> Result<T, Error> {
    match m.remove(name) {
        Some(v) => T::deserialize(v).map_err(|e| Error::custom(format_args!("field `{name}`: {e}"))),
        None => Ok(T::default()),
    }
}

impl Event {
    /// The event of type `kind` from its JSON fields (the `type` among them or not). A `kind` this build
    /// does not know gives [`Event::Unknown`] with the fields; a known one with bad fields is an error.
    pub(super) fn from_fields(kind: String, mut m: Fields) -> Result<Self, Error> {
        let m = &mut m;
        Ok(match kind.as_str() {
            "AgentCreated" => Self::AgentCreated { agent: req(m, "agent")? },
            "AgentStatusChanged" => {
                Self::AgentStatusChanged { old_status: req(m, "old_status")?, new_status: req(m, "new_status")? }
            }
            "AgentCostsUpdated" => Self::AgentCostsUpdated {
                model: req(m, "model")?,
                usage: req(m, "usage")?,
                cost_usd: req(m, "cost_usd")?,
                total_usage: req(m, "total_usage")?,
                total_cost_usd: req(m, "total_cost_usd")?,
                context_used: opt(m, "context_used")?,
                context_window: opt(m, "context_window")?,
            },
            "AgentDeleted" => Self::AgentDeleted {},
            "InterruptRequested" => Self::InterruptRequested { requested_by: req(m, "requested_by")? },
            "OrchestratorCreated" => Self::OrchestratorCreated { orchestrator: req(m, "orchestrator")? },
            "OrchestratorCostsUpdated" => Self::OrchestratorCostsUpdated {
                usage: req(m, "usage")?,
                cost_usd: req(m, "cost_usd")?,
                total_usage: req(m, "total_usage")?,
                total_cost_usd: req(m, "total_cost_usd")?,
            },
            "UserPromptSubmit" => {
                Self::UserPromptSubmit { prompt: req(m, "prompt")?, prompt_length: req(m, "prompt_length")? }
            }
            "PreToolUse" => Self::PreToolUse {
                tool_name: req(m, "tool_name")?,
                tool_input: req(m, "tool_input")?,
                tool_use_id: req(m, "tool_use_id")?,
            },
            "PostToolUse" => Self::PostToolUse {
                tool_name: req(m, "tool_name")?,
                result: opt(m, "result")?,
                is_error: req(m, "is_error")?,
                tool_use_id: req(m, "tool_use_id")?,
            },
            "Stop" => Self::Stop {
                reason: req(m, "reason")?,
                num_turns: req(m, "num_turns")?,
                duration_ms: req(m, "duration_ms")?,
            },
            "SubagentStart" => Self::SubagentStart {
                subagent_id: req(m, "subagent_id")?,
                subagent_type: req(m, "subagent_type")?,
                description: req(m, "description")?,
                tool_use_id: req(m, "tool_use_id")?,
            },
            "SubagentStop" => Self::SubagentStop {
                subagent_id: req(m, "subagent_id")?,
                tool_use_id: opt(m, "tool_use_id")?,
                reason: opt(m, "reason")?,
                cost_usd: def(m, "cost_usd")?,
            },
            "PreCompact" => Self::PreCompact { tokens_before: req(m, "tokens_before")? },
            "Compacted" => Self::Compacted {
                trigger: req(m, "trigger")?,
                tokens_before: req(m, "tokens_before")?,
                tokens_after: req(m, "tokens_after")?,
                messages_replaced: req(m, "messages_replaced")?,
                messages_kept: req(m, "messages_kept")?,
                summary: req(m, "summary")?,
                replaced: def(m, "replaced")?,
            },
            "HookInvoked" => Self::HookInvoked {
                hook_event: req(m, "hook_event")?,
                hook_name: req(m, "hook_name")?,
                tool_name: opt(m, "tool_name")?,
                decision: req(m, "decision")?,
                detail: opt(m, "detail")?,
            },
            "ApprovalRequested" => Self::ApprovalRequested {
                approval: req(m, "approval")?,
                tool_use_id: req(m, "tool_use_id")?,
                tool_name: req(m, "tool_name")?,
                tool_input: req(m, "tool_input")?,
                question: req(m, "question")?,
            },
            "ApprovalResolved" => Self::ApprovalResolved {
                approval: req(m, "approval")?,
                decision: req(m, "decision")?,
                text: opt(m, "text")?,
                by: req(m, "by")?,
            },
            "Text" => Self::Text { text: req(m, "text")? },
            "Thinking" => Self::Thinking { thinking: req(m, "thinking")?, signature: opt(m, "signature")? },
            "ToolUse" => Self::ToolUse {
                tool_name: req(m, "tool_name")?,
                tool_input: req(m, "tool_input")?,
                tool_use_id: req(m, "tool_use_id")?,
            },
            "ToolResult" => Self::ToolResult {
                tool_use_id: req(m, "tool_use_id")?,
                tool_name: req(m, "tool_name")?,
                content: req(m, "content")?,
                is_error: req(m, "is_error")?,
            },
            "ToolRefused" => Self::ToolRefused {
                tool_name: req(m, "tool_name")?,
                tool_use_id: req(m, "tool_use_id")?,
                reason: req(m, "reason")?,
            },
            "Result" => Self::Result {
                is_error: req(m, "is_error")?,
                stop_reason: req(m, "stop_reason")?,
                num_turns: req(m, "num_turns")?,
                duration_ms: req(m, "duration_ms")?,
                usage: req(m, "usage")?,
                cost_usd: req(m, "cost_usd")?,
                result: opt(m, "result")?,
            },
            "ModelError" => Self::ModelError {
                model: req(m, "model")?,
                message: req(m, "message")?,
                retryable: req(m, "retryable")?,
            },
            "ModelRetry" => Self::ModelRetry {
                model: req(m, "model")?,
                attempt: req(m, "attempt")?,
                wait_ms: req(m, "wait_ms")?,
                error: req(m, "error")?,
            },
            "FileTracking" => Self::FileTracking {
                text_seq: opt(m, "text_seq")?,
                file_changes: req(m, "file_changes")?,
                read_files: req(m, "read_files")?,
            },
            "SummaryUpdated" => Self::SummaryUpdated { target_seq: req(m, "target_seq")?, summary: req(m, "summary")? },
            "SystemLog" => {
                Self::SystemLog { level: req(m, "level")?, message: req(m, "message")?, metadata: def(m, "metadata")? }
            }
            "ChatMessage" => Self::ChatMessage { message: req(m, "message")? },
            "WorkflowUpdated" => Self::WorkflowUpdated { workflow: req(m, "workflow")? },
            "StepStart" => Self::StepStart {
                step_name: req(m, "step_name")?,
                prompt: req(m, "prompt")?,
                model: req(m, "model")?,
                attempt: req(m, "attempt")?,
            },
            "StepEnd" => Self::StepEnd {
                step_name: req(m, "step_name")?,
                status: req(m, "status")?,
                duration_ms: req(m, "duration_ms")?,
                payload: def(m, "payload")?,
            },
            "PlanUpdated" => Self::PlanUpdated { plan: req(m, "plan")? },
            "GraphUpdated" => Self::GraphUpdated { graph: req(m, "graph")? },
            "TaskUpdated" => Self::TaskUpdated { task: req(m, "task")? },
            "Undecodable" => Self::Undecodable { stored_type: req(m, "stored_type")?, error: req(m, "error")? },
            _ if Self::KINDS.contains(&kind.as_str()) => {
                // A type listed in KINDS must be read above; the wire tests read every one back.
                return Err(Error::custom(format_args!("events of type `{kind}` cannot be read by this build")));
            }
            _ => Self::Unknown(UnknownEvent::new(kind, std::mem::take(m))),
        })
    }

    /// The event from a JSON object's fields, its `type` among them.
    fn from_object(m: Fields) -> Result<Self, Error> {
        let kind = match m.get(TYPE_TAG) {
            Some(Value::String(k)) => k.clone(),
            Some(_) => return Err(Error::custom("an event's `type` must be a string")),
            None => return Err(Error::missing_field(TYPE_TAG)),
        };
        Self::from_fields(kind, m)
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let Value::Object(fields) = Value::deserialize(d)? else {
            return Err(D::Error::custom("an event must be a JSON object"));
        };
        Self::from_object(fields).map_err(D::Error::custom)
    }
}

impl<'de> Deserialize<'de> for EventRecord {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let Value::Object(mut m) = Value::deserialize(d)? else {
            return Err(D::Error::custom("an event record must be a JSON object"));
        };
        let read = |m: &mut Fields| -> Result<Self, Error> {
            let seq = req(m, "seq")?;
            let timestamp = req(m, "timestamp")?;
            let keys = EventKeys {
                agent_id: opt(m, "agent_id")?,
                orchestrator_id: opt(m, "orchestrator_id")?,
                workflow_id: opt(m, "workflow_id")?,
                step: opt(m, "step")?,
                task_slug: opt(m, "task_slug")?,
            };
            // The event gets the fields the record's own do not take.
            let event = Event::from_object(std::mem::take(m))?;
            Ok(Self { seq, timestamp, keys, event })
        };
        read(&mut m).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optional_and_default_fields_may_be_missing_and_others_are_named_when_missing_or_bad() {
        let e: Event = serde_json::from_str(r#"{"type":"SubagentStop","subagent_id":"s","extra":1}"#).unwrap();
        assert_eq!(e, Event::SubagentStop { subagent_id: "s".into(), tool_use_id: None, reason: None, cost_usd: 0.0 });
        let e: Event = serde_json::from_str(r#"{"type":"Thinking","thinking":"t","signature":null}"#).unwrap();
        assert_eq!(e, Event::Thinking { thinking: "t".into(), signature: None });
        let err = serde_json::from_str::<Event>(r#"{"type":"ToolUse","tool_name":"Bash","tool_use_id":"1"}"#);
        assert!(err.unwrap_err().to_string().contains("missing field `tool_input`"));
        let err = serde_json::from_str::<Event>(r#"{"type":"Text","text":7}"#).unwrap_err().to_string();
        assert!(err.contains("field `text`") && err.contains("invalid type"), "{err}");
        let err = serde_json::from_str::<Event>(r#"{"type":3}"#).unwrap_err().to_string();
        assert!(err.contains("`type` must be a string"), "{err}");
        let err = serde_json::from_str::<Event>("[1]").unwrap_err().to_string();
        assert!(err.contains("must be a JSON object"), "{err}");
    }

    #[test]
    fn a_record_takes_its_keys_and_gives_the_event_the_rest() {
        let r: EventRecord = serde_json::from_str(
            r#"{"seq":4,"timestamp":"2026-01-01T00:00:00Z","step":"build","agent_id":null,"type":"New","x":[1]}"#,
        )
        .unwrap();
        assert_eq!((r.seq, r.keys.step.as_deref(), r.keys.agent_id), (4, Some("build"), None));
        let Event::Unknown(u) = &r.event else { panic!("{:?}", r.event) };
        assert_eq!(u.fields().keys().collect::<Vec<_>>(), ["x"]);
        let err =
            serde_json::from_str::<EventRecord>(r#"{"timestamp":"2026-01-01T00:00:00Z","type":"Text","text":"t"}"#);
        assert!(err.unwrap_err().to_string().contains("missing field `seq`"));
    }
}
