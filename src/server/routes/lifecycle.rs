//! Lifecycle operations and gate decisions.
//!
//! Each operation is first judged by the lifecycle ([`operator::admit`]; 409 with the
//! allowed transitions when illegal), then follows the operator protocol of
//! [`crate::operator::protocol`], which the CLI follows too: recorded as an `operator_request`
//! event (who, what, when, comment: the audit trail); a migration another driver holds gets
//! the request and its driver carries pause, cancel or rollback out, otherwise this server
//! attaches a driver of its own; then it is followed until its effect shows (refused if the
//! driver moved the migration on first, taken over if the driver stopped without acting).
//! Only the waiting (the store's change notifications) and the attaching (a background
//! driver) are this module's. The answer is 200 with the status once the operation has
//! taken effect, or 202 when it is still under way after a short wait.

use super::{AppState, blocking, body, load};
use crate::engine::{Attach, Interrupted};
use crate::event::{Decision, MigrationId, Operation};
use crate::operator::{self, Ask, Progress, Requester};
use crate::server::auth::{Approver, Caller, Operator, Permission};
use crate::server::error::ApiError;
use crate::server::extract::{Segments, present};
use crate::view;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::time::Instant;

/// How long an operation call waits to see its effect before answering 202.
const EFFECT_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpBody {
    /// Recorded with the request in the audit trail.
    #[serde(default, deserialize_with = "present")]
    comment: Option<String>,
    /// Resume only: what to do with steps a crash interrupted.
    #[serde(default, deserialize_with = "present")]
    interrupted: Option<Choice>,
    /// Cancel only: roll back the steps that succeeded, then cancel.
    #[serde(default, deserialize_with = "present")]
    rollback: Option<bool>,
    /// Rollback, or cancel with `rollback`: also undo the steps before a point of no return
    /// that succeeded. Admin only.
    #[serde(default, deserialize_with = "present")]
    past_point_of_no_return: Option<bool>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Choice {
    Retry,
    Skip,
}

type Answer = Result<(StatusCode, Json<Value>), ApiError>;

macro_rules! operation_handler {
    ($name:ident, $op:expr, $doc:literal) => {
        #[doc = $doc]
        pub async fn $name(
            State(state): State<AppState>,
            Operator(caller): Operator,
            Segments(id): Segments<String>,
            bytes: Result<Bytes, BytesRejection>,
        ) -> Answer {
            let body: OpBody = body(&state, bytes)?;
            operate(&state, $op, &id, &caller, body).await
        }
    };
}

operation_handler!(start, Operation::Start, "`POST /v1/migrations/{id}/start`.");
operation_handler!(pause, Operation::Pause, "`POST /v1/migrations/{id}/pause`.");
operation_handler!(
    resume,
    Operation::Resume,
    "`POST /v1/migrations/{id}/resume`."
);
operation_handler!(retry, Operation::Retry, "`POST /v1/migrations/{id}/retry`.");
operation_handler!(
    rollback,
    Operation::Rollback,
    "`POST /v1/migrations/{id}/rollback`."
);
operation_handler!(
    cancel,
    Operation::Cancel,
    "`DELETE /v1/migrations/{id}`: cancel."
);

async fn operate(
    state: &AppState,
    op: Operation,
    id: &str,
    caller: &Caller,
    body: OpBody,
) -> Answer {
    if body.interrupted.is_some() && op != Operation::Resume {
        return Err(ApiError::BadRequest(format!(
            "the request body's field `interrupted` is only for resume (`POST /v1/migrations/{{id}}/resume`), where it says what to do with steps a crash interrupted; leave it out of {op}"
        )));
    }
    if body.rollback.is_some() && op != Operation::Cancel {
        return Err(ApiError::BadRequest(
            "the request body's field `rollback` is only for cancel (`DELETE /v1/migrations/{id}`); to roll back and end failed, use `POST /v1/migrations/{id}/rollback`".into(),
        ));
    }
    let past = body.past_point_of_no_return == Some(true);
    let ask = Ask::new(op, body.rollback == Some(true)).past_point_of_no_return(past);
    if body.past_point_of_no_return.is_some() && !ask.rolls_back() {
        return Err(ApiError::BadRequest(
            "the request body's field `past_point_of_no_return` is only for a rollback (`POST /v1/migrations/{id}/rollback`) or a cancel with `\"rollback\": true`".into(),
        ));
    }
    if past {
        caller.require(Permission::Administer)?;
    }
    let m = load(state, id)?;
    let driven = state.store.driver(&m.id)?.is_some();
    operator::admit(ask, &m.id, m.state, driven)?;
    let asked = {
        let (store, mid, from) = (state.store.clone(), m.id.clone(), m.state);
        let (who, local, comment) = (caller.name.clone(), !caller.authenticated, body.comment);
        blocking(move || {
            let by = Requester {
                who: &who,
                local,
                comment: comment.as_deref(),
                roles: None,
            };
            Ok(operator::request(&store, &mid, from, ask, &by)?)
        })
        .await?
    };
    // The driver carries pause, cancel and rollback out; otherwise this server attaches one.
    let attach_here = !(driven && ask.for_driver());
    if attach_here {
        let how = match (op, body.interrupted) {
            (Operation::Resume, Some(Choice::Retry)) => Attach::Resume(Some(Interrupted::Retry)),
            (Operation::Resume, Some(Choice::Skip)) => Attach::Resume(Some(Interrupted::Skip)),
            _ => ask.attach(),
        };
        state.drivers.attach(&m.id, how, &caller.name).await?;
    }
    let took_effect = wait_for_effect(state, &m.id, ask, asked, &caller.name, attach_here).await?;
    let status = if took_effect {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    let m = load(state, id)?;
    let steps = state.store.steps(&m.id)?;
    let driver = state.store.driver(&m.id)?;
    let eta = crate::eta::Estimate::of(&state.store, &m, &steps, chrono::Utc::now());
    Ok((
        status,
        Json(view::status(&m, &steps, driver.as_ref(), &eta)),
    ))
}

/// Follows the request of seq `asked` (bounded) by the operator protocol
/// ([`operator::progress`]), waiting on the store's change notifications between looks:
/// true once it took effect, false when still under way at the deadline. `took_over`: this
/// server already attached a driver for it.
async fn wait_for_effect(
    state: &AppState,
    id: &MigrationId,
    ask: Ask,
    asked: i64,
    who: &str,
    mut took_over: bool,
) -> Result<bool, ApiError> {
    let deadline = Instant::now() + EFFECT_WAIT;
    let mut changes = state.store.changes();
    loop {
        let seen = operator::observe(&state.store, id, asked)?;
        match operator::progress(ask, &seen, took_over) {
            Progress::Done(_) => return Ok(true),
            Progress::Refused(moved_on) => return Err(moved_on.into()),
            Progress::TakeOver(how) => {
                // The driver stopped without acting on the request: carry it out here.
                took_over = true;
                state.drivers.attach(id, how, who).await?;
                continue;
            }
            Progress::Wait => {}
        }
        tokio::select! {
            changed = changes.changed() => {
                if changed.is_err() {
                    return Ok(false);
                }
            }
            () = tokio::time::sleep_until(deadline) => return Ok(false),
            () = state.shutdown.wait() => return Ok(false),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecideBody {
    #[serde(default, deserialize_with = "present")]
    comment: Option<String>,
}

/// `POST /v1/migrations/{id}/gates/{step}/approve`.
pub async fn approve(
    state: State<AppState>,
    caller: Approver,
    path: Segments<(String, String)>,
    bytes: Result<Bytes, BytesRejection>,
) -> Answer {
    decide(state, caller, path, bytes, Decision::Approve).await
}

/// `POST /v1/migrations/{id}/gates/{step}/reject`.
pub async fn reject(
    state: State<AppState>,
    caller: Approver,
    path: Segments<(String, String)>,
    bytes: Result<Bytes, BytesRejection>,
) -> Answer {
    decide(state, caller, path, bytes, Decision::Reject).await
}

/// The gate rules of the CLI (approver list, not the starter, open), by the caller's name.
async fn decide(
    State(state): State<AppState>,
    Approver(caller): Approver,
    Segments((id, step)): Segments<(String, String)>,
    bytes: Result<Bytes, BytesRejection>,
    decision: Decision,
) -> Answer {
    let body: DecideBody = body(&state, bytes)?;
    let m = load(&state, &id)?;
    let store = state.store.clone();
    let (who, local) = (caller.name.clone(), !caller.authenticated);
    let roles: Option<Vec<String>> = caller
        .authenticated
        .then(|| caller.roles.iter().map(|r| r.as_str().to_owned()).collect());
    let gate = step.clone();
    let outcome = blocking(move || {
        let by = Requester {
            who: &who,
            local,
            comment: body.comment.as_deref(),
            roles: roles.as_deref(),
        };
        Ok(operator::decide(&store, &m, &gate, decision, &by)?)
    })
    .await?;
    tracing::info!(migration = %id, gate = %step, by = %caller.name, "{decision}");
    Ok((
        StatusCode::OK,
        Json(json!({
            "migration": id,
            "gate": step,
            "decision": decision,
            "by": caller.name,
            "status": outcome.status,
            "approvals": outcome.approvals,
            "required": outcome.required,
            "seq": outcome.event_seq,
        })),
    ))
}
