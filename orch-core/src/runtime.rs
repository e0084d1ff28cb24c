//! What the engine needs from an async runtime: spawn, sleep and child processes.
//! The host supplies it; [`TokioRuntime`] (feature `tokio`) is the default.

use std::path::PathBuf;
use std::time::Duration;

use futures::future::BoxFuture;

use crate::Interrupt;

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

    #[cfg(unix)]
    async fn kill_group(child: &mut tokio::process::Child) {
        if let Some(pid) = child.id() {
            // Kill the whole group the child leads, so grandchildren (`sh -c "sleep 9"`) die too.
            let _ = tokio::process::Command::new("kill")
                .arg("-KILL")
                .arg("--")
                .arg(format!("-{pid}"))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .await;
        }
        let _ = child.start_kill();
    }

    #[cfg(not(unix))]
    async fn kill_group(child: &mut tokio::process::Child) {
        let _ = child.start_kill();
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
        let mut child = cmd.spawn()?;
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
                kill_group(&mut child).await;
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
        })
    }
}
