//! Writes of migrations: creating one, applying a batch (fence, state check, events with the
//! alert deliveries they cause, step rows, gates), and log lines. As the SQLite backend's
//! `write`, with one difference in how writes are ordered: there one writer thread does
//! them in turn; here each write to a migration locks its row first ([`begin_locked`]).

use super::super::route::{Lookup, Routes, parse, rules};
use super::super::schema::{fmt_time, json_text};
use super::super::{
    Batch, Committed, LeaseError, Migration, MigrationId, NewLogLine, NewMigration, StepRow,
    StoreError,
};
use super::db::{self, Db, Tx};
use super::rows::storable;
use crate::event::{EventKind, MigrationState, NewEvent, StepState};
use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use std::sync::Arc;

/// Inserts a migration in `created` with its `migration_created` event (seq 1) and a pending
/// row per plan step.
pub async fn create_migration(db: Arc<Db>, mut new: NewMigration) -> Result<Migration, StoreError> {
    let mut tx = db.begin().await?;
    let now = tx.now;
    let state = MigrationState::Created;
    // The unique id decides a race between two servers creating the same id: the second
    // insert waits for the first to commit, then inserts nothing.
    let inserted = sqlx::query(
        "INSERT INTO migrations (id, runbook, runbook_path, runbook_text, params, masked_params,
             digest, state, starter, created_at, updated_at, last_seq, runbook_files)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, 0, $11)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(new.id.as_str())
    .bind(&new.runbook)
    .bind(&new.runbook_path)
    .bind(storable(&new.runbook_text).as_ref())
    .bind(json_text(&new.params))
    .bind(json_text(&new.masked_params))
    .bind(&new.digest)
    .bind(state.as_str())
    .bind(&new.starter)
    .bind(fmt_time(now))
    .bind(serde_json::to_string(&new.runbook_files).unwrap_or_else(|_| "{}".into()))
    .execute(&mut *tx.tx)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Err(StoreError::Exists(new.id));
    }
    let event = NewEvent::new(
        EventKind::MigrationCreated,
        std::mem::take(&mut new.created_event_data),
    );
    let seqs = append_events(
        &mut tx,
        &db.routes,
        &new.id,
        (state, 0),
        std::slice::from_ref(&event),
    )
    .await?;
    let last_seq = seqs.last().copied().unwrap_or(0);
    set_migration(&mut tx, &new.id, state, last_seq).await?;
    for step in &new.steps {
        upsert_step(&mut tx.tx, &new.id, &StepRow::new(step, StepState::Pending)).await?;
    }
    tx.commit(&db).await?;
    Ok(new.stored(now, last_seq))
}

/// Applies one batch; refuses it whole when its lease is gone or the migration is no longer
/// in the expected state.
pub async fn apply_batch(
    db: Arc<Db>,
    id: MigrationId,
    batch: Batch,
) -> Result<Committed, StoreError> {
    let (mut tx, found, last_seq) = begin_locked(&db, &id).await?;
    if let Some(lease) = &batch.fence {
        super::lease::fence(&mut tx.tx, lease)
            .await
            .map_err(|e| match e {
                LeaseError::Store(e) => e,
                lost => StoreError::Fenced(lost.to_string()),
            })?;
    }
    if let Some(expected) = batch.expect_state
        && expected != found
    {
        return Err(StoreError::StateChanged { expected, found });
    }
    let seqs = append_events(&mut tx, &db.routes, &id, (found, last_seq), &batch.events).await?;
    for row in &batch.steps {
        upsert_step(&mut tx.tx, &id, row).await?;
    }
    for open in &batch.gates {
        super::gate::open(&mut tx.tx, tx.now, &id, open).await?;
    }
    let state = batch.state.unwrap_or(found);
    let newest = seqs.last().copied().unwrap_or(last_seq);
    set_migration(&mut tx, &id, state, newest).await?;
    let at = tx.now;
    tx.commit(&db).await?;
    Ok(Committed { seqs, at })
}

/// Begins a write to one migration: locks its row ([`head`]), and reads the clock again
/// once the lock is held, so a write that waited for another is stamped after it (the
/// times of one migration's events never go back, as with SQLite's one writer). Returns
/// the migration's state and newest seq, or NotFound.
pub async fn begin_locked(
    db: &Db,
    id: &MigrationId,
) -> Result<(Tx, MigrationState, i64), StoreError> {
    // The clock is read once, after the lock: a read before it would be thrown away.
    let mut tx = db.pool.begin().await?;
    let (state, last_seq) = head(&mut tx, id).await?;
    let now = db::now(&mut tx).await?;
    Ok((Tx { tx, now }, state, last_seq))
}

/// A migration's state and newest seq, or NotFound; locks its row until the transaction
/// ends, so every write to one migration (a batch, a gate vote, a lease taken over) waits
/// for the one before it: what makes a batch's fence check and a takeover never interleave.
pub async fn head(
    conn: &mut sqlx::PgConnection,
    id: &MigrationId,
) -> Result<(crate::event::MigrationState, i64), StoreError> {
    let row: Option<(String, i64)> =
        sqlx::query_as("SELECT state, last_seq FROM migrations WHERE id = $1 FOR NO KEY UPDATE")
            .bind(id.as_str())
            .fetch_optional(conn)
            .await?;
    let (state, last_seq) = row.ok_or_else(|| StoreError::NotFound(id.to_string()))?;
    let state = state
        .parse()
        .map_err(|e| StoreError::Corrupt(format!("migration {id} has state `{state}`: {e}")))?;
    Ok((state, last_seq))
}

/// Appends events after the migration's `head` (its state and newest seq before them),
/// stamped with the transaction's time, with the alert deliveries they cause (the rule is
/// `super::super::route`'s, shared with SQLite); returns their seqs. Every event this
/// backend stores goes through here, so none goes unrouted.
pub async fn append_events(
    tx: &mut Tx,
    routes: &Routes,
    id: &MigrationId,
    head: (MigrationState, i64),
    events: &[NewEvent],
) -> Result<Vec<i64>, StoreError> {
    let (state, last_seq) = head;
    let at = fmt_time(tx.now);
    let mut seqs = Vec::with_capacity(events.len());
    for (seq, event) in (last_seq + 1..).zip(events) {
        sqlx::query(
            "INSERT INTO events (migration, seq, at, kind, step, data)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id.as_str())
        .bind(seq)
        .bind(&at)
        .bind(event.kind.as_str())
        .bind(event.step.as_deref())
        .bind(json_text(&event.data))
        .execute(&mut *tx.tx)
        .await?;
        seqs.push(seq);
    }
    let alerts = match routes.lookup(id, events) {
        Lookup::Known(alerts) => alerts,
        Lookup::Silent => return Ok(seqs),
        Lookup::Load => routes.learn(id, load_alerts(&mut tx.tx, id).await?),
    };
    let deliveries = rules::route(&alerts, state, events);
    if !deliveries.is_empty() {
        let steps: Vec<_> = events.iter().map(|e| e.step.clone()).collect();
        super::outbox::insert(&mut tx.tx, tx.now, id, &deliveries, &seqs, &steps).await?;
    }
    Ok(seqs)
}

/// Appends one event (a gate vote, a gate closed by a timeout) and records it as the
/// migration's newest, its state unchanged; returns its seq.
pub async fn append_one(
    tx: &mut Tx,
    routes: &Routes,
    id: &MigrationId,
    head: (MigrationState, i64),
    event: &NewEvent,
) -> Result<i64, StoreError> {
    let seqs = append_events(tx, routes, id, head, std::slice::from_ref(event)).await?;
    let newest = seqs.last().copied().unwrap_or(head.1);
    set_migration(tx, id, head.0, newest).await?;
    Ok(newest)
}

/// The alert rules of a migration's runbook, from the text it was created with.
async fn load_alerts(
    conn: &mut PgConnection,
    id: &MigrationId,
) -> Result<crate::runbook::model::Alerts, StoreError> {
    let source: Option<(String, String, String)> = sqlx::query_as(
        "SELECT runbook_path, runbook_text, runbook_files FROM migrations WHERE id = $1",
    )
    .bind(id.as_str())
    .fetch_optional(conn)
    .await?;
    let (path, text, files) = source.ok_or_else(|| StoreError::NotFound(id.to_string()))?;
    Ok(parse(&path, &text, &files))
}

/// Records a migration's new state and newest seq.
pub async fn set_migration(
    tx: &mut Tx,
    id: &MigrationId,
    state: MigrationState,
    last_seq: i64,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE migrations SET state = $2, last_seq = $3, updated_at = $4 WHERE id = $1")
        .bind(id.as_str())
        .bind(state.as_str())
        .bind(last_seq)
        .bind(fmt_time(tx.now))
        .execute(&mut *tx.tx)
        .await?;
    Ok(())
}

/// Inserts or replaces a step row, keeping its place in the insertion order (`n` is given
/// once, by the insert).
async fn upsert_step(
    conn: &mut PgConnection,
    id: &MigrationId,
    row: &StepRow,
) -> Result<(), StoreError> {
    let time = |t: Option<DateTime<Utc>>| t.map(fmt_time);
    sqlx::query(
        "INSERT INTO steps (migration, step, state, attempts, started_at, finished_at, exit_code,
             outputs, error, reason, kept, progress_done, progress_total, progress_at,
             checkpoint, checkpoint_attempt, checkpoint_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
         ON CONFLICT (migration, step) DO UPDATE SET
             state = EXCLUDED.state, attempts = EXCLUDED.attempts,
             started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at,
             exit_code = EXCLUDED.exit_code, outputs = EXCLUDED.outputs,
             error = EXCLUDED.error, reason = EXCLUDED.reason, kept = EXCLUDED.kept,
             progress_done = EXCLUDED.progress_done, progress_total = EXCLUDED.progress_total,
             progress_at = EXCLUDED.progress_at, checkpoint = EXCLUDED.checkpoint,
             checkpoint_attempt = EXCLUDED.checkpoint_attempt,
             checkpoint_at = EXCLUDED.checkpoint_at",
    )
    .bind(id.as_str())
    .bind(&row.step)
    .bind(row.state.as_str())
    .bind(i64::from(row.attempts))
    .bind(time(row.started_at))
    .bind(time(row.finished_at))
    .bind(row.exit_code.map(i64::from))
    .bind(row.outputs.as_ref().map(json_text))
    .bind(row.error.as_deref().map(storable))
    .bind(row.reason.as_deref().map(storable))
    .bind(row.kept)
    // `Progress` keeps both within i64 (`Progress::parse`).
    .bind(row.progress.map(|p| p.progress.done as i64))
    .bind(row.progress.map(|p| p.progress.total as i64))
    .bind(time(row.progress.map(|p| p.at)))
    .bind(row.checkpoint.as_ref().map(|c| storable(&c.value)))
    .bind(row.checkpoint.as_ref().map(|c| i64::from(c.attempt)))
    .bind(time(row.checkpoint.as_ref().map(|c| c.at)))
    .execute(conn)
    .await?;
    Ok(())
}

/// Stores one line of output (written by the queue, in order); with a `fence` (a driver's
/// lease token), only while the migration's lease is still that token's.
pub async fn insert_log(
    conn: &mut PgConnection,
    id: &MigrationId,
    line: &NewLogLine,
    fence: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO logs (migration, step, attempt, stream, at, text)
         SELECT $1, $2, $3, $4, $5, $6
          WHERE $7::text IS NULL
             OR EXISTS (SELECT 1 FROM leases WHERE migration = $1 AND token = $7)",
    )
    .bind(id.as_str())
    .bind(&line.step)
    .bind(i64::from(line.attempt))
    .bind(line.stream.as_str())
    .bind(fmt_time(line.at))
    .bind(storable(&line.text).as_ref())
    .bind(fence)
    .execute(conn)
    .await?;
    Ok(())
}
