//! The server itself: the runbooks it offers, checking a posted runbook, liveness, metrics.

use super::AppState;
use crate::server::auth::Reader;
use crate::server::error::{ApiError, body_rejection};
use crate::server::{metrics, runbooks};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// `GET /v1/runbooks`: every runbook file, valid or not, with diagnostics.
pub async fn runbooks(State(state): State<AppState>, Reader(_): Reader) -> Json<Value> {
    Json(json!({
        "dir": state.runbooks.dir().display().to_string(),
        "runbooks": state.runbooks.listing(),
    }))
}

/// `POST /v1/runbooks/validate`: the body is runbook YAML; 200 with the diagnostics when it
/// is valid (warnings may remain), 422 with them when it is not.
pub async fn validate(
    State(state): State<AppState>,
    Reader(_): Reader,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let bytes = bytes.map_err(|e| body_rejection(e, state.body_limit))?;
    let text = bytes.to_vec();
    let (valid, doc) = tokio::task::spawn_blocking(move || runbooks::validate(&text))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    if valid {
        return Ok(Json(doc).into_response());
    }
    let count = doc["diagnostics"]
        .as_array()
        .map_or(0, |d| d.iter().filter(|d| d["severity"] == "error").count());
    Err(ApiError::unprocessable(
        format!(
            "the runbook is not valid: {count} error{}",
            if count == 1 { "" } else { "s" }
        ),
        doc,
    ))
}

/// `GET /healthz`: the process answers and its store can be read.
pub async fn healthz(State(state): State<AppState>) -> Response {
    match state.store.ping() {
        Ok(_) if !state.shutdown.is_triggered() => Json(json!({ "status": "ok" })).into_response(),
        Ok(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "stopping" })),
        )
            .into_response(),
        Err(e) => ApiError::Unavailable(format!("the store cannot be read: {e}")).into_response(),
    }
}

/// `GET /v1/health`: liveness. The process answers; it says nothing of the store, so a
/// store outage does not make an orchestrator restart every server at once.
pub async fn health(State(state): State<AppState>) -> Response {
    let status = if state.shutdown.is_triggered() {
        "stopping"
    } else {
        "ok"
    };
    Json(json!({ "status": status })).into_response()
}

/// `GET /v1/ready`: readiness. 200 when the store answers and the server is not stopping,
/// with how many migrations this server drives (holds the lease of); 503 otherwise, so a
/// load balancer sends API calls and webhooks to another server.
pub async fn ready(State(state): State<AppState>) -> Response {
    let store = state.store.clone();
    let reached = tokio::task::spawn_blocking(move || store.ping())
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()));
    let owned = state.drivers.active();
    let shared = state.store.is_shared();
    let body = |status: &str, store: &str| {
        json!({
            "status": status,
            "store": store,
            "shared_store": shared,
            "migrations_owned": owned,
            "takeovers": state.drivers.takeovers(),
        })
    };
    match reached {
        Ok(()) if !state.shutdown.is_triggered() => Json(body("ready", "ok")).into_response(),
        Ok(()) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(body("stopping", "ok")),
        )
            .into_response(),
        // The reason goes to the log, not to an unauthenticated caller.
        Err(e) => {
            tracing::warn!("not ready: the store cannot be reached: {e}");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(body("unavailable", "unreachable")),
            )
                .into_response()
        }
    }
}

/// `GET /metrics`: Prometheus text.
pub async fn metrics(State(state): State<AppState>, Reader(_): Reader) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics::render(&state),
    )
        .into_response()
}
