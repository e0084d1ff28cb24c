//! Detached workflow runs: `orch adw start` without `--wait` hands the run to a child process
//! (`orch adw resume ID --detached`) that outlives the terminal, writes its output to a log file under
//! `<cwd>/.orch/logs/`, and is recorded on the run (its pid and host, as the run's claim).
//!
//! The hand-over has no window in which the run looks abandoned or two processes could run it: the
//! child waits for its standard input to close before it claims the run; the parent first records a
//! claim in the child's name (stale as soon as the child is gone), then closes that input. The child
//! takes the claim over as its own run (a claim naming a process's own pid but no live run of it is
//! stale, so the ordinary compare-and-swap takes it).

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use orch_core::executor::lease;
use orch_core::store::{Batch, Change, Store, StoreError};
use orch_core::wire::{Event, EventKeys, WorkflowRecord, new_id, now};
use serde_json::json;

use crate::chat::Failure;

/// A run handed to a detached process.
#[derive(Debug)]
pub struct Launched {
    /// The child's process id.
    pub pid: u32,
    /// Where its output goes.
    pub log: PathBuf,
}

/// Starts `orch <global_args> adw resume ID --detached` in its own process group, its output appended
/// to `<working_dir>/.orch/logs/adw-<id>.log`, and records it as the run's holder.
pub async fn launch(
    store: &Arc<dyn Store>,
    record: &WorkflowRecord,
    working_dir: &Path,
    global_args: Vec<OsString>,
) -> Result<Launched, Failure> {
    let dir = working_dir.join(".orch").join("logs");
    std::fs::create_dir_all(&dir)
        .map_err(|e| Failure::runtime(format!("cannot create the log directory {}: {e}", dir.display())))?;
    let log = dir.join(format!("adw-{}.log", record.id));
    let open = |what: &str| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| Failure::runtime(format!("cannot open the run's {what} log {}: {e}", log.display())))
    };
    let (out, err) = (open("output")?, open("error")?);
    let exe = std::env::current_exe()
        .map_err(|e| Failure::runtime(format!("cannot find the orch executable to start the run: {e}")))?;
    let mut command = Command::new(exe);
    command
        .args(global_args)
        .args(["adw", "resume", &record.id.to_string(), "--detached"])
        .current_dir(working_dir)
        .stdin(Stdio::piped())
        .stdout(out)
        .stderr(err);
    #[cfg(unix)]
    {
        // Its own process group: Ctrl-C and the terminal's hang-up reach the foreground group only.
        use std::os::unix::process::CommandExt;
        command.process_group(0);
    }
    let mut child =
        command.spawn().map_err(|e| Failure::runtime(format!("cannot start the detached run's process: {e}")))?;
    let pid = child.id();
    let mut launched = record.clone();
    if !launched.metadata.is_object() {
        launched.metadata = json!({});
    }
    launched.metadata["launch"] = json!({
        "mode": "detached",
        "pid": pid,
        "host": lease::host_id(),
        "log": log.display().to_string(),
        "at": now(),
    });
    launched.updated_at = now();
    let claim = lease::lease_for_process(pid, new_id(), Some(record.name.clone()));
    launched.run = Some(claim.clone());
    let keys =
        EventKeys { workflow_id: Some(record.id), orchestrator_id: record.orchestrator_id, ..EventKeys::default() };
    let batch = Batch::new()
        .change(Change::UpsertWorkflow(Box::new(launched.clone())))
        .change(Change::SwapWorkflowRun { workflow_id: record.id, expect: None, lease: Some(claim) })
        .event(keys, Event::WorkflowUpdated { workflow: Box::new(launched) });
    if let Err(e) = store.commit(batch).await {
        // The child has not claimed anything yet (it waits for its input to close): stop it.
        let _ = child.kill();
        let _ = child.wait();
        return Err(match e {
            StoreError::WorkflowRunConflict { current, .. } => Failure::new(
                orch_core::ErrorKind::Busy,
                format!(
                    "workflow run {} is already run by {}",
                    record.id,
                    current.map_or_else(|| "another process".to_string(), |h| h.to_string())
                ),
            ),
            other => other.into(),
        });
    }
    // Closing its input lets the child go; it is not waited for (it outlives this process).
    drop(child.stdin.take());
    Ok(Launched { pid, log })
}

/// In the detached child, before anything else: waits until the parent closes standard input (it has
/// recorded the claim in this process's name by then, or has died: either way the claim is ours to take).
pub fn await_hand_over() {
    let mut sink = Vec::new();
    let _ = std::io::stdin().lock().take(4096).read_to_end(&mut sink);
}

/// In the detached child: a hang-up (the terminal that started the parent closing) does not end it.
#[cfg(unix)]
pub fn ignore_hangup() -> Option<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok()
}
