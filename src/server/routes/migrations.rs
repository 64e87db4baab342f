//! Migrations as resources: create one from a loaded runbook (201, state `created`), list
//! them (optionally by state), their detail and status, and a step's output.

use super::{AppState, blocking, body, load};
use crate::diag;
use crate::engine::{self, EngineError, NewRun};
use crate::eta::Estimate;
use crate::event::MigrationState;
use crate::runbook::params;
use crate::server::auth::{Operator, Reader};
use crate::server::error::ApiError;
use crate::server::extract::{QueryParams, Segments};
use crate::server::runbooks::Active;
use crate::store::Migration;
use crate::view;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::sync::Arc;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    /// The runbook's name (see `GET /v1/runbooks`).
    runbook: String,
    #[serde(default)]
    params: Map<String, Value>,
}

/// `POST /v1/migrations` `{runbook, params}`.
pub async fn create(
    State(state): State<AppState>,
    Operator(caller): Operator,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body: CreateBody = body(&state, bytes)?;
    let Some(active) = state.runbooks.get(&body.runbook) else {
        let known = state.runbooks.names();
        let hint = diag::suggest(&body.runbook, known.iter().map(String::as_str))
            .map(|h| format!(" ({h})"))
            .unwrap_or_default();
        return Err(ApiError::unprocessable(
            format!("no valid runbook is called `{}`{hint}", body.runbook),
            json!({ "runbooks": known }),
        ));
    };
    let params = params::resolve_json(&active.runbook, &body.params)
        .map_err(|errors| params_error(&body.runbook, &errors))?;
    let migration = create_from(&state, active, params, caller.name.clone(), None).await?;
    tracing::info!(migration = %migration.id, runbook = %migration.runbook, by = %migration.starter, "created");
    let steps = state.store.steps(&migration.id)?;
    let mut headers = HeaderMap::new();
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/migrations/{}", migration.id)) {
        headers.insert(header::LOCATION, location);
    }
    let eta = Estimate::of(&state.store, &migration, &steps, Utc::now());
    let doc = view::status(&migration, &steps, None, &eta);
    Ok((StatusCode::CREATED, headers, Json(doc)).into_response())
}

/// The 422 of params that do not fit `runbook`, naming each one.
pub fn params_error(runbook: &str, errors: &[params::ParamError]) -> ApiError {
    let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
    ApiError::unprocessable(
        format!(
            "the params do not fit runbook `{runbook}`: {}",
            errors.join("; ")
        ),
        json!({ "errors": errors }),
    )
}

/// Creates a migration (state `created`) of the runbook as loaded, with resolved params:
/// the path of `POST /v1/migrations` and of webhook triggers.
pub async fn create_from(
    state: &AppState,
    active: Arc<Active>,
    params: params::Params,
    starter: String,
    id: Option<crate::event::MigrationId>,
) -> Result<Migration, ApiError> {
    let store = state.store.clone();
    blocking(move || {
        engine::create(
            &store,
            NewRun {
                runbook: &active.runbook,
                runbook_path: active.path.display().to_string(),
                runbook_text: active.text.clone(),
                params,
                starter,
                id,
                now: None,
                origin: Default::default(),
            },
        )
        .map_err(|e| match e {
            EngineError::Plan(e) => ApiError::unprocessable(
                format!("the plan cannot be built with these params: {e}"),
                json!({}),
            ),
            EngineError::Store(e @ crate::store::StoreError::Exists(_)) => {
                ApiError::Conflict(e.to_string())
            }
            other => other.into(),
        })
    })
    .await
}

/// `GET /v1/migrations[?state=][&runbook=]`: newest first.
pub async fn list(
    State(state): State<AppState>,
    Reader(_): Reader,
    query: QueryParams,
) -> Result<Json<Value>, ApiError> {
    let runbook = query.get("runbook");
    let filter = query
        .get("state")
        .map(str::parse::<MigrationState>)
        .transpose()
        .map_err(|e| ApiError::BadRequest(format!("query parameter `state`: {e}")))?;
    let items: Vec<Value> = state
        .store
        .list(filter)?
        .iter()
        .filter(|m| runbook.is_none_or(|r| r == m.runbook))
        .map(view::summary)
        .collect();
    Ok(Json(Value::Array(items)))
}

/// `GET /v1/migrations/{id}`: the status document with every step, the runbook file, and
/// the gate decisions (the audit trail of votes).
pub async fn detail(
    State(state): State<AppState>,
    Reader(_): Reader,
    Segments(id): Segments<String>,
) -> Result<Json<Value>, ApiError> {
    let m = load(&state, &id)?;
    let steps = state.store.steps(&m.id)?;
    let driver = state.store.driver(&m.id)?;
    let eta = Estimate::of(&state.store, &m, &steps, Utc::now());
    let mut doc = view::status(&m, &steps, driver.as_ref(), &eta);
    if let Some(obj) = doc.as_object_mut() {
        obj.insert("runbook_path".into(), json!(m.runbook_path));
        obj.insert(
            "decisions".into(),
            json!(state.store.gate_decisions(&m.id)?),
        );
        obj.insert("last_seq".into(), json!(m.last_seq));
    }
    Ok(Json(doc))
}

/// `GET /v1/migrations/{id}/status`: state, phase, progress, why it waits, who drives it.
pub async fn status(
    State(state): State<AppState>,
    Reader(_): Reader,
    Segments(id): Segments<String>,
) -> Result<Json<Value>, ApiError> {
    let m = load(&state, &id)?;
    let steps = state.store.steps(&m.id)?;
    let driver = state.store.driver(&m.id)?;
    let (done, total) = view::progress(&steps);
    let eta = Estimate::of(&state.store, &m, &steps, Utc::now());
    let running: Vec<&crate::store::StepRow> = steps
        .iter()
        .filter(|s| s.state == crate::event::StepState::Running)
        .collect();
    Ok(Json(json!({
        "id": m.id,
        "runbook": m.runbook,
        "state": m.state,
        "phase": engine::lifecycle::phase_of_state(m.state).map(|p| p.as_str()),
        "progress": { "done": done, "total": total },
        "eta": eta.migration.to_json(),
        "waiting": view::waiting(&steps),
        "running": running.iter().map(|s| s.step.clone()).collect::<Vec<_>>(),
        "running_steps": running.iter().map(|s| json!({
            "step": s.step,
            "progress": s.progress,
            "checkpoint": s.checkpoint,
            "eta": eta.step(&s.step).map(crate::eta::Eta::to_json),
        })).collect::<Vec<_>>(),
        "driver": driver.map(|d| json!({ "pid": d.pid, "host": d.host, "since": d.since })),
        "updated_at": m.updated_at,
    })))
}

/// `GET /v1/migrations/{id}/steps/{step}/logs`: JSON lines, or plain text with
/// `Accept: text/plain`.
pub async fn logs(
    State(state): State<AppState>,
    Reader(_): Reader,
    Segments((id, step)): Segments<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let m = load(&state, &id)?;
    if !state.store.steps(&m.id)?.iter().any(|r| r.step == step) {
        return Err(ApiError::NotFound(format!(
            "migration {} has no step `{step}`",
            m.id
        )));
    }
    let lines = state.store.logs(&m.id, Some(&step))?;
    let wants_text = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/plain"));
    if wants_text {
        let text: String = lines.iter().map(|l| format!("{}\n", l.text)).collect();
        return Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response());
    }
    Ok(Json(json!(lines)).into_response())
}
