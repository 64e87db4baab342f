//! Writes of migrations: creating one, applying a batch (fence, state check, events with the
//! alert deliveries they cause, step rows, gates), and log lines.

use super::super::{Batch, Committed, Migration, MigrationId, NewLogLine, NewMigration, StoreError};
use super::db::Db;
use std::sync::Arc;

pub async fn create_migration(_db: Arc<Db>, _new: NewMigration) -> Result<Migration, StoreError> {
    Err(StoreError::Database("not implemented on PostgreSQL yet".into()).into())
}

pub async fn apply_batch(_db: Arc<Db>, _id: MigrationId, _batch: Batch) -> Result<Committed, StoreError> {
    Err(StoreError::Database("not implemented on PostgreSQL yet".into()).into())
}

pub async fn insert_log(_conn: &mut sqlx::PgConnection, _id: &MigrationId, _line: &NewLogLine) -> Result<(), StoreError> {
    Err(StoreError::Database("not implemented on PostgreSQL yet".into()).into())
}
