//! The store conformance suite: one contract, run unchanged against every [`Store`] implementation.
//!
//! Use it through the [`store_conformance_tests!`](crate::store_conformance_tests) macro, which expands to
//! one `#[test]` per check, so a failure names the broken behaviour:
//!
//! ```text
//! // tests/conformance.rs of a store crate (dev-dependency: orch-core with feature `testkit`)
//! use std::sync::Arc;
//!
//! mod memory {
//!     orch_core::store_conformance_tests!(|| async { std::sync::Arc::new(orch_core::store::MemoryStore::new()) });
//! }
//!
//! mod file {
//!     // A fixture may be `(Arc<S>, guard)`: the guard (here the temporary directory) lives until the
//!     // check has finished.
//!     orch_core::store_conformance_tests!(|| async {
//!         let dir = tempfile::tempdir().unwrap();
//!         let store = my_store::open(dir.path().join("db")).unwrap();
//!         (std::sync::Arc::new(store), dir)
//!     });
//! }
//! ```
//!
//! The factory is called once per check and must return a **fresh, empty** store (checks assert that the
//! first `seq` is 1). Each check runs on its own multi-threaded tokio runtime under an overall time limit,
//! and every wait on a subscription has its own timeout, so no check can hang.
//!
//! Conventions the suite relies on (and stores must honour):
//! - entities read back equal (`==`) to what was written; fixture timestamps have microsecond precision, so
//!   a store must keep at least microseconds;
//! - an [`EventRecord`] returned by [`Store::append`] equals the one later returned by
//!   [`Store::read_events`] and [`Store::subscribe`];
//! - events serialize byte-identically after a round trip through the store.
//!
//! The checks are plain `async fn(Arc<dyn Store>)` in [`checks`]; [`CHECKS`] lists their names.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::Store;
pub use super::writes::Writes;
use crate::wire::{
    Agent, AgentStatus, ChatMessage, Event, EventKeys, EventRecord, Id, LogLevel, Orchestrator, Participant, Prompt,
    PromptAuthor, SystemLog, Timestamp, Usage, WorkflowRecord, WorkflowStatus,
};

/// How long one check may take in all.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a check waits for one expected event on a subscription.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

/// What a store factory returns: a store, possibly with a guard that must outlive the check (a temporary
/// directory, a database schema to drop…).
pub trait StoreFixture: Send + 'static {
    /// The store under test.
    fn store(&self) -> Arc<dyn Store>;
}

impl<S: Store> StoreFixture for Arc<S> {
    fn store(&self) -> Arc<dyn Store> {
        self.clone()
    }
}

impl StoreFixture for Arc<dyn Store> {
    fn store(&self) -> Arc<dyn Store> {
        self.clone()
    }
}

impl<S: Store, G: Send + 'static> StoreFixture for (Arc<S>, G) {
    fn store(&self) -> Arc<dyn Store> {
        self.0.clone()
    }
}

impl<G: Send + 'static> StoreFixture for (Arc<dyn Store>, G) {
    fn store(&self) -> Arc<dyn Store> {
        self.0.clone()
    }
}

/// Runs one check: builds a multi-threaded tokio runtime, makes a fresh store, runs the check under
/// [`CHECK_TIMEOUT`], then drops the fixture. Used by [`store_conformance_tests!`](crate::store_conformance_tests).
pub fn run_check<M, MF, T, C, CF>(name: &str, make: M, check: C)
where
    M: FnOnce() -> MF,
    MF: Future<Output = T>,
    T: StoreFixture,
    C: FnOnce(Arc<dyn Store>) -> CF,
    CF: Future<Output = ()>,
{
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("cannot build a tokio runtime for the conformance check");
    rt.block_on(async move {
        let fixture = make().await;
        let store = fixture.store();
        if tokio::time::timeout(CHECK_TIMEOUT, check(store)).await.is_err() {
            panic!("conformance check `{name}` did not finish within {CHECK_TIMEOUT:?}");
        }
        drop(fixture);
    });
}

/// Expands to one `#[test]` per conformance check, each running against a fresh store from `$make`.
///
/// `$make` is an expression evaluating to a closure `|| async { ... }` (or an async closure) that returns a
/// fresh, empty store as `Arc<S>` (`S: Store`), `Arc<dyn Store>`, or `(Arc<S>, guard)` where `guard`
/// (e.g. a `tempfile::TempDir`) is dropped after the check. The tests are plain `#[test]` functions (each
/// builds its own tokio runtime), so the calling crate needs no tokio macros. Invoke it once per module:
/// the generated functions are named after the checks (see [`store::testkit::CHECKS`](crate::store::testkit::CHECKS)).
///
/// ```no_run
/// mod memory {
///     orch_core::store_conformance_tests!(|| async { std::sync::Arc::new(orch_core::store::MemoryStore::new()) });
/// }
/// ```
///
/// Attributes written before `$make`, ended by `;`, are put on every generated check, e.g. for a store
/// that needs a server:
///
/// ```no_run
/// mod server {
///     orch_core::store_conformance_tests!(
///         #[ignore = "needs the server"];
///         || async { std::sync::Arc::new(orch_core::store::MemoryStore::new()) }
///     );
/// }
/// ```
///
/// Requires the `testkit` feature of `orch-core`.
#[macro_export]
macro_rules! store_conformance_tests {
    ($(#[$attr:meta])+ ; $make:expr $(,)?) => {
        $crate::__store_conformance_tests! { @all { $(#[$attr])+ } $make }
    };
    ($make:expr $(,)?) => {
        $crate::__store_conformance_tests! { @all {} $make }
    };
}

/// Implementation detail of [`store_conformance_tests!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __store_conformance_tests {
    (@all $attrs:tt $make:expr) => {
        $crate::__store_conformance_tests! { $attrs $make;
            orchestrator_crud,
            orchestrator_status_and_usage_are_its_agents,
            agent_create_get_find_list,
            agent_name_unique_among_live_agents,
            agent_status_returns_previous,
            agent_state_round_trips,
            agent_usage_is_atomic,
            agent_metadata_and_archive,
            missing_entities_are_not_found,
            prompts_oldest_first,
            chat_latest_oldest_first,
            system_logs_filters_and_paging,
            workflows_upsert_get_list,
            append_seq_starts_at_one_and_is_gap_free,
            every_event_variant_round_trips,
            event_keys_round_trip,
            read_events_filters,
            read_events_paging,
            concurrent_appends_are_gap_free,
            subscribe_replays_then_live,
            subscribe_from_last_yields_only_new,
            subscribe_with_concurrent_appenders,
            commit_step_is_atomic,
            conversation_load_and_clear,
            status_counts_events,
            prune_removes_only_old_events_of_archived_agents,
        }
    };
    ($attrs:tt $make:expr; $($check:ident),* $(,)?) => {
        $(
            $crate::__store_conformance_test! { $attrs $make; $check }
        )*
        /// Keeps [`CHECKS`] and the macro in step.
        #[test]
        fn conformance_suite_is_complete() {
            let generated: &[&str] = &[$(stringify!($check)),*];
            assert_eq!(generated, $crate::store::testkit::CHECKS, "store_conformance_tests! is out of date");
        }
    };
}

/// Implementation detail of [`store_conformance_tests!`]: one check, with its attributes.
#[doc(hidden)]
#[macro_export]
macro_rules! __store_conformance_test {
    ({ $(#[$attr:meta])* } $make:expr; $check:ident) => {
        $(#[$attr])*
        #[test]
        fn $check() {
            $crate::store::testkit::run_check(stringify!($check), $make, $crate::store::testkit::checks::$check);
        }
    };
}

/// The names of all checks, in the order the macro generates them.
pub const CHECKS: &[&str] = &[
    "orchestrator_crud",
    "orchestrator_status_and_usage_are_its_agents",
    "agent_create_get_find_list",
    "agent_name_unique_among_live_agents",
    "agent_status_returns_previous",
    "agent_state_round_trips",
    "agent_usage_is_atomic",
    "agent_metadata_and_archive",
    "missing_entities_are_not_found",
    "prompts_oldest_first",
    "chat_latest_oldest_first",
    "system_logs_filters_and_paging",
    "workflows_upsert_get_list",
    "append_seq_starts_at_one_and_is_gap_free",
    "every_event_variant_round_trips",
    "event_keys_round_trip",
    "read_events_filters",
    "read_events_paging",
    "concurrent_appends_are_gap_free",
    "subscribe_replays_then_live",
    "subscribe_from_last_yields_only_new",
    "subscribe_with_concurrent_appenders",
    "commit_step_is_atomic",
    "conversation_load_and_clear",
    "status_counts_events",
    "prune_removes_only_old_events_of_archived_agents",
];

// ---------------------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------------------

/// Fixture builders (deterministic content, microsecond timestamps).
pub mod fixtures {
    use super::*;

    /// A fixed base time plus `secs` seconds and `secs` microseconds (microsecond precision).
    pub fn ts(secs: i64) -> Timestamp {
        let base = chrono::DateTime::parse_from_rfc3339("2025-03-04T05:06:07.123456Z")
            .expect("valid fixture time")
            .with_timezone(&chrono::Utc);
        base + chrono::Duration::seconds(secs) + chrono::Duration::microseconds(secs)
    }

    /// An orchestrator created at `ts(i)`.
    pub fn orchestrator(i: i64) -> Orchestrator {
        Orchestrator {
            id: crate::wire::new_id(),
            session_id: Some(format!("session-{i}")),
            system_prompt: format!("You are orchestrator {i}. «ünïcødé» \"quoted\"\nsecond line"),
            status: AgentStatus::Idle,
            working_dir: format!("/tmp/orch-{i}"),
            usage: Usage::default(),
            total_cost_usd: 0.0,
            metadata: serde_json::json!({"i": i, "tags": ["a", "b"], "nested": {"x": 1.5, "n": null}}),
            archived: false,
            created_at: ts(i),
            updated_at: ts(i),
        }
    }

    /// An agent named `name` under `orchestrator_id`, created at `ts(i)`.
    pub fn agent(name: &str, orchestrator_id: Option<Id>, i: i64) -> Agent {
        Agent {
            id: crate::wire::new_id(),
            orchestrator_id,
            name: name.to_string(),
            model: "anthropic:claude-sonnet-4".to_string(),
            system_prompt: Some(format!("system prompt of {name}")),
            working_dir: format!("/work/{name}"),
            status: AgentStatus::Idle,
            session_id: None,
            state: None,
            usage: Usage {
                input_tokens: 10,
                output_tokens: 20,
                cache_read_input_tokens: 30,
                cache_creation_input_tokens: 40,
            },
            total_cost_usd: 0.25,
            metadata: serde_json::json!({"template": "builder", "colour": "#ff00aa"}),
            workflow_id: None,
            workflow_step: Some("build".to_string()),
            archived: false,
            run: None,
            created_at: ts(i),
            updated_at: ts(i),
        }
    }

    /// A chat message of `orchestrator_id` created at `ts(i)`.
    pub fn chat(orchestrator_id: Id, i: i64, text: &str) -> ChatMessage {
        ChatMessage {
            id: crate::wire::new_id(),
            orchestrator_id,
            sender: if i % 2 == 0 { Participant::User } else { Participant::Orchestrator },
            receiver: if i % 2 == 0 { Participant::Orchestrator } else { Participant::User },
            agent_id: None,
            message: text.to_string(),
            summary: Some(format!("summary {i}")),
            metadata: serde_json::json!({"i": i}),
            created_at: ts(i),
        }
    }

    /// A prompt to `agent_id` created at `ts(i)`.
    pub fn prompt(agent_id: Option<Id>, i: i64) -> Prompt {
        Prompt {
            id: crate::wire::new_id(),
            agent_id,
            task_slug: Some(format!("task-{i}")),
            author: if i % 2 == 0 { PromptAuthor::Engineer } else { PromptAuthor::OrchestratorAgent },
            prompt_text: format!("do thing {i}\nwith ‘quotes’"),
            summary: None,
            session_id: Some("s".into()),
            created_at: ts(i),
        }
    }

    /// A system log created at `ts(i)`.
    pub fn log(level: LogLevel, message: &str, i: i64) -> SystemLog {
        SystemLog {
            id: crate::wire::new_id(),
            level,
            message: message.to_string(),
            summary: None,
            file_path: Some("src/main.rs".into()),
            workflow_id: None,
            workflow_step: None,
            metadata: serde_json::json!({"i": i}),
            created_at: ts(i),
        }
    }

    /// A workflow record created at `ts(i)`.
    pub fn workflow(orchestrator_id: Option<Id>, i: i64) -> WorkflowRecord {
        WorkflowRecord {
            id: crate::wire::new_id(),
            orchestrator_id,
            name: format!("wf-{i}"),
            workflow_type: "plan_build".into(),
            description: Some("plan then build".into()),
            status: WorkflowStatus::Pending,
            current_step: None,
            total_steps: 4,
            completed_steps: 0,
            started_at: None,
            completed_at: None,
            duration_seconds: None,
            input_data: serde_json::json!({"prompt": "build it"}),
            output_data: serde_json::json!({}),
            error_message: None,
            error_step: None,
            error_count: 0,
            metadata: serde_json::json!({"i": i}),
            created_at: ts(i),
            updated_at: ts(i),
        }
    }

    /// One event of every [`Event`] variant, with awkward content (unicode, quotes, newlines, nested JSON,
    /// extreme numbers).
    pub fn every_event() -> Vec<Event> {
        let agent = agent("créé \"agent\"", Some(crate::wire::new_id()), 3);
        let chat = chat(crate::wire::new_id(), 2, "hello\n\t\"world\" \\ 🚀");
        let big = Usage {
            input_tokens: u64::MAX,
            output_tokens: 1 << 53 | 1,
            cache_read_input_tokens: 0,
            cache_creation_input_tokens: 7,
        };
        let events = vec![
            Event::AgentCreated { agent: Box::new(agent) },
            Event::AgentStatusChanged { old_status: AgentStatus::Idle, new_status: AgentStatus::Executing },
            Event::AgentCostsUpdated {
                model: "openai:gpt-4.1".into(),
                usage: big,
                cost_usd: 0.1 + 0.2,
                total_usage: Usage { input_tokens: 1, ..Usage::default() },
                total_cost_usd: 1e-12,
            },
            Event::AgentDeleted {},
            Event::UserPromptSubmit {
                prompt: "Ünïcode prompt with ‘quotes’ and \u{1F600}".into(), prompt_length: 41
            },
            Event::PreToolUse {
                tool_name: "Write".into(),
                tool_input: serde_json::json!({
                    "file_path": "src/main.rs",
                    "content": "fn main() {\n    println!(\"hi\");\n}\n",
                    "zeta": [1, -2, 3.25, true, null, {"deep": {"deeper": []}}],
                    "alpha": u64::MAX,
                    "neg": i64::MIN,
                }),
                tool_use_id: "toolu_01".into(),
            },
            Event::PostToolUse {
                tool_name: "Write".into(),
                result: None,
                is_error: true,
                tool_use_id: "toolu_01".into(),
            },
            Event::Stop { reason: "end_turn".into(), num_turns: u32::MAX, duration_ms: u64::MAX },
            Event::SubagentStop { subagent_id: "sub-1".into() },
            Event::PreCompact { tokens_before: 123_456 },
            Event::HookInvoked {
                hook_event: "PreToolUse".into(),
                hook_name: "deny-rm".into(),
                tool_name: Some("Bash".into()),
                decision: "deny".into(),
                detail: Some("rm -rf is not allowed".into()),
            },
            Event::Text { text: String::new() },
            Event::Thinking { thinking: "hmm…".into(), signature: Some("c2lnbmF0dXJl".into()) },
            Event::ToolUse {
                tool_name: "Bash".into(),
                tool_input: serde_json::json!({"command": "echo 'a' \"b\" $HOME"}),
                tool_use_id: "toolu_02".into(),
            },
            Event::ToolResult {
                tool_use_id: "toolu_02".into(),
                tool_name: "Bash".into(),
                content: "a \"b\" /root\n\u{7}bell".into(),
                is_error: false,
            },
            Event::ToolRefused {
                tool_name: "Read".into(),
                tool_use_id: "toolu_03".into(),
                reason: "path ../../etc/passwd escapes the working directory".into(),
            },
            Event::Result {
                is_error: false,
                stop_reason: "end_turn".into(),
                num_turns: 3,
                duration_ms: 1234,
                usage: Usage {
                    input_tokens: 100,
                    output_tokens: 50,
                    cache_read_input_tokens: 25,
                    cache_creation_input_tokens: 5,
                },
                cost_usd: 0.012345678901234,
                result: Some("Done.".into()),
            },
            Event::ModelError {
                model: "anthropic:claude".into(),
                message: "429 Too Many Requests".into(),
                retryable: true,
            },
            Event::ModelRetry {
                model: "claude-sonnet-4-5".into(),
                attempt: 2,
                wait_ms: 1500,
                error: "provider overloaded: try later".into(),
            },
            Event::SystemLog {
                level: LogLevel::Warning,
                message: "disk almost full".into(),
                metadata: serde_json::json!({"free_bytes": 1024}),
            },
            Event::ChatMessage { message: Box::new(chat) },
            Event::InterruptRequested { requested_by: "cli".into() },
            Event::OrchestratorCreated { orchestrator: Box::new(orchestrator(4)) },
            Event::OrchestratorCostsUpdated {
                usage: Usage { input_tokens: 10, output_tokens: 20, ..Usage::default() },
                cost_usd: 0.25,
                total_usage: big,
                total_cost_usd: 1e-9,
            },
            Event::FileTracking {
                text_seq: Some(41),
                file_changes: vec![crate::wire::FileChange {
                    path: "src/ü.rs".into(),
                    absolute_path: "/w/src/ü.rs".into(),
                    status: crate::wire::FileChangeStatus::Deleted,
                    lines_added: 0,
                    lines_removed: 12,
                    diff: Some("--- a/src/ü.rs\n+++ /dev/null\n-x\n".into()),
                    summary: "Removed src/ü.rs (-12 lines)".into(),
                    tools: vec!["Bash".into()],
                }],
                read_files: vec![crate::wire::FileRead {
                    path: "README.md".into(),
                    absolute_path: "/w/README.md".into(),
                    line_count: None,
                }],
            },
            Event::SummaryUpdated { target_seq: u64::MAX >> 12, summary: "Wrote the greeting file".into() },
            Event::Undecodable {
                stored_type: "ToolUse".into(),
                error: "recursion limit exceeded at line 1 column 140".into(),
            },
            Event::Unknown(crate::wire::UnknownEvent::new(
                "FromANewerOrch",
                serde_json::json!({"answer": 42, "nested": {"list": [1, "two", null]}, "text": "ü\n"})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            )),
        ];
        for e in &events {
            covers(e);
        }
        events
    }

    /// Fails to compile when a variant is added to [`Event`] without a sample in [`every_event`].
    fn covers(e: &Event) {
        match e {
            Event::AgentCreated { .. }
            | Event::AgentStatusChanged { .. }
            | Event::AgentCostsUpdated { .. }
            | Event::AgentDeleted { .. }
            | Event::UserPromptSubmit { .. }
            | Event::PreToolUse { .. }
            | Event::PostToolUse { .. }
            | Event::Stop { .. }
            | Event::SubagentStop { .. }
            | Event::PreCompact { .. }
            | Event::HookInvoked { .. }
            | Event::Text { .. }
            | Event::Thinking { .. }
            | Event::ToolUse { .. }
            | Event::ToolResult { .. }
            | Event::ToolRefused { .. }
            | Event::Result { .. }
            | Event::ModelError { .. }
            | Event::ModelRetry { .. }
            | Event::SystemLog { .. }
            | Event::ChatMessage { .. }
            | Event::InterruptRequested { .. }
            | Event::OrchestratorCreated { .. }
            | Event::OrchestratorCostsUpdated { .. }
            | Event::FileTracking { .. }
            | Event::SummaryUpdated { .. }
            | Event::Undecodable { .. }
            | Event::Unknown(_) => {}
        }
    }

    /// A `Text` event numbered `i`, with the given keys.
    pub fn text(i: u64, keys: EventKeys) -> crate::wire::NewEvent {
        crate::wire::NewEvent::new(keys, Event::Text { text: format!("event {i}") })
    }
}

// ---------------------------------------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------------------------------------

/// The checks, one `async fn(Arc<dyn Store>)` each. Each expects a fresh, empty store.
pub mod checks {
    use std::collections::BTreeSet;

    use futures::StreamExt;

    use super::Writes;
    use super::fixtures::*;
    use super::*;
    use crate::store::{AgentFilter, EventQuery, EventStream, SavedState, StepCommit, StoreError, SystemLogQuery};
    use crate::wire::{ContentBlock, EventCategory, Message, NewEvent, Role, new_id};

    fn ids<T>(v: &[T], id: impl Fn(&T) -> Id) -> Vec<Id> {
        v.iter().map(id).collect()
    }

    fn seqs(v: &[EventRecord]) -> Vec<u64> {
        v.iter().map(|r| r.seq).collect()
    }

    fn is_not_found<T: std::fmt::Debug>(r: Result<T, StoreError>) -> bool {
        matches!(r, Err(StoreError::NotFound { .. }))
    }

    async fn next_event(stream: &mut EventStream, what: &str) -> EventRecord {
        match tokio::time::timeout(EVENT_TIMEOUT, stream.next()).await {
            Ok(Some(Ok(r))) => r,
            Ok(Some(Err(e))) => panic!("{what}: subscription failed: {e}"),
            Ok(None) => panic!("{what}: subscription ended"),
            Err(_) => panic!("{what}: no event within {EVENT_TIMEOUT:?}"),
        }
    }

    async fn collect_events(stream: &mut EventStream, n: usize, what: &str) -> Vec<EventRecord> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let r = next_event(stream, &format!("{what} (got {} of {n})", out.len())).await;
            out.push(r);
        }
        out
    }

    /// Collects `n` events in a task, so the subscriber is already waiting when they are appended.
    fn spawn_collect(
        mut stream: EventStream,
        n: usize,
        what: &'static str,
    ) -> tokio::task::JoinHandle<(EventStream, Vec<EventRecord>)> {
        tokio::spawn(async move {
            let got = collect_events(&mut stream, n, what).await;
            (stream, got)
        })
    }

    async fn append_texts(store: &Arc<dyn Store>, range: std::ops::Range<u64>) -> Vec<EventRecord> {
        store.append(range.map(|i| text(i, EventKeys::default())).collect()).await.expect("append")
    }

    /// Orchestrators: create, get, list newest first with the archived filter, update the mutable fields
    /// (usage and cost unchanged by update).
    pub async fn orchestrator_crud(store: Arc<dyn Store>) {
        assert!(store.list_orchestrators(true).await.unwrap().is_empty(), "a fresh store has no orchestrators");
        let o1 = orchestrator(1);
        let o2 = orchestrator(2);
        let o3 = orchestrator(3);
        // Inserted out of creation order on purpose.
        store.create_orchestrator(&o2).await.unwrap();
        store.create_orchestrator(&o1).await.unwrap();
        store.create_orchestrator(&o3).await.unwrap();
        assert_eq!(store.get_orchestrator(o1.id).await.unwrap().as_ref(), Some(&o1), "orchestrator round-trips");
        assert_eq!(store.get_orchestrator(new_id()).await.unwrap(), None, "unknown orchestrator is None");
        let listed = store.list_orchestrators(false).await.unwrap();
        assert_eq!(ids(&listed, |o| o.id), vec![o3.id, o2.id, o1.id], "orchestrators are listed newest first");
        assert_eq!(listed[1], o2);

        let mut changed = o2.clone();
        changed.session_id = None;
        changed.system_prompt = "new prompt".into();
        changed.status = AgentStatus::Executing;
        changed.working_dir = "/elsewhere".into();
        changed.metadata = serde_json::json!({"changed": true});
        changed.archived = true;
        // Usage and cost are not changed by update_orchestrator.
        changed.usage.input_tokens = 999;
        changed.total_cost_usd = 99.0;
        store.update_orchestrator(&changed).await.unwrap();
        let got = store.get_orchestrator(o2.id).await.unwrap().expect("updated orchestrator exists");
        assert_eq!(got.session_id, None);
        assert_eq!(got.system_prompt, "new prompt");
        assert_eq!(got.status, AgentStatus::Executing);
        assert_eq!(got.working_dir, "/elsewhere");
        assert_eq!(got.metadata, serde_json::json!({"changed": true}));
        assert!(got.archived);
        assert_eq!(got.usage, o2.usage, "update_orchestrator must not change usage");
        assert_eq!(got.total_cost_usd, o2.total_cost_usd, "update_orchestrator must not change cost");
        assert_eq!(got.created_at, o2.created_at, "created_at is kept");

        let live = store.list_orchestrators(false).await.unwrap();
        assert_eq!(ids(&live, |o| o.id), vec![o3.id, o1.id], "archived orchestrators are hidden by default");
        let all = store.list_orchestrators(true).await.unwrap();
        assert_eq!(ids(&all, |o| o.id), vec![o3.id, o2.id, o1.id], "include_archived lists them all");
    }

    /// An orchestrator's status and usage are those of its own agent (the live agent named
    /// `orchestrator` under it), stored once there; without that agent, the orchestrator's own.
    pub async fn orchestrator_status_and_usage_are_its_agents(store: Arc<dyn Store>) {
        let o = orchestrator(1);
        store.create_orchestrator(&o).await.unwrap();
        let alone = store.get_orchestrator(o.id).await.unwrap().unwrap();
        assert_eq!((alone.status, alone.usage), (o.status, o.usage), "without its agent: its own values");
        let mut own = agent("orchestrator", Some(o.id), 2);
        own.usage = Usage::default();
        own.total_cost_usd = 0.0;
        own.status = AgentStatus::Idle;
        store.create_agent(&own).await.unwrap();
        // Another agent of the orchestrator does not count.
        let mut other = agent("worker", Some(o.id), 3);
        other.status = AgentStatus::Blocked;
        store.create_agent(&other).await.unwrap();
        let once =
            Usage { input_tokens: 1, output_tokens: 2, cache_read_input_tokens: 3, cache_creation_input_tokens: 4 };
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move { store.add_agent_usage(own.id, once, 0.01).await.unwrap() }));
        }
        for t in tasks {
            t.await.expect("task panicked");
        }
        store.set_agent_status(own.id, AgentStatus::Executing).await.unwrap();
        let got = store.get_orchestrator(o.id).await.unwrap().unwrap();
        let expected = Usage {
            input_tokens: 50,
            output_tokens: 100,
            cache_read_input_tokens: 150,
            cache_creation_input_tokens: 200,
        };
        assert_eq!(got.usage, expected, "its agent's usage, every concurrent increment counted");
        assert!((got.total_cost_usd - 0.50).abs() < 1e-9, "its agent's cost, got {}", got.total_cost_usd);
        assert_eq!(got.status, AgentStatus::Executing, "its agent's status");
        assert_eq!(got.system_prompt, o.system_prompt, "its own other fields");
        let listed = store.list_orchestrators(false).await.unwrap();
        assert_eq!((listed[0].status, listed[0].usage), (AgentStatus::Executing, expected), "listed the same way");
        store.archive_agent(own.id).await.unwrap();
        let back = store.get_orchestrator(o.id).await.unwrap().unwrap();
        assert_eq!((back.status, back.usage), (o.status, o.usage), "an archived agent no longer counts");
    }

    /// Agents: create, get, find, list (newest first, orchestrator and archived filters).
    pub async fn agent_create_get_find_list(store: Arc<dyn Store>) {
        let oa = orchestrator(1);
        let ob = orchestrator(2);
        store.create_orchestrator(&oa).await.unwrap();
        store.create_orchestrator(&ob).await.unwrap();
        let a1 = agent("alpha", Some(oa.id), 10);
        let a2 = agent("beta", Some(oa.id), 12);
        let b1 = agent("alpha", Some(ob.id), 11);
        let mut free = agent("loner", None, 13);
        free.state = Some(serde_json::json!({"messages": []}));
        free.session_id = Some("sess".into());
        free.workflow_id = Some(new_id());
        for a in [&a2, &a1, &free, &b1] {
            store.create_agent(a).await.unwrap();
        }
        assert_eq!(store.get_agent(a1.id).await.unwrap().as_ref(), Some(&a1), "agent round-trips");
        assert_eq!(store.get_agent(free.id).await.unwrap().as_ref(), Some(&free), "agent round-trips");
        assert_eq!(store.get_agent(new_id()).await.unwrap(), None);

        assert_eq!(store.find_agent(Some(oa.id), "alpha").await.unwrap().map(|a| a.id), Some(a1.id));
        assert_eq!(store.find_agent(Some(ob.id), "alpha").await.unwrap().map(|a| a.id), Some(b1.id));
        assert_eq!(store.find_agent(None, "loner").await.unwrap().map(|a| a.id), Some(free.id));
        assert_eq!(store.find_agent(None, "alpha").await.unwrap(), None, "None means agents without orchestrator");
        assert_eq!(store.find_agent(Some(oa.id), "loner").await.unwrap(), None);
        assert_eq!(store.find_agent(Some(oa.id), "ALPHA").await.unwrap(), None, "names are case-sensitive");

        let all = store.list_agents(&AgentFilter::default()).await.unwrap();
        assert_eq!(ids(&all, |a| a.id), vec![free.id, a2.id, b1.id, a1.id], "agents are listed newest first");
        let of_a =
            store.list_agents(&AgentFilter { orchestrator_id: Some(oa.id), include_archived: false }).await.unwrap();
        assert_eq!(ids(&of_a, |a| a.id), vec![a2.id, a1.id], "orchestrator filter");

        store.archive_agent(a2.id).await.unwrap();
        let live = store.list_agents(&AgentFilter::default()).await.unwrap();
        assert_eq!(ids(&live, |a| a.id), vec![free.id, b1.id, a1.id], "archived agents are hidden by default");
        let with_archived =
            store.list_agents(&AgentFilter { orchestrator_id: Some(oa.id), include_archived: true }).await.unwrap();
        assert_eq!(ids(&with_archived, |a| a.id), vec![a2.id, a1.id], "include_archived shows them");
        let archived = store.get_agent(a2.id).await.unwrap().expect("archived agents can still be read");
        assert!(archived.archived);
        assert_eq!(store.find_agent(Some(oa.id), "beta").await.unwrap(), None, "find ignores archived agents");
    }

    /// A name is unique among the live agents of one orchestrator; archiving frees it; other orchestrators
    /// (and agents without one) have their own namespace.
    pub async fn agent_name_unique_among_live_agents(store: Arc<dyn Store>) {
        let oa = orchestrator(1);
        let ob = orchestrator(2);
        store.create_orchestrator(&oa).await.unwrap();
        store.create_orchestrator(&ob).await.unwrap();
        let first = agent("builder", Some(oa.id), 1);
        store.create_agent(&first).await.unwrap();
        match store.create_agent(&agent("builder", Some(oa.id), 2)).await {
            Err(StoreError::NameTaken { name }) => assert_eq!(name, "builder"),
            other => panic!("a second live 'builder' under the same orchestrator must be NameTaken, got {other:?}"),
        }
        store.create_agent(&agent("builder", Some(ob.id), 3)).await.expect("same name under another orchestrator");
        let no_orch = agent("builder", None, 4);
        store.create_agent(&no_orch).await.expect("same name without orchestrator");
        assert!(
            matches!(store.create_agent(&agent("builder", None, 5)).await, Err(StoreError::NameTaken { .. })),
            "names are unique among agents without orchestrator too"
        );
        assert_eq!(
            store
                .list_agents(&AgentFilter { orchestrator_id: Some(oa.id), include_archived: true })
                .await
                .unwrap()
                .len(),
            1,
            "the refused agent was not stored"
        );

        store.archive_agent(first.id).await.unwrap();
        let second = agent("builder", Some(oa.id), 6);
        store.create_agent(&second).await.expect("the name is free again after archive_agent");
        assert_eq!(store.find_agent(Some(oa.id), "builder").await.unwrap().map(|a| a.id), Some(second.id));
        assert!(
            matches!(store.create_agent(&agent("builder", Some(oa.id), 7)).await, Err(StoreError::NameTaken { .. })),
            "the new live agent holds the name"
        );
        store.archive_agent(second.id).await.unwrap();
        let third = agent("builder", Some(oa.id), 8);
        store.create_agent(&third).await.expect("several archived agents may share a name");
        let all =
            store.list_agents(&AgentFilter { orchestrator_id: Some(oa.id), include_archived: true }).await.unwrap();
        assert_eq!(ids(&all, |a| a.id), vec![third.id, second.id, first.id]);
    }

    /// `set_agent_status` returns the previous status.
    pub async fn agent_status_returns_previous(store: Arc<dyn Store>) {
        let a = agent("a", None, 1);
        store.create_agent(&a).await.unwrap();
        assert_eq!(store.set_agent_status(a.id, AgentStatus::Executing).await.unwrap(), AgentStatus::Idle);
        assert_eq!(store.set_agent_status(a.id, AgentStatus::Blocked).await.unwrap(), AgentStatus::Executing);
        assert_eq!(store.set_agent_status(a.id, AgentStatus::Blocked).await.unwrap(), AgentStatus::Blocked);
        let got = store.get_agent(a.id).await.unwrap().unwrap();
        assert_eq!(got.status, AgentStatus::Blocked);
        assert_eq!(got.usage, a.usage, "other fields untouched");
        for s in [AgentStatus::Waiting, AgentStatus::Complete, AgentStatus::Idle] {
            store.set_agent_status(a.id, s).await.unwrap();
            assert_eq!(store.get_agent(a.id).await.unwrap().unwrap().status, s, "every status is stored");
        }
    }

    /// `save_agent_state` round-trips the JSON state and session id; `None` clears them.
    pub async fn agent_state_round_trips(store: Arc<dyn Store>) {
        let a = agent("a", None, 1);
        store.create_agent(&a).await.unwrap();
        let state = serde_json::json!({
            "messages": [{"role": "user", "content": [{"type": "text", "text": "héllo \"there\"\n"}]}],
            "pending": [{"id": "toolu_1", "input": {"n": u64::MAX, "f": 0.1, "neg": -5}}],
            "empty": {}, "null": null, "flag": false,
        });
        store.save_agent_state(a.id, Some(&state), Some("sess-123")).await.unwrap();
        let got = store.get_agent(a.id).await.unwrap().unwrap();
        assert_eq!(got.state.as_ref(), Some(&state), "state round-trips");
        assert_eq!(got.session_id.as_deref(), Some("sess-123"));
        assert_eq!(got.name, a.name, "other fields untouched");

        store.save_agent_state(a.id, None, None).await.unwrap();
        let got = store.get_agent(a.id).await.unwrap().unwrap();
        assert_eq!(got.state, None, "None clears the state");
        assert_eq!(got.session_id, None, "None clears the session");
    }

    /// `add_agent_usage` is a single atomic increment: 50 concurrent adds are all counted.
    pub async fn agent_usage_is_atomic(store: Arc<dyn Store>) {
        let mut a = agent("a", None, 1);
        a.usage = Usage::default();
        a.total_cost_usd = 0.0;
        store.create_agent(&a).await.unwrap();
        let once =
            Usage { input_tokens: 1, output_tokens: 2, cache_read_input_tokens: 3, cache_creation_input_tokens: 4 };
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move { store.add_agent_usage(a.id, once, 0.01).await.unwrap() }));
        }
        // Commits do not return rows; atomicity shows in the total (read-modify-writes would lose some).
        for t in tasks {
            t.await.expect("task panicked");
        }
        let got = store.get_agent(a.id).await.unwrap().unwrap();
        assert_eq!(
            got.usage,
            Usage {
                input_tokens: 50,
                output_tokens: 100,
                cache_read_input_tokens: 150,
                cache_creation_input_tokens: 200
            },
            "50 concurrent increments are all counted"
        );
        assert!((got.total_cost_usd - 0.50).abs() < 1e-9, "cost is 0.50, got {}", got.total_cost_usd);
    }

    /// Metadata is replaced; archive keeps the agent readable.
    pub async fn agent_metadata_and_archive(store: Arc<dyn Store>) {
        let a = agent("a", None, 1);
        store.create_agent(&a).await.unwrap();
        let meta = serde_json::json!({"colour": "blue", "n": [1, 2, 3], "deep": {"k": "v"}});
        store.set_agent_metadata(a.id, &meta).await.unwrap();
        assert_eq!(store.get_agent(a.id).await.unwrap().unwrap().metadata, meta);
        let replaced = serde_json::json!({"only": 1});
        store.set_agent_metadata(a.id, &replaced).await.unwrap();
        assert_eq!(store.get_agent(a.id).await.unwrap().unwrap().metadata, replaced, "metadata is replaced");
        store.archive_agent(a.id).await.unwrap();
        let got = store.get_agent(a.id).await.unwrap().unwrap();
        assert!(got.archived);
        assert_eq!(got.metadata, replaced);
    }

    /// Updates of unknown entities fail with `NotFound`.
    pub async fn missing_entities_are_not_found(store: Arc<dyn Store>) {
        let id = new_id();
        let mut o = orchestrator(1);
        o.id = id;
        assert!(is_not_found(store.update_orchestrator(&o).await), "update_orchestrator");
        assert!(is_not_found(store.set_agent_status(id, AgentStatus::Executing).await), "set_agent_status");
        assert!(is_not_found(store.save_agent_state(id, None, None).await), "save_agent_state");
        assert!(is_not_found(store.add_agent_usage(id, Usage::default(), 1.0).await), "add_agent_usage");
        assert!(is_not_found(store.set_agent_metadata(id, &serde_json::json!({})).await), "set_agent_metadata");
        assert!(is_not_found(store.archive_agent(id).await), "archive_agent");
        assert!(
            is_not_found(store.commit_step(StepCommit { agent_id: id, ..StepCommit::default() }).await),
            "commit_step"
        );
        assert_eq!(store.get_orchestrator(id).await.unwrap(), None, "nothing was created");
        assert_eq!(store.get_agent(id).await.unwrap(), None, "nothing was created");
    }

    /// An agent's prompts, oldest first, and only its own.
    pub async fn prompts_oldest_first(store: Arc<dyn Store>) {
        let a = agent("a", None, 1);
        let b = agent("b", None, 2);
        store.create_agent(&a).await.unwrap();
        store.create_agent(&b).await.unwrap();
        let pa: Vec<_> = (0..4).map(|i| prompt(Some(a.id), 10 + i)).collect();
        store.insert_prompt(&prompt(Some(b.id), 11)).await.unwrap();
        store.insert_prompt(&prompt(None, 12)).await.unwrap();
        for p in &pa {
            store.insert_prompt(p).await.unwrap();
        }
        assert_eq!(store.list_prompts(a.id).await.unwrap(), pa, "prompts round-trip, oldest first");
        assert_eq!(store.list_prompts(b.id).await.unwrap().len(), 1);
        assert!(store.list_prompts(new_id()).await.unwrap().is_empty());
    }

    /// The latest N chat messages of an orchestrator, oldest first.
    pub async fn chat_latest_oldest_first(store: Arc<dyn Store>) {
        let o1 = orchestrator(1);
        let o2 = orchestrator(2);
        store.create_orchestrator(&o1).await.unwrap();
        store.create_orchestrator(&o2).await.unwrap();
        let mut m1 = Vec::new();
        for i in 0..6 {
            let mut m = chat(o1.id, 10 + i, &format!("message {i} 💬"));
            if i == 3 {
                m.agent_id = Some(new_id());
                m.receiver = Participant::Agent;
                m.summary = None;
            }
            store.insert_chat(&m).await.unwrap();
            m1.push(m);
            store.insert_chat(&chat(o2.id, 20 + i, "other")).await.unwrap();
        }
        assert_eq!(store.list_chat(o1.id, 3).await.unwrap(), m1[3..].to_vec(), "latest 3, oldest first");
        assert_eq!(store.list_chat(o1.id, 100).await.unwrap(), m1, "all, oldest first");
        assert!(store.list_chat(o1.id, 0).await.unwrap().is_empty(), "limit 0");
        assert!(store.list_chat(new_id(), 10).await.unwrap().is_empty());
    }

    /// System logs: newest first, offset/limit, case-insensitive `message_contains`, exact level.
    pub async fn system_logs_filters_and_paging(store: Arc<dyn Store>) {
        let specs = [
            (LogLevel::Info, "Server started"),
            (LogLevel::Debug, "tick"),
            (LogLevel::Error, "Disk ERROR on /dev/sda"),
            (LogLevel::Warning, "disk almost full"),
            (LogLevel::Info, "Agent builder created"),
            (LogLevel::Error, "model error: 529 overloaded"),
            (LogLevel::Info, "ÉCOLE résumé"),
            (LogLevel::Debug, "tock"),
            (LogLevel::Info, "100% done_ [x]"),
            (LogLevel::Info, "Server stopped"),
        ];
        let logs: Vec<_> = specs.iter().enumerate().map(|(i, (l, m))| log(*l, m, i as i64)).collect();
        for l in &logs {
            store.insert_system_log(l).await.unwrap();
        }
        let newest_first: Vec<_> = logs.iter().rev().cloned().collect();
        let q = |offset, limit| SystemLogQuery { offset, limit, ..SystemLogQuery::default() };
        assert_eq!(store.list_system_logs(&q(0, 100)).await.unwrap(), newest_first, "newest first");
        assert_eq!(store.list_system_logs(&q(0, 3)).await.unwrap(), newest_first[..3].to_vec(), "limit");
        assert_eq!(store.list_system_logs(&q(3, 4)).await.unwrap(), newest_first[3..7].to_vec(), "offset");
        assert_eq!(store.list_system_logs(&q(8, 10)).await.unwrap(), newest_first[8..].to_vec(), "last page");
        assert!(store.list_system_logs(&q(10, 10)).await.unwrap().is_empty(), "past the end");

        let contains =
            |s: &str| SystemLogQuery { limit: 100, message_contains: Some(s.to_string()), ..SystemLogQuery::default() };
        let msgs = |v: Vec<SystemLog>| v.into_iter().map(|l| l.message).collect::<Vec<_>>();
        assert_eq!(
            msgs(store.list_system_logs(&contains("error")).await.unwrap()),
            vec!["model error: 529 overloaded", "Disk ERROR on /dev/sda"],
            "message_contains is case-insensitive"
        );
        assert_eq!(
            msgs(store.list_system_logs(&contains("DISK")).await.unwrap()),
            vec!["disk almost full", "Disk ERROR on /dev/sda"]
        );
        assert_eq!(msgs(store.list_system_logs(&contains("école")).await.unwrap()), vec!["ÉCOLE résumé"], "unicode");
        assert_eq!(
            msgs(store.list_system_logs(&contains("% done_")).await.unwrap()),
            vec!["100% done_ [x]"],
            "no wildcard interpretation"
        );
        assert!(store.list_system_logs(&contains("%")).await.unwrap().len() == 1, "'%' is literal");
        assert!(store.list_system_logs(&contains("_")).await.unwrap().len() == 1, "'_' is literal");
        assert!(store.list_system_logs(&contains("nothing like this")).await.unwrap().is_empty());

        let level = |l| SystemLogQuery { limit: 100, level: Some(l), ..SystemLogQuery::default() };
        assert_eq!(
            msgs(store.list_system_logs(&level(LogLevel::Debug)).await.unwrap()),
            vec!["tock", "tick"],
            "exact level"
        );
        let both = SystemLogQuery {
            offset: 1,
            limit: 1,
            level: Some(LogLevel::Info),
            message_contains: Some("server".into()),
        };
        assert_eq!(msgs(store.list_system_logs(&both).await.unwrap()), vec!["Server started"], "filters + paging");
    }

    /// Workflows: upsert inserts then replaces; get; list newest first with orchestrator filter and limit.
    pub async fn workflows_upsert_get_list(store: Arc<dyn Store>) {
        let o = orchestrator(1);
        store.create_orchestrator(&o).await.unwrap();
        let w1 = workflow(Some(o.id), 1);
        let w2 = workflow(Some(o.id), 2);
        let w3 = workflow(None, 3);
        for w in [&w2, &w3, &w1] {
            store.upsert_workflow(w).await.unwrap();
        }
        assert_eq!(store.get_workflow(w1.id).await.unwrap().as_ref(), Some(&w1), "workflow round-trips");
        assert_eq!(store.get_workflow(new_id()).await.unwrap(), None);

        let mut done = w1.clone();
        done.status = WorkflowStatus::Completed;
        done.current_step = Some("review".into());
        done.completed_steps = 4;
        done.started_at = Some(ts(100));
        done.completed_at = Some(ts(160));
        done.duration_seconds = Some(60);
        done.output_data = serde_json::json!({"verdict": "PASS", "files": ["a.rs"]});
        done.error_message = Some("transient".into());
        done.error_step = Some("build".into());
        done.error_count = 1;
        done.updated_at = ts(160);
        store.upsert_workflow(&done).await.unwrap();
        assert_eq!(store.get_workflow(w1.id).await.unwrap().as_ref(), Some(&done), "upsert replaces");

        let all = store.list_workflows(None, 100).await.unwrap();
        assert_eq!(ids(&all, |w| w.id), vec![w3.id, w2.id, w1.id], "newest first, one row per id");
        let of_o = store.list_workflows(Some(o.id), 100).await.unwrap();
        assert_eq!(ids(&of_o, |w| w.id), vec![w2.id, w1.id], "orchestrator filter");
        let limited = store.list_workflows(None, 2).await.unwrap();
        assert_eq!(ids(&limited, |w| w.id), vec![w3.id, w2.id], "limit");
    }

    /// `seq` starts at 1, batches get consecutive seqs, seqs increase across batches, timestamps are set,
    /// an empty append consumes nothing.
    pub async fn append_seq_starts_at_one_and_is_gap_free(store: Arc<dyn Store>) {
        assert_eq!(store.last_seq().await.unwrap(), 0, "an empty log has last_seq 0");
        assert!(store.read_events(&EventQuery::default()).await.unwrap().is_empty());
        assert!(store.append(Vec::new()).await.unwrap().is_empty(), "empty append");
        assert_eq!(store.last_seq().await.unwrap(), 0, "an empty append consumes no seq");

        let before = crate::wire::now() - chrono::Duration::seconds(5);
        let one = append_texts(&store, 0..1).await;
        assert_eq!(seqs(&one), vec![1], "the first seq is 1");
        let batch = append_texts(&store, 1..4).await;
        assert_eq!(seqs(&batch), vec![2, 3, 4], "a batch gets consecutive seqs");
        assert!(store.append(Vec::new()).await.unwrap().is_empty());
        let more = append_texts(&store, 4..9).await;
        assert_eq!(seqs(&more), vec![5, 6, 7, 8, 9], "seqs continue across batches");
        let after = crate::wire::now() + chrono::Duration::seconds(5);
        assert_eq!(store.last_seq().await.unwrap(), 9);

        let all = store.read_events(&EventQuery::default()).await.unwrap();
        assert_eq!(seqs(&all), (1..=9).collect::<Vec<_>>());
        let appended: Vec<_> = one.into_iter().chain(batch).chain(more).collect();
        assert_eq!(all, appended, "read_events returns exactly what append returned");
        for (i, r) in all.iter().enumerate() {
            assert_eq!(r.event, Event::Text { text: format!("event {i}") }, "events keep their order");
            assert!(r.timestamp >= before && r.timestamp <= after, "timestamp {} is the append time", r.timestamp);
        }
    }

    /// Every event variant round-trips through the store byte-identically (serde JSON).
    pub async fn every_event_variant_round_trips(store: Arc<dyn Store>) {
        let events = every_event();
        let keys = EventKeys {
            agent_id: Some(new_id()),
            orchestrator_id: Some(new_id()),
            workflow_id: Some(new_id()),
            step: Some("plan".into()),
            task_slug: Some("task-ü".into()),
        };
        // Half in one batch, half one by one.
        let (batch, singles) = events.split_at(events.len() / 2);
        let mut appended =
            store.append(batch.iter().map(|e| NewEvent::new(keys.clone(), e.clone())).collect()).await.unwrap();
        for e in singles {
            appended.extend(store.append(vec![NewEvent::new(EventKeys::default(), e.clone())]).await.unwrap());
        }
        let read = store.read_events(&EventQuery::default()).await.unwrap();
        assert_eq!(read.len(), events.len());
        assert_eq!(read, appended, "read_events returns exactly what append returned");
        for (r, e) in read.iter().zip(&events) {
            assert_eq!(&r.event, e, "{} round-trips", e.kind());
            assert_eq!(
                serde_json::to_string(&r.event).unwrap(),
                serde_json::to_string(e).unwrap(),
                "{} serializes byte-identically after the round trip",
                e.kind()
            );
            let by_type = store
                .read_events(&EventQuery { types: vec![e.kind().to_string()], ..EventQuery::default() })
                .await
                .unwrap();
            assert_eq!(seqs(&by_type), vec![r.seq], "type filter finds {}", e.kind());
        }
    }

    /// Event keys round-trip, whichever are set.
    pub async fn event_keys_round_trip(store: Arc<dyn Store>) {
        let full = EventKeys {
            agent_id: Some(new_id()),
            orchestrator_id: Some(new_id()),
            workflow_id: Some(new_id()),
            step: Some("review — 2nd".into()),
            task_slug: Some("fix-login-🐛".into()),
        };
        let variants = vec![
            EventKeys::default(),
            full.clone(),
            EventKeys { agent_id: full.agent_id, ..EventKeys::default() },
            EventKeys { orchestrator_id: full.orchestrator_id, ..EventKeys::default() },
            EventKeys { workflow_id: full.workflow_id, step: full.step.clone(), ..EventKeys::default() },
            EventKeys { task_slug: full.task_slug.clone(), ..EventKeys::default() },
            EventKeys { step: Some(String::new()), task_slug: Some(String::new()), ..EventKeys::default() },
        ];
        let appended =
            store.append(variants.iter().enumerate().map(|(i, k)| text(i as u64, k.clone())).collect()).await.unwrap();
        let read = store.read_events(&EventQuery::default()).await.unwrap();
        assert_eq!(read, appended);
        for (r, k) in read.iter().zip(&variants) {
            assert_eq!(&r.keys, k, "keys round-trip");
        }
        let empty_step =
            store.read_events(&EventQuery { step: Some(String::new()), ..EventQuery::default() }).await.unwrap();
        assert_eq!(seqs(&empty_step), vec![7], "an empty step is a value, not absent");
    }

    fn keys_for(i: u64, agents: &[Id], orchs: &[Id], wfs: &[Id]) -> EventKeys {
        EventKeys {
            agent_id: if i % 4 == 3 { None } else { Some(agents[(i % 3) as usize]) },
            orchestrator_id: if i.is_multiple_of(5) { None } else { Some(orchs[(i % 2) as usize]) },
            workflow_id: if i.is_multiple_of(3) { Some(wfs[(i % 2) as usize]) } else { None },
            step: if i.is_multiple_of(3) { Some(["plan", "build"][(i % 2) as usize].into()) } else { None },
            task_slug: if i % 7 < 3 { Some(format!("t{}", i % 2)) } else { None },
        }
    }

    /// `read_events` filters: seq range, limit, agent, orchestrator, workflow, step, task slug, category,
    /// type, and combinations.
    pub async fn read_events_filters(store: Arc<dyn Store>) {
        let agents = [new_id(), new_id(), new_id()];
        let orchs = [new_id(), new_id()];
        let wfs = [new_id(), new_id()];
        let samples = every_event();
        let mut appended = Vec::new();
        let mut i = 0u64;
        while i < 90 {
            let n = 1 + (i % 4);
            let batch: Vec<_> = (i..i + n)
                .map(|j| NewEvent::new(keys_for(j, &agents, &orchs, &wfs), samples[j as usize % samples.len()].clone()))
                .collect();
            appended.extend(store.append(batch).await.unwrap());
            i += n;
        }
        let total = appended.len() as u64;
        assert_eq!(seqs(&appended), (1..=total).collect::<Vec<_>>());

        let expect = |pred: &dyn Fn(&EventRecord) -> bool| -> Vec<EventRecord> {
            appended.iter().filter(|r| pred(r)).cloned().collect()
        };
        let check = |q: EventQuery, want: Vec<EventRecord>, what: &'static str| {
            let store = store.clone();
            async move {
                let got = store.read_events(&q).await.unwrap();
                assert_eq!(seqs(&got), seqs(&want), "{what}: {q:?}");
                assert_eq!(got, want, "{what}: records equal");
            }
        };
        check(EventQuery::default(), appended.clone(), "everything").await;
        check(EventQuery::after(40), expect(&|r| r.seq > 40), "after_seq").await;
        check(EventQuery::after(total), vec![], "after the last").await;
        check(EventQuery::after(total + 100), vec![], "far after the last").await;
        check(EventQuery { until_seq: Some(10), ..EventQuery::default() }, expect(&|r| r.seq <= 10), "until_seq").await;
        check(
            EventQuery { after_seq: 10, until_seq: Some(20), ..EventQuery::default() },
            expect(&|r| r.seq > 10 && r.seq <= 20),
            "seq window",
        )
        .await;
        check(EventQuery { after_seq: 20, until_seq: Some(20), ..EventQuery::default() }, vec![], "empty window").await;
        check(EventQuery { limit: Some(7), ..EventQuery::default() }, appended[..7].to_vec(), "limit").await;
        check(EventQuery { limit: Some(0), ..EventQuery::default() }, vec![], "limit 0").await;
        check(
            EventQuery { after_seq: 5, limit: Some(3), ..EventQuery::default() },
            appended[5..8].to_vec(),
            "after_seq + limit",
        )
        .await;
        check(
            EventQuery { agent_id: Some(agents[1]), ..EventQuery::default() },
            expect(&|r| r.keys.agent_id == Some(agents[1])),
            "agent",
        )
        .await;
        check(
            EventQuery { orchestrator_id: Some(orchs[0]), ..EventQuery::default() },
            expect(&|r| r.keys.orchestrator_id == Some(orchs[0])),
            "orchestrator",
        )
        .await;
        check(
            EventQuery { workflow_id: Some(wfs[1]), ..EventQuery::default() },
            expect(&|r| r.keys.workflow_id == Some(wfs[1])),
            "workflow",
        )
        .await;
        check(
            EventQuery { step: Some("plan".into()), ..EventQuery::default() },
            expect(&|r| r.keys.step.as_deref() == Some("plan")),
            "step",
        )
        .await;
        check(
            EventQuery { task_slug: Some("t1".into()), ..EventQuery::default() },
            expect(&|r| r.keys.task_slug.as_deref() == Some("t1")),
            "task_slug",
        )
        .await;
        check(
            EventQuery { categories: vec![EventCategory::Hook], ..EventQuery::default() },
            expect(&|r| r.event.category() == EventCategory::Hook),
            "category",
        )
        .await;
        check(
            EventQuery { categories: vec![EventCategory::Agent, EventCategory::Chat], ..EventQuery::default() },
            expect(&|r| matches!(r.event.category(), EventCategory::Agent | EventCategory::Chat)),
            "categories",
        )
        .await;
        check(
            EventQuery { types: vec!["PreToolUse".into()], ..EventQuery::default() },
            expect(&|r| r.event.kind() == "PreToolUse"),
            "type",
        )
        .await;
        check(
            EventQuery {
                types: vec!["Text".into(), "ToolResult".into(), "NoSuchType".into()],
                ..EventQuery::default()
            },
            expect(&|r| matches!(r.event.kind(), "Text" | "ToolResult")),
            "types",
        )
        .await;
        check(EventQuery { types: vec!["NoSuchType".into()], ..EventQuery::default() }, vec![], "unknown type").await;
        check(EventQuery { agent_id: Some(new_id()), ..EventQuery::default() }, vec![], "unknown agent").await;
        check(
            EventQuery {
                after_seq: 3,
                until_seq: Some(80),
                agent_id: Some(agents[0]),
                orchestrator_id: Some(orchs[0]),
                categories: vec![EventCategory::Hook, EventCategory::Response, EventCategory::Agent],
                limit: Some(4),
                ..EventQuery::default()
            },
            expect(&|r| {
                r.seq > 3
                    && r.seq <= 80
                    && r.keys.agent_id == Some(agents[0])
                    && r.keys.orchestrator_id == Some(orchs[0])
                    && matches!(
                        r.event.category(),
                        EventCategory::Hook | EventCategory::Response | EventCategory::Agent
                    )
            })
            .into_iter()
            .take(4)
            .collect(),
            "combination with limit",
        )
        .await;
        check(
            EventQuery {
                workflow_id: Some(wfs[0]),
                step: Some("plan".into()),
                task_slug: Some("t0".into()),
                ..EventQuery::default()
            },
            expect(&|r| {
                r.keys.workflow_id == Some(wfs[0])
                    && r.keys.step.as_deref() == Some("plan")
                    && r.keys.task_slug.as_deref() == Some("t0")
            }),
            "workflow + step + task",
        )
        .await;
    }

    /// Paging with `after_seq` = the last seq of the previous page returns every event exactly once.
    pub async fn read_events_paging(store: Arc<dyn Store>) {
        let agents = [new_id(), new_id(), new_id()];
        let orchs = [new_id(), new_id()];
        let wfs = [new_id(), new_id()];
        let all = store.append((0..250).map(|i| text(i, keys_for(i, &agents, &orchs, &wfs))).collect()).await.unwrap();
        for (filter, page) in [(None, 7usize), (None, 1), (Some(agents[2]), 5), (Some(agents[0]), 1000)] {
            let mut got = Vec::new();
            let mut after = 0;
            let mut pages = 0;
            loop {
                let q = EventQuery { after_seq: after, agent_id: filter, limit: Some(page), ..EventQuery::default() };
                let p = store.read_events(&q).await.unwrap();
                assert!(p.len() <= page, "a page holds at most `limit` events");
                let Some(last) = p.last() else { break };
                after = last.seq;
                got.extend(p);
                pages += 1;
                assert!(pages <= 300, "paging does not terminate");
            }
            let want: Vec<_> = all.iter().filter(|r| filter.is_none() || r.keys.agent_id == filter).cloned().collect();
            assert_eq!(seqs(&got), seqs(&want), "paging by {page} (filter {filter:?}) returns every event once");
        }
    }

    /// 4 concurrent appenders × 250 events produce seqs 1..=1000 with no gap, each appender's events in its
    /// own order.
    pub async fn concurrent_appends_are_gap_free(store: Arc<dyn Store>) {
        let mut tasks = Vec::new();
        for t in 0..4u64 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut got = Vec::new();
                let mut i = 0;
                while i < 250 {
                    // Mix single appends and small batches.
                    let n = if t % 2 == 0 { 1 } else { (i % 5 + 1).min(250 - i) };
                    let batch: Vec<_> = (i..i + n).map(|j| text(t * 1000 + j, EventKeys::default())).collect();
                    let recs = store.append(batch).await.unwrap();
                    assert_eq!(recs.len() as u64, n);
                    assert!(recs.windows(2).all(|w| w[1].seq == w[0].seq + 1), "a batch gets consecutive seqs");
                    got.extend(recs.into_iter().map(|r| r.seq));
                    i += n;
                }
                got
            }));
        }
        let mut returned = BTreeSet::new();
        for t in tasks {
            for s in t.await.expect("appender panicked") {
                assert!(returned.insert(s), "seq {s} returned twice");
            }
        }
        assert_eq!(returned, (1..=1000).collect::<BTreeSet<_>>(), "returned seqs are 1..=1000");
        assert_eq!(store.last_seq().await.unwrap(), 1000);
        let all = store.read_events(&EventQuery::default()).await.unwrap();
        assert_eq!(seqs(&all), (1..=1000).collect::<Vec<_>>(), "the log holds 1..=1000 with no gap");
        for t in 0..4u64 {
            let mine: Vec<u64> = all
                .iter()
                .filter_map(|r| match &r.event {
                    Event::Text { text } => text.strip_prefix("event ").and_then(|n| n.parse::<u64>().ok()),
                    _ => None,
                })
                .filter(|n| n / 1000 == t)
                .collect();
            assert_eq!(mine, (t * 1000..t * 1000 + 250).collect::<Vec<_>>(), "appender {t}'s events in order");
        }
    }

    /// `subscribe(since)` replays the stored events after `since`, then delivers live ones.
    pub async fn subscribe_replays_then_live(store: Arc<dyn Store>) {
        let stored = append_texts(&store, 0..5).await;
        let mut from_start = store.subscribe(0);
        let mut from_two = store.subscribe(2);
        assert_eq!(collect_events(&mut from_start, 5, "replay from 0").await, stored, "replay from 0");
        assert_eq!(collect_events(&mut from_two, 3, "replay from 2").await, stored[2..].to_vec(), "replay from 2");
        // The subscribers are caught up and waiting (in tasks) when the live events are appended.
        let live_a = spawn_collect(from_start, 3, "live (from 0)");
        let live_b = spawn_collect(from_two, 3, "live (from 2)");
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut live = append_texts(&store, 5..6).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        live.extend(append_texts(&store, 6..8).await);
        let (mut from_start, got_a) = live_a.await.expect("subscriber panicked");
        let (mut from_two, got_b) = live_b.await.expect("subscriber panicked");
        assert_eq!(got_a, live, "live events after the replay");
        assert_eq!(got_b, live, "live events after the replay");
        let single = append_texts(&store, 8..9).await;
        assert_eq!(next_event(&mut from_start, "live single").await, single[0]);
        assert_eq!(next_event(&mut from_two, "live single").await, single[0]);
        // A subscription that starts in the future sees only what comes after.
        let future = spawn_collect(store.subscribe(12), 2, "subscribe(12)");
        for i in 9..14 {
            append_texts(&store, i..i + 1).await;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let (_, got) = future.await.expect("subscriber panicked");
        assert_eq!(seqs(&got), vec![13, 14]);
    }

    /// `subscribe(last_seq)` yields only events appended afterwards.
    pub async fn subscribe_from_last_yields_only_new(store: Arc<dyn Store>) {
        append_texts(&store, 0..10).await;
        let last = store.last_seq().await.unwrap();
        let mut sub = store.subscribe(last);
        let quiet = tokio::time::timeout(Duration::from_millis(300), sub.next()).await;
        assert!(quiet.is_err(), "subscribe(last) must not replay old events, got {quiet:?}");
        let new = append_texts(&store, 10..12).await;
        assert_eq!(collect_events(&mut sub, 2, "new events").await, new);
        let quiet = tokio::time::timeout(Duration::from_millis(200), sub.next()).await;
        assert!(quiet.is_err(), "no duplicate after the live events, got {quiet:?}");
        // A subscription on an empty-to-start log works too.
        let mut sub2 = store.subscribe(store.last_seq().await.unwrap());
        tokio::task::yield_now().await;
        let more = append_texts(&store, 12..13).await;
        assert_eq!(next_event(&mut sub2, "after idle").await, more[0]);
    }

    /// Subscribers starting while appenders run concurrently see every event after `since` exactly once,
    /// in seq order.
    pub async fn subscribe_with_concurrent_appenders(store: Arc<dyn Store>) {
        append_texts(&store, 0..10).await;
        let per_task = 60u64;
        let tasks = 4u64;
        let mut appenders = Vec::new();
        for t in 0..tasks {
            let store = store.clone();
            appenders.push(tokio::spawn(async move {
                let mut i = 0;
                while i < per_task {
                    let n = if t == 0 { 3.min(per_task - i) } else { 1 };
                    let batch: Vec<_> = (i..i + n).map(|j| text(t * 1000 + j, EventKeys::default())).collect();
                    store.append(batch).await.unwrap();
                    i += n;
                    if i % 20 == 0 {
                        // Let the subscribers catch up and wait for the next append.
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    } else if i % 5 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            }));
        }
        // Subscribers start while the appenders run (one before any await, others a little later).
        let total = 10 + per_task * tasks;
        let mut subscribers = Vec::new();
        for (k, since) in [4u64, 0, 10, 7].into_iter().enumerate() {
            let store = store.clone();
            subscribers.push(tokio::spawn(async move {
                if k > 0 {
                    tokio::time::sleep(Duration::from_millis(k as u64 * 3)).await;
                }
                let mut sub = store.subscribe(since);
                let got = collect_events(&mut sub, (total - since) as usize, "concurrent subscriber").await;
                let quiet = tokio::time::timeout(Duration::from_millis(100), sub.next()).await;
                assert!(quiet.is_err(), "no event beyond the last appended, got {quiet:?}");
                (since, got)
            }));
        }
        for a in appenders {
            a.await.expect("appender panicked");
        }
        let all = store.read_events(&EventQuery::default()).await.unwrap();
        assert_eq!(seqs(&all), (1..=total).collect::<Vec<_>>());
        for s in subscribers {
            let (since, got) = s.await.expect("subscriber panicked");
            assert_eq!(seqs(&got), (since + 1..=total).collect::<Vec<_>>(), "subscribe({since}): no gap, no duplicate");
            assert_eq!(got, all[since as usize..].to_vec(), "subscribe({since}) delivers the stored records");
        }
    }

    /// `commit_step` stores status, usage, state, messages and events together; on failure nothing.
    pub async fn commit_step_is_atomic(store: Arc<dyn Store>) {
        let mut a = agent("stepper", None, 1);
        a.usage = Usage::default();
        a.total_cost_usd = 0.0;
        store.create_agent(&a).await.unwrap();
        append_texts(&store, 0..2).await;
        let keys = EventKeys { agent_id: Some(a.id), ..EventKeys::default() };
        let usage =
            Usage { input_tokens: 5, output_tokens: 6, cache_read_input_tokens: 7, cache_creation_input_tokens: 8 };
        let state = serde_json::json!({"turn": 1, "pending": []});
        let messages = vec![
            Message::user_text("hello"),
            Message {
                role: Role::Assistant,
                content: vec![
                    ContentBlock::Thinking { thinking: "hm".into(), signature: Some("sig".into()) },
                    ContentBlock::ToolUse {
                        id: "toolu_1".into(),
                        name: "Read".into(),
                        input: serde_json::json!({"file_path": "a.rs"}),
                    },
                ],
            },
        ];
        let recs = store
            .commit_step(StepCommit {
                agent_id: a.id,
                status: Some(AgentStatus::Executing),
                usage: Some((usage, 0.125)),
                state: Some(SavedState { state: Some(state.clone()), session_id: Some("s-1".into()) }),
                messages: messages.clone(),
                changes: Vec::new(),
                events: vec![text(100, keys.clone()), text(101, keys.clone())],
            })
            .await
            .unwrap();
        assert_eq!(seqs(&recs), vec![3, 4], "commit_step events get the next seqs");
        let got = store.get_agent(a.id).await.unwrap().unwrap();
        assert_eq!(got.status, AgentStatus::Executing);
        assert_eq!(got.usage, usage);
        assert!((got.total_cost_usd - 0.125).abs() < 1e-12);
        assert_eq!(got.state, Some(state));
        assert_eq!(got.session_id.as_deref(), Some("s-1"));
        assert_eq!(store.load_conversation(a.id).await.unwrap(), messages);
        assert_eq!(store.read_events(&EventQuery::after(2)).await.unwrap(), recs);

        // A step that changes nothing but appends events.
        let recs2 = store
            .commit_step(StepCommit { agent_id: a.id, events: vec![text(102, keys)], ..StepCommit::default() })
            .await
            .unwrap();
        assert_eq!(seqs(&recs2), vec![5]);
        let unchanged = store.get_agent(a.id).await.unwrap().unwrap();
        assert_eq!(unchanged.status, AgentStatus::Executing, "status untouched when None");
        assert_eq!(unchanged.usage, usage, "usage untouched when None");
        assert_eq!(unchanged.session_id.as_deref(), Some("s-1"), "state untouched when None");

        // A step for an unknown agent stores nothing.
        let failed = store
            .commit_step(StepCommit {
                agent_id: new_id(),
                status: Some(AgentStatus::Blocked),
                messages: vec![Message::user_text("lost")],
                events: vec![text(200, EventKeys::default())],
                ..StepCommit::default()
            })
            .await;
        assert!(matches!(failed, Err(StoreError::NotFound { .. })), "unknown agent: {failed:?}");
        assert_eq!(store.last_seq().await.unwrap(), 5, "a failed step appends no event");
        let next = append_texts(&store, 300..301).await;
        assert_eq!(seqs(&next), vec![6], "a failed step leaves no gap in seqs");
    }

    /// Conversations are per agent, appended in order, and can be cleared.
    pub async fn conversation_load_and_clear(store: Arc<dyn Store>) {
        let a = agent("a", None, 1);
        let b = agent("b", None, 2);
        store.create_agent(&a).await.unwrap();
        store.create_agent(&b).await.unwrap();
        assert!(store.load_conversation(a.id).await.unwrap().is_empty());
        let mut want = Vec::new();
        for i in 0..3 {
            let m = vec![
                Message::user_text(format!("q{i}")),
                Message {
                    role: Role::User,
                    content: vec![ContentBlock::ToolResult {
                        tool_use_id: format!("t{i}"),
                        content: "ok".into(),
                        is_error: i == 1,
                    }],
                },
            ];
            store
                .commit_step(StepCommit { agent_id: a.id, messages: m.clone(), ..StepCommit::default() })
                .await
                .unwrap();
            want.extend(m);
            store
                .commit_step(StepCommit {
                    agent_id: b.id,
                    messages: vec![Message::user_text("b")],
                    ..StepCommit::default()
                })
                .await
                .unwrap();
        }
        assert_eq!(store.load_conversation(a.id).await.unwrap(), want, "messages in order, only this agent's");
        assert_eq!(store.load_conversation(b.id).await.unwrap().len(), 3);
        store.clear_conversation(a.id).await.unwrap();
        assert!(store.load_conversation(a.id).await.unwrap().is_empty(), "cleared");
        assert_eq!(store.load_conversation(b.id).await.unwrap().len(), 3, "other agents keep theirs");
        store
            .commit_step(StepCommit {
                agent_id: a.id,
                messages: vec![Message::user_text("fresh")],
                ..StepCommit::default()
            })
            .await
            .unwrap();
        assert_eq!(store.load_conversation(a.id).await.unwrap(), vec![Message::user_text("fresh")]);
        assert_eq!(store.last_seq().await.unwrap(), 0, "steps without events append nothing");
    }

    /// `status` reports the events and the last seq.
    pub async fn status_counts_events(store: Arc<dyn Store>) {
        let st = store.status().await.unwrap();
        assert_eq!((st.events, st.last_seq), (0, 0), "an empty store");
        assert!(!st.backend.is_empty());
        store.append((1..=5).map(|i| text(i, EventKeys::default())).collect()).await.unwrap();
        let st = store.status().await.unwrap();
        assert_eq!((st.events, st.last_seq), (5, 5));
    }

    /// Pruning removes only events of archived agents appended before the date; seqs are never reused and
    /// readers and followers skip the hole.
    pub async fn prune_removes_only_old_events_of_archived_agents(store: Arc<dyn Store>) {
        let gone = agent("gone", None, 1);
        let live = agent("live", None, 2);
        store.create_agent(&gone).await.unwrap();
        store.create_agent(&live).await.unwrap();
        let keys = |id| EventKeys { agent_id: Some(id), ..EventKeys::default() };
        store.append((0..3).map(|i| text(i, keys(gone.id))).collect()).await.unwrap();
        store.append((0..2).map(|i| text(i, keys(live.id))).collect()).await.unwrap();
        store.append(vec![text(9, EventKeys::default())]).await.unwrap();
        store.archive_agent(gone.id).await.unwrap();

        let long_ago = crate::wire::now() - chrono::Duration::days(365);
        assert_eq!(store.prune_events(long_ago).await.unwrap(), 0, "nothing is that old");
        let later = crate::wire::now() + chrono::Duration::seconds(5);
        assert_eq!(store.prune_events(later).await.unwrap(), 3, "the archived agent's events");
        let left = store.read_events(&EventQuery::default()).await.unwrap();
        assert_eq!(left.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![4, 5, 6], "live and agent-less events stay");
        assert_eq!(store.last_seq().await.unwrap(), 6);
        let after = store.append(vec![text(10, EventKeys::default())]).await.unwrap();
        assert_eq!(after[0].seq, 7, "seqs are not reused after pruning");
        let st = store.status().await.unwrap();
        assert_eq!((st.events, st.last_seq), (4, 7));
        // A follower from the start skips the hole.
        let mut sub = store.subscribe(0);
        let mut seen = Vec::new();
        for _ in 0..4 {
            let r =
                tokio::time::timeout(std::time::Duration::from_secs(10), sub.next()).await.unwrap().unwrap().unwrap();
            seen.push(r.seq);
        }
        assert_eq!(seen, vec![4, 5, 6, 7]);
        assert_eq!(store.prune_events(later).await.unwrap(), 0, "pruning again removes nothing");
    }
}
