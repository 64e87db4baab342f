//! Webhook signatures seen and idempotency keys (see the SQLite backend's `hooks`). Several
//! servers may receive the same signed request at once (a retry that reached another server
//! behind a load balancer): the signature's row is the arbiter, since a second insert of one
//! (hook, MAC) waits on the first's unique-index entry and then inserts nothing, so exactly
//! one of them claims it.

use super::super::schema::fmt_time;
use super::super::{MigrationId, StoreError};
use super::db::Db;
use chrono::{DateTime, Utc};
use std::sync::Arc;

/// Records the signature (its `mac`) of a delivery to `hook`, kept until `expires_at`; false
/// if it was seen before (a replay). Signatures past their expiry are forgotten first.
pub async fn claim_signature(
    db: Arc<Db>,
    hook: String,
    mac: Vec<u8>,
    timestamp: i64,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let mut tx = db.begin().await?;
    sqlx::query("DELETE FROM hook_signatures WHERE expires_at < $1")
        .bind(fmt_time(now))
        .execute(&mut *tx.tx)
        .await?;
    let inserted = sqlx::query(
        "INSERT INTO hook_signatures (hook, signature, timestamp, seen_at, expires_at)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(&hook)
    .bind(base16ct::lower::encode_string(&mac))
    .bind(timestamp)
    .bind(fmt_time(now))
    .bind(fmt_time(expires_at))
    .execute(&mut *tx.tx)
    .await?
    .rows_affected();
    tx.commit(&db).await?;
    Ok(inserted == 1)
}

/// The migration a call to `hook` with idempotency `key` created, if any.
pub async fn keyed(
    db: Arc<Db>,
    hook: String,
    key: String,
) -> Result<Option<MigrationId>, StoreError> {
    let id: Option<String> =
        sqlx::query_scalar("SELECT migration FROM hook_keys WHERE hook = $1 AND key = $2")
            .bind(&hook)
            .bind(&key)
            .fetch_optional(&db.pool)
            .await?;
    Ok(id.map(MigrationId::from))
}

/// Remembers that `key` created `migration`; the first record of a key stays.
pub async fn remember_key(
    db: Arc<Db>,
    hook: String,
    key: String,
    migration: MigrationId,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO hook_keys (hook, key, migration, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT DO NOTHING",
    )
    .bind(&hook)
    .bind(&key)
    .bind(migration.as_str())
    .bind(fmt_time(now))
    .execute(&mut *tx.tx)
    .await?;
    tx.commit(&db).await
}
