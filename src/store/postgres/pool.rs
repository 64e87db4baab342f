//! Pool slots on PostgreSQL, as in the SQLite backend (see its `pool`): a slot is a row
//! naming its pool, its step and the lease it was taken under; every server counts the same
//! rows, and a slot whose lease is no longer live (by this backend's rule: expired by the
//! database's clock, or its holder gone from this host) is free again, unless the step's
//! processes outlived their driver on this host.
//!
//! Two servers taking the last slot of a pool at once must not both get it: each take holds
//! a transaction-scoped advisory lock on the pool's name, so takes of one pool run one after
//! the other across servers (takes of other pools do not wait).

use super::super::schema::fmt_time;
use super::super::{Lease, MigrationId, PoolHolder, PoolTake, StoreError};
use super::db::{self, Db};
use super::lease;
use std::sync::Arc;

/// Takes a slot of `pool` (of `size` slots) for `step` under `lease`, after freeing the
/// slots of holders that are gone.
pub async fn take(
    db: Arc<Db>,
    pool: String,
    size: u32,
    step: String,
    lease: Lease,
) -> Result<PoolTake, StoreError> {
    let mut tx = db.begin().await?;
    // The two-key form keeps pools apart from other advisory locks (the schema upgrade's).
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('sensei_pool'), hashtext($1))")
        .bind(&pool)
        .execute(&mut *tx.tx)
        .await?;
    let slots: Vec<(i64, String, String, String)> =
        sqlx::query_as("SELECT id, migration, step, token FROM pool_slots WHERE pool = $1")
            .bind(&pool)
            .fetch_all(&mut *tx.tx)
            .await?;
    let leases: Vec<(String, String)> = slots
        .iter()
        .map(|(_, m, _, token)| (m.clone(), token.clone()))
        .collect();
    let live = lease::holds(&mut tx.tx, &db.me, tx.now, &leases).await?;
    let mut held = Vec::new();
    for ((id, migration, step, _), live) in slots.into_iter().zip(live) {
        if live || outlives_its_driver(&mut tx.tx, &db, &migration, &step).await? {
            held.push(PoolHolder { migration, step });
        } else {
            release(&mut tx.tx, id).await?;
        }
    }
    if held.len() >= size as usize {
        // The slots freed above stay free.
        tx.commit(&db).await?;
        return Ok(PoolTake::Full(held));
    }
    let slot: i64 = sqlx::query_scalar(
        "INSERT INTO pool_slots (pool, migration, step, token, taken_at)
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(&pool)
    .bind(lease.migration.as_str())
    .bind(&step)
    .bind(&lease.token)
    .bind(fmt_time(tx.now))
    .fetch_one(&mut *tx.tx)
    .await?;
    tx.commit(&db).await?;
    Ok(PoolTake::Taken(slot))
}

/// The holder's driver is gone, but the step's processes still run on this host (its
/// watchdog died with it): the slot stays taken until they end.
async fn outlives_its_driver(
    conn: &mut sqlx::PgConnection,
    db: &Db,
    migration: &str,
    step: &str,
) -> Result<bool, StoreError> {
    let id = MigrationId::from(migration.to_owned());
    Ok(super::processes::fetch(conn, &id, step)
        .await?
        .is_some_and(|p| p.host == db.me.host && crate::host::group_alive(p.pgid, p.pg_start)))
}

/// Gives a slot back, in the caller's transaction.
pub async fn release(conn: &mut sqlx::PgConnection, slot: i64) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM pool_slots WHERE id = $1")
        .bind(slot)
        .execute(conn)
        .await?;
    Ok(())
}

/// Slots of `pool` held by live holders now (for status and tests).
pub async fn holders(db: Arc<Db>, pool: String) -> Result<Vec<PoolHolder>, StoreError> {
    let mut conn = db.pool.acquire().await?;
    let now = db::now(&mut conn).await?;
    let slots: Vec<(String, String, String)> =
        sqlx::query_as("SELECT migration, step, token FROM pool_slots WHERE pool = $1 ORDER BY id")
            .bind(&pool)
            .fetch_all(&mut *conn)
            .await?;
    let leases: Vec<(String, String)> = slots
        .iter()
        .map(|(m, _, token)| (m.clone(), token.clone()))
        .collect();
    let live = lease::holds(&mut conn, &db.me, now, &leases).await?;
    Ok(slots
        .into_iter()
        .zip(live)
        .filter(|(_, live)| *live)
        .map(|((migration, step, _), _)| PoolHolder { migration, step })
        .collect())
}
