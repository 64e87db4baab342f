//! The process group of each step's latest attempt.

use super::super::{MigrationId, StepProcess, StoreError};
use super::db::Db;
use std::sync::Arc;

pub async fn record(
    _conn: &mut sqlx::PgConnection,
    _id: &MigrationId,
    _process: &StepProcess,
) -> Result<(), StoreError> {
    Err(StoreError::Database("not implemented on PostgreSQL yet".into()).into())
}

pub async fn get(
    _db: Arc<Db>,
    _id: MigrationId,
    _step: String,
) -> Result<Option<StepProcess>, StoreError> {
    Err(StoreError::Database("not implemented on PostgreSQL yet".into()).into())
}
