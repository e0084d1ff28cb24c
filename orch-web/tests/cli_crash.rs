//! A process killed while creating its database: the next `orch` run must open it.
//!
//! Needs `strace` (it kills `orch` at its Nth `fdatasync`, i.e. at every point where SQLite waits for
//! the disk), so it is ignored by a plain `cargo test`; `scripts/test.sh` installs strace and runs it
//! with `--ignored`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::os::unix::process::ExitStatusExt;

use support::{orch_under, run_in, text};

#[test]
#[ignore = "needs strace; scripts/test.sh installs it and runs this with --ignored"]
fn a_crash_at_any_sync_while_creating_the_database_leaves_one_the_next_run_opens() {
    let mut killed = 0;
    for n in 1.. {
        assert!(n <= 200, "the first `orch db status` did still not finish after {n} syncs");
        let dir = tempfile::tempdir().unwrap();
        let inject = format!("inject=fdatasync:signal=SIGKILL:when={n}");
        let args = ["-f", "-qq", "-o", "/dev/null", "-e", "trace=fdatasync", "-e", &inject];
        let first = orch_under("strace", &args).arg("--cwd").arg(dir.path()).args(["db", "status"]).output();
        let first = first.unwrap_or_else(|e| panic!("cannot run strace ({e}): install it (apt-get install strace)"));
        if first.status.signal() != Some(9) {
            // No Nth sync: the run finished.
            assert!(first.status.success(), "unkilled first run: {first:?}");
            break;
        }
        killed += 1;
        let next = run_in(dir.path(), &["db", "status"]);
        let (stdout, stderr) = (text(&next.stdout), text(&next.stderr));
        assert!(next.status.success(), "after a kill at sync {n}, `orch db status` failed: {stderr}");
        assert!(
            stdout.contains(&format!("schema version: {}", orch_store_sqlite::SCHEMA_VERSION)),
            "after a kill at sync {n}: {stdout}"
        );
    }
    assert!(killed >= 3, "creating a database syncs several times; killed only {killed} times");
}
