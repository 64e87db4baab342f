//! A step's checkpoint (schema version 8): kept on its row with the attempt that wrote it,
//! read back as written (on each backend, `pg::each`), and absent from rows of SQLite
//! stores made before it existed.

use super::*;
use crate::event::Checkpoint;

/// What version 8 added to a version 7 store.
pub(super) const DROP_CHECKPOINT: &str = "ALTER TABLE steps DROP COLUMN checkpoint;
    ALTER TABLE steps DROP COLUMN checkpoint_attempt; ALTER TABLE steps DROP COLUMN checkpoint_at;";

/// SQLite's own: an upgrade of an old SQLite file (checkpoints themselves: the next test).
#[test]
fn a_version_7_store_opens_upgraded_and_then_keeps_checkpoints() {
    let (dir, store) = store();
    let m = create(&store, "m-checkpoint");
    let mut reported = step("a", StepState::Running);
    reported.progress = Some(Reported {
        progress: crate::event::Progress { done: 1, total: 2 },
        at: at(1),
    });
    store
        .commit(
            &m,
            Batch {
                steps: vec![reported.clone()],
                ..Batch::default()
            },
        )
        .unwrap();
    drop(store);
    raw(&dir)
        .execute_batch(&format!("{DROP_CHECKPOINT} PRAGMA user_version = 8;"))
        .unwrap();
    let store = Store::open(dir.path()).unwrap();
    let rows = store.steps(&m).unwrap();
    assert_eq!(rows[0], reported, "what version 8 kept is read as it was");
    assert!(rows.iter().all(|r| r.checkpoint.is_none()), "{rows:?}");
    let version: i64 = raw(&dir)
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let failed = failed();
    store
        .commit(
            &m,
            Batch {
                steps: vec![failed.clone()],
                ..Batch::default()
            },
        )
        .unwrap();
    assert_eq!(store.steps(&m).unwrap()[0], failed);
}

/// Step `a` failed in its second attempt, which recorded a checkpoint.
fn failed() -> StepRow {
    let mut failed = step("a", StepState::Failed);
    failed.attempts = 2;
    failed.checkpoint = Some(Checkpoint {
        value: "orders:42000 \t€".into(),
        attempt: 2,
        at: at(5),
    });
    failed
}

#[test]
fn a_checkpoint_reads_back_as_written_until_it_is_cleared() {
    for (store, fresh) in pg::each() {
        let m = create(&store, "m-checkpoint");
        let failed = failed();
        store
            .commit(
                &m,
                Batch {
                    steps: vec![failed.clone()],
                    ..Batch::default()
                },
            )
            .unwrap();
        assert_eq!(store.steps(&m).unwrap()[0], failed, "{fresh}");
        let shown = serde_json::to_value(&failed).unwrap();
        assert_eq!(
            shown["checkpoint"],
            json!({ "value": "orders:42000 \t€", "attempt": 2, "at": "2023-11-14T22:13:25Z" })
        );
        // A row without one shows none, and clearing it clears the columns.
        let mut cleared = failed;
        cleared.checkpoint = None;
        store
            .commit(
                &m,
                Batch {
                    steps: vec![cleared.clone()],
                    ..Batch::default()
                },
            )
            .unwrap();
        assert_eq!(store.steps(&m).unwrap()[0], cleared);
        assert!(
            serde_json::to_value(&cleared)
                .unwrap()
                .get("checkpoint")
                .is_none()
        );
    }
}
