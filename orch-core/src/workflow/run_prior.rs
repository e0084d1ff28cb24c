//! What a workflow run did before it was resumed: its steps' starts and ends, read from its events.

use serde_json::Value;

use super::WorkflowError;
use crate::store::{EventQuery, Store};
use crate::wire::{Event, Id, StepStatus};

/// What a run did before it was resumed, read from its events.
#[derive(Debug, Clone, Default)]
pub struct PriorSteps {
    /// Steps that ended (success or skipped), with their `StepEnd` payloads.
    pub ended: std::collections::BTreeMap<String, (StepStatus, Value)>,
    /// The step that started and never ended: its name, agent and attempt.
    pub open: Option<(String, Id, u32)>,
    /// The highest attempt each step started (a step run again starts after it, with a new agent).
    pub attempts: std::collections::BTreeMap<String, u32>,
}

impl PriorSteps {
    pub(super) async fn read(store: &dyn Store, id: Id) -> Result<Self, WorkflowError> {
        let q = EventQuery {
            workflow_id: Some(id),
            types: vec!["StepStart".into(), "StepEnd".into()],
            ..EventQuery::default()
        };
        let mut prior = PriorSteps::default();
        for r in store.read_events(&q).await? {
            match r.event {
                Event::StepStart { step_name: step, attempt, .. } => {
                    let seen = prior.attempts.entry(step.clone()).or_insert(0);
                    *seen = (*seen).max(attempt);
                    if let Some(agent) = r.keys.agent_id {
                        prior.open = Some((step, agent, attempt));
                    }
                }
                Event::StepEnd { step_name: step, status, payload, .. } => {
                    if prior.open.as_ref().is_some_and(|(s, _, _)| *s == step) {
                        prior.open = None;
                    }
                    if matches!(status, StepStatus::Success | StepStatus::Skipped) {
                        prior.ended.insert(step, (status, payload));
                    }
                }
                _ => {}
            }
        }
        Ok(prior)
    }
}
