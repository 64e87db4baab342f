//! Writes of migrations: creating one, applying a batch (fence, state check, events with the
//! alert deliveries they cause, step rows, gates), and log lines.

use super::super::{
    Batch, Committed, Migration, MigrationId, NewLogLine, NewMigration, StoreError,
};
use super::db::Db;
use std::sync::Arc;

pub async fn create_migration(_db: Arc<Db>, _new: NewMigration) -> Result<Migration, StoreError> {
    Err(StoreError::Database("not implemented on PostgreSQL yet".into()).into())
}

pub async fn apply_batch(
    _db: Arc<Db>,
    _id: MigrationId,
    _batch: Batch,
) -> Result<Committed, StoreError> {
    Err(StoreError::Database("not implemented on PostgreSQL yet".into()).into())
}

pub async fn insert_log(
    _conn: &mut sqlx::PgConnection,
    _id: &MigrationId,
    _line: &NewLogLine,
) -> Result<(), StoreError> {
    Err(StoreError::Database("not implemented on PostgreSQL yet".into()).into())
}

/// A migration's state and newest seq, or NotFound; locks its row until the transaction
/// ends, so every write to one migration (a batch, a gate vote, a lease taken over) waits
/// for the one before it: what makes a batch's fence check and a takeover never interleave.
pub async fn head(
    conn: &mut sqlx::PgConnection,
    id: &MigrationId,
) -> Result<(crate::event::MigrationState, i64), StoreError> {
    let row: Option<(String, i64)> =
        sqlx::query_as("SELECT state, last_seq FROM migrations WHERE id = $1 FOR UPDATE")
            .bind(id.as_str())
            .fetch_optional(conn)
            .await?;
    let (state, last_seq) = row.ok_or_else(|| StoreError::NotFound(id.to_string()))?;
    let state = state
        .parse()
        .map_err(|e| StoreError::Corrupt(format!("migration {id} has state `{state}`: {e}")))?;
    Ok((state, last_seq))
}
