//! Operator decisions on a migration another process may be driving: `approve`, `reject`,
//! `pause`, `cancel` and `rollback`. A driven migration gets a request event that its driver
//! acts on; an undriven one is handled here, in the foreground.

use super::drive::{self, IdArgs};
use super::local::{self, Local};
use super::{error, exit};
use crate::engine::{Attach, gate, operation};
use crate::event::{Decision, EventKind, MigrationId, MigrationState, NewEvent, Operation};
use crate::runbook::model::Action;
use crate::store::{Batch, GateError, GateVote, Migration, Store};
use chrono::Utc;
use serde_json::json;
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct DecideArgs {
    /// The migration id (or a unique prefix, or `latest`).
    id: String,
    /// The gate step.
    gate: String,
    /// Why; recorded in the audit trail.
    #[arg(long, short = 'm')]
    comment: Option<String>,
    #[command(flatten)]
    local: Local,
}

/// `sensei approve|reject ID GATE`.
pub fn decide(args: &DecideArgs, decision: Decision) -> u8 {
    let store = match args.local.open_existing() {
        Ok(s) => s,
        Err(code) => return code,
    };
    let migration = match local::find(&store, &args.id) {
        Ok(m) => m,
        Err(code) => return code,
    };
    let info = match store.gate(&migration.id, &args.gate) {
        Ok(Some(info)) => info,
        Ok(None) => return no_gate(&store, &migration, &args.gate),
        Err(e) => {
            error(e);
            return exit::FAILED;
        }
    };
    let who = args.local.identity();
    if let Err(refusal) = gate::may_decide(&migration, &info, &who) {
        error(refusal);
        return exit::REFUSED;
    }
    let vote = GateVote {
        step: args.gate.clone(),
        who: who.clone(),
        decision,
        comment: args.comment.clone(),
        digest: migration.digest.clone(),
        local: true,
        at: Utc::now(),
        alerts: gate_alerts(&migration, &args.gate),
    };
    match store.decide_gate(&migration.id, vote) {
        Ok(outcome) => {
            sayln!(
                "gate {} of {}: {} by {who} ({} of {} approvals; gate {})",
                args.gate,
                migration.id,
                decision,
                outcome.approvals,
                outcome.required,
                outcome.status.as_str()
            );
            exit::OK
        }
        Err(e @ (GateError::NotOpen { .. } | GateError::AlreadyVoted { .. })) => {
            error(e);
            exit::REFUSED
        }
        Err(e) => {
            error(e);
            exit::FAILED
        }
    }
}

/// The alert deliveries of the `gate_decided` event a vote commits.
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

/// Why a gate has nothing to decide yet: the migration has no such step, or the step is not
/// a gate (usage errors, like any unknown name), or the migration has not reached the gate
/// (refused: it may be decided later).
fn no_gate(store: &Store, migration: &Migration, gate: &str) -> u8 {
    let id = &migration.id;
    let row = store
        .steps(id)
        .ok()
        .and_then(|rows| rows.into_iter().find(|r| r.step == gate));
    let Some(row) = row else {
        error(format!(
            "migration {id} has no step `{gate}`; `sensei status {id}` lists its steps"
        ));
        return exit::USAGE;
    };
    let base = gate.split('[').next().unwrap_or(gate);
    let is_gate =
        crate::runbook::load_bytes(&migration.runbook_path, migration.runbook_text.as_bytes())
            .runbook
            .and_then(|rb| rb.step(base).map(|s| matches!(s.action, Action::Gate(_))))
            .unwrap_or(true);
    if !is_gate {
        error(format!(
            "step `{gate}` of migration {id} is not a gate; only gates are approved or rejected"
        ));
        return exit::USAGE;
    }
    error(format!(
        "gate `{gate}` of migration {id} is not waiting for a decision: the migration has not reached it (its step is {})",
        row.state.as_str()
    ));
    exit::REFUSED
}

/// `sensei pause|cancel|rollback ID`.
pub fn operate(args: &IdArgs, op: Operation) -> u8 {
    let store = match args.local.open_existing() {
        Ok(s) => s,
        Err(code) => return code,
    };
    let migration = match local::find(&store, &args.id) {
        Ok(m) => m,
        Err(code) => return code,
    };
    if let Err(refused) = operation::path(op, migration.state) {
        error(refused);
        return exit::REFUSED;
    }
    let driven = match store.driver(&migration.id) {
        Ok(d) => d,
        Err(e) => {
            error(e);
            return exit::FAILED;
        }
    };
    let how = match op {
        Operation::Pause => Attach::Pause,
        Operation::Cancel => Attach::Cancel,
        _ => Attach::Rollback,
    };
    if driven.is_none() {
        return carry_out(
            &store,
            &migration.id,
            op,
            &args.local,
            how,
            migration.last_seq,
        );
    }
    request(&store, &migration.id, migration.state, op, &args.local, how)
}

/// Carries an operation out in this process (no other drives the migration). Exit 0 when it
/// was done — the migration paused, cancelled, or rolled back — whatever state that is.
fn carry_out(
    store: &Store,
    id: &MigrationId,
    op: Operation,
    local: &Local,
    how: Attach,
    after: i64,
) -> u8 {
    let code = drive::drive(store, id, local, how);
    done(store, id, op, after).unwrap_or(code)
}

/// Whether `op` was carried out by events after seq `after`, and with what exit code: a pause
/// or cancel when the migration became paused or cancelled, a rollback when it finished (1
/// when a rollback action failed).
fn done(store: &Store, id: &MigrationId, op: Operation, after: i64) -> Option<u8> {
    let events = store.events(id, after).ok()?;
    let field = |e: &crate::event::Event, name: &str| e.data.get(name).cloned();
    match op {
        Operation::Rollback => events
            .iter()
            .find(|e| e.kind == EventKind::RollbackFinished)
            .map(|e| match field(e, "ok") {
                Some(serde_json::Value::Bool(false)) => exit::FAILED,
                _ => exit::OK,
            }),
        _ => {
            let target = if op == Operation::Pause {
                MigrationState::Paused
            } else {
                MigrationState::Cancelled
            };
            events
                .iter()
                .any(|e| {
                    e.kind == EventKind::StateChanged
                        && field(e, "to").as_ref().and_then(|t| t.as_str()) == Some(target.as_str())
                })
                .then_some(exit::OK)
        }
    }
}

/// Asks the driving process to carry out an operation, then waits (bounded) to see it done.
/// The driver may never act on it: it can move the migration on first (the execute phase
/// ends, a rollback runs) so that the operation is no longer possible, or stop driving.
/// The first is a refusal, said at once; in the second case this process carries it out.
fn request(
    store: &Store,
    id: &MigrationId,
    state: MigrationState,
    op: Operation,
    local: &Local,
    how: Attach,
) -> u8 {
    let batch = Batch {
        expect_state: Some(state),
        events: vec![NewEvent::new(
            EventKind::OperatorRequest,
            json!({ "op": op, "by": local.identity(), "local": true }),
        )],
        ..Batch::default()
    };
    let asked = match store.commit(id, batch) {
        Ok(committed) => committed.seqs.first().copied().unwrap_or(0),
        Err(e) => {
            error(e);
            return exit::REFUSED;
        }
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        // The state first, then the events: a state read before the events cannot be newer
        // than what the events show.
        let now = store.migration(id).ok().flatten().map(|m| m.state);
        if let Some(code) = done(store, id, op, asked) {
            match (op, code) {
                (Operation::Pause, _) => sayln!("migration {id} paused"),
                (Operation::Cancel, _) => sayln!("migration {id} cancelled"),
                (_, exit::OK) => sayln!("migration {id} rolled back; it is failed"),
                _ => sayln!(
                    "migration {id}: a rollback action failed, so the rollback stopped (`sensei events {id}` shows where)"
                ),
            }
            return code;
        }
        if let Some(Err(refused)) = now.map(|s| operation::path(op, s)) {
            error(format!(
                "{refused} — its driver moved the migration on before acting on the {op} request"
            ));
            return exit::REFUSED;
        }
        if store.driver(id).is_ok_and(|d| d.is_none()) {
            return carry_out(store, id, op, local, how, asked);
        }
        if Instant::now() > deadline {
            sayln!(
                "{op} of {id} requested; its driver has not finished it yet (`sensei status {id}` shows progress)"
            );
            return exit::OK;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
