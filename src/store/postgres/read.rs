//! Reads of migrations, steps, events and logs.

use super::super::{
    Event, LogLine, Migration, MigrationHead, MigrationId, MigrationState, StepRow, StoreError,
};
use super::db::Db;
use std::sync::Arc;

pub async fn migration(_db: Arc<Db>, _id: MigrationId) -> Result<Option<Migration>, StoreError> {
    Err(StoreError::Database("not implemented on PostgreSQL yet".into()).into())
}

pub async fn resolve_id(_db: Arc<Db>, _prefix_or_id: String) -> Result<MigrationId, StoreError> {
    Err(StoreError::Database("not implemented on PostgreSQL yet".into()).into())
}

pub async fn latest(_db: Arc<Db>) -> Result<Option<MigrationId>, StoreError> {
    Err(StoreError::Database("not implemented on PostgreSQL yet".into()).into())
}

pub async fn list(
    _db: Arc<Db>,
    _state: Option<MigrationState>,
) -> Result<Vec<MigrationHead>, StoreError> {
    Err(StoreError::Database("not implemented on PostgreSQL yet".into()).into())
}

pub async fn count_by_state(_db: Arc<Db>) -> Result<Vec<(MigrationState, u64)>, StoreError> {
    Err(StoreError::Database("not implemented on PostgreSQL yet".into()).into())
}

pub async fn durations(_db: Arc<Db>) -> Result<(Vec<f64>, Vec<f64>), StoreError> {
    Err(StoreError::Database("not implemented on PostgreSQL yet".into()).into())
}

pub async fn steps(_db: Arc<Db>, _id: MigrationId) -> Result<Vec<StepRow>, StoreError> {
    Err(StoreError::Database("not implemented on PostgreSQL yet".into()).into())
}

pub async fn step_durations(
    _db: Arc<Db>,
    _runbook: String,
    _step: String,
    _limit: u32,
) -> Result<Vec<chrono::Duration>, StoreError> {
    Err(StoreError::Database("not implemented on PostgreSQL yet".into()).into())
}

pub async fn step_history(
    _db: Arc<Db>,
    _runbook: String,
    _except: MigrationId,
    _migrations: u32,
) -> Result<Vec<(String, chrono::Duration)>, StoreError> {
    Err(StoreError::Database("not implemented on PostgreSQL yet".into()).into())
}

pub async fn events(
    _db: Arc<Db>,
    _id: MigrationId,
    _after_seq: i64,
) -> Result<Vec<Event>, StoreError> {
    Err(StoreError::Database("not implemented on PostgreSQL yet".into()).into())
}

pub async fn event(_db: Arc<Db>, _id: MigrationId, _seq: i64) -> Result<Option<Event>, StoreError> {
    Err(StoreError::Database("not implemented on PostgreSQL yet".into()).into())
}

pub async fn logs(
    _db: Arc<Db>,
    _id: MigrationId,
    _step: Option<String>,
    _after: i64,
) -> Result<Vec<LogLine>, StoreError> {
    Err(StoreError::Database("not implemented on PostgreSQL yet".into()).into())
}
