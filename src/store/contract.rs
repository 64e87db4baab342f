//! The store contract: [`Store`], one handle over either backend, with one set of operations
//! the engine, the server and the CLI use without knowing which backend they have.
//!
//! - **SQLite** ([`super::Sqlite`]), the default: the state directory's `sensei.db`, for one
//!   server, or local drivers sharing a state directory on one host.
//! - **PostgreSQL** ([`super::Postgres`]): `postgres://...`, shared by several servers.
//!
//! What each operation owes is the same on both: a write returns once it is durable; a batch
//! with a fence is refused ([`StoreError::Fenced`]) unless its lease still holds; events are
//! routed to the outbox in their own transaction; [`Store::changes`] moves after every commit,
//! whoever made it. `tests::contract` and the other store tests run against both backends.
//!
//! Blocking methods must not be called on a tokio runtime thread for writes (use the `_async`
//! ones there); reads are quick on both backends.

use super::{
    AttemptRecord, Batch, Committed, Delivery, DeliveryAttempt, Durability, Event, GateDecision,
    GateError, GateInfo, GateOutcome, GateStatus, GateVote, Lease, LeaseError, LeaseHolder,
    LogLine, Migration, MigrationHead, MigrationId, MigrationState, NewEvent, NewLogLine,
    NewMigration, PoolHolder, PoolTake, Postgres, Sqlite, StepProcess, StepRow, StoreError,
};
use chrono::{DateTime, Utc};
use futures_util::future::Either;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Where a store is: a state directory (SQLite) or a PostgreSQL URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Dir(PathBuf),
    Postgres(String),
}

impl Location {
    /// `postgres://...` or `postgresql://...` is PostgreSQL; anything else is a directory.
    pub fn parse(text: &str) -> Location {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            Location::Postgres(text.to_owned())
        } else {
            Location::Dir(PathBuf::from(text))
        }
    }
}

impl std::fmt::Display for Location {
    /// The location for messages: a URL without its password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Dir(dir) => write!(f, "{}", dir.display()),
            Location::Postgres(url) => f.write_str(&super::postgres::redact(url)),
        }
    }
}

/// A handle on a store. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    backend: Backend,
    /// The lease token of the driver this handle writes for ([`Store::fenced_by`]): its
    /// step log lines are written only while the lease is still that driver's.
    fence: Option<Arc<str>>,
}

#[derive(Debug, Clone)]
enum Backend {
    Sqlite(Sqlite),
    Postgres(Postgres),
}

/// Runs `$body` with `$b` bound to whichever backend this is.
macro_rules! on {
    ($store:expr, $b:ident => $body:expr) => {
        match &$store.backend {
            Backend::Sqlite($b) => $body,
            Backend::Postgres($b) => $body,
        }
    };
}

/// The same for a method returning a future: the two backends' futures are different types.
macro_rules! on_async {
    ($store:expr, $b:ident => $body:expr) => {
        match &$store.backend {
            Backend::Sqlite($b) => Either::Left($body),
            Backend::Postgres($b) => Either::Right($body),
        }
    };
}

impl Store {
    /// Opens (creating it if needed) the SQLite store in `state_dir`, fully durable.
    pub fn open(state_dir: &Path) -> Result<Store, StoreError> {
        Store::open_with(state_dir, Durability::Full)
    }

    pub fn open_with(state_dir: &Path, durability: Durability) -> Result<Store, StoreError> {
        Ok(Store {
            backend: Backend::Sqlite(Sqlite::open_with(state_dir, durability)?),
            fence: None,
        })
    }

    /// Opens the store at `location`, upgrading its schema to this build's.
    pub fn connect(location: &Location, durability: Durability) -> Result<Store, StoreError> {
        match location {
            Location::Dir(dir) => Store::open_with(dir, durability),
            Location::Postgres(url) => Ok(Store {
                backend: Backend::Postgres(Postgres::connect(url)?),
                fence: None,
            }),
        }
    }

    /// This store as a driver holding `lease` writes to it: the step log lines it queues are
    /// dropped once another process has taken the migration over (batches carry their own
    /// fence), so a driver that wakes after losing its lease writes nothing.
    pub fn fenced_by(&self, lease: &super::Lease) -> Store {
        Store {
            backend: self.backend.clone(),
            fence: Some(Arc::from(lease.token.as_str())),
        }
    }

    /// The SQLite backend, for what only it has (its file, its write statistics).
    pub fn as_sqlite(&self) -> Option<&Sqlite> {
        match &self.backend {
            Backend::Sqlite(s) => Some(s),
            Backend::Postgres(_) => None,
        }
    }

    /// Whether several servers can share this store.
    pub fn is_shared(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    /// Answers when the store can be read now (readiness).
    pub fn ping(&self) -> Result<(), StoreError> {
        on!(self, b => b.ping())
    }

    /// Tells the store a migration's alert rules (see `route`).
    pub fn know_alerts(&self, id: &MigrationId, alerts: &crate::runbook::model::Alerts) {
        on!(self, b => b.know_alerts(id, alerts))
    }

    pub fn create_migration(&self, new: NewMigration) -> Result<Migration, StoreError> {
        on!(self, b => b.create_migration(new))
    }

    /// Commits a batch and blocks until it is durable (not on a runtime thread).
    pub fn commit(&self, id: &MigrationId, batch: Batch) -> Result<Committed, StoreError> {
        on!(self, b => b.commit(id, batch))
    }

    pub fn commit_async(
        &self,
        id: &MigrationId,
        batch: Batch,
    ) -> impl Future<Output = Result<Committed, StoreError>> + Send + 'static {
        on_async!(self, b => b.commit_async(id, batch))
    }

    /// Queues a line of step output; it is written soon, in order (see [`Sqlite::log`]).
    pub fn log(&self, id: &MigrationId, line: NewLogLine) {
        on!(self, b => b.log(id, line, self.fence.clone()))
    }

    pub fn lost_log_lines(&self) -> u64 {
        on!(self, b => b.lost_log_lines())
    }

    /// Blocks until everything sent before, log lines included, is committed.
    pub fn flush(&self) -> Result<(), StoreError> {
        on!(self, b => b.flush())
    }

    pub fn flush_async(&self) -> impl Future<Output = Result<(), StoreError>> + Send + 'static {
        on_async!(self, b => b.flush_async())
    }

    pub fn migration(&self, id: &MigrationId) -> Result<Option<Migration>, StoreError> {
        on!(self, b => b.migration(id))
    }

    pub fn resolve_id(&self, prefix_or_id: &str) -> Result<MigrationId, StoreError> {
        on!(self, b => b.resolve_id(prefix_or_id))
    }

    pub fn latest(&self) -> Result<Option<MigrationId>, StoreError> {
        on!(self, b => b.latest())
    }

    pub fn list(&self, state: Option<MigrationState>) -> Result<Vec<MigrationHead>, StoreError> {
        on!(self, b => b.list(state))
    }

    pub fn count_by_state(&self) -> Result<Vec<(MigrationState, u64)>, StoreError> {
        on!(self, b => b.count_by_state())
    }

    pub fn durations(&self) -> Result<(Vec<f64>, Vec<f64>), StoreError> {
        on!(self, b => b.durations())
    }

    pub fn steps(&self, id: &MigrationId) -> Result<Vec<StepRow>, StoreError> {
        on!(self, b => b.steps(id))
    }

    pub fn step_durations(
        &self,
        runbook: &str,
        step: &str,
        limit: u32,
    ) -> Result<Vec<chrono::Duration>, StoreError> {
        on!(self, b => b.step_durations(runbook, step, limit))
    }

    pub fn step_history(
        &self,
        runbook: &str,
        except: &MigrationId,
        migrations: u32,
    ) -> Result<Vec<(String, chrono::Duration)>, StoreError> {
        on!(self, b => b.step_history(runbook, except, migrations))
    }

    pub fn events(&self, id: &MigrationId, after_seq: i64) -> Result<Vec<Event>, StoreError> {
        on!(self, b => b.events(id, after_seq))
    }

    /// [`Store::events`] without holding a runtime thread while PostgreSQL answers (a
    /// driver reads the events other processes appended each time the feed moves).
    pub fn events_async(
        &self,
        id: &MigrationId,
        after_seq: i64,
    ) -> impl Future<Output = Result<Vec<Event>, StoreError>> + Send + 'static {
        match &self.backend {
            // A local read: done now, the future only hands it over.
            Backend::Sqlite(b) => Either::Left(std::future::ready(b.events(id, after_seq))),
            Backend::Postgres(b) => Either::Right(b.events_async(id, after_seq)),
        }
    }

    pub fn event(&self, id: &MigrationId, seq: i64) -> Result<Option<Event>, StoreError> {
        on!(self, b => b.event(id, seq))
    }

    pub fn logs(&self, id: &MigrationId, step: Option<&str>) -> Result<Vec<LogLine>, StoreError> {
        on!(self, b => b.logs(id, step))
    }

    pub fn logs_after(
        &self,
        id: &MigrationId,
        step: Option<&str>,
        after: i64,
    ) -> Result<Vec<LogLine>, StoreError> {
        on!(self, b => b.logs_after(id, step, after))
    }

    pub fn decide_gate(&self, id: &MigrationId, vote: GateVote) -> Result<GateOutcome, GateError> {
        on!(self, b => b.decide_gate(id, vote))
    }

    pub fn close_gate(
        &self,
        id: &MigrationId,
        step: &str,
        status: GateStatus,
        event: NewEvent,
    ) -> Result<bool, StoreError> {
        on!(self, b => b.close_gate(id, step, status, event))
    }

    pub fn close_gate_async(
        &self,
        id: &MigrationId,
        step: &str,
        status: GateStatus,
        event: NewEvent,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send + 'static {
        on_async!(self, b => b.close_gate_async(id, step, status, event))
    }

    pub fn gate(&self, id: &MigrationId, step: &str) -> Result<Option<GateInfo>, StoreError> {
        on!(self, b => b.gate(id, step))
    }

    pub fn gate_decisions(&self, id: &MigrationId) -> Result<Vec<GateDecision>, StoreError> {
        on!(self, b => b.gate_decisions(id))
    }

    pub fn acquire_lease(&self, id: &MigrationId, ttl: Duration) -> Result<Lease, LeaseError> {
        on!(self, b => b.acquire_lease(id, ttl))
    }

    pub fn renew_lease(&self, lease: &Lease, ttl: Duration) -> Result<(), LeaseError> {
        on!(self, b => b.renew_lease(lease, ttl))
    }

    pub fn renew_lease_async(
        &self,
        lease: &Lease,
        ttl: Duration,
    ) -> impl Future<Output = Result<(), LeaseError>> + Send + 'static {
        on_async!(self, b => b.renew_lease_async(lease, ttl))
    }

    pub fn release_lease(&self, lease: &Lease) -> Result<(), StoreError> {
        on!(self, b => b.release_lease(lease))
    }

    /// The live process driving the migration, if any.
    pub fn driver(&self, id: &MigrationId) -> Result<Option<LeaseHolder>, StoreError> {
        on!(self, b => b.driver(id))
    }

    /// The change feed: moves after every commit, this process's or another's.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        on!(self, b => b.changes())
    }

    /// Transactions and jobs committed so far by this handle's process.
    pub fn write_stats(&self) -> (u64, u64) {
        on!(self, b => b.write_stats())
    }

    /// This host's name, as leases and process records name it.
    pub fn host(&self) -> &str {
        on!(self, b => b.host())
    }

    pub fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u32,
        with_email: bool,
    ) -> Result<Vec<Delivery>, StoreError> {
        on!(self, b => b.claim_deliveries(now, until, limit, with_email))
    }

    pub fn claim_deliveries_async(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u32,
        with_email: bool,
    ) -> impl Future<Output = Result<Vec<Delivery>, StoreError>> + Send + 'static {
        on_async!(self, b => b.claim_deliveries_async(now, until, limit, with_email))
    }

    pub fn record_attempt(&self, record: AttemptRecord) -> Result<bool, StoreError> {
        on!(self, b => b.record_attempt(record))
    }

    pub fn record_attempt_async(
        &self,
        record: AttemptRecord,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send + 'static {
        on_async!(self, b => b.record_attempt_async(record))
    }

    pub fn delivery_counts(&self) -> Result<Vec<(String, String, i64)>, StoreError> {
        on!(self, b => b.delivery_counts())
    }

    pub fn deliveries(&self, id: Option<&MigrationId>) -> Result<Vec<Delivery>, StoreError> {
        on!(self, b => b.deliveries(id))
    }

    pub fn pending_deliveries(
        &self,
        id: Option<&MigrationId>,
        with_email: bool,
    ) -> Result<(u64, Option<DateTime<Utc>>), StoreError> {
        on!(self, b => b.pending_deliveries(id, with_email))
    }

    pub fn delivery_attempts(&self, delivery: i64) -> Result<Vec<DeliveryAttempt>, StoreError> {
        on!(self, b => b.delivery_attempts(delivery))
    }

    pub fn take_pool_slot(
        &self,
        pool: &str,
        size: u32,
        step: &str,
        lease: &Lease,
    ) -> Result<PoolTake, StoreError> {
        on!(self, b => b.take_pool_slot(pool, size, step, lease))
    }

    /// Gives a pool slot back, ordered with this handle's other writes; does not wait.
    pub fn release_pool_slot(&self, slot: i64) {
        on!(self, b => b.release_pool_slot(slot))
    }

    pub fn pool_holders(&self, pool: &str) -> Result<Vec<PoolHolder>, StoreError> {
        on!(self, b => b.pool_holders(pool))
    }

    pub fn record_process(&self, id: &MigrationId, process: StepProcess) {
        on!(self, b => b.record_process(id, process))
    }

    pub fn step_process(
        &self,
        id: &MigrationId,
        step: &str,
    ) -> Result<Option<StepProcess>, StoreError> {
        on!(self, b => b.step_process(id, step))
    }

    pub fn claim_hook_signature(
        &self,
        hook: &str,
        mac: &[u8],
        timestamp: i64,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        on!(self, b => b.claim_hook_signature(hook, mac, timestamp, now, expires_at))
    }

    pub fn hook_key(&self, hook: &str, key: &str) -> Result<Option<MigrationId>, StoreError> {
        on!(self, b => b.hook_key(hook, key))
    }

    pub fn remember_hook_key(
        &self,
        hook: &str,
        key: &str,
        migration: &MigrationId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on!(self, b => b.remember_hook_key(hook, key, migration, now))
    }
}
