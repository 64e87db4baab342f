//! The operator protocol, owned here for the CLI and the server alike. A lifecycle operation
//! on a migration is first *admitted* ([`admit`]: the lifecycle allows it now), then
//! *recorded* ([`request`]: an `operator_request` event with the operator's comment, the audit
//! trail of who asked what and, for pause, cancel and rollback, what a driving process acts
//! on), then *followed* until its effect shows in the events after it. Two things can keep
//! the effect from ever showing, and both are decided here too: the driver moved the
//! migration on before acting (the operation is no longer possible: a refusal, [`MovedOn`]),
//! or the driver stopped without acting (no live process holds the lease: the caller takes
//! the migration over and carries the operation out itself).
//!
//! [`progress`] is that decision, a pure function of what the caller [`observe`]d; it reads
//! nothing and waits for nothing. The CLI (`cli::decide`) polls, blocking, and drives a
//! migration it takes over in the foreground; the server (`server::routes::lifecycle`) waits
//! on the store's change notifications and attaches a driver in the background. That is all
//! they do differently.

use super::Requester;
use crate::engine::Attach;
use crate::engine::operation::{self, Refused};
use crate::event::{
    Event, EventKind, MigrationId, MigrationState, NewEvent, Operation, OperatorRequest,
    RollbackFinished, StateChanged,
};
use crate::store::{Batch, Store, StoreError};

/// An operation as an operator asked for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ask {
    pub op: Operation,
    /// A cancel's `--rollback`: roll back what succeeded, then cancel.
    pub rollback: bool,
    /// The rollback may undo steps before a point of no return that succeeded (an admin's
    /// `--past-point-of-no-return`).
    pub past_point_of_no_return: bool,
}

impl Ask {
    /// `op`, with `rollback` kept only for a cancel (no other operation has it).
    pub fn new(op: Operation, rollback: bool) -> Ask {
        Ask {
            op,
            rollback: rollback && op == Operation::Cancel,
            past_point_of_no_return: false,
        }
    }

    /// The same, crossing points of no return if `past` (only a rollback, or a cancel's
    /// `--rollback`, has it).
    pub fn past_point_of_no_return(self, past: bool) -> Ask {
        Ask {
            past_point_of_no_return: past && self.rolls_back(),
            ..self
        }
    }

    /// Whether it rolls back: a rollback, or a cancel with `--rollback`.
    pub fn rolls_back(self) -> bool {
        self.op == Operation::Rollback || self.rollback
    }

    /// Whether a process that drives the migration carries the operation out when asked:
    /// pause, cancel and rollback act on a migration as it runs. Start, resume and retry need
    /// a driver of the caller's own (the engine refuses them while another process drives).
    pub fn for_driver(self) -> bool {
        matches!(
            self.op,
            Operation::Pause | Operation::Cancel | Operation::Rollback
        )
    }

    /// How a driver attaches to carry the operation out itself.
    pub fn attach(self) -> Attach {
        match self.op {
            Operation::Start => Attach::Start,
            Operation::Resume => Attach::Resume(None),
            Operation::Retry => Attach::Retry,
            Operation::Pause => Attach::Pause,
            Operation::Cancel if self.rollback => Attach::CancelRollback,
            Operation::Cancel => Attach::Cancel,
            Operation::Rollback => Attach::Rollback,
        }
    }
}

/// Why an operation is not recorded, let alone carried out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Inadmissible {
    /// The lifecycle does not allow it in the migration's state.
    #[error(transparent)]
    Refused(#[from] Refused),
    /// Start, resume or retry of a migration a live process still drives, in motion.
    #[error(
        "migration {id} is {state} and a live process still drives it; {op} it once that process has stopped (its running steps finish first)"
    )]
    Driven {
        id: MigrationId,
        state: MigrationState,
        op: Operation,
    },
}

/// Whether `ask` may be recorded now for migration `id` in `state` (`driven`: a live process
/// holds its lease). Resume also continues what a crash left mid-phase, or a migration never
/// started. Start, resume and retry attach a driver of the caller's own, so they wait for a
/// migration still in motion to come to rest; a driver that brought it to rest lets go of it
/// a moment later, and attaching waits for that (`engine::attach`).
pub fn admit(
    ask: Ask,
    id: &MigrationId,
    state: MigrationState,
    driven: bool,
) -> Result<(), Inadmissible> {
    let in_motion = !state.is_at_rest();
    if !(ask.op == Operation::Resume && in_motion) {
        operation::path(ask.op, state)?;
    }
    if driven && in_motion && !ask.for_driver() {
        return Err(Inadmissible::Driven {
            id: id.clone(),
            state,
            op: ask.op,
        });
    }
    Ok(())
}

/// Records an `operator_request` for `ask`, committed only while the migration is still in
/// `state`; returns the event's seq, after which [`observe`] looks for its effect.
pub fn request(
    store: &Store,
    id: &MigrationId,
    state: MigrationState,
    ask: Ask,
    by: &Requester<'_>,
) -> Result<i64, StoreError> {
    let request = OperatorRequest {
        op: ask.op,
        by: by.who.to_owned(),
        local: by.local,
        comment: by.comment.map(str::to_owned),
        rollback: ask.rollback,
        past_point_of_no_return: ask.past_point_of_no_return,
    };
    let batch = Batch {
        expect_state: Some(state),
        events: vec![NewEvent::of(request)],
        ..Batch::default()
    };
    let committed = store.commit(id, batch)?;
    Ok(committed.seqs.first().copied().unwrap_or(0))
}

/// How an operation was carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Done {
    Paused,
    /// Also a `cancel --rollback`: it ends cancelled whether or not its rollback stopped.
    Cancelled,
    /// `ok` is false when a rollback action failed and the rollback stopped there.
    RolledBack {
        ok: bool,
    },
    /// Start, resume or retry: a driver attached for it.
    Attached,
}

/// Whether `op` was carried out by `events` (those after the request, or after the caller
/// began carrying it out): a pause or cancel when the migration became paused or cancelled,
/// a rollback when it finished, the others when a driver attached.
pub fn done(events: &[Event], op: Operation) -> Option<Done> {
    let became = |target: MigrationState| {
        events
            .iter()
            .filter_map(|e| e.read::<StateChanged>())
            .any(|c| c.to == target)
    };
    match op {
        Operation::Rollback => events
            .iter()
            .find_map(|e| e.read::<RollbackFinished>())
            .map(|r| Done::RolledBack { ok: r.ok }),
        Operation::Pause => became(MigrationState::Paused).then_some(Done::Paused),
        Operation::Cancel => became(MigrationState::Cancelled).then_some(Done::Cancelled),
        Operation::Start | Operation::Resume | Operation::Retry => events
            .iter()
            .any(|e| e.kind == EventKind::DriverAttached)
            .then_some(Done::Attached),
    }
}

/// What a caller saw of the migration after its request.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    /// The migration's state, read before the events so that it is never newer than they
    /// show (`None`: the migration could not be read).
    pub state: Option<MigrationState>,
    /// The events after the request.
    pub events: Vec<Event>,
    /// Whether a live process holds the migration's lease.
    pub driven: bool,
}

/// Looks at the migration after the request of seq `asked`.
pub fn observe(store: &Store, id: &MigrationId, asked: i64) -> Result<Observed, StoreError> {
    let state = store.migration(id)?.map(|m| m.state);
    let events = store.events(id, asked)?;
    let driven = store.driver(id)?.is_some();
    Ok(Observed {
        state,
        events,
        driven,
    })
}

/// Where a followed request stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Its effect shows.
    Done(Done),
    /// The driver moved the migration on before acting: the operation is no longer possible.
    Refused(MovedOn),
    /// No live process drives the migration and the request was not carried out: the
    /// caller attaches this way and carries it out itself.
    TakeOver(Attach),
    /// Still under way: look again after the next change.
    Wait,
}

/// The one decision of the protocol: how the request `ask` stands, given what the caller
/// `seen` and whether it already attached a driver of its own for the request (`took_over`:
/// having taken the migration on, its own driver walks the operation's path, which is
/// neither a refusal nor a reason to attach again).
pub fn progress(ask: Ask, seen: &Observed, took_over: bool) -> Progress {
    if let Some(done) = done(&seen.events, ask.op) {
        return Progress::Done(done);
    }
    if !ask.for_driver() || took_over {
        return Progress::Wait;
    }
    if let Some(Err(refused)) = seen.state.map(|s| operation::path(ask.op, s)) {
        return Progress::Refused(MovedOn { refused });
    }
    if !seen.driven {
        return Progress::TakeOver(ask.attach());
    }
    Progress::Wait
}

/// A request its driver did not carry out: it moved the migration on first (the execute
/// phase ended, a rollback ran), so the operation is no longer possible.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{refused} — its driver moved the migration on before acting on the {op} request", op = refused.op)]
pub struct MovedOn {
    pub refused: Refused,
}

#[cfg(test)]
mod tests;
