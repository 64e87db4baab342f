//! Leases with fencing tokens.

use super::super::{Lease, LeaseError, LeaseHolder, MigrationId, StoreError};
use super::db::Db;
use std::sync::Arc;
use std::time::Duration;

pub async fn acquire(_db: Arc<Db>, _id: MigrationId, _ttl: Duration) -> Result<Lease, LeaseError> {
    Err(StoreError::Database("not implemented on PostgreSQL yet".into()).into())
}

pub async fn renew(_db: Arc<Db>, _lease: Lease, _ttl: Duration) -> Result<(), LeaseError> {
    Err(StoreError::Database("not implemented on PostgreSQL yet".into()).into())
}

pub async fn release(_db: Arc<Db>, _lease: Lease) -> Result<(), StoreError> {
    Err(StoreError::Database("not implemented on PostgreSQL yet".into()).into())
}

pub async fn driver(_db: Arc<Db>, _id: MigrationId) -> Result<Option<LeaseHolder>, StoreError> {
    Err(StoreError::Database("not implemented on PostgreSQL yet".into()).into())
}

/// Refuses a write of a driver whose lease is no longer in the row (see the SQLite
/// backend's `lease::fence`). Call it after `write::head` locked the migration's row.
pub async fn fence(_conn: &mut sqlx::PgConnection, _lease: &Lease) -> Result<(), LeaseError> {
    Err(StoreError::Database("not implemented on PostgreSQL yet".into()).into())
}
