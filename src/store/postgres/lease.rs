//! Leases on PostgreSQL: one server drives a migration at a time (SPEC §5). A row per
//! migration names the holder (a random token, pid, host) and when it expires; the holder
//! renews it while it works and releases it when it stops. As in the SQLite backend the token
//! is also a fencing token: a batch carrying a token the row no longer holds is refused
//! ([`fence`]).
//!
//! Who holds a lease differs from SQLite, because the servers sharing this database run on
//! several hosts and may stall: a lease is live while it has not expired by the DATABASE's
//! clock (`Tx::now`, `db::now`; no server's own clock decides), except that a holder on this
//! host whose process is gone (pid and start time, so a reused pid is not the old holder) is
//! dead at once, so `sensei resume` after a `kill -9` needs no wait. Unlike SQLite, a live
//! process on this host does NOT keep an expired lease: a server paused (SIGSTOP, a long GC,
//! a frozen VM) past its expiry loses the migration to the next server that asks, and once
//! resumed its renewal fails (`LeaseError::Lost`) and its fenced batches are refused
//! (`StoreError::Fenced`) before they write anything. A lease that expired but that nobody
//! took is still renewed, as on SQLite.
//!
//! Taking over and fencing never interleave: `acquire` and `renew` lock the migration's row
//! first (`write::head`), as every batch does before its [`fence`] check, so a takeover
//! waits for a batch in flight and the batch after it sees the new token.

use super::super::lease::{Liveness, Me, is_live};
use super::super::schema::fmt_time;
use super::super::{Lease, LeaseError, LeaseHolder, MigrationId, StoreError};
use super::db::{self, Db};
use super::rows;
use super::write::head;
use chrono::{DateTime, Utc};
use sqlx::Row as _;
use sqlx::postgres::PgRow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

const COLUMNS: &str = "migration, token, pid, pid_start, host, since, expires_at";

/// A lease row as stored.
struct Row {
    migration: String,
    token: String,
    pid_start: Option<u64>,
    holder: LeaseHolder,
}

impl Row {
    /// Reads the [`COLUMNS`] of a row.
    fn read(r: &PgRow) -> Result<Row, StoreError> {
        let pid_start: Option<i64> = r.try_get(3)?;
        Ok(Row {
            migration: rows::text(r, 0)?,
            token: rows::text(r, 1)?,
            pid_start: pid_start.map(|s| s as u64),
            holder: LeaseHolder {
                pid: rows::int(r, 2)?,
                host: rows::text(r, 4)?,
                since: rows::time(r, 5)?,
                expires_at: rows::time(r, 6)?,
            },
        })
    }

    /// Held by a live process: unexpired by the database's clock, and not held by a
    /// process of this host that is gone.
    fn is_live(&self, me: &Me, now: DateTime<Utc>) -> bool {
        is_live(&self.holder, self.pid_start, me, now, Liveness::ClockFirst)
    }
}

async fn row(conn: &mut sqlx::PgConnection, id: &MigrationId) -> Result<Option<Row>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM leases WHERE migration = $1");
    let found = sqlx::query(&sql)
        .bind(id.as_str())
        .fetch_optional(conn)
        .await?;
    found.as_ref().map(Row::read).transpose()
}

fn expiry(now: DateTime<Utc>, ttl: Duration) -> DateTime<Utc> {
    now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX)
}

/// Takes the lease unless a live process holds it, this one included: a server that drives
/// several migrations must not drive one twice.
pub async fn acquire(db: Arc<Db>, id: MigrationId, ttl: Duration) -> Result<Lease, LeaseError> {
    let mut tx = db.begin().await?;
    head(&mut tx.tx, &id).await?;
    if let Some(held) = row(&mut tx.tx, &id).await?
        && held.is_live(&db.me, tx.now)
    {
        return Err(LeaseError::Held {
            migration: id,
            holder: held.holder,
        });
    }
    let token = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
    sqlx::query(
        "INSERT INTO leases (migration, token, pid, pid_start, host, since, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (migration) DO UPDATE SET token = excluded.token, pid = excluded.pid,
             pid_start = excluded.pid_start, host = excluded.host, since = excluded.since,
             expires_at = excluded.expires_at",
    )
    .bind(id.as_str())
    .bind(&token)
    .bind(i64::from(db.me.pid))
    .bind(db.me.start.map(|s| s as i64))
    .bind(&db.me.host)
    .bind(fmt_time(tx.now))
    .bind(fmt_time(expiry(tx.now, ttl)))
    .execute(&mut *tx.tx)
    .await?;
    tx.commit(&db).await?;
    Ok(Lease {
        migration: id,
        token,
        pid: db.me.pid,
        host: db.me.host.clone(),
    })
}

/// Extends a lease this process holds, from the database's clock. A lease that expired but
/// that nobody took is simply extended; one whose row holds another token, or none (another
/// server took it and released it since), is lost.
pub async fn renew(db: Arc<Db>, lease: Lease, ttl: Duration) -> Result<(), LeaseError> {
    let mut tx = db.begin().await?;
    head(&mut tx.tx, &lease.migration).await?;
    fence(&mut tx.tx, &lease).await?;
    sqlx::query("UPDATE leases SET expires_at = $2 WHERE migration = $1")
        .bind(lease.migration.as_str())
        .bind(fmt_time(expiry(tx.now, ttl)))
        .execute(&mut *tx.tx)
        .await?;
    tx.commit(&db).await?;
    Ok(())
}

/// Gives a lease up; a lease someone else took meanwhile is left alone.
pub async fn release(db: Arc<Db>, lease: Lease) -> Result<(), StoreError> {
    let mut tx = db.begin().await?;
    sqlx::query("DELETE FROM leases WHERE migration = $1 AND token = $2")
        .bind(lease.migration.as_str())
        .bind(&lease.token)
        .execute(&mut *tx.tx)
        .await?;
    tx.commit(&db).await
}

/// The live holder of a migration's lease, if any.
pub async fn driver(db: Arc<Db>, id: MigrationId) -> Result<Option<LeaseHolder>, StoreError> {
    let mut conn = db.pool.acquire().await?;
    let now = db::now(&mut conn).await?;
    Ok(row(&mut conn, &id)
        .await?
        .filter(|r| r.is_live(&db.me, now))
        .map(|r| r.holder))
}

/// Refuses a write of a driver whose lease is no longer in the row: another server took the
/// migration over (and may have released it since). Call it after `write::head` locked the
/// migration's row (which also answers NotFound for a migration that does not exist).
pub async fn fence(conn: &mut sqlx::PgConnection, lease: &Lease) -> Result<(), LeaseError> {
    match row(conn, &lease.migration).await? {
        Some(held) if held.token == lease.token => Ok(()),
        Some(other) => Err(LeaseError::Lost {
            migration: lease.migration.clone(),
            holder: Some(other.holder),
        }),
        None => Err(LeaseError::Lost {
            migration: lease.migration.clone(),
            holder: None,
        }),
    }
}

/// Of the leases `(migration, token)`, which are held by a live process (in their order):
/// what keeps a pool slot taken under them. One query for all of them, since a pool's slots
/// are counted on every take.
pub(super) async fn holds(
    conn: &mut sqlx::PgConnection,
    me: &Me,
    now: DateTime<Utc>,
    leases: &[(String, String)],
) -> Result<Vec<bool>, StoreError> {
    let migrations: Vec<&str> = leases.iter().map(|(m, _)| m.as_str()).collect();
    let sql = format!("SELECT {COLUMNS} FROM leases WHERE migration = ANY($1)");
    let found = sqlx::query(&sql).bind(&migrations).fetch_all(conn).await?;
    let mut live = HashMap::new();
    for r in &found {
        let row = Row::read(r)?;
        if row.is_live(me, now) {
            live.insert(row.migration, row.token);
        }
    }
    Ok(leases
        .iter()
        .map(|(m, token)| live.get(m) == Some(token))
        .collect())
}
