//! What every backend owes, checked on each: writes read back, a fenced commit is refused
//! once its lease is gone, one lease at a time, pool slots counted and given back, and the
//! change feed moves on every commit.

use super::*;

const TTL: std::time::Duration = std::time::Duration::from_secs(30);

/// Every check, in order, on a fresh backend.
fn contract(backend: &Store) {
    let mut changes = backend.changes();
    let m = backend
        .create_migration(new_migration("m-aaaa00000001", &["a", "b"]))
        .unwrap();
    assert!(changes.has_changed().unwrap(), "a commit moves the feed");
    changes.borrow_and_update();
    assert_eq!(backend.migration(&m.id).unwrap(), Some(m.clone()));
    assert_eq!(backend.steps(&m.id).unwrap().len(), 2);

    let lease = backend.acquire_lease(&m.id, TTL).unwrap();
    assert!(
        matches!(
            backend.acquire_lease(&m.id, TTL),
            Err(LeaseError::Held { .. })
        ),
        "one lease at a time"
    );
    backend.renew_lease(&lease, TTL).unwrap();

    let fenced = |lease: &Lease, step: &str| Batch {
        events: vec![event(EventKind::StepStarted, step)],
        steps: vec![self::step(step, StepState::Running)],
        fence: Some(lease.clone()),
        ..Batch::default()
    };
    let committed = backend.commit(&m.id, fenced(&lease, "a")).unwrap();
    assert_eq!(committed.seqs.len(), 1);
    assert!(changes.has_changed().unwrap());
    let events = backend.events(&m.id, 0).unwrap();
    assert_eq!(events.last().map(|e| e.seq), committed.seqs.last().copied());

    let stale = Lease {
        token: "not-the-holder".to_owned(),
        ..lease.clone()
    };
    let refused = backend.commit(&m.id, fenced(&stale, "b"));
    assert!(matches!(refused, Err(StoreError::Fenced(_))), "{refused:?}");
    assert_eq!(
        backend.events(&m.id, 0).unwrap().len(),
        events.len(),
        "a refused batch writes nothing"
    );

    let slot = match backend.take_pool_slot("db", 1, "a", &lease).unwrap() {
        PoolTake::Taken(slot) => slot,
        PoolTake::Full(holders) => panic!("an empty pool is full: {holders:?}"),
    };
    assert!(
        matches!(
            backend.take_pool_slot("db", 1, "b", &lease).unwrap(),
            PoolTake::Full(_)
        ),
        "a pool of one holds one"
    );
    backend.release_pool_slot(slot);
    assert!(
        matches!(
            backend.take_pool_slot("db", 1, "b", &lease).unwrap(),
            PoolTake::Taken(_)
        ),
        "a released slot is taken again by the next write"
    );

    backend.release_lease(&lease).unwrap();
    let again = backend.acquire_lease(&m.id, TTL).unwrap();
    assert_ne!(again.token, lease.token, "a new acquisition, a new token");
}

#[test]
fn every_backend_keeps_the_contract() {
    for (store, _fresh) in pg::each() {
        contract(&store);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_writes_resolve_once_durable_on_every_backend() {
    for (store, _fresh) in pg::each() {
        let id = MigrationId::from("m-aaaa00000002".to_owned());
        let create = store.clone();
        let m = tokio::task::spawn_blocking(move || {
            create.create_migration(new_migration("m-aaaa00000002", &["a"]))
        })
        .await
        .unwrap()
        .unwrap();
        let batch = Batch {
            events: vec![event(EventKind::StepStarted, "a")],
            ..Batch::default()
        };
        let committed = store.commit_async(&m.id, batch).await.unwrap();
        assert_eq!(committed.seqs, vec![2]);
        assert_eq!(store.events(&id, 1).unwrap().len(), 1);
    }
}
