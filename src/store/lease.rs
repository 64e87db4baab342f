//! Leases: one process drives a migration at a time (SPEC §5). A row per migration names the
//! holder (a random token, pid, host) and when it expires; the holder renews it while it
//! works and releases it when it stops.
//!
//! A lease can be taken when there is none, when its holder was a process on this host that
//! no longer runs (`sensei resume` right after a `kill -9` needs no wait), or when a holder on
//! another host let it expire. A holder on this host that still runs keeps its lease even
//! past its expiry: its step processes may still run, and a second driver would start them
//! again beside them. A process is recognised by its pid and its start time, so a reused pid
//! is not mistaken for the old holder.
//!
//! The token is also a fencing token: every batch a driver commits carries it, and the store
//! refuses the batch once the row holds another token ([`fence`]), so a driver that lost its
//! lease (paused past its expiry on another host, say) writes nothing more.

use super::StoreError;
use super::error::LeaseError;
use super::schema::{fmt_time, time_col};
use super::write::head;
use super::writer::Group;
use crate::event::MigrationId;
use crate::host;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use std::time::Duration;

/// A lease this process holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub migration: MigrationId,
    /// Random, unique to this acquisition.
    pub token: String,
    pub pid: u32,
    pub host: String,
}

/// Who holds a lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeaseHolder {
    pub pid: u32,
    pub host: String,
    pub since: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// This process, as leases name it.
#[derive(Debug, Clone)]
pub struct Me {
    pub pid: u32,
    /// Start time of this process in clock ticks since boot, where /proc tells it.
    pub start: Option<u64>,
    pub host: String,
}

impl Me {
    pub fn discover() -> Me {
        let pid = std::process::id();
        Me {
            pid,
            start: host::start_of(pid),
            host: host::name(),
        }
    }
}

struct Row {
    token: String,
    pid_start: Option<u64>,
    holder: LeaseHolder,
}

/// How a backend judges whether a lease's holder still holds it: the one rule of both
/// backends, with the one difference between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// SQLite (one host, or local drivers beside a server): a process of this host that
    /// still runs keeps its lease whatever its expiry (its steps may still run, and a second
    /// driver would start them again beside them).
    HostFirst,
    /// PostgreSQL (servers on several hosts): only the expiry counts, by the database's
    /// clock, so a server paused past its lease loses it to the next that asks.
    ClockFirst,
}

/// Held by a live process: a holder of this host whose process is gone never is (a reused
/// pid is told apart by its start time); otherwise as `rule` says, and an unexpired lease
/// of another host (or of this one when /proc cannot tell) always is.
pub fn is_live(
    holder: &LeaseHolder,
    pid_start: Option<u64>,
    me: &Me,
    now: DateTime<Utc>,
    rule: Liveness,
) -> bool {
    let on_this_host = (holder.host == me.host)
        .then(|| host::alive(holder.pid, pid_start))
        .flatten();
    let unexpired = holder.expires_at > now;
    match (on_this_host, rule) {
        (Some(false), _) => false,
        (Some(true), Liveness::HostFirst) => true,
        _ => unexpired,
    }
}

impl Row {
    fn is_live(&self, me: &Me, now: DateTime<Utc>) -> bool {
        is_live(&self.holder, self.pid_start, me, now, Liveness::HostFirst)
    }
}

fn row(conn: &Connection, id: &MigrationId) -> Result<Option<Row>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT token, pid, pid_start, host, since, expires_at FROM leases WHERE migration = ?1",
        )?
        .query_row([id.as_str()], |r| {
            Ok(Row {
                token: r.get(0)?,
                pid_start: r.get::<_, Option<i64>>(2)?.map(|s| s as u64),
                holder: LeaseHolder {
                    pid: r.get(1)?,
                    host: r.get(3)?,
                    since: time_col(r, 4)?,
                    expires_at: time_col(r, 5)?,
                },
            })
        })
        .optional()?)
}

fn expiry(now: DateTime<Utc>, ttl: Duration) -> DateTime<Utc> {
    now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX)
}

fn put(
    conn: &Connection,
    id: &MigrationId,
    token: &str,
    me: &Me,
    now: DateTime<Utc>,
    ttl: Duration,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO leases (migration, token, pid, pid_start, host, since, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        id.as_str(),
        token,
        me.pid,
        me.start.map(|s| s as i64),
        me.host,
        fmt_time(now),
        fmt_time(expiry(now, ttl)),
    ])?;
    Ok(())
}

/// Takes the lease unless a live process holds it, this one included: a process that drives
/// several migrations (a server) must not drive one twice.
pub fn acquire(
    conn: &Connection,
    group: &Group,
    me: &Me,
    id: &MigrationId,
    ttl: Duration,
) -> Result<Lease, LeaseError> {
    head(conn, id)?;
    if let Some(held) = row(conn, id)?
        && held.is_live(me, group.now)
    {
        return Err(LeaseError::Held {
            migration: id.clone(),
            holder: held.holder,
        });
    }
    let token = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
    put(conn, id, &token, me, group.now, ttl)?;
    Ok(Lease {
        migration: id.clone(),
        token,
        pid: me.pid,
        host: me.host.clone(),
    })
}

/// Extends a lease this process holds. A lease that expired but that nobody took is simply
/// extended; one whose row holds another token, or none (another process took it and
/// released it since), is lost.
pub fn renew(
    conn: &Connection,
    group: &Group,
    lease: &Lease,
    ttl: Duration,
) -> Result<(), LeaseError> {
    fence(conn, lease)?;
    conn.prepare_cached("UPDATE leases SET expires_at = ?2 WHERE migration = ?1")?
        .execute(params![
            lease.migration.as_str(),
            fmt_time(expiry(group.now, ttl))
        ])?;
    Ok(())
}

/// Refuses a write of a driver whose lease is no longer in the row: another process took
/// the migration over (and may have released it since).
pub fn fence(conn: &Connection, lease: &Lease) -> Result<(), LeaseError> {
    match row(conn, &lease.migration)? {
        Some(held) if held.token == lease.token => Ok(()),
        Some(other) => Err(LeaseError::Lost {
            migration: lease.migration.clone(),
            holder: Some(other.holder),
        }),
        None => {
            head(conn, &lease.migration)?;
            Err(LeaseError::Lost {
                migration: lease.migration.clone(),
                holder: None,
            })
        }
    }
}

/// Whether the lease `token` on `migration` is held by a live process: what keeps a pool
/// slot taken under that lease.
pub(super) fn holds(
    conn: &Connection,
    me: &Me,
    migration: &str,
    token: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    Ok(row(conn, &MigrationId::from(migration.to_owned()))?
        .is_some_and(|r| r.token == token && r.is_live(me, now)))
}

/// Gives a lease up; a lease someone else took meanwhile is left alone.
pub fn release(conn: &Connection, lease: &Lease) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM leases WHERE migration = ?1 AND token = ?2")?
        .execute(params![lease.migration.as_str(), lease.token])?;
    Ok(())
}

/// The live holder of a migration's lease, if any.
pub fn driver(
    conn: &Connection,
    me: &Me,
    id: &MigrationId,
    now: DateTime<Utc>,
) -> Result<Option<LeaseHolder>, StoreError> {
    Ok(row(conn, id)?
        .filter(|r| r.is_live(me, now))
        .map(|r| r.holder))
}
