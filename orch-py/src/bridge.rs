//! Running engine futures from Python: as awaitables on the asyncio loop ([`awaitable`]) or blocking
//! with the GIL released ([`blocking`]), both on one tokio runtime; and JSON values to and from Python.

use std::future::Future;
use std::time::Duration;

use pyo3::prelude::*;
use serde_json::Value;

use crate::error::Failure;

/// How often a blocking call looks for a pending signal (Ctrl-C) while it waits.
const SIGNAL_POLL: Duration = Duration::from_millis(100);

/// The tokio runtime every engine of this process runs on.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    pyo3_async_runtimes::tokio::get_runtime()
}

/// `fut` as a Python awaitable on the running asyncio loop. Cancelling the awaitable drops the future.
pub fn awaitable<'py, T, F>(py: Python<'py>, fut: F) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = Result<T, Failure>> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    pyo3_async_runtimes::tokio::future_into_py(py, async move { fut.await.map_err(PyErr::from) })
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
