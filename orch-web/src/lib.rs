//! Hosts for orch: the composition root every host shares ([`engine`]), and the `orch` binary.
//!
//! A host (the CLI, the server, the Python package) builds its engine in one call:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use orch_core::config::{Flags, OrchConfig};
//!
//! let config = OrchConfig::load(Flags::default())?; // flags, environment, .env, .orch/config.toml
//! let engine = orch_web::engine::open(config).await?; // the store of store.url, providers, executors, …
//! let orchestrator = engine.open_orchestrator(None).await?;
//! # let _ = orchestrator; Ok(()) }
//! ```

pub mod engine;
#[cfg(feature = "notify")]
pub mod notify;
#[cfg(feature = "otel")]
pub mod telemetry;
