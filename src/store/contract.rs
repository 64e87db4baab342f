//! The store contract: the operations the engine and the server need from a store, as one
//! async interface a second backend can implement. Every write resolves once it is durable;
//! a batch with a fence is refused ([`StoreError::Fenced`]) unless its lease still holds;
//! [`Backend::changes`] moves after every commit, whoever made it. The SQLite [`Store`]
//! implements it; its own blocking methods are the adapter the CLI uses. What a backend owes
//! is checked by `tests::contract`, which runs against a `&dyn Backend`.

use super::{
    AttemptRecord, Batch, Committed, Delivery, Event, GateInfo, GateOutcome, GateStatus, GateVote,
    Lease, LeaseError, Migration, MigrationId, NewEvent, NewMigration, StepRow, Store, StoreError,
};
use crate::store::{GateError, PoolTake};
use chrono::{DateTime, Utc};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use tokio::sync::watch;

/// What a backend's operations return: a future that owns what it needs.
pub type Pending<T, E = StoreError> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

/// A store, as the engine and the server use it.
pub trait Backend: Send + Sync {
    /// Creates a migration with its first event and a pending row per step.
    fn create_migration(&self, new: NewMigration) -> Pending<Migration>;
    /// Commits a batch atomically; refused if its fence no longer holds.
    fn commit(&self, id: &MigrationId, batch: Batch) -> Pending<Committed>;
    fn migration(&self, id: &MigrationId) -> Pending<Option<Migration>>;
    /// Events with a seq above `after_seq`, in order.
    fn events(&self, id: &MigrationId, after_seq: i64) -> Pending<Vec<Event>>;
    fn steps(&self, id: &MigrationId) -> Pending<Vec<StepRow>>;
    fn acquire_lease(&self, id: &MigrationId, ttl: Duration) -> Pending<Lease, LeaseError>;
    fn renew_lease(&self, lease: &Lease, ttl: Duration) -> Pending<(), LeaseError>;
    fn release_lease(&self, lease: &Lease) -> Pending<()>;
    fn gate(&self, id: &MigrationId, step: &str) -> Pending<Option<GateInfo>>;
    fn decide_gate(&self, id: &MigrationId, vote: GateVote) -> Pending<GateOutcome, GateError>;
    /// Closes an open gate with `event`; false when it was no longer open.
    fn close_gate(
        &self,
        id: &MigrationId,
        step: &str,
        status: GateStatus,
        event: NewEvent,
    ) -> Pending<bool>;
    /// Takes due alert deliveries nobody else holds, until `until`.
    fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u32,
        with_email: bool,
    ) -> Pending<Vec<Delivery>>;
    fn record_attempt(&self, record: AttemptRecord) -> Pending<bool>;
    /// Takes a slot of `pool` (`size` slots) for `step`, held under `lease`.
    fn take_pool_slot(&self, pool: &str, size: u32, step: &str, lease: &Lease)
    -> Pending<PoolTake>;
    /// Gives a slot back, ordered with this backend's other writes; does not wait.
    fn release_pool_slot(&self, slot: i64);
    /// Moves after every commit, this process's or another's.
    fn changes(&self) -> watch::Receiver<u64>;
}

/// A read of the local reader connection: quick, so it runs before the future is returned.
fn ready<T: Send + 'static, E: Send + 'static>(value: Result<T, E>) -> Pending<T, E> {
    Box::pin(std::future::ready(value))
}

impl Backend for Store {
    fn create_migration(&self, new: NewMigration) -> Pending<Migration> {
        Box::pin(
            self.call_async(move |conn, group| super::write::create_migration(conn, group, new)),
        )
    }
    fn commit(&self, id: &MigrationId, batch: Batch) -> Pending<Committed> {
        Box::pin(self.commit_async(id, batch))
    }
    fn migration(&self, id: &MigrationId) -> Pending<Option<Migration>> {
        ready(Store::migration(self, id))
    }
    fn events(&self, id: &MigrationId, after_seq: i64) -> Pending<Vec<Event>> {
        ready(Store::events(self, id, after_seq))
    }
    fn steps(&self, id: &MigrationId) -> Pending<Vec<StepRow>> {
        ready(Store::steps(self, id))
    }
    fn acquire_lease(&self, id: &MigrationId, ttl: Duration) -> Pending<Lease, LeaseError> {
        let (id, me) = (id.clone(), self.inner.me.clone());
        Box::pin(
            self.call_async(move |conn, group| super::lease::acquire(conn, group, &me, &id, ttl)),
        )
    }
    fn renew_lease(&self, lease: &Lease, ttl: Duration) -> Pending<(), LeaseError> {
        Box::pin(self.renew_lease_async(lease, ttl))
    }
    fn release_lease(&self, lease: &Lease) -> Pending<()> {
        let lease = lease.clone();
        Box::pin(self.call_async(move |conn, _| super::lease::release(conn, &lease)))
    }
    fn gate(&self, id: &MigrationId, step: &str) -> Pending<Option<GateInfo>> {
        ready(Store::gate(self, id, step))
    }
    fn decide_gate(&self, id: &MigrationId, vote: GateVote) -> Pending<GateOutcome, GateError> {
        let id = id.clone();
        Box::pin(self.call_async(move |conn, group| super::gate::decide(conn, group, &id, vote)))
    }
    fn close_gate(
        &self,
        id: &MigrationId,
        step: &str,
        status: GateStatus,
        event: NewEvent,
    ) -> Pending<bool> {
        Box::pin(self.close_gate_async(id, step, status, event))
    }
    fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u32,
        with_email: bool,
    ) -> Pending<Vec<Delivery>> {
        Box::pin(self.claim_deliveries_async(now, until, limit, with_email))
    }
    fn record_attempt(&self, record: AttemptRecord) -> Pending<bool> {
        Box::pin(self.record_attempt_async(record))
    }
    fn take_pool_slot(
        &self,
        pool: &str,
        size: u32,
        step: &str,
        lease: &Lease,
    ) -> Pending<PoolTake> {
        let (pool, step, lease, me) = (
            pool.to_owned(),
            step.to_owned(),
            lease.clone(),
            self.inner.me.clone(),
        );
        Box::pin(self.call_async(move |conn, group| {
            super::pool::take(conn, group, &me, &pool, size, &step, &lease)
        }))
    }
    fn release_pool_slot(&self, slot: i64) {
        Store::release_pool_slot(self, slot);
    }
    fn changes(&self) -> watch::Receiver<u64> {
        Store::changes(self)
    }
}
