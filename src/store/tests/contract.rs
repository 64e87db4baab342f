//! What any [`Backend`] owes, checked through a `&dyn Backend` so a second backend can run
//! the same checks: writes read back, a fenced commit is refused once its lease is gone, one
//! lease at a time, pool slots counted and given back, and the change feed moves on every commit.

use super::*;

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    runtime.block_on(future)
}

const TTL: Duration = Duration::from_secs(30);

/// Every check, in order, on a fresh backend.
async fn contract(backend: &dyn Backend) {
    let mut changes = backend.changes();
    let m = backend
        .create_migration(new_migration("m-aaaa00000001", &["a", "b"]))
        .await
        .unwrap();
    assert!(changes.has_changed().unwrap(), "a commit moves the feed");
    changes.borrow_and_update();
    assert_eq!(backend.migration(&m.id).await.unwrap(), Some(m.clone()));
    assert_eq!(backend.steps(&m.id).await.unwrap().len(), 2);

    let lease = backend.acquire_lease(&m.id, TTL).await.unwrap();
    assert!(
        matches!(
            backend.acquire_lease(&m.id, TTL).await,
            Err(LeaseError::Held { .. })
        ),
        "one lease at a time"
    );
    backend.renew_lease(&lease, TTL).await.unwrap();

    let fenced = |lease: &Lease, step: &str| Batch {
        events: vec![event(EventKind::StepStarted, step)],
        steps: vec![self::step(step, StepState::Running)],
        fence: Some(lease.clone()),
        ..Batch::default()
    };
    let committed = backend.commit(&m.id, fenced(&lease, "a")).await.unwrap();
    assert_eq!(committed.seqs.len(), 1);
    assert!(changes.has_changed().unwrap());
    let events = backend.events(&m.id, 0).await.unwrap();
    assert_eq!(events.last().map(|e| e.seq), committed.seqs.last().copied());

    let stale = Lease {
        token: "not-the-holder".to_owned(),
        ..lease.clone()
    };
    let refused = backend.commit(&m.id, fenced(&stale, "b")).await;
    assert!(matches!(refused, Err(StoreError::Fenced(_))), "{refused:?}");
    assert_eq!(
        backend.events(&m.id, 0).await.unwrap().len(),
        events.len(),
        "a refused batch writes nothing"
    );

    let slot = match backend.take_pool_slot("db", 1, "a", &lease).await.unwrap() {
        PoolTake::Taken(slot) => slot,
        PoolTake::Full(holders) => panic!("an empty pool is full: {holders:?}"),
    };
    assert!(
        matches!(
            backend.take_pool_slot("db", 1, "b", &lease).await.unwrap(),
            PoolTake::Full(_)
        ),
        "a pool of one holds one"
    );
    backend.release_pool_slot(slot);
    assert!(
        matches!(
            backend.take_pool_slot("db", 1, "b", &lease).await.unwrap(),
            PoolTake::Taken(_)
        ),
        "a released slot is taken again by the next write"
    );

    backend.release_lease(&lease).await.unwrap();
    let again = backend.acquire_lease(&m.id, TTL).await.unwrap();
    assert_ne!(again.token, lease.token, "a new acquisition, a new token");
}

#[test]
fn the_sqlite_store_keeps_the_contract() {
    let (_dir, store) = store();
    block_on(contract(&store));
}
