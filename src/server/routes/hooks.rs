//! `POST /v1/hooks/{name}`: a webhook trigger (SPEC §6) creates and starts a migration.
//!
//! The signature is the authentication (no bearer token): `X-Sensei-Timestamp: <unix
//! seconds>` and `X-Sensei-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>">`
//! with the key from the trigger's `secret_env`, compared in constant time. Each header has
//! one accepted form (see `alert::sign`), and the replay check keys on the decoded MAC, so
//! no other text of a signature accepted before is new. In order: unknown hook 404, a
//! content type other than `application/json` 415, a body over the limit 413, the secret's
//! variable unset on the server 500, unsigned, a header not in its form or a bad signature
//! 401, a timestamp more than 5 minutes off 401, a body that is not JSON 400, params that do
//! not fit 422, a signature seen before 401. Accepted signatures are remembered in the store
//! (across restarts) for [`REMEMBER`].
//!
//! The trigger's `params` are rendered with `payload` = the body (a template that is a single
//! expression keeps the value's type), then resolved like the params of `POST
//! /v1/migrations`. An `Idempotency-Key` header makes a repeated call (with a fresh
//! signature) answer the migration the first call created instead of creating another.

use super::migrations::{create_from, params_error};
use super::{AppState, load};
use crate::alert::sign::{self, Signature};
use crate::engine::Attach;
use crate::event::{MigrationState, Operation};
use crate::operator::{self, Requester};
use crate::runbook::model::Trigger;
use crate::runbook::params;
use crate::runbook::render::{Renderer, Values};
use crate::schedule::keyed_id;
use crate::server::error::{ApiError, body_rejection};
use crate::server::extract::Segments;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{Duration, Utc};
use serde_json::{Map, Value, json};
use std::sync::LazyLock;

/// How far a delivery's timestamp may be from the server's clock, either way.
pub const TOLERANCE_SECS: i64 = 5 * 60;

/// How long an accepted signature is remembered: past the tolerance window of its timestamp,
/// and at least the 10 minutes of SPEC §6.
pub const REMEMBER: Duration = Duration::minutes(15);

/// The longest `Idempotency-Key` accepted.
const MAX_KEY: usize = 200;

static RENDERER: LazyLock<Renderer> = LazyLock::new(Renderer::new);

/// `POST /v1/hooks/{name}`. Its 401s carry no bearer challenge: a signature is the proof.
pub async fn receive(
    State(state): State<AppState>,
    Segments(name): Segments<String>,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Response {
    match handle(state, name, headers, bytes).await {
        Ok(response) => response,
        Err(e) => {
            let mut response = e.into_response();
            response.headers_mut().remove(header::WWW_AUTHENTICATE);
            response
        }
    }
}

async fn handle(
    state: AppState,
    name: String,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let Some((active, trigger)) = state.runbooks.trigger(&name) else {
        return Err(ApiError::NotFound(format!(
            "no runbook has a webhook trigger `{name}`"
        )));
    };
    check_content_type(&headers)?;
    let body = bytes.map_err(|e| body_rejection(e, state.body_limit))?;
    let key = secret(&name, &trigger)?;
    let (timestamp, signature) = authenticate(&headers, &key, &body)?;
    let payload: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("the body is not valid JSON: {e}")))?;
    let given = render_params(&trigger, &payload)?;
    let params = params::resolve_json(&active.runbook, &given)
        .map_err(|errors| params_error(&active.runbook.name, &errors))?;
    let idempotency = idempotency_key(&headers)?;
    let now = Utc::now();
    let fresh = {
        let (store, hook) = (state.store.clone(), name.clone());
        super::blocking(move || {
            let mac = signature.mac();
            Ok(store.claim_hook_signature(&hook, mac, timestamp, now, now + REMEMBER)?)
        })
        .await?
    };
    if !fresh {
        return Err(ApiError::Unauthorized(format!(
            "this signature was accepted before: hook `{name}` accepts each signed delivery once (sign a retry with a new timestamp)"
        )));
    }
    // One keyed call at a time, so that two calls with one key cannot both create.
    let _keyed = match idempotency {
        Some(_) => Some(state.hook_calls.lock().await),
        None => None,
    };
    if let Some(k) = &idempotency
        && let Some(id) = state.store.hook_key(&name, k)?
    {
        let m = load(&state, &id.to_string())?;
        tracing::info!(migration = %m.id, hook = %name, "idempotency key seen before: same migration");
        return Ok(accepted(&m.id.to_string(), m.state));
    }
    let starter = format!("hook:{name}");
    // A keyed call's migration has an id derived from the key, so when another server got
    // the same key at the same moment, the store lets only one of the two creates through;
    // the other answers with that migration, as for a key seen before.
    let keyed = idempotency.as_deref().map(|k| keyed_id(&name, k));
    let m = match create_from(&state, active, params, starter.clone(), keyed.clone()).await {
        Ok(m) => m,
        Err(ApiError::Conflict(_)) if keyed.is_some() => {
            let id = keyed.map(|id| id.to_string()).unwrap_or_default();
            let m = load(&state, &id)?;
            tracing::info!(migration = %m.id, hook = %name, "idempotency key's migration was created by another call: same migration");
            return Ok(accepted(&m.id.to_string(), m.state));
        }
        Err(e) => return Err(e),
    };
    if let Some(k) = idempotency.clone() {
        let (store, hook, id) = (state.store.clone(), name.clone(), m.id.clone());
        super::blocking(move || Ok(store.remember_hook_key(&hook, &k, &id, now)?)).await?;
    }
    let comment = format!("webhook `{name}`, delivery timestamp {timestamp}");
    {
        let (store, id, who) = (state.store.clone(), m.id.clone(), starter.clone());
        super::blocking(move || {
            let by = Requester {
                who: &who,
                local: false,
                comment: Some(&comment),
                roles: None,
            };
            Ok(operator::request(
                &store,
                &id,
                MigrationState::Created,
                operator::Ask::new(Operation::Start, false),
                &by,
            )?)
        })
        .await?;
    }
    // The state the start committed (`analyzing`), not a later one the driver may have
    // reached meanwhile: the answer of a fresh delivery does not depend on timing.
    let started = state.drivers.attach(&m.id, Attach::Start, &starter).await?;
    tracing::info!(migration = %m.id, hook = %name, timestamp, "created and started by a webhook");
    Ok(accepted(&m.id.to_string(), started))
}

/// 202 `{id, state}` with the migration's `Location`: `state` is the one the start committed,
/// or for an idempotency key seen before the migration's state now.
fn accepted(id: &str, state: MigrationState) -> Response {
    let mut headers = HeaderMap::new();
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/migrations/{id}")) {
        headers.insert(header::LOCATION, location);
    }
    (
        StatusCode::ACCEPTED,
        headers,
        Json(json!({ "id": id, "state": state })),
    )
        .into_response()
}

/// `application/json` (with parameters such as `charset`), else 415.
fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let kind = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = kind.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/json") {
        return Ok(());
    }
    Err(ApiError::UnsupportedMediaType(format!(
        "webhooks take `Content-Type: application/json`, not `{kind}`"
    )))
}

/// The trigger's key from the server's environment: unset or empty is a server fault (500).
fn secret(name: &str, trigger: &Trigger) -> Result<Vec<u8>, ApiError> {
    match std::env::var_os(&trigger.secret_env) {
        Some(v) if !v.is_empty() => Ok(v.into_encoded_bytes()),
        _ => Err(ApiError::Internal(format!(
            "hook `{name}` cannot verify signatures: the environment variable {} (its secret_env) is not set on the server",
            trigger.secret_env
        ))),
    }
}

/// The delivery's timestamp and signature, once both are in their one form
/// ([`sign`]'s module doc) and sign the body; 401 otherwise, saying which check failed.
fn authenticate(
    headers: &HeaderMap,
    key: &[u8],
    body: &[u8],
) -> Result<(i64, Signature), ApiError> {
    let (Some(ts), Some(signature)) = (
        headers.get(sign::TIMESTAMP_HEADER),
        headers.get(sign::SIGNATURE_HEADER),
    ) else {
        return Err(ApiError::Unauthorized(format!(
            "unsigned: a webhook needs the headers {} and {}",
            sign::TIMESTAMP_HEADER,
            sign::SIGNATURE_HEADER
        )));
    };
    // Bytes that are not text are reported as U+FFFD by the form checks, which refuse them.
    let text = |v: &HeaderValue| String::from_utf8_lossy(v.as_bytes()).into_owned();
    let (ts, signature) = (text(ts), text(signature));
    let form = |e: sign::FormError| ApiError::Unauthorized(e.to_string());
    let timestamp = sign::parse_timestamp(&ts).map_err(form)?;
    let signature = Signature::parse(&signature).map_err(form)?;
    if !signature.verifies(key, &ts, body) {
        return Err(ApiError::Unauthorized(format!(
            "the signature does not match: {} must be sha256=<hex HMAC-SHA256 of \"<timestamp>.<raw body>\"> with the hook's secret, <timestamp> being the {} header as sent",
            sign::SIGNATURE_HEADER,
            sign::TIMESTAMP_HEADER
        )));
    }
    let off = Utc::now().timestamp().saturating_sub(timestamp);
    if off.abs() > TOLERANCE_SECS {
        return Err(ApiError::Unauthorized(format!(
            "the timestamp is {}s {} the server's clock; at most {TOLERANCE_SECS}s are allowed",
            off.abs(),
            if off > 0 { "behind" } else { "ahead of" }
        )));
    }
    Ok((timestamp, signature))
}

/// The `Idempotency-Key` header, if any: printable ASCII, at most [`MAX_KEY`] characters.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    match v.to_str() {
        Ok(k) if !k.trim().is_empty() && k.len() <= MAX_KEY => Ok(Some(k.trim().to_owned())),
        _ => Err(ApiError::BadRequest(format!(
            "Idempotency-Key must be 1 to {MAX_KEY} printable ASCII characters"
        ))),
    }
}

/// The trigger's `params` rendered with `payload` = the body; 422 naming a param that fails.
fn render_params(trigger: &Trigger, payload: &Value) -> Result<Map<String, Value>, ApiError> {
    let values = Values::new(json!({ "payload": payload }));
    let mut out = Map::new();
    for (name, template) in &trigger.params {
        let value = template.render(&RENDERER, &values).map_err(|e| {
            ApiError::unprocessable(
                format!("trigger param `{name}` cannot be rendered from the payload: {e}"),
                json!({ "param": name }),
            )
        })?;
        out.insert(name.clone(), value);
    }
    Ok(out)
}
