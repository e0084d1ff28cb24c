//! What the engine needs from an async runtime: spawn, sleep and child processes.
//! The host supplies it; [`TokioRuntime`] (feature `tokio`) is the default.

use std::path::PathBuf;
use std::time::Duration;

use futures::future::BoxFuture;

use crate::Interrupt;
use crate::confine::{Confinement, ConfinementStatus};

/// A command to run as a child process.
#[derive(Debug, Clone)]
pub struct ProcessSpec {
    /// Program.
    pub program: String,
    /// Arguments.
    pub args: Vec<String>,
    /// Working directory.
    pub cwd: PathBuf,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// Killed (with its whole process group) after this long.
    pub timeout: Option<Duration>,
    /// Bytes of stdout/stderr kept, each.
    pub output_limit: usize,
    /// Limits on what the process may write and whether it reaches the network (`None`: none). How far
    /// they were enforced is [`ProcessOutput::confinement`].
    pub confine: Option<Confinement>,
}

/// How a child process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessOutput {
    /// Exit code; `None` when killed by a signal, a timeout or an interrupt.
    pub exit_code: Option<i32>,
    /// Captured stdout (lossy UTF-8, capped).
    pub stdout: String,
    /// Captured stderr (lossy UTF-8, capped).
    pub stderr: String,
    /// Whether output beyond the limit was dropped.
    pub truncated: bool,
    /// Killed at the timeout.
    pub timed_out: bool,
    /// Killed by an interrupt.
    pub interrupted: bool,
    /// How far [`ProcessSpec::confine`] was enforced.
    pub confinement: ConfinementStatus,
}

/// Spawn, sleep and processes, supplied by the host.
pub trait Runtime: Send + Sync + 'static {
    /// Runs a future in the background.
    fn spawn(&self, future: BoxFuture<'static, ()>);
    /// Completes after `duration`.
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;
    /// Runs a child process to completion; on timeout or interrupt its process group is killed and reaped.
    fn run_process(
        &self,
        spec: ProcessSpec,
        interrupt: Interrupt,
    ) -> BoxFuture<'static, std::io::Result<ProcessOutput>>;
}

#[cfg(feature = "tokio")]
pub use tokio_rt::TokioRuntime;

/// Kills process group `pgid` with `SIGKILL`: a child spawned as the leader of its own group
/// (`process_group(0)`, so `pgid` is its pid) together with everything it started (`sh -c "sleep 9"`
/// takes its `sleep` along). The one place that kills a group: process runs, hook commands and the
/// Claude Code CLI all come here. A group that is already gone is not an error. Synchronous (a plain
/// `kill(2)`), so it also works in `Drop`.
#[cfg(all(feature = "tokio", unix))]
pub(crate) fn kill_process_group(pgid: u32) {
    let Some(pid) = i32::try_from(pgid).ok().and_then(rustix::process::Pid::from_raw) else {
        return;
    };
    if let Err(e) = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL) {
        tracing::debug!(pgid, error = %e, "process group not killed (already gone?)");
    }
}

/// Kills a child that leads its own process group, with the whole group ([`kill_process_group`]), and
/// the child itself; does not wait for it.
#[cfg(feature = "tokio")]
pub(crate) fn kill_child_group(child: &mut tokio::process::Child) {
    #[cfg(unix)]
    if let Some(pid) = child.id() {
        kill_process_group(pid);
    }
    let _ = child.start_kill();
}

#[cfg(feature = "tokio")]
mod tokio_rt {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// The runtime over tokio. Must be used from within a tokio runtime.
    #[derive(Debug, Clone, Copy, Default)]
    pub struct TokioRuntime;

    impl Runtime for TokioRuntime {
        fn spawn(&self, future: BoxFuture<'static, ()>) {
            tokio::spawn(future);
        }

        fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
            Box::pin(tokio::time::sleep(duration))
        }

        fn run_process(
            &self,
            spec: ProcessSpec,
            interrupt: Interrupt,
        ) -> BoxFuture<'static, std::io::Result<ProcessOutput>> {
            Box::pin(run(spec, interrupt))
        }
    }

    async fn read_capped<R: tokio::io::AsyncRead + Unpin>(mut r: R, limit: usize) -> (Vec<u8>, bool) {
        let mut kept = Vec::new();
        let mut truncated = false;
        let mut buf = [0u8; 8192];
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let room = limit.saturating_sub(kept.len());
                    if n > room {
                        truncated = true;
                    }
                    kept.extend_from_slice(&buf[..n.min(room)]);
                }
            }
        }
        (kept, truncated)
    }

    async fn run(spec: ProcessSpec, interrupt: Interrupt) -> std::io::Result<ProcessOutput> {
        let mut cmd = tokio::process::Command::new(&spec.program);
        cmd.args(&spec.args)
            .current_dir(&spec.cwd)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in &spec.env {
            cmd.env(k, v);
        }
        #[cfg(unix)]
        cmd.process_group(0);
        let (mut child, confinement) = match &spec.confine {
            None => (cmd.spawn()?, ConfinementStatus::NotRequested),
            Some(c) => spawn_confined(cmd, c.clone()).await?,
        };
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let limit = spec.output_limit;
        let out_task = tokio::spawn(async move {
            match stdout {
                Some(s) => read_capped(s, limit).await,
                None => (Vec::new(), false),
            }
        });
        let err_task = tokio::spawn(async move {
            match stderr {
                Some(s) => read_capped(s, limit).await,
                None => (Vec::new(), false),
            }
        });
        let timeout = async {
            match spec.timeout {
                Some(t) => tokio::time::sleep(t).await,
                None => futures::future::pending::<()>().await,
            }
        };
        let (mut timed_out, mut interrupted) = (false, false);
        let status = tokio::select! {
            s = child.wait() => Some(s?),
            _ = timeout => { timed_out = true; None }
            _ = interrupt.triggered() => { interrupted = true; None }
        };
        let status = match status {
            Some(s) => s,
            None => {
                kill_child_group(&mut child);
                child.wait().await?
            }
        };
        // Grandchildren holding the pipes open could keep the readers waiting; bound that wait.
        let grace = Duration::from_millis(if timed_out || interrupted { 200 } else { 2000 });
        let (out, t1) = tokio::time::timeout(grace, out_task).await.ok().and_then(Result::ok).unwrap_or_default();
        let (err, t2) = tokio::time::timeout(grace, err_task).await.ok().and_then(Result::ok).unwrap_or_default();
        Ok(ProcessOutput {
            exit_code: if timed_out || interrupted { None } else { status.code() },
            stdout: String::from_utf8_lossy(&out).into_owned(),
            stderr: String::from_utf8_lossy(&err).into_owned(),
            truncated: t1 || t2,
            timed_out,
            interrupted,
            confinement,
        })
    }

    /// Starts `cmd` from a thread made for it, which confines itself first (the child inherits the
    /// confinement; Landlock applies to the calling thread only, so no other thread is touched, and the
    /// thread ends right after). Not a pooled blocking thread: that one would stay confined.
    async fn spawn_confined(
        mut cmd: tokio::process::Command,
        confine: Confinement,
    ) -> std::io::Result<(tokio::process::Child, ConfinementStatus)> {
        let handle = tokio::runtime::Handle::current();
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new().name("orch-confined-spawn".into()).spawn(move || {
            let status = crate::confine::restrict_current_thread(&confine);
            // The child registers with the runtime's process driver.
            let _entered = handle.enter();
            let _ = tx.send(cmd.spawn().map(|child| (child, status)));
        })?;
        rx.await
            .map_err(|_| std::io::Error::other("the thread starting the confined command ended without starting it"))?
    }
}
