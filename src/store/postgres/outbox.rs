//! Alert deliveries and their attempts.

use super::super::{AttemptRecord, Delivery, DeliveryAttempt, MigrationId, StoreError};
use super::db::Db;
use chrono::{DateTime, Utc};
use std::sync::Arc;

pub async fn claim(
    _db: Arc<Db>,
    _now: DateTime<Utc>,
    _until: DateTime<Utc>,
    _limit: u32,
    _with_email: bool,
) -> Result<Vec<Delivery>, StoreError> {
    Err(StoreError::Database("not implemented on PostgreSQL yet".into()).into())
}

pub async fn record(_db: Arc<Db>, _record: AttemptRecord) -> Result<bool, StoreError> {
    Err(StoreError::Database("not implemented on PostgreSQL yet".into()).into())
}

pub async fn counts(_db: Arc<Db>) -> Result<Vec<(String, String, i64)>, StoreError> {
    Err(StoreError::Database("not implemented on PostgreSQL yet".into()).into())
}

pub async fn list(_db: Arc<Db>, _id: Option<MigrationId>) -> Result<Vec<Delivery>, StoreError> {
    Err(StoreError::Database("not implemented on PostgreSQL yet".into()).into())
}

pub async fn pending(
    _db: Arc<Db>,
    _id: Option<MigrationId>,
    _with_email: bool,
) -> Result<(u64, Option<DateTime<Utc>>), StoreError> {
    Err(StoreError::Database("not implemented on PostgreSQL yet".into()).into())
}

pub async fn attempts(_db: Arc<Db>, _delivery: i64) -> Result<Vec<DeliveryAttempt>, StoreError> {
    Err(StoreError::Database("not implemented on PostgreSQL yet".into()).into())
}

/// Inserts the deliveries that events appended in this transaction cause (see the SQLite
/// backend's `outbox::insert`): `seqs` and `steps` are those events' seqs and steps.
pub async fn insert(
    _conn: &mut sqlx::PgConnection,
    _now: DateTime<Utc>,
    _id: &MigrationId,
    _deliveries: &[super::super::NewDelivery],
    _seqs: &[i64],
    _steps: &[Option<String>],
) -> Result<(), StoreError> {
    Err(StoreError::Database(
        "not implemented on PostgreSQL yet".into(),
    ))
}
