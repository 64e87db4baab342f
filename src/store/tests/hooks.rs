//! Webhook signatures are accepted once and forgotten after their expiry; idempotency keys
//! keep their migration; a version 2 store gains the tables in place.

use super::*;
use chrono::Duration as Span;

#[test]
fn a_signature_is_accepted_once_until_it_expires() {
    let (_dir, store) = store();
    let now = Utc::now();
    let later = now + Span::minutes(15);
    assert!(
        store
            .claim_hook_signature("h", "sha256=aa", 1, now, later)
            .unwrap()
    );
    assert!(
        !store
            .claim_hook_signature("h", "sha256=aa", 1, now, later)
            .unwrap()
    );
    // Another hook has its own signatures.
    assert!(
        store
            .claim_hook_signature("g", "sha256=aa", 1, now, later)
            .unwrap()
    );
    // Past its expiry the signature is forgotten.
    let after = later + Span::seconds(1);
    assert!(
        store
            .claim_hook_signature("h", "sha256=aa", 1, after, after + Span::minutes(15))
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
    assert!(store.claim_hook_signature("h", "s", 1, now, now).unwrap());
    assert_eq!(store.hook_key("h", "k").unwrap(), None);
    let version: i64 = raw(&dir)
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
}
