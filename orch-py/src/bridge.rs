//! Running engine futures from Python: as awaitables on the asyncio loop ([`awaitable`]) or blocking
//! with the GIL released ([`blocking`]), both on one tokio runtime; and JSON values to and from Python.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use serde_json::Value;

use crate::error::Failure;

/// How often a blocking call looks for a pending signal (Ctrl-C) while it waits.
const SIGNAL_POLL: Duration = Duration::from_millis(100);

/// The tokio runtime every engine of this process runs on.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    pyo3_async_runtimes::tokio::get_runtime()
}

/// Starts a call's future on the running asyncio loop, returning the asyncio future of its result.
type Starter = Box<dyn for<'py> FnOnce(Python<'py>) -> PyResult<Bound<'py, PyAny>> + Send>;

/// `fut` as a Python coroutine ([`Call`]): it starts on the running asyncio loop when first awaited, so
/// it can be made outside one (`asyncio.run(engine.command(…))`). Cancelling it drops the future.
pub fn awaitable<'py, T, F>(py: Python<'py>, fut: F) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = Result<T, Failure>> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    let start: Starter = Box::new(move |py| {
        pyo3_async_runtimes::tokio::future_into_py(py, async move { fut.await.map_err(PyErr::from) })
    });
    Ok(Bound::new(py, Call { start: Mutex::new(Some(start)), inner: Mutex::new(None) })?.into_any())
}

/// An engine call as a coroutine (it has `__await__`, `send`, `throw` and `close`, so asyncio takes it
/// for one: `asyncio.run`, `create_task`, `gather`). Its first `send` starts the engine's future on the
/// running loop (through `pyo3-async-runtimes`); from then on it delegates to that asyncio future.
#[pyclass(frozen, module = "orch._orch", name = "Call")]
pub struct Call {
    start: Mutex<Option<Starter>>,
    inner: Mutex<Option<Py<PyAny>>>,
}

impl Call {
    /// The iterator of the asyncio future, starting the call first if it has not started.
    fn iterator<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        if let Some(it) = self.inner.lock().ok().and_then(|i| i.as_ref().map(|i| i.clone_ref(py))) {
            return Ok(it.into_bound(py));
        }
        let start = self.start.lock().ok().and_then(|mut s| s.take());
        let Some(start) = start else {
            return Err(PyRuntimeError::new_err("cannot reuse an orch call that was already awaited or closed"));
        };
        let it = start(py)?.call_method0("__await__")?;
        if let Ok(mut inner) = self.inner.lock() {
            *inner = Some(it.clone().unbind());
        }
        Ok(it)
    }
}

#[pymethods]
impl Call {
    fn __await__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.iterator(py)?.call_method1("send", (py.None(),))
    }

    /// Resumes the call (asyncio sends None).
    fn send<'py>(&self, py: Python<'py>, value: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        self.iterator(py)?.call_method1("send", (value,))
    }

    /// Raises `exc` in the call (a cancelled task); one not started yet just raises it.
    #[pyo3(signature = (exc, value=None, traceback=None))]
    fn throw<'py>(
        &self,
        py: Python<'py>,
        exc: Bound<'py, PyAny>,
        value: Option<Bound<'py, PyAny>>,
        traceback: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let started = self.inner.lock().ok().and_then(|i| i.as_ref().map(|i| i.clone_ref(py)));
        match started {
            Some(it) => it.into_bound(py).call_method1("throw", (exc, value, traceback)),
            None => {
                self.close(py)?;
                let err = match value {
                    Some(v) if !v.is_none() => PyErr::from_value(v),
                    _ if exc.is_instance_of::<pyo3::types::PyType>() => PyErr::from_value(exc.call0()?),
                    _ => PyErr::from_value(exc),
                };
                Err(err)
            }
        }
    }

    /// Closes the call: one not started never starts; a started one is closed (its future dropped
    /// when the asyncio future is cancelled).
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        if let Ok(mut s) = self.start.lock() {
            s.take();
        }
        let started = self.inner.lock().ok().and_then(|i| i.as_ref().map(|i| i.clone_ref(py)));
        if let Some(it) = started {
            it.into_bound(py).call_method0("close")?;
        }
        Ok(())
    }
}

/// Runs `fut` to its end on the runtime with the GIL released. A signal handler that raises (Ctrl-C's
/// `KeyboardInterrupt`) stops the wait: the future is dropped (an agent run it drives is interrupted by
/// its guard) and the exception propagates.
pub fn blocking<T, F>(py: Python<'_>, fut: F) -> PyResult<T>
where
    F: Future<Output = Result<T, Failure>> + Send + 'static,
    T: Send + 'static,
{
    let mut task = runtime().spawn(fut);
    loop {
        let waited = py.detach(|| runtime().block_on(async { tokio::time::timeout(SIGNAL_POLL, &mut task).await }));
        match waited {
            Ok(Ok(result)) => return result.map_err(PyErr::from),
            Ok(Err(join)) => {
                return Err(
                    Failure::new(orch_core::ErrorKind::Internal, format!("the engine task failed: {join}")).into()
                );
            }
            Err(_elapsed) => {
                if let Err(e) = py.check_signals() {
                    task.abort();
                    // The task's guards run as it is dropped: a run it drove is interrupted (see
                    // `winddown`) before the exception reaches Python.
                    py.detach(|| runtime().block_on(async { tokio::time::timeout(SIGNAL_POLL * 20, &mut task).await }))
                        .ok();
                    return Err(e);
                }
            }
        }
    }
}

/// A JSON value as the Python object `json.loads` makes of it.
pub fn to_py<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    match value {
        Value::Null => Ok(py.None().into_bound(py)),
        Value::Bool(b) => Ok(pyo3::types::PyBool::new(py, *b).to_owned().into_any()),
        Value::String(s) => Ok(pyo3::types::PyString::new(py, s).into_any()),
        _ => py.import("json")?.call_method1("loads", (value.to_string(),)),
    }
}

/// A Python object (dict, list, str, number, bool, None) as a JSON value, through `json.dumps`.
pub fn from_py(obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    let text: String = obj.py().import("json")?.call_method1("dumps", (obj,))?.extract()?;
    serde_json::from_str(&text).map_err(|e| Failure::usage(format!("not JSON data: {e}")).into())
}

/// A serializable value as a Python object.
pub fn serde_to_py<'py, T: serde::Serialize>(py: Python<'py>, value: &T) -> PyResult<Bound<'py, PyAny>> {
    let v = serde_json::to_value(value)
        .map_err(|e| Failure::new(orch_core::ErrorKind::Internal, format!("cannot encode a record: {e}")))?;
    to_py(py, &v)
}
