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
    let dir_store = Store::open(store.path().parent().unwrap()).unwrap();
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
