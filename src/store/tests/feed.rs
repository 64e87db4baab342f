//! The change feed: it moves on a store's own commits before the caller hears back, and on
//! another process's (or server's) commits, on each backend (`pg::each`); and SQLite's
//! `data_version`, which its feed polls.

use super::*;

#[test]
fn the_change_feed_moves_on_its_own_commits_before_the_caller_hears_back() {
    for (store, fresh) in pg::each() {
        let mut changes = store.changes();
        changes.borrow_and_update();
        let m = create(&store, "m-aaaa00000001");
        assert!(
            changes.has_changed().unwrap(),
            "{fresh}: moved by the time the call returned"
        );
        changes.borrow_and_update();
        store.commit(&m, Batch::default()).unwrap();
        assert!(
            changes.has_changed().unwrap(),
            "{fresh}: every commit moves it"
        );
    }
}

#[test]
fn the_change_feed_notices_another_process_commit() {
    for (watcher, fresh) in pg::each() {
        let other = fresh.open();
        let mut changes = watcher.changes();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        // Twice: the second commit comes once the watcher surely listens (the first may
        // come before and be noticed only as a possible miss).
        for n in 1..=2 {
            changes.borrow_and_update();
            create(&other, &format!("m-aaaa0000000{n}"));
            let noticed = runtime.block_on(async {
                tokio::time::timeout(std::time::Duration::from_secs(10), changes.changed()).await
            });
            assert!(
                matches!(noticed, Ok(Ok(()))),
                "{fresh}: commit {n} was noticed: {noticed:?}"
            );
        }
    }
}

/// SQLite's own: its `PRAGMA data_version`.
#[test]
fn data_version_changes_when_another_store_writes() {
    let dir = tempfile::tempdir().unwrap();
    let watcher = Store::open(dir.path()).unwrap();
    let other = Store::open(dir.path()).unwrap();
    let before = watcher.as_sqlite().unwrap().data_version().unwrap();
    assert_eq!(
        watcher.as_sqlite().unwrap().data_version().unwrap(),
        before,
        "stable while idle"
    );
    let m = create(&other, "m-aaaa00000001");
    let after = watcher.as_sqlite().unwrap().data_version().unwrap();
    assert_ne!(after, before);
    assert_eq!(
        watcher.migration(&m).unwrap().map(|m| m.id),
        Some(m.clone()),
        "and the other store's writes are visible"
    );
    create(&watcher, "m-aaaa00000002");
    assert_ne!(
        watcher.as_sqlite().unwrap().data_version().unwrap(),
        after,
        "its own writer is another connection too"
    );
}
