//! Operator decisions on a migration another process may be driving: `approve`, `reject`,
//! `pause`, `cancel` and `rollback`. A driven migration gets a request event that its driver
//! acts on; an undriven one is handled here, in the foreground.

use super::drive::{self, IdArgs};
use super::local::{self, Local};
use super::{error, exit};
use crate::engine::{Attach, gate, operation};
use crate::event::{Decision, EventKind, MigrationId, MigrationState, NewEvent, Operation};
use crate::store::{Batch, GateError, GateVote, Store};
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
        Ok(None) => {
            error(format!(
                "migration {} has no gate `{}` waiting for a decision; `sensei status {}` shows its steps",
                migration.id, args.gate, migration.id
            ));
            return exit::REFUSED;
        }
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
    };
    match store.decide_gate(&migration.id, vote) {
        Ok(outcome) => {
            outln!(
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
        return drive::drive(&store, &migration.id, &args.local, how);
    }
    request(
        &store,
        &migration.id,
        migration.state,
        op,
        &args.local.identity(),
    )
}

/// Asks the driving process to carry out an operation, then waits (bounded) to see it done.
fn request(store: &Store, id: &MigrationId, state: MigrationState, op: Operation, who: &str) -> u8 {
    let batch = Batch {
        expect_state: Some(state),
        events: vec![NewEvent::new(
            EventKind::OperatorRequest,
            json!({ "op": op, "by": who, "local": true }),
        )],
        ..Batch::default()
    };
    if let Err(e) = store.commit(id, batch) {
        error(e);
        return exit::REFUSED;
    }
    let done = |s: MigrationState| match op {
        Operation::Pause => s == MigrationState::Paused,
        Operation::Cancel => s == MigrationState::Cancelled,
        _ => s == MigrationState::Failed,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let state = store.migration(id).ok().flatten().map(|m| m.state);
        if let Some(state) = state.filter(|&s| done(s)) {
            outln!("migration {id} {state}");
            return exit::OK;
        }
        if Instant::now() > deadline {
            outln!(
                "{op} of {id} requested; its driver has not finished it yet (`sensei status {id}` shows progress)"
            );
            return exit::OK;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
