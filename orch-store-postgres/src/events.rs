//! The event log and agent steps: batched appends under the seq counter row, reads, retention,
//! conversations.

use orch_core::store::{EventQuery, StepCommit, StoreError, StoreResult};
use orch_core::wire::{AgentStatus, Event, EventKeys, EventRecord, Id, Message, NewEvent, Timestamp};

use crate::sql::{Db, db_err, get_u64, json_decode, json_param, limit_param, not_found, now_us, usage_params};
use crate::sqlx;
use sqlx_postgres::PgConnection;

/// Events as columns, one array per column, serialized before any connection is taken.
pub(crate) struct Batch {
    events: Vec<NewEvent>,
    agent_ids: Vec<Option<Id>>,
    orchestrator_ids: Vec<Option<Id>>,
    workflow_ids: Vec<Option<Id>>,
    steps: Vec<Option<String>>,
    task_slugs: Vec<Option<String>>,
    categories: Vec<&'static str>,
    types: Vec<String>,
    payloads: Vec<String>,
}

impl Batch {
    /// Binds `$1`…`$11` of [`APPEND_CTES`]: the count, the time, one array per column, the channel.
    fn bind_append<'q, O>(
        &'q self,
        query: sqlx_core::query_as::QueryAs<'q, sqlx::Postgres, O, sqlx_postgres::PgArguments>,
        ts: Timestamp,
        channel: &'q str,
    ) -> sqlx_core::query_as::QueryAs<'q, sqlx::Postgres, O, sqlx_postgres::PgArguments> {
        query
            .bind(self.len() as i64)
            .bind(ts)
            .bind(&self.agent_ids)
            .bind(&self.orchestrator_ids)
            .bind(&self.workflow_ids)
            .bind(&self.steps)
            .bind(&self.task_slugs)
            .bind(&self.categories)
            .bind(&self.types)
            .bind(&self.payloads)
            .bind(channel)
    }

    /// Serializes the events' payloads and splits their keys into columns.
    pub(crate) fn new(events: Vec<NewEvent>) -> StoreResult<Self> {
        let n = events.len();
        let mut b = Batch {
            agent_ids: Vec::with_capacity(n),
            orchestrator_ids: Vec::with_capacity(n),
            workflow_ids: Vec::with_capacity(n),
            steps: Vec::with_capacity(n),
            task_slugs: Vec::with_capacity(n),
            categories: Vec::with_capacity(n),
            types: Vec::with_capacity(n),
            payloads: Vec::with_capacity(n),
            events: Vec::new(),
        };
        b.extend(events)?;
        Ok(b)
    }

    /// Adds events after those of the batch (the events a change records itself).
    pub(crate) fn extend(&mut self, events: Vec<NewEvent>) -> StoreResult<()> {
        for e in &events {
            self.agent_ids.push(e.keys.agent_id);
            self.orchestrator_ids.push(e.keys.orchestrator_id);
            self.workflow_ids.push(e.keys.workflow_id);
            self.steps.push(e.keys.step.clone());
            self.task_slugs.push(e.keys.task_slug.clone());
            self.categories.push(e.event.category().as_str());
            self.types.push(e.event.kind().to_string());
            // `json` holds any JSON text, `\u0000` included, so payloads go in as serde wrote them. (Rows
            // from before migration 8 may hold the `jsonb` wrapper; `json_decode` unwraps those.)
            self.payloads.push(
                serde_json::to_string(&e.event)
                    .map_err(|err| StoreError::Backend(format!("cannot encode {} event: {err}", e.event.kind())))?,
            );
        }
        self.events.extend(events);
        Ok(())
    }

    fn len(&self) -> usize {
        self.events.len()
    }

    /// The records of the batch, given the last seq it was assigned.
    fn records(self, last: u64, ts: Timestamp) -> StoreResult<Vec<EventRecord>> {
        let n = self.events.len() as u64;
        let first = last
            .checked_sub(n)
            .map(|s| s + 1)
            .ok_or_else(|| StoreError::Decode(format!("seq counter {last} is below the batch size {n}")))?;
        Ok(self
            .events
            .into_iter()
            .zip(first..)
            .map(|(e, seq)| EventRecord { seq, timestamp: ts, keys: e.keys, event: e.event })
            .collect())
    }
}

/// The part of an appending statement that takes `$N` seqs from the counter (`s`, gated by `{GATE}`) and
/// inserts the batch (`e`). Parameters: `$1` n, `$2` ts, `$3..$10` the columns.
const APPEND_CTES: &str = "s AS (\
        UPDATE {S}.event_seq SET last = last + $1 WHERE id = 1 AND $1 > 0 {GATE} RETURNING last\
    ), e AS (\
        INSERT INTO {S}.events (seq, ts, agent_id, orchestrator_id, workflow_id, step, task_slug, category, type, \
        payload) \
        SELECT s.last - $1 + u.ord, $2, u.agent_id, u.orchestrator_id, u.workflow_id, u.step, u.task_slug, \
        u.category, u.type, u.payload::json \
        FROM s, UNNEST($3::uuid[], $4::uuid[], $5::uuid[], $6::text[], $7::text[], $8::text[], $9::text[], \
        $10::text[]) WITH ORDINALITY \
        AS u(agent_id, orchestrator_id, workflow_id, step, task_slug, category, type, payload, ord)\
    )";

/// Appends a batch in one statement — one round trip, one transaction: the counter row is raised by the
/// batch size (appenders queue on that row lock until the previous one commits, so commit order is seq
/// order), the rows are inserted from arrays, and `pg_notify` announces the last seq at commit.
pub(crate) async fn append<'c, E>(db: &Db, exec: E, channel: &str, batch: Batch) -> StoreResult<Vec<EventRecord>>
where
    E: sqlx_core::executor::Executor<'c, Database = sqlx::Postgres>,
{
    if batch.len() == 0 {
        return Ok(Vec::new());
    }
    let ts = now_us();
    let sql = format!(
        "WITH {} SELECT s.last, (SELECT count(pg_notify($11, s.last::text)) FROM s) FROM s",
        APPEND_CTES.replace("{GATE}", "")
    );
    let sql = db.sql(&sql);
    let row: (i64, i64) = batch.bind_append(sqlx::query_as(&sql), ts, channel).fetch_one(exec).await.map_err(db_err)?;
    let last = u64::try_from(row.0).map_err(|_| StoreError::Decode(format!("negative seq {}", row.0)))?;
    batch.records(last, ts)
}

/// Applies a step in one statement (one transaction): the agent's status, usage, state and session in one
/// UPDATE, which also clears the run lease of run `release` if that run holds it (the run's end); its
/// conversation messages; its events, as [`append`]. When the agent does not exist nothing is written
/// (the message and event inserts are gated on the agent update) and `NotFound` is returned.
pub(crate) async fn commit_step(
    db: &Db,
    channel: &str,
    step: StepCommit,
    release: Option<Id>,
) -> StoreResult<Vec<EventRecord>> {
    let agent_id = step.agent_id;
    let (u, cost) = match &step.usage {
        Some((usage, cost)) => (usage_params(usage)?, *cost),
        None => ([0; 4], 0.0),
    };
    let (has_state, state, session) = match &step.state {
        Some(saved) => (true, saved.state.as_ref().map(json_param).transpose()?, saved.session_id.clone()),
        None => (false, None, None),
    };
    let messages: Vec<String> = step.messages.iter().map(json_param).collect::<StoreResult<_>>()?;
    let (has_context, used, window) = match step.context {
        Some((used, window)) => {
            (true, i64::try_from(used).unwrap_or(i64::MAX), window.map(|w| i64::try_from(w).unwrap_or(i64::MAX)))
        }
        None => (false, 0, None),
    };
    let batch = Batch::new(step.events)?;
    let ts = now_us();
    let sql = format!(
        "WITH a AS (\
            UPDATE {{S}}.agents SET status = COALESCE($12, status), input_tokens = input_tokens + $13, \
            output_tokens = output_tokens + $14, cache_read_input_tokens = cache_read_input_tokens + $15, \
            cache_creation_input_tokens = cache_creation_input_tokens + $16, \
            total_cost_usd = total_cost_usd + $17, \
            state = CASE WHEN $18 THEN $19::jsonb ELSE state END, \
            session_id = CASE WHEN $18 THEN $20 ELSE session_id END, \
            context_used = CASE WHEN $23 THEN $24 ELSE context_used END, \
            context_window = CASE WHEN $23 THEN $25 ELSE context_window END, \
            run_lease = CASE WHEN run_lease ->> 'run_id' = $26::text THEN NULL ELSE run_lease END, \
            updated_at = $2 WHERE id = $21 RETURNING id\
         ), m AS (\
            INSERT INTO {{S}}.conversation (agent_id, message) \
            SELECT a.id, u.message::jsonb FROM a, UNNEST($22::text[]) WITH ORDINALITY AS u(message, ord) \
            ORDER BY u.ord\
         ), {} \
         SELECT (SELECT count(*) FROM a), (SELECT last FROM s), \
         (SELECT count(pg_notify($11, s.last::text)) FROM s)",
        APPEND_CTES.replace("{GATE}", "AND EXISTS (SELECT 1 FROM a)")
    );
    let sql = db.sql(&sql);
    let row: (i64, Option<i64>, i64) = batch
        .bind_append(sqlx::query_as(&sql), ts, channel)
        .bind(step.status.map(AgentStatus::as_str))
        .bind(u[0])
        .bind(u[1])
        .bind(u[2])
        .bind(u[3])
        .bind(cost)
        .bind(has_state)
        .bind(state)
        .bind(session)
        .bind(agent_id)
        .bind(&messages)
        .bind(has_context)
        .bind(used)
        .bind(window)
        .bind(release.map(|r| r.hyphenated().to_string()))
        .fetch_one(db)
        .await
        .map_err(db_err)?;
    if row.0 == 0 {
        return Err(not_found("agent", agent_id));
    }
    match row.1 {
        Some(last) => {
            batch.records(u64::try_from(last).map_err(|_| StoreError::Decode(format!("negative seq {last}")))?, ts)
        }
        None => Ok(Vec::new()),
    }
}

/// Whether an error means the connection was lost (killed backend, server restart, network): a read can
/// then simply be run again on a fresh connection.
fn connection_lost(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed => true,
        // admin_shutdown, crash_shutdown, cannot_connect_now, connection_exception class.
        sqlx::Error::Database(db) => {
            db.code().is_some_and(|c| matches!(c.as_ref(), "57P01" | "57P02" | "57P03") || c.starts_with("08"))
        }
        _ => false,
    }
}

/// Runs a read, once more (after a short pause) if its connection was lost: followers must not end
/// because a backend was killed or the server restarted.
async fn retry_read<T, F, Fut>(f: F) -> Result<T, sqlx::Error>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, sqlx::Error>>,
{
    let mut attempt = 0;
    loop {
        match f().await {
            Err(e) if attempt < 2 && connection_lost(&e) => {
                attempt += 1;
                tracing::debug!(error = %e, attempt, "PostgreSQL connection lost during a read; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(50 * attempt)).await;
            }
            other => return other,
        }
    }
}

/// Reads events matching `q`, oldest first. Only the set filters appear in the statement, so each
/// combination gets a plan that uses its index. Retried if the connection is lost.
pub(crate) async fn read_events(db: &Db, q: &EventQuery) -> StoreResult<Vec<EventRecord>> {
    if q.limit == Some(0) || q.until_seq.is_some_and(|u| u <= q.after_seq) {
        return Ok(Vec::new());
    }
    let mut sql = String::from(
        "SELECT seq, ts, agent_id, orchestrator_id, workflow_id, step, task_slug, payload::text, type \
         FROM {S}.events WHERE seq > $1",
    );
    let mut n = 1;
    let mut param = |sql: &mut String, cond: &str| {
        n += 1;
        sql.push_str(" AND ");
        sql.push_str(&cond.replace('?', &format!("${n}")));
    };
    if q.agent_id.is_some() {
        param(&mut sql, "agent_id = ?");
    }
    if q.orchestrator_id.is_some() {
        param(&mut sql, "orchestrator_id = ?");
    }
    if q.workflow_id.is_some() {
        param(&mut sql, "workflow_id = ?");
    }
    if q.step.is_some() {
        param(&mut sql, "step = ?");
    }
    if q.task_slug.is_some() {
        param(&mut sql, "task_slug = ?");
    }
    if q.until_seq.is_some() {
        param(&mut sql, "seq <= ?");
    }
    let categories: Vec<&str> = q.categories.iter().map(|c| c.as_str()).collect();
    if !categories.is_empty() {
        param(&mut sql, "category = ANY(?::text[])");
    }
    if !q.types.is_empty() {
        param(&mut sql, "type = ANY(?::text[])");
    }
    sql.push_str(" ORDER BY seq");
    if q.limit.is_some() {
        n += 1;
        sql.push_str(&format!(" LIMIT ${n}"));
    }
    let sql = sql.replace("{S}", &db.s);
    let categories = &categories;
    let rows = retry_read(|| {
        let mut query = sqlx::query(&sql).bind(i64::try_from(q.after_seq).unwrap_or(i64::MAX));
        if let Some(v) = q.agent_id {
            query = query.bind(v);
        }
        if let Some(v) = q.orchestrator_id {
            query = query.bind(v);
        }
        if let Some(v) = q.workflow_id {
            query = query.bind(v);
        }
        if let Some(v) = &q.step {
            query = query.bind(v);
        }
        if let Some(v) = &q.task_slug {
            query = query.bind(v);
        }
        if let Some(v) = q.until_seq {
            query = query.bind(i64::try_from(v).unwrap_or(i64::MAX));
        }
        if !categories.is_empty() {
            query = query.bind(categories);
        }
        if !q.types.is_empty() {
            query = query.bind(&q.types);
        }
        if let Some(limit) = q.limit {
            query = query.bind(limit_param(limit));
        }
        query.fetch_all(db)
    })
    .await
    .map_err(db_err)?;
    rows.iter()
        .map(|row| {
            use sqlx::Row;
            let seq = get_u64(row, 0)?;
            let payload: String = row.try_get(7).map_err(db_err)?;
            let event = match json_decode::<Event>(&payload) {
                Ok(event) => event,
                // One damaged row must not stop every reader of the log: it is returned as such.
                Err(e) => {
                    let stored_type: String = row.try_get(8).map_err(db_err)?;
                    tracing::warn!(seq, stored_type, error = %e, "stored event could not be decoded");
                    Event::Undecodable { stored_type, error: e.to_string() }
                }
            };
            Ok(EventRecord {
                seq,
                timestamp: row.try_get(1).map_err(db_err)?,
                keys: EventKeys {
                    agent_id: row.try_get(2).map_err(db_err)?,
                    orchestrator_id: row.try_get(3).map_err(db_err)?,
                    workflow_id: row.try_get(4).map_err(db_err)?,
                    step: row.try_get(5).map_err(db_err)?,
                    task_slug: row.try_get(6).map_err(db_err)?,
                },
                event,
            })
        })
        .collect()
}

/// The last seq handed out (from the counter, so it survives pruning).
pub(crate) async fn last_seq(db: &Db) -> StoreResult<u64> {
    let sql = format!("SELECT last FROM {}.event_seq WHERE id = 1", db.s);
    let last: i64 = retry_read(|| sqlx::query_scalar(&sql).fetch_one(db)).await.map_err(db_err)?;
    u64::try_from(last).map_err(|_| StoreError::Decode(format!("negative seq {last}")))
}

/// Events stored, the last seq, the schema version and the size of the schema's tables (with their indexes
/// and TOAST data), in one query.
pub(crate) async fn status(db: &Db, schema: &str) -> StoreResult<(u64, u64, i64, u64)> {
    let (events, last, version, size): (i64, i64, i64, i64) = sqlx::query_as(&db.sql(
        "SELECT (SELECT count(*) FROM {S}.events), (SELECT last FROM {S}.event_seq WHERE id = 1), \
         (SELECT COALESCE(max(version), 0) FROM {S}.orch_schema_version), \
         (SELECT COALESCE(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c \
          JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind IN ('r', 'm', 'p'))",
    ))
    .bind(schema)
    .fetch_one(db)
    .await
    .map_err(db_err)?;
    let non_neg = |v: i64| u64::try_from(v).map_err(|_| StoreError::Decode(format!("negative count {v}")));
    Ok((non_neg(events)?, non_neg(last)?, version, non_neg(size)?))
}

/// Deletes the events of archived agents appended before `before`.
pub(crate) async fn prune_events(db: &Db, before: Timestamp) -> StoreResult<u64> {
    let done = sqlx::query(
        &db.sql("DELETE FROM {S}.events WHERE ts < $1 AND agent_id IN (SELECT id FROM {S}.agents WHERE archived)"),
    )
    .bind(before)
    .execute(db)
    .await
    .map_err(db_err)?;
    Ok(done.rows_affected())
}

pub(crate) async fn load_conversation(db: &Db, agent_id: Id) -> StoreResult<Vec<Message>> {
    let rows: Vec<String> =
        sqlx::query_scalar(&db.sql("SELECT message::text FROM {S}.conversation WHERE agent_id = $1 ORDER BY id"))
            .bind(agent_id)
            .fetch_all(db)
            .await
            .map_err(db_err)?;
    rows.iter().map(|m| json_decode(m).map_err(|e| StoreError::Decode(format!("conversation message: {e}")))).collect()
}

pub(crate) async fn clear_conversation(db: &Db, conn: &mut PgConnection, agent_id: Id) -> StoreResult<()> {
    sqlx::query(&db.sql("DELETE FROM {S}.conversation WHERE agent_id = $1"))
        .bind(agent_id)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    Ok(())
}
