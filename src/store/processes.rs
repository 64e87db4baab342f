//! The process group of each step's latest attempt, recorded as it starts (with the log
//! lines' group commit, so it costs no fsync of its own). A resume reads it for steps a
//! crash left `running`: when the group still lives on this host (its driver and the
//! watchdog died together), the step is not run a second time beside it.

use super::StoreError;
use super::schema::{fmt_time, time_col};
use super::writer::Job;
use crate::event::MigrationId;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

/// A step attempt's process group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepProcess {
    pub step: String,
    pub attempt: u32,
    pub pgid: i32,
    /// The group leader's start time, against pid reuse.
    pub pg_start: Option<u64>,
    pub host: String,
    pub started_at: DateTime<Utc>,
}

pub fn record(conn: &Connection, id: &MigrationId, p: &StepProcess) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO step_processes (migration, step, attempt, pgid, pg_start, host, started_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        id.as_str(),
        p.step,
        p.attempt,
        p.pgid,
        p.pg_start.map(|s| s as i64),
        p.host,
        fmt_time(p.started_at),
    ])?;
    Ok(())
}

pub fn get(
    conn: &Connection,
    id: &MigrationId,
    step: &str,
) -> Result<Option<StepProcess>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT step, attempt, pgid, pg_start, host, started_at FROM step_processes
             WHERE migration = ?1 AND step = ?2",
        )?
        .query_row(params![id.as_str(), step], |r| {
            Ok(StepProcess {
                step: r.get(0)?,
                attempt: r.get(1)?,
                pgid: r.get(2)?,
                pg_start: r.get::<_, Option<i64>>(3)?.map(|s| s as u64),
                host: r.get(4)?,
                started_at: time_col(r, 5)?,
            })
        })
        .optional()?)
}

impl super::Sqlite {
    /// Records the process group of a step's attempt, with the next group commit.
    pub fn record_process(&self, id: &MigrationId, process: StepProcess) {
        let id = id.clone();
        let job = Job::detached(
            move |conn, _| record(conn, &id, &process),
            self.inner.lost_logs.clone(),
        );
        let _ = self.send(job);
    }

    /// The process group of a step's latest attempt, if one was recorded.
    pub fn step_process(
        &self,
        id: &MigrationId,
        step: &str,
    ) -> Result<Option<StepProcess>, StoreError> {
        get(&self.reader(), id, step)
    }
}
