//! Webhook signatures are accepted once and forgotten after their expiry; idempotency keys
//! keep their migration; a version 2 store gains the tables in place, and signatures a
//! version 3 store kept as header text are still known after the upgrade.

use super::super::schema::fmt_time;
use super::*;
use chrono::Duration as Span;

const MAC: &[u8] = &[0xab; 32];

#[test]
fn a_signature_is_accepted_once_until_it_expires() {
    let (_dir, store) = store();
    let now = Utc::now();
    let later = now + Span::minutes(15);
    assert!(store.claim_hook_signature("h", MAC, 1, now, later).unwrap());
    assert!(!store.claim_hook_signature("h", MAC, 1, now, later).unwrap());
    // Another hook has its own signatures.
    assert!(store.claim_hook_signature("g", MAC, 1, now, later).unwrap());
    // Past its expiry the signature is forgotten.
    let after = later + Span::seconds(1);
    assert!(
        store
            .claim_hook_signature("h", MAC, 1, after, after + Span::minutes(15))
            .unwrap()
    );
}

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
