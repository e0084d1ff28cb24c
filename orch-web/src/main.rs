//! The `orch` command-line program.
//!
//! Exit codes: 0 success; 1 an agent, provider or store failed; 2 bad usage (flags, model spec, script
//! file); 130 interrupted with Ctrl-C, or by `orch agent interrupt` from another process (the interrupted
//! turn is recorded with a `Stop` event).

mod adw;
mod attention;
mod chat;
mod cli;
mod config_cmd;
mod detach;
mod events_cmd;
mod graph_run;
mod hook_relay;
mod mcp;
mod models;
#[cfg(feature = "notify")]
mod notify_cmd;
mod plan;
mod serve;
mod signals;

use std::process::ExitCode;

/// mimalloc, not the system's malloc: the engine allocates many small, short-lived values on many
/// threads, where glibc's malloc took about a quarter of a busy process's CPU (README, Benchmarks).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    orch_web::engine::init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("orch: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = runtime.block_on(cli::main());
    // Traces still buffered go out before the process ends (the export has a runtime of its own).
    orch_web::engine::flush_telemetry();
    // Do not wait for background tasks (a follower blocked on stdin, a poller) at exit.
    runtime.shutdown_background();
    ExitCode::from(code)
}
