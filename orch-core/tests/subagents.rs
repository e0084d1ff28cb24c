//! `Task` subagents in the native loop: a template's agent runs the task and answers, its events and
//! cost roll up under the parent, `SubagentStop` hooks run, interrupts reach it, calls run at once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use orch_core::executor::{AgentRunner, NativeExecutor, RunOptions, SubagentSettings, Supervisor};
use orch_core::hook::{FnHook, HookDecision, HookEvent, HookRegistry};
use orch_core::model::scripted::{ScriptReply, ScriptedModel};
use orch_core::model::{DeltaStream, ModelError, ModelProvider, ModelRequest, Price, PriceTable};
use orch_core::store::{AgentFilter, EventQuery, MemoryStore, Store};
use orch_core::tool::{Tool, ToolContext, ToolError, ToolOutput, ToolRegistry};
use orch_core::wire::{Agent, AgentRole, Event, EventRecord};
use serde_json::{Value, json};

fn last_text(req: &ModelRequest) -> String {
    req.messages.last().and_then(|m| m.last_text()).unwrap_or("").to_string()
}

fn is_sub(req: &ModelRequest) -> bool {
    req.agent_name.starts_with("reviewer-") || req.agent_name.starts_with("general-purpose-")
}

fn task(id: &str, prompt: &str, kind: &str) -> ScriptReply {
    ScriptReply::tool_use(id, "Task", json!({"description": "review", "prompt": prompt, "subagent_type": kind}))
}

/// A tool that waits until the run is interrupted.
struct WaitForInterrupt;

#[async_trait]
impl Tool for WaitForInterrupt {
    fn name(&self) -> &str {
        "Wait"
    }
    fn description(&self) -> &str {
        "waits"
    }
    fn input_schema(&self) -> Value {
        json!({"type": "object"})
    }
    async fn call(&self, ctx: &ToolContext, _input: Value) -> Result<ToolOutput, ToolError> {
        ctx.interrupt.triggered().await;
        Err(ToolError::Interrupted)
    }
}

struct Setup {
    store: Arc<MemoryStore>,
    supervisor: Supervisor,
    parent: Agent,
    dir: tempfile::TempDir,
}

async fn setup(model: ScriptedModel, hooks: HookRegistry, settings: SubagentSettings) -> Setup {
    setup_with(Arc::new(model), hooks, settings).await
}

async fn setup_with(model: Arc<dyn ModelProvider>, hooks: HookRegistry, settings: SubagentSettings) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let agents = dir.path().join(".claude/agents");
    std::fs::create_dir_all(&agents).unwrap();
    std::fs::write(
        agents.join("reviewer.md"),
        "---\nname: reviewer\ndescription: Reviews files\ntools: Write, Wait, Task\ncolor: green\n---\nYou review.\n",
    )
    .unwrap();
    let mut prices = PriceTable::default();
    prices.models.insert(
        "scripted".into(),
        Price { input: 1000.0, output: 1000.0, cache_read: None, cache_write: None, context_window: None },
    );
    let store = Arc::new(MemoryStore::new());
    let executor = NativeExecutor::new(model).with_prices(prices).with_subagents(settings);
    let mut tools = ToolRegistry::with_builtins();
    tools.register(WaitForInterrupt);
    let runner = AgentRunner::builder(store.clone(), Arc::new(ScriptedModel::from_fn(|_| Ok(ScriptReply::text("-")))))
        .executor(Arc::new(executor))
        .tools(tools)
        .hooks(hooks)
        .build();
    let parent = runner.ensure_agent("lead", "scripted", dir.path().to_str().unwrap()).await.unwrap();
    Setup { store, supervisor: Supervisor::new(runner, Vec::new()), parent, dir }
}

async fn events(store: &MemoryStore) -> Vec<EventRecord> {
    store.read_events(&EventQuery::default()).await.unwrap()
}

async fn subagents(store: &MemoryStore) -> Vec<Agent> {
    let all = store.list_agents(&AgentFilter { include_archived: true, ..AgentFilter::default() }).await.unwrap();
    all.into_iter().filter(|a| a.role == AgentRole::Subagent).collect()
}

#[tokio::test]
async fn a_task_runs_a_template_subagent_whose_answer_events_and_cost_roll_up_to_the_parent() {
    let model = ScriptedModel::from_fn(|req: &ModelRequest| {
        let last = last_text(req);
        Ok(if is_sub(req) {
            if last.starts_with("check") {
                ScriptReply::tool_use("w1", "Write", json!({"file_path": "review.txt", "content": "ok\n"}))
            } else {
                ScriptReply::text("LGTM: the file is fine")
            }
        } else if last == "LGTM: the file is fine" {
            ScriptReply::text("Parent done: LGTM")
        } else {
            task("t1", "check the file and write review.txt", "reviewer")
        })
    });
    let stops = Arc::new(Mutex::new(Vec::new()));
    let seen = stops.clone();
    let mut hooks = HookRegistry::new();
    hooks
        .register(
            HookEvent::SubagentStop,
            None,
            FnHook::new("watch", move |input| {
                seen.lock().unwrap().push((input.subagent_id.clone(), input.last_message.clone()));
                HookDecision::Continue
            }),
        )
        .unwrap();
    let s = setup(model, hooks, SubagentSettings::default()).await;
    let out = s.supervisor.run(&s.parent, "Review the repo".into(), RunOptions::default()).await.unwrap();
    assert_eq!(out.final_text.as_deref(), Some("Parent done: LGTM"));
    assert_eq!(
        std::fs::read_to_string(s.dir.path().join("review.txt")).unwrap(),
        "ok\n",
        "the subagent worked in the parent's dir"
    );

    let subs = subagents(&s.store).await;
    assert_eq!(subs.len(), 1);
    let sub = &subs[0];
    assert_eq!(sub.parent_id, Some(s.parent.id));
    assert_eq!(sub.template.as_ref().map(|t| t.name.as_str()), Some("reviewer"));
    assert_eq!(sub.system_prompt.as_deref(), Some("You review."));
    assert!(sub.archived, "a finished subagent leaves the agent list");
    assert!(sub.total_cost_usd > 0.0);

    let evs = events(&s.store).await;
    let slug = evs
        .iter()
        .find(|r| r.keys.agent_id == Some(s.parent.id) && r.keys.task_slug.is_some())
        .unwrap()
        .keys
        .task_slug
        .clone();
    let sub_write = evs
        .iter()
        .find(|r| {
            r.keys.agent_id == Some(sub.id)
                && matches!(&r.event, Event::ToolUse { tool_name, .. } if tool_name == "Write")
        })
        .expect("the subagent's tool call is recorded under it");
    assert_eq!(sub_write.keys.task_slug, slug, "its events carry the parent's run");
    let start = evs.iter().position(|r| matches!(r.event, Event::SubagentStart { .. })).unwrap();
    let stop = evs.iter().position(|r| matches!(r.event, Event::SubagentStop { .. })).unwrap();
    let write = evs.iter().position(|r| r.seq == sub_write.seq).unwrap();
    assert!(start < write && write < stop, "start, the subagent's work, stop");
    let Event::SubagentStop { cost_usd, tool_use_id, reason, subagent_id } = &evs[stop].event else { unreachable!() };
    assert_eq!(tool_use_id.as_deref(), Some("t1"));
    assert_eq!(reason.as_ref().map(|r| r.to_string()).as_deref(), Some("end_turn"));
    assert_eq!(subagent_id, &sub.id.to_string());
    assert!((cost_usd - sub.total_cost_usd).abs() < 1e-9, "the stop reports the subagent's cost");

    // The parent's cost includes the subagent's.
    let parent = s.store.get_agent(s.parent.id).await.unwrap().unwrap();
    let own: f64 = evs
        .iter()
        .filter(|r| r.keys.agent_id == Some(s.parent.id))
        .filter_map(|r| match &r.event {
            Event::AgentCostsUpdated { cost_usd, .. } => Some(*cost_usd),
            _ => None,
        })
        .sum();
    assert!(own > 0.0);
    assert!(
        (parent.total_cost_usd - (own + sub.total_cost_usd)).abs() < 1e-9,
        "{} vs {own} + {}",
        parent.total_cost_usd,
        sub.total_cost_usd
    );
    assert!((out.cost_usd - parent.total_cost_usd).abs() < 1e-9);
    assert_eq!(*stops.lock().unwrap(), vec![(Some(sub.id.to_string()), Some("LGTM: the file is fine".to_string()))]);
}

#[tokio::test]
async fn a_subagent_stop_hook_can_send_the_subagent_back_to_work() {
    let model = ScriptedModel::from_fn(|req: &ModelRequest| {
        let last = last_text(req);
        Ok(if is_sub(req) {
            if last == "also check the docs" {
                ScriptReply::text("docs checked too")
            } else {
                ScriptReply::text("code checked")
            }
        } else if last == "docs checked too" {
            ScriptReply::text("all checked")
        } else {
            task("t1", "check the code", "general-purpose")
        })
    });
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let mut hooks = HookRegistry::new();
    hooks
        .register(
            HookEvent::SubagentStop,
            None,
            FnHook::new("more", move |_| {
                if counter.fetch_add(1, Ordering::SeqCst) == 0 {
                    HookDecision::Deny { reason: "also check the docs".into() }
                } else {
                    HookDecision::Continue
                }
            }),
        )
        .unwrap();
    let s = setup(model, hooks, SubagentSettings::default()).await;
    let out = s.supervisor.run(&s.parent, "Check everything".into(), RunOptions::default()).await.unwrap();
    assert_eq!(out.final_text.as_deref(), Some("all checked"));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

/// A model whose subagent calls each wait (up to 5 s) until two of them are in flight, counting those
/// that saw the other.
struct Gate {
    inner: ScriptedModel,
    running: AtomicUsize,
    overlapped: Arc<AtomicUsize>,
}

#[async_trait]
impl ModelProvider for Gate {
    fn name(&self) -> &str {
        "scripted"
    }
    async fn stream(&self, req: ModelRequest) -> Result<DeltaStream, ModelError> {
        if is_sub(&req) {
            self.running.fetch_add(1, Ordering::SeqCst);
            let until = Instant::now() + Duration::from_secs(5);
            while self.running.load(Ordering::SeqCst) < 2 && Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            if self.running.load(Ordering::SeqCst) >= 2 {
                self.overlapped.fetch_add(1, Ordering::SeqCst);
            }
        }
        self.inner.stream(req).await
    }
}

#[tokio::test]
async fn task_calls_of_one_response_run_at_once() {
    let overlapped = Arc::new(AtomicUsize::new(0));
    let model = ScriptedModel::from_fn(move |req: &ModelRequest| {
        let last = last_text(req);
        Ok(if is_sub(req) {
            ScriptReply::text(format!("done: {last}"))
        } else if last.starts_with("done:") {
            ScriptReply::text("both done")
        } else {
            ScriptReply::new(vec![
                orch_core::wire::ContentBlock::ToolUse {
                    id: "a".into(),
                    name: "Task".into(),
                    input: json!({"description": "a", "prompt": "task a", "subagent_type": "general-purpose"}),
                },
                orch_core::wire::ContentBlock::ToolUse {
                    id: "b".into(),
                    name: "Task".into(),
                    input: json!({"description": "b", "prompt": "task b", "subagent_type": "general-purpose"}),
                },
            ])
        })
    });
    let gate = Gate { inner: model, running: AtomicUsize::new(0), overlapped: overlapped.clone() };
    let s = setup_with(Arc::new(gate), HookRegistry::new(), SubagentSettings::default()).await;
    let out = s.supervisor.run(&s.parent, "Do both".into(), RunOptions::default()).await.unwrap();
    assert_eq!(out.final_text.as_deref(), Some("both done"));
    assert_eq!(overlapped.load(Ordering::SeqCst), 2, "both subagents were running at the same time");
    assert_eq!(subagents(&s.store).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupting_the_parent_stops_its_subagent() {
    let model = ScriptedModel::from_fn(|req: &ModelRequest| {
        Ok(if is_sub(req) {
            ScriptReply::tool_use("w", "Wait", json!({}))
        } else {
            task("t1", "wait for it", "reviewer")
        })
    });
    let s = setup(model, HookRegistry::new(), SubagentSettings::default()).await;
    let ticket = s.supervisor.start(&s.parent, "Start a long review".into(), RunOptions::default()).await.unwrap();
    // Wait until the subagent is inside its tool.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let evs = events(&s.store).await;
        if evs.iter().any(|r| matches!(&r.event, Event::PreToolUse { tool_name, .. } if tool_name == "Wait")) {
            break;
        }
        assert!(Instant::now() < deadline, "the subagent never reached its tool");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    s.supervisor.interrupt(&s.parent, "test", Duration::from_secs(10)).await.unwrap();
    let report = ticket.wait().await;
    let out = report.result.unwrap();
    assert_eq!(out.stop_reason, "interrupted");
    let sub = subagents(&s.store).await.remove(0);
    let evs = events(&s.store).await;
    let sub_stop = evs.iter().find_map(|r| match &r.event {
        Event::Stop { reason, .. } if r.keys.agent_id == Some(sub.id) => Some(reason.to_string()),
        _ => None,
    });
    assert_eq!(sub_stop.as_deref(), Some("interrupted"), "the subagent's turn was interrupted too");
}

#[tokio::test]
async fn subagents_nest_no_deeper_than_the_limit() {
    let requests = Arc::new(Mutex::new(Vec::<ModelRequest>::new()));
    let seen = requests.clone();
    let model = ScriptedModel::from_fn(move |req: &ModelRequest| {
        seen.lock().unwrap().push(req.clone());
        let last = last_text(req);
        Ok(if is_sub(req) {
            ScriptReply::text("sub answer")
        } else if last == "sub answer" {
            ScriptReply::text("done")
        } else {
            task("t1", "do it", "reviewer")
        })
    });
    let s = setup(model, HookRegistry::new(), SubagentSettings { max_depth: 1, max_parallel: 4 }).await;
    s.supervisor.run(&s.parent, "Go".into(), RunOptions::default()).await.unwrap();
    let requests = requests.lock().unwrap().clone();
    let offers = |r: &ModelRequest| r.tools.iter().any(|t| t.name == "Task");
    let parent = requests.iter().find(|r| !is_sub(r)).unwrap();
    let sub = requests.iter().find(|r| is_sub(r)).unwrap();
    assert!(offers(parent), "the parent may start subagents");
    assert!(parent.tools.iter().find(|t| t.name == "Task").unwrap().description.contains("- reviewer: Reviews files"));
    assert!(!offers(sub), "a subagent at the depth limit is not offered Task");
}
