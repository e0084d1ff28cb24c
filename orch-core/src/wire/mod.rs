//! Types shared by every user of orch: the engine, the stores, the web host, the browser dashboard and
//! the Python package. No I/O lives here, so this module builds for `wasm32-unknown-unknown`.
//!
//! It is a protocol: readers of an older build must keep working with data of a newer one. Enums that may
//! grow are `#[non_exhaustive]`; an event of an unknown type decodes as [`Event::Unknown`]; a stored event
//! that cannot be decoded is read as [`Event::Undecodable`]. Structs that the stores and hosts build with
//! literals (entities, [`EventRecord`], [`EventKeys`], [`Usage`], [`EventQuery`], …) stay exhaustive;
//! fields added to them come with `#[serde(default)]` so older JSON still decodes.

mod approval;
mod delta;
mod entity;
mod event;
mod event_de;
mod graph;
mod message;
mod query;
mod reason;
mod run;
mod work;

pub use approval::*;
pub use delta::*;
pub use entity::*;
pub use event::*;
pub use graph::*;
pub use message::*;
pub use query::*;
pub use reason::*;
pub use run::*;
pub use work::*;

/// Identifier of an orchestrator, agent, prompt, chat message, workflow or system log (UUID v7).
pub type Id = uuid::Uuid;

/// Timestamps are UTC.
pub type Timestamp = chrono::DateTime<chrono::Utc>;

/// A fresh, time-ordered identifier (UUID v7).
#[cfg(feature = "store")]
pub fn new_id() -> Id {
    uuid::Uuid::now_v7()
}

/// Eight characters that tell ids apart in names (a workflow step's agent `<step>-<these>`, a task
/// attempt's agent and branch): the last 8 hex digits. orch's ids are UUIDv7, whose first 8 are a
/// timestamp shared by ids made within the same minute; the last 8 are random.
pub fn short_id(id: Id) -> String {
    let hex = id.simple().to_string();
    hex[hex.len().saturating_sub(8)..].to_string()
}

/// The current time, UTC.
#[cfg(feature = "store")]
pub fn now() -> Timestamp {
    chrono::Utc::now()
}
