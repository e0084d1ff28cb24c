//! The store conformance suite against the in-memory store.

orch_core::store_conformance_tests!(|| async { std::sync::Arc::new(orch_core::store::MemoryStore::new()) });
