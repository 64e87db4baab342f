//! The web console, served under `/` beside the API (`/v1`): plain HTML pages, one style
//! sheet and a little JavaScript, all compiled into the binary. The pages read the same views
//! as the API (`view.rs`) and the same event stream; no business rule lives in a page — every
//! action is an API call, refused or allowed by the API, and its refusal shown as it is.
//!
//! - `session`: sign-in with a bearer token, cookie sessions, the CSRF and origin rules;
//! - `html`: the page shell, escaping, the sign-in and runbooks pages;
//! - `data`: what the migration pages embed (the plan's phases and waves) and the list rows;
//! - `windows`: a migration's windows in words, on the server's clock;
//! - `controls`: the lifecycle buttons a migration offers now, each with its confirmation.
//!
//! Every page is sent with a Content-Security-Policy allowing only this server, so the pages
//! cannot load or send anything elsewhere.

mod controls;
mod data;
mod html;
pub mod session;
mod windows;

use super::AppState;
use super::error::ApiError;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use session::Identity;

/// The console's own paths (not part of the API, so not in [`super::ROUTES`]).
pub const PATHS: &[(&str, &str)] = &[
    ("GET", "/"),
    ("GET", "/migrations/{id}"),
    ("GET", "/runbooks"),
    ("GET", "/signin"),
    ("POST", "/signin"),
    ("POST", "/signout"),
    ("GET", "/assets/{file}"),
    ("GET", "/console/migrations"),
    ("GET", "/console/migrations/{id}/windows"),
    ("GET", "/console/migrations/{id}/controls"),
];

/// The compiled-in assets: name, content type, bytes.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "console.css",
        "text/css; charset=utf-8",
        include_str!("assets/console.css"),
    ),
    (
        "common.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/common.js"),
    ),
    (
        "list.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/list.js"),
    ),
    (
        "migration.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/migration.js"),
    ),
    (
        "dag.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/dag.js"),
    ),
    (
        "windows.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/windows.js"),
    ),
    (
        "lifecycle.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/lifecycle.js"),
    ),
];

/// Only this server: scripts, styles, connections, forms.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(migrations_page))
        .route("/migrations/{id}", get(migration_page))
        .route("/runbooks", get(runbooks_page))
        .route("/signin", get(signin_form).post(signin))
        .route("/signout", post(signout))
        .route("/assets/{file}", get(asset))
        .route("/console/migrations", get(migration_rows))
        .route("/console/migrations/{id}/windows", get(migration_windows))
        .route("/console/migrations/{id}/controls", get(migration_controls))
}

/// The caller of a page; `None` sends them to the sign-in form.
fn visitor(state: &AppState, headers: &HeaderMap) -> Option<Identity> {
    session::identify(&state.tokens, &state.sessions, &Method::GET, headers).ok()
}

fn to_signin() -> Response {
    Redirect::to("/signin").into_response()
}

/// A page with the headers every page gets.
fn page(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Not `no-referrer`: with it, browsers send `Origin: null` on the page's own form posts.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

async fn migrations_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(who) = visitor(&state, &headers) else {
        return to_signin();
    };
    let runbooks = state.runbooks.names();
    page(StatusCode::OK, html::migrations(&who, &state, &runbooks))
}

async fn migration_page(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(who) = visitor(&state, &headers) else {
        return to_signin();
    };
    let m = match super::routes::load(&state, &id) {
        Ok(m) => m,
        Err(e) => {
            let text = format!("<p class=\"problem\">{}</p>", html::escape(&e.to_string()));
            return page(
                e.status(),
                html::shell("Not found", &who, &state, &text, &[]),
            );
        }
    };
    // The plan of a large runbook takes a while to build: off the async workers.
    let now = state.drivers.now();
    let built = tokio::task::spawn_blocking(move || {
        let runbook = data::runbook_of(&m);
        let doc = data::migration(&m, &who, &runbook, now);
        let windows = windows_html(&runbook, now);
        (m, who, doc, windows)
    })
    .await;
    match built {
        Ok((m, who, doc, windows)) => page(
            StatusCode::OK,
            html::migration(&who, &state, &m, &doc, &windows, now),
        ),
        Err(e) => ApiError::Internal(format!("the page could not be built: {e}")).into_response(),
    }
}

/// The windows section, or why the runbook cannot say.
fn windows_html(
    runbook: &Result<crate::runbook::model::Runbook, String>,
    now: chrono::DateTime<chrono::Utc>,
) -> String {
    match runbook {
        Ok(r) => windows::section(r, now),
        Err(why) => format!(
            "<p class=\"problem\">The windows cannot be shown: {}</p>",
            html::escape(why)
        ),
    }
}

/// `GET /console/migrations/{id}/windows`: the windows section again, with the server's
/// time, for `windows.js` once a window's state changed.
async fn migration_windows(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(e) = session::identify(&state.tokens, &state.sessions, &Method::GET, &headers) {
        return e.into_response();
    }
    let now = state.drivers.now();
    let answer = super::routes::blocking(move || {
        let m = super::routes::load(&state, &id)?;
        let html = windows_html(&data::runbook_of(&m), now);
        Ok(serde_json::json!({ "now": now, "html": html }))
    })
    .await;
    match answer {
        Ok(body) => axum::Json(body).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `GET /console/migrations/{id}/controls`: the lifecycle buttons the migration offers now,
/// for operators and admins (403 for others, as the operations themselves).
async fn migration_controls(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let who = match session::identify(&state.tokens, &state.sessions, &Method::GET, &headers) {
        Ok(who) => who,
        Err(e) => return e.into_response(),
    };
    let may = who
        .caller
        .roles
        .iter()
        .any(|r| r.grants(super::auth::Permission::Operate));
    if !may {
        return ApiError::Forbidden(format!(
            "{} may not operate migrations: that needs the operator or admin role",
            who.caller.name
        ))
        .into_response();
    }
    let answer = super::routes::blocking(move || {
        let m = super::routes::load(&state, &id)?;
        let rows = state.store.steps(&m.id)?;
        let runbook = data::runbook_of(&m).ok();
        Ok(controls::controls(&m, &rows, runbook.as_ref()))
    })
    .await;
    match answer {
        Ok(list) => axum::Json(list).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn runbooks_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(who) = visitor(&state, &headers) else {
        return to_signin();
    };
    let runbooks = state.runbooks.clone();
    let now = state.drivers.now();
    let body = tokio::task::spawn_blocking(move || data::runbooks(&runbooks, now))
        .await
        .unwrap_or_default();
    page(StatusCode::OK, html::runbooks(&who, &state, &body))
}

async fn signin_form(State(state): State<AppState>) -> Response {
    if state.tokens.is_empty() {
        return Redirect::to("/").into_response();
    }
    page(StatusCode::OK, html::signin(None))
}

/// `POST /signin` with the form field `token`: a session cookie and the way to `/`.
async fn signin(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(e) = session::same_origin(&headers) {
        return page(e.status(), html::signin(Some(&e.to_string())));
    }
    let token = form_field(&body, "token").unwrap_or_default();
    let header = format!("Bearer {}", token.trim());
    let caller = match state.tokens.authenticate(Some(header.as_bytes())) {
        Ok(caller) => caller,
        Err(e) => return page(e.status(), html::signin(Some(&e.to_string()))),
    };
    let (id, _) = match state.sessions.open(caller) {
        Ok(opened) => opened,
        Err(e) => return e.into_response(),
    };
    let mut response = Redirect::to("/").into_response();
    if let Ok(cookie) = HeaderValue::from_str(&session::set_cookie(&id)) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// `POST /signout`: forgets the session.
async fn signout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(e) = session::same_origin(&headers) {
        return e.into_response();
    }
    if let Some(id) = session::cookie_id(&headers) {
        state.sessions.close(&id);
    }
    let mut response = Redirect::to("/signin").into_response();
    if let Ok(cookie) = HeaderValue::from_str(&session::clear_cookie()) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, kind, text)) => (
            [
                (header::CONTENT_TYPE, *kind),
                (header::CACHE_CONTROL, "no-cache"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            *text,
        )
            .into_response(),
        None => ApiError::NotFound(format!("no console asset {file}")).into_response(),
    }
}

/// `GET /console/migrations`: the list page's rows (the API's list, with times and progress).
async fn migration_rows(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(e) = session::identify(&state.tokens, &state.sessions, &Method::GET, &headers) {
        return e.into_response();
    }
    let store = state.store.clone();
    match super::routes::blocking(move || data::rows(&store)).await {
        Ok(rows) => axum::Json(rows).into_response(),
        Err(e) => e.into_response(),
    }
}

/// A field of an `application/x-www-form-urlencoded` body.
fn form_field(body: &[u8], name: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| {
            let v = v.replace('+', " ");
            percent_encoding::percent_decode_str(&v)
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}
