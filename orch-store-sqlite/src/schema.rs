//! Opening a database: safety checks before any write, connection settings, versioned migrations.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use orch_core::store::StoreError;
use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior};

/// How long a connection waits for a lock held by another connection or process.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Migrations, in order. The schema version of a database is the number of migrations applied
/// (`PRAGMA user_version`). Never edit a released migration: append a new one.
const MIGRATIONS: &[&str] = &[
    // 1: the initial schema.
    r#"
    CREATE TABLE orchestrators (
        id TEXT PRIMARY KEY NOT NULL,
        session_id TEXT,
        system_prompt TEXT NOT NULL,
        status TEXT NOT NULL,
        working_dir TEXT NOT NULL,
        input_tokens INTEGER NOT NULL DEFAULT 0,
        output_tokens INTEGER NOT NULL DEFAULT 0,
        cache_read_input_tokens INTEGER NOT NULL DEFAULT 0,
        cache_creation_input_tokens INTEGER NOT NULL DEFAULT 0,
        total_cost_usd REAL NOT NULL DEFAULT 0,
        metadata TEXT NOT NULL,
        archived INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    ) STRICT;
    CREATE INDEX orchestrators_created ON orchestrators (created_at, id);

    CREATE TABLE agents (
        id TEXT PRIMARY KEY NOT NULL,
        orchestrator_id TEXT,
        name TEXT NOT NULL,
        model TEXT NOT NULL,
        system_prompt TEXT,
        working_dir TEXT NOT NULL,
        status TEXT NOT NULL,
        session_id TEXT,
        state TEXT,
        input_tokens INTEGER NOT NULL DEFAULT 0,
        output_tokens INTEGER NOT NULL DEFAULT 0,
        cache_read_input_tokens INTEGER NOT NULL DEFAULT 0,
        cache_creation_input_tokens INTEGER NOT NULL DEFAULT 0,
        total_cost_usd REAL NOT NULL DEFAULT 0,
        metadata TEXT NOT NULL,
        workflow_id TEXT,
        workflow_step TEXT,
        archived INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    ) STRICT;
    -- A name is unique among the live agents of one orchestrator (agents without one share '').
    CREATE UNIQUE INDEX agents_live_name ON agents (COALESCE(orchestrator_id, ''), name) WHERE archived = 0;
    CREATE INDEX agents_created ON agents (created_at, id);
    CREATE INDEX agents_orchestrator ON agents (orchestrator_id, created_at, id);

    CREATE TABLE conversation (
        id INTEGER PRIMARY KEY,
        agent_id TEXT NOT NULL,
        message TEXT NOT NULL
    ) STRICT;
    CREATE INDEX conversation_agent ON conversation (agent_id, id);

    CREATE TABLE prompts (
        id TEXT PRIMARY KEY NOT NULL,
        agent_id TEXT,
        task_slug TEXT,
        author TEXT NOT NULL,
        prompt_text TEXT NOT NULL,
        summary TEXT,
        session_id TEXT,
        created_at TEXT NOT NULL
    ) STRICT;
    CREATE INDEX prompts_agent ON prompts (agent_id, created_at);

    CREATE TABLE chat (
        id TEXT PRIMARY KEY NOT NULL,
        orchestrator_id TEXT NOT NULL,
        sender TEXT NOT NULL,
        receiver TEXT NOT NULL,
        agent_id TEXT,
        message TEXT NOT NULL,
        summary TEXT,
        metadata TEXT NOT NULL,
        created_at TEXT NOT NULL
    ) STRICT;
    CREATE INDEX chat_orchestrator ON chat (orchestrator_id, created_at);

    CREATE TABLE system_logs (
        id TEXT PRIMARY KEY NOT NULL,
        level TEXT NOT NULL,
        message TEXT NOT NULL,
        -- Unicode-lowercased message, for case-insensitive search.
        message_folded TEXT NOT NULL,
        summary TEXT,
        file_path TEXT,
        workflow_id TEXT,
        workflow_step TEXT,
        metadata TEXT NOT NULL,
        created_at TEXT NOT NULL
    ) STRICT;
    CREATE INDEX system_logs_created ON system_logs (created_at);
    CREATE INDEX system_logs_level ON system_logs (level, created_at);

    CREATE TABLE workflows (
        id TEXT PRIMARY KEY NOT NULL,
        orchestrator_id TEXT,
        name TEXT NOT NULL,
        workflow_type TEXT NOT NULL,
        description TEXT,
        status TEXT NOT NULL,
        current_step TEXT,
        total_steps INTEGER NOT NULL,
        completed_steps INTEGER NOT NULL,
        started_at TEXT,
        completed_at TEXT,
        duration_seconds INTEGER,
        input_data TEXT NOT NULL,
        output_data TEXT NOT NULL,
        error_message TEXT,
        error_step TEXT,
        error_count INTEGER NOT NULL,
        metadata TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    ) STRICT;
    CREATE INDEX workflows_created ON workflows (created_at, id);
    CREATE INDEX workflows_orchestrator ON workflows (orchestrator_id, created_at, id);

    -- The last seq handed out. Seqs come from this counter, not from MAX(seq), so pruning the newest
    -- events never lets a seq be reused.
    CREATE TABLE event_seq (id INTEGER PRIMARY KEY CHECK (id = 1), last INTEGER NOT NULL) STRICT;
    INSERT INTO event_seq (id, last) VALUES (1, 0);

    -- The event log: one row per event. seq is the rowid: global, gap-free when appended, increasing.
    CREATE TABLE events (
        seq INTEGER PRIMARY KEY,
        ts TEXT NOT NULL,
        agent_id TEXT,
        orchestrator_id TEXT,
        workflow_id TEXT,
        step TEXT,
        task_slug TEXT,
        category TEXT NOT NULL,
        type TEXT NOT NULL,
        payload TEXT NOT NULL
    ) STRICT;
    CREATE INDEX events_agent ON events (agent_id, seq) WHERE agent_id IS NOT NULL;
    CREATE INDEX events_orchestrator ON events (orchestrator_id, seq) WHERE orchestrator_id IS NOT NULL;
    CREATE INDEX events_workflow ON events (workflow_id, seq) WHERE workflow_id IS NOT NULL;
    CREATE INDEX events_step ON events (step, seq) WHERE step IS NOT NULL;
    CREATE INDEX events_task ON events (task_slug, seq) WHERE task_slug IS NOT NULL;
    -- No index on category or type: an event of each type lands on a different leaf page of such an
    -- index, which multiplied the pages every agent step writes (and syncs). Type and category filters
    -- are applied while scanning the seq range or one of the indexes above.
    "#,
    // 2: the run that holds an agent (a claim in the store, so two processes never run one agent at once).
    r#"
    ALTER TABLE agents ADD COLUMN run_lease TEXT;
    "#,
    // 3: an agent's role, template and tools as columns (until now keys of its metadata, lifted out of
    // it here); the context its last model call used, its model's window, its compaction threshold; the
    // agent that started a subagent.
    r#"
    ALTER TABLE agents ADD COLUMN role TEXT NOT NULL DEFAULT 'agent';
    ALTER TABLE agents ADD COLUMN template_name TEXT;
    ALTER TABLE agents ADD COLUMN template_color TEXT;
    ALTER TABLE agents ADD COLUMN tools TEXT;
    ALTER TABLE agents ADD COLUMN context_used INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE agents ADD COLUMN context_window INTEGER;
    ALTER TABLE agents ADD COLUMN compact_at REAL;
    ALTER TABLE agents ADD COLUMN parent_id TEXT;
    UPDATE agents SET
        role = CASE json_type(metadata, '$.role') WHEN 'text' THEN json_extract(metadata, '$.role') ELSE 'agent' END,
        template_name = CASE json_type(metadata, '$.template_name')
            WHEN 'text' THEN json_extract(metadata, '$.template_name') END,
        template_color = CASE json_type(metadata, '$.template_color')
            WHEN 'text' THEN json_extract(metadata, '$.template_color') END,
        tools = CASE json_type(metadata, '$.tools') WHEN 'array' THEN json_extract(metadata, '$.tools') END,
        metadata = json_remove(metadata, '$.role', '$.template_name', '$.template_color', '$.tools')
    WHERE json_valid(metadata) AND json_type(metadata) = 'object';
    "#,
    // 4: the process that runs a workflow (a claim in the store, so two processes never run one workflow).
    r#"
    ALTER TABLE workflows ADD COLUMN run_lease TEXT;
    "#,
    // 5: task graphs: plan versions, graphs, their tasks and dependency edges.
    r#"
    CREATE TABLE plans (
        id TEXT NOT NULL,
        version INTEGER NOT NULL,
        status TEXT NOT NULL,
        requirements TEXT NOT NULL,
        tasks TEXT NOT NULL,
        model TEXT,
        source_file TEXT,
        cost_usd REAL NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (id, version)
    ) STRICT;
    CREATE INDEX plans_created ON plans (created_at, id);

    CREATE TABLE task_graphs (
        id TEXT PRIMARY KEY NOT NULL,
        name TEXT NOT NULL,
        plan_id TEXT,
        plan_version INTEGER,
        status TEXT NOT NULL,
        total_tasks INTEGER NOT NULL,
        waves INTEGER NOT NULL,
        budget_usd REAL,
        cost_usd REAL NOT NULL DEFAULT 0,
        error TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        started_at TEXT,
        completed_at TEXT
    ) STRICT;
    CREATE INDEX task_graphs_created ON task_graphs (created_at, id);

    -- A task's definition (key .. depends_on, wave) is written once; its progress (status .. completed_at)
    -- by every step of a worker, each write of an attempt fenced by `attempt`.
    CREATE TABLE tasks (
        id TEXT PRIMARY KEY NOT NULL,
        graph_id TEXT NOT NULL,
        idx INTEGER NOT NULL,
        key TEXT NOT NULL,
        title TEXT NOT NULL,
        description TEXT NOT NULL,
        task_type TEXT NOT NULL,
        complexity TEXT NOT NULL,
        tools TEXT NOT NULL,
        verification TEXT NOT NULL,
        depends_on TEXT NOT NULL,
        wave INTEGER NOT NULL,
        status TEXT NOT NULL,
        attempt INTEGER NOT NULL DEFAULT 0,
        model TEXT,
        claimed_by TEXT,
        lease_until TEXT,
        not_before TEXT,
        agent_id TEXT,
        cost_usd REAL NOT NULL DEFAULT 0,
        output TEXT,
        error TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        started_at TEXT,
        completed_at TEXT
    ) STRICT;
    CREATE UNIQUE INDEX tasks_graph_key ON tasks (graph_id, key);
    CREATE INDEX tasks_graph ON tasks (graph_id, idx);
    -- What a worker looks for: unfinished tasks in wave order. Finished tasks leave this index.
    CREATE INDEX tasks_open ON tasks (status, wave, idx) WHERE status IN ('pending', 'ready', 'running', 'blocked');

    -- Dependency edges, for finding the dependents of a finished task.
    CREATE TABLE task_deps (
        task_id TEXT NOT NULL,
        depends_on TEXT NOT NULL,
        PRIMARY KEY (task_id, depends_on)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX task_deps_parent ON task_deps (depends_on, task_id);
    "#,
    // 6: running task graphs: what a task's attempts left for people and later tasks, worker heartbeats
    // (one small row per worker, apart from the tasks), budget limits and spending per period.
    r#"
    ALTER TABLE tasks ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE tasks ADD COLUMN checkpoint TEXT;
    ALTER TABLE tasks ADD COLUMN guidance TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE tasks ADD COLUMN knowledge TEXT NOT NULL DEFAULT '[]';
    -- Whether a graph has work left, without reading its finished tasks.
    CREATE INDEX tasks_open_graph ON tasks (graph_id, status) WHERE status IN ('pending', 'ready', 'running', 'blocked');

    CREATE TABLE workers (
        id TEXT PRIMARY KEY NOT NULL,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        concurrency INTEGER NOT NULL,
        started_at TEXT NOT NULL,
        heartbeat_at TEXT NOT NULL
    ) STRICT;

    CREATE TABLE budget_limits (
        scope TEXT PRIMARY KEY NOT NULL,
        limit_usd REAL NOT NULL
    ) STRICT;

    -- Per period: `day:2026-12-02`, `month:2026-12`, `graph:<id>` (a graph's spending is its cost_usd).
    CREATE TABLE budget_spend (
        period TEXT PRIMARY KEY NOT NULL,
        spent_usd REAL NOT NULL DEFAULT 0,
        reserved_usd REAL NOT NULL DEFAULT 0
    ) STRICT;
    "#,
    // 7: the open-task indexes with their condition written as comparisons. SQLite checks a partial
    // index's condition on every write of a row; an IN list of more than two values made it build a
    // temporary table for each check (four per task update), most of the cost of claiming and finishing
    // a task. Same rows, same columns.
    r#"
    DROP INDEX tasks_open;
    CREATE INDEX tasks_open ON tasks (status, wave, idx)
        WHERE status = 'pending' OR status = 'ready' OR status = 'running' OR status = 'blocked';
    DROP INDEX tasks_open_graph;
    CREATE INDEX tasks_open_graph ON tasks (graph_id, status)
        WHERE status = 'pending' OR status = 'ready' OR status = 'running' OR status = 'blocked';
    "#,
    // 8: a task's estimates (cost in USD, duration in minutes) on its row, so a task added to a running
    // graph carries its own. Tasks stored before keep none: their plan still has them.
    r#"
    ALTER TABLE tasks ADD COLUMN estimated_cost_usd REAL;
    ALTER TABLE tasks ADD COLUMN estimated_minutes REAL;
    "#,
    // 9: what a heartbeat row stands for: a task worker, or a server following the store (which `orch
    // approve` looks for before waiting for one to continue a run). Rows stored before are workers.
    r#"
    ALTER TABLE workers ADD COLUMN role TEXT NOT NULL DEFAULT 'worker';
    "#,
];

/// The newest schema version this build knows.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The first 16 bytes of every SQLite database file.
const SQLITE_MAGIC: &[u8] = b"SQLite format 3\0";

/// Maps a rusqlite error met while opening `location`.
pub(crate) fn open_error(location: &str, e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
            StoreError::Corrupt { location: location.to_string(), message: e.to_string() }
        }
        _ => StoreError::Open { location: location.to_string(), message: e.to_string() },
    }
}

pub(crate) fn corrupt(location: &str, message: impl Into<String>) -> StoreError {
    StoreError::Corrupt { location: location.to_string(), message: message.into() }
}

pub(crate) fn newer(location: &str, found: i64) -> StoreError {
    StoreError::NewerSchema { location: location.to_string(), found, supported: SCHEMA_VERSION }
}

/// The first 8 bytes of a rollback journal's header.
const JOURNAL_MAGIC: &[u8] = &[0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7];

/// The rollback journal of the database at `path`: `<path>-journal`.
pub(crate) fn journal_path(path: &Path) -> std::path::PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push("-journal");
    p.into()
}

/// Whether `path` has a rollback journal with a valid header beside it: the journal of a transaction in
/// progress, or of one a crash left unfinished (a "hot" journal; the database file may then hold pages
/// that were never committed, even a half-written header).
pub(crate) fn has_journal(path: &Path) -> bool {
    let mut head = [0u8; 8];
    std::fs::File::open(journal_path(path))
        .and_then(|mut f| read_up_to(&mut f, &mut head))
        .is_ok_and(|n| n == head.len() && head == JOURNAL_MAGIC)
}

/// Rolls back a transaction that a crash left unfinished in `path`, if its journal is there: SQLite does
/// so on the first read of a connection that may write, restoring the last committed state (for a crash
/// while the database was being created: an empty file). A read-only connection cannot, and fails with
/// "attempt to write a readonly database" as long as the journal stays, so this runs before any
/// read-only check. A journal of a transaction still running in another connection is left alone
/// (SQLite sees that connection's lock and just reads the committed state).
fn roll_back_unfinished(path: &Path, location: &str) -> Result<(), StoreError> {
    if !has_journal(path) {
        return Ok(());
    }
    let journal = journal_path(path);
    let failed = |e: rusqlite::Error| StoreError::Open {
        location: location.to_string(),
        message: format!(
            "cannot roll back the unfinished transaction a crash left (journal {}): {e}",
            journal.display()
        ),
    };
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(failed)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(failed)?;
    match conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0)) {
        Ok(_) => {
            // Either a crash's transaction was rolled back, or another connection's was still running.
            tracing::debug!(location, "read past a rollback journal (a hot one is rolled back)");
            Ok(())
        }
        // Not a database after all: the header check below says so.
        Err(e) if matches!(e.sqlite_error_code(), Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt)) => Ok(()),
        Err(e) => Err(failed(e)),
    }
}

/// Checks an existing file without writing to it: it must be empty or a SQLite database whose schema
/// version this build supports. Nothing is created or modified, except that a transaction a crash left
/// unfinished is rolled back first ([`roll_back_unfinished`]), as any SQLite connection that may write
/// does.
pub(crate) fn check_existing(path: &Path, location: &str) -> Result<(), StoreError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(StoreError::Open { location: location.to_string(), message: e.to_string() }),
    };
    if meta.is_dir() {
        return Err(StoreError::Open { location: location.to_string(), message: "is a directory".into() });
    }
    roll_back_unfinished(path, location)?;
    let meta = std::fs::metadata(path)
        .map_err(|e| StoreError::Open { location: location.to_string(), message: e.to_string() })?;
    if meta.len() == 0 {
        // SQLite treats an empty file as an empty database.
        return Ok(());
    }
    check_header(path, location)?;
    // A read-only connection sees the committed state, including a write-ahead log not yet checkpointed.
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(|e| open_error(location, e))?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| open_error(location, e))?;
    let version = user_version(&conn).map_err(|e| open_error(location, e))?;
    if version > SCHEMA_VERSION {
        return Err(newer(location, version));
    }
    if version == 0 && has_tables(&conn).map_err(|e| open_error(location, e))? {
        return Err(corrupt(location, "a SQLite database with tables but no orch schema version"));
    }
    Ok(())
}

/// Checks the header of a non-empty file, reading it as plain bytes: it must be a SQLite database whose
/// schema version (as of its last checkpoint) this build supports.
pub(crate) fn check_header(path: &Path, location: &str) -> Result<(), StoreError> {
    let mut header = [0u8; 100];
    let read = std::fs::File::open(path)
        .and_then(|mut f| read_up_to(&mut f, &mut header))
        .map_err(|e| StoreError::Open { location: location.to_string(), message: e.to_string() })?;
    if read < header.len() || &header[..16] != SQLITE_MAGIC {
        return Err(corrupt(location, "the file is not a SQLite database (bad header)"));
    }
    let page_size = u32::from(u16::from_be_bytes([header[16], header[17]]));
    let page_size_ok = page_size == 1 || (page_size.is_power_of_two() && (512..=32768).contains(&page_size));
    if !page_size_ok || header[21..24] != [64, 32, 32] {
        return Err(corrupt(location, "the SQLite header is damaged"));
    }
    // The header's user_version (bytes 60..64, big-endian) is the schema version as of the last
    // checkpoint: refusing on it touches nothing at all, not even the WAL side files.
    let header_version = i64::from(i32::from_be_bytes([header[60], header[61], header[62], header[63]]));
    if header_version > SCHEMA_VERSION {
        return Err(newer(location, header_version));
    }
    Ok(())
}

fn read_up_to(f: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

pub(crate) fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
}

pub(crate) fn has_tables(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row("SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table')", [], |r| r.get(0))
}

/// Settings of every connection.
pub(crate) fn configure_common(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "foreign_keys", true)?;
    Ok(())
}

/// Settings of the writing connection of a file database: WAL, full durability.
pub(crate) fn configure_writer_file(conn: &Connection, location: &str) -> Result<(), StoreError> {
    configure_common(conn).map_err(|e| open_error(location, e))?;
    let mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "wal", |r| r.get(0)).map_err(|e| open_error(location, e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(location, mode, "SQLite refused WAL mode; concurrent readers will block on writers");
    }
    // FULL: in WAL mode every commit syncs the log, so an append that returned survives a power loss.
    conn.pragma_update(None, "synchronous", "FULL").map_err(|e| open_error(location, e))?;
    // The statement journal in memory: each request of a batched transaction runs in a savepoint,
    // which copies every page it changes first into that journal, and a file journal (SQLite's
    // default past 64 KiB) turned those copies into writes to a temporary file. It holds what one
    // transaction changed, never more, and is not needed after a crash (the WAL is).
    conn.pragma_update(None, "temp_store", "MEMORY").map_err(|e| open_error(location, e))?;
    Ok(())
}

/// Applies the missing migrations in one transaction. Re-checks the version inside the transaction, so
/// two processes opening a new file at once migrate it once, and a newer database is never touched.
pub(crate) fn migrate(conn: &mut Connection, location: &str) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(|e| open_error(location, e))?;
    let version = user_version(&tx).map_err(|e| open_error(location, e))?;
    if version > SCHEMA_VERSION {
        return Err(newer(location, version));
    }
    if version == SCHEMA_VERSION {
        return Ok(());
    }
    if version == 0 && has_tables(&tx).map_err(|e| open_error(location, e))? {
        return Err(corrupt(location, "a SQLite database with tables but no orch schema version"));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(usize::try_from(version).unwrap_or(0)) {
        tx.execute_batch(sql).map_err(|e| StoreError::Open {
            location: location.to_string(),
            message: format!("migration {} failed: {e}", i + 1),
        })?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION).map_err(|e| open_error(location, e))?;
    tx.commit().map_err(|e| open_error(location, e))?;
    tracing::debug!(location, from = version, to = SCHEMA_VERSION, "migrated database");
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// A database of schema 6 with a graph's tasks in it keeps them, its open-task indexes are rebuilt
    /// without IN lists, and its tasks get empty estimates.
    #[test]
    fn migration_7_rebuilds_the_open_task_indexes() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(&MIGRATIONS[..6].concat()).unwrap();
        conn.pragma_update(None, "user_version", 6).unwrap();
        conn.execute_batch(
            "INSERT INTO tasks (id, graph_id, idx, key, title, description, task_type, complexity, tools, \
             verification, depends_on, wave, status, created_at, updated_at) VALUES \
             ('a', 'g', 0, 'a', 'a', '', 'code', 'low', '[]', '[]', '[]', 1, 'ready', 't', 't'), \
             ('b', 'g', 1, 'b', 'b', '', 'code', 'low', '[]', '[]', '[]', 1, 'completed', 't', 't');",
        )
        .unwrap();
        migrate(&mut conn, ":memory:").unwrap();
        assert_eq!(user_version(&conn).unwrap(), SCHEMA_VERSION);
        for index in ["tasks_open", "tasks_open_graph"] {
            let sql: String =
                conn.query_row("SELECT sql FROM sqlite_master WHERE name = ?1", [index], |r| r.get(0)).unwrap();
            assert!(!sql.contains(" IN "), "{sql}");
            let open: Vec<String> = conn
                .prepare(&format!("SELECT id FROM tasks INDEXED BY {index} WHERE status = 'ready'"))
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            assert_eq!(open, ["a"]);
        }
        // Migration 8 gives them estimate columns, empty: their plan keeps their estimates.
        let estimates: Vec<(Option<f64>, Option<f64>)> = conn
            .prepare("SELECT estimated_cost_usd, estimated_minutes FROM tasks ORDER BY idx")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(estimates, [(None, None), (None, None)]);
    }
}
