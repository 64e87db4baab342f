//! Pool slots (runbook `pools`): a slot is a row naming its pool, the step that holds it and
//! the lease it was taken under. Every migration on the store counts the same rows, so a
//! pool is shared by all of them (one server, local drivers on one state directory), and a
//! slot whose lease is no longer held by a live process is free again — unless the step's
//! processes outlived their driver — so a driver that died gives its slots back without
//! anyone cleaning up.
//!
//! Sizes are not stored: each taker brings the size its runbook declares, and takes a slot
//! only while fewer than that many are held.

use super::StoreError;
use super::lease::{self, Lease, Me};
use super::schema;
use super::schema::fmt_time;
use super::writer::Group;
use super::writer::Job;
use rusqlite::{Connection, params};

/// A step of some migration holding a slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolHolder {
    pub migration: String,
    pub step: String,
}

/// Whether a slot was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolTake {
    /// The slot's row id: release it with [`release`].
    Taken(i64),
    /// The pool is full; these hold its slots.
    Full(Vec<PoolHolder>),
}

/// Takes a slot of `pool` (of `size` slots) for `step` under `lease`, after freeing the slots
/// of holders that are gone.
pub fn take(
    conn: &Connection,
    group: &Group,
    me: &Me,
    pool: &str,
    size: u32,
    step: &str,
    lease: &Lease,
) -> Result<PoolTake, StoreError> {
    let rows: Vec<(i64, String, String, String)> = conn
        .prepare_cached("SELECT id, migration, step, token FROM pool_slots WHERE pool = ?1")?
        .query_map([pool], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<Result<_, _>>()?;
    let mut held = Vec::new();
    for (id, migration, step, token) in rows {
        if lease::holds(conn, me, &migration, &token, group.now)?
            || outlives_its_driver(conn, me, &migration, &step)?
        {
            held.push(PoolHolder { migration, step });
        } else {
            release(conn, id)?;
        }
    }
    if held.len() >= size as usize {
        return Ok(PoolTake::Full(held));
    }
    conn.prepare_cached(
        "INSERT INTO pool_slots (pool, migration, step, token, taken_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        pool,
        lease.migration.as_str(),
        step,
        lease.token,
        fmt_time(group.now)
    ])?;
    Ok(PoolTake::Taken(conn.last_insert_rowid()))
}

/// The holder's driver is gone, but the step's processes still run on this host (its
/// watchdog died with it): the slot stays taken until they end.
fn outlives_its_driver(
    conn: &Connection,
    me: &Me,
    migration: &str,
    step: &str,
) -> Result<bool, StoreError> {
    let id = crate::event::MigrationId::from(migration.to_owned());
    Ok(super::processes::get(conn, &id, step)?
        .is_some_and(|p| p.host == me.host && crate::host::group_alive(p.pgid, p.pg_start)))
}

/// Gives a slot back.
pub fn release(conn: &Connection, id: i64) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM pool_slots WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

/// Slots of `pool` held by live holders now (for status and tests).
pub fn holders(
    conn: &Connection,
    me: &Me,
    pool: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<PoolHolder>, StoreError> {
    let rows: Vec<(String, String, String)> = conn
        .prepare_cached(
            "SELECT migration, step, token FROM pool_slots WHERE pool = ?1 ORDER BY id",
        )?
        .query_map([pool], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    let mut held = Vec::new();
    for (migration, step, token) in rows {
        if lease::holds(conn, me, &migration, &token, now)? {
            held.push(PoolHolder { migration, step });
        }
    }
    Ok(held)
}

impl super::Sqlite {
    /// Takes a slot of `pool` (`size` slots, as the taker's runbook declares) for `step`,
    /// held under `lease`: every migration on this store shares the pool's slots.
    pub fn take_pool_slot(
        &self,
        pool: &str,
        size: u32,
        step: &str,
        lease: &Lease,
    ) -> Result<PoolTake, StoreError> {
        let (pool, step, lease, me) = (
            pool.to_owned(),
            step.to_owned(),
            lease.clone(),
            self.inner.me.clone(),
        );
        self.call(move |conn, group| take(conn, group, &me, &pool, size, &step, &lease))
    }

    /// Gives a pool slot back, with the next group commit (it does not wait). Ordered with
    /// every other write of this store, so a take sent after it sees the slot free.
    pub fn release_pool_slot(&self, slot: i64) {
        let job = Job::detached(
            move |conn, _| release(conn, slot),
            self.inner.lost_logs.clone(),
        );
        let _ = self.send(job);
    }

    /// The live holders of `pool`'s slots.
    pub fn pool_holders(&self, pool: &str) -> Result<Vec<PoolHolder>, StoreError> {
        holders(&self.reader(), &self.inner.me, pool, schema::now())
    }
}
