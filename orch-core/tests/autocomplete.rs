//! The autocomplete expert over a model: suggestions from its reply, what the prompt tells it, and a
//! query interrupted by the next one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use orch_core::model::scripted::ScriptedModel;
use orch_core::model::{DeltaStream, ModelError, ModelProvider, ModelRequest};
use orch_core::orchestrator::autocomplete::{Autocompleter, Context, Feedback};

/// A script that suggests continuing with the agent it was told about, and remembers the last prompt.
fn script() -> ScriptedModel {
    ScriptedModel::from_json_str(
        r#"{"steps": [{"agent": "^autocomplete$", "repeat": true,
            "when": "user input: (.*)$",
            "reply": [{"type": "text", "text": "```json\n{\"autocompletes\": [{\"completion\": \" to alice\", \"reasoning\": \"$1 names an agent\"}]}\n```"}]}]}"#,
    )
    .unwrap()
}

/// Holds its first call for 30 s (or until dropped), then answers as `inner` does; records prompts.
struct SlowFirst {
    inner: ScriptedModel,
    first: AtomicBool,
    systems: std::sync::Mutex<Vec<String>>,
}

#[async_trait]
impl ModelProvider for SlowFirst {
    fn name(&self) -> &str {
        "scripted"
    }
    async fn stream(&self, req: ModelRequest) -> Result<DeltaStream, ModelError> {
        self.systems.lock().unwrap().push(req.system.clone().unwrap_or_default());
        if self.first.swap(false, Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
        self.inner.stream(req).await
    }
}

#[tokio::test]
async fn a_new_query_interrupts_the_running_one_and_the_prompt_names_what_is_there() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("src")).unwrap();
    std::fs::write(dir.path().join("src/parser.rs"), "").unwrap();
    std::fs::create_dir_all(dir.path().join(".git")).unwrap();
    std::fs::write(dir.path().join(".git/HEAD"), "").unwrap();
    let model = Arc::new(SlowFirst { inner: script(), first: AtomicBool::new(true), systems: Default::default() });
    let expert = Arc::new(Autocompleter::new(model.clone(), "fast", dir.path()));
    expert
        .remember(
            "o1",
            Feedback::Autocomplete {
                user_input_before_completion: "ask bo".into(),
                autocomplete_item: "b to review".into(),
                reasoning: "bob reviews".into(),
            },
        )
        .unwrap();
    let context = Context {
        agents: vec!["alice".into(), "bob".into()],
        commands: vec!["/git:commit".into()],
        templates: vec!["reviewer".into()],
    };

    let first = {
        let (expert, context) = (expert.clone(), context.clone());
        tokio::spawn(async move { expert.suggest("o1", "command", &context).await })
    };
    while model.systems.lock().unwrap().is_empty() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let start = Instant::now();
    let second = expert.suggest("o1", "command al", &context).await.unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].completion, " to alice");
    assert_eq!(second[0].reasoning, "command al names an agent");
    let first = tokio::time::timeout(Duration::from_secs(10), first).await.expect("interrupted at once").unwrap();
    assert_eq!(first.unwrap(), Vec::new(), "the interrupted query gives nothing");
    assert!(start.elapsed() < Duration::from_secs(25), "the second query did not wait for the first");

    let system = model.systems.lock().unwrap()[1].clone();
    for part in ["alice, bob", "/git:commit", "reviewer", "src/parser.rs", "b to review"] {
        assert!(system.contains(part), "the prompt lacks {part}: {system}");
    }
    assert!(!system.contains(".git/HEAD"), "hidden directories are not listed: {system}");
}

#[tokio::test]
async fn a_failed_call_is_an_error_and_a_blank_input_asks_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // No step matches: the scripted model fails the call.
    let model = Arc::new(
        ScriptedModel::from_json_str(r#"{"steps": [{"agent": "^nobody$", "reply": [{"type": "text", "text": "x"}]}]}"#)
            .unwrap(),
    );
    let expert = Autocompleter::new(model.clone(), "fast", dir.path());
    assert!(expert.suggest("o1", "hello", &Context::default()).await.is_err());
    assert_eq!(expert.suggest("o1", "   ", &Context::default()).await.unwrap(), Vec::new());
    assert_eq!(model.calls(), 0);
}
