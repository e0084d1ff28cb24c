//! Workflows end to end with the scripted model: the built-in ADWs (plan → build → review → fix) in a
//! git repository, the shipped default commands, and a user workflow file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod workflow_support;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use orch_core::executor::{AgentRunner, Supervisor};
use orch_core::model::ModelRequest;
use orch_core::model::scripted::{ScriptReply, ScriptedModel};
use orch_core::store::{AgentFilter, EventQuery, MemoryStore, Store};
use orch_core::tool::ToolRegistry;
use orch_core::wire::{AgentStatus, Event, EventRecord, StepStatus, WorkflowStatus};
use orch_core::workflow::WorkflowEngine;
use serde_json::json;
use workflow_support::{after_tool, last_text};

/// A git repository in a temporary directory.
fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let ok = std::process::Command::new("git").arg("init").arg("-q").arg(dir.path()).status().unwrap().success();
    assert!(ok, "git init");
    dir
}

/// The scripted team: each step's agent writes its file, then answers; the plan agent answers the
/// plan-path question with the path in backticks; the reviewer's verdict is `verdict`.
fn team(dir: PathBuf, verdict: &'static str, prompts: Arc<Mutex<Vec<(String, String)>>>) -> ScriptedModel {
    ScriptedModel::from_fn(move |req: &ModelRequest| {
        let role = req.agent_name.split('-').next().unwrap_or("").to_string();
        let last = last_text(req);
        if !after_tool(req) {
            prompts.lock().unwrap().push((req.agent_name.clone(), last.clone()));
        }
        let plan = dir.join("specs/parser.md");
        Ok(match role.as_str() {
            _ if last.contains("ONLY") && last.contains("path") => ScriptReply::text(format!("`{}`", plan.display())),
            "plan" if !after_tool(req) => ScriptReply::tool_use(
                "w",
                "Write",
                json!({"file_path": "specs/parser.md", "content": "# Plan\nwrite a parser\n"}),
            ),
            "plan" => ScriptReply::text(format!("The plan is at {}", plan.display())),
            "build" if !after_tool(req) => {
                ScriptReply::tool_use("w", "Write", json!({"file_path": "src/parser.rs", "content": "fn parse() {}\n"}))
            }
            "build" => ScriptReply::text("Built src/parser.rs"),
            "review" if !after_tool(req) => ScriptReply::tool_use(
                "w",
                "Write",
                json!({"file_path": "app_review/review_1.md", "content": format!("VERDICT: {verdict}\n")}),
            ),
            "review" => ScriptReply::text(format!("Reviewed. VERDICT: {verdict}")),
            "fix" if !after_tool(req) => ScriptReply::tool_use(
                "w",
                "Write",
                json!({"file_path": "src/parser.rs", "content": "fn parse() { /* fixed */ }\n"}),
            ),
            "fix" => ScriptReply::text("Fixed the blockers"),
            _ => ScriptReply::text(format!("unexpected agent {}", req.agent_name)),
        })
    })
}

struct Setup {
    store: Arc<MemoryStore>,
    engine: WorkflowEngine,
}

fn setup(dir: &Path, model: ScriptedModel) -> Setup {
    let store = Arc::new(MemoryStore::new());
    let runner = AgentRunner::builder(store.clone(), Arc::new(model)).tools(ToolRegistry::with_builtins()).build();
    let engine = WorkflowEngine::new(Supervisor::new(runner, Vec::new()), dir, "scripted");
    Setup { store, engine }
}

async fn events(store: &MemoryStore) -> Vec<EventRecord> {
    store.read_events(&EventQuery::default()).await.unwrap()
}

fn step_ends(evs: &[EventRecord]) -> Vec<(String, StepStatus)> {
    evs.iter()
        .filter_map(|r| match &r.event {
            Event::StepEnd { step_name: step, status, .. } => Some((step.clone(), *status)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn plan_build_review_fix_runs_fix_on_a_fail_verdict() {
    let dir = repo();
    let prompts = Arc::new(Mutex::new(Vec::new()));
    let s = setup(dir.path(), team(dir.path().to_path_buf(), "FAIL", prompts.clone()));
    let done =
        s.engine.start("plan_build_review_fix", json!({"prompt": "Add a \"parser\""}), None, None).await.unwrap();
    assert_eq!(done.status, WorkflowStatus::Completed, "{:?}", done.error_message);
    assert_eq!((done.completed_steps, done.total_steps), (4, 4));
    let plan = dir.path().join("specs/parser.md");
    assert!(plan.exists() && dir.path().join("app_review/review_1.md").exists());
    assert_eq!(std::fs::read_to_string(dir.path().join("src/parser.rs")).unwrap(), "fn parse() { /* fixed */ }\n");
    assert_eq!(
        done.output_data["plan_path"],
        json!(plan.display().to_string()),
        "the seed's plan-path rule strips the backticks"
    );
    assert_eq!(done.output_data["verdict"], "FAIL");
    assert_eq!(done.output_data["fix_executed"], true);
    let evs = events(&s.store).await;
    let ends = step_ends(&evs);
    let want: Vec<(String, StepStatus)> =
        ["plan", "build", "review", "fix"].iter().map(|s| (s.to_string(), StepStatus::Success)).collect();
    assert_eq!(ends, want);
    // Each step ran its own agent, named after the step and the run, and left it idle.
    let agents = s.store.list_agents(&AgentFilter::default()).await.unwrap();
    for step in ["plan", "build", "review", "fix"] {
        let a = agents.iter().find(|a| a.workflow_step.as_deref() == Some(step)).expect(step);
        assert!(a.name.starts_with(&format!("{step}-")) && a.name.len() == step.len() + 9, "{}", a.name);
        assert_eq!(a.workflow_id, Some(done.id));
        assert_eq!(a.status, AgentStatus::Idle);
    }
    // The review and fix prompts carry the quoted task and the paths, as the seed's commands get them.
    let prompts = prompts.lock().unwrap().clone();
    let review = prompts.iter().find(|(a, _)| a.starts_with("review-")).unwrap();
    assert!(
        review.1.contains(r#""Add a \"parser\"""#) && review.1.contains(&plan.display().to_string()),
        "{}",
        review.1
    );
    let fix = prompts.iter().find(|(a, _)| a.starts_with("fix-")).unwrap();
    assert!(fix.1.contains("app_review/review_1.md"), "{}", fix.1);
    // Every change of the run is an event with the whole record.
    let updates: Vec<&Event> =
        evs.iter().map(|r| &r.event).filter(|e| matches!(e, Event::WorkflowUpdated { .. })).collect();
    let Some(Event::WorkflowUpdated { workflow }) = updates.last() else { panic!() };
    assert_eq!(**workflow, s.store.get_workflow(done.id).await.unwrap().unwrap());
}

#[tokio::test]
async fn a_pass_verdict_skips_fix() {
    let dir = repo();
    let s = setup(dir.path(), team(dir.path().to_path_buf(), "PASS", Arc::default()));
    let done = s.engine.start("plan_build_review_fix", json!({"prompt": "Add a parser"}), None, None).await.unwrap();
    assert_eq!(done.status, WorkflowStatus::Completed);
    assert_eq!(done.output_data["verdict"], "PASS");
    assert_eq!(done.output_data["fix_executed"], false);
    let ends = step_ends(&events(&s.store).await);
    assert_eq!(ends.last(), Some(&("fix".to_string(), StepStatus::Skipped)));
    let agents = s.store.list_agents(&AgentFilter::default()).await.unwrap();
    assert!(agents.iter().all(|a| a.workflow_step.as_deref() != Some("fix")), "no fix agent");
}

#[tokio::test]
async fn a_fresh_repository_runs_plan_build_on_the_shipped_commands() {
    let dir = repo();
    assert!(!dir.path().join(".claude").exists());
    let prompts = Arc::new(Mutex::new(Vec::new()));
    let s = setup(dir.path(), team(dir.path().to_path_buf(), "PASS", prompts.clone()));
    let done = s.engine.start("plan_build", json!({"prompt": "Add a parser"}), None, None).await.unwrap();
    assert_eq!(done.status, WorkflowStatus::Completed, "{:?}", done.error_message);
    let prompts = prompts.lock().unwrap().clone();
    let plan = prompts.iter().find(|(a, _)| a.starts_with("plan-")).unwrap();
    assert!(
        !plan.1.starts_with("/plan") && plan.1.contains("Add a parser"),
        "the default /plan was expanded: {}",
        plan.1
    );
}

#[tokio::test]
async fn a_failing_step_fails_the_run_naming_it() {
    let dir = repo();
    let model = ScriptedModel::from_fn(|req: &ModelRequest| {
        if req.agent_name.starts_with("build-") {
            return Err(orch_core::model::ModelError::Other { message: "the build model is down".into() });
        }
        Ok(if last_text(req).contains("ONLY") {
            ScriptReply::text("./specs/x.md")
        } else {
            ScriptReply::text("planned")
        })
    });
    let s = setup(dir.path(), model);
    let done = s.engine.start("plan_build", json!({"prompt": "x"}), None, None).await.unwrap();
    assert_eq!(done.status, WorkflowStatus::Failed);
    assert_eq!(done.error_step.as_deref(), Some("build"));
    assert!(
        done.error_message.as_deref().unwrap_or("").contains("the build model is down"),
        "{:?}",
        done.error_message
    );
    assert_eq!(done.completed_steps, 1);
    let agents = s.store.list_agents(&AgentFilter::default()).await.unwrap();
    let build = agents.iter().find(|a| a.workflow_step.as_deref() == Some("build")).unwrap();
    assert_eq!(build.status, AgentStatus::Blocked, "a failed step's agent is blocked");
    // A run that has ended cannot be run again.
    assert!(s.engine.run(done.id, None).await.is_err());
}

#[tokio::test]
async fn a_user_workflow_runs_its_conditions_retries_and_extractions_and_a_broken_one_is_listed() {
    let dir = repo();
    let wf = dir.path().join(".orch/workflows");
    std::fs::create_dir_all(&wf).unwrap();
    std::fs::write(
        wf.join("triage.toml"),
        r#"description = "Triage a bug"
inputs = ["prompt"]

[[steps]]
name = "reproduce"
prompt = "Reproduce: {{prompt}}"
retries = 1
[[steps.outputs]]
name = "ticket"
required = true
extract = [{ regex = 'TICKET-(\d+)' }]
[[steps.outputs]]
name = "severity"
extract = [{ keyword = ["CRITICAL", "MINOR"] }]
[[steps.outputs]]
name = "log"
extract = [{ newest_file = "logs/*.log" }]
[[steps.outputs]]
name = "owner"
extract = [{ ask = "Who owns this? Reply with ONLY the name." }]
[[steps.outputs]]
name = "text"
extract = [{ result = true }]

[[steps]]
name = "escalate"
prompt = "Escalate {{steps.reproduce.outputs.ticket}} to {{steps.reproduce.outputs.owner}}"
when = 'steps.reproduce.outputs.severity == "CRITICAL"'

[[steps]]
name = "close"
prompt = "Close it"
when = 'steps.reproduce.outputs.severity == "MINOR"'
"#,
    )
    .unwrap();
    std::fs::write(wf.join("broken.toml"), "description = \"x\"\n[[steps]]\nname = \"a\"\nprompt = \"p\"\nbogus = 1\n")
        .unwrap();
    let attempts = Arc::new(Mutex::new(0));
    let seen = attempts.clone();
    let dir_path = dir.path().to_path_buf();
    let model = ScriptedModel::from_fn(move |req: &ModelRequest| {
        let last = last_text(req);
        Ok(if req.agent_name.starts_with("reproduce-") {
            if last.starts_with("Who owns") {
                ScriptReply::text("alice")
            } else if after_tool(req) {
                ScriptReply::text("Reproduced as TICKET-42, CRITICAL crash")
            } else {
                let mut n = seen.lock().unwrap();
                *n += 1;
                if *n == 1 {
                    // The first attempt fails: its model errors.
                    return Err(orch_core::model::ModelError::Other { message: "flaky".into() });
                }
                std::fs::create_dir_all(dir_path.join("logs")).unwrap();
                ScriptReply::tool_use("w", "Write", json!({"file_path": "logs/crash.log", "content": "boom\n"}))
            }
        } else {
            ScriptReply::text(format!("did: {last}"))
        })
    });
    let s = setup(dir.path(), model);
    let types = s.engine.types();
    assert!(types.get("triage").is_some());
    assert!(types.get("plan_build_review_fix").is_some(), "the built-ins stay listed");
    let broken = types.broken.iter().map(|b| b.to_string()).collect::<Vec<_>>().join("\n");
    assert!(broken.contains("broken.toml") && broken.contains(":5") && broken.contains("bogus"), "{broken}");

    let done = s.engine.start("triage", json!({"prompt": "the app crashes"}), None, None).await.unwrap();
    assert_eq!(done.status, WorkflowStatus::Completed, "{:?}", done.error_message);
    assert_eq!(*attempts.lock().unwrap(), 2, "one retry");
    let out = &done.output_data;
    assert_eq!(out["ticket"], "42");
    assert_eq!(out["severity"], "CRITICAL");
    assert_eq!(out["owner"], "alice");
    assert_eq!(out["text"], "Reproduced as TICKET-42, CRITICAL crash");
    assert!(out["log"].as_str().unwrap().ends_with("logs/crash.log"), "{}", out["log"]);
    let ends = step_ends(&events(&s.store).await);
    assert_eq!(
        ends,
        vec![
            ("reproduce".to_string(), StepStatus::Failed),
            ("reproduce".to_string(), StepStatus::Success),
            ("escalate".to_string(), StepStatus::Success),
            ("close".to_string(), StepStatus::Skipped),
        ]
    );
    let evs = events(&s.store).await;
    let escalate = evs.iter().find_map(|r| match &r.event {
        Event::StepStart { step_name, prompt, .. } if step_name == "escalate" => Some(prompt.clone()),
        _ => None,
    });
    assert_eq!(escalate.as_deref(), Some("Escalate 42 to alice"));
    let unknown = s.engine.start("nope", json!({"prompt": "x"}), None, None).await.unwrap_err().to_string();
    assert!(unknown.contains("unknown workflow type 'nope'") && unknown.contains("triage"), "{unknown}");
}

#[tokio::test]
async fn each_steps_file_writes_are_recorded_under_that_step() {
    let dir = repo();
    let store = Arc::new(MemoryStore::new());
    let model = team(dir.path().to_path_buf(), "PASS", Arc::default());
    let runner = AgentRunner::builder(store.clone(), Arc::new(model)).tools(ToolRegistry::with_builtins()).build();
    let tracking: Arc<dyn orch_core::executor::RunObserver> =
        Arc::new(orch_core::orchestrator::FileTracking::default());
    let engine = WorkflowEngine::new(Supervisor::new(runner, vec![tracking]), dir.path(), "scripted");
    let done = engine.start("plan_build", json!({"prompt": "Add a parser"}), None, None).await.unwrap();
    assert_eq!(done.status, WorkflowStatus::Completed, "{:?}", done.error_message);

    // Steps run in the foreground; their observers still watch them, as a command's are watched.
    let tracked: Vec<(Option<String>, Vec<String>)> = events(&store)
        .await
        .into_iter()
        .filter_map(|r| match r.event {
            Event::FileTracking { file_changes, .. } => {
                assert_eq!(r.keys.workflow_id, Some(done.id), "{file_changes:?}");
                Some((r.keys.step.clone(), file_changes.into_iter().map(|c| c.path).collect()))
            }
            _ => None,
        })
        .collect();
    assert!(tracked.contains(&(Some("plan".into()), vec!["specs/parser.md".into()])), "{tracked:?}");
    assert!(tracked.contains(&(Some("build".into()), vec!["src/parser.rs".into()])), "{tracked:?}");
}
