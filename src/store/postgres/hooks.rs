//! Webhook signatures seen and idempotency keys.

use super::super::{MigrationId, StoreError};
use super::db::Db;
use chrono::{DateTime, Utc};
use std::sync::Arc;

pub async fn claim_signature(
    _db: Arc<Db>,
    _hook: String,
    _mac: Vec<u8>,
    _timestamp: i64,
    _now: DateTime<Utc>,
    _expires_at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    Err(StoreError::Database("not implemented on PostgreSQL yet".into()).into())
}

pub async fn keyed(
    _db: Arc<Db>,
    _hook: String,
    _key: String,
) -> Result<Option<MigrationId>, StoreError> {
    Err(StoreError::Database("not implemented on PostgreSQL yet".into()).into())
}

pub async fn remember_key(
    _db: Arc<Db>,
    _hook: String,
    _key: String,
    _migration: MigrationId,
    _now: DateTime<Utc>,
) -> Result<(), StoreError> {
    Err(StoreError::Database("not implemented on PostgreSQL yet".into()).into())
}
