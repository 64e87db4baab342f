//! The process group of each step's latest attempt (see the SQLite backend's `processes`):
//! recorded through the queue as the attempt starts, read by a resume and by pool takes.

use super::super::schema::fmt_time;
use super::super::{MigrationId, StepProcess, StoreError};
use super::db::Db;
use super::rows;
use sqlx::Row as _;
use std::sync::Arc;

/// Records (or replaces) a step's process group, in the caller's transaction.
pub async fn record(
    conn: &mut sqlx::PgConnection,
    id: &MigrationId,
    p: &StepProcess,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO step_processes (migration, step, attempt, pgid, pg_start, host, started_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (migration, step) DO UPDATE SET attempt = excluded.attempt,
             pgid = excluded.pgid, pg_start = excluded.pg_start, host = excluded.host,
             started_at = excluded.started_at",
    )
    .bind(id.as_str())
    .bind(&p.step)
    .bind(i64::from(p.attempt))
    .bind(i64::from(p.pgid))
    .bind(p.pg_start.map(|s| s as i64))
    .bind(&p.host)
    .bind(fmt_time(p.started_at))
    .execute(conn)
    .await?;
    Ok(())
}

/// The process group of a step's latest attempt, if one was recorded.
pub async fn get(
    db: Arc<Db>,
    id: MigrationId,
    step: String,
) -> Result<Option<StepProcess>, StoreError> {
    let mut conn = db.pool.acquire().await?;
    fetch(&mut conn, &id, &step).await
}

/// [`get`] on a connection (or in a transaction) the caller holds.
pub(super) async fn fetch(
    conn: &mut sqlx::PgConnection,
    id: &MigrationId,
    step: &str,
) -> Result<Option<StepProcess>, StoreError> {
    let found = sqlx::query(
        "SELECT step, attempt, pgid, pg_start, host, started_at FROM step_processes
         WHERE migration = $1 AND step = $2",
    )
    .bind(id.as_str())
    .bind(step)
    .fetch_optional(conn)
    .await?;
    let Some(r) = found else {
        return Ok(None);
    };
    let pg_start: Option<i64> = r.try_get(3)?;
    Ok(Some(StepProcess {
        step: rows::text(&r, 0)?,
        attempt: rows::int(&r, 1)?,
        pgid: rows::int(&r, 2)?,
        pg_start: pg_start.map(|s| s as u64),
        host: rows::text(&r, 4)?,
        started_at: rows::time(&r, 5)?,
    }))
}
