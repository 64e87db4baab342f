//! Reads of migrations, steps, events and logs, each one statement on the pool (a read holds
//! no lock). As the SQLite backend's `read`, with its shared pieces (the ambiguity refusal,
//! how step columns become progress and checkpoints).

use super::super::read::{AMBIGUOUS_SHOWN, ambiguous, checkpoint, progress};
use super::super::schema::parse_time;
use super::super::{
    Event, LogLine, Migration, MigrationHead, MigrationId, MigrationState, StepRow, StoreError,
};
use super::db::Db;
use super::rows as col;
use sqlx::postgres::PgRow;
use std::sync::Arc;

const MIGRATION_COLUMNS: &str = "id, runbook, runbook_path, runbook_text, params, masked_params, \
     digest, state, starter, created_at, updated_at, last_seq, runbook_files";

fn migration_row(r: &PgRow) -> Result<Migration, StoreError> {
    Ok(Migration {
        id: MigrationId::from(col::text(r, 0)?),
        runbook: col::text(r, 1)?,
        runbook_path: col::text(r, 2)?,
        runbook_text: col::text(r, 3)?,
        params: col::json(r, 4)?,
        masked_params: col::json(r, 5)?,
        digest: col::text(r, 6)?,
        state: col::name(r, 7)?,
        starter: col::text(r, 8)?,
        created_at: col::time(r, 9)?,
        updated_at: col::time(r, 10)?,
        last_seq: col::int(r, 11)?,
        runbook_files: serde_json::from_value(col::json(r, 12)?).unwrap_or_default(),
    })
}

pub async fn migration(db: Arc<Db>, id: MigrationId) -> Result<Option<Migration>, StoreError> {
    let sql = format!("SELECT {MIGRATION_COLUMNS} FROM migrations WHERE id = $1");
    let row = sqlx::query(&sql)
        .bind(id.as_str())
        .fetch_optional(&db.pool)
        .await?;
    row.as_ref().map(migration_row).transpose()
}

/// An exact id, or the one id starting with `prefix`.
pub async fn resolve_id(db: Arc<Db>, prefix: String) -> Result<MigrationId, StoreError> {
    if prefix.is_empty() {
        return Err(StoreError::NotFound(String::new()));
    }
    let exact: Option<String> = sqlx::query_scalar("SELECT id FROM migrations WHERE id = $1")
        .bind(&prefix)
        .fetch_optional(&db.pool)
        .await?;
    if let Some(id) = exact {
        return Ok(MigrationId::from(id));
    }
    // `starts_with` rather than LIKE, whose `_` and `%` are wildcards, or a range, which
    // the database's collation may order otherwise than bytes; the candidates are named in
    // byte order, as SQLite names them.
    let mut matches: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM migrations WHERE starts_with(id, $1) ORDER BY id COLLATE \"C\" LIMIT $2",
    )
    .bind(&prefix)
    .bind(AMBIGUOUS_SHOWN + 1)
    .fetch_all(&db.pool)
    .await?;
    match matches.len() {
        0 => Err(StoreError::NotFound(prefix)),
        1 => Ok(MigrationId::from(matches.remove(0))),
        shown => {
            let total = if shown as i64 <= AMBIGUOUS_SHOWN {
                shown
            } else {
                let n: i64 =
                    sqlx::query_scalar("SELECT count(*) FROM migrations WHERE starts_with(id, $1)")
                        .bind(&prefix)
                        .fetch_one(&db.pool)
                        .await?;
                n as usize
            };
            Err(ambiguous(&prefix, matches, total))
        }
    }
}

/// The most recently created migration.
pub async fn latest(db: Arc<Db>) -> Result<Option<MigrationId>, StoreError> {
    let id: Option<String> =
        sqlx::query_scalar("SELECT id FROM migrations ORDER BY n DESC LIMIT 1")
            .fetch_optional(&db.pool)
            .await?;
    Ok(id.map(MigrationId::from))
}

/// Newest first; only those in `state` when given.
pub async fn list(
    db: Arc<Db>,
    state: Option<MigrationState>,
) -> Result<Vec<MigrationHead>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, runbook, state, starter, created_at, updated_at FROM migrations
         WHERE $1::text IS NULL OR state = $1 ORDER BY n DESC",
    )
    .bind(state.map(|s| s.as_str()))
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(MigrationHead {
                id: MigrationId::from(col::text(r, 0)?),
                runbook: col::text(r, 1)?,
                state: col::name(r, 2)?,
                starter: col::text(r, 3)?,
                created_at: col::time(r, 4)?,
                updated_at: col::time(r, 5)?,
            })
        })
        .collect()
}

/// How many migrations are in each state (states with none are left out).
pub async fn count_by_state(db: Arc<Db>) -> Result<Vec<(MigrationState, u64)>, StoreError> {
    let rows = sqlx::query("SELECT state, count(*) FROM migrations GROUP BY state")
        .fetch_all(&db.pool)
        .await?;
    rows.iter()
        .map(|r| Ok((col::name(r, 0)?, col::int::<i64>(r, 1)?.max(0) as u64)))
        .collect()
}

/// Seconds each finished attempt of a step took (the last attempt of every step with both
/// times), and each closed gate waited for its decision: for metrics histograms. A time
/// that does not read is left out, as SQLite's `julianday` leaves it out.
pub async fn durations(db: Arc<Db>) -> Result<(Vec<f64>, Vec<f64>), StoreError> {
    let seconds = |pairs: Vec<(String, String)>| -> Vec<f64> {
        pairs
            .iter()
            .filter_map(|(from, to)| {
                let took = parse_time(to).ok()? - parse_time(from).ok()?;
                Some(took.num_milliseconds() as f64 / 1000.0)
            })
            .collect()
    };
    let steps: Vec<(String, String)> = sqlx::query_as(
        "SELECT started_at, finished_at FROM steps
         WHERE started_at IS NOT NULL AND finished_at IS NOT NULL",
    )
    .fetch_all(&db.pool)
    .await?;
    let gates: Vec<(String, String)> =
        sqlx::query_as("SELECT opened_at, closed_at FROM gates WHERE closed_at IS NOT NULL")
            .fetch_all(&db.pool)
            .await?;
    Ok((seconds(steps), seconds(gates)))
}

/// Step rows in the order they were first written.
pub async fn steps(db: Arc<Db>, id: MigrationId) -> Result<Vec<StepRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT step, state, attempts, started_at, finished_at, exit_code, outputs, error, reason,
                kept, progress_done, progress_total, progress_at,
                checkpoint, checkpoint_attempt, checkpoint_at
         FROM steps WHERE migration = $1 ORDER BY n",
    )
    .bind(id.as_str())
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(StepRow {
                step: col::text(r, 0)?,
                state: col::name(r, 1)?,
                attempts: col::int(r, 2)?,
                started_at: col::opt_time(r, 3)?,
                finished_at: col::opt_time(r, 4)?,
                exit_code: col::opt_int(r, 5)?,
                outputs: col::opt_json(r, 6)?,
                error: col::opt_text(r, 7)?,
                reason: col::opt_text(r, 8)?,
                kept: col::flag(r, 9)?,
                progress: progress(
                    col::opt_int(r, 10)?,
                    col::opt_int(r, 11)?,
                    col::opt_time(r, 12)?,
                ),
                checkpoint: checkpoint(
                    col::opt_text(r, 13)?,
                    col::opt_int(r, 14)?,
                    col::opt_time(r, 15)?,
                ),
            })
        })
        .collect()
}

/// How long the last `limit` successful runs of a runbook step took, newest first: the
/// engine's estimate for a window-bound step that declares none.
pub async fn step_durations(
    db: Arc<Db>,
    runbook: String,
    step: String,
    limit: u32,
) -> Result<Vec<chrono::Duration>, StoreError> {
    let rows = sqlx::query(
        "SELECT s.started_at, s.finished_at FROM steps s JOIN migrations m ON m.id = s.migration
         WHERE m.runbook = $1 AND s.step = $2 AND s.state = 'succeeded'
           AND s.started_at IS NOT NULL AND s.finished_at IS NOT NULL
         ORDER BY s.n DESC LIMIT $3",
    )
    .bind(&runbook)
    .bind(&step)
    .bind(i64::from(limit))
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| Ok(col::time(r, 1)? - col::time(r, 0)?))
        .collect()
}

/// How long each step that succeeded by running took, in the last `migrations` migrations
/// of a runbook other than `except` (newest first): what an ETA goes by.
pub async fn step_history(
    db: Arc<Db>,
    runbook: String,
    except: MigrationId,
    migrations: u32,
) -> Result<Vec<(String, chrono::Duration)>, StoreError> {
    let rows = sqlx::query(
        "SELECT s.step, s.started_at, s.finished_at FROM steps s
         WHERE s.migration IN (SELECT id FROM migrations WHERE runbook = $1 AND id <> $2
                               ORDER BY n DESC LIMIT $3)
           AND s.state = 'succeeded' AND NOT s.kept
           AND s.started_at IS NOT NULL AND s.finished_at IS NOT NULL",
    )
    .bind(&runbook)
    .bind(except.as_str())
    .bind(i64::from(migrations))
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| Ok((col::text(r, 0)?, col::time(r, 2)? - col::time(r, 1)?)))
        .collect()
}

/// Events with a seq above `after_seq`, in order.
pub async fn events(
    db: Arc<Db>,
    id: MigrationId,
    after_seq: i64,
) -> Result<Vec<Event>, StoreError> {
    events_between(&db, &id, after_seq, i64::MAX).await
}

/// One event, by its seq.
pub async fn event(db: Arc<Db>, id: MigrationId, seq: i64) -> Result<Option<Event>, StoreError> {
    Ok(events_between(&db, &id, seq - 1, seq).await?.pop())
}

/// Events with `after < seq <= upto`, in order.
async fn events_between(
    db: &Db,
    id: &MigrationId,
    after: i64,
    upto: i64,
) -> Result<Vec<Event>, StoreError> {
    let rows = sqlx::query(
        "SELECT seq, at, kind, step, data FROM events
         WHERE migration = $1 AND seq > $2 AND seq <= $3 ORDER BY seq",
    )
    .bind(id.as_str())
    .bind(after)
    .bind(upto)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Event {
                seq: col::int(r, 0)?,
                migration: id.clone(),
                at: col::time(r, 1)?,
                kind: col::name(r, 2)?,
                step: col::opt_text(r, 3)?,
                data: col::json(r, 4)?,
            })
        })
        .collect()
}

/// Log lines with a seq above `after`, in the order they were written, of one step or of all.
pub async fn logs(
    db: Arc<Db>,
    id: MigrationId,
    step: Option<String>,
    after: i64,
) -> Result<Vec<LogLine>, StoreError> {
    // Two statements, so that each uses its index.
    let query = match &step {
        Some(step) => sqlx::query(
            "SELECT seq, step, attempt, stream, at, text FROM logs
             WHERE migration = $1 AND step = $2 AND seq > $3 ORDER BY seq",
        )
        .bind(id.as_str())
        .bind(step),
        None => sqlx::query(
            "SELECT seq, step, attempt, stream, at, text FROM logs
             WHERE migration = $1 AND seq > $2 ORDER BY seq",
        )
        .bind(id.as_str()),
    };
    let rows = query.bind(after).fetch_all(&db.pool).await?;
    rows.iter()
        .map(|r| {
            Ok(LogLine {
                seq: col::int(r, 0)?,
                step: col::text(r, 1)?,
                attempt: col::int(r, 2)?,
                stream: col::name(r, 3)?,
                at: col::time(r, 4)?,
                text: col::text(r, 5)?,
            })
        })
        .collect()
}
