//! The alert outbox: deliveries in the batch's transaction, claims (one sender of several
//! gets each delivery), attempts (each on every backend), and the upgrade of a version-1
//! SQLite store in place.

use super::*;
use crate::event::MigrationState;

fn later(secs: i64) -> DateTime<Utc> {
    Utc::now() + chrono::Duration::seconds(secs)
}

fn attempt(id: i64, outcome: AttemptOutcome) -> AttemptRecord {
    AttemptRecord {
        delivery: id,
        at: Utc::now(),
        outcome,
        retry_at: None,
        status: Some(503),
        error: Some("503 Service Unavailable".into()),
        message: Some(json!({"body": "hello"})),
    }
}

#[test]
fn deliveries_commit_with_their_events_and_name_their_seq() {
    for (store, fresh) in pg::each() {
        let m = create(&store, "m-aaaa00000001");
        let batch = Batch {
            events: vec![
                event(EventKind::StepStarted, "a"),
                event(EventKind::StepRetrying, "a"),
            ],
            ..Batch::default()
        };
        let committed = store.commit(&m, batch).unwrap();
        let list = store.deliveries(Some(&m)).unwrap();
        assert_eq!(list.len(), 2, "{fresh}");
        assert_eq!(list[0].event_seq, committed.seqs[1]);
        assert_eq!(list[0].step.as_deref(), Some("a"));
        assert_eq!(list[0].channel, "chatops");
        assert_eq!(list[0].state, DeliveryState::Pending);
        assert_eq!(list[0].next_attempt_at, Some(committed.at));
        assert_eq!(store.deliveries(None).unwrap().len(), 2);
        assert_eq!(store.pending_deliveries(Some(&m), true).unwrap().0, 2);
    }
}

#[test]
fn a_refused_batch_leaves_no_delivery() {
    for (store, fresh) in pg::each() {
        let m = create(&store, "m-aaaa00000001");
        let batch = Batch {
            expect_state: Some(MigrationState::Running),
            events: vec![event(EventKind::StepFailed, "a")],
            ..Batch::default()
        };
        assert!(store.commit(&m, batch).is_err(), "{fresh}");
        assert!(store.deliveries(None).unwrap().is_empty(), "{fresh}");
    }
}

#[test]
fn a_claim_holds_a_delivery_until_it_lapses_and_a_delivered_one_is_never_claimed_again() {
    for (store, fresh) in pg::each() {
        let m = create(&store, "m-aaaa00000001");
        let batch = Batch {
            events: vec![event(EventKind::StepFailed, "a")],
            ..Batch::default()
        };
        store.commit(&m, batch).unwrap();
        let now = later(1);
        let claimed = store.claim_deliveries(now, later(60), 10, true).unwrap();
        assert_eq!(claimed.len(), 1, "{fresh}");
        // Held: another sender gets nothing until the claim lapses.
        assert!(
            store
                .claim_deliveries(now, later(60), 10, true)
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            store
                .claim_deliveries(later(61), later(90), 10, true)
                .unwrap()
                .len(),
            1
        );

        // A retry: due again later, message kept.
        let mut retry = attempt(claimed[0].id, AttemptOutcome::Retry);
        retry.retry_at = Some(later(30));
        assert!(store.record_attempt(retry).unwrap());
        assert!(
            store
                .claim_deliveries(later(1), later(2), 10, true)
                .unwrap()
                .is_empty()
        );
        let again = store
            .claim_deliveries(later(31), later(40), 10, true)
            .unwrap();
        assert_eq!(again[0].attempts, 1);
        assert_eq!(again[0].message, Some(json!({"body": "hello"})));

        let mut ok = attempt(claimed[0].id, AttemptOutcome::Delivered);
        ok.status = Some(200);
        ok.error = None;
        assert!(store.record_attempt(ok.clone()).unwrap());
        // A late second sender cannot record over a delivered one.
        assert!(!store.record_attempt(ok).unwrap());
        assert!(
            store
                .claim_deliveries(later(3600), later(3700), 10, true)
                .unwrap()
                .is_empty()
        );

        let d = &store.deliveries(Some(&m)).unwrap()[0];
        assert_eq!(d.state, DeliveryState::Delivered);
        assert_eq!(d.attempts, 2);
        assert_eq!(d.next_attempt_at, None);
        let attempts = store.delivery_attempts(d.id).unwrap();
        let outcomes: Vec<_> = attempts.iter().map(|a| (a.attempt, a.outcome)).collect();
        assert_eq!(
            outcomes,
            [(1, AttemptOutcome::Retry), (2, AttemptOutcome::Delivered)]
        );
        assert_eq!(attempts[0].status, Some(503));
        assert_eq!(store.pending_deliveries(None, true).unwrap(), (0, None));
    }
}

/// Senders of several servers claiming at the same moment: each due delivery goes to one of
/// them, never to two (which would send the alert twice), and none is left behind.
#[test]
fn senders_claiming_at_once_never_get_the_same_delivery() {
    for (store, fresh) in pg::each() {
        let m = create(&store, "m-aaaa00000001");
        for _ in 0..20 {
            // A retrying step: a delivery to each of two channels.
            let batch = Batch {
                events: vec![event(EventKind::StepRetrying, "a")],
                ..Batch::default()
            };
            store.commit(&m, batch).unwrap();
        }
        let all: Vec<i64> = store
            .deliveries(None)
            .unwrap()
            .iter()
            .map(|d| d.id)
            .collect();
        assert_eq!(all.len(), 40, "{fresh}");
        let senders = [store.clone(), fresh.open(), fresh.open()];
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(senders.len()));
        let threads: Vec<_> = senders
            .into_iter()
            .map(|sender| {
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    let mut mine = Vec::new();
                    loop {
                        let claimed = sender.claim_deliveries(later(1), later(600), 3, true);
                        let claimed = claimed.unwrap();
                        if claimed.is_empty() {
                            return mine;
                        }
                        mine.extend(claimed.iter().map(|d| d.id));
                    }
                })
            })
            .collect();
        let mut claimed: Vec<i64> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        claimed.sort_unstable();
        assert_eq!(claimed, all, "{fresh}: each delivery claimed once");
    }
}

// SQLite only: a store written by version 1 of the SQLite schema.
#[test]
fn a_version_1_store_is_upgraded_in_place() {
    let dir = tempfile::tempdir().unwrap();
    {
        let conn = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
        conn.execute_batch(super::super::schema::UPGRADES[0])
            .unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute(
            "INSERT INTO migrations (id, runbook, runbook_path, runbook_text, params,
                 masked_params, digest, state, starter, created_at, updated_at, last_seq)
             VALUES ('m-old000000001', 'r', 'r.yaml', ?1, '{}', '{}', 'd', 'failed',
                 'alice', '2024-01-01T00:00:00.000Z', '2024-01-01T00:00:00.000Z', 0)",
            [super::ALERTING],
        )
        .unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let old = id("m-old000000001");
    assert_eq!(
        store.migration(&old).unwrap().map(|m| m.state),
        Some(MigrationState::Failed)
    );
    let version: i64 = raw(&dir)
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let batch = Batch {
        events: vec![event(EventKind::StepFailed, "a")],
        ..Batch::default()
    };
    store.commit(&old, batch).unwrap();
    assert_eq!(store.deliveries(Some(&old)).unwrap().len(), 1);
}

/// Every write that appends events routes them by the migration's runbook, in its own
/// transaction: a new migration, a batch, a gate vote and a gate closed by a timeout. None of
/// them is handed its deliveries by the caller (before, each writer routed for itself, and a
/// writer that forgot wrote events without their alerts).
#[test]
fn every_write_that_appends_events_routes_them() {
    const EVERYTHING: &str = r#"version: 1
name: gates
alerts:
  channels:
    hook: { webhook: { url: "https://chat.example.com/hook" } }
  rules:
    - { on: [created, gate_waiting, gate_decided, failed], notify: [hook] }
steps:
  - id: signoff
    gate: { approvers: [bob] }
  - id: later
    gate: { approvers: [bob] }
"#;
    for (store, fresh) in pg::each() {
        let mut new = super::new_migration("m-aaaa00000002", &["signoff", "later"]);
        new.runbook_text = EVERYTHING.to_owned();
        let m = store.create_migration(new).unwrap().id;
        let open = |step: &str| Batch {
            events: vec![event(EventKind::GateWaiting, step)],
            gates: vec![GateOpen {
                step: step.to_owned(),
                approvers: vec!["bob".to_owned()],
                required: 1,
                deadline: None,
            }],
            ..Batch::default()
        };
        store.commit(&m, open("signoff")).unwrap();
        store.commit(&m, open("later")).unwrap();
        let vote = GateVote {
            step: "signoff".to_owned(),
            who: "bob".to_owned(),
            decision: crate::event::Decision::Approve,
            comment: None,
            digest: "sha256:abc".to_owned(),
            local: true,
            at: Utc::now(),
        };
        store.decide_gate(&m, vote).unwrap();
        let timeout = event(EventKind::GateDecided, "later");
        assert!(
            store
                .close_gate(&m, "later", GateStatus::TimedOut, timeout)
                .unwrap()
        );
        let changed = NewEvent::new(
            EventKind::StateChanged,
            json!({"from": "created", "to": "failed"}),
        );
        let batch = Batch {
            state: Some(MigrationState::Failed),
            events: vec![event(EventKind::StepStarted, "x"), changed],
            ..Batch::default()
        };
        let committed = store.commit(&m, batch).unwrap();
        let routed: Vec<_> = store
            .deliveries(Some(&m))
            .unwrap()
            .into_iter()
            .map(|d| (d.event_seq, d.event, d.step, d.migration_state))
            .collect();
        let created = MigrationState::Created;
        assert_eq!(
            routed,
            [
                (1, "created".to_owned(), None, created),
                (
                    2,
                    "gate_waiting".to_owned(),
                    Some("signoff".to_owned()),
                    created
                ),
                (
                    3,
                    "gate_waiting".to_owned(),
                    Some("later".to_owned()),
                    created
                ),
                (
                    4,
                    "gate_decided".to_owned(),
                    Some("signoff".to_owned()),
                    created
                ),
                (
                    5,
                    "gate_decided".to_owned(),
                    Some("later".to_owned()),
                    created
                ),
                (
                    committed.seqs[1],
                    "failed".to_owned(),
                    None,
                    MigrationState::Failed
                ),
            ],
            "{fresh}"
        );
    }
}
