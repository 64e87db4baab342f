//! The scheduler task on a [`ManualClock`], against a real store and drivers: overlap
//! (skip, queue, allow) while an earlier scheduled migration still runs, and catch-up at
//! startup.

#![allow(clippy::unwrap_used)]
use super::*;
use crate::engine::clock::ManualClock;
use crate::server::auth::Tokens;
use crate::server::{Drivers, Runbooks};
use crate::store::Store;
use std::path::Path;

/// A runbook whose step holds until the file `go` exists in the runbooks directory.
fn holding(name: &str, overlap: &str) -> String {
    format!(
        r#"version: 1
name: {name}
schedules:
  - cron: "* * * * *"
    overlap: {overlap}
steps:
  - id: hold
    run: while [ ! -f go ]; do sleep 0.05; done
"#
    )
}

fn t(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

fn state(dir: &Path, clock: Arc<ManualClock>) -> AppState {
    let store = Store::open(&dir.join("state")).unwrap();
    let runbooks = Arc::new(Runbooks::load(&dir.join("runbooks"), Default::default()));
    let drivers = Arc::new(Drivers::new(
        store.clone(),
        clock,
        None,
        crate::process::Inherited::from_process(&[]),
        crate::config::DEFAULT_LEASE_TIME,
    ));
    let tokens = Tokens::from_specs(&[], |_| None).unwrap();
    AppState::new(store, runbooks, drivers, tokens, 1024)
}

/// The runbook's migrations, oldest first: (fire time, state).
fn of(state: &AppState, runbook: &str) -> Vec<(DateTime<Utc>, MigrationState)> {
    let mut all: Vec<(DateTime<Utc>, MigrationState)> = state
        .store
        .list(None)
        .unwrap()
        .iter()
        .filter(|m| m.runbook == runbook)
        .map(|m| (fire_time(&m.id, runbook, 0).unwrap(), m.state))
        .collect();
    all.sort();
    all
}

async fn until(what: &str, mut probe: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if probe() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

fn states(state: &AppState, runbook: &str) -> Vec<MigrationState> {
    of(state, runbook).into_iter().map(|(_, s)| s).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlap_skips_queues_or_allows_while_the_previous_one_runs() {
    use MigrationState::{Certified, Created, Running};
    let dir = tempfile::tempdir().unwrap();
    let books = dir.path().join("runbooks");
    std::fs::create_dir_all(&books).unwrap();
    for (name, overlap) in [("skip", "skip"), ("queue", "queue"), ("allow", "allow")] {
        std::fs::write(books.join(format!("{name}.yaml")), holding(name, overlap)).unwrap();
    }
    let clock = Arc::new(ManualClock::new(t("2026-05-01T12:00:30Z")));
    let state = state(dir.path(), clock.clone());
    let task = tokio::spawn(run(state.clone(), clock.clone()));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(state.store.list(None).unwrap().is_empty());

    // 12:01: each schedule creates and starts one migration, which holds.
    clock.set(t("2026-05-01T12:01:00Z"));
    until("three running migrations", || {
        ["skip", "queue", "allow"]
            .iter()
            .all(|r| states(&state, r) == [Running])
    })
    .await;
    assert_eq!(of(&state, "skip")[0].0, t("2026-05-01T12:01:00Z"));

    // 12:02 while they hold: skip creates nothing, queue waits, allow runs a second.
    clock.set(t("2026-05-01T12:02:00Z"));
    until("the queued and the allowed fire times", || {
        states(&state, "queue") == [Running, Created]
            && states(&state, "allow") == [Running, Running]
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(states(&state, "skip"), [Running]);
    assert_eq!(states(&state, "queue"), [Running, Created]);

    // Released: the queued one starts once the first rests, and everything certifies.
    std::fs::write(books.join("go"), "").unwrap();
    until("every migration certified", || {
        states(&state, "skip") == [Certified]
            && states(&state, "queue") == [Certified, Certified]
            && states(&state, "allow") == [Certified, Certified]
    })
    .await;
    let queued = &of(&state, "queue")[1];
    assert_eq!(queued.0, t("2026-05-01T12:02:00Z"));

    state.shutdown.trigger();
    task.await.unwrap();
    state.drivers.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catch_up_all_creates_every_missed_fire_time_once() {
    let dir = tempfile::tempdir().unwrap();
    let books = dir.path().join("runbooks");
    std::fs::create_dir_all(&books).unwrap();
    std::fs::write(books.join("go"), "").unwrap();
    let text =
        holding("every", "allow").replace("overlap: allow", "overlap: allow\n    catch_up: all");
    std::fs::write(books.join("every.yaml"), text).unwrap();
    let clock = Arc::new(ManualClock::new(t("2026-05-01T12:00:00Z")));
    let state = state(dir.path(), clock.clone());
    // Never fired: a first start plans from now on, whatever catch_up says.
    Scheduler::default()
        .pass(&state, t("2026-05-01T12:00:00Z"), true)
        .await;
    assert!(
        of(&state, "every").is_empty(),
        "a new schedule fires from now on"
    );
    // A previous run fired 12:00.
    let active = state.runbooks.get("every").unwrap();
    create(&state, &active, 0, t("2026-05-01T12:00:00Z"), clock.now()).await;

    // Down until 12:03:30: 12:01, 12:02 and 12:03 were missed; all three are created, once.
    for _ in 0..2 {
        Scheduler::default()
            .pass(&state, t("2026-05-01T12:03:30Z"), true)
            .await;
    }
    let fires: Vec<DateTime<Utc>> = of(&state, "every").into_iter().map(|(f, _)| f).collect();
    assert_eq!(
        fires,
        [
            t("2026-05-01T12:00:00Z"),
            t("2026-05-01T12:01:00Z"),
            t("2026-05-01T12:02:00Z"),
            t("2026-05-01T12:03:00Z"),
        ]
    );
    until("all certified", || {
        states(&state, "every")
            .iter()
            .all(|s| *s == MigrationState::Certified)
    })
    .await;
    state.shutdown.trigger();
    state.drivers.shutdown(Duration::from_secs(1)).await;
}
