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
