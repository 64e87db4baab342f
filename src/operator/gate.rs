//! Gate decisions from outside the driver: the rules of [`crate::engine::gate`] (approver
//! list, not the starter, open), then the store's atomic vote. The driver applies the
//! decision when it sees the committed `gate_decided` event.

use super::Requester;
use crate::engine::gate::{self, GateRefusal};
use crate::event::{Decision, MigrationId};
use crate::runbook::model::Action;
use crate::store::{GateError, GateOutcome, GateVote, Migration, Store, StoreError};
use chrono::Utc;

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
    let decider = gate::Decider {
        who: by.who,
        roles: by.roles,
    };
    gate::may_decide(migration, &info, decider, &gate_roles(migration, step))?;
    let vote = GateVote {
        step: step.to_owned(),
        who: by.who.to_owned(),
        decision,
        comment: by.comment.map(str::to_owned),
        digest: migration.digest.clone(),
        local: by.local,
        at: Utc::now(),
    };
    Ok(store.decide_gate(&migration.id, vote)?)
}

/// The roles the runbook asks a decider of gate `step` to hold.
fn gate_roles(migration: &Migration, step: &str) -> Vec<String> {
    let base = crate::plan::base_step(step);
    migration
        .load_runbook()
        .runbook
        .and_then(|rb| match &rb.step(base)?.action {
            Action::Gate(g) => Some(g.roles.clone()),
            _ => None,
        })
        .unwrap_or_default()
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
    let base = crate::plan::base_step(step);
    let is_gate = migration
        .load_runbook()
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
