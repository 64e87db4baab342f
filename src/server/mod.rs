//! `sensei serve`: the REST API of SPEC §6 over the same library calls as the CLI.
//!
//! - [`app`] builds the router from an [`AppState`] (testable without a socket); [`serve`]
//!   binds, resumes what a previous run left, serves until SIGTERM or SIGINT, and stops every
//!   background task it started.
//! - `config`: the configuration file and flags; `auth`: bearer tokens and roles;
//!   `error`: one `ApiError` mapped to problem documents; `extract`: path, query and body
//!   read into values, each refusal a 400 naming the parameter; `state`: what handlers share and the
//!   store's change feed; `runbooks`: the runbooks directory, reloaded on change; `drivers`:
//!   the migrations this server drives; `scheduler`: the runbooks' `schedules`, fired on the
//!   server's clock; `metrics`: Prometheus text; `routes`: the handlers; `console`: the web
//!   console under `/` and its cookie sessions (see docs/console.md).

pub mod auth;
pub mod config;
pub mod console;
mod drivers;
pub mod error;
mod extract;
mod metrics;
mod routes;
mod runbooks;
mod scheduler;
mod state;

pub use drivers::Drivers;
pub use runbooks::Runbooks;
pub use state::AppState;

use crate::engine::clock::Clock;
use crate::store::{Durability, Store};
use auth::Caller;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use config::Settings;
use error::{ApiError, BodyLimit};
use std::sync::Arc;
use std::time::Duration;
use tower_http::limit::RequestBodyLimitLayer;

/// Every route, as `(method, path)`: the OpenAPI document in docs/ is checked against it.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/v1/health"),
    ("GET", "/v1/ready"),
    ("GET", "/metrics"),
    ("GET", "/v1/migrations"),
    ("POST", "/v1/migrations"),
    ("GET", "/v1/migrations/{id}"),
    ("DELETE", "/v1/migrations/{id}"),
    ("GET", "/v1/migrations/{id}/status"),
    ("POST", "/v1/migrations/{id}/start"),
    ("POST", "/v1/migrations/{id}/pause"),
    ("POST", "/v1/migrations/{id}/resume"),
    ("POST", "/v1/migrations/{id}/retry"),
    ("POST", "/v1/migrations/{id}/rollback"),
    ("POST", "/v1/migrations/{id}/gates/{step}/approve"),
    ("POST", "/v1/migrations/{id}/gates/{step}/reject"),
    ("GET", "/v1/migrations/{id}/events"),
    ("GET", "/v1/migrations/{id}/steps/{step}/logs"),
    ("GET", "/v1/migrations/{id}/alerts"),
    ("GET", "/v1/alerts"),
    ("GET", "/v1/runbooks"),
    ("POST", "/v1/runbooks/validate"),
    ("POST", "/v1/hooks/{name}"),
];

/// The router: every route of [`ROUTES`], authenticated (except the probes `/healthz`,
/// `/v1/health` and `/v1/ready`, and the webhooks
/// whose signature is their authentication), counted in the
/// metrics, bodies limited, every error a problem document.
pub fn app(state: AppState) -> Router {
    use routes::{alerts, events, hooks, lifecycle, migrations, system};
    let api = Router::new()
        .route("/metrics", get(system::metrics))
        .route(
            "/v1/migrations",
            get(migrations::list).post(migrations::create),
        )
        .route(
            "/v1/migrations/{id}",
            get(migrations::detail).delete(lifecycle::cancel),
        )
        .route("/v1/migrations/{id}/status", get(migrations::status))
        .route("/v1/migrations/{id}/start", post(lifecycle::start))
        .route("/v1/migrations/{id}/pause", post(lifecycle::pause))
        .route("/v1/migrations/{id}/resume", post(lifecycle::resume))
        .route("/v1/migrations/{id}/retry", post(lifecycle::retry))
        .route("/v1/migrations/{id}/rollback", post(lifecycle::rollback))
        .route(
            "/v1/migrations/{id}/gates/{step}/approve",
            post(lifecycle::approve),
        )
        .route(
            "/v1/migrations/{id}/gates/{step}/reject",
            post(lifecycle::reject),
        )
        .route("/v1/migrations/{id}/events", get(events::events))
        .route(
            "/v1/migrations/{id}/steps/{step}/logs",
            get(migrations::logs),
        )
        .route("/v1/migrations/{id}/alerts", get(alerts::of_migration))
        .route("/v1/alerts", get(alerts::all))
        .route("/v1/runbooks", get(system::runbooks))
        .route("/v1/runbooks/validate", post(system::validate))
        .route_layer(RequestBodyLimitLayer::new(state.body_limit))
        .route_layer(middleware::from_fn_with_state(state.clone(), authenticate));
    let signed = Router::new()
        .route("/v1/hooks/{name}", post(hooks::receive))
        .route_layer(RequestBodyLimitLayer::new(state.body_limit));
    Router::new()
        .route("/healthz", get(system::healthz))
        .route("/v1/health", get(system::health))
        .route("/v1/ready", get(system::ready))
        .merge(api)
        .merge(signed)
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .merge(console::router())
        .fallback(unknown_path)
        .layer(DefaultBodyLimit::max(state.body_limit))
        .layer(middleware::from_fn_with_state(
            BodyLimit(state.body_limit),
            error::problems,
        ))
        .with_state(state)
}

/// Names the caller (401 when the token or session is missing or unknown; 403 for a
/// cross-site write) for the handlers' role checks.
async fn authenticate(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let identity = console::session::identify(
        &state.tokens,
        &state.sessions,
        request.method(),
        request.headers(),
    );
    match identity {
        Ok(identity) => {
            request.extensions_mut().insert::<Caller>(identity.caller);
            next.run(request).await
        }
        Err(e) => e.into_response(),
    }
}

async fn unknown_path(State(state): State<AppState>, request: Request) -> ApiError {
    state
        .metrics
        .record(request.method().as_str(), "unmatched", 404, 0.0);
    ApiError::NotFound(format!("no such path: {}", request.uri().path()))
}

/// Why the server could not start or stopped badly.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("the runbooks directory {0} does not exist")]
    Runbooks(String),
    #[error("cannot listen on {addr}: {reason}")]
    Bind { addr: String, reason: String },
    #[error("alert delivery cannot start: {0}")]
    Alerts(String),
    #[error("the server failed: {0}")]
    Io(#[from] std::io::Error),
}

/// How long in-flight requests get to finish after a stop signal.
const GRACE: Duration = Duration::from_secs(10);

/// Runs the server until SIGTERM or SIGINT (or `stop` resolves).
pub async fn serve(
    settings: Settings,
    clock: Arc<dyn Clock>,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    if settings.runbooks_named && !settings.runbooks.is_dir() {
        return Err(ServeError::Runbooks(
            settings.runbooks.display().to_string(),
        ));
    }
    if !settings.runbooks.is_dir() {
        tracing::warn!(
            "the runbooks directory {} does not exist; no runbooks until it does",
            settings.runbooks.display()
        );
    }
    let settings_grace = settings.shutdown_grace;
    let location = settings.store.clone();
    let store = tokio::task::spawn_blocking(move || Store::connect(&location, Durability::Full))
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))??;
    let deliverer = crate::alert::Deliverer::new(store.clone(), &settings.config)
        .map_err(ServeError::Alerts)?;
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|e| ServeError::Bind {
            addr: settings.listen.to_string(),
            reason: e.to_string(),
        })?;
    let dir = settings.runbooks.clone();
    let step_env = settings.config.step_env.clone();
    let runbooks = Arc::new(
        tokio::task::spawn_blocking(move || Runbooks::load(&dir, step_env))
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?,
    );
    let drivers = Arc::new(Drivers::new(
        store.clone(),
        clock.clone(),
        drivers::spawn_reaper(),
        settings.config.inherited_env(),
        settings.lease_time,
    ));
    let state = AppState::new(
        store.clone(),
        runbooks,
        drivers.clone(),
        settings.tokens,
        settings.body_limit,
    );
    let mut background = tokio::task::JoinSet::new();
    background.spawn(state::watch_runbooks(state.clone()));
    // Alerts are delivered beside the drivers, from the outbox their commits fill; what is
    // still pending at a stop is delivered after the next start.
    background.spawn({
        let stop = state.shutdown.subscribe();
        async move { deliverer.run(stop, report_alert).await }
    });
    let resumed = drivers.resume_all().await;
    // On a shared store, migrations whose driver dies later (another server killed, or
    // paused past its lease) are taken over by whichever live server looks first. On SQLite
    // a killed local driver's migration waits for `sensei resume` or the next start, as
    // before.
    if store.is_shared() {
        background.spawn({
            let (drivers, stop) = (drivers.clone(), state.shutdown.subscribe());
            async move { drivers.watch(stop).await }
        });
    }
    // After the resume, so a resumed scheduled migration counts as active for `overlap`.
    background.spawn(scheduler::run(state.clone(), clock));
    tracing::info!(
        "sensei serve listening on http://{} (state {}, runbooks {}, {} token(s), {resumed} migration(s) resumed)",
        listener.local_addr().unwrap_or(settings.listen),
        settings.store,
        settings.runbooks.display(),
        state.tokens.len(),
    );
    let shutdown = state.shutdown.clone();
    let signalled = {
        let shutdown = shutdown.clone();
        async move {
            tokio::select! {
                () = stop => {}
                () = signal() => {}
            }
            tracing::info!("stopping: no new requests; open event streams end");
            shutdown.trigger();
        }
    };
    let server = axum::serve(listener, app(state)).with_graceful_shutdown(signalled);
    let served = tokio::select! {
        result = server => result,
        () = async { shutdown.wait().await; tokio::time::sleep(GRACE).await } => {
            tracing::warn!("requests still open after {GRACE:?}; stopping anyway");
            Ok(())
        }
    };
    shutdown.trigger();
    while background.join_next().await.is_some() {}
    drivers.shutdown(settings_grace).await;
    let _ = tokio::task::spawn_blocking(move || store.flush()).await;
    tracing::info!("stopped");
    Ok(served?)
}

/// Logs an alert that failed for good, or failed a first time and will be retried.
fn report_alert(attempt: &crate::alert::Attempt) {
    use crate::store::AttemptOutcome;
    let d = &attempt.delivery;
    let error = attempt.error.as_deref().unwrap_or("unknown error");
    match attempt.outcome {
        AttemptOutcome::Delivered => {}
        AttemptOutcome::Failed => tracing::warn!(
            migration = %d.migration,
            "alert `{}` to channel `{}` could not be delivered: {error}",
            d.event,
            d.channel
        ),
        AttemptOutcome::Retry if d.attempts == 0 => tracing::warn!(
            migration = %d.migration,
            "alert `{}` to channel `{}` not delivered yet, retrying: {error}",
            d.event,
            d.channel
        ),
        AttemptOutcome::Retry => {}
    }
}

/// SIGTERM or SIGINT.
async fn signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            tracing::warn!("cannot listen for SIGTERM/SIGINT; stop the server with SIGKILL");
            std::future::pending::<()>().await
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    /// The router without a socket: a store in a temporary directory, one token.
    fn router(dir: &std::path::Path) -> Router {
        let store = Store::open(&dir.join("state")).unwrap();
        let specs = vec![config::TokenSpec {
            name: "ops".into(),
            roles: vec![auth::Role::Operator],
            sha256: None,
            token_env: Some("T".into()),
        }];
        let tokens = auth::Tokens::from_specs(&specs, |_| Some("secret".into())).unwrap();
        let clock: Arc<dyn Clock> = Arc::new(crate::engine::clock::SystemClock);
        let drivers = Arc::new(Drivers::new(
            store.clone(),
            clock,
            None,
            crate::process::Inherited::from_process(&[]),
            crate::config::DEFAULT_LEASE_TIME,
        ));
        let runbooks = Arc::new(Runbooks::load(&dir.join("runbooks"), Default::default()));
        app(AppState::new(store, runbooks, drivers, tokens, 1024))
    }

    async fn call(
        router: Router,
        method: &str,
        uri: &str,
        token: Option<&str>,
    ) -> (StatusCode, String, String) {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            request = request.header("authorization", format!("Bearer {t}"));
        }
        let response = router
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let kind = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap_or_default().to_owned())
            .unwrap_or_default();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, kind, String::from_utf8_lossy(&bytes).into_owned())
    }

    #[tokio::test]
    async fn the_router_answers_without_a_socket() {
        let dir = tempfile::tempdir().unwrap();
        let r = router(dir.path());
        let (status, _, body) = call(r.clone(), "GET", "/healthz", None).await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::OK, r#"{"status":"ok"}"#)
        );
        // The probes need no token: a load balancer has none.
        let (status, _, body) = call(r.clone(), "GET", "/v1/health", None).await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::OK, r#"{"status":"ok"}"#)
        );
        let (status, _, body) = call(r.clone(), "GET", "/v1/ready", None).await;
        let ready: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(status, StatusCode::OK);
        assert_eq!(ready["status"], "ready");
        assert_eq!(ready["store"], "ok");
        assert_eq!(ready["shared_store"], false);
        assert_eq!(ready["migrations_owned"], 0);
        let (status, kind, _) = call(r.clone(), "GET", "/v1/migrations", None).await;
        assert_eq!(
            (status, kind.as_str()),
            (StatusCode::UNAUTHORIZED, error::PROBLEM_JSON)
        );
        let (status, _, body) = call(r.clone(), "GET", "/v1/migrations", Some("secret")).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "[]"));
        let (status, kind, body) = call(r, "PATCH", "/v1/migrations", Some("secret")).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(kind, error::PROBLEM_JSON, "{body}");
    }
}
