//! The store conformance suite against a SQLite file and an in-memory SQLite database.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod file {
    orch_core::store_conformance_tests!(|| async {
        let dir = tempfile::tempdir().unwrap();
        let store = orch_store_sqlite::SqliteStore::open(orch_store_sqlite::default_path(dir.path())).unwrap();
        (std::sync::Arc::new(store), dir)
    });
}

mod memory {
    orch_core::store_conformance_tests!(|| async {
        std::sync::Arc::new(orch_store_sqlite::SqliteStore::in_memory().unwrap())
    });
}

mod url {
    // The same suite through `open_url("sqlite://…")`.
    orch_core::store_conformance_tests!(|| async {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("db").join("orch.db").display());
        (std::sync::Arc::new(orch_store_sqlite::SqliteStore::open_url(&url).unwrap()), dir)
    });
}
