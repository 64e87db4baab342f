//! Pool slots shared by every migration on the store.

use super::super::{Lease, PoolHolder, PoolTake, StoreError};
use super::db::Db;
use std::sync::Arc;

pub async fn take(
    _db: Arc<Db>,
    _pool: String,
    _size: u32,
    _step: String,
    _lease: Lease,
) -> Result<PoolTake, StoreError> {
    Err(StoreError::Database("not implemented on PostgreSQL yet".into()).into())
}

pub async fn release(_conn: &mut sqlx::PgConnection, _slot: i64) -> Result<(), StoreError> {
    Err(StoreError::Database("not implemented on PostgreSQL yet".into()).into())
}

pub async fn holders(_db: Arc<Db>, _pool: String) -> Result<Vec<PoolHolder>, StoreError> {
    Err(StoreError::Database("not implemented on PostgreSQL yet".into()).into())
}
