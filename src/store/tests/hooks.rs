//! Webhook signatures are accepted once (by one server of several) and forgotten after their
//! expiry; idempotency keys keep their migration (each on every backend); a version 2 SQLite
//! store gains the tables in place, and signatures a version 3 one kept as header text are
//! still known after the upgrade.

use super::super::schema::fmt_time;
use super::*;
use chrono::Duration as Span;

const MAC: &[u8] = &[0xab; 32];

#[test]
fn a_signature_is_accepted_once_until_it_expires() {
    for (store, fresh) in pg::each() {
        let now = Utc::now();
        let later = now + Span::minutes(15);
        assert!(store.claim_hook_signature("h", MAC, 1, now, later).unwrap());
        assert!(
            !store.claim_hook_signature("h", MAC, 1, now, later).unwrap(),
            "{fresh}: a replay"
        );
        // Another hook has its own signatures.
        assert!(store.claim_hook_signature("g", MAC, 1, now, later).unwrap());
        // Past its expiry the signature is forgotten.
        let after = later + Span::seconds(1);
        assert!(
            store
                .claim_hook_signature("h", MAC, 1, after, after + Span::minutes(15))
                .unwrap(),
            "{fresh}"
        );
    }
}

/// The same signed request reaching two servers at once (a sender's retry behind a load
/// balancer) starts one migration: exactly one of them claims the signature.
#[test]
fn two_servers_claiming_one_signature_at_once_accept_it_once() {
    for (store, fresh) in pg::each() {
        let servers = [store, fresh.open()];
        let now = Utc::now();
        for round in 0u8..10 {
            let mac = [round; 32];
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(servers.len()));
            let threads: Vec<_> = servers
                .iter()
                .map(|server| {
                    let (server, barrier) = (server.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        barrier.wait();
                        let later = now + Span::minutes(15);
                        server
                            .claim_hook_signature("h", &mac, 1, now, later)
                            .unwrap()
                    })
                })
                .collect();
            let accepted = threads
                .into_iter()
                .map(|t| t.join().unwrap())
                .filter(|accepted| *accepted)
                .count();
            assert_eq!(accepted, 1, "{fresh}: round {round}");
        }
    }
}

#[test]
fn an_idempotency_key_keeps_the_first_migration_it_created() {
    for (store, fresh) in pg::each() {
        let first = create(&store, "m-aaaa00000001");
        let second = create(&store, "m-aaaa00000002");
        assert_eq!(store.hook_key("h", "k").unwrap(), None, "{fresh}");
        store
            .remember_hook_key("h", "k", &first, Utc::now())
            .unwrap();
        store
            .remember_hook_key("h", "k", &second, Utc::now())
            .unwrap();
        assert_eq!(store.hook_key("h", "k").unwrap(), Some(first), "{fresh}");
        // Keys are per hook.
        assert_eq!(store.hook_key("g", "k").unwrap(), None, "{fresh}");
    }
}

// SQLite only from here: stores written by older versions of the SQLite schema.
#[test]
fn a_version_2_store_gains_the_hook_tables_in_place() {
    let dir = tempfile::tempdir().unwrap();
    {
        let conn = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
        conn.execute_batch(super::super::schema::UPGRADES[0])
            .unwrap();
        conn.execute_batch(super::super::schema::UPGRADES[1])
            .unwrap();
        conn.pragma_update(None, "user_version", 2).unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let now = Utc::now();
    assert!(store.claim_hook_signature("h", MAC, 1, now, now).unwrap());
    assert_eq!(store.hook_key("h", "k").unwrap(), None);
    let version: i64 = raw(&dir)
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
}

#[test]
fn signatures_a_version_3_store_kept_as_text_are_known_by_their_mac() {
    let dir = tempfile::tempdir().unwrap();
    let now = Utc::now();
    let later = fmt_time(now + Span::minutes(15));
    let hex = "ab".repeat(32);
    {
        let conn = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
        for sql in &super::super::schema::UPGRADES[..3] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 3).unwrap();
        // What V3 kept: the header as sent, upper-case, and spelt with `+` for a `0`.
        let rows = [
            ("h", format!("sha256={}", hex.to_uppercase())),
            ("h", format!("sha256=+1{}", "cd".repeat(31))),
            ("g", format!("sha256={hex}")),
            ("g", format!("sha256={}", hex.to_uppercase())),
        ];
        for (hook, signature) in rows {
            conn.execute(
                "INSERT INTO hook_signatures VALUES (?1, ?2, 1, ?3, ?4)",
                rusqlite::params![hook, signature, fmt_time(now), later],
            )
            .unwrap();
        }
    }
    let store = Store::open(dir.path()).unwrap();
    let mut second = [0xcd; 32];
    second[0] = 0x01;
    for (hook, mac) in [("h", MAC), ("h", &second[..]), ("g", MAC)] {
        assert!(
            !store.claim_hook_signature(hook, mac, 1, now, now).unwrap(),
            "{hook}"
        );
    }
    // Two spellings of one MAC became one row.
    let rows: i64 = raw(&dir)
        .query_row(
            "SELECT count(*) FROM hook_signatures WHERE hook = 'g'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rows, 1);
}
