//! An agent's status report is of one moment: a run that starts between its reads (the agent read
//! idle, then its prompts with the new run's) does not make it report an idle agent with the new run's
//! entries.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/hooked.rs"]
mod hooked;

use std::sync::{Arc, Mutex};

use hooked::Hooked;
use orch_core::executor::AgentRunner;
use orch_core::model::scripted::ScriptedModel;
use orch_core::orchestrator::{CreateAgent, ManagerConfig, Orchestrator, OrchestratorConfig};
use orch_core::store::{Batch, Change, Store};
use orch_core::wire::{AgentStatus, Event, EventKeys, Id, Prompt, PromptAuthor, new_id, now};

const OK: &str = r#"{"steps": [{"repeat": true, "reply": [{"type": "text", "text": "ok"}]}]}"#;

/// The start of a run `slug` of agent `id`, as another process would commit it: its prompt row, the
/// agent executing, its status change and its prompt in the log.
fn run_start(id: Id, slug: &str) -> Batch {
    let keys = EventKeys { agent_id: Some(id), task_slug: Some(slug.into()), ..EventKeys::default() };
    let prompt = Prompt {
        id: new_id(),
        agent_id: Some(id),
        task_slug: Some(slug.into()),
        author: PromptAuthor::Engineer,
        prompt_text: "second".into(),
        summary: None,
        session_id: None,
        created_at: now(),
    };
    Batch::new()
        .change(Change::InsertPrompt(Box::new(prompt)))
        .change(Change::SetAgentStatus { id, status: AgentStatus::Executing })
        .event(
            keys.clone(),
            Event::AgentStatusChanged { old_status: AgentStatus::Idle, new_status: AgentStatus::Executing },
        )
        .event(keys, Event::UserPromptSubmit { prompt: "second".into(), prompt_length: 6 })
}

#[tokio::test]
async fn a_run_starting_between_the_reads_is_reported_with_its_agent_executing() {
    let dir = tempfile::tempdir().unwrap();
    // Armed by the test: the run start committed when the agent's prompts are next read.
    let cut_in: Arc<Mutex<Option<Batch>>> = Arc::default();
    let armed = cut_in.clone();
    let store = Arc::new(
        Hooked::new(Box::new(|_| Vec::new()))
            .on_prompts(Box::new(move |_| armed.lock().unwrap().take().into_iter().collect())),
    );
    let model = Arc::new(ScriptedModel::from_json_str(OK).unwrap());
    let agents = AgentRunner::builder(store.clone(), model.clone()).build();
    let orch = Orchestrator::builder(agents, model)
        .config(OrchestratorConfig::new(dir.path(), "scripted"))
        .manager_config(ManagerConfig::new(dir.path(), "scripted"))
        .open()
        .await
        .unwrap();
    let m = orch.manager();
    let alice = m
        .create_agent(CreateAgent { name: "alice".into(), system_prompt: Some("p".into()), ..Default::default() })
        .await
        .unwrap();
    let first = m.command_agent("alice", "first").await.unwrap();
    first.wait().await;
    let before = m.status("alice", 20, 0).await.unwrap();
    assert_eq!(before.agent.status, AgentStatus::Idle);
    assert_eq!(before.task_slug.as_deref(), Some(first.task_slug.as_str()));
    assert!(before.entries.iter().any(|e| matches!(e.record.event, Event::Result { .. })), "the first run's answer");

    *cut_in.lock().unwrap() = Some(run_start(alice.id, "second-run"));
    let report = m.status("alice", 20, 0).await.unwrap();
    assert!(cut_in.lock().unwrap().is_none(), "the run started between the reads");
    assert_eq!(report.task_slug.as_deref(), Some("second-run"), "the latest run");
    assert_eq!(report.agent.status, AgentStatus::Executing, "the agent as of the entries read");
    let prompts: Vec<&str> = report
        .entries
        .iter()
        .filter_map(|e| match &e.record.event {
            Event::UserPromptSubmit { prompt, .. } => Some(prompt.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(prompts, ["second"]);
    assert_eq!(store.inner.get_agent(alice.id).await.unwrap().unwrap().status, AgentStatus::Executing);
}
