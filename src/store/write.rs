//! The writes the writer thread runs for migrations: creating one, applying a [`Batch`]
//! (state check, events and the alert deliveries they cause, step rows, gates) and storing log lines. Each function runs inside
//! the job's savepoint, so an error leaves nothing behind.

use super::StoreError;
use super::gate;
use super::schema::{fmt_time, json_text};
use super::types::{Batch, Committed, Migration, NewLogLine, NewMigration, StepRow};
use super::writer::Group;
use crate::event::{EventKind, MigrationId, MigrationState, NewEvent, StepState};
use rusqlite::{Connection, OptionalExtension, params};

/// Inserts a migration in `created` with its `migration_created` event (seq 1) and a pending
/// row per plan step.
pub fn create_migration(
    conn: &Connection,
    group: &Group,
    mut new: NewMigration,
) -> Result<Migration, StoreError> {
    let exists: Option<i64> = conn
        .prepare_cached("SELECT 1 FROM migrations WHERE id = ?1")?
        .query_row([new.id.as_str()], |r| r.get(0))
        .optional()?;
    if exists.is_some() {
        return Err(StoreError::Exists(new.id));
    }
    // Created when it is stored: the one clock of every stamp the store writes (updated_at,
    // events), also while a rehearsal shifts the engine's clock (`SENSEI_NOW`).
    let created_at = group.now;
    let state = MigrationState::Created;
    conn.prepare_cached(
        "INSERT INTO migrations (id, runbook, runbook_path, runbook_text, params, masked_params,
             digest, state, starter, created_at, updated_at, last_seq, runbook_files)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 0, ?12)",
    )?
    .execute(params![
        new.id.as_str(),
        new.runbook,
        new.runbook_path,
        new.runbook_text,
        json_text(&new.params),
        json_text(&new.masked_params),
        new.digest,
        state.as_str(),
        new.starter,
        fmt_time(created_at),
        fmt_time(group.now),
        serde_json::to_string(&new.runbook_files).unwrap_or_else(|_| "{}".into()),
    ])?;
    let event = NewEvent::new(
        EventKind::MigrationCreated,
        std::mem::take(&mut new.created_event_data),
    );
    let seqs = append_events(
        conn,
        group,
        &new.id,
        (state, 0),
        std::slice::from_ref(&event),
    )?;
    let last_seq = seqs.last().copied().unwrap_or(0);
    set_migration(conn, &new.id, state, last_seq, group)?;
    for step in &new.steps {
        upsert_step(conn, &new.id, &StepRow::new(step, StepState::Pending))?;
    }
    Ok(new.stored(created_at, last_seq))
}

/// Applies one batch; refuses it whole when the migration is no longer in the expected state.
pub fn apply_batch(
    conn: &Connection,
    group: &Group,
    id: &MigrationId,
    batch: Batch,
) -> Result<Committed, StoreError> {
    let (found, last_seq) = head(conn, id)?;
    if let Some(lease) = &batch.fence {
        super::lease::fence(conn, lease).map_err(|e| match e {
            super::LeaseError::Store(e) => e,
            lost => StoreError::Fenced(lost.to_string()),
        })?;
    }
    if let Some(expected) = batch.expect_state
        && expected != found
    {
        return Err(StoreError::StateChanged { expected, found });
    }
    let seqs = append_events(conn, group, id, (found, last_seq), &batch.events)?;
    for row in &batch.steps {
        upsert_step(conn, id, row)?;
    }
    for open in &batch.gates {
        gate::open(conn, group, id, open)?;
    }
    let state = batch.state.unwrap_or(found);
    set_migration(
        conn,
        id,
        state,
        seqs.last().copied().unwrap_or(last_seq),
        group,
    )?;
    Ok(Committed {
        seqs,
        at: group.now,
    })
}

/// A migration's state and newest seq, or NotFound.
pub fn head(conn: &Connection, id: &MigrationId) -> Result<(MigrationState, i64), StoreError> {
    conn.prepare_cached("SELECT state, last_seq FROM migrations WHERE id = ?1")?
        .query_row([id.as_str()], |r| {
            Ok((super::schema::name_col(r, 0)?, r.get(1)?))
        })
        .optional()?
        .ok_or_else(|| StoreError::NotFound(id.to_string()))
}

/// Appends events after the migration's `head` (its state and newest seq before them), stamped
/// with the group's time, with the alert deliveries they cause (`super::route`: the one path
/// every event takes into the store, so none goes unrouted); returns their seqs.
pub fn append_events(
    conn: &Connection,
    group: &Group,
    id: &MigrationId,
    head: (MigrationState, i64),
    events: &[NewEvent],
) -> Result<Vec<i64>, StoreError> {
    let (state, last_seq) = head;
    let mut insert = conn.prepare_cached(
        "INSERT INTO events (migration, seq, at, kind, step, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    let at = fmt_time(group.now);
    let mut seqs = Vec::with_capacity(events.len());
    for (seq, event) in (last_seq + 1..).zip(events) {
        insert.execute(params![
            id.as_str(),
            seq,
            at,
            event.kind.as_str(),
            event.step,
            json_text(&event.data),
        ])?;
        seqs.push(seq);
    }
    let deliveries = group.routes.deliveries(conn, id, state, events)?;
    if !deliveries.is_empty() {
        let steps: Vec<_> = events.iter().map(|e| e.step.clone()).collect();
        super::outbox::insert(conn, group, id, &deliveries, &seqs, &steps)?;
    }
    Ok(seqs)
}

/// Records a migration's new state and newest seq.
pub fn set_migration(
    conn: &Connection,
    id: &MigrationId,
    state: MigrationState,
    last_seq: i64,
    group: &Group,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE migrations SET state = ?2, last_seq = ?3, updated_at = ?4 WHERE id = ?1",
    )?
    .execute(params![
        id.as_str(),
        state.as_str(),
        last_seq,
        fmt_time(group.now)
    ])?;
    Ok(())
}

/// Inserts or replaces a step row, keeping its place in the insertion order.
fn upsert_step(conn: &Connection, id: &MigrationId, row: &StepRow) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO steps (migration, step, state, attempts, started_at, finished_at, exit_code,
             outputs, error, reason, kept, progress_done, progress_total, progress_at,
             checkpoint, checkpoint_attempt, checkpoint_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)
         ON CONFLICT (migration, step) DO UPDATE SET
             state = excluded.state, attempts = excluded.attempts,
             started_at = excluded.started_at, finished_at = excluded.finished_at,
             exit_code = excluded.exit_code, outputs = excluded.outputs,
             error = excluded.error, reason = excluded.reason, kept = excluded.kept,
             progress_done = excluded.progress_done, progress_total = excluded.progress_total,
             progress_at = excluded.progress_at, checkpoint = excluded.checkpoint,
             checkpoint_attempt = excluded.checkpoint_attempt,
             checkpoint_at = excluded.checkpoint_at",
    )?
    .execute(params![
        id.as_str(),
        row.step,
        row.state.as_str(),
        row.attempts,
        row.started_at.map(fmt_time),
        row.finished_at.map(fmt_time),
        row.exit_code,
        row.outputs.as_ref().map(json_text),
        row.error,
        row.reason,
        row.kept,
        // `Progress` keeps both within i64 (`Progress::parse`).
        row.progress.map(|p| p.progress.done as i64),
        row.progress.map(|p| p.progress.total as i64),
        row.progress.map(|p| fmt_time(p.at)),
        row.checkpoint.as_ref().map(|c| c.value.as_str()),
        row.checkpoint.as_ref().map(|c| c.attempt),
        row.checkpoint.as_ref().map(|c| fmt_time(c.at)),
    ])?;
    Ok(())
}

/// Stores one line of output; with a `fence` (a driver's lease token), only while the
/// migration's lease is still that token's.
pub fn insert_log(
    conn: &Connection,
    id: &MigrationId,
    line: &NewLogLine,
    fence: Option<&str>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO logs (migration, step, attempt, stream, at, text)
         SELECT ?1, ?2, ?3, ?4, ?5, ?6
          WHERE ?7 IS NULL
             OR EXISTS (SELECT 1 FROM leases WHERE migration = ?1 AND token = ?7)",
    )?
    .execute(params![
        id.as_str(),
        line.step,
        line.attempt,
        line.stream.as_str(),
        fmt_time(line.at),
        line.text,
        fence,
    ])?;
    Ok(())
}
