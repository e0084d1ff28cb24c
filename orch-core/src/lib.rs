//! # orch-core
//!
//! Run LLM agents under deterministic orchestration. This crate holds the domain types and event log
//! ([`wire`]), the [`store::Store`] trait, the model layer ([`model`]), tools ([`tool`]), hooks
//! ([`hook`]) and the native agent loop ([`executor`]). It knows no host, no database driver and no
//! async runtime: the host supplies a [`runtime::Runtime`] ([`runtime::TokioRuntime`] with the default
//! `tokio` feature).
//!
//! Features:
//! - `store` — the contracts a store implements: the [`store::Store`] trait, [`store::Batch`], the log
//!   follower and the in-memory store (runtime-agnostic; what `orch-store-sqlite` and
//!   `orch-store-postgres` depend on);
//! - `engine` — everything else beyond the wire types: agent loop, tools, hooks, models, orchestrator,
//!   configuration (runtime-agnostic);
//! - `tokio` (default) — the tokio runtime, the `Bash` tool's processes, the Claude Code executor;
//! - `http` (default) — the Anthropic and OpenAI-compatible providers over one SSE transport (reqwest, rustls);
//! - `testkit` — the store conformance suite.
//!
//! Without default features only [`wire`] is built, and it builds for `wasm32-unknown-unknown`.
//!
//! ```no_run
//! # #[cfg(feature = "tokio")]
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use orch_core::prelude::*;
//!
//! let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
//! let model = Arc::new(ScriptedModel::from_json_str(r#"{"steps": [{"reply": [{"type": "text", "text": "hi"}]}]}"#)?);
//! let runner = AgentRunner::builder(store.clone(), model).build();
//! let agent = runner.ensure_agent("agent", "scripted", ".").await?;
//! let outcome = runner.run(agent.id, "hello", RunOptions::default()).await?;
//! assert_eq!(outcome.final_text.as_deref(), Some("hi"));
//! # Ok(()) }
//! ```

#![cfg_attr(not(feature = "store"), allow(unused))]

#[cfg(feature = "engine")]
pub mod approval;
pub mod error;
mod text;
pub mod wire;

#[cfg(feature = "engine")]
pub mod config;
#[cfg(feature = "engine")]
pub mod confine;
#[cfg(feature = "tokio")]
pub mod engine;
#[cfg(feature = "engine")]
pub mod executor;
#[cfg(feature = "engine")]
pub mod git;
#[cfg(feature = "engine")]
pub mod graph;
#[cfg(feature = "engine")]
pub mod hook;
#[cfg(feature = "engine")]
mod interrupt;
#[cfg(feature = "engine")]
pub mod model;
#[cfg(feature = "engine")]
pub mod orchestrator;
#[cfg(feature = "engine")]
pub mod runtime;
#[cfg(feature = "store")]
pub mod store;
#[cfg(feature = "engine")]
pub mod template;
#[cfg(feature = "engine")]
pub mod tool;
#[cfg(feature = "engine")]
pub mod workflow;

pub use error::ErrorKind;
#[cfg(feature = "engine")]
pub use interrupt::Interrupt;

/// The names most programs need.
#[cfg(feature = "engine")]
pub mod prelude {
    pub use crate::Interrupt;
    pub use crate::executor::{AgentRunner, RunError, RunOptions, RunOutcome};
    pub use crate::hook::{FnHook, Hook, HookDecision, HookEvent, HookInput, HookRegistry};
    pub use crate::model::scripted::ScriptedModel;
    pub use crate::model::{ModelProvider, ModelRequest, PriceTable};
    #[cfg(feature = "tokio")]
    pub use crate::runtime::TokioRuntime;
    pub use crate::store::{EventQuery, MemoryStore, Store, StoreError};
    pub use crate::tool::{Tool, ToolContext, ToolError, ToolOutput, ToolRegistry, TypedTool};
    pub use crate::wire::*;
}
