//! Reads, on the reader connection: migrations, id prefixes, step rows, events and logs.
//! Nothing here writes; WAL lets these run while the writer commits.

use super::StoreError;
use super::schema::{json_col, name_col, opt_json_col, opt_time_col, time_col};
use super::types::{LogLine, Migration, MigrationHead, Reported, StepRow};
use crate::event::{Checkpoint, Event, MigrationId, MigrationState, Progress};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};

/// How many candidates an ambiguous prefix names.
pub const AMBIGUOUS_SHOWN: i64 = 5;

const MIGRATION_COLUMNS: &str = "id, runbook, runbook_path, runbook_text, params, masked_params, \
     digest, state, starter, created_at, updated_at, last_seq, runbook_files";

fn migration_row(r: &Row<'_>) -> rusqlite::Result<Migration> {
    Ok(Migration {
        id: MigrationId::from(r.get::<_, String>(0)?),
        runbook: r.get(1)?,
        runbook_path: r.get(2)?,
        runbook_text: r.get(3)?,
        params: json_col(r, 4)?,
        masked_params: json_col(r, 5)?,
        digest: r.get(6)?,
        state: name_col(r, 7)?,
        starter: r.get(8)?,
        created_at: time_col(r, 9)?,
        updated_at: time_col(r, 10)?,
        last_seq: r.get(11)?,
        runbook_files: serde_json::from_value(json_col(r, 12)?).unwrap_or_default(),
    })
}

pub fn migration(conn: &Connection, id: &MigrationId) -> Result<Option<Migration>, StoreError> {
    let sql = format!("SELECT {MIGRATION_COLUMNS} FROM migrations WHERE id = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([id.as_str()], migration_row)
        .optional()?)
}

/// Newest first; only those in `state` when given.
pub fn list(
    conn: &Connection,
    state: Option<MigrationState>,
) -> Result<Vec<MigrationHead>, StoreError> {
    let head = |r: &Row<'_>| {
        Ok(MigrationHead {
            id: MigrationId::from(r.get::<_, String>(0)?),
            runbook: r.get(1)?,
            state: name_col(r, 2)?,
            starter: r.get(3)?,
            created_at: time_col(r, 4)?,
            updated_at: time_col(r, 5)?,
        })
    };
    let rows = conn
        .prepare_cached(
            "SELECT id, runbook, state, starter, created_at, updated_at FROM migrations
             WHERE ?1 IS NULL OR state = ?1 ORDER BY n DESC",
        )?
        .query_map([state.map(|s| s.as_str())], head)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// The most recently created migration.
pub fn latest(conn: &Connection) -> Result<Option<MigrationId>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT id FROM migrations ORDER BY n DESC LIMIT 1")?
        .query_row([], |r| r.get::<_, String>(0))
        .optional()?
        .map(MigrationId::from))
}

/// An exact id, or the one id starting with `prefix`.
pub fn resolve_id(conn: &Connection, prefix: &str) -> Result<MigrationId, StoreError> {
    if prefix.is_empty() {
        return Err(StoreError::NotFound(String::new()));
    }
    let exact: Option<String> = conn
        .prepare_cached("SELECT id FROM migrations WHERE id = ?1")?
        .query_row([prefix], |r| r.get(0))
        .optional()?;
    if let Some(id) = exact {
        return Ok(MigrationId::from(id));
    }
    // A range scan on the unique index rather than LIKE, whose `_` and `%` are wildcards.
    // Ids are ASCII, so the successor of the prefix's last byte bounds the range.
    let upper = format!("{prefix}\u{10FFFF}");
    let mut matches = conn
        .prepare_cached(
            "SELECT id FROM migrations WHERE id >= ?1 AND id < ?2 ORDER BY id LIMIT ?3",
        )?
        .query_map(params![prefix, upper, AMBIGUOUS_SHOWN + 1], |r| {
            r.get::<_, String>(0)
        })?
        .collect::<Result<Vec<_>, _>>()?;
    match matches.len() {
        0 => Err(StoreError::NotFound(prefix.to_owned())),
        1 => Ok(MigrationId::from(matches.remove(0))),
        shown => {
            let total = if shown as i64 <= AMBIGUOUS_SHOWN {
                shown
            } else {
                let n: i64 = conn
                    .prepare_cached("SELECT count(*) FROM migrations WHERE id >= ?1 AND id < ?2")?
                    .query_row(params![prefix, upper], |r| r.get(0))?;
                n as usize
            };
            Err(ambiguous(prefix, matches, total))
        }
    }
}

/// The refusal of a prefix that `total` ids start with; `matches` are the first of them in
/// id order, [`AMBIGUOUS_SHOWN`] or more (both backends).
pub fn ambiguous(prefix: &str, mut matches: Vec<String>, total: usize) -> StoreError {
    matches.truncate(AMBIGUOUS_SHOWN as usize);
    StoreError::Ambiguous {
        prefix: prefix.to_owned(),
        total,
        matches: matches.into_iter().map(MigrationId::from).collect(),
    }
}

/// Step rows in the order they were first written.
pub fn steps(conn: &Connection, id: &MigrationId) -> Result<Vec<StepRow>, StoreError> {
    let rows = conn
        .prepare_cached(
            "SELECT step, state, attempts, started_at, finished_at, exit_code, outputs, error, reason,
                    kept, progress_done, progress_total, progress_at,
                    checkpoint, checkpoint_attempt, checkpoint_at
             FROM steps WHERE migration = ?1 ORDER BY n",
        )?
        .query_map([id.as_str()], |r| {
            Ok(StepRow {
                step: r.get(0)?,
                state: name_col(r, 1)?,
                attempts: r.get(2)?,
                started_at: opt_time_col(r, 3)?,
                finished_at: opt_time_col(r, 4)?,
                exit_code: r.get(5)?,
                outputs: opt_json_col(r, 6)?,
                error: r.get(7)?,
                reason: r.get(8)?,
                kept: r.get(9)?,
                progress: progress_cols(r, 10)?,
                checkpoint: checkpoint_cols(r, 13)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// The progress kept in columns `idx..idx + 3` (done, total, at), if any.
fn progress_cols(r: &Row<'_>, idx: usize) -> rusqlite::Result<Option<Reported>> {
    Ok(progress(
        r.get(idx)?,
        r.get(idx + 1)?,
        opt_time_col(r, idx + 2)?,
    ))
}

/// A step row's progress columns (done, total, at) as read (both backends): all or nothing.
pub fn progress(
    done: Option<i64>,
    total: Option<i64>,
    at: Option<DateTime<Utc>>,
) -> Option<Reported> {
    match (done, total, at) {
        (Some(done), Some(total), Some(at)) => Some(Reported {
            progress: Progress {
                done: done.max(0) as u64,
                total: total.max(0) as u64,
            },
            at,
        }),
        _ => None,
    }
}

/// The checkpoint kept in columns `idx..idx + 3` (value, attempt, at), if any.
fn checkpoint_cols(r: &Row<'_>, idx: usize) -> rusqlite::Result<Option<Checkpoint>> {
    Ok(checkpoint(
        r.get(idx)?,
        r.get(idx + 1)?,
        opt_time_col(r, idx + 2)?,
    ))
}

/// A step row's checkpoint columns (value, attempt, at) as read (both backends).
pub fn checkpoint(
    value: Option<String>,
    attempt: Option<u32>,
    at: Option<DateTime<Utc>>,
) -> Option<Checkpoint> {
    match (value, attempt, at) {
        (Some(value), Some(attempt), Some(at)) => Some(Checkpoint { value, attempt, at }),
        _ => None,
    }
}

/// Events with a seq above `after_seq`, in order.
pub fn events(
    conn: &Connection,
    id: &MigrationId,
    after_seq: i64,
) -> Result<Vec<Event>, StoreError> {
    events_between(conn, id, after_seq, i64::MAX)
}

/// Events with `after < seq <= upto`, in order.
fn events_between(
    conn: &Connection,
    id: &MigrationId,
    after: i64,
    upto: i64,
) -> Result<Vec<Event>, StoreError> {
    let rows = conn
        .prepare_cached(
            "SELECT seq, at, kind, step, data FROM events
             WHERE migration = ?1 AND seq > ?2 AND seq <= ?3 ORDER BY seq",
        )?
        .query_map(params![id.as_str(), after, upto], |r| {
            Ok(Event {
                seq: r.get(0)?,
                migration: id.clone(),
                at: time_col(r, 1)?,
                kind: name_col(r, 2)?,
                step: r.get(3)?,
                data: json_col(r, 4)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// One event, by its seq.
pub fn event(conn: &Connection, id: &MigrationId, seq: i64) -> Result<Option<Event>, StoreError> {
    Ok(events_between(conn, id, seq - 1, seq)?.pop())
}

/// Log lines with a seq above `after`, in the order they were written, of one step or of all.
pub fn logs(
    conn: &Connection,
    id: &MigrationId,
    step: Option<&str>,
    after: i64,
) -> Result<Vec<LogLine>, StoreError> {
    // Two statements, so that each uses its index.
    let mut stmt = match step {
        Some(_) => conn.prepare_cached(
            "SELECT seq, step, attempt, stream, at, text FROM logs
             WHERE migration = ?1 AND step = ?2 AND seq > ?3 ORDER BY seq",
        )?,
        None => conn.prepare_cached(
            "SELECT seq, step, attempt, stream, at, text FROM logs
             WHERE migration = ?1 AND seq > ?2 ORDER BY seq",
        )?,
    };
    let line = |r: &Row<'_>| {
        Ok(LogLine {
            seq: r.get(0)?,
            step: r.get(1)?,
            attempt: r.get(2)?,
            stream: name_col(r, 3)?,
            at: time_col(r, 4)?,
            text: r.get(5)?,
        })
    };
    let rows = match step {
        Some(step) => stmt.query_map(params![id.as_str(), step, after], line)?,
        None => stmt.query_map(params![id.as_str(), after], line)?,
    }
    .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// How long the last `limit` successful runs of a runbook step took, newest first: the
/// engine's estimate for a window-bound step that declares none.
pub fn step_durations(
    conn: &Connection,
    runbook: &str,
    step: &str,
    limit: u32,
) -> Result<Vec<chrono::Duration>, StoreError> {
    let rows = conn
        .prepare_cached(
            "SELECT s.started_at, s.finished_at FROM steps s JOIN migrations m ON m.id = s.migration
             WHERE m.runbook = ?1 AND s.step = ?2 AND s.state = 'succeeded'
               AND s.started_at IS NOT NULL AND s.finished_at IS NOT NULL
             ORDER BY s.n DESC LIMIT ?3",
        )?
        .query_map(params![runbook, step, limit], |r| {
            Ok(time_col(r, 1)? - time_col(r, 0)?)
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// How long each step that succeeded by running took, in the last `migrations` migrations
/// of a runbook other than `except` (newest first): what an ETA goes by. One query on the
/// steps' (migration, step) index, however many steps there are.
pub fn step_history(
    conn: &Connection,
    runbook: &str,
    except: &MigrationId,
    migrations: u32,
) -> Result<Vec<(String, chrono::Duration)>, StoreError> {
    let rows = conn
        .prepare_cached(
            "SELECT s.step, s.started_at, s.finished_at FROM steps s
             WHERE s.migration IN (SELECT id FROM migrations WHERE runbook = ?1 AND id <> ?2
                                   ORDER BY n DESC LIMIT ?3)
               AND s.state = 'succeeded' AND s.kept = 0
               AND s.started_at IS NOT NULL AND s.finished_at IS NOT NULL",
        )?
        .query_map(params![runbook, except.as_str(), migrations], |r| {
            Ok((r.get::<_, String>(0)?, time_col(r, 2)? - time_col(r, 1)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

impl super::Sqlite {
    /// How long each step that succeeded by running took, in the last `migrations`
    /// migrations of a runbook other than `except`: what an ETA goes by.
    pub fn step_history(
        &self,
        runbook: &str,
        except: &MigrationId,
        migrations: u32,
    ) -> Result<Vec<(String, chrono::Duration)>, StoreError> {
        step_history(&self.reader(), runbook, except, migrations)
    }
}

/// How many migrations are in each state (states with none are left out).
pub fn count_by_state(conn: &Connection) -> Result<Vec<(MigrationState, u64)>, StoreError> {
    let rows = conn
        .prepare_cached("SELECT state, count(*) FROM migrations GROUP BY state")?
        .query_map([], |r| {
            Ok((name_col(r, 0)?, r.get::<_, i64>(1)?.max(0) as u64))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Seconds each finished attempt of a step took (the last attempt of every step with both
/// times), and each closed gate waited for its decision: for metrics histograms.
pub fn durations(conn: &Connection) -> Result<(Vec<f64>, Vec<f64>), StoreError> {
    let seconds = |sql: &str| -> Result<Vec<f64>, StoreError> {
        let rows = conn
            .prepare_cached(sql)?
            .query_map([], |r| r.get::<_, Option<f64>>(0))?
            .filter_map(|r| r.transpose())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    };
    let steps = seconds(
        "SELECT (julianday(finished_at) - julianday(started_at)) * 86400.0 FROM steps
         WHERE started_at IS NOT NULL AND finished_at IS NOT NULL",
    )?;
    let gates = seconds(
        "SELECT (julianday(closed_at) - julianday(opened_at)) * 86400.0 FROM gates
         WHERE closed_at IS NOT NULL",
    )?;
    Ok((steps, gates))
}
