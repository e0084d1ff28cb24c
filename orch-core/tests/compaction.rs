//! Context compaction in the native loop: automatic past the threshold, `/compact` on demand,
//! `PreCompact` hooks, and a crash in the middle of one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use orch_core::executor::compact::{SUMMARY_HEAD, SUMMARY_REQUEST_HEAD};
use orch_core::executor::{AgentRunner, CompactionSettings, NativeExecutor, RunOptions, Supervisor};
use orch_core::hook::{FnHook, HookDecision, HookEvent, HookRegistry};
use orch_core::model::scripted::{ScriptReply, ScriptedModel};
use orch_core::model::{ModelRequest, Price, PriceTable};
use orch_core::store::{EventQuery, MemoryStore, Store};
use orch_core::wire::{Agent, ContentBlock, Event, EventRecord, Message, Role};

/// The scripted model's window in these tests, and the default threshold's share of it.
const WINDOW: u64 = 8_000;
const THRESHOLD: u64 = WINDOW * 8 / 10;

fn last_text(req: &ModelRequest) -> String {
    req.messages.last().and_then(|m| m.last_text()).unwrap_or("").to_string()
}

fn is_summary_request(req: &ModelRequest) -> bool {
    last_text(req).starts_with(SUMMARY_REQUEST_HEAD)
}

/// What every prompt and answer of these tests looks like (~1,200 characters each).
fn prompt(i: usize) -> String {
    format!("prompt {i}: {}", "p".repeat(1200))
}

fn answer(i: usize) -> String {
    format!("answer {i}: {}", "a".repeat(1200))
}

/// Answers `prompt(i)` with `answer(i)` and a summary request with a summary, keeping every request.
fn reply(seen: &Mutex<Vec<ModelRequest>>, req: &ModelRequest) -> ScriptReply {
    seen.lock().unwrap().push(req.clone());
    let last = last_text(req);
    if last.starts_with(SUMMARY_REQUEST_HEAD) {
        return ScriptReply::text("SUMMARY: the user sent numbered prompts; each was answered.");
    }
    ScriptReply::text(answer(prompt_number(&last)))
}

fn prompt_number(text: &str) -> usize {
    text.strip_prefix("prompt ").and_then(|r| r.split(':').next()).and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// A scripted model that answers with [`reply`].
fn model(seen: Arc<Mutex<Vec<ModelRequest>>>) -> ScriptedModel {
    ScriptedModel::from_fn(move |req: &ModelRequest| Ok(reply(&seen, req)))
}

fn prices() -> PriceTable {
    let mut t = PriceTable::default();
    t.models.insert(
        "scripted".into(),
        Price { input: 0.0, output: 0.0, cache_read: None, cache_write: None, context_window: Some(WINDOW) },
    );
    t
}

struct Setup {
    store: Arc<MemoryStore>,
    supervisor: Supervisor,
    agent: Agent,
    _dir: tempfile::TempDir,
}

async fn setup(model: ScriptedModel, hooks: HookRegistry) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    let executor =
        NativeExecutor::new(Arc::new(model)).with_prices(prices()).with_compaction(CompactionSettings::default());
    let runner = AgentRunner::builder(store.clone(), Arc::new(ScriptedModel::from_fn(|_| Ok(ScriptReply::text("-")))))
        .executor(Arc::new(executor))
        .hooks(hooks)
        .build();
    let agent = runner.ensure_agent("keeper", "scripted", dir.path().to_str().unwrap()).await.unwrap();
    Setup { store, supervisor: Supervisor::new(runner, Vec::new()), agent, _dir: dir }
}

async fn events(store: &MemoryStore) -> Vec<EventRecord> {
    store.read_events(&EventQuery::default()).await.unwrap()
}

fn texts(m: &Message) -> Vec<&str> {
    m.content
        .iter()
        .filter_map(|b| match b {
            ContentBlock::Text { text } => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_conversation_past_its_threshold_is_compacted_before_the_next_call_and_nothing_is_lost() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let pre_compact = Arc::new(AtomicUsize::new(0));
    let counter = pre_compact.clone();
    let mut hooks = HookRegistry::new();
    hooks
        .register(
            HookEvent::PreCompact,
            None,
            FnHook::new("note", move |input| {
                assert_eq!(input.trigger.as_deref(), Some("auto"));
                counter.fetch_add(1, Ordering::SeqCst);
                HookDecision::AddContext { context: "Mention every prompt number.".into() }
            }),
        )
        .unwrap();
    let s = setup(model(seen.clone()), hooks).await;
    const TURNS: usize = 14;
    for i in 0..TURNS {
        let out = s.supervisor.run(&s.agent, prompt(i), RunOptions::default()).await.unwrap();
        assert_eq!(out.final_text, Some(answer(i)));
    }
    let requests = seen.lock().unwrap().clone();
    let summaries: Vec<&ModelRequest> = requests.iter().filter(|r| is_summary_request(r)).collect();
    assert!(!summaries.is_empty(), "14 turns of ~600 tokens pass 80 % of an 8k window");
    assert!(pre_compact.load(Ordering::SeqCst) >= summaries.len(), "PreCompact ran before each compaction");
    assert!(
        last_text(summaries[0]).contains("- Mention every prompt number."),
        "the hook's instructions reach the summary model"
    );

    let evs = events(&s.store).await;
    let compactions: Vec<&Event> =
        evs.iter().map(|r| &r.event).filter(|e| matches!(e, Event::Compacted { .. })).collect();
    assert_eq!(compactions.len(), summaries.len());
    // Every call's input, as the model measured it, stayed about at most the threshold (the loop
    // estimates what was added since the last measured call): compaction ran before the call that
    // would have passed it.
    for r in &evs {
        if let Event::AgentCostsUpdated { context_used: Some(used), context_window, usage, .. } = &r.event {
            assert_eq!(*context_window, Some(WINDOW));
            let input = used - usage.output_tokens;
            assert!(input <= THRESHOLD + THRESHOLD / 20, "a call sent {input} tokens, past the threshold {THRESHOLD}");
        }
    }
    // The request after a compaction opens with the summary and keeps the last turn verbatim.
    let first_after = requests
        .iter()
        .skip_while(|r| !is_summary_request(r))
        .find(|r| !is_summary_request(r))
        .expect("a call after the compaction");
    let opening = texts(&first_after.messages[0]).join("");
    assert!(opening.starts_with(SUMMARY_HEAD) && opening.contains("SUMMARY: the user sent"), "{opening}");
    let n = first_after.messages.len();
    assert!(n >= 3, "the summary, the last answer and the new prompt at least");
    let i = prompt_number(&last_text(first_after));
    assert_eq!(texts(&first_after.messages[n - 2]), vec![answer(i - 1).as_str()], "the last answer, verbatim");
    assert_eq!(first_after.messages[n - 2].role, Role::Assistant);
    let after: u64 = first_after.messages.iter().map(orch_core::executor::compact::estimate_message).sum();
    assert!(after < THRESHOLD / 2, "the request after the compaction is well under the threshold: {after}");

    // Nothing is lost: every prompt and answer is in the current conversation or in the messages a
    // `Compacted` event replaced.
    let mut kept: Vec<Message> = s.store.load_conversation(s.agent.id).await.unwrap();
    for e in &compactions {
        if let Event::Compacted { replaced, messages_replaced, .. } = e {
            assert_eq!(replaced.len(), *messages_replaced as usize);
            kept.extend(replaced.iter().cloned());
        }
    }
    let all: Vec<&str> = kept.iter().flat_map(texts).collect();
    for i in 0..TURNS {
        assert!(all.contains(&prompt(i).as_str()), "prompt {i} is kept somewhere");
        assert!(all.contains(&answer(i).as_str()), "answer {i} is kept somewhere");
    }
    // The agent shows the context its last call used, and its window.
    let agent = s.store.get_agent(s.agent.id).await.unwrap().unwrap();
    assert!(agent.context_used > 0 && agent.context_used <= THRESHOLD, "{}", agent.context_used);
    assert_eq!(agent.context_window, Some(WINDOW));
}

#[tokio::test]
async fn compact_on_demand_summarizes_with_the_given_instructions() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = setup(model(seen.clone()), HookRegistry::new()).await;
    for i in 0..3 {
        s.supervisor.run(&s.agent, prompt(i), RunOptions::default()).await.unwrap();
    }
    let out = s.supervisor.run(&s.agent, "/compact keep the API notes".into(), RunOptions::default()).await.unwrap();
    assert_eq!(out.stop_reason, "compacted");
    assert_eq!(out.final_text.as_deref(), Some("SUMMARY: the user sent numbered prompts; each was answered."));
    let requests = seen.lock().unwrap().clone();
    let summary = requests.iter().find(|r| is_summary_request(r)).expect("a summary request");
    assert!(last_text(summary).contains("- keep the API notes"));
    assert!(last_text(summary).contains(&prompt(0)), "the oldest prompt is summarized");
    let conversation = s.store.load_conversation(s.agent.id).await.unwrap();
    assert!(texts(&conversation[0]).join("").starts_with(SUMMARY_HEAD));
    assert_eq!(texts(conversation.last().unwrap()), vec![answer(2).as_str()], "the last answer is kept");
    let evs = events(&s.store).await;
    let trigger = evs.iter().find_map(|r| match &r.event {
        Event::Compacted { trigger, .. } => Some(*trigger),
        _ => None,
    });
    assert_eq!(trigger, Some(orch_core::wire::CompactTrigger::Manual));
    // The agent goes on from the summary.
    let out = s.supervisor.run(&s.agent, prompt(3), RunOptions::default()).await.unwrap();
    assert_eq!(out.final_text, Some(answer(3)));
}

#[tokio::test]
async fn a_pre_compact_hook_can_veto_a_compaction() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut hooks = HookRegistry::new();
    hooks
        .register(
            HookEvent::PreCompact,
            None,
            FnHook::new("keep-all", |_| HookDecision::Deny { reason: "audit needs every message".into() }),
        )
        .unwrap();
    let s = setup(model(seen.clone()), hooks).await;
    for i in 0..2 {
        s.supervisor.run(&s.agent, prompt(i), RunOptions::default()).await.unwrap();
    }
    let before = s.store.load_conversation(s.agent.id).await.unwrap();
    let out = s.supervisor.run(&s.agent, "/compact".into(), RunOptions::default()).await.unwrap();
    assert_eq!(out.stop_reason, "hook: audit needs every message");
    assert_eq!(s.store.load_conversation(s.agent.id).await.unwrap(), before, "the conversation is untouched");
    assert!(!seen.lock().unwrap().iter().any(is_summary_request), "no summary was asked for");
}

#[tokio::test]
async fn a_crash_while_the_summary_is_written_leaves_the_conversation_and_the_next_command_works() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let crash = Arc::new(AtomicBool::new(false));
    let (seen2, crash2) = (seen.clone(), crash.clone());
    let dying = ScriptedModel::from_fn(move |req: &ModelRequest| {
        if crash2.load(Ordering::SeqCst) && is_summary_request(req) {
            panic!("the process dies while the summary is written");
        }
        Ok(reply(&seen2, req))
    });
    let s = setup(dying, HookRegistry::new()).await;
    for i in 0..3 {
        s.supervisor.run(&s.agent, prompt(i), RunOptions::default()).await.unwrap();
    }
    let before = s.store.load_conversation(s.agent.id).await.unwrap();
    crash.store(true, Ordering::SeqCst);
    let (supervisor, agent) = (s.supervisor.clone(), s.agent.clone());
    let died =
        tokio::spawn(async move { supervisor.run(&agent, "/compact".into(), RunOptions::default()).await }).await;
    assert!(died.is_err(), "the run died with the process");
    assert_eq!(s.store.load_conversation(s.agent.id).await.unwrap(), before, "the old conversation is intact");
    assert!(!events(&s.store).await.iter().any(|r| matches!(r.event, Event::Compacted { .. })));

    // The next command, as from a restarted process, works.
    crash.store(false, Ordering::SeqCst);
    let out = s.supervisor.run(&s.agent, prompt(3), RunOptions::default()).await.unwrap();
    assert_eq!(out.final_text, Some(answer(3)));
}
