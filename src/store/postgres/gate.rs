//! Gates: votes, closing by timeout or cancel, and reads.

use super::super::{
    GateDecision, GateError, GateInfo, GateOutcome, GateStatus, GateVote, MigrationId, NewEvent,
    StoreError,
};
use super::db::Db;
use std::sync::Arc;

pub async fn decide(
    _db: Arc<Db>,
    _id: MigrationId,
    _vote: GateVote,
) -> Result<GateOutcome, GateError> {
    Err(StoreError::Database("not implemented on PostgreSQL yet".into()).into())
}

pub async fn close(
    _db: Arc<Db>,
    _id: MigrationId,
    _step: String,
    _status: GateStatus,
    _event: NewEvent,
) -> Result<bool, StoreError> {
    Err(StoreError::Database("not implemented on PostgreSQL yet".into()).into())
}

pub async fn info(
    _db: Arc<Db>,
    _id: MigrationId,
    _step: String,
) -> Result<Option<GateInfo>, StoreError> {
    Err(StoreError::Database("not implemented on PostgreSQL yet".into()).into())
}

pub async fn decisions(_db: Arc<Db>, _id: MigrationId) -> Result<Vec<GateDecision>, StoreError> {
    Err(StoreError::Database("not implemented on PostgreSQL yet".into()).into())
}
