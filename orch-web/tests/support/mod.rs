//! Running the `orch` binary as a user would, shared by the CLI tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// The `orch` binary with no orch settings inherited from the environment and a null stdin.
pub fn orch() -> Command {
    isolated(Command::new(env!("CARGO_BIN_EXE_orch")))
}

/// `program ARGS… orch` (e.g. under a tracer), with the environment and stdin of [`orch`].
pub fn orch_under(program: &str, args: &[&str]) -> Command {
    let mut c = Command::new(program);
    c.args(args).arg(env!("CARGO_BIN_EXE_orch"));
    isolated(c)
}

/// `c` without orch settings inherited from the environment and with a null stdin.
fn isolated(mut c: Command) -> Command {
    for var in [
        "ORCH_MODEL",
        "ORCH_ORCHESTRATOR_MODEL",
        "ORCH_AGENT_MODEL",
        "ORCH_DATABASE_URL",
        "DATABASE_URL",
        "ORCH_PG_POOL",
        "ORCH_MODEL_ALIASES",
        "ORCH_CLAUDE_BIN",
        "ORCH_SETTINGS_HOOKS",
        "ORCH_HOST",
        "ORCH_PORT",
        "BACKEND_PORT",
        "ORCH_CORS_ORIGINS",
        "ORCH_PRICES",
        "ORCH_RECORD",
        "ORCH_PG_SCHEMA",
        "ORCH_ORCHESTRATOR_PROMPT",
        "ORCH_MAX_AGENT_TURNS",
        "ORCH_AGENT_WARMUP",
        "ORCH_SUMMARY_MODEL",
        "ANTHROPIC_API_KEY",
        "OPENAI_API_KEY",
    ] {
        c.env_remove(var);
    }
    c.stdin(Stdio::null());
    c
}

/// A script of `examples/scripts`.
pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/scripts").join(name)
}

/// `orch --cwd DIR ARGS…`, run to the end.
pub fn run_in(dir: &Path, args: &[&str]) -> Output {
    orch().arg("--cwd").arg(dir).args(args).output().unwrap()
}

/// Output bytes as text.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// One JSON value per non-empty line.
pub fn json_lines(out: &[u8]) -> Vec<Value> {
    text(out).lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).unwrap()).collect()
}
