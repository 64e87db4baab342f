//! What the store says of past runs, on each backend (`pg::each`): how long a runbook's
//! steps took (a window's estimate, an ETA), and the counts and durations metrics show.

use super::*;
use crate::event::MigrationState;

#[test]
fn earlier_runs_of_a_runbook_are_read_in_one_go_without_this_migration() {
    for (store, _fresh) in pg::each() {
        let done = |id: &str, step: &str, secs: i64| {
            let mut row = step_row_done(step, secs);
            row.state = StepState::Succeeded;
            store
                .commit(
                    &self::id(id),
                    Batch {
                        steps: vec![row],
                        ..Batch::default()
                    },
                )
                .unwrap();
        };
        create(&store, "m-old1");
        create(&store, "m-old2");
        create(&store, "m-now");
        done("m-old1", "a", 10);
        done("m-old2", "a", 20);
        done("m-now", "a", 30);
        let mut history = store
            .step_history("orders-cutover", &id("m-now"), 10)
            .unwrap();
        history.sort();
        assert_eq!(
            history,
            vec![
                ("a".to_owned(), chrono::Duration::seconds(10)),
                ("a".to_owned(), chrono::Duration::seconds(20))
            ]
        );
        assert_eq!(
            store
                .step_history("orders-cutover", &id("m-now"), 1)
                .unwrap()
                .len(),
            1
        );
        assert!(
            store
                .step_history("other", &id("m-now"), 10)
                .unwrap()
                .is_empty()
        );
    }
}

fn step_row_done(name: &str, secs: i64) -> StepRow {
    let mut row = step(name, StepState::Succeeded);
    row.attempts = 1;
    row.started_at = Some(at(0));
    row.finished_at = Some(at(secs));
    row
}

#[test]
fn step_durations_are_the_newest_successful_runs_of_a_runbook_step() {
    for (store, fresh) in pg::each() {
        for (n, secs) in [(1, 10), (2, 20), (3, 30)] {
            let m = create(&store, &format!("m-run{n}"));
            let mut failed = step_row_done("b", 99);
            failed.state = StepState::Failed;
            let batch = Batch {
                steps: vec![step_row_done("a", secs), failed],
                ..Batch::default()
            };
            store.commit(&m, batch).unwrap();
        }
        let seconds = |step: &str, limit: u32| -> Vec<i64> {
            let took = store.step_durations("orders-cutover", step, limit).unwrap();
            took.iter().map(|d| d.num_seconds()).collect()
        };
        assert_eq!(seconds("a", 10), [30, 20, 10], "{fresh}");
        assert_eq!(seconds("a", 2), [30, 20], "{fresh}");
        assert!(
            seconds("b", 10).is_empty(),
            "{fresh}: failed runs do not count"
        );
    }
}

#[test]
fn metrics_count_migrations_by_state_and_time_steps_and_gates() {
    for (store, fresh) in pg::each() {
        let m = create(&store, "m-aaaa00000001");
        create(&store, "m-aaaa00000002");
        let running = Batch {
            state: Some(MigrationState::Running),
            steps: vec![step_row_done("a", 12)],
            gates: vec![GateOpen {
                step: "signoff".to_owned(),
                approvers: vec!["bob".to_owned()],
                required: 1,
                deadline: None,
            }],
            ..Batch::default()
        };
        store.commit(&m, running).unwrap();
        let mut counts = store.count_by_state().unwrap();
        counts.sort();
        assert_eq!(
            counts,
            [(MigrationState::Created, 1), (MigrationState::Running, 1)],
            "{fresh}"
        );
        let (steps, gates) = store.durations().unwrap();
        // SQLite counts in Julian days: near enough.
        assert!(
            steps.len() == 1 && (steps[0] - 12.0).abs() < 0.01,
            "{fresh}: {steps:?}"
        );
        assert!(
            gates.is_empty(),
            "{fresh}: an open gate has not waited its time yet"
        );
        let closed = event(EventKind::GateDecided, "signoff");
        assert!(
            store
                .close_gate(&m, "signoff", GateStatus::TimedOut, closed)
                .unwrap()
        );
        let (_, gates) = store.durations().unwrap();
        assert!(
            gates.len() == 1 && gates[0] >= 0.0 && gates[0] < 60.0,
            "{fresh}: {gates:?}"
        );
    }
}
