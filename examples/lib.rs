//! Helpers shared by the examples.

use orch_core::store::{EventQuery, Store, StoreError};

/// Prints every event in the store, one line each: seq, type, summary.
pub async fn print_events(store: &dyn Store) -> Result<(), StoreError> {
    for r in store.read_events(&EventQuery::default()).await? {
        println!("{:>4}  {:<18} {}", r.seq, r.event.kind(), r.event.summary());
    }
    Ok(())
}
