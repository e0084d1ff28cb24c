//! Tests of the optional model summariser: which events get summaries, what the model is asked,
//! failures, timeouts and stopping.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use orch_core::model::scripted::{ScriptReply, ScriptedModel};
use orch_core::model::{DeltaStream, ModelError, ModelProvider, ModelRequest};
use orch_core::orchestrator::summary::{AGENT_NAME, MAX_SUMMARY_CHARS, MAX_TOKENS, Summarizer, SummarizerHandle};
use orch_core::runtime::{Runtime, TokioRuntime};
use orch_core::store::{EventQuery, MemoryStore, Store};
use orch_core::wire::{Event, EventKeys, EventRecord, NewEvent, Usage, new_id};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(5);

fn keys() -> EventKeys {
    EventKeys {
        agent_id: Some(new_id()),
        orchestrator_id: Some(new_id()),
        step: Some("build".into()),
        task_slug: Some("run-1".into()),
        ..EventKeys::default()
    }
}

fn text(t: &str) -> Event {
    Event::Text { text: t.into() }
}

fn write_call(path: &str) -> Event {
    Event::PreToolUse {
        tool_name: "Write".into(),
        tool_input: json!({"file_path": path, "content": "fn main() {}"}),
        tool_use_id: "call_0".into(),
    }
}

fn costs() -> Event {
    Event::AgentCostsUpdated {
        model: "scripted".into(),
        usage: Usage::default(),
        cost_usd: 0.01,
        total_usage: Usage::default(),
        total_cost_usd: 0.01,
        context_used: None,
        context_window: None,
    }
}

struct Setup {
    store: Arc<dyn Store>,
    runtime: Arc<dyn Runtime>,
}

impl Setup {
    fn new() -> Self {
        Self { store: Arc::new(MemoryStore::new()), runtime: Arc::new(TokioRuntime) }
    }

    fn follow(&self, model: impl ModelProvider, timeout: Duration) -> SummarizerHandle {
        let summarizer = Summarizer::new(Arc::new(model), "tiny-model").with_timeout(timeout);
        Arc::new(summarizer).follow(self.store.clone(), self.runtime.clone(), 0)
    }

    async fn append(&self, keys: &EventKeys, events: Vec<Event>) -> Vec<EventRecord> {
        let events = events.into_iter().map(|e| NewEvent::new(keys.clone(), e)).collect();
        self.store.append(events).await.unwrap()
    }

    async fn drain(&self, handle: &SummarizerHandle, until: u64) -> bool {
        handle.drain(until, WAIT, self.runtime.as_ref()).await
    }

    /// `(target_seq, summary, keys)` of every summary in the log.
    async fn summaries(&self) -> Vec<(u64, String, EventKeys)> {
        let records = self.store.read_events(&EventQuery::after(0)).await.unwrap();
        records
            .into_iter()
            .filter_map(|r| match r.event {
                Event::SummaryUpdated { target_seq, summary } => Some((target_seq, summary, r.keys)),
                _ => None,
            })
            .collect()
    }
}

fn scripted(json: &str) -> ScriptedModel {
    ScriptedModel::from_json_str(json).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wanted_events_get_summaries_with_their_keys() {
    let s = Setup::new();
    let long = "x".repeat(300);
    let model = scripted(&format!(
        r#"{{"steps": [
            {{"agent": "^summarizer$", "when": "Event Type: Text\n", "repeat": true,
              "reply": [{{"type": "text", "text": "  \"Agent greets the user.\"\n"}}]}},
            {{"agent": "^summarizer$", "when": "Event Type: PreToolUse\n", "repeat": true,
              "reply": [{{"type": "text", "text": "{long}"}}]}},
            {{"agent": "^summarizer$", "repeat": true, "reply": [{{"type": "text", "text": "Something else."}}]}}
        ]}}"#
    ));
    let (a, b) = (keys(), keys());
    let text_rec = s.append(&a, vec![text("Hello there!")]).await;
    let rest = s.append(&b, vec![write_call("src/main.rs"), costs()]).await;
    let (tool_rec, cost_rec) = (&rest[0], &rest[1]);

    let handle = s.follow(model, WAIT);
    assert!(s.drain(&handle, cost_rec.seq).await, "drain reaches the last event");
    assert!(handle.processed_seq() >= cost_rec.seq);

    let mut got = s.summaries().await;
    got.sort_by_key(|(seq, _, _)| *seq);
    assert_eq!(got.len(), 2, "one summary per wanted event, none for costs: {got:?}");
    assert_eq!(got[0].0, text_rec[0].seq);
    assert_eq!(got[0].1, "Agent greets the user.", "trimmed and unquoted");
    assert_eq!(got[0].2, a, "keys copied from the summarised event");
    assert_eq!(got[1].0, tool_rec.seq);
    assert_eq!(got[1].1.chars().count(), MAX_SUMMARY_CHARS, "long replies are clipped");
    assert!(got[1].1.starts_with("xxxx"));
    assert_eq!(got[1].2, b);
    assert!(got.iter().all(|(seq, _, _)| *seq != cost_rec.seq));

    // Its own summary events are read back and skipped, not summarised.
    let last = s.store.last_seq().await.unwrap();
    assert!(s.drain(&handle, last).await);
    assert_eq!(s.summaries().await.len(), 2);

    // Later events are summarised too.
    let later = s.append(&a, vec![text("More text")]).await;
    assert!(s.drain(&handle, later[0].seq).await);
    let got = s.summaries().await;
    assert_eq!(got.len(), 3);
    assert!(got.iter().any(|(seq, summary, _)| *seq == later[0].seq && summary == "Agent greets the user."));
    handle.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_carries_the_event_type_and_details() {
    let s = Setup::new();
    let model = scripted(
        r#"{"steps": [
            {"agent": "^summarizer$", "when": "(?s)Event Type: PreToolUse\n.*Tool: Write\n.*\"file_path\":\"src/lib\\.rs\"",
             "reply": [{"type": "text", "text": "Writes src/lib.rs"}]},
            {"agent": "^summarizer$", "when": "(?s)Event Type: PostToolUse\n.*Tool: Bash\n.*failed.*exit status 2",
             "reply": [{"type": "text", "text": "Bash failed"}]},
            {"agent": "^summarizer$", "when": "(?s)Event Type: Text\nContent: a{499}…$",
             "reply": [{"type": "text", "text": "Long text clipped"}]},
            {"repeat": true, "reply": [{"type": "text", "text": "fallback"}]}
        ]}"#,
    );
    let k = keys();
    let post = Event::PostToolUse {
        tool_name: "Bash".into(),
        result: Some("make: exit status 2".into()),
        is_error: true,
        tool_use_id: "call_1".into(),
    };
    let recs = s.append(&k, vec![write_call("src/lib.rs"), post, text(&"a".repeat(2000))]).await;
    let handle = s.follow(model, WAIT);
    assert!(s.drain(&handle, recs[2].seq).await);
    handle.stop();

    let mut got: Vec<_> = s.summaries().await.into_iter().map(|(seq, summary, _)| (seq, summary)).collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            (recs[0].seq, "Writes src/lib.rs".to_owned()),
            (recs[1].seq, "Bash failed".to_owned()),
            (recs[2].seq, "Long text clipped".to_owned()),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_is_one_small_call_without_tools() {
    let s = Setup::new();
    let seen: Arc<Mutex<Vec<ModelRequest>>> = Arc::default();
    let log = seen.clone();
    let model = ScriptedModel::from_fn(move |request| {
        log.lock().unwrap().push(request.clone());
        Ok(ScriptReply::text("ok"))
    });
    let recs = s.append(&keys(), vec![text("hi")]).await;
    let handle = s.follow(model, WAIT);
    assert!(s.drain(&handle, recs[0].seq).await);
    handle.stop();

    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    let r = &seen[0];
    assert_eq!(r.agent_name, AGENT_NAME);
    assert_eq!(r.agent_name, "summarizer");
    assert_eq!(r.model, "tiny-model");
    assert!(r.tools.is_empty());
    assert!(r.thinking.is_none());
    assert_eq!(r.max_tokens, MAX_TOKENS);
    assert!(r.max_tokens <= 200);
    assert!(r.system.as_deref().is_some_and(|p| p.contains("one plain sentence")));
    assert_eq!(r.messages.len(), 1);
    let prompt = r.messages[0].last_text().unwrap();
    assert!(prompt.contains("Event Type: Text\nContent: hi"), "{prompt}");
    assert!(prompt.contains("50 to 100 characters"), "{prompt}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_failures_leave_no_summary_and_the_task_goes_on() {
    // A closure model: errors on "boom", answers nothing usable on "blank", answers otherwise.
    let s = Setup::new();
    let model = ScriptedModel::from_fn(|request| {
        let last = request.messages.last().and_then(|m| m.last_text()).unwrap_or("");
        if last.contains("boom") {
            Err(ModelError::Overloaded { message: "try later".into() })
        } else if last.contains("blank") {
            Ok(ScriptReply::text("  \"\" \n"))
        } else {
            Ok(ScriptReply::text("Fine."))
        }
    });
    let recs = s.append(&keys(), vec![text("boom"), text("blank"), text("fine")]).await;
    let handle = s.follow(model, WAIT);
    assert!(s.drain(&handle, recs[2].seq).await);
    let got = s.summaries().await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!((got[0].0, got[0].1.as_str()), (recs[2].seq, "Fine."));
    assert!(!handle.is_finished());
    handle.stop();

    // A script with no matching step: every call fails, nothing is appended, drain still gets there.
    let s = Setup::new();
    let model = scripted(r#"{"steps": [{"agent": "^someone-else$", "reply": [{"type": "text", "text": "no"}]}]}"#);
    let handle = s.follow(model, WAIT);
    let first = s.append(&keys(), vec![write_call("a.rs")]).await;
    assert!(s.drain(&handle, first[0].seq).await);
    let later = s.append(&keys(), vec![text("again"), costs(), text("and again")]).await;
    assert!(s.drain(&handle, later[2].seq).await);
    assert!(s.summaries().await.is_empty());
    assert_eq!(s.store.last_seq().await.unwrap(), later[2].seq, "nothing was appended");
    handle.stop();
}

/// Never answers calls whose prompt mentions "hang"; answers "Quick." otherwise.
struct Hanging;

#[async_trait]
impl ModelProvider for Hanging {
    fn name(&self) -> &str {
        "hanging"
    }

    async fn stream(&self, request: ModelRequest) -> Result<DeltaStream, ModelError> {
        let last = request.messages.last().and_then(|m| m.last_text()).unwrap_or("").to_owned();
        if last.contains("hang") {
            futures::future::pending::<()>().await;
        }
        ScriptedModel::from_fn(|_| Ok(ScriptReply::text("Quick."))).stream(request).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_that_times_out_is_skipped() {
    let s = Setup::new();
    let recs = s.append(&keys(), vec![text("hang"), text("go")]).await;
    let handle = s.follow(Hanging, Duration::from_millis(100));
    assert!(s.drain(&handle, recs[1].seq).await, "the hung call was given up on");
    let got = s.summaries().await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!((got[0].0, got[0].1.as_str()), (recs[1].seq, "Quick."));
    handle.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_ends_the_task() {
    let s = Setup::new();
    let model = scripted(
        r#"{"steps": [{"agent": "^summarizer$", "repeat": true, "reply": [{"type": "text", "text": "Said something."}]}]}"#,
    );
    let handle = s.follow(model, WAIT);
    let before = s.append(&keys(), vec![text("one")]).await;
    assert!(s.drain(&handle, before[0].seq).await);
    assert_eq!(s.summaries().await.len(), 1);

    handle.stop();
    for _ in 0..100 {
        if handle.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(handle.is_finished(), "the task ended");
    let after = s.append(&keys(), vec![text("two"), text("three")]).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let got = s.summaries().await;
    assert_eq!(got.len(), 1, "nothing summarised after stop: {got:?}");
    assert!(handle.processed_seq() < after[0].seq);
    assert!(!s.drain(&handle, after[1].seq).await, "drain gives up at once on an ended task");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_interrupts_a_pending_call() {
    let s = Setup::new();
    let recs = s.append(&keys(), vec![text("hang")]).await;
    let handle = s.follow(Hanging, Duration::from_secs(60));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!handle.is_finished());
    handle.stop();
    for _ in 0..100 {
        if handle.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(handle.is_finished(), "stop does not wait for the model");
    assert!(handle.processed_seq() < recs[0].seq);
    assert!(s.summaries().await.is_empty());
}

#[test]
fn wants_only_interesting_events() {
    assert!(Summarizer::wants(&text("x")));
    assert!(Summarizer::wants(&write_call("a")));
    assert!(Summarizer::wants(&Event::Stop { reason: "end_turn".into(), num_turns: 1, duration_ms: 5 }));
    assert!(Summarizer::wants(&Event::UserPromptSubmit { prompt: "p".into(), prompt_length: 1 }));
    assert!(!Summarizer::wants(&costs()));
    assert!(!Summarizer::wants(&Event::SummaryUpdated { target_seq: 1, summary: "s".into() }));
    assert!(!Summarizer::wants(&Event::ModelRetry { model: "m".into(), attempt: 1, wait_ms: 1, error: "e".into() }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_are_cleaned_up() {
    let s = Setup::new();
    let model = ScriptedModel::from_fn(|request| {
        let last = request.messages.last().and_then(|m| m.last_text()).unwrap_or("");
        let reply = match last.rsplit("Content: ").next().unwrap_or("") {
            "curly" => "“ 'Nested quotes go.' ”".to_owned(),
            "lines" => "Two\n  lines\tjoined.".to_owned(),
            "apostrophe" => "The agents' work isn't quoted'".to_owned(),
            "unicode" => "é".repeat(500),
            other => panic!("unexpected prompt ending {other:?}"),
        };
        Ok(ScriptReply::text(reply))
    });
    let recs = s.append(&keys(), vec![text("curly"), text("lines"), text("apostrophe"), text("unicode")]).await;
    let handle = s.follow(model, WAIT);
    assert!(s.drain(&handle, recs[3].seq).await);
    handle.stop();
    let mut got: Vec<_> = s.summaries().await.into_iter().map(|(seq, summary, _)| (seq, summary)).collect();
    got.sort();
    let clipped = format!("{}…", "é".repeat(MAX_SUMMARY_CHARS - 1));
    assert_eq!(
        got,
        vec![
            (recs[0].seq, "Nested quotes go.".to_owned()),
            (recs[1].seq, "Two lines joined.".to_owned()),
            (recs[2].seq, "The agents' work isn't quoted'".to_owned()),
            (recs[3].seq, clipped),
        ]
    );
}
