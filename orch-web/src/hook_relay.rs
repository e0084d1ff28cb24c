//! `orch hook-relay --socket PATH` (hidden): the command Claude Code runs for each hook of a turn run by
//! orch's Claude Code executor. It reads the hook's stdin JSON, hands it to the running orch process over
//! the socket, prints the answer (stdout and stderr) and exits with its code, as Claude Code's hook
//! protocol expects. If the orch process cannot be reached it prints nothing on stdout, a note on
//! stderr, and exits 0, so the CLI carries on as if there were no hook.

use std::io::{Read, Write};
use std::path::Path;

/// Runs the relay client; returns the exit code.
pub fn run(socket: &Path) -> u8 {
    let mut input = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut input) {
        eprintln!("orch hook-relay: cannot read the hook input from stdin ({e}); the hook is skipped");
        return 0;
    }
    relay(socket, &input)
}

#[cfg(unix)]
fn relay(socket: &Path, input: &str) -> u8 {
    match orch_core::executor::claude_code::relay_client(socket, input) {
        Ok(reply) => {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(reply.stdout.as_bytes());
            let _ = out.flush();
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(reply.stderr.as_bytes());
            let _ = err.flush();
            u8::try_from(reply.exit_code).unwrap_or(1)
        }
        Err(e) => {
            eprintln!("orch hook-relay: {e}; the hook is skipped");
            0
        }
    }
}

#[cfg(not(unix))]
fn relay(_socket: &Path, _input: &str) -> u8 {
    eprintln!("orch hook-relay: hook relays need Unix sockets; the hook is skipped");
    let _ = std::io::stdout().flush();
    0
}
