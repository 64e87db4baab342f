use super::*;
use crate::event::Progress;
use crate::store::Reported;

fn t(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap_or_default()
}

fn s(secs: i64) -> Duration {
    Duration::seconds(secs)
}

fn row(id: &str, state: StepState) -> StepRow {
    StepRow::new(id, state)
}

/// A step running since `started`, that reported `done/total` at `at` (when given).
fn running_row(id: &str, started: i64, report: Option<(u64, u64, i64)>) -> StepRow {
    let mut r = row(id, StepState::Running);
    r.attempts = 1;
    r.started_at = Some(t(started));
    r.progress = report.map(|(done, total, at)| Reported {
        progress: Progress { done, total },
        at: t(at),
    });
    r
}

fn succeeded(id: &str, took: i64) -> StepRow {
    let mut r = row(id, StepState::Succeeded);
    r.started_at = Some(t(0));
    r.finished_at = Some(t(took));
    r
}

fn shape(phase: Phase, needs: &[&str], kind: Kind) -> Shape {
    Shape {
        phase,
        needs: needs.iter().map(|n| (*n).to_owned()).collect(),
        kind,
        window: None,
        estimate: None,
    }
}

fn inputs(shapes: &[(&str, Shape)], concurrency: usize, runs: &[(&str, &[i64])]) -> Inputs {
    Inputs {
        shapes: shapes
            .iter()
            .map(|(id, s)| ((*id).to_owned(), s.clone()))
            .collect(),
        concurrency,
        runs: runs
            .iter()
            .map(|(id, secs)| ((*id).to_owned(), secs.iter().map(|&x| s(x)).collect()))
            .collect(),
        unloadable: None,
    }
}

fn known(eta: &Eta) -> (DateTime<Utc>, Duration, Option<Basis>) {
    match eta {
        Eta::Known {
            finishes_at,
            remaining,
            basis,
        } => (*finishes_at, *remaining, *basis),
        Eta::Unknown(why) => panic!("unknown: {why}"),
    }
}

fn unknown(eta: &Eta) -> String {
    match eta {
        Eta::Unknown(why) => why.clone(),
        other => panic!("known: {other:?}"),
    }
}

#[test]
fn a_step_with_progress_goes_by_its_rate_so_far() {
    // 25 of 100 in its first 10 s: 30 s more from the report.
    let r = running_row("copy", 0, Some((25, 100, 10)));
    let eta = running(&r, Some(s(999)), t(12));
    assert_eq!(known(&eta), (t(40), s(28), Some(Basis::Progress)));
    assert_eq!(
        eta.to_json(),
        json!({ "finishes_at": t(40), "remaining_ms": 28_000, "basis": "progress" })
    );
    // All done: it finishes as soon as its process ends.
    let r = running_row("copy", 0, Some((100, 100, 10)));
    assert_eq!(known(&running(&r, None, t(15))).1, Duration::zero());
}

#[test]
fn a_step_whose_rate_says_it_should_be_done_is_unknown_not_overdue() {
    let r = running_row("copy", 0, Some((50, 100, 10)));
    let why = unknown(&running(&r, None, t(21)));
    assert!(
        why.contains("should have finished by its rate so far"),
        "{why}"
    );
    assert!(why.contains("50/100 (50%)"), "{why}");
}

#[test]
fn without_progress_a_step_goes_by_earlier_runs_and_else_is_unknown() {
    // Zero done says nothing of a rate.
    let r = running_row("copy", 0, Some((0, 100, 5)));
    assert_eq!(
        known(&running(&r, Some(s(60)), t(20))),
        (t(60), s(40), Some(Basis::History))
    );
    let why = unknown(&running(&r, None, t(20)));
    assert!(why.contains("no earlier run"), "{why}");
    let why = unknown(&running(&r, Some(s(60)), t(61)));
    assert!(
        why.contains("runs longer than its earlier runs (1m as a rule)"),
        "{why}"
    );
}

#[test]
fn expected_durations_are_medians_and_parts_go_by_their_step() {
    let i = inputs(
        &[],
        1,
        &[
            ("copy", &[30, 10, 20]),
            ("load[a]", &[40]),
            ("load[b]", &[60]),
        ],
    );
    assert_eq!(i.expected(&[]).get("copy"), Some(s(20)));
    assert_eq!(i.expected(&[]).get("load[a]"), Some(s(40)));
    // A new part: its step's parts, earlier and here.
    let here = [succeeded("load[c]", 80), succeeded("load[d]", 90)];
    assert_eq!(i.expected(&here).get("load[z]"), Some(s(80)));
    assert_eq!(i.expected(&here).get("other"), None);
}

#[test]
fn a_migration_needs_its_critical_path_or_its_work_spread_over_its_slots() {
    let work = || shape(Phase::Execute, &[], Kind::Work);
    let chain = inputs(
        &[
            ("a", work()),
            ("b", shape(Phase::Execute, &["a"], Kind::Work)),
            ("c", shape(Phase::Execute, &["b"], Kind::Work)),
        ],
        4,
        &[("a", &[10]), ("b", &[10]), ("c", &[10])],
    );
    let rows = [
        succeeded("a", 10),
        running_row("b", 100, Some((1, 2, 105))),
        row("c", StepState::Pending),
    ];
    let e = estimate(MigrationState::Running, &rows, &chain, t(106));
    // b: 4 s more; then c: 10 s.
    assert_eq!(known(&e.migration).1, s(14));
    assert_eq!(known(&e.steps["b"]).1, s(4));

    // Eight parts of 10 s on 4 slots: 20 s, though each alone takes 10.
    let fan = inputs(&[("p", work())], 4, &[("p[x]", &[10])]);
    let rows: Vec<StepRow> = (0..8)
        .map(|i| row(&format!("p[{i}]"), StepState::Pending))
        .collect();
    let e = estimate(MigrationState::Running, &rows, &fan, t(0));
    assert_eq!(known(&e.migration).1, s(20));
}

#[test]
fn phases_run_one_after_another() {
    let i = inputs(
        &[
            ("look", shape(Phase::Analyze, &[], Kind::Work)),
            ("pause", shape(Phase::Execute, &[], Kind::Wait(s(7)))),
            ("ok", shape(Phase::Validate, &[], Kind::Instant)),
        ],
        8,
        &[("look", &[5])],
    );
    let rows = [
        row("look", StepState::Pending),
        row("pause", StepState::Pending),
        row("ok", StepState::Pending),
    ];
    let e = estimate(MigrationState::Analyzing, &rows, &i, t(0));
    assert_eq!(known(&e.migration), (t(12), s(12), None));
}

#[test]
fn what_cannot_be_known_is_said_with_its_reason() {
    let i = inputs(
        &[
            ("gate", shape(Phase::Approve, &[], Kind::Gate)),
            ("copy", shape(Phase::Execute, &[], Kind::Work)),
        ],
        2,
        &[],
    );
    let rows = [
        row("gate", StepState::Waiting),
        row("copy", StepState::Pending),
    ];
    let why =
        |state, rows: &[StepRow], i: &Inputs| unknown(&estimate(state, rows, i, t(0)).migration);
    assert_eq!(
        why(MigrationState::AwaitingApproval, &rows, &i),
        "it waits for approval"
    );
    assert_eq!(
        why(MigrationState::Created, &rows, &i),
        "it has not started"
    );
    assert_eq!(
        why(MigrationState::Paused, &rows, &i),
        "it is paused: nothing runs until an operator acts"
    );
    assert_eq!(why(MigrationState::Certified, &rows, &i), "it is certified");
    assert_eq!(
        why(MigrationState::Running, &rows, &i),
        "gate gate is still to be decided"
    );
    let rows = [succeeded("gate", 1), row("copy", StepState::Pending)];
    assert_eq!(
        why(MigrationState::Running, &rows, &i),
        "step copy has no earlier run or `estimate` to go by"
    );
    // Its own `estimate` will do.
    let mut with = i.clone();
    if let Some(copy) = with.shapes.get_mut("copy") {
        copy.estimate = Some(s(30));
    }
    assert_eq!(
        known(&estimate(MigrationState::Running, &rows, &with, t(0)).migration).1,
        s(30)
    );
    // Windows are not modelled.
    if let Some(copy) = with.shapes.get_mut("copy") {
        copy.window = Some("night".into());
    }
    assert_eq!(
        why(MigrationState::Running, &rows, &with),
        "step copy is bound to window night, which is not modelled"
    );
    // A fan-out over outputs, before and after it expands.
    let rows = [succeeded("gate", 1), row("copy[*]", StepState::Pending)];
    assert!(why(MigrationState::Running, &rows, &i).contains("not expanded yet"));
    let mut done = succeeded("copy[a]", 5);
    done.finished_at = Some(t(5));
    let rows = [
        succeeded("gate", 1),
        row("copy[*]", StepState::Waiting),
        done,
    ];
    let e = estimate(MigrationState::Running, &rows, &i, t(9));
    assert_eq!(known(&e.migration).1, Duration::zero());
    // A running step without an estimate makes the migration's unknown too.
    let rows = [succeeded("gate", 1), running_row("copy", 0, None)];
    let why = why(MigrationState::Running, &rows, &i);
    assert!(
        why.starts_with("step copy runs, and its end is unknown"),
        "{why}"
    );
}
