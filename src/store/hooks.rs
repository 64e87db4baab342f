//! Webhook deliveries (SPEC §6): each signature a hook accepted is remembered until it
//! expires, so that the same signed request is accepted once only, also across restarts; and
//! each `Idempotency-Key` a hook was called with is remembered with the migration it created.
//!
//! The store does not verify signatures: the server does, then claims the signature's MAC
//! here. A signature is kept as its MAC's bytes in lower-case hex, never as the text it came
//! in, so that another spelling of the same MAC is no new signature.

use super::StoreError;
use super::schema::fmt_time;
use crate::event::MigrationId;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

/// Records the signature (its `mac`) of a delivery to `hook`, kept until `expires_at`; false
/// if it was seen before (a replay). Signatures past their expiry are forgotten first.
pub fn claim_signature(
    conn: &Connection,
    hook: &str,
    mac: &[u8],
    timestamp: i64,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    conn.prepare_cached("DELETE FROM hook_signatures WHERE expires_at < ?1")?
        .execute(params![fmt_time(now)])?;
    let inserted = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO hook_signatures (hook, signature, timestamp, seen_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            hook,
            base16ct::lower::encode_string(mac),
            timestamp,
            fmt_time(now),
            fmt_time(expires_at)
        ])?;
    Ok(inserted == 1)
}

/// The migration a call to `hook` with idempotency `key` created, if any.
pub fn keyed(conn: &Connection, hook: &str, key: &str) -> Result<Option<MigrationId>, StoreError> {
    let id: Option<String> = conn
        .prepare_cached("SELECT migration FROM hook_keys WHERE hook = ?1 AND key = ?2")?
        .query_row(params![hook, key], |r| r.get(0))
        .optional()?;
    Ok(id.map(MigrationId::from))
}

/// Remembers that `key` created `migration`; the first record of a key stays.
pub fn remember_key(
    conn: &Connection,
    hook: &str,
    key: &str,
    migration: &MigrationId,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO hook_keys (hook, key, migration, created_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![hook, key, migration.to_string(), fmt_time(now)])?;
    Ok(())
}

impl super::Sqlite {
    /// Claims a delivery's signature (its decoded `mac`) for `hook` until `expires_at`:
    /// false for a replay.
    pub fn claim_hook_signature(
        &self,
        hook: &str,
        mac: &[u8],
        timestamp: i64,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let (hook, mac) = (hook.to_owned(), mac.to_vec());
        self.call(move |conn, _| claim_signature(conn, &hook, &mac, timestamp, now, expires_at))
    }

    /// The migration an earlier call to `hook` with idempotency `key` created.
    pub fn hook_key(&self, hook: &str, key: &str) -> Result<Option<MigrationId>, StoreError> {
        keyed(&self.reader(), hook, key)
    }

    /// Remembers the migration a call to `hook` with idempotency `key` created.
    pub fn remember_hook_key(
        &self,
        hook: &str,
        key: &str,
        migration: &MigrationId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let (hook, key, migration) = (hook.to_owned(), key.to_owned(), migration.clone());
        self.call(move |conn, _| remember_key(conn, &hook, &key, &migration, now))
    }
}
