//! One Ctrl-C (SIGINT) listener per command, installed before the command opens its store.
//!
//! A listener created once keeps every SIGINT delivered after it was installed, also while the command
//! is busy elsewhere (printing a backlog); `tokio::signal::ctrl_c()` created anew in a loop only sees
//! signals that arrive while it is being polled. On Unix the handler is installed even when the process
//! started with SIGINT ignored (as `sh -c 'orch … &'` starts it).

use crate::chat::Failure;

/// A SIGINT listener.
pub struct Sigint {
    #[cfg(unix)]
    signal: tokio::signal::unix::Signal,
}

impl Sigint {
    /// Installs the listener.
    pub fn install() -> Result<Self, Failure> {
        #[cfg(unix)]
        {
            let signal = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
                .map_err(|e| Failure::runtime(format!("cannot listen for Ctrl-C: {e}")))?;
            Ok(Self { signal })
        }
        #[cfg(not(unix))]
        {
            Ok(Self {})
        }
    }

    /// Waits for the next SIGINT (`false` when no more can come).
    pub async fn recv(&mut self) -> bool {
        #[cfg(unix)]
        {
            self.signal.recv().await.is_some()
        }
        #[cfg(not(unix))]
        {
            tokio::signal::ctrl_c().await.is_ok()
        }
    }

    /// Calls `on_interrupt` for every SIGINT, in a task (abort it when done).
    pub fn spawn_each(mut self, on_interrupt: impl Fn() + Send + 'static) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            while self.recv().await {
                on_interrupt();
            }
        })
    }
}

/// Resolves at the first SIGINT or SIGTERM (a server's stop signals) after this call: the handlers are
/// installed when it is called, not when the future is first polled, so a signal that arrives before
/// the caller awaits it (a server still starting) stops it cleanly too, instead of killing the process.
pub fn terminated() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let handlers = (signal(SignalKind::interrupt()), signal(SignalKind::terminate()));
        async move {
            match handlers {
                (Ok(mut int), Ok(mut term)) => {
                    tokio::select! {
                        _ = int.recv() => {}
                        _ = term.recv() => {}
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
