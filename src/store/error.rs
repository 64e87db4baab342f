//! The store's errors: one enum for the store itself, and one each for gate decisions and
//! leases, whose refusals callers must tell apart. Every message is one sentence an operator
//! can act on; SQLite's own wording only appears where nothing better is known.

use super::gate::GateStatus;
use super::lease::LeaseHolder;
use crate::event::{MigrationId, MigrationState};
use rusqlite::ErrorCode;
use std::path::PathBuf;

/// A failure of the store, or a refusal that does not depend on gates or leases.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("the state directory {} is not writable: {reason}", path.display())]
    StateDir { path: PathBuf, reason: String },
    #[error("the store {} could not be opened: {reason}", path.display())]
    Open { path: PathBuf, reason: String },
    #[error(
        "the store {} was written by a newer sensei (schema version {found}, this one knows up to {known}); upgrade sensei",
        path.display()
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("no migration matches `{0}`")]
    NotFound(String),
    #[error(
        "`{prefix}` matches {total} migrations: {}{}; give more characters",
        matches.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(", "),
        if *total > matches.len() { ", …" } else { "" }
    )]
    Ambiguous {
        prefix: String,
        total: usize,
        /// The first few, in id order.
        matches: Vec<MigrationId>,
    },
    #[error("a migration with id {0} already exists")]
    Exists(MigrationId),
    #[error("the migration is {found}, no longer {expected}: another writer changed it first")]
    StateChanged {
        expected: MigrationState,
        found: MigrationState,
    },
    #[error(
        "the store is busy: another process held its write lock for more than 5 seconds; try again"
    )]
    Busy,
    #[error("the store holds data this sensei cannot read: {0}")]
    Corrupt(String),
    #[error("the store failed: {0}")]
    Database(String),
    #[error("the store has shut down and accepts no more writes")]
    Closed,
    /// A driver's batch carried a lease that is no longer the migration's: nothing of it
    /// was written (the message says who took the migration over).
    #[error("{0}")]
    Fenced(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match &e {
            rusqlite::Error::SqliteFailure(f, _)
                if matches!(f.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) =>
            {
                StoreError::Busy
            }
            rusqlite::Error::FromSqlConversionFailure(_, _, inner) => {
                StoreError::Corrupt(inner.to_string())
            }
            rusqlite::Error::InvalidColumnType(_, name, ty) => {
                StoreError::Corrupt(format!("column {name} holds a {ty}"))
            }
            _ => StoreError::Database(e.to_string()),
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            // A deadlock or a serialization failure: another server wrote first; retryable.
            sqlx::Error::Database(d)
                if matches!(d.code().as_deref(), Some("40001" | "40P01" | "55P03")) =>
            {
                StoreError::Busy
            }
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
                StoreError::Corrupt(e.to_string())
            }
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                StoreError::Database(format!("PostgreSQL cannot be reached: {e}"))
            }
            _ => StoreError::Database(e.to_string()),
        }
    }
}

impl From<sqlx::Error> for GateError {
    fn from(e: sqlx::Error) -> Self {
        GateError::Store(e.into())
    }
}

impl From<sqlx::Error> for LeaseError {
    fn from(e: sqlx::Error) -> Self {
        LeaseError::Store(e.into())
    }
}

impl From<rusqlite::Error> for GateError {
    fn from(e: rusqlite::Error) -> Self {
        GateError::Store(e.into())
    }
}

impl From<rusqlite::Error> for LeaseError {
    fn from(e: rusqlite::Error) -> Self {
        LeaseError::Store(e.into())
    }
}

/// A gate decision that was refused, or could not be recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GateError {
    #[error("{}", not_open(step, *status))]
    NotOpen {
        step: String,
        /// `None`: the gate was never opened (its step has not been reached).
        status: Option<GateStatus>,
    },
    #[error("{who} has already decided gate `{step}`; a decision cannot be changed")]
    AlreadyVoted { step: String, who: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn not_open(step: &str, status: Option<GateStatus>) -> String {
    match status {
        None => format!("gate `{step}` is not open: the migration has not reached it yet"),
        Some(s) => format!("gate `{step}` is not open: it was already {}", s.describe()),
    }
}

fn lost(migration: &MigrationId, holder: Option<&LeaseHolder>) -> String {
    match holder {
        Some(h) => format!(
            "the lease on migration {migration} was taken over by process {} on host {} at {}; this process must stop driving it",
            h.pid,
            h.host,
            h.since.format("%Y-%m-%d %H:%M:%S UTC")
        ),
        None => format!(
            "the lease on migration {migration} was taken over by another process (which has released it since); this process must stop driving it"
        ),
    }
}

/// A lease that could not be taken or kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaseError {
    #[error(
        "migration {migration} is being driven by process {} on host {} (since {}); stop it first or wait for it to finish",
        holder.pid, holder.host, holder.since.format("%Y-%m-%d %H:%M:%S UTC")
    )]
    Held {
        migration: MigrationId,
        holder: LeaseHolder,
    },
    #[error("{}", lost(migration, holder.as_ref()))]
    Lost {
        migration: MigrationId,
        /// `None` when the process that took it over has released it again.
        holder: Option<LeaseHolder>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}
