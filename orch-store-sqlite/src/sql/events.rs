//! Statements of the event log, conversations and run leases.

use orch_core::store::{EventQuery, StoreError, StoreResult};
use orch_core::wire::{Event, EventKeys, EventRecord, Id, Message, NewEvent, RunLease, Timestamp, now};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, params};

use super::{conv, db_err, get_opt_id, get_ts, get_u64, id_text, int, limit_param, opt_id_text, ts_text};
use crate::writer::WriteCtx;

// ---- the event log ----

/// An event serialized before it reaches the writer thread, so encoding runs in parallel.
pub(crate) struct PreparedEvent {
    keys: EventKeys,
    event: Event,
    payload: String,
}

/// Serializes events for [`insert_events`].
pub(crate) fn prepare_events(events: Vec<NewEvent>) -> StoreResult<Vec<PreparedEvent>> {
    events
        .into_iter()
        .map(|e| {
            let payload = serde_json::to_string(&e.event)
                .map_err(|err| StoreError::Backend(format!("cannot encode {} event: {err}", e.event.kind())))?;
            Ok(PreparedEvent { keys: e.keys, event: e.event, payload })
        })
        .collect()
}

/// Appends events with the next seqs of the batch transaction.
pub(crate) fn insert_events(ctx: &mut WriteCtx<'_>, events: Vec<PreparedEvent>) -> StoreResult<Vec<EventRecord>> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let timestamp = now();
    let ts = ts_text(timestamp);
    let mut s = ctx
        .conn
        .prepare_cached(
            "INSERT INTO events (seq, ts, agent_id, orchestrator_id, workflow_id, step, task_slug, category, type, \
             payload) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )
        .map_err(db_err)?;
    let mut out = Vec::with_capacity(events.len());
    for e in events {
        let seq = ctx.next_seq;
        s.execute(params![
            int(seq, "seq")?,
            ts,
            opt_id_text(e.keys.agent_id),
            opt_id_text(e.keys.orchestrator_id),
            opt_id_text(e.keys.workflow_id),
            e.keys.step,
            e.keys.task_slug,
            e.event.category().as_str(),
            e.event.kind(),
            e.payload,
        ])
        .map_err(db_err)?;
        ctx.next_seq += 1;
        out.push(EventRecord { seq, timestamp, keys: e.keys, event: e.event });
    }
    Ok(out)
}

/// Reads events matching `q`, oldest first.
pub(crate) fn read_events(conn: &Connection, q: &EventQuery) -> StoreResult<Vec<EventRecord>> {
    if q.limit == Some(0) || q.until_seq.is_some_and(|u| u <= q.after_seq) {
        return Ok(Vec::new());
    }
    let mut sql = String::from(
        "SELECT seq, ts, agent_id, orchestrator_id, workflow_id, step, task_slug, payload, type FROM events \
         WHERE seq > ?",
    );
    let mut args: Vec<SqlValue> = vec![SqlValue::Integer(i64::try_from(q.after_seq).unwrap_or(i64::MAX))];
    let mut eq = |col: &str, v: Option<String>, sql: &mut String| {
        if let Some(v) = v {
            sql.push_str(" AND ");
            sql.push_str(col);
            sql.push_str(" = ?");
            args.push(SqlValue::Text(v));
        }
    };
    eq("agent_id", opt_id_text(q.agent_id), &mut sql);
    eq("orchestrator_id", opt_id_text(q.orchestrator_id), &mut sql);
    eq("workflow_id", opt_id_text(q.workflow_id), &mut sql);
    eq("step", q.step.clone(), &mut sql);
    eq("task_slug", q.task_slug.clone(), &mut sql);
    if let Some(u) = q.until_seq {
        sql.push_str(" AND seq <= ?");
        args.push(SqlValue::Integer(i64::try_from(u).unwrap_or(i64::MAX)));
    }
    let mut any_of = |col: &str, values: Vec<String>, sql: &mut String| {
        if !values.is_empty() {
            sql.push_str(" AND ");
            sql.push_str(col);
            sql.push_str(" IN (");
            sql.push_str(&vec!["?"; values.len()].join(", "));
            sql.push(')');
            args.extend(values.into_iter().map(SqlValue::Text));
        }
    };
    any_of("category", q.categories.iter().map(|c| c.as_str().to_string()).collect(), &mut sql);
    any_of("type", q.types.clone(), &mut sql);
    sql.push_str(" ORDER BY seq");
    if let Some(limit) = q.limit {
        sql.push_str(" LIMIT ?");
        args.push(SqlValue::Integer(limit_param(limit)));
    }
    let mut s = conn.prepare_cached(&sql).map_err(db_err)?;
    let rows = s
        .query_map(rusqlite::params_from_iter(args), |row| {
            let seq = get_u64(row, 0)?;
            let payload: String = row.get(7)?;
            let event = match serde_json::from_str(&payload) {
                Ok(event) => event,
                // One damaged row must not stop every reader of the log: it is returned as such.
                Err(e) => {
                    let stored_type: String = row.get(8)?;
                    tracing::warn!(seq, stored_type, error = %e, "stored event could not be decoded");
                    Event::Undecodable { stored_type, error: e.to_string() }
                }
            };
            Ok(EventRecord {
                seq,
                timestamp: get_ts(row, 1)?,
                keys: EventKeys {
                    agent_id: get_opt_id(row, 2)?,
                    orchestrator_id: get_opt_id(row, 3)?,
                    workflow_id: get_opt_id(row, 4)?,
                    step: row.get(5)?,
                    task_slug: row.get(6)?,
                },
                event,
            })
        })
        .map_err(db_err)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_err)
}

/// The highest seq (0 when empty).
/// The last seq handed out (from the counter, so it survives pruning).
pub(crate) fn last_seq(conn: &Connection) -> StoreResult<u64> {
    let last: i64 = conn
        .prepare_cached("SELECT last FROM event_seq WHERE id = 1")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(db_err)?;
    u64::try_from(last).map_err(|_| StoreError::Decode(format!("negative seq {last}")))
}

/// Moves the seq counter to `last` (inside the writing transaction).
pub(crate) fn set_last_seq(conn: &Connection, last: u64) -> StoreResult<()> {
    let last = i64::try_from(last).map_err(|_| StoreError::Backend(format!("seq {last} is out of range")))?;
    conn.prepare_cached("UPDATE event_seq SET last = ?1 WHERE id = 1")
        .and_then(|mut s| s.execute([last]))
        .map_err(db_err)?;
    Ok(())
}

/// Events stored (not counting pruned ones).
pub(crate) fn count_events(conn: &Connection) -> StoreResult<u64> {
    let n: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM events")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(db_err)?;
    Ok(n.max(0) as u64)
}

/// Deletes the events of archived agents appended before `before`.
pub(crate) fn prune_events(conn: &Connection, before: Timestamp) -> StoreResult<u64> {
    let n = conn
        .prepare_cached("DELETE FROM events WHERE ts < ?1 AND agent_id IN (SELECT id FROM agents WHERE archived = 1)")
        .and_then(|mut s| s.execute([ts_text(before)]))
        .map_err(db_err)?;
    Ok(n as u64)
}

// ---- conversations ----

pub(crate) fn load_conversation(conn: &Connection, agent_id: Id) -> StoreResult<Vec<Message>> {
    let mut s =
        conn.prepare_cached("SELECT message FROM conversation WHERE agent_id = ?1 ORDER BY id").map_err(db_err)?;
    let rows = s
        .query_map([id_text(agent_id)], |row| {
            let m: String = row.get(0)?;
            conv(0, serde_json::from_str::<Message>(&m))
        })
        .map_err(db_err)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_err)
}

pub(crate) fn clear_conversation(conn: &Connection, agent_id: Id) -> StoreResult<()> {
    conn.prepare_cached("DELETE FROM conversation WHERE agent_id = ?1")
        .and_then(|mut s| s.execute([id_text(agent_id)]))
        .map_err(db_err)?;
    Ok(())
}

/// A run lease as stored.
pub(crate) fn lease_text(lease: &RunLease) -> StoreResult<String> {
    serde_json::to_string(lease).map_err(|e| StoreError::Backend(format!("cannot encode run lease: {e}")))
}
