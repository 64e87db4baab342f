//! The PostgreSQL backend: one database (and schema) shared by several servers
//! (`store: postgres://...`). Each operation is one transaction on a connection pool; what
//! orders writes across servers is PostgreSQL's row locks: a write to a migration locks its
//! row (`FOR NO KEY UPDATE`: foreign-key checks of log lines still pass) first, so a batch's fence check and a lease takeover never interleave.
//!
//! The store's own tokio runtime runs on a thread of its own (`sensei-pg`), so the blocking
//! methods work from any thread, a server's runtime threads included, and dropping the last
//! handle inside an async context is safe. Times come from the database's clock
//! (`clock_timestamp()`), so the servers' clocks do not decide who holds a lease. Commits
//! `NOTIFY sensei_changes`, which every server's change feed listens to.
//!
//! The files: `schema` (tables, versioned upgrades), `db` (the pool and transactions), `queue`
//! (log lines, process records and slot releases, written in order without waiting), `listen`
//! (the change feed), `rows` (reading a row's columns), and one file per area as in the SQLite backend: `write`, `read`, `gate`,
//! `lease`, `outbox`, `hooks`, `pool`, `processes`.

mod db;
mod gate;
mod hooks;
mod lease;
mod listen;
mod outbox;
mod pool;
mod processes;
mod queue;
mod read;
mod rows;
mod schema;
mod write;

use super::{
    AttemptRecord, Batch, Committed, Delivery, DeliveryAttempt, Event, GateDecision, GateError,
    GateInfo, GateOutcome, GateStatus, GateVote, Lease, LeaseError, LeaseHolder, LogLine,
    Migration, MigrationHead, MigrationId, MigrationState, NewEvent, NewLogLine, NewMigration,
    PoolHolder, PoolTake, StepProcess, StepRow, StoreError,
};
use chrono::{DateTime, Utc};
pub use db::redact;
use db::{Db, open_error};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// A handle on a PostgreSQL store. Cheap to clone; the last clone drains the queue of
/// unawaited writes and stops the store's runtime.
#[derive(Debug, Clone)]
pub struct Postgres {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    db: Arc<Db>,
    runtime: tokio::runtime::Handle,
    queue: queue::Queue,
    /// Dropped last: ends the runtime thread, which then finishes what is queued.
    thread: Option<std::thread::JoinHandle<()>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.queue.close();
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Postgres {
    /// Connects to `url` and brings its schema to this build's version.
    pub fn connect(url: &str) -> Result<Postgres, StoreError> {
        let (handle_tx, handle_rx) = std::sync::mpsc::sync_channel(1);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (queue, drained) = queue::Queue::new();
        let thread = std::thread::Builder::new()
            .name("sensei-pg".to_owned())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("sensei-pg")
                    .enable_all()
                    .build();
                match runtime {
                    Ok(runtime) => {
                        let _ = handle_tx.send(Ok(runtime.handle().clone()));
                        runtime.block_on(async {
                            let _ = stopped.await;
                            // Whatever was queued without waiting is written before the end.
                            let _ = drained.await;
                        });
                    }
                    Err(e) => {
                        let _ = handle_tx.send(Err(e.to_string()));
                    }
                }
            })
            .map_err(|e| open_error(url, format!("cannot start its thread: {e}")))?;
        let runtime = handle_rx
            .recv()
            .map_err(|_| open_error(url, "its runtime did not start".to_owned()))?
            .map_err(|e| open_error(url, format!("cannot start its runtime: {e}")))?;
        let db = {
            let owned = url.to_owned();
            let (tx, rx) = std::sync::mpsc::sync_channel(1);
            runtime.spawn(async move {
                let _ = tx.send(Db::connect(&owned).await);
            });
            rx.recv()
                .map_err(|_| open_error(url, "the connection task failed".to_owned()))??
        };
        let db = Arc::new(db);
        queue.start(&runtime, db.clone());
        Ok(Postgres {
            inner: Arc::new(Inner {
                db,
                runtime,
                queue,
                thread: Some(thread),
                stop: Some(stop),
            }),
        })
    }

    fn db(&self) -> Arc<Db> {
        self.inner.db.clone()
    }

    /// Runs `work` on the store's runtime and waits for it (from any thread).
    fn block<T, E>(&self, work: impl Future<Output = Result<T, E>> + Send + 'static) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.inner.runtime.spawn(async move {
            let _ = tx.send(work.await);
        });
        rx.recv().map_err(|_| E::from(StoreError::Closed))?
    }

    /// Runs `work` on the store's runtime; the future can be awaited on any executor.
    fn run<T, E>(
        &self,
        work: impl Future<Output = Result<T, E>> + Send + 'static,
    ) -> impl Future<Output = Result<T, E>> + Send + 'static
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let task = self.inner.runtime.spawn(work);
        async move { task.await.map_err(|_| E::from(StoreError::Closed))? }
    }

    pub fn ping(&self) -> Result<(), StoreError> {
        self.block(db::ping(self.db()))
    }

    pub fn know_alerts(&self, id: &MigrationId, alerts: &crate::runbook::model::Alerts) {
        self.inner.db.routes.know(id, alerts);
    }

    pub fn create_migration(&self, new: NewMigration) -> Result<Migration, StoreError> {
        self.block(write::create_migration(self.db(), new))
    }

    pub fn commit(&self, id: &MigrationId, batch: Batch) -> Result<Committed, StoreError> {
        self.block(write::apply_batch(self.db(), id.clone(), batch))
    }

    pub fn commit_async(
        &self,
        id: &MigrationId,
        batch: Batch,
    ) -> impl Future<Output = Result<Committed, StoreError>> + Send + 'static {
        self.run(write::apply_batch(self.db(), id.clone(), batch))
    }

    pub fn log(&self, id: &MigrationId, line: NewLogLine, fence: Option<Arc<str>>) {
        self.inner
            .queue
            .send(queue::Work::Log(id.clone(), line, fence));
    }

    pub fn lost_log_lines(&self) -> u64 {
        self.inner.queue.lost()
    }

    pub fn flush(&self) -> Result<(), StoreError> {
        let flushed = self.inner.queue.flush();
        self.block(flushed)
    }

    pub fn flush_async(&self) -> impl Future<Output = Result<(), StoreError>> + Send + 'static {
        self.inner.queue.flush()
    }

    pub fn migration(&self, id: &MigrationId) -> Result<Option<Migration>, StoreError> {
        self.block(read::migration(self.db(), id.clone()))
    }

    pub fn resolve_id(&self, prefix_or_id: &str) -> Result<MigrationId, StoreError> {
        self.block(read::resolve_id(self.db(), prefix_or_id.to_owned()))
    }

    pub fn latest(&self) -> Result<Option<MigrationId>, StoreError> {
        self.block(read::latest(self.db()))
    }

    pub fn list(&self, state: Option<MigrationState>) -> Result<Vec<MigrationHead>, StoreError> {
        self.block(read::list(self.db(), state))
    }

    pub fn count_by_state(&self) -> Result<Vec<(MigrationState, u64)>, StoreError> {
        self.block(read::count_by_state(self.db()))
    }

    pub fn durations(&self) -> Result<(Vec<f64>, Vec<f64>), StoreError> {
        self.block(read::durations(self.db()))
    }

    pub fn steps(&self, id: &MigrationId) -> Result<Vec<StepRow>, StoreError> {
        self.block(read::steps(self.db(), id.clone()))
    }

    pub fn step_durations(
        &self,
        runbook: &str,
        step: &str,
        limit: u32,
    ) -> Result<Vec<chrono::Duration>, StoreError> {
        let (runbook, step) = (runbook.to_owned(), step.to_owned());
        self.block(read::step_durations(self.db(), runbook, step, limit))
    }

    pub fn step_history(
        &self,
        runbook: &str,
        except: &MigrationId,
        migrations: u32,
    ) -> Result<Vec<(String, chrono::Duration)>, StoreError> {
        let (runbook, except) = (runbook.to_owned(), except.clone());
        self.block(read::step_history(self.db(), runbook, except, migrations))
    }

    pub fn events(&self, id: &MigrationId, after_seq: i64) -> Result<Vec<Event>, StoreError> {
        self.block(read::events(self.db(), id.clone(), after_seq))
    }

    pub fn events_async(
        &self,
        id: &MigrationId,
        after_seq: i64,
    ) -> impl Future<Output = Result<Vec<Event>, StoreError>> + Send + 'static {
        self.run(read::events(self.db(), id.clone(), after_seq))
    }

    pub fn event(&self, id: &MigrationId, seq: i64) -> Result<Option<Event>, StoreError> {
        self.block(read::event(self.db(), id.clone(), seq))
    }

    pub fn logs(&self, id: &MigrationId, step: Option<&str>) -> Result<Vec<LogLine>, StoreError> {
        self.logs_after(id, step, 0)
    }

    pub fn logs_after(
        &self,
        id: &MigrationId,
        step: Option<&str>,
        after: i64,
    ) -> Result<Vec<LogLine>, StoreError> {
        let step = step.map(str::to_owned);
        self.block(read::logs(self.db(), id.clone(), step, after))
    }

    pub fn decide_gate(&self, id: &MigrationId, vote: GateVote) -> Result<GateOutcome, GateError> {
        self.block(gate::decide(self.db(), id.clone(), vote))
    }

    pub fn close_gate(
        &self,
        id: &MigrationId,
        step: &str,
        status: GateStatus,
        event: NewEvent,
    ) -> Result<bool, StoreError> {
        self.block(gate::close(
            self.db(),
            id.clone(),
            step.to_owned(),
            status,
            event,
        ))
    }

    pub fn close_gate_async(
        &self,
        id: &MigrationId,
        step: &str,
        status: GateStatus,
        event: NewEvent,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send + 'static {
        self.run(gate::close(
            self.db(),
            id.clone(),
            step.to_owned(),
            status,
            event,
        ))
    }

    pub fn gate(&self, id: &MigrationId, step: &str) -> Result<Option<GateInfo>, StoreError> {
        self.block(gate::info(self.db(), id.clone(), step.to_owned()))
    }

    pub fn gate_decisions(&self, id: &MigrationId) -> Result<Vec<GateDecision>, StoreError> {
        self.block(gate::decisions(self.db(), id.clone()))
    }

    pub fn acquire_lease(&self, id: &MigrationId, ttl: Duration) -> Result<Lease, LeaseError> {
        self.block(lease::acquire(self.db(), id.clone(), ttl))
    }

    pub fn renew_lease(&self, lease: &Lease, ttl: Duration) -> Result<(), LeaseError> {
        self.block(lease::renew(self.db(), lease.clone(), ttl))
    }

    pub fn renew_lease_async(
        &self,
        lease: &Lease,
        ttl: Duration,
    ) -> impl Future<Output = Result<(), LeaseError>> + Send + 'static {
        self.run(lease::renew(self.db(), lease.clone(), ttl))
    }

    pub fn release_lease(&self, lease: &Lease) -> Result<(), StoreError> {
        self.block(lease::release(self.db(), lease.clone()))
    }

    pub fn driver(&self, id: &MigrationId) -> Result<Option<LeaseHolder>, StoreError> {
        self.block(lease::driver(self.db(), id.clone()))
    }

    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        listen::subscribe(&self.inner.db, &self.inner.runtime)
    }

    pub fn write_stats(&self) -> (u64, u64) {
        self.inner.db.write_stats()
    }

    pub fn host(&self) -> &str {
        &self.inner.db.me.host
    }

    pub fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u32,
        with_email: bool,
    ) -> Result<Vec<Delivery>, StoreError> {
        self.block(outbox::claim(self.db(), now, until, limit, with_email))
    }

    pub fn claim_deliveries_async(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u32,
        with_email: bool,
    ) -> impl Future<Output = Result<Vec<Delivery>, StoreError>> + Send + 'static {
        self.run(outbox::claim(self.db(), now, until, limit, with_email))
    }

    pub fn record_attempt(&self, record: AttemptRecord) -> Result<bool, StoreError> {
        self.block(outbox::record(self.db(), record))
    }

    pub fn record_attempt_async(
        &self,
        record: AttemptRecord,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send + 'static {
        self.run(outbox::record(self.db(), record))
    }

    pub fn delivery_counts(&self) -> Result<Vec<(String, String, i64)>, StoreError> {
        self.block(outbox::counts(self.db()))
    }

    pub fn deliveries(&self, id: Option<&MigrationId>) -> Result<Vec<Delivery>, StoreError> {
        self.block(outbox::list(self.db(), id.cloned()))
    }

    pub fn pending_deliveries(
        &self,
        id: Option<&MigrationId>,
        with_email: bool,
    ) -> Result<(u64, Option<DateTime<Utc>>), StoreError> {
        self.block(outbox::pending(self.db(), id.cloned(), with_email))
    }

    pub fn delivery_attempts(&self, delivery: i64) -> Result<Vec<DeliveryAttempt>, StoreError> {
        self.block(outbox::attempts(self.db(), delivery))
    }

    pub fn take_pool_slot(
        &self,
        pool: &str,
        size: u32,
        step: &str,
        lease: &Lease,
    ) -> Result<PoolTake, StoreError> {
        // Releases sent before this take are written first, so it sees their slots free.
        let flushed = self.inner.queue.flush();
        let take = pool::take(
            self.db(),
            pool.to_owned(),
            size,
            step.to_owned(),
            lease.clone(),
        );
        self.block(async move {
            flushed.await?;
            take.await
        })
    }

    pub fn release_pool_slot(&self, slot: i64) {
        self.inner.queue.send(queue::Work::Release(slot));
    }

    pub fn pool_holders(&self, pool: &str) -> Result<Vec<PoolHolder>, StoreError> {
        self.block(pool::holders(self.db(), pool.to_owned()))
    }

    pub fn record_process(&self, id: &MigrationId, process: StepProcess) {
        self.inner
            .queue
            .send(queue::Work::Process(id.clone(), process));
    }

    pub fn step_process(
        &self,
        id: &MigrationId,
        step: &str,
    ) -> Result<Option<StepProcess>, StoreError> {
        self.block(processes::get(self.db(), id.clone(), step.to_owned()))
    }

    pub fn claim_hook_signature(
        &self,
        hook: &str,
        mac: &[u8],
        timestamp: i64,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let (hook, mac) = (hook.to_owned(), mac.to_vec());
        self.block(hooks::claim_signature(
            self.db(),
            hook,
            mac,
            timestamp,
            now,
            expires_at,
        ))
    }

    pub fn hook_key(&self, hook: &str, key: &str) -> Result<Option<MigrationId>, StoreError> {
        self.block(hooks::keyed(self.db(), hook.to_owned(), key.to_owned()))
    }

    pub fn remember_hook_key(
        &self,
        hook: &str,
        key: &str,
        migration: &MigrationId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let (hook, key, migration) = (hook.to_owned(), key.to_owned(), migration.clone());
        self.block(hooks::remember_key(self.db(), hook, key, migration, now))
    }
}
