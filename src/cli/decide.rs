//! Operator decisions on a migration another process may be driving: `approve`, `reject`,
//! `pause`, `cancel` and `rollback`. A driven migration gets a request event that its driver
//! acts on, followed by the operator protocol the server follows too
//! ([`crate::operator::protocol`]); an undriven one is handled here, in the foreground, after
//! the same request is recorded (with the operator's `--comment`). Only the waiting (polling,
//! blocking) and the attaching (driving in the foreground) are this module's.

use super::client::Client;
use super::drive::{self, IdArgs};
use super::error;
use super::exit::{self, Code};
use super::local::{self, Local};
use crate::engine::{Attach, operation};
use crate::event::{Decision, MigrationId, Operation};
use crate::operator::{self, Ask, DecideError, Done, Progress, Requester};
use crate::store::{Migration, Store};
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
    /// With --rollback: also undo the steps before a point of no return that succeeded
    /// (admin only through a server).
    #[arg(long, requires = "rollback")]
    pub(super) past_point_of_no_return: bool,
}

#[derive(Debug, clap::Args)]
pub struct RollbackArgs {
    #[command(flatten)]
    pub(super) id: IdArgs,
    /// Also undo the steps before a point of no return that succeeded; without it, a
    /// rollback stops there (admin only through a server).
    #[arg(long)]
    pub(super) past_point_of_no_return: bool,
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
        roles: None,
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
            e.code()
        }
        Err(e) => exit::fail(&e),
    }
}

/// `sensei pause|cancel|rollback ID [-m TEXT]`, as `ask` says (a cancel's `--rollback`, a
/// rollback's `--past-point-of-no-return`).
pub fn operate(args: &IdArgs, ask: Ask) -> u8 {
    let (op, rollback) = (ask.op, ask.rollback);
    if let Some(client) = Client::from_local(&args.local) {
        let mut body = super::client::comment_body(args.comment.as_deref());
        if rollback {
            body["rollback"] = true.into();
        }
        if ask.past_point_of_no_return {
            body["past_point_of_no_return"] = true.into();
        }
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
        return exit::fail(&refused);
    }
    let driven = match store.driver(&migration.id) {
        Ok(d) => d.is_some(),
        Err(e) => return exit::fail(&e),
    };
    let comment = args.comment.as_deref();
    if driven && ask.for_driver() {
        return request(&store, &migration, &args.local, ask, comment);
    }
    match record(&store, &migration, ask, &args.local, comment) {
        Ok(after) => carry_out(&store, &migration.id, ask, &args.local, ask.attach(), after),
        Err(code) => code,
    }
}

/// Records the operator's request before this process carries the operation out itself, as
/// the server does for the same call: the audit trail of who asked what, and why. Returns the
/// seq its effect follows. An operation not admitted now is not recorded: the driver refuses
/// it as before, naming the driving process or what is possible.
pub(super) fn record(
    store: &Store,
    migration: &Migration,
    ask: Ask,
    local: &Local,
    comment: Option<&str>,
) -> Result<i64, u8> {
    let driven = store.driver(&migration.id).map_err(|e| exit::fail(&e))?;
    if operator::admit(ask, &migration.id, migration.state, driven.is_some()).is_err() {
        return Ok(migration.last_seq);
    }
    let who = local.identity();
    let by = Requester {
        who: &who,
        local: true,
        comment,
        roles: None,
    };
    operator::request(store, &migration.id, migration.state, ask, &by).map_err(|e| exit::fail(&e))
}

/// Carries an operation out in this process (no other drives the migration), attaching as
/// `how`. Exit 0 when it was done — the migration paused, cancelled, or rolled back —
/// whatever state that is; else the drive's code.
fn carry_out(
    store: &Store,
    id: &MigrationId,
    ask: Ask,
    local: &Local,
    how: Attach,
    after: i64,
) -> u8 {
    let code = drive::drive(store, id, local, how);
    done(store, id, ask, after).map_or(code, exit::of_done)
}

/// Whether the operation was carried out by events after seq `after`.
fn done(store: &Store, id: &MigrationId, ask: Ask, after: i64) -> Option<Done> {
    let events = store.events(id, after).ok()?;
    operator::done(&events, ask.op)
}

/// Asks the driving process to carry out an operation, then follows it (bounded, polling)
/// by the operator protocol ([`operator::progress`]): done; refused, said at once, when the
/// driver moved the migration on first; carried out here when the driver stopped without
/// acting.
fn request(
    store: &Store,
    migration: &Migration,
    local: &Local,
    ask: Ask,
    comment: Option<&str>,
) -> u8 {
    let id = &migration.id;
    let who = local.identity();
    let by = Requester {
        who: &who,
        local: true,
        comment,
        roles: None,
    };
    let asked = match operator::request(store, id, migration.state, ask, &by) {
        Ok(seq) => seq,
        Err(e) => return exit::fail(&e),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        // A look that fails is taken again at the next poll.
        let progress = operator::observe(store, id, asked)
            .map_or(Progress::Wait, |seen| operator::progress(ask, &seen, false));
        match progress {
            Progress::Done(done) => {
                say_done(store, id, ask.op, done);
                return exit::of_done(done);
            }
            Progress::Refused(moved_on) => return exit::fail(&moved_on),
            Progress::TakeOver(how) => return carry_out(store, id, ask, local, how, asked),
            Progress::Wait => {}
        }
        if Instant::now() > deadline {
            sayln!(
                "{} of {id} requested; its driver has not finished it yet (`sensei status {id}` shows progress)",
                ask.op
            );
            return exit::OK;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The line of an operation its driver carried out.
fn say_done(store: &Store, id: &MigrationId, op: Operation, done: Done) {
    match done {
        Done::Paused => sayln!("migration {id} paused"),
        Done::Cancelled => sayln!("migration {id} cancelled{}", drive::cancel_note(store, id)),
        Done::RolledBack { ok: true } => sayln!("migration {id} rolled back; it is failed"),
        Done::RolledBack { ok: false } => sayln!(
            "migration {id}: a rollback action failed, so the rollback stopped (`sensei events {id}` shows where)"
        ),
        Done::Attached => sayln!("migration {id}: a driver attached for the {op}"),
    }
}
