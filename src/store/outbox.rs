//! The alert outbox (SPEC §4): deliveries written in the same transaction as the events that
//! cause them, claimed by senders, and a record of every attempt.
//!
//! The store does not know what a channel is or how a message is sent: callers route events
//! to channels ([`NewDelivery`] in a [`super::Batch`]), claim due deliveries, and record what
//! each attempt gave. A delivery is `pending` until an attempt delivers it or it fails for
//! good; once `delivered` or `failed` it never changes again, so a delivered alert is never
//! claimed (and so never sent) again. A claim is a lease: a sender that dies mid-attempt lets
//! it lapse and another sender retries (at least once, not exactly once).

use super::StoreError;
use super::schema::{fmt_time, json_text, name_col, opt_json_col, opt_time_col, time_col};
use super::writer::Group;
use crate::event::{MigrationId, MigrationState};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, Row, params};
use serde::Serialize;
use serde_json::Value as Json;

crate::event::wire_enum! {
    /// How a delivery is sent.
    DeliveryKind {
        Email = "email",
        Webhook = "webhook",
    }
}

crate::event::wire_enum! {
    /// Where a delivery stands.
    DeliveryState {
        Pending = "pending",
        Delivered = "delivered",
        Failed = "failed",
    }
}

crate::event::wire_enum! {
    /// What one attempt gave.
    AttemptOutcome {
        Delivered = "delivered",
        Retry = "retry",
        Failed = "failed",
    }
}

/// A delivery to write with a batch: the batch's event at index `event` goes to `channel`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    /// Index into the batch's events.
    pub event: usize,
    /// The alert event name the rule matched (`failed`, `step_failed`, ...).
    pub alert: String,
    /// The migration's state right after the event.
    pub migration_state: MigrationState,
    pub channel: String,
    pub kind: DeliveryKind,
}

/// A delivery as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delivery {
    pub id: i64,
    pub migration: MigrationId,
    pub event_seq: i64,
    pub event: String,
    pub step: Option<String>,
    pub migration_state: MigrationState,
    pub channel: String,
    pub kind: DeliveryKind,
    pub state: DeliveryState,
    pub attempts: u32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// The message as rendered for the first attempt (secrets masked); retries send it again.
    #[serde(skip)]
    pub message: Option<Json>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One attempt to send a delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryAttempt {
    pub attempt: u32,
    pub at: DateTime<Utc>,
    pub outcome: AttemptOutcome,
    /// The HTTP status or SMTP reply code, when the other side answered.
    pub status: Option<i64>,
    pub error: Option<String>,
}

/// What an attempt gave, to record.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRecord {
    pub delivery: i64,
    pub at: DateTime<Utc>,
    pub outcome: AttemptOutcome,
    /// For [`AttemptOutcome::Retry`]: when to try again.
    pub retry_at: Option<DateTime<Utc>>,
    pub status: Option<i64>,
    pub error: Option<String>,
    /// The rendered message, kept for the retries (only the first record sets it).
    pub message: Option<Json>,
}

/// Writes a batch's deliveries; `seqs` and `steps` are those of the batch's events.
pub fn insert(
    conn: &Connection,
    group: &Group,
    id: &MigrationId,
    outbox: &[NewDelivery],
    seqs: &[i64],
    steps: &[Option<String>],
) -> Result<(), StoreError> {
    let mut insert = conn.prepare_cached(
        "INSERT OR IGNORE INTO deliveries (migration, event_seq, event, step, migration_state,
             channel, kind, state, next_attempt_at, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', ?8, ?8, ?8)",
    )?;
    let now = fmt_time(group.now);
    for new in outbox {
        let (Some(seq), Some(step)) = (seqs.get(new.event), steps.get(new.event)) else {
            return Err(StoreError::Database(format!(
                "an alert delivery names event {} of a batch of {}",
                new.event,
                seqs.len()
            )));
        };
        insert.execute(params![
            id.as_str(),
            seq,
            new.alert,
            step,
            new.migration_state.as_str(),
            new.channel,
            new.kind.as_str(),
            now,
        ])?;
    }
    Ok(())
}

const COLUMNS: &str = "id, migration, event_seq, event, step, migration_state, channel, kind, \
     state, attempts, next_attempt_at, last_error, message, created_at, updated_at";

fn row(r: &Row<'_>) -> rusqlite::Result<Delivery> {
    Ok(Delivery {
        id: r.get(0)?,
        migration: MigrationId::from(r.get::<_, String>(1)?),
        event_seq: r.get(2)?,
        event: r.get(3)?,
        step: r.get(4)?,
        migration_state: name_col(r, 5)?,
        channel: r.get(6)?,
        kind: name_col(r, 7)?,
        state: name_col(r, 8)?,
        attempts: r.get(9)?,
        next_attempt_at: opt_time_col(r, 10)?,
        last_error: r.get(11)?,
        message: opt_json_col(r, 12)?,
        created_at: time_col(r, 13)?,
        updated_at: time_col(r, 14)?,
    })
}

/// Takes up to `limit` pending deliveries due at `now` that no live claim holds (emails only
/// `with_email`), and holds them until `until`.
pub fn claim(
    conn: &Connection,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
    limit: u32,
    with_email: bool,
) -> Result<Vec<Delivery>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM deliveries
         WHERE state = 'pending' AND next_attempt_at <= ?1
           AND (claimed_until IS NULL OR claimed_until <= ?1)
           AND (?3 OR kind != 'email')
         ORDER BY next_attempt_at, id LIMIT ?2"
    );
    let now = fmt_time(now);
    let rows = conn
        .prepare_cached(&sql)?
        .query_map(params![now, limit, with_email], row)?
        .collect::<Result<Vec<_>, _>>()?;
    let mut hold = conn.prepare_cached("UPDATE deliveries SET claimed_until = ?2 WHERE id = ?1")?;
    for d in &rows {
        hold.execute(params![d.id, fmt_time(until)])?;
    }
    Ok(rows)
}

/// Records an attempt and moves the delivery on; false (and nothing written) when it was no
/// longer pending: another sender finished it first.
pub fn record(conn: &Connection, group: &Group, rec: &AttemptRecord) -> Result<bool, StoreError> {
    let (state, next) = match rec.outcome {
        AttemptOutcome::Delivered => (DeliveryState::Delivered, None),
        AttemptOutcome::Failed => (DeliveryState::Failed, None),
        AttemptOutcome::Retry => (
            DeliveryState::Pending,
            Some(fmt_time(rec.retry_at.unwrap_or(rec.at))),
        ),
    };
    let changed = conn
        .prepare_cached(
            "UPDATE deliveries SET state = ?2, attempts = attempts + 1, next_attempt_at = ?3,
                 claimed_until = NULL, last_error = ?4, message = coalesce(message, ?5),
                 updated_at = ?6
             WHERE id = ?1 AND state = 'pending'",
        )?
        .execute(params![
            rec.delivery,
            state.as_str(),
            next,
            rec.error,
            rec.message.as_ref().map(json_text),
            fmt_time(group.now),
        ])?;
    if changed == 0 {
        return Ok(false);
    }
    conn.prepare_cached(
        "INSERT INTO delivery_attempts (delivery, attempt, at, outcome, status, error)
         VALUES (?1, (SELECT attempts FROM deliveries WHERE id = ?1), ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        rec.delivery,
        fmt_time(rec.at),
        rec.outcome.as_str(),
        rec.status,
        rec.error,
    ])?;
    Ok(true)
}

/// Deliveries of one migration, or of all, oldest first.
pub fn list(conn: &Connection, id: Option<&MigrationId>) -> Result<Vec<Delivery>, StoreError> {
    let sql =
        format!("SELECT {COLUMNS} FROM deliveries WHERE ?1 IS NULL OR migration = ?1 ORDER BY id");
    let rows = conn
        .prepare_cached(&sql)?
        .query_map([id.map(MigrationId::as_str)], row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Pending deliveries (of one migration, or of all; emails only `with_email`): how many, and
/// the earliest time one of them is due.
pub fn pending(
    conn: &Connection,
    id: Option<&MigrationId>,
    with_email: bool,
) -> Result<(u64, Option<DateTime<Utc>>), StoreError> {
    conn.prepare_cached(
        "SELECT count(*), min(next_attempt_at) FROM deliveries
         WHERE state = 'pending' AND (?1 IS NULL OR migration = ?1) AND (?2 OR kind != 'email')",
    )?
    .query_row(params![id.map(MigrationId::as_str), with_email], |r| {
        Ok((r.get::<_, i64>(0)? as u64, opt_time_col(r, 1)?))
    })
    .map_err(StoreError::from)
}

/// Every attempt of a delivery, in order.
pub fn attempts(conn: &Connection, delivery: i64) -> Result<Vec<DeliveryAttempt>, StoreError> {
    let rows = conn
        .prepare_cached(
            "SELECT attempt, at, outcome, status, error FROM delivery_attempts
             WHERE delivery = ?1 ORDER BY attempt",
        )?
        .query_map([delivery], |r| {
            Ok(DeliveryAttempt {
                attempt: r.get(0)?,
                at: time_col(r, 1)?,
                outcome: name_col(r, 2)?,
                status: r.get(3)?,
                error: r.get(4)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// How many deliveries there are per (kind, state): the server's `/metrics`.
pub fn counts(conn: &Connection) -> Result<Vec<(String, String, i64)>, StoreError> {
    let rows = conn
        .prepare_cached("SELECT kind, state, COUNT(*) FROM deliveries GROUP BY kind, state ORDER BY kind, state")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}
