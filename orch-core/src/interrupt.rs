//! A cloneable interrupt flag that async code can wait on, independent of any runtime.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

/// Signals a running turn, tool or process to stop. Cheap to clone; all clones share one flag.
#[derive(Debug, Clone, Default)]
pub struct Interrupt {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    flag: AtomicBool,
    notify: Notify,
}

impl Interrupt {
    /// A new, un-triggered interrupt.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `other` is a clone of this interrupt (shares its flag).
    pub fn same_as(&self, other: &Interrupt) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Triggers it: everyone waiting in [`Interrupt::triggered`] wakes.
    pub fn trigger(&self) {
        self.inner.flag.store(true, Ordering::SeqCst);
        self.inner.notify.notify_waiters();
    }

    /// Whether it was triggered.
    pub fn is_triggered(&self) -> bool {
        self.inner.flag.load(Ordering::SeqCst)
    }

    /// Resets it, so the same handle can serve the next turn.
    pub fn reset(&self) {
        self.inner.flag.store(false, Ordering::SeqCst);
    }

    /// Completes once triggered (at once if it already was).
    pub async fn triggered(&self) {
        loop {
            let notified = self.inner.notify.notified();
            if self.is_triggered() {
                return;
            }
            notified.await;
            if self.is_triggered() {
                return;
            }
        }
    }
}
