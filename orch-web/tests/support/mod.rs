//! Running the `orch` binary as a user would, shared by the CLI tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

pub mod adw;
pub mod server;

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

/// Where a test's `orch` processes keep their store: the default SQLite file of the working
/// directory, or a PostgreSQL schema of its own (dropped when this is dropped).
pub enum Db {
    /// `<cwd>/.orch/orch.db`.
    Sqlite,
    /// A fresh schema on the test server.
    Postgres(PgSchema),
}

impl Db {
    /// A fresh PostgreSQL schema named after `tag` (see [`PgSchema::new`]).
    pub fn postgres(tag: &str) -> Self {
        Db::Postgres(PgSchema::new(tag))
    }

    /// `orch --cwd DIR` on this store, with the environment and stdin of [`orch`].
    pub fn orch(&self, dir: &Path) -> Command {
        let mut c = orch();
        c.arg("--cwd").arg(dir);
        if let Db::Postgres(pg) = self {
            c.arg("--db").arg(&pg.url).env("ORCH_PG_SCHEMA", &pg.schema);
        }
        c
    }

    /// `orch --cwd DIR ARGS…` on this store, run to the end.
    pub fn run(&self, dir: &Path, args: &[&str]) -> Output {
        self.orch(dir).args(args).output().unwrap()
    }

    /// Every event of the log (`orch events --json`).
    pub fn events(&self, dir: &Path) -> Vec<Value> {
        let out = self.run(dir, &["events", "--json"]);
        assert!(out.status.success(), "orch events: {}", text(&out.stderr));
        json_lines(&out.stdout)
    }

    /// The live agents (`orch agent list --json`).
    pub fn agents(&self, dir: &Path) -> Vec<Value> {
        let out = self.run(dir, &["agent", "list", "--json"]);
        assert!(out.status.success(), "orch agent list: {}", text(&out.stderr));
        json_lines(&out.stdout)
    }
}

/// The test server's URL, checked to answer. Panics when no server is reachable: the tests that call
/// this are ignored unless asked for (`scripts/test.sh` does, with `--ignored`), and then must not pass
/// without one.
pub fn pg_url() -> String {
    let url = std::env::var("ORCH_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let probe =
        std::net::TcpStream::connect_timeout(&"127.0.0.1:5432".parse().unwrap(), std::time::Duration::from_secs(2));
    if let Err(e) = probe {
        panic!("PostgreSQL is not reachable at 127.0.0.1:5432 ({e}): start it, or set ORCH_TEST_PG_URL");
    }
    url
}

/// Drops `schema` over a one-off connection (`orch` has no command that drops data).
pub fn drop_pg_schema(url: &str, schema: &str) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        use sqlx_core::connection::Connection;
        use sqlx_core::executor::Executor;
        if let Ok(mut c) = sqlx_postgres::PgConnection::connect(url).await {
            let _ = c.execute(format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE").as_str()).await;
        }
    });
}

/// A PostgreSQL schema of one test on the test server, dropped when this is dropped.
pub struct PgSchema {
    /// The server.
    pub url: String,
    /// The schema (`ORCH_PG_SCHEMA`).
    pub schema: String,
}

impl PgSchema {
    /// A schema name not used before, starting with `orch_TAG_`; the server is checked to answer.
    pub fn new(tag: &str) -> Self {
        let url = pg_url();
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        PgSchema { url, schema: format!("orch_{tag}_{t:x}{:x}", std::process::id()) }
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        drop_pg_schema(&self.url, &self.schema);
    }
}

/// `git init` in `dir`, with an identity so commits work.
pub fn git_init(dir: &Path) {
    let out = Command::new("git").arg("init").arg("-q").arg(dir).output().expect("git is needed by this test");
    assert!(out.status.success(), "git init: {}", text(&out.stderr));
}

/// Waits until `path` exists and is not empty (polling), up to `limit`; panics after that, naming `what`.
pub fn wait_for_file(path: &Path, limit: std::time::Duration, what: &str) {
    let start = std::time::Instant::now();
    while !std::fs::metadata(path).is_ok_and(|m| m.len() > 0) {
        assert!(start.elapsed() < limit, "{what}: {} did not appear within {limit:?}", path.display());
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Writes a scripted model file into `dir` and returns its `--model` spec.
pub fn scripted(dir: &Path, name: &str, script: &Value) -> String {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_vec_pretty(script).unwrap()).unwrap();
    format!("scripted:{}", path.display())
}

/// Whether a process exited on a signal, and which.
pub fn signal_of(status: &std::process::ExitStatus) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    status.signal()
}

/// Waits until `path` exists (a file, empty or not, or a directory), polling, up to `limit`; panics
/// after that, naming `what`.
pub fn wait_for_file_or_dir(path: &Path, limit: std::time::Duration, what: &str) {
    let start = std::time::Instant::now();
    while !path.exists() {
        assert!(start.elapsed() < limit, "{what}: {} did not appear within {limit:?}", path.display());
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Waits for `child` to exit, up to `limit`; past that it is killed and reaped, and the test panics
/// naming `what`.
pub fn wait_exit(child: &mut std::process::Child, limit: std::time::Duration, what: &str) -> std::process::ExitStatus {
    let start = std::time::Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not exit within {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Writes a heartbeat row (`role`: `worker` or `server`) into the SQLite store under `dir`, last beaten
/// `ago` before now: what a killed process leaves behind, or a process that beats and does nothing else.
pub fn heartbeat_row(dir: &Path, id: &str, role: &str, ago: chrono::Duration) {
    let conn = rusqlite::Connection::open(dir.join(".orch/orch.db")).unwrap();
    let at = (chrono::Utc::now() - ago).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    conn.execute(
        "INSERT INTO workers (id, host, pid, concurrency, started_at, heartbeat_at, role) \
         VALUES (?1, 'elsewhere', 4242, 8, ?2, ?2, ?3)",
        rusqlite::params![id, at, role],
    )
    .unwrap();
}
