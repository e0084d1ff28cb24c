//! Running engine futures from Python: as awaitables on the asyncio loop ([`awaitable`]) or blocking
//! with the GIL released ([`blocking`]), both on one tokio runtime; and JSON values to and from Python.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use serde_json::Value;

use tokio::sync::oneshot;

use crate::error::Failure;
use crate::winddown;

/// How often a blocking call looks for a pending signal (Ctrl-C) while it waits.
const SIGNAL_POLL: Duration = Duration::from_millis(100);

/// The tokio runtime every engine of this process runs on, made on first use; its threads are named
/// `orch-engine` (as `py-spy dump` or a debugger shows them).
#[allow(clippy::expect_used)] // No runtime (the OS refuses the threads): nothing of the package can run.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("orch-engine")
            .build()
            .expect("cannot start the engine's threads")
    })
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
    let start: Starter = Box::new(move |py| into_asyncio(py, async move { fut.await.map_err(PyErr::from) }));
    Ok(Bound::new(py, Call { start: Mutex::new(Some(start)), inner: Mutex::new(None) })?.into_any())
}

/// An engine call as a coroutine (it has `__await__`, `send`, `throw` and `close`, so asyncio takes it
/// for one: `asyncio.run`, `create_task`, `gather`). Its first `send` starts the engine's future on the
/// running loop ([`into_asyncio`]); from then on it delegates to that asyncio future.
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

/// Drops an engine future whose asyncio future was done first: cancelled (its task was), or dropped.
#[pyclass(frozen)]
struct DropOnCancel {
    cancel: Mutex<Option<oneshot::Sender<()>>>,
}

#[pymethods]
impl DropOnCancel {
    fn __call__(&self, future: &Bound<'_, PyAny>) -> PyResult<()> {
        if future.call_method0("cancelled")?.is_truthy()?
            && let Some(cancel) = self.cancel.lock().unwrap_or_else(|p| p.into_inner()).take()
        {
            let _ = cancel.send(());
        }
        Ok(())
    }
}

/// Runs `fut` on the runtime and returns an asyncio future of its outcome on the running loop.
/// Cancelling that future drops `fut` (an agent run it drives is interrupted by its guard).
///
/// The outcome is handed to the loop's thread (`orch._callbacks.resolve` through
/// `call_soon_threadsafe`), which sets it; the engine thread holds the GIL only for that hand-over,
/// and only while the program is not exiting ([`winddown::enter_python`]): an engine thread inside Python
/// when the interpreter finalizes aborts the process (`PyGILState_Release`), which
/// `pyo3-async-runtimes`' `future_into_py`, used before, did to a program that exited with calls still
/// completing.
pub fn into_asyncio<'py, T, F>(py: Python<'py>, fut: F) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = PyResult<T>> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    let event_loop = py.import("asyncio")?.call_method0("get_running_loop")?;
    let future = event_loop.call_method0("create_future")?;
    let (cancel, cancelled) = oneshot::channel::<()>();
    future.call_method1("add_done_callback", (DropOnCancel { cancel: Mutex::new(Some(cancel)) },))?;
    let resolve = py.import("orch._callbacks")?.getattr("resolve")?.unbind();
    let (event_loop, target) = (event_loop.unbind(), future.clone().unbind());
    runtime().spawn(async move {
        let outcome = tokio::select! {
            outcome = fut => outcome,
            // Cancelled, or the asyncio future is gone: nobody waits for the outcome.
            _ = cancelled => return,
        };
        let handed = winddown::enter_python(move |py| {
            let (ok, value) = match outcome.and_then(|v| pyo3::IntoPyObjectExt::into_py_any(v, py)) {
                Ok(v) => (true, v),
                Err(e) => (false, e.into_value(py).into_any()),
            };
            // A loop closed meanwhile (its program moved on) takes nothing: the outcome is dropped.
            if let Err(e) = event_loop.call_method1(py, "call_soon_threadsafe", (resolve, target, ok, value)) {
                tracing::debug!(error = %e, "an engine call's outcome found its asyncio loop closed");
            }
        })
        .await;
        if !matches!(handed, Ok(Some(()))) {
            tracing::debug!("an engine call's outcome was dropped: the program is exiting");
        }
    });
    Ok(future)
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
