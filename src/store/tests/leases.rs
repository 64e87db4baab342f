//! Leases: a live holder keeps it; a dead, expired or reused-pid holder is replaced.

use super::*;
use std::time::Duration;

const TTL: Duration = Duration::from_secs(60);

/// Rewrites the lease row behind the store's back, as another process would have left it.
fn meddle(dir: &TempDir, m: &MigrationId, set: &str) {
    raw(dir)
        .execute(
            &format!("UPDATE leases SET {set} WHERE migration = ?1"),
            [m.as_str()],
        )
        .unwrap();
}

/// The pid of a process that has run and been reaped.
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

#[test]
fn a_live_holder_keeps_the_lease_until_it_releases_it() {
    let (_dir, store) = store();
    let m = create(&store, "m-aaaa00000001");
    assert_eq!(store.driver(&m).unwrap(), None);
    let lease = store.acquire_lease(&m, TTL).unwrap();
    assert_eq!(lease.pid, std::process::id());
    assert_eq!(lease.token.len(), 32);

    let holder = store.driver(&m).unwrap().unwrap();
    assert_eq!(holder.pid, std::process::id());
    assert_eq!(holder.host, lease.host);

    // Another process (a second store), and this same process, are both refused.
    let dir_store = Store::open(store.as_sqlite().unwrap().path().parent().unwrap()).unwrap();
    for other in [&dir_store, &store] {
        let err = other.acquire_lease(&m, TTL).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, LeaseError::Held { .. }), "{msg}");
        assert!(
            msg.starts_with(&format!(
                "migration {m} is being driven by process {} on host {} (since ",
                std::process::id(),
                lease.host
            )),
            "{msg}"
        );
        assert!(
            msg.ends_with("); stop it first or wait for it to finish"),
            "{msg}"
        );
    }

    store.renew_lease(&lease, TTL).unwrap();
    store.release_lease(&lease).unwrap();
    assert_eq!(store.driver(&m).unwrap(), None);
    let again = store.acquire_lease(&m, TTL).unwrap();
    assert_ne!(again.token, lease.token);
}

#[test]
fn a_dead_holder_on_this_host_is_replaced_at_once() {
    let (dir, store) = store();
    let m = create(&store, "m-aaaa00000001");
    let old = store.acquire_lease(&m, TTL).unwrap();
    meddle(&dir, &m, &format!("pid = {}, pid_start = NULL", dead_pid()));
    assert_eq!(
        store.driver(&m).unwrap(),
        None,
        "a dead holder drives nothing"
    );

    let new = store.acquire_lease(&m, TTL).unwrap();
    assert_ne!(new.token, old.token);
    let err = store.renew_lease(&old, TTL).unwrap_err();
    assert!(matches!(err, LeaseError::Lost { .. }), "{err}");
    assert!(
        err.to_string()
            .ends_with("this process must stop driving it"),
        "{err}"
    );
    // Releasing a lost lease leaves the new holder alone.
    store.release_lease(&old).unwrap();
    assert!(store.driver(&m).unwrap().is_some());
}

#[test]
fn a_reused_pid_is_not_the_old_holder() {
    let (dir, store) = store();
    let m = create(&store, "m-aaaa00000001");
    store.acquire_lease(&m, TTL).unwrap();
    // Our own pid, but a start time that is not ours: the holder died and the pid came back.
    meddle(&dir, &m, "pid_start = pid_start + 1");
    store.acquire_lease(&m, TTL).unwrap();
}

#[test]
fn a_holder_on_another_host_counts_until_its_lease_expires() {
    let (dir, store) = store();
    let m = create(&store, "m-aaaa00000001");
    store.acquire_lease(&m, TTL).unwrap();
    meddle(
        &dir,
        &m,
        &format!("host = 'elsewhere', pid = {}", dead_pid()),
    );
    let err = store.acquire_lease(&m, TTL).unwrap_err();
    assert!(
        err.to_string().contains("on host elsewhere"),
        "a pid on another host cannot be checked: {err}"
    );
    assert_eq!(store.driver(&m).unwrap().unwrap().host, "elsewhere");

    meddle(&dir, &m, "expires_at = '2001-01-01T00:00:00.000Z'");
    assert_eq!(store.driver(&m).unwrap(), None);
    store.acquire_lease(&m, TTL).unwrap();
}

#[test]
fn an_expired_lease_that_nobody_took_is_renewed() {
    let (dir, store) = store();
    let m = create(&store, "m-aaaa00000001");
    let lease = store.acquire_lease(&m, TTL).unwrap();
    meddle(&dir, &m, "expires_at = '2001-01-01T00:00:00.000Z'");
    store.renew_lease(&lease, TTL).unwrap();
    assert!(store.driver(&m).unwrap().unwrap().expires_at > chrono::Utc::now());
}

#[test]
fn a_lease_on_an_unknown_migration_is_not_found() {
    let (_dir, store) = store();
    let err = store.acquire_lease(&id("m-nope"), TTL).unwrap_err();
    assert_eq!(err.to_string(), "no migration matches `m-nope`");
}

#[test]
fn an_expired_lease_of_a_live_process_on_this_host_is_still_held() {
    // Its holder may be in the middle of a long step: a second driver would start it again.
    let (dir, store) = store();
    let m = create(&store, "m-aaaa00000001");
    store.acquire_lease(&m, TTL).unwrap();
    meddle(&dir, &m, "expires_at = '2001-01-01T00:00:00.000Z'");
    assert!(store.driver(&m).unwrap().is_some());
    let err = store.acquire_lease(&m, TTL).unwrap_err();
    assert!(matches!(err, LeaseError::Held { .. }), "{err}");
}

#[test]
fn a_batch_of_a_driver_that_lost_its_lease_is_refused_whole() {
    let (dir, store) = store();
    let m = create(&store, "m-aaaa00000001");
    let old = store.acquire_lease(&m, TTL).unwrap();
    let batch = |lease: &Lease, step: &str| Batch {
        fence: Some(lease.clone()),
        events: vec![event(EventKind::StepStarted, step)],
        steps: vec![self::step(step, StepState::Running)],
        ..Batch::default()
    };
    store.commit(&m, batch(&old, "a")).unwrap();
    // Another host's process takes the migration over once the lease expired there.
    meddle(
        &dir,
        &m,
        &format!(
            "host = 'elsewhere', pid = {}, expires_at = '2001-01-01T00:00:00.000Z'",
            dead_pid()
        ),
    );
    let new = store.acquire_lease(&m, TTL).unwrap();
    let before = store.events(&m, 0).unwrap().len();
    let err = store.commit(&m, batch(&old, "b")).unwrap_err();
    assert!(matches!(err, StoreError::Fenced(_)), "{err}");
    assert!(err.to_string().contains("must stop driving it"), "{err}");
    assert_eq!(
        store.events(&m, 0).unwrap().len(),
        before,
        "nothing written"
    );
    let rows = store.steps(&m).unwrap();
    assert_eq!(
        rows.iter().find(|r| r.step == "b").unwrap().state,
        StepState::Pending
    );
    // Renewing is refused the same way; the new holder commits.
    assert!(matches!(
        store.renew_lease(&old, TTL).unwrap_err(),
        LeaseError::Lost { .. }
    ));
    store.commit(&m, batch(&new, "b")).unwrap();
    // Released by its holder since: the old lease is still refused.
    store.release_lease(&new).unwrap();
    assert!(matches!(
        store.commit(&m, batch(&old, "c")).unwrap_err(),
        StoreError::Fenced(_)
    ));
}

#[test]
fn pool_slots_are_shared_and_come_back_when_their_holder_is_gone() {
    let (dir, store) = store();
    let a = create(&store, "m-aaaa00000001");
    let b = create(&store, "m-aaaa00000002");
    let la = store.acquire_lease(&a, TTL).unwrap();
    let lb = store.acquire_lease(&b, TTL).unwrap();
    let PoolTake::Taken(slot) = store.take_pool_slot("primary", 1, "a", &la).unwrap() else {
        panic!("the pool is free");
    };
    let PoolTake::Full(holders) = store.take_pool_slot("primary", 1, "x", &lb).unwrap() else {
        panic!("the pool has one slot");
    };
    assert_eq!(
        holders,
        [PoolHolder {
            migration: a.to_string(),
            step: "a".into()
        }]
    );
    // A runbook that declares the pool larger takes a second slot.
    assert!(matches!(
        store.take_pool_slot("primary", 2, "y", &lb).unwrap(),
        PoolTake::Taken(_)
    ));
    store.release_pool_slot(slot);
    store.flush().unwrap();
    assert_eq!(store.pool_holders("primary").unwrap().len(), 1);
    // b's driver dies: its slot comes back without anyone releasing it.
    meddle(&dir, &b, &format!("pid = {}, pid_start = NULL", dead_pid()));
    assert!(store.pool_holders("primary").unwrap().is_empty());
    assert!(matches!(
        store.take_pool_slot("primary", 1, "a", &la).unwrap(),
        PoolTake::Taken(_)
    ));
}
