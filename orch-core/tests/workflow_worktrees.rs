//! Workflow runs in git worktrees of their own: two at once on one repository each commit on their own
//! branch while the (dirty) main tree stays as it was; `on_success = "merge"` merges a clean tree.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod workflow_support;

use std::path::Path;
use std::sync::Arc;

use orch_core::executor::{AgentRunner, Supervisor};
use orch_core::model::ModelRequest;
use orch_core::model::scripted::{ScriptReply, ScriptedModel};
use orch_core::store::{EventQuery, MemoryStore, Store};
use orch_core::tool::ToolRegistry;
use orch_core::wire::{Event, StepStatus, WorkflowStatus};
use orch_core::workflow::{WorkflowEngine, WorkflowError};
use serde_json::{Value, json};
use workflow_support::{after_tool, git, last_text};

/// A git repository with one commit (README.md), without a configured identity.
fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    git(dir.path(), &["init", "-q", "-b", "main"]);
    std::fs::write(dir.path().join("README.md"), "# project\n").unwrap();
    git(dir.path(), &["add", "README.md"]);
    git(dir.path(), &["commit", "-q", "-m", "first"]);
    dir
}

/// plan_build's team: the plan agent writes specs/parser.md and gives its path; the build agent
/// writes src/parser.rs naming itself (so two runs write different files).
fn team() -> ScriptedModel {
    ScriptedModel::from_fn(move |req: &ModelRequest| {
        let role = req.agent_name.split('-').next().unwrap_or("").to_string();
        let last = last_text(req);
        Ok(match role.as_str() {
            _ if last.contains("ONLY") && last.contains("path") => ScriptReply::text("./specs/parser.md"),
            "plan" if !after_tool(req) => ScriptReply::tool_use(
                "w",
                "Write",
                json!({"file_path": "specs/parser.md", "content": "# Plan\nwrite a parser\n"}),
            ),
            "plan" => ScriptReply::text("Planned."),
            "build" | "write" if !after_tool(req) => ScriptReply::tool_use(
                "w",
                "Write",
                json!({"file_path": "src/parser.rs", "content": format!("// by {}\nfn parse() {{}}\n", req.agent_name)}),
            ),
            _ => ScriptReply::text("Done."),
        })
    })
}

fn engine(dir: &Path) -> (Arc<MemoryStore>, WorkflowEngine) {
    let store = Arc::new(MemoryStore::new());
    let runner = AgentRunner::builder(store.clone(), Arc::new(team())).tools(ToolRegistry::with_builtins()).build();
    (store.clone(), WorkflowEngine::new(Supervisor::new(runner, Vec::new()), dir, "scripted"))
}

/// The `StepEnd` payloads of run `id`, in order.
async fn step_ends(store: &MemoryStore, id: orch_core::wire::Id) -> Vec<(String, StepStatus, Value)> {
    let q = EventQuery { workflow_id: Some(id), types: vec!["StepEnd".into()], ..EventQuery::default() };
    store
        .read_events(&q)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|r| match r.event {
            Event::StepEnd { step_name, status, payload, .. } => Some((step_name, status, payload)),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_at_once_commit_on_their_own_branches_and_leave_the_dirty_main_tree_alone() {
    let dir = repo();
    let d = dir.path();
    // The main tree is dirty: a modified tracked file and an untracked one.
    std::fs::write(d.join("README.md"), "# project\nwork in progress\n").unwrap();
    std::fs::write(d.join("notes.txt"), "mine\n").unwrap();
    let head = git(d, &["rev-parse", "HEAD"]);
    let status = git(d, &["status", "--porcelain"]);

    let (store, wf) = engine(d);
    let input = json!({"prompt": "Add a parser", "worktree": true});
    let (a, b) = tokio::join!(
        wf.start("plan_build", input.clone(), Some("alpha".into()), None),
        wf.start("plan_build", input.clone(), Some("beta run".into()), None),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    for (run, branch) in [(&a, "orch/alpha"), (&b, "orch/beta-run")] {
        assert_eq!(run.status, WorkflowStatus::Completed, "{:?}", run.error_message);
        let tree = &run.output_data["worktree"];
        assert_eq!(tree["branch"], branch);
        assert_eq!(tree["state"], "kept");
        assert_eq!(tree["removed"], true);
        assert!(!Path::new(tree["path"].as_str().unwrap()).exists(), "the worktree directory is removed");
        // Each step's changes are a commit on the run's branch, named after the workflow and step.
        let log = git(d, &["log", "--format=%s", branch]);
        let name = &run.name;
        assert_eq!(
            log.lines().collect::<Vec<_>>(),
            [format!("plan_build {name}: build").as_str(), format!("plan_build {name}: plan").as_str(), "first"]
        );
        let ends = step_ends(&store, run.id).await;
        let commits: Vec<&str> = ends.iter().map(|(_, _, p)| p["commit"].as_str().unwrap()).collect();
        let shas = git(d, &["log", "--format=%H", "-2", branch]);
        assert_eq!(commits, shas.lines().rev().collect::<Vec<_>>(), "StepEnd records each step's commit");
        let built = git(d, &["show", &format!("{branch}:src/parser.rs")]);
        assert!(built.starts_with("// by build-"), "{built}");
        assert_eq!(git(d, &["show", &format!("{branch}:README.md")]), "# project\n", "from HEAD, not the dirty tree");
    }
    assert_ne!(git(d, &["show", "orch/alpha:src/parser.rs"]), git(d, &["show", "orch/beta-run:src/parser.rs"]));
    // The main tree is as it was: same HEAD, same status, its dirty file untouched, no new files.
    assert_eq!(git(d, &["rev-parse", "HEAD"]), head);
    assert_eq!(git(d, &["status", "--porcelain"]), status, "the worktrees' directory is ignored");
    assert_eq!(std::fs::read_to_string(d.join("README.md")).unwrap(), "# project\nwork in progress\n");
    assert!(!d.join("src").exists() && !d.join("specs").exists());
    assert_eq!(git(d, &["worktree", "list", "--porcelain"]).matches("worktree ").count(), 1);
}

#[tokio::test]
async fn merge_on_success_merges_into_a_clean_main_tree_and_not_into_a_dirty_one() {
    let dir = repo();
    let d = dir.path();
    // A user workflow asking for a worktree and a merge (the file itself is untracked: still clean).
    std::fs::create_dir_all(d.join(".orch/workflows")).unwrap();
    std::fs::write(
        d.join(".orch/workflows/write.toml"),
        "worktree = true\non_success = \"merge\"\n[[steps]]\nname = \"write\"\nprompt = \"Write the parser\"\n",
    )
    .unwrap();
    let (store, wf) = engine(d);
    let head = git(d, &["rev-parse", "HEAD"]);
    let done = wf.start("write", json!({}), Some("merge-me".into()), None).await.unwrap();
    assert_eq!(done.status, WorkflowStatus::Completed, "{:?}", done.error_message);
    assert_eq!(done.output_data["worktree"]["state"], "merged", "{}", done.output_data);
    assert!(std::fs::read_to_string(d.join("src/parser.rs")).unwrap().starts_with("// by write-"));
    assert_eq!(git(d, &["rev-parse", "HEAD~1"]), head, "one merge commit on top of the old HEAD");
    assert!(git(d, &["log", "-1", "--format=%s"]).contains("orch/merge-me"));
    assert!(git(d, &["branch", "--list", "orch/merge-me"]).is_empty(), "the merged branch is deleted");
    let ends = step_ends(&store, done.id).await;
    assert!(ends[0].2["commit"].is_string());

    // A dirty main tree is not merged into: the branch is kept and the run says why.
    std::fs::write(d.join("README.md"), "# project\nediting\n").unwrap();
    let head = git(d, &["rev-parse", "HEAD"]);
    let input = json!({"worktree": true, "on_success": "merge"});
    let done = wf.start("write", input, Some("dirty".into()), None).await.unwrap();
    assert_eq!(done.status, WorkflowStatus::Completed);
    let tree = &done.output_data["worktree"];
    assert_eq!(tree["state"], "merge_skipped");
    assert!(tree["merge_error"].as_str().unwrap().contains("uncommitted changes"), "{tree}");
    assert_eq!(git(d, &["rev-parse", "HEAD"]), head);
    assert_eq!(std::fs::read_to_string(d.join("README.md")).unwrap(), "# project\nediting\n");
    assert!(git(d, &["log", "--format=%s", "orch/dirty"]).starts_with("write dirty: write\n"));

    // The input turns the worktree off again: the run works in the main tree.
    let done = wf.start("write", json!({"worktree": false}), None, None).await.unwrap();
    assert!(done.output_data.get("worktree").is_none());
    assert!(std::fs::read_to_string(d.join("src/parser.rs")).unwrap().starts_with("// by write-"));
}

#[tokio::test]
async fn a_worktree_run_outside_a_repository_or_with_bad_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_, wf) = engine(dir.path());
    let plan_build = wf.workflow("plan_build").unwrap();
    let e = wf.create(plan_build.as_ref(), json!({"prompt": "x", "worktree": true}), None, None).await.unwrap_err();
    assert!(matches!(e, WorkflowError::Input(_)), "{e}");
    assert!(e.to_string().contains("is not in a git repository"), "{e}");
    let e = wf.create(plan_build.as_ref(), json!({"prompt": "x", "worktree": "yes"}), None, None).await.unwrap_err();
    assert!(e.to_string().contains("'worktree' must be true or false"), "{e}");

    git(dir.path(), &["init", "-q"]);
    let e = wf.create(plan_build.as_ref(), json!({"prompt": "x", "worktree": true}), None, None).await.unwrap_err();
    assert!(e.to_string().contains("no commit yet"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_worktree_run_keeps_its_worktree_and_resumes_in_it() {
    let dir = repo();
    let d = dir.path();
    // The build agent's first command sleeps unless its marker exists (in the worktree).
    let model = ScriptedModel::from_fn(|req: &ModelRequest| {
        let last = last_text(req);
        Ok(match req.agent_name.split('-').next().unwrap_or("") {
            _ if last.contains("ONLY") => ScriptReply::text("./specs/parser.md"),
            "plan" if !after_tool(req) => {
                ScriptReply::tool_use("w", "Write", json!({"file_path": "specs/parser.md", "content": "# Plan\n"}))
            }
            "build" if !after_tool(req) => ScriptReply::tool_use(
                "b",
                "Bash",
                json!({"command": "test -f built.marker || (touch built.marker && sleep 30)"}),
            ),
            _ => ScriptReply::text("Done."),
        })
    });
    let store = Arc::new(MemoryStore::new());
    let runner = AgentRunner::builder(store.clone(), Arc::new(model)).tools(ToolRegistry::with_builtins()).build();
    let wf = WorkflowEngine::new(Supervisor::new(runner, Vec::new()), d, "scripted");
    let workflow = wf.workflow("plan_build").unwrap();
    let run = wf.create(workflow.as_ref(), json!({"prompt": "p", "worktree": true}), Some("slow".into()), None);
    let record = run.await.unwrap();
    let interrupt = orch_core::Interrupt::new();
    let marker = d.join(".orch/worktrees/slow/built.marker");
    let (trigger, watched) = (interrupt.clone(), marker.clone());
    tokio::spawn(async move {
        while !watched.exists() {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        trigger.trigger();
    });
    let cancelled = wf.run(record.id, Some(interrupt)).await.unwrap();
    assert_eq!(cancelled.status, WorkflowStatus::Cancelled, "{:?}", cancelled.error_message);
    let tree = &cancelled.output_data["worktree"];
    assert_eq!(tree["state"], "active", "{tree}");
    assert!(marker.exists(), "a cancelled run keeps its worktree");

    let done = wf.run(record.id, None).await.unwrap();
    assert_eq!(done.status, WorkflowStatus::Completed, "{:?}", done.error_message);
    assert_eq!(done.output_data["worktree"]["path"], tree["path"], "resumed in the same worktree");
    // The interrupted attempt's change (its marker) is committed; the second attempt changed nothing.
    let log = git(d, &["log", "--format=%s", "orch/slow"]);
    assert_eq!(
        log.lines().collect::<Vec<_>>(),
        ["plan_build slow: build (failed attempt)", "plan_build slow: plan", "first"]
    );
    let ends = step_ends(&store, record.id).await;
    let builds: Vec<&Value> = ends.iter().filter(|(s, _, _)| s == "build").map(|(_, _, p)| &p["commit"]).collect();
    assert!(builds[0].is_string() && builds[1].is_null(), "{builds:?}");
}

#[tokio::test]
async fn a_run_from_a_subdirectory_works_in_the_same_subdirectory_of_its_worktree() {
    let dir = repo();
    let d = dir.path();
    std::fs::create_dir_all(d.join("app/.orch/workflows")).unwrap();
    std::fs::write(
        d.join("app/.orch/workflows/write.toml"),
        "worktree = true\n[[steps]]\nname = \"write\"\nprompt = \"Write the parser\"\n",
    )
    .unwrap();
    let (_, wf) = engine(&d.join("app"));
    let done = wf.start("write", json!({}), Some("sub".into()), None).await.unwrap();
    assert_eq!(done.status, WorkflowStatus::Completed, "{:?}", done.error_message);
    let worktree = Path::new(done.output_data["worktree"]["path"].as_str().unwrap()).to_path_buf();
    assert_eq!(worktree, d.canonicalize().unwrap().join(".orch/worktrees/sub"), "under the repository's top");
    assert!(git(d, &["show", "orch/sub:app/src/parser.rs"]).starts_with("// by write-"));
    assert!(!d.join("app/src").exists());
}
