//! Versioned migrations, applied on connect under a transaction-level advisory lock.

use crate::sqlx;
use orch_core::store::StoreError;
use sqlx::Connection;
use sqlx::postgres::PgConnection;

use crate::config::Config;

/// Migrations, in order; the schema version of a database is the highest applied (a row each in
/// `orch_schema_version`). `{S}` stands for the schema. Never edit a released migration: append one.
const MIGRATIONS: &[&str] = &[
    // 1: the initial schema.
    r#"
    CREATE TABLE {S}.orchestrators (
        id uuid PRIMARY KEY,
        session_id text,
        system_prompt text NOT NULL,
        status text NOT NULL CHECK (status IN ('idle', 'executing', 'waiting', 'blocked', 'complete')),
        working_dir text NOT NULL,
        input_tokens bigint NOT NULL DEFAULT 0,
        output_tokens bigint NOT NULL DEFAULT 0,
        cache_read_input_tokens bigint NOT NULL DEFAULT 0,
        cache_creation_input_tokens bigint NOT NULL DEFAULT 0,
        total_cost_usd double precision NOT NULL DEFAULT 0,
        metadata jsonb NOT NULL DEFAULT '{}',
        archived boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL
    );
    CREATE INDEX orchestrators_created ON {S}.orchestrators (created_at DESC, id DESC);

    CREATE TABLE {S}.agents (
        id uuid PRIMARY KEY,
        orchestrator_id uuid,
        name text NOT NULL,
        model text NOT NULL,
        system_prompt text,
        working_dir text NOT NULL,
        status text NOT NULL CHECK (status IN ('idle', 'executing', 'waiting', 'blocked', 'complete')),
        session_id text,
        state jsonb,
        input_tokens bigint NOT NULL DEFAULT 0,
        output_tokens bigint NOT NULL DEFAULT 0,
        cache_read_input_tokens bigint NOT NULL DEFAULT 0,
        cache_creation_input_tokens bigint NOT NULL DEFAULT 0,
        total_cost_usd double precision NOT NULL DEFAULT 0,
        metadata jsonb NOT NULL DEFAULT '{}',
        workflow_id uuid,
        workflow_step text,
        archived boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL
    );
    -- A name is unique among the live agents of one orchestrator (agents without one share ''). The seed
    -- made it unique among all agents, so a deleted agent's name could never be reused.
    CREATE UNIQUE INDEX agents_live_name ON {S}.agents ((COALESCE(orchestrator_id::text, '')), name)
        WHERE NOT archived;
    CREATE INDEX agents_created ON {S}.agents (created_at DESC, id DESC);
    CREATE INDEX agents_orchestrator ON {S}.agents (orchestrator_id, created_at DESC, id DESC)
        WHERE orchestrator_id IS NOT NULL;
    CREATE INDEX agents_archived ON {S}.agents (id) WHERE archived;

    CREATE TABLE {S}.conversation (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        agent_id uuid NOT NULL,
        message jsonb NOT NULL
    );
    CREATE INDEX conversation_agent ON {S}.conversation (agent_id, id);

    CREATE TABLE {S}.prompts (
        ord bigint GENERATED ALWAYS AS IDENTITY,
        id uuid PRIMARY KEY,
        agent_id uuid,
        task_slug text,
        author text NOT NULL,
        prompt_text text NOT NULL,
        summary text,
        session_id text,
        created_at timestamptz NOT NULL
    );
    CREATE INDEX prompts_agent ON {S}.prompts (agent_id, created_at, ord) WHERE agent_id IS NOT NULL;

    CREATE TABLE {S}.chat (
        ord bigint GENERATED ALWAYS AS IDENTITY,
        id uuid PRIMARY KEY,
        orchestrator_id uuid NOT NULL,
        sender text NOT NULL,
        receiver text NOT NULL,
        agent_id uuid,
        message text NOT NULL,
        summary text,
        metadata jsonb NOT NULL,
        created_at timestamptz NOT NULL
    );
    CREATE INDEX chat_orchestrator ON {S}.chat (orchestrator_id, created_at DESC, ord DESC);

    CREATE TABLE {S}.system_logs (
        ord bigint GENERATED ALWAYS AS IDENTITY,
        id uuid PRIMARY KEY,
        level text NOT NULL,
        message text NOT NULL,
        -- The message lowercased by orch (Unicode rules, independent of the database's locale), for
        -- case-insensitive search with strpos (no LIKE wildcards).
        message_folded text NOT NULL,
        summary text,
        file_path text,
        workflow_id uuid,
        workflow_step text,
        metadata jsonb NOT NULL,
        created_at timestamptz NOT NULL
    );
    CREATE INDEX system_logs_created ON {S}.system_logs (created_at DESC, ord DESC);
    CREATE INDEX system_logs_level ON {S}.system_logs (level, created_at DESC, ord DESC);

    CREATE TABLE {S}.workflows (
        id uuid PRIMARY KEY,
        orchestrator_id uuid,
        name text NOT NULL,
        workflow_type text NOT NULL,
        description text,
        status text NOT NULL,
        current_step text,
        total_steps bigint NOT NULL,
        completed_steps bigint NOT NULL,
        started_at timestamptz,
        completed_at timestamptz,
        duration_seconds bigint,
        input_data jsonb NOT NULL,
        output_data jsonb NOT NULL,
        error_message text,
        error_step text,
        error_count bigint NOT NULL,
        metadata jsonb NOT NULL,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL
    );
    CREATE INDEX workflows_created ON {S}.workflows (created_at DESC, id DESC);
    CREATE INDEX workflows_orchestrator ON {S}.workflows (orchestrator_id, created_at DESC, id DESC)
        WHERE orchestrator_id IS NOT NULL;

    -- The last seq handed out. Every append raises it inside its own transaction, so appenders take turns
    -- on this row: commit order is seq order, seqs have no gaps, and pruning never lets a seq be reused.
    CREATE TABLE {S}.event_seq (
        id integer PRIMARY KEY CHECK (id = 1),
        last bigint NOT NULL CHECK (last >= 0)
    );
    INSERT INTO {S}.event_seq (id, last) VALUES (1, 0);

    -- The event log: one row per event.
    CREATE TABLE {S}.events (
        seq bigint PRIMARY KEY,
        ts timestamptz NOT NULL,
        agent_id uuid,
        orchestrator_id uuid,
        workflow_id uuid,
        step text,
        task_slug text,
        category text NOT NULL,
        type text NOT NULL,
        payload jsonb NOT NULL
    );
    -- One index per filter of read_events, each ending in seq so a filtered page is one index range.
    -- Partial where NULLs dominate.
    CREATE INDEX events_agent ON {S}.events (agent_id, seq) WHERE agent_id IS NOT NULL;
    CREATE INDEX events_orchestrator ON {S}.events (orchestrator_id, seq) WHERE orchestrator_id IS NOT NULL;
    CREATE INDEX events_workflow ON {S}.events (workflow_id, seq) WHERE workflow_id IS NOT NULL;
    CREATE INDEX events_step ON {S}.events (step, seq) WHERE step IS NOT NULL;
    CREATE INDEX events_task ON {S}.events (task_slug, seq) WHERE task_slug IS NOT NULL;
    CREATE INDEX events_category ON {S}.events (category, seq);
    CREATE INDEX events_type ON {S}.events (type, seq);
    "#,
    // 2: the run that holds an agent (a claim in the store, so two processes never run one agent at once).
    r#"
    ALTER TABLE {S}.agents ADD COLUMN run_lease jsonb;
    "#,
    // 3: an agent's role, template and tools as columns (until now keys of its metadata, lifted out of
    // it here); the context its last model call used, its model's window, its compaction threshold; the
    // agent that started a subagent.
    r#"
    ALTER TABLE {S}.agents ADD COLUMN role text NOT NULL DEFAULT 'agent';
    ALTER TABLE {S}.agents ADD COLUMN template_name text;
    ALTER TABLE {S}.agents ADD COLUMN template_color text;
    ALTER TABLE {S}.agents ADD COLUMN tools jsonb;
    ALTER TABLE {S}.agents ADD COLUMN context_used bigint NOT NULL DEFAULT 0;
    ALTER TABLE {S}.agents ADD COLUMN context_window bigint;
    ALTER TABLE {S}.agents ADD COLUMN compact_at double precision;
    ALTER TABLE {S}.agents ADD COLUMN parent_id uuid;
    UPDATE {S}.agents SET
        role = CASE jsonb_typeof(metadata->'role') WHEN 'string' THEN metadata->>'role' ELSE 'agent' END,
        template_name = CASE jsonb_typeof(metadata->'template_name') WHEN 'string' THEN metadata->>'template_name' END,
        template_color = CASE jsonb_typeof(metadata->'template_color')
            WHEN 'string' THEN metadata->>'template_color' END,
        tools = CASE jsonb_typeof(metadata->'tools') WHEN 'array' THEN metadata->'tools' END,
        metadata = metadata - 'role' - 'template_name' - 'template_color' - 'tools'
    WHERE jsonb_typeof(metadata) = 'object';
    "#,
    // 4: the process that runs a workflow (a claim in the store, so two processes never run one workflow).
    r#"
    ALTER TABLE {S}.workflows ADD COLUMN run_lease jsonb;
    "#,
    // 5: task graphs: plan versions, graphs, their tasks and dependency edges.
    r#"
    CREATE TABLE {S}.plans (
        id uuid NOT NULL,
        version bigint NOT NULL CHECK (version > 0),
        status text NOT NULL,
        requirements text NOT NULL,
        tasks jsonb NOT NULL,
        model text,
        source_file text,
        cost_usd double precision NOT NULL DEFAULT 0,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        PRIMARY KEY (id, version)
    );
    CREATE INDEX plans_created ON {S}.plans (created_at DESC, id DESC);

    CREATE TABLE {S}.task_graphs (
        id uuid PRIMARY KEY,
        name text NOT NULL,
        plan_id uuid,
        plan_version bigint,
        status text NOT NULL,
        total_tasks bigint NOT NULL,
        waves bigint NOT NULL,
        budget_usd double precision,
        cost_usd double precision NOT NULL DEFAULT 0,
        error text,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        started_at timestamptz,
        completed_at timestamptz
    );
    CREATE INDEX task_graphs_created ON {S}.task_graphs (created_at DESC, id DESC);

    -- A task's definition (key .. depends_on, wave) is written once; its progress (status .. completed_at)
    -- by every step of a worker, each write of an attempt fenced by `attempt`.
    CREATE TABLE {S}.tasks (
        id uuid PRIMARY KEY,
        graph_id uuid NOT NULL,
        idx bigint NOT NULL,
        key text NOT NULL,
        title text NOT NULL,
        description text NOT NULL,
        task_type text NOT NULL,
        complexity text NOT NULL,
        tools jsonb NOT NULL,
        verification jsonb NOT NULL,
        depends_on jsonb NOT NULL,
        wave bigint NOT NULL,
        status text NOT NULL,
        attempt bigint NOT NULL DEFAULT 0,
        model text,
        claimed_by text,
        lease_until timestamptz,
        not_before timestamptz,
        agent_id uuid,
        cost_usd double precision NOT NULL DEFAULT 0,
        output text,
        error text,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        started_at timestamptz,
        completed_at timestamptz,
        CONSTRAINT tasks_graph_key UNIQUE (graph_id, key)
    );
    CREATE INDEX tasks_graph ON {S}.tasks (graph_id, idx);
    -- What a worker looks for: unfinished tasks in wave order. Finished tasks leave this index.
    CREATE INDEX tasks_open ON {S}.tasks (status, wave, idx) WHERE status IN ('pending', 'ready', 'running', 'blocked');

    -- Dependency edges, for finding the dependents of a finished task.
    CREATE TABLE {S}.task_deps (
        task_id uuid NOT NULL,
        depends_on uuid NOT NULL,
        PRIMARY KEY (task_id, depends_on)
    );
    CREATE INDEX task_deps_parent ON {S}.task_deps (depends_on, task_id);
    "#,
    // 6: running task graphs: what a task's attempts left for people and later tasks, worker heartbeats
    // (one small row per worker, apart from the tasks), budget limits and spending per period.
    r#"
    ALTER TABLE {S}.tasks ADD COLUMN failures bigint NOT NULL DEFAULT 0;
    ALTER TABLE {S}.tasks ADD COLUMN checkpoint text;
    ALTER TABLE {S}.tasks ADD COLUMN guidance jsonb NOT NULL DEFAULT '[]';
    ALTER TABLE {S}.tasks ADD COLUMN knowledge jsonb NOT NULL DEFAULT '[]';
    -- Whether a graph has work left, without reading its finished tasks.
    CREATE INDEX tasks_open_graph ON {S}.tasks (graph_id, status) WHERE status IN ('pending', 'ready', 'running', 'blocked');

    CREATE TABLE {S}.workers (
        id text PRIMARY KEY,
        host text NOT NULL,
        pid bigint NOT NULL,
        concurrency bigint NOT NULL,
        started_at timestamptz NOT NULL,
        heartbeat_at timestamptz NOT NULL
    );

    CREATE TABLE {S}.budget_limits (
        scope text PRIMARY KEY,
        limit_usd double precision NOT NULL
    );

    -- Per period: `day:2026-12-02`, `month:2026-12`, `graph:<id>` (a graph's spending is its cost_usd, so
    -- its row holds reservations only). Reservers lock these rows while they check the limits.
    CREATE TABLE {S}.budget_spend (
        period text PRIMARY KEY,
        spent_usd double precision NOT NULL DEFAULT 0,
        reserved_usd double precision NOT NULL DEFAULT 0
    );
    "#,
    // 7: a task's estimates (cost in USD, duration in minutes) on its row, so a task added to a running
    // graph carries its own. Tasks stored before keep none: their plan still has them.
    r#"
    ALTER TABLE {S}.tasks ADD COLUMN estimated_cost_usd double precision;
    ALTER TABLE {S}.tasks ADD COLUMN estimated_minutes double precision;
    "#,
    // 8: event payloads as `json` (the text as written) instead of `jsonb`: they are only ever written
    // whole and read whole, so parsing them into jsonb on every append was work for nothing.
    r#"
    ALTER TABLE {S}.events ALTER COLUMN payload TYPE json USING payload::json;
    "#,
    // 9: what a heartbeat row stands for: a task worker, or a server following the store (which `orch
    // approve` looks for before waiting for one to continue a run). Rows stored before are workers.
    r#"
    ALTER TABLE {S}.workers ADD COLUMN role text NOT NULL DEFAULT 'worker';
    "#,
];

/// The newest schema version this build knows.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// `"schema"`, for statements.
pub(crate) fn quoted(schema: &str) -> String {
    format!("\"{schema}\"")
}

/// The advisory-lock key of a schema's migrations: a 64-bit FNV-1a hash of a fixed prefix and the name.
pub(crate) fn lock_key(schema: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in "orch-store-postgres/migrate/".bytes().chain(schema.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    i64::from_ne_bytes(h.to_ne_bytes())
}

fn backend(cfg: &Config, what: &str, e: sqlx::Error) -> StoreError {
    cfg.open_error(format!("{what}: {e}"))
}

/// Brings the schema up to date, in one transaction holding `pg_advisory_xact_lock(lock_key(schema))`, so
/// concurrent processes migrate once. A schema written by a newer orch is refused before anything is
/// written (the transaction is rolled back), as is a schema holding tables that are not orch's.
pub(crate) async fn migrate(conn: &mut PgConnection, cfg: &Config) -> Result<(), StoreError> {
    let schema = cfg.schema.as_str();
    let s = quoted(schema);
    let mut tx = conn.begin().await.map_err(|e| backend(cfg, "cannot start the migration transaction", e))?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(lock_key(schema))
        .execute(&mut *tx)
        .await
        .map_err(|e| backend(cfg, "cannot take the migration lock", e))?;
    let (schema_exists, versioned, relations): (bool, bool, i64) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1), \
         to_regclass(format('%I.orch_schema_version', $1::text)) IS NOT NULL, \
         (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
          WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'f'))",
    )
    .bind(schema)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| backend(cfg, "cannot inspect the schema", e))?;

    let current: i64 = if versioned {
        sqlx::query_scalar(&format!("SELECT COALESCE(max(version), 0) FROM {s}.orch_schema_version"))
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| backend(cfg, "cannot read the schema version", e))?
    } else {
        0
    };
    if current > SCHEMA_VERSION {
        // Dropping the transaction rolls it back: nothing was written.
        drop(tx);
        return Err(StoreError::NewerSchema {
            location: format!("{} (schema {schema})", cfg.location),
            found: current,
            supported: SCHEMA_VERSION,
        });
    }
    if current == SCHEMA_VERSION {
        tx.commit().await.map_err(|e| backend(cfg, "cannot finish the migration check", e))?;
        return Ok(());
    }
    if !versioned && relations > 0 {
        drop(tx);
        return Err(StoreError::Corrupt {
            location: format!("{} (schema {schema})", cfg.location),
            message: format!(
                "schema {schema} already holds {relations} tables or views but no orch_schema_version table: \
                 it is not an orch schema (choose another schema name)"
            ),
        });
    }
    if !schema_exists {
        sqlx::raw_sql(&format!("CREATE SCHEMA {s}"))
            .execute(&mut *tx)
            .await
            .map_err(|e| backend(cfg, &format!("cannot create schema {schema}"), e))?;
    }
    sqlx::raw_sql(&format!(
        "CREATE TABLE IF NOT EXISTS {s}.orch_schema_version (\
             version bigint PRIMARY KEY, \
             applied_at timestamptz NOT NULL DEFAULT now(), \
             applied_by text NOT NULL)"
    ))
    .execute(&mut *tx)
    .await
    .map_err(|e| backend(cfg, "cannot create the schema version table", e))?;
    let applied_by = format!("orch-store-postgres {} (pid {})", env!("CARGO_PKG_VERSION"), std::process::id());
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(usize::try_from(current).unwrap_or(0)) {
        let version = i as i64 + 1;
        sqlx::raw_sql(&sql.replace("{S}", &s))
            .execute(&mut *tx)
            .await
            .map_err(|e| backend(cfg, &format!("migration {version} failed"), e))?;
        sqlx::query(&format!(
            "INSERT INTO {s}.orch_schema_version (version, applied_by) \
             VALUES ($1, $2 || ', backend ' || pg_backend_pid())"
        ))
        .bind(version)
        .bind(&applied_by)
        .execute(&mut *tx)
        .await
        .map_err(|e| backend(cfg, &format!("cannot record migration {version}"), e))?;
    }
    tx.commit().await.map_err(|e| backend(cfg, "cannot commit the migrations", e))?;
    tracing::info!(location = %cfg.location, schema, from = current, to = SCHEMA_VERSION, "migrated the orch schema");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_differ_per_schema() {
        assert_ne!(lock_key("orch"), lock_key("orch2"));
        assert_eq!(lock_key("orch"), lock_key("orch"));
    }

    #[test]
    fn migrations_name_the_schema_everywhere() {
        for m in MIGRATIONS {
            for line in m.lines().map(str::trim) {
                for kw in ["CREATE TABLE ", "CREATE INDEX ", "INSERT INTO "] {
                    if let Some(rest) = line.strip_prefix(kw) {
                        let target = if kw == "CREATE INDEX " { rest.split(" ON ").nth(1).unwrap_or("") } else { rest };
                        assert!(target.starts_with("{S}."), "unqualified: {line}");
                    }
                }
            }
        }
    }
}
