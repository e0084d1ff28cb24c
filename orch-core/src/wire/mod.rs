//! Types shared by every user of orch: the engine, the stores, the web host, the browser dashboard and
//! the Python package. No I/O lives here, so this module builds for `wasm32-unknown-unknown`.

mod entity;
mod event;
mod message;

pub use entity::*;
pub use event::*;
pub use message::*;

/// Identifier of an orchestrator, agent, prompt, chat message, workflow or system log (UUID v7).
pub type Id = uuid::Uuid;

/// Timestamps are UTC.
pub type Timestamp = chrono::DateTime<chrono::Utc>;

/// A fresh, time-ordered identifier (UUID v7).
#[cfg(feature = "engine")]
pub fn new_id() -> Id {
    uuid::Uuid::now_v7()
}

/// The current time, UTC.
#[cfg(feature = "engine")]
pub fn now() -> Timestamp {
    chrono::Utc::now()
}
