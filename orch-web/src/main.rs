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
mod graph_run;
mod hook_relay;
mod mcp;
mod models;
mod plan;
mod serve;
mod signals;

use std::process::ExitCode;

fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ORCH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // ORCH_LOG_FORMAT=json: one JSON object a line (for log collectors), with the fields as keys.
    let json = std::env::var("ORCH_LOG_FORMAT").is_ok_and(|f| f.trim().eq_ignore_ascii_case("json"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        logs.json().init();
    } else {
        logs.init();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("orch: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = runtime.block_on(cli::main());
    // Do not wait for background tasks (a follower blocked on stdin, a poller) at exit.
    runtime.shutdown_background();
    ExitCode::from(code)
}
