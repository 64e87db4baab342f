//! Leases: one process drives a migration at a time (SPEC §5). A row per migration names the
//! holder (a random token, pid, host) and when it expires; the holder renews it while it
//! works and releases it when it stops.
//!
//! A lease can be taken when there is none, when it expired, or when its holder was a process
//! on this host that no longer runs: `sensei resume` right after a `kill -9` needs no wait.
//! A process is recognised by its pid and its start time, so a reused pid is not mistaken
//! for the old holder.

use super::StoreError;
use super::error::LeaseError;
use super::schema::{fmt_time, time_col};
use super::write::head;
use super::writer::Group;
use crate::event::MigrationId;
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
            start: proc_start(pid).ok().flatten(),
            host: hostname(),
        }
    }
}

/// The host name: the kernel's, or `$HOSTNAME`, or `localhost`.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Reads /proc/<pid>/stat: `Ok(None)` when the process is gone (or a zombie), `Ok(Some(start))`
/// when it runs, `Err` when /proc cannot tell.
fn proc_start(pid: u32) -> Result<Option<u64>, ()> {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // The command name (field 2) may hold spaces and parentheses: parse after the last ')'.
            let rest = stat.rsplit_once(')').map(|(_, r)| r).ok_or(())?;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            // fields[0] is field 3 (the state), so field 22 (starttime) is fields[19].
            if matches!(fields.first(), Some(&"Z") | Some(&"X")) {
                return Ok(None);
            }
            Ok(Some(
                fields.get(19).and_then(|s| s.parse().ok()).unwrap_or(0),
            ))
        }
        Err(_) if std::path::Path::new("/proc/self/stat").exists() => Ok(None),
        Err(_) => Err(()),
    }
}

/// Whether a holder on this host still runs. Without /proc nothing can be known, and the
/// holder is taken to be alive until its lease expires.
fn alive(pid: u32, start: Option<u64>) -> bool {
    match proc_start(pid) {
        Ok(None) => false,
        Ok(Some(now)) => start.is_none_or(|s| s == now),
        Err(()) => true,
    }
}

struct Row {
    token: String,
    pid: u32,
    pid_start: Option<u64>,
    holder: LeaseHolder,
}

impl Row {
    /// Held by a live process: not expired, and not a process of this host that is gone.
    fn is_live(&self, me: &Me, now: DateTime<Utc>) -> bool {
        self.holder.expires_at > now
            && (self.holder.host != me.host || alive(self.pid, self.pid_start))
    }
}

fn row(conn: &Connection, id: &MigrationId) -> Result<Option<Row>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT token, pid, pid_start, host, since, expires_at FROM leases WHERE migration = ?1",
        )?
        .query_row([id.as_str()], |r| {
            let pid: u32 = r.get(1)?;
            Ok(Row {
                token: r.get(0)?,
                pid,
                pid_start: r.get::<_, Option<i64>>(2)?.map(|s| s as u64),
                holder: LeaseHolder {
                    pid,
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

/// Extends a lease this process holds. Lost when another token is in the row; a lease that
/// expired or vanished but that nobody took is simply taken again.
pub fn renew(
    conn: &Connection,
    group: &Group,
    me: &Me,
    lease: &Lease,
    ttl: Duration,
) -> Result<(), LeaseError> {
    match row(conn, &lease.migration)? {
        Some(other) if other.token != lease.token => Err(LeaseError::Lost {
            migration: lease.migration.clone(),
            holder: other.holder,
        }),
        Some(_) => {
            conn.prepare_cached("UPDATE leases SET expires_at = ?2 WHERE migration = ?1")?
                .execute(params![
                    lease.migration.as_str(),
                    fmt_time(expiry(group.now, ttl))
                ])?;
            Ok(())
        }
        None => {
            head(conn, &lease.migration)?;
            put(conn, &lease.migration, &lease.token, me, group.now, ttl)?;
            Ok(())
        }
    }
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
