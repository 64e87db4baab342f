//! Cutover windows and gate timeouts on a manual clock (issue 4): the engine is driven through
//! the library with real processes and a real SQLite store, but time moves only when a test
//! says so, so hours of window time pass in milliseconds.

use chrono::{DateTime, Duration, TimeZone as _, Utc};
use sensei::engine::clock::ManualClock;
use sensei::engine::{self, Attach, NewRun, Options, Quiet};
use sensei::event::{EventKind, MigrationId, MigrationState, StepState};
use sensei::store::Store;
use std::sync::Arc;
use std::time::Instant;

/// Saturday 2027-03-06 00:00 UTC: windows below open daily at 01:00 UTC.
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2027, 3, 6, 0, 0, 0)
        .single()
        .expect("a valid instant")
}

struct Harness {
    /// Asks the driver to stop (as a server shutting down does).
    stop: tokio::sync::watch::Sender<bool>,
    dir: Arc<tempfile::TempDir>,
    store: Store,
    clock: Arc<ManualClock>,
    id: MigrationId,
    driver: tokio::task::JoinHandle<Result<MigrationState, engine::EngineError>>,
}

async fn start(runbook: &str) -> Harness {
    let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
    start_on(dir, Arc::new(ManualClock::new(t0())), runbook).await
}

/// Another migration in the same state directory, on the same clock.
async fn start_on(dir: Arc<tempfile::TempDir>, clock: Arc<ManualClock>, runbook: &str) -> Harness {
    let store = Store::open(&dir.path().join(".sensei")).expect("store");
    let checked = sensei::runbook::load_bytes("w.yaml", runbook.as_bytes());
    assert!(!checked.has_errors(), "{}", checked.render());
    let parsed = checked.runbook.clone().expect("runbook");
    let params = sensei::runbook::params::resolve_text(&parsed, &[]).expect("params");
    let migration = engine::create(
        &store,
        NewRun {
            runbook: &parsed,
            runbook_path: dir.path().join("w.yaml").display().to_string(),
            runbook_text: runbook.to_owned(),
            params,
            starter: "alice".into(),
            id: None,
            now: None,
            origin: Default::default(),
        },
    )
    .expect("create");
    let mut opts = Options::new(dir.path().to_path_buf(), "alice".into());
    opts.clock = clock.clone();
    opts.poll = std::time::Duration::from_millis(10);
    let stop = tokio::sync::watch::Sender::new(false);
    opts.stop = Some(stop.subscribe());
    let driver = engine::attach(&store, &migration.id, opts, Box::new(Quiet), Attach::Start)
        .await
        .expect("attach");
    let driver = tokio::spawn(driver.drive());
    Harness {
        stop,
        dir,
        store,
        clock,
        id: migration.id,
        driver,
    }
}

impl Harness {
    /// Polls the store until `check` holds (deadline 20 s of real time).
    async fn until(&self, what: &str, check: impl Fn(&Harness) -> bool) {
        let deadline = Instant::now() + std::time::Duration::from_secs(20);
        while !check(self) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; state {:?}, steps {:?}",
                self.state(),
                self.store.steps(&self.id)
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    fn state(&self) -> MigrationState {
        self.store
            .migration(&self.id)
            .expect("read the migration")
            .expect("the migration exists")
            .state
    }

    fn step(&self, id: &str) -> sensei::store::StepRow {
        self.store
            .steps(&self.id)
            .expect("read the steps")
            .into_iter()
            .find(|r| r.step == id)
            .unwrap_or_else(|| panic!("no step {id}"))
    }

    fn events(&self) -> Vec<sensei::event::Event> {
        self.store.events(&self.id, 0).expect("read the events")
    }

    fn kinds(&self) -> Vec<EventKind> {
        self.events().iter().map(|e| e.kind).collect()
    }

    /// The kinds of the events of one step.
    fn kinds_of(&self, step: &str) -> Vec<EventKind> {
        self.events()
            .iter()
            .filter(|e| e.step.as_deref() == Some(step))
            .map(|e| e.kind)
            .collect()
    }

    fn at(&self, hours: i64, minutes: i64) {
        self.clock
            .set(t0() + Duration::hours(hours) + Duration::minutes(minutes));
    }

    /// Waits for the driver to end (deadline 20 s of real time).
    async fn finish(&mut self) -> MigrationState {
        let ended = tokio::time::timeout(std::time::Duration::from_secs(20), &mut self.driver)
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "the driver did not end; state {:?}, steps {:?}",
                    self.state(),
                    self.store.steps(&self.id)
                )
            });
        match ended {
            Ok(Ok(state)) => state,
            other => panic!("driver ended badly: {other:?}"),
        }
    }
}

const NIGHTLY: &str = r#"
version: 1
name: nightly
on_failure: ON_FAILURE
windows:
  night: { cron: "0 1 * * *", duration: 1h, timezone: UTC, cutoff: 10m, on_close: ON_CLOSE }
steps:
  - id: prepare
    run: "true"
  - id: freeze
    needs: [prepare]
    window: night
    wait: 30m
  - id: switch
    needs: [freeze]
    window: night
    estimate: 25m
    run: echo switched >> trace
    rollback: echo unswitched >> trace
"#;

fn nightly(on_close: &str) -> String {
    NIGHTLY
        .replace("ON_CLOSE", on_close)
        .replace("ON_FAILURE", "fail")
}

#[tokio::test]
async fn a_bound_step_waits_for_its_window_and_the_migration_stays_approved() {
    let mut h = start(&nightly("pause")).await;
    h.until("freeze to wait", |h| {
        h.step("freeze").state == StepState::Waiting
    })
    .await;
    assert_eq!(
        h.state(),
        MigrationState::Running,
        "prepare ran, so the migration is running"
    );
    assert_eq!(
        h.step("freeze").reason.as_deref(),
        Some("window night opens Sat 01:00 UTC (in 1h)")
    );
    h.at(1, 0);
    h.until("freeze to run", |h| {
        h.step("freeze").state == StepState::Running
    })
    .await;
    h.at(1, 30);
    h.until("switch to run", |h| {
        h.step("switch").state == StepState::Succeeded
    })
    .await;
    assert_eq!(
        std::fs::read_to_string(h.dir.path().join("trace")).expect("the trace"),
        "switched\n"
    );
    assert_eq!(h.finish().await, MigrationState::Certified);
}

#[tokio::test]
async fn only_bound_steps_left_and_a_closed_window_keep_the_migration_approved() {
    let text = r#"
version: 1
name: only-bound
windows:
  night: { cron: "0 1 * * *", duration: 1h, timezone: UTC }
steps:
  - id: switch
    window: night
    run: "true"
"#;
    let mut h = start(text).await;
    h.until("switch to wait", |h| {
        h.step("switch").state == StepState::Waiting
    })
    .await;
    assert_eq!(h.state(), MigrationState::Approved);
    h.at(1, 5);
    assert_eq!(h.finish().await, MigrationState::Certified);
}

#[tokio::test]
async fn the_cutoff_and_the_estimate_decide_whether_a_bound_step_starts() {
    let mut h = start(&nightly("pause")).await;
    h.at(1, 0);
    h.until("freeze to run", |h| {
        h.step("freeze").state == StepState::Running
    })
    .await;
    // freeze ends at 01:40: switch's 25m estimate no longer fits before 02:00.
    h.at(1, 40);
    h.until("switch to wait", |h| {
        h.step("switch").state == StepState::Waiting
    })
    .await;
    let reason = h.step("switch").reason.expect("why switch waits");
    assert!(reason.contains("does not fit"), "{reason}");
    // The cutoff (01:50) with bound work left: window_closing.
    h.at(1, 50);
    h.until("window_closing", |h| {
        h.kinds().contains(&EventKind::WindowClosing)
    })
    .await;
    // The close (02:00): on_close pause; the migration pauses and resumes by itself at the
    // next opening.
    h.at(2, 0);
    h.until("paused", |h| h.state() == MigrationState::Paused)
        .await;
    h.at(25, 0);
    h.until("switch to succeed", |h| {
        h.step("switch").state == StepState::Succeeded
    })
    .await;
    assert_eq!(h.finish().await, MigrationState::Certified);
}

const LONG: &str = r#"
version: 1
name: long
windows:
  night: { cron: "0 1 * * *", duration: 1h, timezone: UTC, on_close: ON_CLOSE }
steps:
  - id: long-copy
    window: night
    run: "while [ ! -e go ]; do sleep 0.02; done"
    rollback: echo undone >> trace
  - id: switch
    needs: [long-copy]
    window: night
    run: echo switched >> trace
"#;

#[tokio::test]
async fn at_the_close_running_steps_finish_and_on_close_decides_the_rest() {
    for on_close in ["fail", "rollback"] {
        let mut h = start(&LONG.replace("ON_CLOSE", on_close)).await;
        h.at(1, 0);
        h.until("long-copy to run", |h| {
            h.step("long-copy").state == StepState::Running
        })
        .await;
        h.at(2, 0);
        h.until("window_closed", |h| {
            h.kinds().contains(&EventKind::WindowClosed)
        })
        .await;
        // Still running: a close never kills a step.
        assert_eq!(
            h.step("long-copy").state,
            StepState::Running,
            "on_close {on_close}"
        );
        std::fs::write(h.dir.path().join("go"), "").expect("go");
        let trace = h.dir.path().join("trace");
        assert_eq!(
            h.finish().await,
            MigrationState::Failed,
            "on_close {on_close}"
        );
        let (store, id) = (h.store.clone(), h.id.clone());
        let rows = store.steps(&id).expect("read the steps");
        let state = |s: &str| rows.iter().find(|r| r.step == s).map(|r| r.state);
        assert_eq!(
            state("switch"),
            Some(StepState::Pending),
            "on_close {on_close}"
        );
        if on_close == "rollback" {
            assert_eq!(state("long-copy"), Some(StepState::RolledBack));
            let text = std::fs::read_to_string(&trace).expect("the trace");
            assert_eq!(text, "undone\n");
        } else {
            assert_eq!(state("long-copy"), Some(StepState::Succeeded));
            // The driver ended: neither switch nor a rollback wrote the trace, nor will.
            assert!(!trace.exists(), "on_close {on_close}");
        }
    }
}

#[tokio::test]
async fn gate_timeouts_run_on_the_clock() {
    for (on_timeout, end) in [
        ("approve", MigrationState::Certified),
        ("cancel", MigrationState::Cancelled),
        ("fail", MigrationState::Cancelled),
    ] {
        let text = format!(
            "version: 1\nname: g\nsteps:\n  - id: signoff\n    gate: {{ approvers: [bob], timeout: 2h, on_timeout: {on_timeout} }}\n  - id: go\n    run: \"true\"\n"
        );
        let mut h = start(&text).await;
        h.until("the gate to wait", |h| {
            h.step("signoff").state == StepState::Waiting
        })
        .await;
        h.at(1, 59);
        // The reminder (due at 1:30) shows the driver looked at the gate at 1:59, deadline
        // included.
        h.until("the reminder", |h| {
            h.kinds().contains(&EventKind::GateTimeoutSoon)
        })
        .await;
        assert_eq!(
            h.step("signoff").state,
            StepState::Waiting,
            "{on_timeout}: not yet"
        );
        assert!(
            !h.kinds().contains(&EventKind::GateDecided),
            "{on_timeout}: decided before the deadline"
        );
        h.at(2, 0);
        assert_eq!(h.finish().await, end, "on_timeout {on_timeout}");
    }
}

#[tokio::test]
async fn without_an_estimate_a_bound_step_uses_the_median_of_its_earlier_runs() {
    let text = r#"
version: 1
name: observed
windows:
  night: { cron: "0 1 * * *", duration: 1h, timezone: UTC }
steps:
  - id: copy
    window: night
    wait: 40m
"#;
    let mut first = start(text).await;
    first.at(1, 0);
    first
        .until("copy to run", |h| {
            h.step("copy").state == StepState::Running
        })
        .await;
    first.at(1, 40);
    assert_eq!(first.finish().await, MigrationState::Certified);

    // The next night, 20 minutes before the close: 40 minutes observed do not fit.
    first.at(25, 40);
    let second = start_on(Arc::clone(&first.dir), Arc::clone(&first.clock), text).await;
    second
        .until("copy to wait", |h| {
            h.step("copy").state == StepState::Waiting
        })
        .await;
    let reason = second.step("copy").reason.expect("why copy waits");
    assert!(reason.contains("does not fit"), "{reason}");
    assert!(reason.contains("40m"), "{reason}");
}

const POLLING: &str = r#"
version: 1
name: polling
steps:
  - id: lag
    check: "{{lt probe.outputs.lag 5}}"
    probe: { run: "echo lag=$(cat lag) >> $SENSEI_OUTPUT" }
    every: 30s
    stable_for: 2m
    timeout: 10m
"#;

#[tokio::test]
async fn an_automatic_gate_passes_once_its_condition_held_for_stable_for() {
    let h = start(POLLING).await;
    let lag = |v: &str| std::fs::write(h.dir.path().join("lag"), v).expect("lag");
    lag("9");
    h.until("the check to run", |h| {
        h.step("lag").state == StepState::Running
    })
    .await;
    let logs = |h: &Harness| {
        h.store
            .logs(&h.id, Some("lag"))
            .expect("read the logs")
            .len()
    };
    h.until("a first evaluation", |h| logs(h) >= 1).await;
    lag("3");
    // Held at 0:30, 1:00, 1:30; a relapse at 2:00 resets it; held again from 2:30 to 4:30.
    for (m, s) in [(0, 30), (1, 0), (1, 30)] {
        let n = logs(&h);
        h.clock
            .set(t0() + Duration::minutes(m) + Duration::seconds(s));
        h.until("an evaluation", |h| logs(h) > n).await;
    }
    lag("7");
    let n = logs(&h);
    h.at(0, 2);
    h.until("the relapse", |h| logs(h) > n).await;
    lag("2");
    for minutes in [2.5, 3.0, 3.5, 4.0] {
        let n = logs(&h);
        h.clock
            .set(t0() + Duration::seconds((minutes * 60.0) as i64));
        h.until("an evaluation", |h| logs(h) > n).await;
        assert_eq!(
            h.step("lag").state,
            StepState::Running,
            "passed too early at {minutes}m"
        );
    }
    h.clock.set(t0() + Duration::seconds(270));
    h.until("the gate to pass", |h| {
        h.step("lag").state == StepState::Succeeded
    })
    .await;
}

#[tokio::test]
async fn an_automatic_gate_fails_at_its_timeout() {
    let mut h = start(POLLING).await;
    std::fs::write(h.dir.path().join("lag"), "60").expect("lag");
    h.until("the check to run", |h| {
        h.step("lag").state == StepState::Running
    })
    .await;
    // The check measures its timeout from its first evaluation, which must see 00:00.
    h.until("a first evaluation", |h| {
        !h.store
            .logs(&h.id, Some("lag"))
            .expect("read the logs")
            .is_empty()
    })
    .await;
    h.at(0, 10);
    assert_eq!(h.finish().await, MigrationState::Failed);
    let error = h.step("lag").error.expect("the step's error");
    assert_eq!(
        error,
        "the check did not hold for 2m within its timeout of 10m (last evaluation: the check did not hold)"
    );
}

#[tokio::test]
async fn a_gate_reminds_that_it_times_out_soon() {
    // `nudge` is reminded at 1:22:30, in the same look at the gates as signoff's reminder
    // would be: the marker that the driver has seen 1:29.
    let text = "version: 1\nname: remind\nsteps:\n  - id: signoff\n    gate: { approvers: [bob], timeout: 2h, on_timeout: cancel }\n  - id: nudge\n    gate: { approvers: [bob], timeout: 1h50m, on_timeout: approve }\n";
    let h = start(text).await;
    h.until("the gates to wait", |h| {
        h.step("signoff").state == StepState::Waiting && h.step("nudge").state == StepState::Waiting
    })
    .await;
    h.at(1, 29);
    h.until("nudge's reminder", |h| {
        h.kinds_of("nudge").contains(&EventKind::GateTimeoutSoon)
    })
    .await;
    assert!(
        !h.kinds_of("signoff").contains(&EventKind::GateTimeoutSoon),
        "reminded too early"
    );
    // A quarter of the 2h timeout before the deadline.
    h.at(1, 30);
    h.until("the reminder", |h| {
        h.kinds_of("signoff").contains(&EventKind::GateTimeoutSoon)
    })
    .await;
    let reminder = h
        .events()
        .into_iter()
        .find(|e| e.kind == EventKind::GateTimeoutSoon && e.step.as_deref() == Some("signoff"))
        .map(|e| e.data)
        .expect("signoff's reminder");
    assert_eq!(reminder["deadline"], "2027-03-06T02:00:00+00:00");
    assert_eq!(reminder["approvers"], serde_json::json!(["bob"]));
}

#[tokio::test]
async fn a_window_paused_migration_recovered_by_a_new_driver_waits_for_the_next_opening() {
    // `watch`, a gate of the execute phase opened at 00:00, is reminded at 12:00 (an hour
    // before its 13h deadline): the marker that the recovered driver has looked at 12:00,
    // windows included.
    let watch = "  - id: watch\n    phase: execute\n    gate: { approvers: [bob], timeout: 13h, on_timeout: approve }\n";
    let mut h = start(&(nightly("pause") + watch)).await;
    h.until("watch to wait", |h| {
        h.step("watch").state == StepState::Waiting
    })
    .await;
    h.at(1, 0);
    h.until("freeze to run", |h| {
        h.step("freeze").state == StepState::Running
    })
    .await;
    h.at(1, 40);
    h.until("switch to wait", |h| {
        h.step("switch").state == StepState::Waiting
    })
    .await;
    h.at(2, 0);
    h.until("paused", |h| h.state() == MigrationState::Paused)
        .await;
    // The driver stops (a server shutting down); a new one recovers the migration.
    h.stop.send_replace(true);
    assert_eq!(h.finish().await, MigrationState::Paused);
    let mut opts = Options::new(h.dir.path().to_path_buf(), "server".into());
    opts.clock = h.clock.clone();
    opts.poll = std::time::Duration::from_millis(10);
    let driver = engine::attach(&h.store, &h.id, opts, Box::new(Quiet), Attach::Recover)
        .await
        .expect("recover");
    h.driver = tokio::spawn(driver.drive());
    h.at(12, 0);
    h.until("watch's reminder", |h| {
        h.kinds_of("watch").contains(&EventKind::GateTimeoutSoon)
    })
    .await;
    assert_eq!(
        h.state(),
        MigrationState::Paused,
        "still waiting for the window"
    );
    h.at(25, 0);
    assert_eq!(h.finish().await, MigrationState::Certified);
}
