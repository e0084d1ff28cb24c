//! Run leases: which process on which host holds an agent, and whether that holder is gone.
//!
//! A run claims its agent in the store ([`Change::SwapRun`](crate::store::Change::SwapRun)) with a
//! [`RunLease`] naming its process. Another process may take the claim over only when it is stale:
//! the holder's process is gone on this host (checked at once, so a crash costs no wait), or, for a
//! holder on another host, its lease expired without a renewal.

use std::time::Duration;

use crate::wire::{Id, RunLease, Timestamp, now};

/// How long a lease holds without renewal.
pub const LEASE_TTL: Duration = Duration::from_secs(30);

/// How often a running claim renews its lease.
pub const LEASE_RENEW_EVERY: Duration = Duration::from_secs(10);

/// This host's identity in leases: its name and, where the system says, its boot (a process that ran
/// before a reboot is gone even if a new one has its pid).
pub fn host_id() -> &'static str {
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOST.get_or_init(|| {
        let name = read_trimmed("/proc/sys/kernel/hostname")
            .or_else(|| read_trimmed("/etc/hostname"))
            .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
            .unwrap_or_else(|| "localhost".to_string());
        match read_trimmed("/proc/sys/kernel/random/boot_id") {
            Some(boot) => format!("{name}#{}", boot.chars().take(8).collect::<String>()),
            None => name,
        }
    })
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// When process `pid` started, in clock ticks since boot (Linux; `None` elsewhere or if it is gone).
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces; fields after it are plain.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // Field 3 is the state: a zombie (exited, not yet reaped by its parent; a detached process whose
    // parent is a container's init may stay one) or a dead process runs nothing.
    if matches!(fields.next(), Some("Z" | "X" | "x")) {
        return None;
    }
    // starttime is field 22, i.e. the 19th after the state.
    fields.nth(18)?.parse().ok()
}

/// A new lease for a run of this process, valid for [`LEASE_TTL`] from now.
pub fn new_lease(run_id: Id, task_slug: Option<String>) -> RunLease {
    // This process's start time does not change: read once (a lease is made for every run, some under
    // a store's write lock).
    static OWN_START: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    let own = *OWN_START.get_or_init(|| process_start(std::process::id()));
    lease_for(std::process::id(), own, run_id, task_slug)
}

/// A lease held on behalf of another process of this host, `pid` (e.g. a child just spawned to run
/// the work, which takes the claim over when it starts): stale as soon as that process is gone.
pub fn lease_for_process(pid: u32, run_id: Id, task_slug: Option<String>) -> RunLease {
    lease_for(pid, process_start(pid), run_id, task_slug)
}

fn lease_for(pid: u32, process_start: Option<u64>, run_id: Id, task_slug: Option<String>) -> RunLease {
    let started_at = now();
    RunLease {
        run_id,
        task_slug,
        pid,
        process_start,
        host: host_id().to_string(),
        started_at,
        expires_at: expiry(started_at),
    }
}

/// The lease renewed: same run, valid for [`LEASE_TTL`] from now.
pub fn renewed(lease: &RunLease) -> RunLease {
    RunLease { expires_at: expiry(now()), ..lease.clone() }
}

fn expiry(from: Timestamp) -> Timestamp {
    from + chrono::Duration::from_std(LEASE_TTL).unwrap_or(chrono::Duration::seconds(30))
}

/// The runs of this process that hold a claim right now, with their interrupts (a claim dropped without an
/// explicit release leaves here at once, though its store row is released in the background).
fn live_runs() -> std::sync::MutexGuard<'static, std::collections::HashMap<Id, crate::Interrupt>> {
    static LIVE: std::sync::OnceLock<std::sync::Mutex<std::collections::HashMap<Id, crate::Interrupt>>> =
        std::sync::OnceLock::new();
    LIVE.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner())
}

/// Records that a run of this process holds its claim.
pub(crate) fn register(run_id: Id, interrupt: crate::Interrupt) {
    live_runs().insert(run_id, interrupt);
}

/// Records that a run of this process no longer holds its claim.
pub(crate) fn unregister(run_id: Id) {
    live_runs().remove(&run_id);
}

/// Whether the lease is held by a run of this very process.
pub fn is_local(lease: &RunLease) -> bool {
    lease.pid == std::process::id() && lease.host == host_id()
}

/// Interrupts a run of this process by its id, whichever runner runs it; `false` if none has it.
pub(crate) fn interrupt_local(run_id: Id) -> bool {
    match live_runs().get(&run_id) {
        Some(i) => {
            i.trigger();
            true
        }
        None => false,
    }
}

/// Whether the holder of `lease` is gone, so the claim may be taken over. A lease of this very process
/// is stale once its run has ended here, even before its release reaches the store.
pub fn is_stale(lease: &RunLease) -> bool {
    if is_local(lease) {
        return !live_runs().contains_key(&lease.run_id);
    }
    if lease.host == host_id() && cfg!(target_os = "linux") && std::path::Path::new("/proc/self/stat").exists() {
        return match (process_start(lease.pid), lease.process_start) {
            (None, _) => true,
            (Some(now_start), Some(then)) => now_start != then,
            (Some(_), None) => false,
        };
    }
    lease.expires_at < now()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::new_id;

    #[test]
    fn own_process_and_dead_processes_are_stale_live_ones_are_not() {
        let mine = new_lease(new_id(), None);
        assert!(is_stale(&mine), "a run of this process that ended (or never started) is stale");
        register(mine.run_id, crate::Interrupt::new());
        assert!(!is_stale(&mine), "a running run of this process is live");
        unregister(mine.run_id);
        assert!(is_stale(&mine));
        if !cfg!(target_os = "linux") {
            return;
        }
        // pid 1 is alive on any Linux system.
        let init = RunLease { pid: 1, process_start: process_start(1), ..mine.clone() };
        assert!(!is_stale(&init));
        // A pid reused by another process (different start time) is stale.
        let reused = RunLease { process_start: init.process_start.map(|s| s + 1), ..init.clone() };
        assert!(is_stale(&reused));
        // A pid that does not exist.
        let gone = RunLease { pid: u32::MAX - 7, ..mine.clone() };
        assert!(is_stale(&gone));
        // Another host: only expiry counts.
        let other = RunLease { host: "elsewhere#1".into(), pid: u32::MAX - 7, ..mine.clone() };
        assert!(!is_stale(&other));
        let expired = RunLease { expires_at: now() - chrono::Duration::seconds(1), ..other };
        assert!(is_stale(&expired));
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn a_process_that_exited_but_was_not_reaped_is_gone() {
        let Ok(mut child) = std::process::Command::new("sleep").arg("0.2").spawn() else {
            return; // no `sleep` here: nothing to check
        };
        let lease = lease_for_process(child.id(), new_id(), None);
        assert!(lease.process_start.is_some() && !is_stale(&lease), "a running child is live");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !is_stale(&lease) {
            assert!(std::time::Instant::now() < deadline, "an exited (zombie) child never counted as gone");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.id())).unwrap_or_default();
        assert!(stat.contains(") Z "), "not reaped yet, it is a zombie: {stat}");
        let _ = child.wait();
    }
}
