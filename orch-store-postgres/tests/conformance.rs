//! The store conformance suite against PostgreSQL: every check in its own fresh schema, dropped after.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

orch_core::store_conformance_tests!(
    #[ignore = "needs PostgreSQL on 127.0.0.1:5432 (or ORCH_TEST_PG_URL); scripts/test.sh runs it with --ignored"];
    {
        // Fails, saying so, when the server is not reachable.
        let url = support::server();
        move || async move { support::fresh_store(&url).await }
    }
);
