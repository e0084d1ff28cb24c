//! The native part of the `orch` Python package (`orch._orch`): the engine of orch, opened through the
//! composition root every host shares (`orch_web::engine`), with its agents, events and workflow runs.
//!
//! Methods of `Engine` and `Workflows` return awaitables (engine futures on one tokio runtime, each
//! completing an asyncio future: `bridge::into_asyncio`); `engine.sync` has the same methods, blocking
//! with the GIL released. Engine errors are raised as `orch.OrchError` subclasses picked by the error's
//! kind.

mod adw;
mod bridge;
mod core;
mod engine;
mod error;
mod follow;
mod hooks;
mod pycall;
mod query;
mod tools;
mod types;
mod winddown;
mod workflows;

use pyo3::prelude::*;

/// The module `orch._orch`.
#[pymodule]
fn _orch(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(engine::open, m)?)?;
    m.add_function(wrap_pyfunction!(engine::open_async, m)?)?;
    m.add_class::<engine::Engine>()?;
    m.add_class::<engine::SyncEngine>()?;
    m.add_class::<engine::Workflows>()?;
    m.add_class::<engine::SyncWorkflows>()?;
    m.add_class::<follow::Follower>()?;
    m.add_class::<bridge::Call>()?;
    m.add_class::<tools::ToolDecorator>()?;
    m.add_class::<hooks::HookDecorator>()?;
    m.add_class::<types::Event>()?;
    m.add_class::<types::Agent>()?;
    m.add_class::<types::Outcome>()?;
    m.add_class::<types::WorkflowRun>()?;
    adw::register(m)?;
    query::register(m)?;
    m.add_function(wrap_pyfunction!(winddown::wind_down, m)?)?;
    m.add_function(wrap_pyfunction!(winddown::exiting, m)?)?;
    error::register(m)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
