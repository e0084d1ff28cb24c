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
    Agent, AgentRole, AgentStatus, ChatMessage, Complexity, Event, EventKeys, EventRecord, GraphStatus, Id, LogLevel,
    Orchestrator, Participant, Plan, PlanStatus, PlannedTask, Prompt, PromptAuthor, SystemLog, Task, TaskGraph,
    TaskStatus, TemplateRef, Timestamp, Usage, WorkflowRecord, WorkflowStatus,
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
            workflow_run_is_compare_and_swap,
            plans_are_versioned,
            graphs_upsert_get_list,
            tasks_insert_list_and_update,
            added_tasks_take_the_next_positions,
            graph_facts_are_those_of_completed_tasks,
            task_updates_are_fenced,
            claims_take_due_tasks_by_wave_and_index,
            concurrent_claims_take_each_task_once,
            stale_tasks_are_taken_over,
            finished_tasks_release_dependents,
            concurrent_parents_release_their_child_once,
            graphs_end_when_no_task_is_open,
            graph_status_changes_only_from_listed,
            budget_reservations_respect_limits,
            concurrent_reservations_never_pass_the_limit,
            a_failed_batch_undoes_its_claim,
            claims_start_attempts_in_their_commit,
            steps_with_reservations_store_whole_or_nothing,
            workers_heartbeat_list_remove,
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
            run_end_releases_only_its_own_claim,
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
    "workflow_run_is_compare_and_swap",
    "plans_are_versioned",
    "graphs_upsert_get_list",
    "tasks_insert_list_and_update",
    "added_tasks_take_the_next_positions",
    "graph_facts_are_those_of_completed_tasks",
    "task_updates_are_fenced",
    "claims_take_due_tasks_by_wave_and_index",
    "concurrent_claims_take_each_task_once",
    "stale_tasks_are_taken_over",
    "finished_tasks_release_dependents",
    "concurrent_parents_release_their_child_once",
    "graphs_end_when_no_task_is_open",
    "graph_status_changes_only_from_listed",
    "budget_reservations_respect_limits",
    "concurrent_reservations_never_pass_the_limit",
    "a_failed_batch_undoes_its_claim",
    "claims_start_attempts_in_their_commit",
    "steps_with_reservations_store_whole_or_nothing",
    "workers_heartbeat_list_remove",
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
    "run_end_releases_only_its_own_claim",
    "conversation_load_and_clear",
    "status_counts_events",
    "prune_removes_only_old_events_of_archived_agents",
];

/// Fixture builders (deterministic content, microsecond timestamps).
pub mod fixtures;

/// The checks, one `async fn(Arc<dyn Store>)` each. Each expects a fresh, empty store.
pub mod checks;
