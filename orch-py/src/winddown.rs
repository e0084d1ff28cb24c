//! Letting interrupted runs record their end before the process exits.
//!
//! A Python caller that goes away (Ctrl-C in a blocking call, a cancelled await, `asyncio.run` ending
//! on KeyboardInterrupt) drops the engine call it was waiting for; the call's guard ([`StopOnDrop`])
//! interrupts the run, which then ends on its own task and records how (its `Stop`, the agent idle, the
//! workflow run cancelled). Interpreter exit would cut that short, so the package's `atexit` hook calls
//! [`wind_down`]: it waits, bounded, for every dropped call's run to finish recording.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use orch_core::Interrupt;
use pyo3::prelude::*;

/// Whether a stopped run has ended.
type Ended = Box<dyn Fn() -> bool + Send>;

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
        let deadline = Instant::now() + Duration::from_secs_f64(timeout_s.max(0.0));
        // Calls dropped a moment ago (an asyncio task cancelled at exit) reach their guard shortly.
        let grace = Instant::now() + Duration::from_secs_f64(grace_s.max(0.0));
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
