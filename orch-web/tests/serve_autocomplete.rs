//! The command input's suggestions through `orch serve`: the seed's `/autocomplete-generate` and
//! `/autocomplete-update` with its frames, orch's `/api/autocomplete`, and what the expert remembers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::{Value, json};
use support::server::{self, connect, frames_until, get, post};
use support::{script, scripted};

fn demo() -> String {
    format!("scripted:{}", script("orchestrator.json").display())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suggestions_come_from_the_model_and_accepted_ones_are_remembered() {
    let dir = tempfile::tempdir().unwrap();
    let server = server::start(dir.path(), &demo(), &[], &[]);
    let base = server.base.as_str();
    let (_, o) = get(base, "/get_orchestrator").await;
    let id = o["orchestrator"]["id"].as_str().unwrap().to_string();
    let mut ws = connect(base, "").await;

    let (s, a) =
        post(base, "/autocomplete-generate", &json!({"user_input": "create an agent", "orchestrator_agent_id": id}))
            .await;
    assert_eq!((s, a["status"].as_str(), a["total_items"].as_u64()), (200, Some("success"), Some(3)), "{a}");
    assert_eq!(a["autocompletes"][0]["completion"], " and have them write tests", "{a}");
    assert!(a["autocompletes"][0]["reasoning"].is_string());
    let frames = frames_until(&mut ws, |f| f["type"] == "autocomplete_completed").await;
    let started = frames.iter().find(|f| f["type"] == "autocomplete_started").expect("autocomplete_started first");
    assert_eq!((started["user_input"].as_str(), started["timestamp"].is_f64()), (Some("create an agent"), true));

    // Another orchestrator's id: the seed's error answer, still 200.
    let (s, e) = post(
        base,
        "/autocomplete-generate",
        &json!({"user_input": "x", "orchestrator_agent_id": "00000000-0000-4000-8000-000000000000"}),
    )
    .await;
    assert_eq!((s, e["status"].as_str(), e["autocompletes"].clone()), (200, Some("error"), json!([])), "{e}");

    let accepted = json!({"orchestrator_agent_id": id, "completion_type": "autocomplete",
        "user_input_before_completion": "create an agent", "autocomplete_item": " and have them write tests",
        "reasoning": "agents that write code usually test it next"});
    let (s, _) = post(base, "/autocomplete-update", &accepted).await;
    assert_eq!(s, 200);
    let (s, _) = post(
        base,
        "/autocomplete-update",
        &json!({"orchestrator_agent_id": id, "completion_type": "none", "user_input_on_enter": "list agents"}),
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) =
        post(base, "/autocomplete-update", &json!({"orchestrator_agent_id": id, "completion_type": "autocomplete"}))
            .await;
    assert_eq!(s, 422, "an accepted item needs its fields");
    let text = std::fs::read_to_string(dir.path().join(".orch/autocomplete/expertise.yaml")).unwrap();
    let expertise: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(expertise["orchestrator_agent_id"], id.as_str());
    let history = expertise["previous_completions"].as_array().unwrap();
    assert_eq!(history.len(), 2, "{expertise}");
    assert_eq!(
        (history[0]["order"].as_u64(), history[0]["autocomplete_item"].as_str()),
        (Some(1), Some(" and have them write tests"))
    );
    assert_eq!(history[1]["user_input_on_enter"], "list agents");

    // orch's own route, and its feedback route.
    let (s, a) = post(base, "/api/autocomplete", &json!({"input": "create"})).await;
    assert_eq!((s, a["suggestions"].as_array().map(Vec::len)), (200, Some(3)), "{a}");
    let (s, _) =
        post(base, "/api/autocomplete/feedback", &json!({"completion_type": "none", "user_input_on_enter": "x"})).await;
    assert_eq!(s, 200);
    let (s, e) = post(base, "/api/autocomplete/feedback", &json!({"completion_type": "maybe"})).await;
    assert_eq!(s, 422, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_without_an_answer_gives_no_suggestions_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    // The model answers the orchestrator only: the autocomplete call fails.
    let model = scripted(
        dir.path(),
        "model.json",
        &json!({"steps": [{"agent": "^orchestrator$", "repeat": true, "reply": [{"type": "text", "text": "hi"}]}]}),
    );
    let server = server::start(dir.path(), &model, &[], &[]);
    let (_, o) = get(&server.base, "/get_orchestrator").await;
    let id = o["orchestrator"]["id"].as_str().unwrap();
    let (s, a) =
        post(&server.base, "/autocomplete-generate", &json!({"user_input": "create", "orchestrator_agent_id": id}))
            .await;
    assert_eq!((s, a["status"].as_str(), a["autocompletes"].clone()), (200, Some("success"), json!([])), "{a}");
}
