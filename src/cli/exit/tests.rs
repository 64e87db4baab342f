//! The CLI's exit codes agree with the API: an error of each kind exits locally with the
//! code a client of the server gets for the status the API answers it with.

use super::*;
use crate::engine::gate::GateRefusal;
use crate::engine::lifecycle::IllegalTransition;
use crate::event::MigrationState::{Completed, Failed, Paused, Running};
use crate::event::{MigrationId, Operation};
use crate::server::error::ApiError;
use crate::store::LeaseHolder;
use chrono::Utc;

fn id() -> MigrationId {
    MigrationId::from("m1".to_owned())
}

fn store_errors() -> Vec<StoreError> {
    vec![
        StoreError::NotFound("m9".into()),
        StoreError::Exists(id()),
        StoreError::StateChanged {
            expected: Running,
            found: Paused,
        },
        StoreError::Busy,
        StoreError::Corrupt("a bad row".into()),
        StoreError::Database("disk I/O error".into()),
        StoreError::Closed,
        StoreError::Fenced("taken over".into()),
    ]
}

fn held() -> LeaseError {
    LeaseError::Held {
        migration: id(),
        holder: LeaseHolder {
            pid: 7,
            host: "h".into(),
            since: Utc::now(),
            expires_at: Utc::now(),
        },
    }
}

/// The code a client of the server exits with for the API's answer to `e`.
fn through_server(e: impl Into<ApiError>) -> u8 {
    of_status(e.into().status().as_u16())
}

#[test]
fn store_errors_exit_as_the_api_answers_them() {
    for e in store_errors() {
        assert_eq!(e.code(), through_server(e.clone()), "{e:?}");
    }
}

#[test]
fn engine_errors_exit_as_the_api_answers_them() {
    let mut errors = vec![
        EngineError::Refused(Refused {
            op: Operation::Pause,
            state: Completed,
        }),
        EngineError::Illegal(IllegalTransition {
            from: Completed,
            to: Running,
        }),
        EngineError::Lease(held()),
        EngineError::Lease(LeaseError::Lost {
            migration: id(),
            holder: None,
        }),
        EngineError::Runbook {
            id: "m1".into(),
            reason: "gone".into(),
        },
        EngineError::Env("bad".into()),
        EngineError::Internal("oops".into()),
    ];
    errors.extend(store_errors().into_iter().map(EngineError::Store));
    errors.extend(
        store_errors()
            .into_iter()
            .map(|e| EngineError::Lease(LeaseError::Store(e))),
    );
    for e in errors {
        let code = e.code();
        assert_eq!(code, through_server(e), "{code}");
    }
}

#[test]
fn gate_decisions_exit_as_the_api_answers_them() {
    let mut errors = vec![
        DecideError::NoStep {
            migration: id(),
            step: "x".into(),
        },
        DecideError::NotAGate {
            migration: id(),
            step: "x".into(),
        },
        DecideError::NotReached {
            migration: id(),
            step: "g".into(),
            step_state: "pending".into(),
        },
        DecideError::Refused(GateRefusal::Starter {
            who: "a".into(),
            migration: "m1".into(),
            gate: "g".into(),
            approvers: Vec::new(),
        }),
        DecideError::Refused(GateRefusal::NotApprover {
            who: "a".into(),
            gate: "g".into(),
            approvers: vec!["b".into()],
        }),
        DecideError::Refused(GateRefusal::Closed {
            gate: "g".into(),
            status: "approved".into(),
        }),
        DecideError::Gate(GateError::AlreadyVoted {
            step: "g".into(),
            who: "a".into(),
        }),
        DecideError::Gate(GateError::NotOpen {
            step: "g".into(),
            status: None,
        }),
    ];
    errors.extend(store_errors().into_iter().map(DecideError::Store));
    errors.extend(
        store_errors()
            .into_iter()
            .map(|e| DecideError::Gate(GateError::Store(e))),
    );
    for e in errors {
        assert_eq!(e.code(), through_server(e.clone()), "{e:?}");
    }
}

#[test]
fn refusals_exit_as_the_api_answers_them() {
    let refused = Refused {
        op: Operation::Cancel,
        state: Failed,
    };
    assert_eq!(refused.code(), through_server(refused.clone()));
    let moved_on = MovedOn { refused };
    assert_eq!(moved_on.code(), REFUSED);
    assert_eq!(moved_on.code(), through_server(moved_on));
}

#[test]
fn an_unusable_state_directory_is_a_usage_error() {
    // The server opens its store once, at start (`sensei serve` then fails, exit 1); a
    // command that names a state directory it cannot use was given the wrong one.
    let path = std::path::PathBuf::from("/nowhere/.sensei");
    for e in [
        StoreError::StateDir {
            path: path.clone(),
            reason: "read-only".into(),
        },
        StoreError::Open {
            path: path.clone(),
            reason: "not a database".into(),
        },
        StoreError::NewerSchema {
            path,
            found: 99,
            known: 1,
        },
        StoreError::Ambiguous {
            prefix: "m".into(),
            total: 2,
            matches: vec![id()],
        },
    ] {
        assert_eq!(e.code(), USAGE, "{e:?}");
    }
}

#[test]
fn outcomes_of_operations() {
    assert_eq!(of_done(Done::Paused), OK);
    assert_eq!(of_done(Done::Cancelled), OK);
    assert_eq!(of_done(Done::RolledBack { ok: true }), OK);
    assert_eq!(of_done(Done::RolledBack { ok: false }), FAILED);
}
