//! What an operator does to a migration from outside its driver, shared by the CLI and the
//! server so both follow the same rules with the same words: ask a driven migration for a
//! lifecycle operation (an `operator_request` event its driver carries out), see whether it
//! was carried out, and decide a gate (the rules of [`crate::engine::gate`], then the store's
//! atomic vote).

use crate::engine::Attach;
use crate::engine::gate::{self, GateRefusal};
use crate::event::{Decision, Event, EventKind, MigrationId, MigrationState, NewEvent, Operation};
use crate::runbook::model::Action;
use crate::store::{Batch, GateError, GateOutcome, GateVote, Migration, Store, StoreError};
use chrono::Utc;
use serde_json::{Value as Json, json};

/// How a driver attaches to carry out `op` itself (no other process drives the migration);
/// `rollback` is a cancel's `--rollback`.
pub fn attach_for(op: Operation, rollback: bool) -> Attach {
    match op {
        Operation::Start => Attach::Start,
        Operation::Resume => Attach::Resume(None),
        Operation::Retry => Attach::Retry,
        Operation::Pause => Attach::Pause,
        Operation::Cancel if rollback => Attach::CancelRollback,
        Operation::Cancel => Attach::Cancel,
        Operation::Rollback => Attach::Rollback,
    }
}

/// Who asks for something, as the audit trail records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requester<'a> {
    pub who: &'a str,
    /// An unauthenticated identity (the CLI's `--as`, a server without tokens).
    pub local: bool,
    pub comment: Option<&'a str>,
}

/// Records an `operator_request` for `op`, committed only while the migration is still in
/// `state`; returns the event's seq. A driving process carries pause, cancel and rollback
/// out; for the other operations the event is the audit record of who asked. `rollback`
/// (a cancel's `--rollback`) asks to roll back what succeeded before cancelling.
pub fn request(
    store: &Store,
    id: &MigrationId,
    state: MigrationState,
    op: Operation,
    rollback: bool,
    by: &Requester<'_>,
) -> Result<i64, StoreError> {
    let mut data = json!({ "op": op, "by": by.who, "local": by.local });
    if let Some(obj) = data.as_object_mut() {
        if let Some(comment) = by.comment {
            obj.insert("comment".into(), Json::String(comment.to_owned()));
        }
        if rollback && op == Operation::Cancel {
            obj.insert("rollback".into(), Json::Bool(true));
        }
    }
    let batch = Batch {
        expect_state: Some(state),
        events: vec![NewEvent::new(EventKind::OperatorRequest, data)],
        ..Batch::default()
    };
    let committed = store.commit(id, batch)?;
    Ok(committed.seqs.first().copied().unwrap_or(0))
}

/// How a pause, cancel or rollback ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Done {
    Paused,
    Cancelled,
    /// `ok` is false when a rollback action failed and the rollback stopped there.
    RolledBack {
        ok: bool,
    },
}

/// Whether `op` was carried out by the events after seq `after`: a pause or cancel when the
/// migration became paused or cancelled, a rollback when it finished.
pub fn done(events: &[Event], op: Operation) -> Option<Done> {
    match op {
        Operation::Rollback => events
            .iter()
            .find(|e| e.kind == EventKind::RollbackFinished)
            .map(|e| Done::RolledBack {
                ok: e.data.get("ok") != Some(&Json::Bool(false)),
            }),
        Operation::Pause | Operation::Cancel => {
            let (target, done) = if op == Operation::Pause {
                (MigrationState::Paused, Done::Paused)
            } else {
                (MigrationState::Cancelled, Done::Cancelled)
            };
            events
                .iter()
                .any(|e| {
                    e.kind == EventKind::StateChanged
                        && e.data.get("to").and_then(|t| t.as_str()) == Some(target.as_str())
                })
                .then_some(done)
        }
        _ => None,
    }
}

/// A gate decision that was not recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecideError {
    #[error("migration {migration} has no step `{step}`")]
    NoStep {
        migration: MigrationId,
        step: String,
    },
    #[error(
        "step `{step}` of migration {migration} is not a gate; only gates are approved or rejected"
    )]
    NotAGate {
        migration: MigrationId,
        step: String,
    },
    #[error(
        "gate `{step}` of migration {migration} is not waiting for a decision: the migration has not reached it (its step is {step_state})"
    )]
    NotReached {
        migration: MigrationId,
        step: String,
        step_state: String,
    },
    #[error(transparent)]
    Refused(#[from] GateRefusal),
    #[error(transparent)]
    Gate(#[from] GateError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl DecideError {
    /// The caller named something that does not exist or is not a gate (a usage error),
    /// rather than a decision the rules refuse.
    pub fn is_unknown_name(&self) -> bool {
        matches!(
            self,
            DecideError::NoStep { .. } | DecideError::NotAGate { .. }
        )
    }

    /// A store failure rather than a refusal.
    pub fn is_fault(&self) -> bool {
        matches!(
            self,
            DecideError::Store(_) | DecideError::Gate(GateError::Store(_))
        )
    }
}

/// Decides gate `step` of `migration` as `by`: the gate rules (approver list, not the
/// starter, open), then the store records the vote atomically.
pub fn decide(
    store: &Store,
    migration: &Migration,
    step: &str,
    decision: Decision,
    by: &Requester<'_>,
) -> Result<GateOutcome, DecideError> {
    let Some(info) = store.gate(&migration.id, step)? else {
        return Err(no_gate(store, migration, step)?);
    };
    gate::may_decide(migration, &info, by.who)?;
    let vote = GateVote {
        step: step.to_owned(),
        who: by.who.to_owned(),
        decision,
        comment: by.comment.map(str::to_owned),
        digest: migration.digest.clone(),
        local: by.local,
        at: Utc::now(),
        alerts: gate_alerts(migration, step),
    };
    Ok(store.decide_gate(&migration.id, vote)?)
}

/// The alert deliveries of the `gate_decided` event a vote commits (by the runbook's rules).
fn gate_alerts(migration: &Migration, gate: &str) -> Vec<crate::store::NewDelivery> {
    let Some(runbook) =
        crate::runbook::load_bytes(&migration.runbook_path, migration.runbook_text.as_bytes())
            .runbook
    else {
        return Vec::new();
    };
    let event = NewEvent::for_step(EventKind::GateDecided, gate, json!({}));
    crate::alert::rules::route(&runbook.alerts, migration.state, &[event])
}

/// Why a gate has nothing to decide yet: the migration has no such step, the step is not a
/// gate, or the migration has not reached it.
fn no_gate(store: &Store, migration: &Migration, step: &str) -> Result<DecideError, StoreError> {
    let id = migration.id.clone();
    let row = store.steps(&id)?.into_iter().find(|r| r.step == step);
    let Some(row) = row else {
        return Ok(DecideError::NoStep {
            migration: id,
            step: step.to_owned(),
        });
    };
    let base = step.split('[').next().unwrap_or(step);
    let is_gate =
        crate::runbook::load_bytes(&migration.runbook_path, migration.runbook_text.as_bytes())
            .runbook
            .and_then(|rb| rb.step(base).map(|s| matches!(s.action, Action::Gate(_))))
            .unwrap_or(true);
    Ok(if is_gate {
        DecideError::NotReached {
            migration: id,
            step: step.to_owned(),
            step_state: row.state.as_str().to_owned(),
        }
    } else {
        DecideError::NotAGate {
            migration: id,
            step: step.to_owned(),
        }
    })
}
