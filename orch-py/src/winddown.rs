//! Letting interrupted runs record their end before the process exits.
//!
//! A Python caller that goes away (Ctrl-C in a blocking call, a cancelled await, `asyncio.run` ending
//! on KeyboardInterrupt) drops the engine call it was waiting for; the call's guard ([`StopOnDrop`])
//! interrupts the run, which then ends on its own task and records how (its `Stop`, the agent idle, the
//! workflow run cancelled). Interpreter exit would cut that short, so the package's `atexit` hook calls
//! [`wind_down`]: it waits, bounded, for every dropped call's run to finish recording.
//!
//! Then the hook calls [`exiting`]: from then on no engine thread enters Python ([`enter_python`]
//! refuses),
//! and those inside get a moment to leave. An engine thread holding the GIL when the interpreter
//! finalizes aborts the process (`Fatal Python error: PyGILState_Release`): a call that completes as
//! the program exits, its outcome handed to an asyncio loop, did that before.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use orch_core::Interrupt;
use pyo3::prelude::*;

/// Whether a stopped run has ended.
type Ended = Box<dyn Fn() -> bool + Send>;

/// Engine threads inside Python now ([`enter_python`]); the top bit is set once the program exits.
static IN_PYTHON: AtomicUsize = AtomicUsize::new(0);
/// The bit of [`IN_PYTHON`] that shuts engine threads out of Python.
const EXITING: usize = 1 << (usize::BITS - 1);

/// Runs `f` with the GIL on a blocking thread of the engine's runtime (never on one of its async
/// workers): the one way an engine thread enters Python. `Ok(None)` when the program is exiting
/// ([`exiting`] was called) or the interpreter is finalizing, `f` dropped unrun; `Err` when `f` did not
/// finish (it panicked, or the runtime shut down).
pub async fn enter_python<R: Send + 'static>(
    f: impl for<'py> FnOnce(Python<'py>) -> R + Send + 'static,
) -> Result<Option<R>, tokio::task::JoinError> {
    tokio::task::spawn_blocking(move || attach(f)).await
}

/// Runs `f` with the GIL unless the program is exiting ([`enter_python`]).
fn attach<R>(f: impl for<'py> FnOnce(Python<'py>) -> R) -> Option<R> {
    let mut now = IN_PYTHON.load(Ordering::SeqCst);
    loop {
        if now & EXITING != 0 {
            return None;
        }
        match IN_PYTHON.compare_exchange(now, now + 1, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) => break,
            Err(seen) => now = seen,
        }
    }
    /// Counts the thread out once it has left Python (the GIL released).
    struct Leave;
    impl Drop for Leave {
        fn drop(&mut self) {
            IN_PYTHON.fetch_sub(1, Ordering::SeqCst);
        }
    }
    let _leave = Leave;
    Python::try_attach(f)
}

/// Shuts engine threads out of Python for good, and waits up to `timeout_s` seconds (the GIL released)
/// for those inside to leave; returns how many are still inside. The package's `atexit` hook calls it
/// after [`wind_down`]; engine calls that complete later are dropped (nothing waits for them any more).
#[pyfunction]
#[pyo3(signature = (timeout_s=1.0))]
pub fn exiting(py: Python<'_>, timeout_s: f64) -> usize {
    IN_PYTHON.fetch_or(EXITING, Ordering::SeqCst);
    py.detach(|| {
        let deadline = Instant::now() + seconds(timeout_s);
        loop {
            let inside = IN_PYTHON.load(Ordering::SeqCst) & !EXITING;
            if inside == 0 || Instant::now() >= deadline {
                return inside;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    })
}

/// `s` seconds as a wait: 0 for a negative or NaN `s`, at most a day (an infinite one too).
fn seconds(s: f64) -> Duration {
    const DAY: f64 = 86_400.0;
    if s.is_nan() { Duration::ZERO } else { Duration::from_secs_f64(s.clamp(0.0, DAY)) }
}

/// Guards alive: calls Python may still drop.
static ARMED: AtomicUsize = AtomicUsize::new(0);
/// Runs whose caller went away, until they end.
static STOPPING: Mutex<Vec<Ended>> = Mutex::new(Vec::new());

fn stopping() -> MutexGuard<'static, Vec<Ended>> {
    STOPPING.lock().unwrap_or_else(|p| p.into_inner())
}

/// Stops a call's run when dropped armed (its caller went away), and remembers it until it ended.
pub struct StopOnDrop {
    stop: Option<Box<dyn FnOnce() + Send>>,
    ended: Option<Ended>,
}

impl StopOnDrop {
    /// Armed: dropping it calls `stop`, and [`wind_down`] waits until `ended` is true.
    pub fn new(stop: impl FnOnce() + Send + 'static, ended: impl Fn() -> bool + Send + 'static) -> Self {
        ARMED.fetch_add(1, Ordering::SeqCst);
        Self { stop: Some(Box::new(stop)), ended: Some(Box::new(ended)) }
    }

    /// Armed: dropping it triggers `interrupt`; ended once `ended` is true.
    pub fn trigger(interrupt: Interrupt, ended: impl Fn() -> bool + Send + 'static) -> Self {
        Self::new(move || interrupt.trigger(), ended)
    }

    /// The call ended on its own: dropping it does nothing.
    pub fn disarm(&mut self) {
        self.stop = None;
        self.ended = None;
    }
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let (Some(stop), Some(ended)) = (self.stop.take(), self.ended.take()) {
            stop();
            let mut runs = stopping();
            // The list holds only runs still ending: those that ended since are dropped here.
            runs.retain(|e| !e());
            runs.push(ended);
        }
        ARMED.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Waits, up to `timeout_s` seconds in all and with the GIL released, for the calls Python dropped to
/// stop their runs and for those runs to end; the runs that have not ended by then are left (a later
/// process resumes or takes them over). What the package's `atexit` hook calls.
#[pyfunction]
#[pyo3(signature = (timeout_s=10.0, grace_s=0.5))]
pub fn wind_down(py: Python<'_>, timeout_s: f64, grace_s: f64) -> usize {
    py.detach(|| {
        let deadline = Instant::now() + seconds(timeout_s);
        // Calls dropped a moment ago (an asyncio task cancelled at exit) reach their guard shortly.
        let grace = Instant::now() + seconds(grace_s);
        while ARMED.load(Ordering::SeqCst) > 0 && Instant::now() < grace.min(deadline) {
            std::thread::sleep(Duration::from_millis(10));
        }
        loop {
            let left = {
                let mut runs = stopping();
                runs.retain(|ended| !ended());
                runs.len()
            };
            if left == 0 || Instant::now() >= deadline {
                return left;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    })
}
