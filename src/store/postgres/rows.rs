//! Reading a row's columns by position, for `read` and `gate`. The columns keep the SQLite
//! backend's encodings (`super::super::schema`: times as RFC 3339 text, JSON as text, wire
//! names as text, counts as BIGINT); what cannot be read is [`StoreError::Corrupt`], naming
//! the column. And [`storable`], the one change text needs on its way in.

use super::super::StoreError;
use super::super::schema::parse_time;
use chrono::{DateTime, Utc};
use serde_json::Value as Json;
use sqlx::postgres::PgRow;
use sqlx::{Column, Row};
use std::str::FromStr;

fn corrupt(row: &PgRow, idx: usize, e: impl std::fmt::Display) -> StoreError {
    let name = row.columns().get(idx).map_or("?", |c| c.name());
    StoreError::Corrupt(format!("column {name} holds {e}"))
}

pub fn text(row: &PgRow, idx: usize) -> Result<String, StoreError> {
    Ok(row.try_get(idx)?)
}

pub fn opt_text(row: &PgRow, idx: usize) -> Result<Option<String>, StoreError> {
    Ok(row.try_get(idx)?)
}

pub fn time(row: &PgRow, idx: usize) -> Result<DateTime<Utc>, StoreError> {
    let s = text(row, idx)?;
    parse_time(&s).map_err(|e| corrupt(row, idx, format!("`{s}`, not a time: {e}")))
}

pub fn opt_time(row: &PgRow, idx: usize) -> Result<Option<DateTime<Utc>>, StoreError> {
    match opt_text(row, idx)? {
        None => Ok(None),
        Some(_) => time(row, idx).map(Some),
    }
}

pub fn json(row: &PgRow, idx: usize) -> Result<Json, StoreError> {
    let s = text(row, idx)?;
    serde_json::from_str(&s).map_err(|e| corrupt(row, idx, format!("text that is not JSON: {e}")))
}

pub fn opt_json(row: &PgRow, idx: usize) -> Result<Option<Json>, StoreError> {
    match opt_text(row, idx)? {
        None => Ok(None),
        Some(_) => json(row, idx).map(Some),
    }
}

/// A wire name (a state, a kind, a status).
pub fn name<T>(row: &PgRow, idx: usize) -> Result<T, StoreError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    let s = text(row, idx)?;
    s.parse().map_err(|e| corrupt(row, idx, e))
}

/// A BIGINT read into the narrower type the store's types keep (an attempt, an exit code).
pub fn int<T: TryFrom<i64>>(row: &PgRow, idx: usize) -> Result<T, StoreError> {
    let n: i64 = row.try_get(idx)?;
    T::try_from(n).map_err(|_| corrupt(row, idx, format!("{n}, out of range")))
}

pub fn opt_int<T: TryFrom<i64>>(row: &PgRow, idx: usize) -> Result<Option<T>, StoreError> {
    let n: Option<i64> = row.try_get(idx)?;
    match n {
        None => Ok(None),
        Some(_) => int(row, idx).map(Some),
    }
}

pub fn flag(row: &PgRow, idx: usize) -> Result<bool, StoreError> {
    Ok(row.try_get(idx)?)
}

/// Text as PostgreSQL can keep it: a TEXT value cannot hold a NUL byte, which SQLite keeps
/// and a step's output may carry; it becomes U+FFFD rather than losing the whole line.
pub fn storable(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains('\0') {
        text.replace('\0', "\u{FFFD}").into()
    } else {
        text.into()
    }
}
