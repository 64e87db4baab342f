//! Alert deliveries over the API: `GET /v1/alerts` (every migration's) and
//! `GET /v1/migrations/{id}/alerts` — the same documents as `sensei alerts --format json`:
//! each delivery's channel, event, state, attempts and attempt log, never the message itself.

use super::{AppState, load};
use crate::server::auth::Reader;
use crate::server::error::ApiError;
use crate::server::extract::Segments;
use crate::store::Delivery;
use axum::Json;
use axum::extract::State;
use serde_json::Value;

fn documents(state: &AppState, deliveries: &[Delivery]) -> Json<Vec<Value>> {
    Json(
        deliveries
            .iter()
            .map(|d| {
                crate::view::delivery(d, &state.store.delivery_attempts(d.id).unwrap_or_default())
            })
            .collect(),
    )
}

/// `GET /v1/alerts`.
pub async fn all(
    State(state): State<AppState>,
    Reader(_): Reader,
) -> Result<Json<Vec<Value>>, ApiError> {
    let deliveries = state.store.deliveries(None)?;
    Ok(documents(&state, &deliveries))
}

/// `GET /v1/migrations/{id}/alerts`.
pub async fn of_migration(
    State(state): State<AppState>,
    Reader(_): Reader,
    Segments(id): Segments<String>,
) -> Result<Json<Vec<Value>>, ApiError> {
    let m = load(&state, &id)?;
    let deliveries = state.store.deliveries(Some(&m.id))?;
    Ok(documents(&state, &deliveries))
}
