//! Engine errors as Python exceptions: `OrchError` and one subclass per [`ErrorKind`], each carrying the
//! engine's message (and a `kind` class attribute, the kind's snake-case name).

use orch_core::ErrorKind;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyType;

pyo3::create_exception!(orch, OrchError, PyException, "Any failure of the orch engine; `kind` names its class.");
pyo3::create_exception!(orch, UsageError, OrchError, "Bad input: a setting, model spec, parameter or file.");
pyo3::create_exception!(orch, NotFoundError, OrchError, "No such agent, workflow run, template or entity.");
pyo3::create_exception!(orch, ConflictError, OrchError, "The request contradicts the stored state.");
pyo3::create_exception!(orch, BusyError, OrchError, "The agent or workflow run is busy (here or in another process).");
pyo3::create_exception!(orch, UnavailableError, OrchError, "The store or provider cannot be reached now.");
pyo3::create_exception!(orch, ProviderError, OrchError, "The model provider refused or broke the call.");
pyo3::create_exception!(orch, RunInterrupted, OrchError, "Stopped on request (an interrupt, Ctrl-C).");
pyo3::create_exception!(orch, InternalError, OrchError, "Damaged or incompatible data, or a bug.");
pyo3::create_exception!(orch, RunFailedError, OrchError, "An agent's run failed (the message says why).");

/// A failure on its way to Python: its kind picks the exception class.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// The message.
    pub message: String,
    /// A failed agent run (raised as `RunFailedError`, whatever its kind).
    pub run_failed: bool,
}

impl Failure {
    /// A failure of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into(), run_failed: false }
    }

    /// Bad input.
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Usage, message)
    }

    /// An agent's run that failed.
    pub fn run_failed(message: impl Into<String>) -> Self {
        Self { kind: ErrorKind::Internal, message: message.into(), run_failed: true }
    }
}

/// Every engine error converts by its kind.
macro_rules! failure_from_kind {
    ($($error:ty),* $(,)?) => {$(
        impl From<$error> for Failure {
            fn from(e: $error) -> Self {
                Self::new(e.kind(), e.to_string())
            }
        }
    )*};
}

failure_from_kind!(
    orch_core::orchestrator::ManageError,
    orch_core::orchestrator::OrchestratorError,
    orch_core::engine::EngineError,
    orch_core::config::ConfigError,
    orch_core::store::StoreError,
    orch_core::executor::RunError,
    orch_core::workflow::WorkflowError,
);

impl From<Failure> for PyErr {
    fn from(f: Failure) -> Self {
        if f.run_failed {
            return RunFailedError::new_err(f.message);
        }
        match f.kind {
            ErrorKind::Usage => UsageError::new_err(f.message),
            ErrorKind::NotFound => NotFoundError::new_err(f.message),
            ErrorKind::Conflict => ConflictError::new_err(f.message),
            ErrorKind::Busy => BusyError::new_err(f.message),
            ErrorKind::Unavailable => UnavailableError::new_err(f.message),
            ErrorKind::Provider => ProviderError::new_err(f.message),
            ErrorKind::Interrupted => RunInterrupted::new_err(f.message),
            _ => InternalError::new_err(f.message),
        }
    }
}

/// Adds the exception classes to the module, each with its `kind`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let classes: [(Bound<'_, PyType>, &str); 10] = [
        (py.get_type::<OrchError>(), "error"),
        (py.get_type::<UsageError>(), ErrorKind::Usage.as_str()),
        (py.get_type::<NotFoundError>(), ErrorKind::NotFound.as_str()),
        (py.get_type::<ConflictError>(), ErrorKind::Conflict.as_str()),
        (py.get_type::<BusyError>(), ErrorKind::Busy.as_str()),
        (py.get_type::<UnavailableError>(), ErrorKind::Unavailable.as_str()),
        (py.get_type::<ProviderError>(), ErrorKind::Provider.as_str()),
        (py.get_type::<RunInterrupted>(), ErrorKind::Interrupted.as_str()),
        (py.get_type::<InternalError>(), ErrorKind::Internal.as_str()),
        (py.get_type::<RunFailedError>(), "run_failed"),
    ];
    for (class, kind) in classes {
        class.setattr("kind", kind)?;
        m.add(class.name()?, class)?;
    }
    Ok(())
}
