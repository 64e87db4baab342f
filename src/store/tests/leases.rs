//! Leases: a live holder keeps it; a dead, expired or reused-pid holder is replaced. Each test
//! runs on every backend (`pg::each`) unless it is about one backend's own rule for who is
//! live: on SQLite a live process on this host keeps even an expired lease; on PostgreSQL
//! only the database's clock counts (but a holder gone from this host is dead at once).

use super::*;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

const TTL: Duration = Duration::from_secs(60);

/// Rewrites the lease row behind the store's back, as another process would have left it.
fn meddle(fresh: &pg::Fresh, m: &MigrationId, set: &str) {
    fresh.execute(&format!("UPDATE leases SET {set} WHERE migration = '{m}'"));
}

/// The pid of a process that has run and been reaped.
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

/// A batch that starts `step`, fenced by `lease`.
fn fenced(lease: &Lease, step: &str) -> Batch {
    Batch {
        fence: Some(lease.clone()),
        events: vec![event(EventKind::StepStarted, step)],
        steps: vec![self::step(step, StepState::Running)],
        ..Batch::default()
    }
}

#[test]
fn a_live_holder_keeps_the_lease_until_it_releases_it() {
    for (store, fresh) in pg::each() {
        let m = create(&store, "m-aaaa00000001");
        assert_eq!(store.driver(&m).unwrap(), None);
        let lease = store.acquire_lease(&m, TTL).unwrap();
        assert_eq!(lease.pid, std::process::id());
        assert_eq!(lease.token.len(), 32);

        let holder = store.driver(&m).unwrap().unwrap();
        assert_eq!(holder.pid, std::process::id());
        assert_eq!(holder.host, lease.host);

        // Another process (a second store), and this same process, are both refused.
        let other = fresh.open();
        for other in [&other, &store] {
            let err = other.acquire_lease(&m, TTL).unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, LeaseError::Held { .. }), "{fresh}: {msg}");
            assert!(
                msg.starts_with(&format!(
                    "migration {m} is being driven by process {} on host {} (since ",
                    std::process::id(),
                    lease.host
                )),
                "{fresh}: {msg}"
            );
            assert!(
                msg.ends_with("); stop it first or wait for it to finish"),
                "{fresh}: {msg}"
            );
        }

        store.renew_lease(&lease, TTL).unwrap();
        store.release_lease(&lease).unwrap();
        assert_eq!(store.driver(&m).unwrap(), None, "{fresh}");
        let again = store.acquire_lease(&m, TTL).unwrap();
        assert_ne!(again.token, lease.token);
    }
}

#[test]
fn a_dead_holder_on_this_host_is_replaced_at_once() {
    for (store, fresh) in pg::each() {
        let m = create(&store, "m-aaaa00000001");
        let old = store.acquire_lease(&m, TTL).unwrap();
        meddle(
            &fresh,
            &m,
            &format!("pid = {}, pid_start = NULL", dead_pid()),
        );
        assert_eq!(
            store.driver(&m).unwrap(),
            None,
            "{fresh}: a dead holder drives nothing"
        );

        let new = store.acquire_lease(&m, TTL).unwrap();
        assert_ne!(new.token, old.token);
        let err = store.renew_lease(&old, TTL).unwrap_err();
        assert!(matches!(err, LeaseError::Lost { .. }), "{fresh}: {err}");
        assert!(
            err.to_string()
                .ends_with("this process must stop driving it"),
            "{fresh}: {err}"
        );
        // Releasing a lost lease leaves the new holder alone.
        store.release_lease(&old).unwrap();
        assert!(store.driver(&m).unwrap().is_some(), "{fresh}");
    }
}

#[test]
fn a_reused_pid_is_not_the_old_holder() {
    for (store, fresh) in pg::each() {
        let m = create(&store, "m-aaaa00000001");
        store.acquire_lease(&m, TTL).unwrap();
        // Our own pid, but a start time that is not ours: the holder died and the pid came back.
        meddle(&fresh, &m, "pid_start = pid_start + 1");
        store.acquire_lease(&m, TTL).unwrap();
    }
}

#[test]
fn a_holder_on_another_host_counts_until_its_lease_expires() {
    for (store, fresh) in pg::each() {
        let m = create(&store, "m-aaaa00000001");
        store.acquire_lease(&m, TTL).unwrap();
        meddle(
            &fresh,
            &m,
            &format!("host = 'elsewhere', pid = {}", dead_pid()),
        );
        let err = store.acquire_lease(&m, TTL).unwrap_err();
        assert!(
            err.to_string().contains("on host elsewhere"),
            "{fresh}: a pid on another host cannot be checked: {err}"
        );
        assert_eq!(store.driver(&m).unwrap().unwrap().host, "elsewhere");

        meddle(&fresh, &m, "expires_at = '2001-01-01T00:00:00.000Z'");
        assert_eq!(store.driver(&m).unwrap(), None, "{fresh}");
        store.acquire_lease(&m, TTL).unwrap();
    }
}

#[test]
fn an_expired_lease_that_nobody_took_is_renewed() {
    for (store, fresh) in pg::each() {
        let m = create(&store, "m-aaaa00000001");
        let lease = store.acquire_lease(&m, TTL).unwrap();
        meddle(&fresh, &m, "expires_at = '2001-01-01T00:00:00.000Z'");
        store.renew_lease(&lease, TTL).unwrap();
        assert!(
            store.driver(&m).unwrap().unwrap().expires_at > Utc::now(),
            "{fresh}"
        );
    }
}

#[test]
fn a_lease_on_an_unknown_migration_is_not_found() {
    for (store, fresh) in pg::each() {
        let err = store.acquire_lease(&id("m-nope"), TTL).unwrap_err();
        assert_eq!(err.to_string(), "no migration matches `m-nope`", "{fresh}");
    }
}

/// SQLite only: there every driver runs on this one host, and its holder may be in the
/// middle of a long step (a second driver would start it again). PostgreSQL's rule is the
/// opposite (the next test).
#[test]
fn an_expired_lease_of_a_live_process_on_this_host_is_still_held_on_sqlite() {
    let (dir, store) = store();
    let dir = pg::Fresh::Dir(dir);
    let m = create(&store, "m-aaaa00000001");
    store.acquire_lease(&m, TTL).unwrap();
    meddle(&dir, &m, "expires_at = '2001-01-01T00:00:00.000Z'");
    assert!(store.driver(&m).unwrap().is_some());
    let err = store.acquire_lease(&m, TTL).unwrap_err();
    assert!(matches!(err, LeaseError::Held { .. }), "{err}");
}

/// PostgreSQL only: a lease lives by the database's clock alone, so a server paused past its
/// lease (its process still alive on this host) loses the migration to the next server that
/// asks; once it resumes, its renewal fails and its fenced batch writes nothing.
#[test]
fn an_expired_lease_of_a_live_process_is_taken_over_on_postgres() {
    let Some(schema) = pg::Schema::create() else {
        return;
    };
    let (paused, other) = (schema.store(), schema.store());
    let m = create(&paused, "m-aaaa00000001");
    let old = paused.acquire_lease(&m, Duration::from_secs(2)).unwrap();
    let expires = paused.driver(&m).unwrap().unwrap().expires_at;
    assert!(
        matches!(other.acquire_lease(&m, TTL), Err(LeaseError::Held { .. })),
        "an unexpired lease is held"
    );
    paused.commit(&m, fenced(&old, "a")).unwrap();

    // The paused server does nothing; the other one asks until the lease has expired.
    let deadline = Instant::now() + Duration::from_secs(30);
    let new = loop {
        match other.acquire_lease(&m, TTL) {
            Ok(new) => break new,
            Err(LeaseError::Held { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("the expired lease was not taken over: {e}"),
        }
    };
    let holder = other.driver(&m).unwrap().unwrap();
    assert!(holder.since >= expires, "taken over only once expired");

    let before = paused.events(&m, 0).unwrap().len();
    let err = paused.renew_lease(&old, TTL).unwrap_err();
    assert!(matches!(err, LeaseError::Lost { .. }), "{err}");
    let err = paused.commit(&m, fenced(&old, "b")).unwrap_err();
    assert!(matches!(err, StoreError::Fenced(_)), "{err}");
    assert!(err.to_string().contains("must stop driving it"), "{err}");
    assert_eq!(
        paused.events(&m, 0).unwrap().len(),
        before,
        "nothing written"
    );
    other.commit(&m, fenced(&new, "b")).unwrap();
}

#[test]
fn a_batch_of_a_driver_that_lost_its_lease_is_refused_whole() {
    for (store, fresh) in pg::each() {
        let m = create(&store, "m-aaaa00000001");
        let old = store.acquire_lease(&m, TTL).unwrap();
        store.commit(&m, fenced(&old, "a")).unwrap();
        // Another host's process takes the migration over once the lease expired there.
        meddle(
            &fresh,
            &m,
            &format!(
                "host = 'elsewhere', pid = {}, expires_at = '2001-01-01T00:00:00.000Z'",
                dead_pid()
            ),
        );
        let new = store.acquire_lease(&m, TTL).unwrap();
        let before = store.events(&m, 0).unwrap().len();
        let err = store.commit(&m, fenced(&old, "b")).unwrap_err();
        assert!(matches!(err, StoreError::Fenced(_)), "{fresh}: {err}");
        assert!(err.to_string().contains("must stop driving it"), "{err}");
        assert_eq!(
            store.events(&m, 0).unwrap().len(),
            before,
            "{fresh}: nothing written"
        );
        let rows = store.steps(&m).unwrap();
        assert_eq!(
            rows.iter().find(|r| r.step == "b").unwrap().state,
            StepState::Pending,
            "{fresh}"
        );
        // Renewing is refused the same way; the new holder commits.
        assert!(matches!(
            store.renew_lease(&old, TTL).unwrap_err(),
            LeaseError::Lost { .. }
        ));
        store.commit(&m, fenced(&new, "b")).unwrap();
        // Released by its holder since: the old lease is still refused.
        store.release_lease(&new).unwrap();
        assert!(matches!(
            store.commit(&m, fenced(&old, "c")).unwrap_err(),
            StoreError::Fenced(_)
        ));
    }
}

#[test]
fn pool_slots_are_shared_and_come_back_when_their_holder_is_gone() {
    for (store, fresh) in pg::each() {
        let a = create(&store, "m-aaaa00000001");
        let b = create(&store, "m-aaaa00000002");
        let la = store.acquire_lease(&a, TTL).unwrap();
        let lb = store.acquire_lease(&b, TTL).unwrap();
        let PoolTake::Taken(slot) = store.take_pool_slot("primary", 1, "a", &la).unwrap() else {
            panic!("{fresh}: the pool is free");
        };
        let PoolTake::Full(holders) = store.take_pool_slot("primary", 1, "x", &lb).unwrap() else {
            panic!("{fresh}: the pool has one slot");
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
        assert_eq!(store.pool_holders("primary").unwrap().len(), 1, "{fresh}");
        // b's driver dies: its slot comes back without anyone releasing it.
        meddle(
            &fresh,
            &b,
            &format!("pid = {}, pid_start = NULL", dead_pid()),
        );
        assert!(store.pool_holders("primary").unwrap().is_empty(), "{fresh}");
        assert!(matches!(
            store.take_pool_slot("primary", 1, "a", &la).unwrap(),
            PoolTake::Taken(_)
        ));
    }
}

/// Two servers (two handles) asking for the last slot of a pool at the same moment: one
/// gets it, the other finds the pool full.
#[test]
fn the_last_slot_of_a_pool_goes_to_one_of_two_takers_at_once() {
    for (store, fresh) in pg::each() {
        let a = create(&store, "m-aaaa00000001");
        let b = create(&store, "m-aaaa00000002");
        let takers = [
            (fresh.open(), store.acquire_lease(&a, TTL).unwrap()),
            (fresh.open(), store.acquire_lease(&b, TTL).unwrap()),
        ];
        for round in 0..10 {
            let pool = format!("pool-{round}");
            let barrier = Arc::new(Barrier::new(takers.len()));
            let threads: Vec<_> = takers
                .iter()
                .map(|(taker, lease)| {
                    let (taker, lease) = (taker.clone(), lease.clone());
                    let (pool, barrier) = (pool.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        barrier.wait();
                        taker.take_pool_slot(&pool, 1, "a", &lease).unwrap()
                    })
                })
                .collect();
            let taken = threads
                .into_iter()
                .map(|t| t.join().unwrap())
                .filter(|take| matches!(take, PoolTake::Taken(_)))
                .count();
            assert_eq!(taken, 1, "{fresh}: round {round}");
        }
    }
}
