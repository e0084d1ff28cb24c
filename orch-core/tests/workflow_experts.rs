//! The agent experts with the scripted model: `expert_self_improve` rewrites the domain's
//! `expertise.yaml` (its history in the log) within its line limit; `expert_question` answers without
//! changing the tree; `expert_plan_build_improve` plans, builds, then improves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod workflow_support;

use std::path::Path;
use std::sync::{Arc, Mutex};

use orch_core::executor::{AgentRunner, Supervisor};
use orch_core::model::ModelRequest;
use orch_core::model::scripted::{ScriptReply, ScriptedModel};
use orch_core::store::{EventQuery, MemoryStore, Store};
use orch_core::tool::ToolRegistry;
use orch_core::wire::{Event, EventRecord, StepStatus, WorkflowStatus};
use orch_core::workflow::WorkflowEngine;
use serde_json::{Value, json};
use workflow_support::{after_tool, git, last_text};

const EXPERTISE: &str = ".claude/commands/experts/billing/expertise.yaml";
const OLD: &str = "overview:\n  description: billing\n  key_files: []\n";
const NEW: &str =
    "overview:\n  description: billing and refunds\n  key_files:\n    - src/refund.rs\ncore_implementation: {}\n";

/// A repository whose billing expert has a 3-line expertise file, all committed.
fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    git(d, &["init", "-q"]);
    std::fs::create_dir_all(d.join(".claude/commands/experts/billing")).unwrap();
    std::fs::write(d.join(EXPERTISE), OLD).unwrap();
    std::fs::create_dir_all(d.join("src")).unwrap();
    std::fs::write(d.join("src/refund.rs"), "pub fn refund() {}\n").unwrap();
    git(d, &["add", "-A"]);
    git(d, &["commit", "-q", "-m", "first"]);
    dir
}

/// The expert team: a question agent that tries to write (and may not), then reads and answers; a
/// self-improve agent that rewrites the expertise file; plan and build agents as in plan_build.
fn experts(prompts: Arc<Mutex<Vec<(String, String)>>>) -> ScriptedModel {
    ScriptedModel::from_fn(move |req: &ModelRequest| {
        let last = last_text(req);
        if !after_tool(req) {
            prompts.lock().unwrap().push((req.agent_name.clone(), last.clone()));
        }
        let role = req.agent_name.rsplit_once('-').map_or("", |(r, _)| r).to_string();
        let mut tools: Vec<String> = req.tools.iter().map(|t| t.name.clone()).collect();
        tools.sort();
        Ok(match role.as_str() {
            _ if last.contains("ONLY") && last.contains("path") => ScriptReply::text("./specs/refunds.md"),
            "question" if !after_tool(req) => ScriptReply::tool_use(
                "w",
                "Write",
                json!({"file_path": EXPERTISE, "content": "overwritten by a question\n"}),
            ),
            "question" => ScriptReply::text(format!("Refunds live in src/refund.rs. (tools: {})", tools.join(","))),
            "self_improve" if !after_tool(req) => {
                ScriptReply::tool_use("w", "Write", json!({"file_path": EXPERTISE, "content": NEW}))
            }
            "self_improve" => ScriptReply::text("Expertise updated."),
            "plan" if !after_tool(req) => {
                ScriptReply::tool_use("w", "Write", json!({"file_path": "specs/refunds.md", "content": "# Plan\n"}))
            }
            "build" if !after_tool(req) => ScriptReply::tool_use(
                "w",
                "Write",
                json!({"file_path": "src/refund.rs", "content": "pub fn refund() { /* partial */ }\n"}),
            ),
            _ => ScriptReply::text("Done."),
        })
    })
}

struct Setup {
    store: Arc<MemoryStore>,
    engine: WorkflowEngine,
    prompts: Arc<Mutex<Vec<(String, String)>>>,
}

fn setup(dir: &Path) -> Setup {
    let prompts = Arc::new(Mutex::new(Vec::new()));
    let store = Arc::new(MemoryStore::new());
    let runner = AgentRunner::builder(store.clone(), Arc::new(experts(prompts.clone())))
        .tools(ToolRegistry::with_builtins())
        .build();
    let engine = WorkflowEngine::new(Supervisor::new(runner, Vec::new()), dir, "scripted");
    Setup { store, engine, prompts }
}

async fn events(store: &MemoryStore, id: orch_core::wire::Id) -> Vec<EventRecord> {
    store.read_events(&EventQuery { workflow_id: Some(id), ..EventQuery::default() }).await.unwrap()
}

fn step_end(evs: &[EventRecord], step: &str) -> (StepStatus, Value) {
    evs.iter()
        .rev()
        .find_map(|r| match &r.event {
            Event::StepEnd { step_name, status, payload, .. } if step_name == step => Some((*status, payload.clone())),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no StepEnd for {step}"))
}

fn logs(evs: &[EventRecord]) -> Vec<String> {
    evs.iter()
        .filter_map(|r| match &r.event {
            Event::SystemLog { message, .. } => Some(message.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn self_improve_rewrites_the_expertise_file_and_logs_its_history() {
    let dir = repo();
    let d = dir.path();
    let s = setup(d);
    let done = s.engine.start("expert_self_improve", json!({"domain": "billing"}), None, None).await.unwrap();
    assert_eq!(done.status, WorkflowStatus::Completed, "{:?}", done.error_message);
    assert_eq!(std::fs::read_to_string(d.join(EXPERTISE)).unwrap(), NEW, "expertise.yaml is rewritten");
    // The shipped default command ran, for this domain (no .claude/commands/experts/billing/self-improve.md).
    let prompts = s.prompts.lock().unwrap().clone();
    let (_, prompt) = prompts.iter().find(|(a, _)| a.starts_with("self_improve-")).unwrap();
    assert!(prompt.contains("experts/billing/expertise.yaml") && !prompt.contains("$DOMAIN"), "{prompt}");
    assert!(!prompt.starts_with("/experts"), "expanded: {prompt}");
    // The file's history is in the log: before and after in the StepEnd payload, and a log line.
    let evs = events(&s.store, done.id).await;
    let (status, payload) = step_end(&evs, "self_improve");
    assert_eq!(status, StepStatus::Success);
    let file = &payload["file"];
    assert_eq!(file["path"], EXPERTISE);
    assert_eq!((file["before"].as_str(), file["after"].as_str()), (Some(OLD), Some(NEW)));
    assert_eq!((file["lines_before"].as_u64(), file["lines_after"].as_u64()), (Some(3), Some(5)));
    assert_eq!(file["max_lines"], 1000);
    let logs = logs(&evs);
    assert!(logs.iter().any(|l| l == &format!("{EXPERTISE} rewritten: 3 lines → 5 lines")), "{logs:?}");
}

#[tokio::test]
async fn self_improve_over_the_line_limit_fails_clearly() {
    let dir = repo();
    let s = setup(dir.path());
    let input = json!({"domain": "billing", "max_lines": 4});
    let done = s.engine.start("expert_self_improve", input, None, None).await.unwrap();
    assert_eq!(done.status, WorkflowStatus::Failed);
    assert_eq!(done.error_step.as_deref(), Some("self_improve"));
    let message = done.error_message.unwrap_or_default();
    assert!(message.contains(&format!("{EXPERTISE} has 5 lines, over its limit of 4")), "{message}");
    let prompts = s.prompts.lock().unwrap().clone();
    assert!(prompts.iter().any(|(_, p)| p.contains("line limit: 4")), "the command is told the limit");
}

#[tokio::test]
async fn question_answers_without_changing_the_tree() {
    let dir = repo();
    let d = dir.path();
    // The repository's own question command wins over the shipped one.
    std::fs::write(
        d.join(".claude/commands/experts/billing/question.md"),
        "---\ndescription: ask\n---\nBILLING EXPERT, answer: $1\n",
    )
    .unwrap();
    git(d, &["add", "-A"]);
    git(d, &["commit", "-q", "-m", "question command"]);
    let s = setup(d);
    let input = json!({"domain": "billing", "prompt": "Where are \"refunds\" made?"});
    let done = s.engine.start("expert_question", input, None, None).await.unwrap();
    assert_eq!(done.status, WorkflowStatus::Completed, "{:?}", done.error_message);
    let answer = done.output_data["answer"].as_str().unwrap();
    assert!(answer.starts_with("Refunds live in src/refund.rs."), "{answer}");
    assert!(answer.ends_with("(tools: Glob,Grep,Read)"), "only read tools on offer: {answer}");
    assert_eq!(git(d, &["status", "--porcelain"]), "", "the tree is unchanged");
    assert_eq!(std::fs::read_to_string(d.join(EXPERTISE)).unwrap(), OLD);
    let prompts = s.prompts.lock().unwrap().clone();
    let (_, prompt) = prompts.iter().find(|(a, _)| a.starts_with("question-")).unwrap();
    assert_eq!(prompt.trim(), r#"BILLING EXPERT, answer: Where are "refunds" made?"#);
    let (_, payload) = step_end(&events(&s.store, done.id).await, "question");
    assert_eq!(payload["file"]["changed"], false);
}

#[tokio::test]
async fn plan_build_improve_plans_builds_then_improves() {
    let dir = repo();
    let d = dir.path();
    let s = setup(d);
    let input = json!({"domain": "billing", "prompt": "Add partial refunds"});
    let done = s.engine.start("expert_plan_build_improve", input, None, None).await.unwrap();
    assert_eq!(done.status, WorkflowStatus::Completed, "{:?}", done.error_message);
    assert!(d.join("specs/refunds.md").exists());
    assert!(std::fs::read_to_string(d.join("src/refund.rs")).unwrap().contains("partial"));
    assert_eq!(std::fs::read_to_string(d.join(EXPERTISE)).unwrap(), NEW);
    let prompts = s.prompts.lock().unwrap().clone();
    let plan = &prompts.iter().find(|(a, _)| a.starts_with("plan-")).unwrap().1;
    assert!(plan.contains("experts/billing/expertise.yaml") && plan.contains("Add partial refunds"), "{plan}");
    let improve = &prompts.iter().find(|(a, _)| a.starts_with("self_improve-")).unwrap().1;
    assert!(improve.contains("check git diff: `true`"), "{improve}");
}
