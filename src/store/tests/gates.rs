//! Gates: M of N, a rejection closes, one vote per person, and a timeout racing a vote, on
//! each backend (`pg::each`).

use super::*;
use crate::event::Decision;
use std::sync::{Arc, Barrier};

fn open_gate(store: &Store, m: &MigrationId, step: &str, approvers: &[&str], required: u32) {
    store
        .commit(
            m,
            Batch {
                events: vec![event(EventKind::GateWaiting, step)],
                gates: vec![GateOpen {
                    step: step.to_owned(),
                    approvers: approvers.iter().map(|s| (*s).to_owned()).collect(),
                    required,
                    deadline: Some(at(3600)),
                }],
                ..Batch::default()
            },
        )
        .unwrap();
}

fn vote(step: &str, who: &str, decision: Decision) -> GateVote {
    GateVote {
        step: step.to_owned(),
        who: who.to_owned(),
        decision,
        comment: Some(format!("{who} says {decision}")),
        digest: "sha256:abc".to_owned(),
        local: true,
        at: at(60),
    }
}

#[test]
fn m_of_n_approvals_close_the_gate() {
    for (store, _fresh) in pg::each() {
        let m = create(&store, "m-aaaa00000001");
        open_gate(&store, &m, "signoff", &["bob", "carol", "dave"], 2);
        let info = store.gate(&m, "signoff").unwrap().unwrap();
        assert_eq!(info.status, GateStatus::Open);
        assert_eq!(info.approvers, ["bob", "carol", "dave"]);
        assert_eq!(info.deadline, Some(at(3600)));

        let first = store
            .decide_gate(&m, vote("signoff", "bob", Decision::Approve))
            .unwrap();
        assert_eq!(
            (first.status, first.approvals, first.required),
            (GateStatus::Open, 1, 2)
        );
        assert_eq!(
            store.gate(&m, "signoff").unwrap().unwrap().approvals,
            ["bob"]
        );

        let again = store
            .decide_gate(&m, vote("signoff", "bob", Decision::Approve))
            .unwrap_err();
        assert_eq!(
            again.to_string(),
            "bob has already decided gate `signoff`; a decision cannot be changed"
        );

        let second = store
            .decide_gate(&m, vote("signoff", "carol", Decision::Approve))
            .unwrap();
        assert_eq!((second.status, second.approvals), (GateStatus::Approved, 2));
        assert_eq!(second.event_seq, first.event_seq + 1);

        let late = store
            .decide_gate(&m, vote("signoff", "dave", Decision::Reject))
            .unwrap_err();
        assert_eq!(
            late,
            GateError::NotOpen {
                step: "signoff".to_owned(),
                status: Some(GateStatus::Approved)
            }
        );
        assert_eq!(
            late.to_string(),
            "gate `signoff` is not open: it was already approved"
        );

        let events = store.events(&m, first.event_seq - 1).unwrap();
        assert_eq!(events.len(), 2);
        assert!(events.iter().all(|e| e.kind == EventKind::GateDecided));
        assert_eq!(
            events[1].data,
            json!({
                "who": "carol", "decision": "approve", "comment": "carol says approve",
                "digest": "sha256:abc", "local": true, "approvals": 2, "required": 2,
                "status": "approved",
            })
        );
        let audit = store.gate_decisions(&m).unwrap();
        let who: Vec<_> = audit.iter().map(|d| d.who.as_str()).collect();
        assert_eq!(who, ["bob", "carol"], "refused votes leave no trace");
        assert!(
            audit
                .iter()
                .all(|d| d.local && d.round == 1 && d.at == at(60))
        );
    }
}

#[test]
fn a_rejection_closes_the_gate_at_once() {
    for (store, _fresh) in pg::each() {
        let m = create(&store, "m-aaaa00000001");
        open_gate(&store, &m, "signoff", &["bob", "carol", "dave"], 2);
        store
            .decide_gate(&m, vote("signoff", "bob", Decision::Approve))
            .unwrap();
        let out = store
            .decide_gate(&m, vote("signoff", "carol", Decision::Reject))
            .unwrap();
        assert_eq!((out.status, out.approvals), (GateStatus::Rejected, 1));
        assert_eq!(
            store.gate(&m, "signoff").unwrap().unwrap().status,
            GateStatus::Rejected
        );
    }
}

#[test]
fn a_gate_never_opened_or_of_an_unknown_migration_is_refused() {
    for (store, _fresh) in pg::each() {
        let m = create(&store, "m-aaaa00000001");
        let err = store
            .decide_gate(&m, vote("signoff", "bob", Decision::Approve))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "gate `signoff` is not open: the migration has not reached it yet"
        );
        let err = store
            .decide_gate(&id("m-nope"), vote("signoff", "bob", Decision::Approve))
            .unwrap_err();
        assert_eq!(
            err,
            GateError::Store(StoreError::NotFound("m-nope".to_owned()))
        );
        assert_eq!(store.gate(&m, "signoff").unwrap(), None);
    }
}

#[test]
fn reopening_an_open_gate_keeps_its_votes_and_a_closed_one_starts_a_new_round() {
    for (store, _fresh) in pg::each() {
        let m = create(&store, "m-aaaa00000001");
        open_gate(&store, &m, "signoff", &["bob", "carol"], 2);
        store
            .decide_gate(&m, vote("signoff", "bob", Decision::Approve))
            .unwrap();
        open_gate(&store, &m, "signoff", &["bob", "carol"], 2); // a resumed engine
        assert_eq!(
            store.gate(&m, "signoff").unwrap().unwrap().approvals,
            ["bob"]
        );
        store
            .decide_gate(&m, vote("signoff", "carol", Decision::Reject))
            .unwrap();

        open_gate(&store, &m, "signoff", &["bob", "carol"], 2); // a retry
        let info = store.gate(&m, "signoff").unwrap().unwrap();
        assert_eq!(info.status, GateStatus::Open);
        assert!(info.approvals.is_empty());
        let out = store
            .decide_gate(&m, vote("signoff", "bob", Decision::Approve))
            .unwrap();
        assert_eq!((out.status, out.approvals), (GateStatus::Open, 1));
        let rounds: Vec<_> = store
            .gate_decisions(&m)
            .unwrap()
            .iter()
            .map(|d| (d.who.clone(), d.round))
            .collect();
        assert_eq!(
            rounds,
            [
                ("bob".to_owned(), 1),
                ("carol".to_owned(), 1),
                ("bob".to_owned(), 2)
            ]
        );
    }
}

#[test]
fn close_gate_closes_only_an_open_gate() {
    for (store, _fresh) in pg::each() {
        let m = create(&store, "m-aaaa00000001");
        open_gate(&store, &m, "signoff", &["bob"], 1);
        let timed_out = || event(EventKind::GateDecided, "signoff");
        assert!(
            !store
                .close_gate(&m, "signoff", GateStatus::Open, timed_out())
                .unwrap()
        );
        assert!(
            store
                .close_gate(&m, "signoff", GateStatus::TimedOut, timed_out())
                .unwrap()
        );
        assert!(
            !store
                .close_gate(&m, "signoff", GateStatus::TimedOut, timed_out())
                .unwrap()
        );
        assert!(
            !store
                .close_gate(&m, "other", GateStatus::Cancelled, timed_out())
                .unwrap()
        );
        let err = store
            .decide_gate(&m, vote("signoff", "bob", Decision::Approve))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "gate `signoff` is not open: it was already timed out"
        );
        let closing = store
            .events(&m, 0)
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == EventKind::GateDecided)
            .count();
        assert_eq!(closing, 1, "only the closing call wrote its event");
    }
}

/// A timeout and a human decision race from two processes (two stores on one directory, or
/// two servers on one database): exactly one of them closes the gate, every time.
#[test]
fn a_timeout_racing_a_vote_has_exactly_one_winner() {
    for (_store, fresh) in pg::each() {
        let (engine, approver) = match &fresh {
            pg::Fresh::Dir(dir) => (
                Store::open_with(dir.path(), Durability::Normal).unwrap(),
                Store::open_with(dir.path(), Durability::Normal).unwrap(),
            ),
            pg::Fresh::Schema(_) => (fresh.open(), fresh.open()),
        };
        race(&engine, &approver);
    }
}

fn race(engine: &Store, approver: &Store) {
    let (mut votes_won, mut timeouts_won) = (0, 0);
    for round in 0..300 {
        let m = create(engine, &format!("m-race{round:05}"));
        open_gate(engine, &m, "signoff", &["bob"], 1);
        let barrier = Arc::new(Barrier::new(2));
        let timeout = {
            let (store, m, barrier) = (engine.clone(), m.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                store
                    .close_gate(
                        &m,
                        "signoff",
                        GateStatus::TimedOut,
                        event(EventKind::GateDecided, "signoff"),
                    )
                    .unwrap()
            })
        };
        let decided = {
            let (store, m) = (approver.clone(), m.clone());
            std::thread::spawn(move || {
                barrier.wait();
                store.decide_gate(&m, vote("signoff", "bob", Decision::Approve))
            })
        };
        let closed_by_timeout = timeout.join().unwrap();
        let decided = decided.join().unwrap();
        let status = engine.gate(&m, "signoff").unwrap().unwrap().status;
        match (closed_by_timeout, &decided) {
            (
                true,
                Err(GateError::NotOpen {
                    status: Some(GateStatus::TimedOut),
                    ..
                }),
            ) => {
                assert_eq!(status, GateStatus::TimedOut);
                timeouts_won += 1;
            }
            (false, Ok(out)) if out.status == GateStatus::Approved => {
                assert_eq!(status, GateStatus::Approved);
                votes_won += 1;
            }
            other => panic!("round {round}: both or neither closed the gate: {other:?}"),
        }
        let closing = engine
            .events(&m, 0)
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == EventKind::GateDecided)
            .count();
        assert_eq!(closing, 1, "round {round}");
    }
    assert_eq!(votes_won + timeouts_won, 300);
}
