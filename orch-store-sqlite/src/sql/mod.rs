//! Rows ↔ entities, and the statements of every store operation. Functions here run on a blocking thread:
//! readers on a pooled connection, writers inside the writer's batch transaction.

mod entities;
mod events;
mod graphs;
mod work;

use chrono::SecondsFormat;
use orch_core::store::{StoreError, StoreResult};
use orch_core::wire::{Id, Timestamp, Usage};
use rusqlite::Row;
use rusqlite::types::Type;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub(crate) use entities::*;
pub(crate) use events::*;
pub(crate) use graphs::*;
pub(crate) use work::*;

// ---- conversions ----

/// Maps a rusqlite error: decoding problems become [`StoreError::Decode`], the rest
/// [`StoreError::Backend`].
pub(crate) fn db_err(e: rusqlite::Error) -> StoreError {
    match e {
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::IntegralValueOutOfRange(..) => StoreError::Decode(e.to_string()),
        other => StoreError::Backend(other.to_string()),
    }
}

pub(crate) fn conv<T, E: std::error::Error + Send + Sync + 'static>(i: usize, r: Result<T, E>) -> rusqlite::Result<T> {
    r.map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, Type::Text, Box::new(e)))
}

pub(crate) fn id_text(id: Id) -> String {
    id.hyphenated().to_string()
}

pub(crate) fn opt_id_text(id: Option<Id>) -> Option<String> {
    id.map(id_text)
}

/// Timestamps are stored as fixed-width RFC 3339 UTC text with nanoseconds: exact, and sortable as text.
pub(crate) fn ts_text(t: Timestamp) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

fn opt_ts_text(t: Option<Timestamp>) -> Option<String> {
    t.map(ts_text)
}

fn int(v: u64, what: &str) -> StoreResult<i64> {
    i64::try_from(v).map_err(|_| StoreError::Backend(format!("{what} {v} is too large to store")))
}

pub(crate) fn json_text(v: &Value) -> StoreResult<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Backend(format!("cannot encode JSON: {e}")))
}

fn enum_text<T: Serialize>(v: &T) -> StoreResult<String> {
    match serde_json::to_value(v) {
        Ok(Value::String(s)) => Ok(s),
        Ok(other) => Ok(other.to_string()),
        Err(e) => Err(StoreError::Backend(format!("cannot encode value: {e}"))),
    }
}

/// Column `i` as borrowed text (no copy), or a decoding error.
fn text_at<'r>(row: &'r Row<'_>, i: usize) -> rusqlite::Result<&'r str> {
    row.get_ref(i)?.as_str().map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, Type::Text, Box::new(e)))
}

/// Column `i` as borrowed text, `None` for NULL.
fn opt_text_at<'r>(row: &'r Row<'_>, i: usize) -> rusqlite::Result<Option<&'r str>> {
    row.get_ref(i)?.as_str_or_null().map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, Type::Text, Box::new(e)))
}

fn get_id(row: &Row<'_>, i: usize) -> rusqlite::Result<Id> {
    conv(i, Id::parse_str(text_at(row, i)?))
}

fn get_opt_id(row: &Row<'_>, i: usize) -> rusqlite::Result<Option<Id>> {
    opt_text_at(row, i)?.map(|s| conv(i, Id::parse_str(s))).transpose()
}

fn parse_ts(i: usize, s: &str) -> rusqlite::Result<Timestamp> {
    conv(i, chrono::DateTime::parse_from_rfc3339(s)).map(|t| t.with_timezone(&chrono::Utc))
}

fn get_ts(row: &Row<'_>, i: usize) -> rusqlite::Result<Timestamp> {
    parse_ts(i, text_at(row, i)?)
}

fn get_opt_ts(row: &Row<'_>, i: usize) -> rusqlite::Result<Option<Timestamp>> {
    opt_text_at(row, i)?.map(|s| parse_ts(i, s)).transpose()
}

fn get_json(row: &Row<'_>, i: usize) -> rusqlite::Result<Value> {
    conv(i, serde_json::from_str(text_at(row, i)?))
}

fn get_opt_json(row: &Row<'_>, i: usize) -> rusqlite::Result<Option<Value>> {
    opt_text_at(row, i)?.map(|s| conv(i, serde_json::from_str(s))).transpose()
}

/// A JSON list column (`[]`, the usual value, without running the parser).
fn get_json_list<T: DeserializeOwned>(row: &Row<'_>, i: usize) -> rusqlite::Result<Vec<T>> {
    match text_at(row, i)? {
        "[]" => Ok(Vec::new()),
        s => conv(i, serde_json::from_str(s)),
    }
}

fn get_u64(row: &Row<'_>, i: usize) -> rusqlite::Result<u64> {
    let v: i64 = row.get(i)?;
    conv(i, u64::try_from(v))
}

fn get_u32(row: &Row<'_>, i: usize) -> rusqlite::Result<u32> {
    let v: i64 = row.get(i)?;
    conv(i, u32::try_from(v))
}

fn get_enum<T: DeserializeOwned>(row: &Row<'_>, i: usize) -> rusqlite::Result<T> {
    let s: String = row.get(i)?;
    conv(i, serde_json::from_value(Value::String(s)))
}

/// An enum column holding one of `known` as `text` writes it, matched without a serde round trip;
/// any other text through [`get_enum`] (so a value this list misses still reads as serde reads it).
fn get_known<T: DeserializeOwned + Copy>(
    row: &Row<'_>,
    i: usize,
    known: &[T],
    text: fn(T) -> &'static str,
) -> rusqlite::Result<T> {
    let stored = text_at(row, i)?;
    match known.iter().copied().find(|v| text(*v) == stored) {
        Some(v) => Ok(v),
        None => get_enum(row, i),
    }
}

fn get_usage(row: &Row<'_>, first: usize) -> rusqlite::Result<Usage> {
    Ok(Usage {
        input_tokens: get_u64(row, first)?,
        output_tokens: get_u64(row, first + 1)?,
        cache_read_input_tokens: get_u64(row, first + 2)?,
        cache_creation_input_tokens: get_u64(row, first + 3)?,
    })
}

pub(crate) fn usage_params(u: &Usage) -> StoreResult<[i64; 4]> {
    Ok([
        int(u.input_tokens, "input_tokens")?,
        int(u.output_tokens, "output_tokens")?,
        int(u.cache_read_input_tokens, "cache_read_input_tokens")?,
        int(u.cache_creation_input_tokens, "cache_creation_input_tokens")?,
    ])
}

pub(crate) fn not_found(what: &str, id: Id) -> StoreError {
    StoreError::NotFound { what: format!("{what} {id}") }
}

fn limit_param(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
