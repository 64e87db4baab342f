//! Operator decisions on a migration another process may be driving: `approve`, `reject`,
//! `pause`, `cancel` and `rollback`. A driven migration gets a request event that its driver
//! acts on; an undriven one is handled here, in the foreground.

use super::client::Client;
use super::drive::{self, IdArgs};
use super::local::{self, Local};
use super::{error, exit};
use crate::engine::{Attach, operation};
use crate::event::{Decision, MigrationId, MigrationState, Operation};
use crate::operator::{self, DecideError, Done, Requester};
use crate::store::Store;
use serde_json::json;
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct CancelArgs {
    #[command(flatten)]
    pub(super) id: IdArgs,
    /// First roll back the steps that succeeded (their `rollback` commands, dependents
    /// first), then cancel. Without it, what they changed stays changed.
    #[arg(long)]
    pub(super) rollback: bool,
}

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

/// The line of a gate decision, from the API's answer (the local path builds the same).
pub(super) fn say_decided(doc: &serde_json::Value) {
    let text = |key: &str| doc[key].as_str().unwrap_or_default().to_owned();
    sayln!(
        "gate {} of {}: {} by {} ({} of {} approvals; gate {})",
        text("gate"),
        text("migration"),
        text("decision"),
        text("by"),
        doc["approvals"],
        doc["required"],
        text("status")
    );
}

/// `sensei approve|reject ID GATE`.
pub fn decide(args: &DecideArgs, decision: Decision) -> u8 {
    if let Some(client) = Client::from_local(&args.local) {
        let verb = match decision {
            Decision::Approve => "approve",
            Decision::Reject => "reject",
        };
        return match client {
            Ok(client) => {
                super::client::decide(&client, &args.id, &args.gate, verb, args.comment.as_deref())
            }
            Err(code) => code,
        };
    }
    let store = match args.local.open_existing() {
        Ok(s) => s,
        Err(code) => return code,
    };
    let migration = match local::find(&store, &args.id) {
        Ok(m) => m,
        Err(code) => return code,
    };
    let who = args.local.identity();
    let by = Requester {
        who: &who,
        local: true,
        comment: args.comment.as_deref(),
    };
    match operator::decide(&store, &migration, &args.gate, decision, &by) {
        Ok(outcome) => {
            say_decided(&json!({
                "migration": migration.id,
                "gate": args.gate,
                "decision": decision,
                "by": who,
                "status": outcome.status,
                "approvals": outcome.approvals,
                "required": outcome.required,
            }));
            exit::OK
        }
        Err(e @ DecideError::NoStep { .. }) => {
            error(format!(
                "{e}; `sensei status {}` lists its steps",
                migration.id
            ));
            exit::USAGE
        }
        Err(e) if e.is_unknown_name() => {
            error(e);
            exit::USAGE
        }
        Err(e) if e.is_fault() => {
            error(e);
            exit::FAILED
        }
        Err(e) => {
            error(e);
            exit::REFUSED
        }
    }
}

/// `sensei pause|cancel|rollback ID` (`rollback`: a cancel's `--rollback`).
pub fn operate(args: &IdArgs, op: Operation, rollback: bool) -> u8 {
    if let Some(client) = Client::from_local(&args.local) {
        let body = if rollback {
            json!({ "rollback": true })
        } else {
            json!({})
        };
        return match client {
            Ok(client) => super::client::operate(&client, &args.id, op.as_str(), body),
            Err(code) => code,
        };
    }
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
    let how = operator::attach_for(op, rollback);
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
    operator::done(&events, op).map(|done| match done {
        Done::RolledBack { ok: false } => exit::FAILED,
        _ => exit::OK,
    })
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
    let who = local.identity();
    let by = Requester {
        who: &who,
        local: true,
        comment: None,
    };
    let rollback = how == Attach::CancelRollback;
    let asked = match operator::request(store, id, state, op, rollback, &by) {
        Ok(seq) => seq,
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
                (Operation::Cancel, _) => {
                    sayln!("migration {id} cancelled{}", drive::cancel_note(store, id))
                }
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
