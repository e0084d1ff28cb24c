//! The QA pass: completed tasks with criteria that are not commands are reviewed by an agent on the QA
//! model with read-only tools; a pass is recorded on the task, a failure raises a checkpoint, and tasks
//! with nothing to review are not reviewed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use orch_core::executor::{AgentRunner, Supervisor};
use orch_core::graph::{GraphRunner, GraphSettings, Router, TaskGraphs};
use orch_core::model::scripted::{ScriptReply, ScriptedModel};
use orch_core::store::{EventQuery, MemoryStore, Store};
use orch_core::tool::ToolRegistry;
use orch_core::wire::{Complexity, Event, LogLevel, PlannedTask, TaskStatus};

fn planned(key: &str, verification: &[&str]) -> PlannedTask {
    PlannedTask {
        key: key.into(),
        title: format!("build {key}"),
        description: String::new(),
        task_type: "code".into(),
        complexity: Complexity::Medium,
        depends_on: Vec::new(),
        model: None,
        tools: Vec::new(),
        verification: verification.iter().map(|v| v.to_string()).collect(),
        estimated_cost_usd: None,
        estimated_minutes: None,
    }
}

/// A model call: agent, model, the tools offered, the prompt.
type Call = (String, String, Vec<String>, String);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completed_tasks_are_reviewed_against_their_criteria() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let calls: Arc<Mutex<Vec<Call>>> = Arc::default();
    let seen = calls.clone();
    let model = ScriptedModel::from_fn(move |req| {
        let prompt = req.messages.first().and_then(|m| m.last_text()).unwrap_or("").to_string();
        let tools = req.tools.iter().map(|t| t.name.clone()).collect();
        seen.lock().unwrap().push((req.agent_name.clone(), req.model.clone(), tools, prompt.clone()));
        if !req.agent_name.ends_with("-qa") {
            return Ok(ScriptReply::text("built it"));
        }
        Ok(ScriptReply::text(if prompt.contains("build good") {
            "Read the code.\nVERDICT: PASS — errors are handled everywhere"
        } else {
            "VERDICT: FAIL — the parser panics on empty input"
        }))
    });
    let agents = AgentRunner::builder(store.clone(), Arc::new(model)).tools(ToolRegistry::with_builtins()).build();
    let settings = GraphSettings {
        poll: Duration::from_millis(20),
        qa_model: Some("reviewer".into()),
        ..GraphSettings::default()
    };
    let runner =
        GraphRunner::new(Supervisor::new(agents, Vec::new()), std::env::temp_dir(), Router::new(Vec::new()), settings);
    let graphs = TaskGraphs::new(store.clone());
    let tasks = vec![
        planned("good", &["errors are handled", "$ true"]),
        planned("bad", &["empty input is refused"]),
        planned("plain", &["$ true"]),
    ];
    let plan = graphs.create_plan("qa", tasks, Default::default()).await.unwrap();
    graphs.approve(plan.id).await.unwrap();
    let (g, _) = graphs.create_graph(plan.id, None).await.unwrap();
    runner.start(g.id, None).await.unwrap();
    let worker = tokio::spawn(runner.worker(Some(g.id)).run());
    let tasks = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let tasks = store.list_tasks(g.id).await.unwrap();
            if tasks.iter().all(|t| matches!(t.status, TaskStatus::Completed | TaskStatus::Blocked)) {
                return tasks;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("every task completes or waits at a checkpoint");
    worker.abort();

    let by_key = |k: &str| tasks.iter().find(|t| t.key == k).unwrap();
    let good = by_key("good");
    assert_eq!(good.status, TaskStatus::Completed);
    assert!(good.output.as_deref().unwrap().ends_with("[qa] passed: errors are handled everywhere"), "{good:?}");
    let bad = by_key("bad");
    assert_eq!(bad.status, TaskStatus::Blocked);
    assert_eq!(bad.checkpoint.as_deref(), Some("QA failed: the parser panics on empty input"));
    assert_eq!(by_key("plain").status, TaskStatus::Completed, "a task with commands only is not reviewed");

    let calls = calls.lock().unwrap().clone();
    let reviews: Vec<_> = calls.iter().filter(|c| c.0.ends_with("-qa")).collect();
    assert_eq!(reviews.len(), 2, "good and bad are reviewed, plain is not: {reviews:?}");
    for (agent, model, tools, prompt) in &reviews {
        assert_eq!(model, "reviewer", "{agent} runs on the QA model");
        let mut tools = tools.clone();
        tools.sort();
        assert_eq!(tools, vec!["Glob", "Grep", "Read"], "{agent} can only read");
        assert!(prompt.contains("## Verification criteria") && prompt.contains("built it"), "{prompt}");
        assert!(!prompt.contains("$ true"), "commands are not for the reviewer: {prompt}");
    }

    let log = store.read_events(&EventQuery::default()).await.unwrap();
    let qa: Vec<(LogLevel, serde_json::Value)> = log
        .iter()
        .filter_map(|r| match &r.event {
            Event::SystemLog { level, metadata, .. } if metadata["event"] == "qa" => {
                Some((*level, metadata["qa"].clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(qa.len(), 2, "{qa:?}");
    assert!(qa.iter().any(|(l, q)| *l == LogLevel::Info && q["pass"] == true && q["model"] == "reviewer"));
    assert!(qa.iter().any(|(l, q)| *l == LogLevel::Warning && q["pass"] == false));
}
