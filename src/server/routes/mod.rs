//! The handlers, by resource: `migrations` (create, list, detail, status, logs), `lifecycle`
//! (operations and gate decisions), `events` (history and the live stream), `system`
//! (runbooks, validation, health, metrics), `hooks` (webhook triggers); and the helpers they share.

pub mod alerts;
pub mod events;
pub mod hooks;
pub mod lifecycle;
pub mod migrations;
pub mod system;

use super::AppState;
use super::error::{ApiError, body_rejection};
use super::extract::json_body;
use crate::event::MigrationId;
use crate::store::Migration;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use serde::de::DeserializeOwned;

/// The migration with exactly this id (no prefixes in the API), or 404.
pub fn load(state: &AppState, id: &str) -> Result<Migration, ApiError> {
    state
        .store
        .migration(&MigrationId::from(id.to_owned()))?
        .ok_or_else(|| ApiError::NotFound(format!("no migration {id}")))
}

/// A JSON body: 413 over the limit, 400 when unreadable or not the expected shape.
pub fn body<T: DeserializeOwned>(
    state: &AppState,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let bytes = bytes.map_err(|e| body_rejection(e, state.body_limit))?;
    json_body(&bytes)
}

/// Runs blocking store work (commits wait for the disk) off the runtime's threads.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::Internal(format!("a background task failed: {e}")))?
}
