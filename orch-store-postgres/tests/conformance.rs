//! The store conformance suite against PostgreSQL: every check in its own fresh schema, dropped after.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

orch_core::store_conformance_tests!({
    // Skips (or, with CI=true, fails) when the server is not reachable.
    let Some(url) = support::server() else { return };
    move || async move { support::fresh_store(&url).await }
});
