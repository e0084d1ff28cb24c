//! A person in the loop, on a SQLite file: a PreToolUse hook that asks parks the run durably (the
//! store reopened still lists it), and approving, denying or answering continues it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::{Arc, Mutex};

use orch_core::approval::{ApprovalError, Approvals};
use orch_core::executor::{AgentRunner, RunError, RunOptions, Supervisor};
use orch_core::hook::command::register_settings_hooks;
use orch_core::hook::{FnHook, HookDecision, HookEvent, HookRegistry};
use orch_core::model::ModelRequest;
use orch_core::model::scripted::{ScriptReply, ScriptedModel};
use orch_core::store::{EventQuery, Store};
use orch_core::wire::{AgentStatus, ApprovalDecision, AttentionKind, ContentBlock, EndReason, Event, Id, Role};
use orch_store_sqlite::SqliteStore;
use serde_json::json;

/// Tool results the model was given in its requests, in order.
type Seen = Arc<Mutex<Vec<(String, bool)>>>;

/// Writes hello.txt, then ends its turn quoting the tool result it got.
fn model(seen: Seen) -> Arc<ScriptedModel> {
    Arc::new(ScriptedModel::from_fn(move |req: &ModelRequest| {
        let results: Vec<(String, bool)> = match req.messages.last() {
            Some(m) if m.role == Role::User => m
                .content
                .iter()
                .filter_map(|b| match b {
                    ContentBlock::ToolResult { content, is_error, .. } => Some((content.clone(), *is_error)),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        if results.is_empty() {
            return Ok(ScriptReply::tool_use("w1", "Write", json!({"file_path": "hello.txt", "content": "hi\n"})));
        }
        seen.lock().unwrap().extend(results.clone());
        Ok(ScriptReply::text(format!("done: {}", results[0].0)))
    }))
}

fn ask_before_write() -> HookRegistry {
    let mut hooks = HookRegistry::new();
    hooks
        .register(
            HookEvent::PreToolUse,
            Some("Write"),
            FnHook::new("ask-write", |_| HookDecision::Ask { question: "May I write hello.txt?".into() }),
        )
        .unwrap();
    hooks
}

struct Open {
    store: Arc<SqliteStore>,
    runner: AgentRunner,
    approvals: Approvals,
}

/// Opens the database like a new process would.
fn open(db: &Path, model: Arc<ScriptedModel>, hooks: HookRegistry) -> Open {
    let store = Arc::new(SqliteStore::open(db).unwrap());
    let runner = AgentRunner::builder(store.clone(), model).hooks(hooks).build();
    let approvals = Approvals::new(Supervisor::new(runner.clone(), Vec::new()));
    Open { store, runner, approvals }
}

/// Parks a run of agent `alice` in `wd` and returns its approval's id.
async fn park(db: &Path, wd: &Path, hooks: HookRegistry, seen: &Seen) -> Id {
    let o = open(db, model(seen.clone()), hooks);
    let agent = o.runner.ensure_agent("alice", "scripted", wd.to_str().unwrap()).await.unwrap();
    let out = o.runner.run(agent.id, "write hello.txt", RunOptions::default()).await.unwrap();
    assert_eq!(out.stop_reason, EndReason::Waiting);
    assert!(!wd.join("hello.txt").exists(), "nothing runs before a person approves");
    let agent = o.store.get_agent(agent.id).await.unwrap().unwrap();
    assert_eq!(agent.status, AgentStatus::Waiting);
    assert!(agent.run.is_none(), "a parked run holds no claim");
    let q = EventQuery { types: vec!["ApprovalRequested".into()], ..EventQuery::default() };
    let evs = o.store.read_events(&q).await.unwrap();
    let [rec] = evs.as_slice() else { panic!("one ApprovalRequested: {evs:?}") };
    let Event::ApprovalRequested { approval, tool_name, tool_input, .. } = &rec.event else { unreachable!() };
    assert_eq!(tool_name, "Write");
    assert_eq!(tool_input["file_path"], "hello.txt");
    // A new prompt, or a resume, is refused while it waits, naming the approval.
    let again = o.runner.run(agent.id, "something else", RunOptions::default()).await;
    assert!(matches!(&again, Err(RunError::WaitingForPerson { approval: a, .. }) if a == approval), "{again:?}");
    let resume = o.runner.resume(agent.id, RunOptions::default()).await;
    assert!(matches!(resume, Err(RunError::WaitingForPerson { .. })), "{resume:?}");
    *approval
}

#[tokio::test]
async fn an_asked_tool_call_survives_reopening_and_runs_once_approved() {
    let dir = tempfile::tempdir().unwrap();
    let (db, wd) = (dir.path().join("orch.db"), dir.path().join("wd"));
    std::fs::create_dir(&wd).unwrap();
    let seen = Seen::default();
    let id = park(&db, &wd, ask_before_write(), &seen).await;

    // Another process on the same file.
    let o = open(&db, model(seen.clone()), ask_before_write());
    let pending = o.approvals.pending().await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!((pending[0].id, pending[0].agent_name.as_str()), (id, "alice"));
    assert_eq!(pending[0].question, "May I write hello.txt?");
    let inbox = o.approvals.attention().await.unwrap();
    assert_eq!(inbox.len(), 1);
    assert_eq!((inbox[0].kind, inbox[0].id, inbox[0].tool.as_deref()), (AttentionKind::Approval, id, Some("Write")));

    let resolved = o.approvals.resolve(id, ApprovalDecision::Approve, None, "test").await.unwrap();
    let out = resolved.continue_here(&o.runner, RunOptions::default()).await.unwrap();
    assert_eq!(out.stop_reason, EndReason::EndTurn);
    assert_eq!(std::fs::read_to_string(wd.join("hello.txt")).unwrap(), "hi\n");
    let results = seen.lock().unwrap().clone();
    assert_eq!(results.len(), 1);
    assert!(!results[0].1, "the approved tool's result is not an error: {results:?}");
    let agent = o.store.find_agent(None, "alice").await.unwrap().unwrap();
    assert_eq!(agent.status, AgentStatus::Idle);
    assert!(o.approvals.pending().await.unwrap().is_empty());
    assert!(o.approvals.attention().await.unwrap().is_empty());

    // Resolving twice, or an unknown id, is an error, not a second run.
    let twice = o.approvals.resolve(id, ApprovalDecision::Deny, Some("late".into()), "test").await;
    assert!(
        matches!(&twice, Err(ApprovalError::AlreadyResolved { decision: ApprovalDecision::Approve, .. })),
        "{twice:?}"
    );
    let unknown = o.approvals.resolve(Id::nil(), ApprovalDecision::Approve, None, "test").await;
    assert!(matches!(unknown, Err(ApprovalError::NotFound(_))));
    let q = EventQuery { types: vec!["ApprovalResolved".into()], ..EventQuery::default() };
    assert_eq!(o.store.read_events(&q).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_denial_gives_the_model_the_reason_as_the_tool_error() {
    let dir = tempfile::tempdir().unwrap();
    let (db, wd) = (dir.path().join("orch.db"), dir.path().join("wd"));
    std::fs::create_dir(&wd).unwrap();
    let seen = Seen::default();
    let id = park(&db, &wd, ask_before_write(), &seen).await;
    let o = open(&db, model(seen.clone()), ask_before_write());
    let resolved =
        o.approvals.resolve(id, ApprovalDecision::Deny, Some("not in this repository".into()), "test").await.unwrap();
    let out = resolved.continue_here(&o.runner, RunOptions::default()).await.unwrap();
    assert_eq!(out.stop_reason, EndReason::EndTurn);
    assert!(!wd.join("hello.txt").exists(), "a denied tool never runs");
    let results = seen.lock().unwrap().clone();
    assert_eq!(results.len(), 1);
    assert!(results[0].1, "a denial is a tool error");
    assert!(results[0].0.contains("not in this repository"), "{}", results[0].0);
}

#[tokio::test]
async fn a_settings_ask_rule_parks_and_an_answer_reaches_the_model_from_another_process() {
    let dir = tempfile::tempdir().unwrap();
    let (db, wd) = (dir.path().join("orch.db"), dir.path().join("wd"));
    std::fs::create_dir_all(wd.join(".claude")).unwrap();
    std::fs::write(wd.join(".claude/settings.json"), r#"{"permissions": {"ask": ["Write(*.txt)"]}}"#).unwrap();
    let mut hooks = HookRegistry::new();
    assert!(register_settings_hooks(&mut hooks, &wd).is_empty());
    let seen = Seen::default();
    let id = park(&db, &wd, hooks.clone(), &seen).await;
    let o = open(&db, model(seen.clone()), hooks);
    let pending = o.approvals.pending().await.unwrap();
    assert!(pending[0].question.contains("Write(*.txt)"), "{}", pending[0].question);

    // One process records the answer and leaves the run; another one continues it.
    let resolved =
        o.approvals.resolve(id, ApprovalDecision::Answer, Some("use greeting.txt".into()), "cli").await.unwrap();
    resolved.claim.release().await;
    assert_eq!(o.approvals.awaiting_continuation().await.unwrap(), vec![id]);
    let other = open(&db, model(seen.clone()), HookRegistry::new());
    let supervisor = Supervisor::new(other.runner.clone(), Vec::new());
    let claimed = other.approvals.claim_resolved(id).await.unwrap().expect("resolved and not continued");
    let report = claimed.continue_in_background(&supervisor).wait().await;
    assert_eq!(report.result.unwrap().stop_reason, EndReason::EndTurn);
    assert!(other.approvals.claim_resolved(id).await.unwrap().is_none(), "continued once");
    assert!(other.approvals.awaiting_continuation().await.unwrap().is_empty());
    assert!(!wd.join("hello.txt").exists());
    let results = seen.lock().unwrap().clone();
    assert!(!results[0].1 && results[0].0.contains("use greeting.txt"), "{results:?}");
}
