//! Creating, reading back, reopening, resolving ids and opening failures. Every test runs
//! on each backend (`pg::each`) but those about SQLite's own file: its directory, WAL, and
//! upgrades of old SQLite schemas.

use super::checkpoints::DROP_CHECKPOINT;
use super::*;
use crate::event::MigrationState;

#[test]
fn create_and_read_back() {
    for (store, _fresh) in pg::each() {
        let created = store
            .create_migration(new_migration("m-aaaa00000001", &["a", "b", "c"]))
            .unwrap();
        assert_eq!(created.state, MigrationState::Created);
        assert_eq!(created.last_seq, 1);

        let read = store.migration(&created.id).unwrap().unwrap();
        assert_eq!(read, created);
        assert_eq!(read.params["dsn"], "postgres://secret");
        assert_eq!(read.masked_params["dsn"], "***");

        let events = store.events(&created.id, 0).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].seq, 1);
        assert_eq!(events[0].kind, EventKind::MigrationCreated);
        assert_eq!(events[0].data, json!({"runbook": "orders-cutover"}));
        assert_eq!(events[0].at, created.updated_at);

        let steps = store.steps(&created.id).unwrap();
        let names: Vec<_> = steps.iter().map(|s| s.step.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert!(
            steps
                .iter()
                .all(|s| s.state == StepState::Pending && s.attempts == 0)
        );

        assert_eq!(store.latest().unwrap(), Some(created.id.clone()));
        assert_eq!(store.migration(&id("m-nope")).unwrap(), None);
    }
}

#[test]
fn a_second_create_with_the_same_id_is_refused() {
    for (store, _fresh) in pg::each() {
        create(&store, "m-aaaa00000001");
        let err = store
            .create_migration(new_migration("m-aaaa00000001", &[]))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "a migration with id m-aaaa00000001 already exists"
        );
    }
}

#[test]
fn of_two_creates_of_one_id_at_once_exactly_one_succeeds() {
    for (store, fresh) in pg::each() {
        let other = fresh.open();
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
        let results: Vec<_> = [store, other]
            .into_iter()
            .map(|store| {
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    store.create_migration(new_migration("m-aaaa00000001", &["a"]))
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect();
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{fresh}");
        assert!(
            results
                .iter()
                .any(|r| matches!(r, Err(StoreError::Exists(_)))),
            "{fresh}: {results:?}"
        );
    }
}

#[test]
fn commit_sets_state_appends_events_and_upserts_steps_in_place() {
    for (store, _fresh) in pg::each() {
        let m = create(&store, "m-aaaa00000001");
        let mut started = step("b", StepState::Running);
        started.attempts = 1;
        started.started_at = Some(at(5));
        let committed = store
            .commit(
                &m,
                Batch {
                    expect_state: Some(MigrationState::Created),
                    state: Some(MigrationState::Analyzing),
                    events: vec![
                        event(EventKind::StateChanged, "b"),
                        event(EventKind::StepStarted, "b"),
                    ],
                    steps: vec![started.clone(), step("z", StepState::Waiting)],
                    ..Batch::default()
                },
            )
            .unwrap();
        assert_eq!(committed.seqs, [2, 3]);

        let read = store.migration(&m).unwrap().unwrap();
        assert_eq!(read.state, MigrationState::Analyzing);
        assert_eq!(read.last_seq, 3);
        assert_eq!(read.updated_at, committed.at);

        let events = store.events(&m, 1).unwrap();
        assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), [2, 3]);
        assert!(events.iter().all(|e| e.at == committed.at));
        assert_eq!(events[1].step.as_deref(), Some("b"));

        let steps = store.steps(&m).unwrap();
        let names: Vec<_> = steps.iter().map(|s| s.step.as_str()).collect();
        assert_eq!(
            names,
            ["a", "b", "c", "z"],
            "an upsert keeps the row's place"
        );
        assert_eq!(steps[1], started);

        let mut done = started;
        done.state = StepState::Succeeded;
        done.finished_at = Some(at(9));
        done.exit_code = Some(0);
        done.outputs = Some(json!({"rows": 42}));
        store
            .commit(
                &m,
                Batch {
                    steps: vec![done.clone()],
                    ..Batch::default()
                },
            )
            .unwrap();
        assert_eq!(store.steps(&m).unwrap()[1], done);
        assert_eq!(
            store.migration(&m).unwrap().unwrap().state,
            MigrationState::Analyzing,
            "a batch without a state keeps the state"
        );
    }
}

#[test]
fn commit_to_an_unknown_migration_is_not_found() {
    for (store, _fresh) in pg::each() {
        let err = store.commit(&id("m-nope"), Batch::default()).unwrap_err();
        assert_eq!(err.to_string(), "no migration matches `m-nope`");
    }
}

#[test]
fn reopening_keeps_everything() {
    for (first, fresh) in pg::each() {
        let (m, before) = {
            let store = first;
            let m = create(&store, "m-aaaa00000001");
            store
                .commit(
                    &m,
                    Batch {
                        state: Some(MigrationState::Analyzing),
                        events: vec![event(EventKind::StepStarted, "a")],
                        steps: vec![step("a", StepState::Running)],
                        ..Batch::default()
                    },
                )
                .unwrap();
            store.log(
                &m,
                NewLogLine {
                    step: "a".to_owned(),
                    attempt: 1,
                    stream: LogStream::Stdout,
                    at: at(1),
                    text: "copied 10 rows".to_owned(),
                },
            );
            // No flush: dropping the store must drain the queue.
            let before = store.migration(&m).unwrap();
            (m, before)
        };
        let store = fresh.open();
        assert_eq!(store.migration(&m).unwrap(), before, "{fresh}");
        assert_eq!(store.events(&m, 0).unwrap().len(), 2);
        assert_eq!(store.steps(&m).unwrap()[0].state, StepState::Running);
        let logs = store.logs(&m, Some("a")).unwrap();
        assert_eq!(logs.len(), 1, "{fresh}");
        assert_eq!(logs[0].text, "copied 10 rows");
    }
}

#[test]
fn list_is_newest_first_and_filters_by_state() {
    for (store, _fresh) in pg::each() {
        let one = create(&store, "m-aaaa00000001");
        let two = create(&store, "m-aaaa00000002");
        let three = create(&store, "m-aaaa00000003");
        store
            .commit(
                &two,
                Batch {
                    state: Some(MigrationState::Analyzing),
                    ..Batch::default()
                },
            )
            .unwrap();
        let all: Vec<_> = store
            .list(None)
            .unwrap()
            .into_iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(all, [three.clone(), two.clone(), one.clone()]);
        let created: Vec<_> = store
            .list(Some(MigrationState::Created))
            .unwrap()
            .into_iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(created, [three.clone(), one]);
        assert_eq!(store.latest().unwrap(), Some(three));
    }
}

#[test]
fn resolve_id_takes_an_exact_id_or_a_unique_prefix() {
    for (store, _fresh) in pg::each() {
        assert_eq!(store.latest().unwrap(), None);
        create(&store, "m-1abc");
        create(&store, "m-1abd");
        create(&store, "m-2xyz");
        create(&store, "m-2");
        assert_eq!(store.resolve_id("m-2xyz").unwrap(), id("m-2xyz"));
        assert_eq!(store.resolve_id("m-2x").unwrap(), id("m-2xyz"));
        assert_eq!(
            store.resolve_id("m-2").unwrap(),
            id("m-2"),
            "an exact id wins over the ids it prefixes"
        );
        assert_eq!(
            store.resolve_id("m-1").unwrap_err().to_string(),
            "`m-1` matches 2 migrations: m-1abc, m-1abd; give more characters"
        );
        assert_eq!(
            store.resolve_id("m-zz").unwrap_err().to_string(),
            "no migration matches `m-zz`"
        );
        assert!(matches!(store.resolve_id(""), Err(StoreError::NotFound(_))));
        // LIKE wildcards are not wildcards here.
        assert!(matches!(
            store.resolve_id("m-_"),
            Err(StoreError::NotFound(_))
        ));
    }
}

#[test]
fn an_ambiguous_prefix_names_the_first_few() {
    for (store, _fresh) in pg::each() {
        for i in 0..8 {
            create(&store, &format!("m-x{i}"));
        }
        assert_eq!(
            store.resolve_id("m-x").unwrap_err().to_string(),
            "`m-x` matches 8 migrations: m-x0, m-x1, m-x2, m-x3, m-x4, …; give more characters"
        );
    }
}

/// SQLite's own: its state directory.
#[test]
fn a_state_dir_that_cannot_be_created_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let err = Store::open(&file.join(".sensei")).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!(
            "the state directory {} is not writable: ",
            file.join(".sensei").display()
        )),
        "{msg}"
    );
}

/// SQLite's own: its `user_version`.
#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path()).unwrap());
    raw(&dir)
        .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    let err = Store::open(dir.path()).unwrap_err();
    assert!(
        matches!(err, StoreError::NewerSchema { found, .. } if found == SCHEMA_VERSION + 1),
        "{err}"
    );
    assert!(err.to_string().ends_with("upgrade sensei"));
}

/// SQLite's own: its journal mode.
#[test]
fn durability_normal_opens_and_commits() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), Durability::Normal).unwrap();
    let m = create(&store, "m-aaaa00000001");
    let mode: String = raw(&dir)
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    assert_eq!(store.events(&m, 0).unwrap().len(), 1);
}

/// SQLite's own: an upgrade of an old SQLite file.
#[test]
fn a_version_5_store_knows_its_kept_steps_by_their_old_reason() {
    let (dir, store) = store();
    let m = create(&store, "m-kept");
    let mut kept = step("a", StepState::Pending);
    kept.reason = Some("kept from an earlier run".into());
    let mut other = step("b", StepState::Pending);
    other.reason = Some("waits for window night".into());
    store
        .commit(
            &m,
            Batch {
                steps: vec![kept, other],
                ..Batch::default()
            },
        )
        .unwrap();
    drop(store);
    // What version 5 kept: the reason's words, no flag (and no progress, SQL files or
    // checkpoint, which came later).
    raw(&dir)
        .execute_batch(&format!(
            "{DROP_CHECKPOINT} {DROP_FILES} {DROP_PROGRESS} ALTER TABLE steps DROP COLUMN kept; PRAGMA user_version = 5;"
        ))
        .unwrap();
    let store = Store::open(dir.path()).unwrap();
    let rows = store.steps(&m).unwrap();
    let flags: Vec<(&str, bool)> = rows.iter().map(|r| (r.step.as_str(), r.kept)).collect();
    assert_eq!(flags, [("a", true), ("b", false), ("c", false)]);
}

/// What version 8 added to a version 7 store.
const DROP_FILES: &str = "ALTER TABLE migrations DROP COLUMN runbook_files;";

/// What version 7 added to a version 6 store.
const DROP_PROGRESS: &str = "ALTER TABLE steps DROP COLUMN progress_done;
    ALTER TABLE steps DROP COLUMN progress_total; ALTER TABLE steps DROP COLUMN progress_at;";

/// SQLite's own: an upgrade of an old SQLite file (progress itself: the next test).
#[test]
fn a_version_6_store_opens_upgraded_and_then_keeps_progress() {
    let (dir, store) = store();
    let m = create(&store, "m-progress");
    drop(store);
    raw(&dir)
        .execute_batch(&format!(
            "{DROP_CHECKPOINT} {DROP_FILES} {DROP_PROGRESS} PRAGMA user_version = 6;"
        ))
        .unwrap();
    let store = Store::open(dir.path()).unwrap();
    let rows = store.steps(&m).unwrap();
    assert!(rows.iter().all(|r| r.progress.is_none()), "{rows:?}");
    let running = reporting();
    store
        .commit(
            &m,
            Batch {
                steps: vec![running.clone()],
                ..Batch::default()
            },
        )
        .unwrap();
    assert_eq!(store.steps(&m).unwrap()[0], running);
}

/// A running step `a` that reported progress, its total as large as a store keeps.
fn reporting() -> StepRow {
    let mut running = step("a", StepState::Running);
    running.progress = Some(Reported {
        progress: crate::event::Progress {
            done: 42,
            total: i64::MAX as u64,
        },
        at: at(5),
    });
    running
}

#[test]
fn progress_reads_back_as_reported_and_shows_only_when_reported() {
    for (store, fresh) in pg::each() {
        let m = create(&store, "m-progress");
        let running = reporting();
        store
            .commit(
                &m,
                Batch {
                    steps: vec![running.clone()],
                    ..Batch::default()
                },
            )
            .unwrap();
        let rows = store.steps(&m).unwrap();
        assert_eq!(rows[0], running, "{fresh}");
        assert!(rows[1..].iter().all(|r| r.progress.is_none()), "{fresh}");
        let shown = serde_json::to_value(&rows[0]).unwrap();
        assert_eq!(
            shown["progress"],
            json!({ "done": 42, "total": i64::MAX, "at": "2023-11-14T22:13:25Z" })
        );
        // A row that reported nothing shows no progress at all.
        assert!(
            serde_json::to_value(&rows[1])
                .unwrap()
                .get("progress")
                .is_none()
        );
    }
}

#[test]
fn a_value_the_store_cannot_read_is_refused_as_corrupt() {
    for (store, fresh) in pg::each() {
        let m = create(&store, "m-aaaa00000001");
        fresh.execute("UPDATE steps SET started_at = 'yesterday' WHERE step = 'b'");
        let err = store.steps(&m).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(_)), "{fresh}: {err}");
        fresh.execute("UPDATE migrations SET state = 'sleeping'");
        let err = store.migration(&m).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(_)), "{fresh}: {err}");
        assert!(err.to_string().contains("sleeping"), "{fresh}: {err}");
    }
}
