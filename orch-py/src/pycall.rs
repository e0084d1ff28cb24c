//! Calling Python from the engine: the callables of Python tools, hooks and workflows, sync or async.
//!
//! The engine's threads never run Python code for long and never wait for the GIL. A call takes it on
//! a blocking thread (`spawn_blocking`) only to hand the callable to `orch._callbacks.call`, which runs
//! it on a thread Python made: an `async def` on the package's own asyncio loop thread, a sync callable
//! on one of the package's daemon pool threads. Its result is read where it finishes, in the callback
//! of its `concurrent.futures.Future`, and sent to the engine, which awaits it without the GIL. So no
//! engine thread is inside Python when the interpreter exits (Python stops its own daemon threads
//! then; an engine thread caught in Python code would abort the process). An exception becomes
//! [`CallError::Raised`] with the Python traceback; nothing a callable does can panic the engine.

use std::sync::{Arc, Mutex};

use orch_core::Interrupt;
use pyo3::prelude::*;
use pyo3::types::{PyCFunction, PyDict, PyTuple};
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

/// A call handed to Python: the `concurrent.futures.Future` of its result, and where the result,
/// read when it finishes, arrives.
struct Started<T> {
    future: Py<PyAny>,
    result: oneshot::Receiver<Result<T, CallError>>,
}

impl PyCallable {
    /// Holds `func`.
    pub fn new(func: Py<PyAny>) -> Self {
        Self { func: Arc::new(func) }
    }

    /// Calls it with `input` and reads the result with `read`. A triggered `interrupt` ends the wait
    /// with [`CallError::Interrupted`] (an awaitable is cancelled; a sync callable still running finishes
    /// on its own thread, its result dropped).
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
        let Started { future, result } = started.and_then(|s| s)?;
        let finished = match interrupt {
            Some(i) => tokio::select! {
                r = result => Some(r),
                _ = i.triggered() => None,
            },
            None => Some(result.await),
        };
        match finished {
            Some(Ok(outcome)) => outcome,
            // The future's callback went away without a result (the interpreter is exiting).
            Some(Err(_)) => Err(CallError::Raised("the Python call ended without a result".into())),
            None => {
                // Cancels an awaitable on the callback loop; its result is not wanted any more.
                let _ = with_python(move |py| {
                    let _ = future.bind(py).call_method0("cancel");
                })
                .await;
                Err(CallError::Interrupted)
            }
        }
    }
}

/// Runs `f` with the GIL ([`crate::winddown::enter_python`]). The program exiting, or `f` failing to
/// finish, is a [`CallError::Raised`].
async fn with_python<R: Send + 'static>(
    f: impl for<'py> FnOnce(Python<'py>) -> R + Send + 'static,
) -> Result<R, CallError> {
    match crate::winddown::enter_python(f).await {
        Ok(Some(r)) => Ok(r),
        Ok(None) => Err(CallError::Raised("the Python program is exiting".into())),
        Err(e) => Err(CallError::Raised(format!("the Python call did not finish: {e}"))),
    }
}

/// Hands `func` and `input` to `orch._callbacks.call`; the result is read by the callback of the future
/// it returns, on the thread where the call finished.
fn start<T: Send + 'static>(
    py: Python<'_>,
    func: &Py<PyAny>,
    input: &Value,
    pass: Pass,
    read: Reader<T>,
) -> Result<Started<T>, CallError> {
    let raised = |e: PyErr| CallError::Raised(describe(py, &e));
    let arg = to_py(py, input).map_err(raised)?;
    let (args, kwargs) = match (pass, arg.cast::<PyDict>()) {
        (Pass::Keywords, Ok(kwargs)) => (PyTuple::empty(py), Some(kwargs.clone())),
        _ => (PyTuple::new(py, [arg]).map_err(raised)?, None),
    };
    let callbacks = py.import("orch._callbacks").map_err(raised)?;
    let future = callbacks.call_method1("call", (func.bind(py), args, kwargs)).map_err(raised)?;
    let (tx, result) = oneshot::channel::<Result<T, CallError>>();
    let tx = Mutex::new(Some(tx));
    let on_done = PyCFunction::new_closure(py, None, None, move |args, _kwargs| {
        let Some(tx) = tx.lock().ok().and_then(|mut t| t.take()) else { return };
        let py = args.py();
        let outcome = match args.get_item(0) {
            Err(e) => Err(CallError::Raised(describe(py, &e))),
            Ok(f) if f.call_method0("cancelled").and_then(|c| c.is_truthy()).unwrap_or(false) => {
                Err(CallError::Interrupted)
            }
            // Done, so `result(0)` does not wait: it returns the value or raises the exception.
            Ok(f) => match f.call_method1("result", (0,)) {
                Ok(value) => read(&value).map_err(CallError::Raised),
                Err(e) => Err(CallError::Raised(describe(py, &e))),
            },
        };
        let _ = tx.send(outcome);
    })
    .map_err(raised)?;
    future.call_method1("add_done_callback", (on_done,)).map_err(raised)?;
    Ok(Started { future: future.unbind(), result })
}

/// An exception as Python prints it: the traceback, then the exception's type and message.
pub fn describe(py: Python<'_>, err: &PyErr) -> String {
    py.import("orch._callbacks")
        .and_then(|m| m.call_method1("describe", (err.value(py), err.traceback(py))))
        .and_then(|t| t.extract::<String>())
        .unwrap_or_else(|_| err.to_string())
}
