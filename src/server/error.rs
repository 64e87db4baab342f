//! Every API error, mapped to an RFC 9457 problem document (`application/problem+json`) in
//! one place (DESIGN habit 7). Client mistakes (4xx) are logged at debug level; only server
//! faults (5xx) are logged as errors. Responses that axum or tower-http produce themselves
//! (405, 413 from the body limit) are rewritten into problem documents by [`problems`].

use crate::engine::EngineError;
use crate::engine::operation::Refused;
use crate::event::{MigrationState, Operation};
use crate::operator::{DecideError, Inadmissible, MovedOn};
use crate::store::{LeaseError, StoreError};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value as Json, json};

pub const PROBLEM_JSON: &str = "application/problem+json";

/// An API failure: what the client did wrong, or what went wrong here.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    /// An operation the lifecycle does not allow now.
    #[error("{detail}")]
    IllegalTransition {
        detail: String,
        state: MigrationState,
        allowed: Vec<MigrationState>,
        operations: Vec<Operation>,
    },
    /// Another conflict with the current state: a gate not open, another process driving.
    #[error("{0}")]
    Conflict(String),
    /// A body of the wrong content type (webhooks take `application/json` only).
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("the request body is larger than the limit of {0} bytes")]
    TooLarge(usize),
    /// Params that do not fit the runbook, an unknown or invalid runbook.
    #[error("{detail}")]
    Unprocessable {
        detail: String,
        extra: Map<String, Json>,
    },
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::IllegalTransition { .. } | ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The problem type: a stable URN per kind of problem, documented in docs/api.md.
    fn kind(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad-request",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not-found",
            ApiError::MethodNotAllowed(_) => "method-not-allowed",
            ApiError::IllegalTransition { .. } => "illegal-transition",
            ApiError::Conflict(_) => "conflict",
            ApiError::TooLarge(_) => "too-large",
            ApiError::UnsupportedMediaType(_) => "unsupported-media-type",
            ApiError::Unprocessable { .. } => "unprocessable",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    pub fn unprocessable(detail: impl Into<String>, extra: Json) -> ApiError {
        ApiError::Unprocessable {
            detail: detail.into(),
            extra: match extra {
                Json::Object(map) => map,
                _ => Map::new(),
            },
        }
    }

    /// The problem document.
    pub fn body(&self) -> Json {
        let status = self.status();
        let mut doc = json!({
            "type": format!("urn:sensei:problem:{}", self.kind()),
            "title": status.canonical_reason().unwrap_or("Error"),
            "status": status.as_u16(),
            "detail": self.to_string(),
        });
        let Some(obj) = doc.as_object_mut() else {
            return doc;
        };
        match self {
            ApiError::IllegalTransition {
                state,
                allowed,
                operations,
                ..
            } => {
                obj.insert("state".into(), json!(state));
                obj.insert("allowed".into(), json!(allowed));
                obj.insert("operations".into(), json!(operations));
            }
            ApiError::Unprocessable { extra, .. } => {
                obj.extend(extra.clone());
            }
            _ => {}
        }
        doc
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), "{self}");
        } else {
            tracing::debug!(status = status.as_u16(), "{self}");
        }
        let mut response = (status, self.body().to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"sensei\""),
            );
        }
        response
    }
}

impl From<Refused> for ApiError {
    fn from(refused: Refused) -> Self {
        ApiError::IllegalTransition {
            detail: refused.to_string(),
            state: refused.state,
            allowed: refused.allowed_transitions().to_vec(),
            operations: refused.possible(),
        }
    }
}

impl From<Inadmissible> for ApiError {
    fn from(e: Inadmissible) -> Self {
        match e {
            Inadmissible::Refused(refused) => refused.into(),
            driven @ Inadmissible::Driven { .. } => ApiError::Conflict(driven.to_string()),
        }
    }
}

impl From<MovedOn> for ApiError {
    fn from(moved_on: MovedOn) -> Self {
        ApiError::IllegalTransition {
            detail: moved_on.to_string(),
            state: moved_on.refused.state,
            allowed: moved_on.refused.allowed_transitions().to_vec(),
            operations: moved_on.refused.possible(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(_) => ApiError::NotFound(e.to_string()),
            StoreError::StateChanged { .. } => ApiError::Conflict(e.to_string()),
            StoreError::Busy | StoreError::Closed => ApiError::Unavailable(e.to_string()),
            _ => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Refused(refused) => refused.into(),
            EngineError::Illegal(illegal) => ApiError::IllegalTransition {
                detail: illegal.to_string(),
                state: illegal.from,
                allowed: illegal.allowed().to_vec(),
                operations: crate::engine::operation::possible(illegal.from),
            },
            EngineError::Lease(e @ LeaseError::Held { .. }) => ApiError::Conflict(e.to_string()),
            e @ EngineError::Orphan(_) => ApiError::Conflict(e.to_string()),
            EngineError::Lease(LeaseError::Store(e)) | EngineError::Store(e) => e.into(),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<DecideError> for ApiError {
    fn from(e: DecideError) -> Self {
        use crate::engine::gate::GateRefusal;
        match e {
            DecideError::NoStep { .. } | DecideError::NotAGate { .. } => {
                ApiError::NotFound(e.to_string())
            }
            DecideError::Refused(
                GateRefusal::Starter { .. }
                | GateRefusal::NotApprover { .. }
                | GateRefusal::Role { .. },
            ) => ApiError::Forbidden(e.to_string()),
            DecideError::Store(s) | DecideError::Gate(crate::store::GateError::Store(s)) => {
                s.into()
            }
            _ => ApiError::Conflict(e.to_string()),
        }
    }
}

/// The configured request body limit, in bytes.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// Rewrites error responses that did not come from [`ApiError`] (a 405 of the router, a 413
/// of the body limit) into problem documents, keeping their headers (`Allow`).
pub async fn problems(State(limit): State<BodyLimit>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| {
            // The console's pages say what went wrong in their own HTML.
            v.as_bytes().starts_with(PROBLEM_JSON.as_bytes())
                || v.as_bytes().starts_with(b"text/html")
        });
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return response;
    }
    let error = match status {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge(limit.0),
        StatusCode::METHOD_NOT_ALLOWED => {
            ApiError::MethodNotAllowed("this method is not allowed on this path".into())
        }
        StatusCode::NOT_FOUND => ApiError::NotFound("no such path".into()),
        s => {
            // The handlers' extractors answer problems themselves; should another part answer
            // a plain error, its text still says why.
            let (parts, body) = response.into_parts();
            let text = axum::body::to_bytes(body, PLAIN_DETAIL_LIMIT)
                .await
                .ok()
                .and_then(|b| String::from_utf8(b.to_vec()).ok())
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| s.canonical_reason().unwrap_or("error").to_owned());
            let error = if s.is_client_error() {
                ApiError::BadRequest(text)
            } else {
                ApiError::Internal(text)
            };
            return rewrite(parts, error);
        }
    };
    let (parts, _) = response.into_parts();
    rewrite(parts, error)
}

/// The longest plain error text kept as a problem's detail.
const PLAIN_DETAIL_LIMIT: usize = 4096;

/// `error` as the body of a response with `parts`' headers (`Allow` kept).
fn rewrite(mut parts: axum::http::response::Parts, error: ApiError) -> Response {
    let fresh = error.into_response();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    Response::from_parts(parts, fresh.into_body())
}

/// A body the extractor refused: over the limit (413) or unreadable (400).
pub fn body_rejection(e: axum::extract::rejection::BytesRejection, limit: usize) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::TooLarge(limit)
    } else {
        ApiError::BadRequest(format!("the request body could not be read: {e}"))
    }
}
