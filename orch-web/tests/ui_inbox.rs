//! The dashboard's inbox in a real headless Chromium: two agents whose `Write` waits for a person (a
//! `.claude/settings.json` ask rule) both appear in the inbox; selecting them all and approving them in
//! one batch lets both runs go on and write their files.
//!
//! Ignored by a plain `cargo test` like the other browser tests; `scripts/test.sh` runs it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod browser;
mod support;

use std::time::Duration;

use browser::{Browser, can_run, post_json, serve};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium, chromedriver and the built dashboard (scripts/build-ui.sh); scripts/test.sh runs it"]
async fn two_waiting_agents_are_approved_in_one_batch_from_the_inbox() {
    if !can_run() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(".claude")).unwrap();
    std::fs::write(dir.path().join(".claude/settings.json"), r#"{"permissions": {"ask": ["Write"]}}"#).unwrap();
    let (_server, base) = serve(dir.path(), 0);
    let browser = Browser::start().await;
    browser.goto(&format!("{base}/")).await;
    browser
        .until(
            "the page to connect",
            Duration::from_secs(30),
            "return document.querySelector('[data-testid=conn]')?.textContent.includes('Connected')",
        )
        .await;
    // The demo's scripted model has agents named plan-… write specs/plan.md, every time.
    for name in ["plan-alice", "plan-bob"] {
        post_json(&base, "/api/agents", json!({"name": name, "system_prompt": "You plan."})).await;
        post_json(&base, &format!("/api/agents/{name}/command"), json!({"prompt": "Write the plan."})).await;
    }
    browser
        .until(
            "two items in the inbox badge",
            Duration::from_secs(30),
            "return document.querySelector('[data-testid=badge-INBOX]')?.textContent === '2'",
        )
        .await;
    browser
        .js("Array.from(document.querySelectorAll('.tabs .tab')).find(t => t.textContent.startsWith('INBOX')).click()")
        .await;
    browser
        .until(
            "both approvals listed",
            Duration::from_secs(10),
            "return document.querySelectorAll('[data-testid=inbox] .item[data-kind=APPROVAL] input.pick').length === 2",
        )
        .await;
    browser.js("document.querySelector('[data-testid=batch] input[type=checkbox]').click()").await;
    browser
        .until(
            "both selected",
            Duration::from_secs(5),
            "return document.querySelector('[data-testid=selected]')?.textContent === '2 selected'",
        )
        .await;
    browser.screenshot("dashboard-inbox-batch-1280.png").await;
    browser
        .js("Array.from(document.querySelectorAll('[data-testid=batch] button')).find(b => b.textContent === 'Approve / retry').click()")
        .await;
    browser
        .until(
            "the inbox to empty",
            Duration::from_secs(30),
            "return document.querySelector('[data-testid=inbox]')?.textContent.includes('Nothing is waiting for you')",
        )
        .await;
    // Both runs went on: each agent's approval was resolved as approved, and the plan is written.
    let v: Value =
        reqwest::get(format!("{base}/api/events?type=ApprovalResolved")).await.unwrap().json().await.unwrap();
    let decisions: Vec<&str> = v["events"].as_array().unwrap().iter().filter_map(|e| e["decision"].as_str()).collect();
    assert_eq!(decisions, ["approve", "approve"], "{v}");
    assert!(dir.path().join("specs/plan.md").is_file(), "the approved Write ran");
    let errors = browser.console_errors().await;
    assert!(errors.is_empty(), "console errors: {errors:?}");
}
