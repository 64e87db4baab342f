//! The protocol's decision over what a caller observed: done by outcome or by a driver
//! attaching, refused when the driver moved the migration on, taken over when no driver
//! holds the lease, waiting otherwise.

use super::*;
use crate::event::MigrationState::{Cancelled, Completed, Failed, Paused, Running};
use chrono::Utc;
use serde_json::{Value as Json, json};

fn event(seq: i64, kind: EventKind, data: Json) -> Event {
    Event {
        seq,
        migration: MigrationId::from("m1".to_owned()),
        at: Utc::now(),
        kind,
        step: None,
        data,
    }
}

fn became(seq: i64, from: MigrationState, to: MigrationState) -> Event {
    event(
        seq,
        EventKind::StateChanged,
        json!({ "from": from.as_str(), "to": to.as_str() }),
    )
}

fn rollback_finished(seq: i64, ok: bool) -> Event {
    event(seq, EventKind::RollbackFinished, json!({ "ok": ok }))
}

fn attached(seq: i64) -> Event {
    event(seq, EventKind::DriverAttached, json!({ "by": "ops" }))
}

/// What a caller saw: the state now, the events since its request, whether a driver holds
/// the lease.
fn seen(state: MigrationState, events: Vec<Event>, driven: bool) -> Observed {
    Observed {
        state: Some(state),
        events,
        driven,
    }
}

fn ask(op: Operation) -> Ask {
    Ask::new(op, false)
}

fn cancel_rollback() -> Ask {
    Ask::new(Operation::Cancel, true)
}

#[test]
fn done_by_outcome_pause_and_cancel() {
    let paused = seen(Paused, vec![became(5, Running, Paused)], false);
    assert_eq!(
        progress(ask(Operation::Pause), &paused, false),
        Progress::Done(Done::Paused)
    );
    let cancelled = seen(
        Cancelled,
        vec![became(5, Running, Paused), became(6, Paused, Cancelled)],
        false,
    );
    assert_eq!(
        progress(ask(Operation::Cancel), &cancelled, false),
        Progress::Done(Done::Cancelled)
    );
    // A cancel that paused the migration on its way is not done yet.
    let on_its_way = seen(Paused, vec![became(5, Running, Paused)], true);
    assert_eq!(
        progress(ask(Operation::Cancel), &on_its_way, false),
        Progress::Wait
    );
}

#[test]
fn done_by_outcome_cancel_with_rollback_when_cancelled_not_when_rolled_back() {
    // The rollback ran (and stopped at a failed action): the cancel still waits for its
    // state change, and ends cancelled either way.
    let rolled_back = seen(Paused, vec![rollback_finished(7, false)], true);
    assert_eq!(
        progress(cancel_rollback(), &rolled_back, false),
        Progress::Wait
    );
    let cancelled = seen(
        Cancelled,
        vec![rollback_finished(7, false), became(8, Paused, Cancelled)],
        false,
    );
    assert_eq!(
        progress(cancel_rollback(), &cancelled, false),
        Progress::Done(Done::Cancelled)
    );
}

#[test]
fn done_by_outcome_rollback_ok_or_failed() {
    let ok = seen(Failed, vec![rollback_finished(9, true)], false);
    assert_eq!(
        progress(ask(Operation::Rollback), &ok, false),
        Progress::Done(Done::RolledBack { ok: true })
    );
    let stopped = seen(Failed, vec![rollback_finished(9, false)], false);
    assert_eq!(
        progress(ask(Operation::Rollback), &stopped, false),
        Progress::Done(Done::RolledBack { ok: false })
    );
    // A rollback's own path (running, then failed) is no refusal while it finishes.
    let under_way = seen(Failed, vec![became(9, Running, Failed)], true);
    assert_eq!(
        progress(ask(Operation::Rollback), &under_way, false),
        Progress::Wait
    );
}

#[test]
fn start_resume_and_retry_are_done_when_a_driver_attaches() {
    for op in [Operation::Start, Operation::Resume, Operation::Retry] {
        let attached = seen(Running, vec![attached(3)], true);
        assert_eq!(
            progress(ask(op), &attached, true),
            Progress::Done(Done::Attached),
            "{op}"
        );
        // Until then the caller's own driver is on its way: no refusal, no second attach.
        let before = seen(Failed, Vec::new(), false);
        assert_eq!(progress(ask(op), &before, true), Progress::Wait, "{op}");
    }
    // The outcomes of pause, cancel and rollback are not a driver attaching.
    let attached_only = seen(Running, vec![attached(3)], true);
    assert_eq!(
        progress(ask(Operation::Pause), &attached_only, false),
        Progress::Wait
    );
}

#[test]
fn refused_when_the_driver_moved_the_migration_on() {
    let moved_on = seen(Completed, vec![became(4, Running, Completed)], true);
    let Progress::Refused(refused) = progress(ask(Operation::Pause), &moved_on, false) else {
        panic!("expected a refusal");
    };
    assert_eq!(
        refused.refused,
        Refused {
            op: Operation::Pause,
            state: Completed
        }
    );
    assert_eq!(
        refused.to_string(),
        "cannot pause a completed migration; from completed it can only become validating — its driver moved the migration on before acting on the pause request"
    );
    // The same when that driver has stopped since: nothing is left to take over.
    assert!(matches!(
        progress(
            ask(Operation::Cancel),
            &seen(Failed, Vec::new(), false),
            false
        ),
        Progress::Refused(MovedOn {
            refused: Refused {
                op: Operation::Cancel,
                state: Failed
            }
        })
    ));
}

#[test]
fn taken_over_when_no_driver_holds_the_lease() {
    let stopped = seen(Running, Vec::new(), false);
    assert_eq!(
        progress(ask(Operation::Pause), &stopped, false),
        Progress::TakeOver(Attach::Pause)
    );
    assert_eq!(
        progress(ask(Operation::Cancel), &stopped, false),
        Progress::TakeOver(Attach::Cancel)
    );
    assert_eq!(
        progress(cancel_rollback(), &stopped, false),
        Progress::TakeOver(Attach::CancelRollback)
    );
    assert_eq!(
        progress(
            ask(Operation::Rollback),
            &seen(Paused, Vec::new(), false),
            false
        ),
        Progress::TakeOver(Attach::Rollback)
    );
}

#[test]
fn waits_while_a_driver_holds_it_or_after_taking_over() {
    let driven = seen(Running, Vec::new(), true);
    for a in [
        ask(Operation::Pause),
        ask(Operation::Cancel),
        cancel_rollback(),
    ] {
        assert_eq!(progress(a, &driven, false), Progress::Wait, "{a:?}");
    }
    // Having taken over, the caller's own driver carries it out: neither a state it passes
    // through nor the lease between its commits is a reason to refuse or attach again.
    let own = seen(Failed, Vec::new(), false);
    assert_eq!(progress(ask(Operation::Pause), &own, true), Progress::Wait);
    // A state that could not be read refuses nothing.
    let unread = Observed {
        state: None,
        events: Vec::new(),
        driven: true,
    };
    assert_eq!(
        progress(ask(Operation::Pause), &unread, false),
        Progress::Wait
    );
}

#[test]
fn done_wins_over_a_later_state() {
    // Paused as asked, then cancelled by someone else before the caller looked.
    let then_cancelled = seen(
        Cancelled,
        vec![became(5, Running, Paused), became(6, Paused, Cancelled)],
        false,
    );
    assert_eq!(
        progress(ask(Operation::Pause), &then_cancelled, false),
        Progress::Done(Done::Paused)
    );
}

#[test]
fn only_a_cancel_rolls_back_first() {
    assert!(!Ask::new(Operation::Pause, true).rollback);
    assert_eq!(
        Ask::new(Operation::Rollback, true).attach(),
        Attach::Rollback
    );
    assert_eq!(
        Ask::new(Operation::Resume, false).attach(),
        Attach::Resume(None)
    );
    assert!(Ask::new(Operation::Cancel, true).for_driver());
    assert!(!Ask::new(Operation::Retry, false).for_driver());
}

#[test]
fn admitted_by_the_lifecycle_and_start_resume_retry_only_once_the_migration_is_still() {
    let id = MigrationId::from("m1".to_owned());
    let admit = |op, state, driven| admit(ask(op), &id, state, driven);
    assert_eq!(admit(Operation::Pause, Running, true), Ok(()));
    assert_eq!(admit(Operation::Retry, Failed, false), Ok(()));
    // A driver that brought it to rest lets go a moment later: attaching waits for that.
    assert_eq!(admit(Operation::Retry, Failed, true), Ok(()));
    // Resume continues what a crash left mid-phase.
    assert_eq!(admit(Operation::Resume, Completed, false), Ok(()));
    assert!(matches!(
        admit(Operation::Resume, Completed, true),
        Err(Inadmissible::Driven { .. })
    ));
    assert!(matches!(
        admit(Operation::Retry, Cancelled, false),
        Err(Inadmissible::Refused(_))
    ));
    assert!(matches!(
        admit(Operation::Pause, Paused, false),
        Err(Inadmissible::Refused(_))
    ));
}
