//! Task attempts in git worktrees of their own: each task's changes are committed on its branch with a
//! message naming it and merged into the main tree before its dependents start; a branch that cannot be
//! merged raises a checkpoint and is kept.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod workflow_support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use orch_core::executor::{AgentRunner, Supervisor};
use orch_core::graph::{GraphRunner, GraphSettings, Router, TaskGraphs};
use orch_core::model::scripted::{ScriptReply, ScriptedModel};
use orch_core::store::{EventQuery, MemoryStore, Store};
use orch_core::tool::ToolRegistry;
use orch_core::wire::{Complexity, Event, GraphStatus, PlannedTask, TaskStatus};
use serde_json::json;
use workflow_support::git;

fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    git(dir.path(), &["init", "-q", "-b", "main"]);
    std::fs::write(dir.path().join("README.md"), "calc\n").unwrap();
    git(dir.path(), &["add", "."]);
    git(dir.path(), &["commit", "-q", "-m", "start"]);
    dir
}

fn planned(key: &str, deps: &[&str], verification: &[&str]) -> PlannedTask {
    PlannedTask {
        key: key.into(),
        title: format!("write {key}"),
        description: format!("Write {key}.txt."),
        task_type: "code".into(),
        complexity: Complexity::Medium,
        depends_on: deps.iter().map(|d| d.to_string()).collect(),
        model: None,
        tools: Vec::new(),
        verification: verification.iter().map(|v| v.to_string()).collect(),
        estimated_cost_usd: None,
        estimated_minutes: None,
    }
}

/// A model whose agents write `<task key>.txt` and then say they are done.
fn writer() -> ScriptedModel {
    ScriptedModel::from_fn(|req| {
        let key = req.agent_name.rsplitn(3, '-').nth(2).unwrap_or("x").to_string();
        if req.messages.len() == 1 {
            Ok(ScriptReply::tool_use("w", "Write", json!({"file_path": format!("{key}.txt"), "content": key})))
        } else {
            Ok(ScriptReply::text(format!("{key} written")))
        }
    })
}

/// Runs `tasks` in `dir` with worktrees on, until the graph ends or a task waits at a checkpoint.
async fn run(dir: &Path, tasks: Vec<PlannedTask>) -> (Arc<dyn Store>, orch_core::wire::Id) {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let agents = AgentRunner::builder(store.clone(), Arc::new(writer())).tools(ToolRegistry::with_builtins()).build();
    let settings = GraphSettings { poll: Duration::from_millis(20), worktree: true, ..GraphSettings::default() };
    let runner = GraphRunner::new(Supervisor::new(agents, Vec::new()), dir, Router::new(Vec::new()), settings);
    let graphs = TaskGraphs::new(store.clone());
    let plan = graphs.create_plan("calc", tasks, Default::default()).await.unwrap();
    graphs.approve(plan.id).await.unwrap();
    let (g, _) = graphs.create_graph(plan.id, None).await.unwrap();
    runner.start(g.id, None).await.unwrap();
    let worker = tokio::spawn(runner.worker(Some(g.id)).run());
    let ended = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let graph = store.get_graph(g.id).await.unwrap().unwrap();
            let tasks = store.list_tasks(g.id).await.unwrap();
            if graph.status.is_final() || tasks.iter().any(|t| t.status == TaskStatus::Blocked) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(ended.is_ok(), "the graph neither ended nor waited at a checkpoint");
    worker.abort();
    (store, g.id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_task_commits_on_its_branch_and_is_merged_before_its_dependents_start() {
    let dir = repo();
    let d = dir.path();
    let tasks = vec![
        planned("lexer", &[], &[]),
        // The parser's check only passes if the lexer's merged work is in the parser's worktree.
        planned("parser", &["lexer"], &["$ test -f lexer.txt && test -f parser.txt"]),
        planned("docs", &[], &[]),
    ];
    let (store, graph_id) = run(d, tasks).await;
    let graph = store.get_graph(graph_id).await.unwrap().unwrap();
    assert_eq!(graph.status, GraphStatus::Completed, "{:?}", store.list_tasks(graph_id).await.unwrap());

    for f in ["lexer.txt", "parser.txt", "docs.txt"] {
        assert!(d.join(f).exists(), "{f} was merged into the main tree");
    }
    let subjects = git(d, &["log", "--format=%s"]);
    for key in ["lexer", "parser", "docs"] {
        assert!(subjects.lines().any(|s| s == format!("{key}: write {key}")), "a commit names {key}:\n{subjects}");
    }
    assert!(git(d, &["status", "--porcelain"]).trim().is_empty(), "the main tree is clean");
    assert_eq!(git(d, &["worktree", "list"]).lines().count(), 1, "the worktrees are removed");
    assert!(git(d, &["branch", "--list", "orch/*"]).trim().is_empty(), "merged branches are deleted");

    let tasks = store.list_tasks(graph_id).await.unwrap();
    for t in &tasks {
        let out = t.output.as_deref().unwrap_or_default();
        assert!(out.contains("[git] commit") && out.contains("merged into the main tree"), "{out}");
    }
    let log = store.read_events(&EventQuery::default()).await.unwrap();
    let dirs: Vec<String> = log
        .iter()
        .filter_map(|r| match &r.event {
            Event::AgentCreated { agent } => Some(agent.working_dir.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(dirs.len(), 3);
    assert!(dirs.iter().all(|w| w.contains(".orch/worktrees/graph-")), "agents work in worktrees: {dirs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_branch_that_cannot_be_merged_raises_a_checkpoint_and_is_kept() {
    let dir = repo();
    let d = dir.path();
    // A person's uncommitted edit of a tracked file: merging into that tree is refused.
    std::fs::write(d.join("README.md"), "calc, being edited\n").unwrap();
    let (store, graph_id) = run(d, vec![planned("lexer", &[], &[])]).await;
    let tasks = store.list_tasks(graph_id).await.unwrap();
    let t = &tasks[0];
    assert_eq!(t.status, TaskStatus::Blocked, "{t:?}");
    let why = t.checkpoint.as_deref().unwrap_or_default();
    assert!(why.contains("could not be merged") && why.contains("uncommitted changes"), "{why}");
    let branches = git(d, &["branch", "--list", "orch/*"]);
    assert!(branches.contains("orch/graph-") && branches.contains("-lexer"), "the branch is kept: {branches}");
    let branch = branches.trim().trim_start_matches(['*', '+', ' ']).to_string();
    assert_eq!(git(d, &["show", "--format=%s", "-s", &branch]).trim(), "lexer: write lexer");
    assert!(!d.join("lexer.txt").exists(), "nothing reached the main tree");
    assert_eq!(std::fs::read_to_string(d.join("README.md")).unwrap(), "calc, being edited\n", "the edit is intact");
}
