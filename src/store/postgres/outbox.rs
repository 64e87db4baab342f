//! Alert deliveries and their attempts (see the SQLite backend's `outbox`, SPEC §4).
//!
//! Every server runs a sender, and each due delivery must go to exactly one of them: a claim
//! locks the due rows it takes (`FOR UPDATE SKIP LOCKED`, so a second server's claim passes
//! over them instead of waiting) and sets their `claimed_until` before it commits, so a claim
//! that starts later no longer finds them due. A sender that dies mid-attempt lets its claim
//! lapse and another retries (at least once, not exactly once), as on SQLite.

use super::super::schema::{fmt_time, json_text};
use super::super::{
    AttemptOutcome, AttemptRecord, Delivery, DeliveryAttempt, DeliveryState, MigrationId,
    NewDelivery, StoreError,
};
use super::db::Db;
use super::rows;
use chrono::{DateTime, Utc};
use sqlx::Row as _;
use sqlx::postgres::PgRow;
use std::sync::Arc;

const COLUMNS: &str = "id, migration, event_seq, event, step, migration_state, channel, kind, \
     state, attempts, next_attempt_at, last_error, message, created_at, updated_at";

fn delivery(r: &PgRow) -> Result<Delivery, StoreError> {
    Ok(Delivery {
        id: r.try_get(0)?,
        migration: MigrationId::from(rows::text(r, 1)?),
        event_seq: r.try_get(2)?,
        event: rows::text(r, 3)?,
        step: rows::opt_text(r, 4)?,
        migration_state: rows::name(r, 5)?,
        channel: rows::text(r, 6)?,
        kind: rows::name(r, 7)?,
        state: rows::name(r, 8)?,
        attempts: rows::int(r, 9)?,
        next_attempt_at: rows::opt_time(r, 10)?,
        last_error: rows::opt_text(r, 11)?,
        message: rows::opt_json(r, 12)?,
        created_at: rows::time(r, 13)?,
        updated_at: rows::time(r, 14)?,
    })
}

/// Inserts the deliveries that events appended in this transaction cause (see the SQLite
/// backend's `outbox::insert`): `seqs` and `steps` are those events' seqs and steps. A
/// delivery already written for its (event, channel) is left as it is.
pub async fn insert(
    conn: &mut sqlx::PgConnection,
    now: DateTime<Utc>,
    id: &MigrationId,
    deliveries: &[NewDelivery],
    seqs: &[i64],
    steps: &[Option<String>],
) -> Result<(), StoreError> {
    let now = fmt_time(now);
    for new in deliveries {
        let (Some(seq), Some(step)) = (seqs.get(new.event), steps.get(new.event)) else {
            return Err(StoreError::Database(format!(
                "an alert delivery names event {} of a batch of {}",
                new.event,
                seqs.len()
            )));
        };
        sqlx::query(
            "INSERT INTO deliveries (migration, event_seq, event, step, migration_state,
                 channel, kind, state, next_attempt_at, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $8, $8)
             ON CONFLICT DO NOTHING",
        )
        .bind(id.as_str())
        .bind(seq)
        .bind(&new.alert)
        .bind(step)
        .bind(new.migration_state.as_str())
        .bind(&new.channel)
        .bind(new.kind.as_str())
        .bind(&now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Takes up to `limit` pending deliveries due at `now` that no live claim holds (emails only
/// `with_email`), and holds them until `until`; no other server's claim gets them.
pub async fn claim(
    db: Arc<Db>,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
    limit: u32,
    with_email: bool,
) -> Result<Vec<Delivery>, StoreError> {
    let mut tx = db.begin().await?;
    let sql = format!(
        "SELECT {COLUMNS} FROM deliveries
         WHERE state = 'pending' AND next_attempt_at <= $1
           AND (claimed_until IS NULL OR claimed_until <= $1)
           AND ($3 OR kind <> 'email')
         ORDER BY next_attempt_at, id LIMIT $2
         FOR UPDATE SKIP LOCKED"
    );
    let rows = sqlx::query(&sql)
        .bind(fmt_time(now))
        .bind(i64::from(limit))
        .bind(with_email)
        .fetch_all(&mut *tx.tx)
        .await?;
    let claimed = rows.iter().map(delivery).collect::<Result<Vec<_>, _>>()?;
    if claimed.is_empty() {
        // Nothing written: no commit, so an idle sender's polls do not wake every server's
        // change feed.
        return Ok(claimed);
    }
    let ids: Vec<i64> = claimed.iter().map(|d| d.id).collect();
    sqlx::query("UPDATE deliveries SET claimed_until = $2 WHERE id = ANY($1)")
        .bind(&ids)
        .bind(fmt_time(until))
        .execute(&mut *tx.tx)
        .await?;
    tx.commit(&db).await?;
    Ok(claimed)
}

/// Records an attempt and moves the delivery on; false (and nothing written) when it was no
/// longer pending: another sender finished it first.
pub async fn record(db: Arc<Db>, rec: AttemptRecord) -> Result<bool, StoreError> {
    let (state, next) = match rec.outcome {
        AttemptOutcome::Delivered => (DeliveryState::Delivered, None),
        AttemptOutcome::Failed => (DeliveryState::Failed, None),
        AttemptOutcome::Retry => (
            DeliveryState::Pending,
            Some(fmt_time(rec.retry_at.unwrap_or(rec.at))),
        ),
    };
    // A receiver's answer quoted in the error may hold a NUL byte, which TEXT cannot: the
    // record would fail and the delivery be sent again and again.
    let error = rec.error.as_deref().map(rows::storable);
    let mut tx = db.begin().await?;
    let attempt: Option<i64> = sqlx::query_scalar(
        "UPDATE deliveries SET state = $2, attempts = attempts + 1, next_attempt_at = $3,
             claimed_until = NULL, last_error = $4, message = coalesce(message, $5),
             updated_at = $6
         WHERE id = $1 AND state = 'pending'
         RETURNING attempts",
    )
    .bind(rec.delivery)
    .bind(state.as_str())
    .bind(next)
    .bind(error.as_deref())
    .bind(rec.message.as_ref().map(json_text))
    .bind(fmt_time(tx.now))
    .fetch_optional(&mut *tx.tx)
    .await?;
    let Some(attempt) = attempt else {
        return Ok(false);
    };
    sqlx::query(
        "INSERT INTO delivery_attempts (delivery, attempt, at, outcome, status, error)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(rec.delivery)
    .bind(attempt)
    .bind(fmt_time(rec.at))
    .bind(rec.outcome.as_str())
    .bind(rec.status)
    .bind(error.as_deref())
    .execute(&mut *tx.tx)
    .await?;
    tx.commit(&db).await?;
    Ok(true)
}

/// How many deliveries there are per (kind, state): the server's `/metrics`.
pub async fn counts(db: Arc<Db>) -> Result<Vec<(String, String, i64)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT kind, state, count(*) FROM deliveries GROUP BY kind, state ORDER BY kind, state",
    )
    .fetch_all(&db.pool)
    .await?)
}

/// Deliveries of one migration, or of all, oldest first.
pub async fn list(db: Arc<Db>, id: Option<MigrationId>) -> Result<Vec<Delivery>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM deliveries WHERE $1::text IS NULL OR migration = $1 ORDER BY id"
    );
    let rows = sqlx::query(&sql)
        .bind(id.as_ref().map(MigrationId::as_str))
        .fetch_all(&db.pool)
        .await?;
    rows.iter().map(delivery).collect()
}

/// Pending deliveries (of one migration, or of all; emails only `with_email`): how many, and
/// the earliest time one of them is due.
pub async fn pending(
    db: Arc<Db>,
    id: Option<MigrationId>,
    with_email: bool,
) -> Result<(u64, Option<DateTime<Utc>>), StoreError> {
    let r = sqlx::query(
        "SELECT count(*), min(next_attempt_at) FROM deliveries
         WHERE state = 'pending' AND ($1::text IS NULL OR migration = $1)
           AND ($2 OR kind <> 'email')",
    )
    .bind(id.as_ref().map(MigrationId::as_str))
    .bind(with_email)
    .fetch_one(&db.pool)
    .await?;
    Ok((rows::int(&r, 0)?, rows::opt_time(&r, 1)?))
}

/// Every attempt of a delivery, in order.
pub async fn attempts(db: Arc<Db>, delivery: i64) -> Result<Vec<DeliveryAttempt>, StoreError> {
    let found = sqlx::query(
        "SELECT attempt, at, outcome, status, error FROM delivery_attempts
         WHERE delivery = $1 ORDER BY attempt",
    )
    .bind(delivery)
    .fetch_all(&db.pool)
    .await?;
    found
        .iter()
        .map(|r| {
            Ok(DeliveryAttempt {
                attempt: rows::int(r, 0)?,
                at: rows::time(r, 1)?,
                outcome: rows::name(r, 2)?,
                status: r.try_get(3)?,
                error: rows::opt_text(r, 4)?,
            })
        })
        .collect()
}
