//! Runs of budget reservations and settlements (one batch's, or several grouped batches', one after
//! the other) applied as a few statements whatever their number. Each ends exactly as applying them one
//! at a time in order would: the same rows locked in the same order (graph rows, then `budget_spend`
//! rows), each reservation checked against the limits with the reservations before it counted, the
//! same sums written.

use std::collections::HashMap;

use orch_core::store::StoreError;
use orch_core::wire::{Id, Reservation};
use sqlx_postgres::PgConnection;

use crate::sql::{Db, db_err, not_found};
use crate::sqlx;
use crate::work::{limits, periods};

/// A failure of a run: the index of the change that failed, and why.
pub(crate) type RunError = (usize, StoreError);

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v.dedup();
    v
}

/// Reserves each of `rs` in order, or fails at the first that would pass a limit (or names a missing
/// graph): its graphs' rows and its periods' rows are locked and read once, the checks made in order in
/// memory, and the reserved sums written by one statement.
pub(crate) async fn reserve_all(db: &Db, conn: &mut PgConnection, rs: &[&Reservation]) -> Result<(), RunError> {
    let at0 = |e: StoreError| (0, e);
    let graph_ids: Vec<Id> = sorted(rs.iter().filter_map(|r| r.graph_id).collect());
    let rows: Vec<(Id, Option<f64>, f64)> =
        sqlx::query_as(&db.sql(
            "SELECT id, budget_usd, cost_usd FROM {S}.task_graphs WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE",
        ))
        .bind(&graph_ids)
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| at0(db_err(e)))?;
    let graphs: HashMap<Id, (Option<f64>, f64)> = rows.into_iter().map(|(id, l, c)| (id, (l, c))).collect();
    let keys: Vec<String> = sorted(rs.iter().flat_map(|r| periods(r)).collect());
    sqlx::query(&db.sql(
        "INSERT INTO {S}.budget_spend (period) SELECT p FROM UNNEST($1::text[]) AS u(p) ORDER BY p \
         ON CONFLICT (period) DO NOTHING",
    ))
    .bind(&keys)
    .execute(&mut *conn)
    .await
    .map_err(|e| at0(db_err(e)))?;
    let rows: Vec<(String, f64, f64)> = sqlx::query_as(&db.sql(
        "SELECT period, spent_usd, reserved_usd FROM {S}.budget_spend WHERE period = ANY($1::text[]) \
         ORDER BY period FOR UPDATE",
    ))
    .bind(&keys)
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| at0(db_err(e)))?;
    let mut spend: HashMap<String, (f64, f64)> = rows.into_iter().map(|(p, s, r)| (p, (s, r))).collect();
    let (daily, monthly) = limits(db, conn).await.map_err(at0)?;
    let mut added: HashMap<String, f64> = HashMap::new();
    for (k, r) in rs.iter().enumerate() {
        let get = |spend: &HashMap<String, (f64, f64)>, key: &str| spend.get(key).copied().unwrap_or((0.0, 0.0));
        let mut checks = vec![
            ("daily".to_string(), daily, get(&spend, &format!("day:{}", r.day))),
            ("monthly".to_string(), monthly, get(&spend, &format!("month:{}", r.month))),
        ];
        if let Some(id) = r.graph_id {
            let (limit, cost) = *graphs.get(&id).ok_or_else(|| (k, not_found("task graph", id)))?;
            // A graph's spending is its cost_usd; its row holds reservations only.
            let (_, reserved) = get(&spend, &format!("graph:{id}"));
            checks.push((format!("graph {id}"), limit, (cost, reserved)));
        }
        for (scope, limit, (spent, reserved)) in checks {
            if let Some(limit) = limit
                && spent + reserved + r.amount > limit + 1e-12
            {
                return Err((k, StoreError::BudgetExhausted { scope, limit, spent, reserved, asked: r.amount }));
            }
        }
        for key in periods(r) {
            spend.entry(key.clone()).or_insert((0.0, 0.0)).1 += r.amount;
            *added.entry(key).or_insert(0.0) += r.amount;
        }
    }
    let (keys, amounts): (Vec<String>, Vec<f64>) = added.into_iter().unzip();
    sqlx::query(&db.sql(
        "UPDATE {S}.budget_spend b SET reserved_usd = b.reserved_usd + u.amount \
         FROM UNNEST($1::text[], $2::float8[]) AS u(period, amount) WHERE b.period = u.period",
    ))
    .bind(&keys)
    .bind(&amounts)
    .execute(&mut *conn)
    .await
    .map_err(|e| at0(db_err(e)))?;
    Ok(())
}

/// Settles each of `items` (a reservation and its real cost): the costs added to their graphs' rows by
/// one statement, the periods' spending and released reservations by another. A missing graph fails
/// the first settlement naming it.
pub(crate) async fn settle_all(
    db: &Db,
    conn: &mut PgConnection,
    items: &[(&Reservation, f64)],
) -> Result<(), RunError> {
    let at0 = |e: StoreError| (0, e);
    let mut cost: HashMap<Id, f64> = HashMap::new();
    for (r, actual) in items {
        if let Some(id) = r.graph_id {
            *cost.entry(id).or_insert(0.0) += actual;
        }
    }
    let mut graphs: Vec<(Id, f64)> = cost.into_iter().collect();
    graphs.sort_by_key(|(id, _)| *id);
    let (ids, amounts): (Vec<Id>, Vec<f64>) = graphs.into_iter().unzip();
    if !ids.is_empty() {
        let updated: Vec<Id> = sqlx::query_scalar(&db.sql(
            "UPDATE {S}.task_graphs g SET cost_usd = g.cost_usd + u.amount \
             FROM UNNEST($1::uuid[], $2::float8[]) AS u(id, amount) WHERE g.id = u.id RETURNING g.id",
        ))
        .bind(&ids)
        .bind(&amounts)
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| at0(db_err(e)))?;
        if updated.len() < ids.len()
            && let Some((k, id)) = items
                .iter()
                .enumerate()
                .find_map(|(k, (r, _))| r.graph_id.filter(|id| !updated.contains(id)).map(|id| (k, id)))
        {
            return Err((k, not_found("task graph", id)));
        }
    }
    // Per period: spending added (none on a graph's row, which keeps reservations only) and
    // reservations released.
    let mut sums: HashMap<String, (f64, f64)> = HashMap::new();
    for (r, actual) in items {
        for key in periods(r) {
            let spent = if key.starts_with("graph:") { 0.0 } else { *actual };
            let e = sums.entry(key).or_insert((0.0, 0.0));
            e.0 += spent;
            e.1 += r.amount;
        }
    }
    let mut sums: Vec<(String, (f64, f64))> = sums.into_iter().collect();
    sums.sort_by(|a, b| a.0.cmp(&b.0));
    let keys: Vec<String> = sums.iter().map(|(k, _)| k.clone()).collect();
    let spent: Vec<f64> = sums.iter().map(|(_, (s, _))| *s).collect();
    let released: Vec<f64> = sums.iter().map(|(_, (_, r))| *r).collect();
    sqlx::query(&db.sql(
        "INSERT INTO {S}.budget_spend AS b (period, spent_usd, reserved_usd) \
         SELECT p, s, 0 FROM UNNEST($1::text[], $2::float8[], $3::float8[]) AS u(p, s, r) ORDER BY p \
         ON CONFLICT (period) DO UPDATE SET spent_usd = b.spent_usd + excluded.spent_usd, \
         reserved_usd = GREATEST(b.reserved_usd - (SELECT u2.r FROM UNNEST($1::text[], $3::float8[]) AS u2(p, r) \
         WHERE u2.p = b.period), 0)",
    ))
    .bind(&keys)
    .bind(&spent)
    .bind(&released)
    .execute(&mut *conn)
    .await
    .map_err(|e| at0(db_err(e)))?;
    Ok(())
}
