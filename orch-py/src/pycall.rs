//! Calling Python from the engine: the callables of Python tools and hooks, sync or async.
//!
//! The engine's tokio threads never wait for the GIL. A call takes it on a blocking thread
//! (`spawn_blocking`) only to call the callable and to read its result. A sync callable runs there; an
//! awaitable it returns (an `async def`) runs on the package's own asyncio loop thread
//! (`orch._callbacks`), and the engine awaits its completion without the GIL. An exception becomes
//! [`CallError::Raised`] with the Python traceback; nothing a callable does can panic the engine.

use std::sync::{Arc, Mutex};

use orch_core::Interrupt;
use pyo3::prelude::*;
use pyo3::types::{PyCFunction, PyDict};
use serde_json::Value;
use tokio::sync::oneshot;

use crate::bridge::to_py;

/// Why a call gave no result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The callable raised (the text is the formatted traceback), or its result could not be read.
    Raised(String),
    /// The run was interrupted before the callable finished.
    Interrupted,
}

/// Reads a callable's result (with the GIL) into what the engine needs.
pub type Reader<T> = fn(&Bound<'_, PyAny>) -> Result<T, String>;

/// How the engine's input is passed to the callable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// A JSON object as keyword arguments (`f(**input)`); anything else as one argument.
    Keywords,
    /// As one positional argument (`f(input)`).
    One,
}

/// A Python callable held by the engine. Cloning shares it.
#[derive(Clone)]
pub struct PyCallable {
    func: Arc<Py<PyAny>>,
}

/// Where a call is after its first step.
enum Started<T> {
    /// The callable returned (or raised).
    Done(Result<T, CallError>),
    /// It returned an awaitable, now running on the callback loop as this `concurrent.futures.Future`;
    /// `done` fires when it finishes.
    Pending { future: Py<PyAny>, done: oneshot::Receiver<()> },
}

impl PyCallable {
    /// Holds `func`.
    pub fn new(func: Py<PyAny>) -> Self {
        Self { func: Arc::new(func) }
    }

    /// Calls it with `input` and reads the result with `read`. An awaitable result is awaited on the
    /// callback loop. A triggered `interrupt` ends the wait with [`CallError::Interrupted`] (an awaitable
    /// is cancelled; a sync callable still running finishes on its own thread, its result dropped).
    pub async fn call<T: Send + 'static>(
        &self,
        input: Value,
        pass: Pass,
        read: Reader<T>,
        interrupt: Option<&Interrupt>,
    ) -> Result<T, CallError> {
        let func = self.func.clone();
        let start = with_python(move |py| start(py, &func, &input, pass, read));
        let started = match interrupt {
            Some(i) => tokio::select! {
                s = start => s,
                _ = i.triggered() => return Err(CallError::Interrupted),
            },
            None => start.await,
        };
        let (future, done) = match started.and_then(|s| s) {
            Ok(Started::Done(result)) => return result,
            Ok(Started::Pending { future, done }) => (future, done),
            Err(e) => return Err(e),
        };
        let finished = match interrupt {
            Some(i) => tokio::select! {
                _ = done => true,
                _ = i.triggered() => false,
            },
            None => {
                // A dropped sender (the loop went away) also ends the wait; the result says why.
                let _ = done.await;
                true
            }
        };
        if !finished {
            // Cancels the task on the callback loop; its result is not wanted any more.
            let _ = with_python(move |py| {
                let _ = future.bind(py).call_method0("cancel");
            })
            .await;
            return Err(CallError::Interrupted);
        }
        with_python(move |py| {
            // Done, so `result(0)` does not wait: it returns the value or raises the exception.
            match future.bind(py).call_method1("result", (0,)) {
                Ok(value) => read(&value).map_err(CallError::Raised),
                Err(e) => Err(CallError::Raised(describe(py, &e))),
            }
        })
        .await?
    }
}

/// Runs `f` with the GIL on a blocking thread. The interpreter shutting down, or `f` failing to finish,
/// is a [`CallError::Raised`].
async fn with_python<R: Send + 'static>(
    f: impl for<'py> FnOnce(Python<'py>) -> R + Send + 'static,
) -> Result<R, CallError> {
    match tokio::task::spawn_blocking(move || Python::try_attach(f)).await {
        Ok(Some(r)) => Ok(r),
        Ok(None) => Err(CallError::Raised("the Python interpreter is shutting down".into())),
        Err(e) => Err(CallError::Raised(format!("the Python call did not finish: {e}"))),
    }
}

/// Calls `func` with `input`: its result read, or its awaitable handed to the callback loop.
fn start<T>(
    py: Python<'_>,
    func: &Py<PyAny>,
    input: &Value,
    pass: Pass,
    read: Reader<T>,
) -> Result<Started<T>, CallError> {
    let raised = |e: PyErr| CallError::Raised(describe(py, &e));
    let arg = to_py(py, input).map_err(raised)?;
    let func = func.bind(py);
    let result = match (pass, arg.cast::<PyDict>()) {
        (Pass::Keywords, Ok(kwargs)) => func.call((), Some(kwargs)),
        _ => func.call1((arg,)),
    }
    .map_err(raised)?;
    if !result.hasattr("__await__").map_err(raised)? {
        return Ok(Started::Done(read(&result).map_err(CallError::Raised)));
    }
    let future = py.import("orch._callbacks").and_then(|m| m.call_method1("submit", (result,))).map_err(raised)?;
    let (tx, done) = oneshot::channel::<()>();
    let tx = Mutex::new(Some(tx));
    let on_done = PyCFunction::new_closure(py, None, None, move |_args, _kwargs| {
        if let Some(tx) = tx.lock().ok().and_then(|mut t| t.take()) {
            let _ = tx.send(());
        }
    })
    .map_err(raised)?;
    future.call_method1("add_done_callback", (on_done,)).map_err(raised)?;
    Ok(Started::Pending { future: future.unbind(), done })
}

/// An exception as Python prints it: the traceback, then the exception's type and message.
pub fn describe(py: Python<'_>, err: &PyErr) -> String {
    py.import("orch._callbacks")
        .and_then(|m| m.call_method1("describe", (err.value(py), err.traceback(py))))
        .and_then(|t| t.extract::<String>())
        .unwrap_or_else(|_| err.to_string())
}
