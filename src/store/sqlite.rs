//! The SQLite backend's handle: the store of one state directory (`<state_dir>/sensei.db`,
//! WAL). Every write goes to one writer thread that commits whatever is queued in one
//! transaction (`writer`); reads use a second connection. A call that writes returns only
//! after the COMMIT, at the configured [`Durability`].

use super::writer::{self, Group, Job, Reply, Stats};
use super::*;
use chrono::{DateTime, Utc};
use rusqlite::Connection;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// A handle on the store of one state directory. Cheap to clone; the writer thread stops
/// (after committing everything queued) when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct Sqlite {
    pub(super) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(super) struct Inner {
    pub(super) path: PathBuf,
    /// `None` only while dropping.
    pub(super) jobs: Option<Sender<Job>>,
    pub(super) writer: Option<JoinHandle<()>>,
    pub(super) reader: Mutex<Connection>,
    pub(super) me: lease::Me,
    pub(super) lost_logs: Arc<AtomicU64>,
    pub(super) stats: Arc<Stats>,
    pub(super) feed: Arc<feed::Feed>,
    pub(super) routes: Arc<route::Routes>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the channel lets the writer drain the queue and return.
        self.jobs.take();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

impl Sqlite {
    /// Opens (creating it if needed) the store in `state_dir`, with [`Durability::Full`].
    pub fn open(state_dir: &Path) -> Result<Sqlite, StoreError> {
        Sqlite::open_with(state_dir, Durability::Full)
    }

    pub fn open_with(state_dir: &Path, durability: Durability) -> Result<Sqlite, StoreError> {
        let conn = schema::open_writer(state_dir, durability)?;
        let reader = schema::open_reader(state_dir)?;
        let (tx, rx) = mpsc::channel();
        let stats = Arc::new(Stats::default());
        let feed = Arc::new(feed::Feed::default());
        let routes = Arc::new(route::Routes::default());
        let writer = std::thread::Builder::new()
            .name("sensei-store".to_owned())
            .spawn({
                let (stats, feed, routes) = (stats.clone(), feed.clone(), routes.clone());
                move || writer::run(conn, rx, stats, feed, routes)
            })
            .map_err(|e| StoreError::Open {
                path: state_dir.join(DB_FILE),
                reason: format!("cannot start the writer thread: {e}"),
            })?;
        Ok(Sqlite {
            inner: Arc::new(Inner {
                path: state_dir.join(DB_FILE),
                jobs: Some(tx),
                writer: Some(writer),
                reader: Mutex::new(reader),
                me: lease::Me::discover(),
                lost_logs: Arc::new(AtomicU64::new(0)),
                stats,
                feed,
                routes,
            }),
        })
    }

    /// Tells the store a migration's alert rules (its runbook's `alerts`), which it would
    /// otherwise parse from the stored runbook text when it first routes one of its events.
    pub fn know_alerts(&self, id: &MigrationId, alerts: &crate::runbook::model::Alerts) {
        self.inner.routes.know(id, alerts);
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    pub(super) fn send(&self, job: Job) -> Result<(), StoreError> {
        let jobs = self.inner.jobs.as_ref().ok_or(StoreError::Closed)?;
        jobs.send(job).map_err(|_| StoreError::Closed)
    }

    /// Runs `work` in the next group commit and waits for the COMMIT.
    pub(super) fn call<T, E>(
        &self,
        work: impl FnOnce(&Connection, &Group) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel(1);
        self.send(Job::new(work, Reply::Blocking(tx)))?;
        rx.recv().map_err(|_| E::from(StoreError::Closed))?
    }

    /// The same without blocking: the future resolves after the COMMIT.
    pub(super) fn call_async<T, E>(
        &self,
        work: impl FnOnce(&Connection, &Group) -> Result<T, E> + Send + 'static,
    ) -> impl Future<Output = Result<T, E>> + Send + 'static
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let sent = self.send(Job::new(work, Reply::Async(tx)));
        async move {
            sent?;
            rx.await.map_err(|_| E::from(StoreError::Closed))?
        }
    }

    pub(super) fn reader(&self) -> MutexGuard<'_, Connection> {
        // A panic while reading leaves the connection usable: no transaction spans calls.
        self.inner
            .reader
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Creates a migration in `created`, with its `migration_created` event and a pending row
    /// per plan step, in one transaction.
    pub fn create_migration(&self, new: NewMigration) -> Result<Migration, StoreError> {
        self.call(move |conn, group| write::create_migration(conn, group, new))
    }

    /// Commits a batch and blocks until it is durable. Not for a tokio runtime thread: use
    /// [`Sqlite::commit_async`] there.
    pub fn commit(&self, id: &MigrationId, batch: Batch) -> Result<Committed, StoreError> {
        let id = id.clone();
        self.call(move |conn, group| write::apply_batch(conn, group, &id, batch))
    }

    /// Commits a batch; the future resolves once it is durable, without blocking the runtime.
    pub fn commit_async(
        &self,
        id: &MigrationId,
        batch: Batch,
    ) -> impl Future<Output = Result<Committed, StoreError>> + Send + 'static {
        let id = id.clone();
        self.call_async(move |conn, group| write::apply_batch(conn, group, &id, batch))
    }

    /// Queues a line of step output and returns at once. It is written with the next group
    /// commit, or within about 50 ms; lines keep their order. A line that cannot be written
    /// (an unknown migration, a failing disk) is counted in [`Sqlite::lost_log_lines`].
    pub fn log(&self, id: &MigrationId, line: NewLogLine, fence: Option<Arc<str>>) {
        let id = id.clone();
        let job = Job::detached(
            move |conn, _| write::insert_log(conn, &id, &line, fence.as_deref()),
            self.inner.lost_logs.clone(),
        );
        if self.send(job).is_err() {
            self.inner.lost_logs.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// How many log lines could not be written since this store was opened.
    pub fn lost_log_lines(&self) -> u64 {
        self.inner.lost_logs.load(Ordering::Relaxed)
    }

    /// Blocks until everything sent before, log lines included, is committed.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.call(|_, _| Ok::<_, StoreError>(()))
    }

    /// [`Sqlite::flush`] without blocking.
    pub fn flush_async(&self) -> impl Future<Output = Result<(), StoreError>> + Send + 'static {
        self.call_async(|_, _| Ok::<_, StoreError>(()))
    }

    pub fn migration(&self, id: &MigrationId) -> Result<Option<Migration>, StoreError> {
        read::migration(&self.reader(), id)
    }

    /// The migration whose id is `prefix_or_id`, or the only one whose id starts with it.
    pub fn resolve_id(&self, prefix_or_id: &str) -> Result<MigrationId, StoreError> {
        read::resolve_id(&self.reader(), prefix_or_id)
    }

    /// The most recently created migration.
    pub fn latest(&self) -> Result<Option<MigrationId>, StoreError> {
        read::latest(&self.reader())
    }

    /// Migrations, newest first; only those in `state` when given.
    pub fn list(&self, state: Option<MigrationState>) -> Result<Vec<MigrationHead>, StoreError> {
        read::list(&self.reader(), state)
    }

    /// How many migrations are in each state (for metrics).
    pub fn count_by_state(&self) -> Result<Vec<(MigrationState, u64)>, StoreError> {
        read::count_by_state(&self.reader())
    }

    /// Seconds finished steps took and closed gates waited (for metrics).
    pub fn durations(&self) -> Result<(Vec<f64>, Vec<f64>), StoreError> {
        read::durations(&self.reader())
    }

    /// Step rows in the order they were first written (the plan's order at creation).
    pub fn steps(&self, id: &MigrationId) -> Result<Vec<StepRow>, StoreError> {
        read::steps(&self.reader(), id)
    }

    /// Durations of the last `limit` successful runs of a step of a runbook, newest first.
    pub fn step_durations(
        &self,
        runbook: &str,
        step: &str,
        limit: u32,
    ) -> Result<Vec<chrono::Duration>, StoreError> {
        read::step_durations(&self.reader(), runbook, step, limit)
    }

    /// Events with a seq above `after_seq` (0 for all), in order.
    pub fn events(&self, id: &MigrationId, after_seq: i64) -> Result<Vec<Event>, StoreError> {
        read::events(&self.reader(), id, after_seq)
    }

    /// One event, by its seq.
    pub fn event(&self, id: &MigrationId, seq: i64) -> Result<Option<Event>, StoreError> {
        read::event(&self.reader(), id, seq)
    }

    /// Log lines of one step, or of all, in the order they were written.
    pub fn logs(&self, id: &MigrationId, step: Option<&str>) -> Result<Vec<LogLine>, StoreError> {
        read::logs(&self.reader(), id, step, 0)
    }

    /// The log lines written after seq `after` (of one step, or of all): what a follower
    /// has not read yet. Seqs grow in commit order across every writer.
    pub fn logs_after(
        &self,
        id: &MigrationId,
        step: Option<&str>,
        after: i64,
    ) -> Result<Vec<LogLine>, StoreError> {
        read::logs(&self.reader(), id, step, after)
    }

    /// Records a vote on an open gate, atomically with its `gate_decided` event; a rejection
    /// closes the gate, and so does the `required`-th approval. Who may vote is the caller's
    /// rule, not the store's.
    pub fn decide_gate(&self, id: &MigrationId, vote: GateVote) -> Result<GateOutcome, GateError> {
        let id = id.clone();
        self.call(move |conn, group| gate::decide(conn, group, &id, vote))
    }

    /// Closes an open gate with `status` (a timeout, a cancel) and appends `event`, atomically;
    /// false when the gate was no longer open, and then nothing is written. `Open` as the
    /// status changes nothing.
    pub fn close_gate(
        &self,
        id: &MigrationId,
        step: &str,
        status: GateStatus,
        event: NewEvent,
    ) -> Result<bool, StoreError> {
        let (id, step) = (id.clone(), step.to_owned());
        self.call(move |conn, group| gate::close(conn, group, &id, &step, status, event))
    }

    /// [`Sqlite::close_gate`] without blocking.
    pub fn close_gate_async(
        &self,
        id: &MigrationId,
        step: &str,
        status: GateStatus,
        event: NewEvent,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send + 'static {
        let (id, step) = (id.clone(), step.to_owned());
        self.call_async(move |conn, group| gate::close(conn, group, &id, &step, status, event))
    }

    /// A gate as it stands, if it was ever opened.
    pub fn gate(&self, id: &MigrationId, step: &str) -> Result<Option<GateInfo>, StoreError> {
        gate::info(&self.reader(), id, step)
    }

    /// Every vote on the migration's gates (the audit trail), in the order cast.
    pub fn gate_decisions(&self, id: &MigrationId) -> Result<Vec<GateDecision>, StoreError> {
        gate::decisions(&self.reader(), id)
    }

    /// Takes the migration's lease for `ttl`, unless a live process (this one included)
    /// holds it.
    pub fn acquire_lease(&self, id: &MigrationId, ttl: Duration) -> Result<Lease, LeaseError> {
        let (id, me) = (id.clone(), self.inner.me.clone());
        self.call(move |conn, group| lease::acquire(conn, group, &me, &id, ttl))
    }

    /// Extends a held lease to `ttl` from now; [`LeaseError::Lost`] if another process took it.
    pub fn renew_lease(&self, lease: &Lease, ttl: Duration) -> Result<(), LeaseError> {
        let lease = lease.clone();
        self.call(move |conn, group| lease::renew(conn, group, &lease, ttl))
    }

    /// [`Sqlite::renew_lease`] without blocking.
    pub fn renew_lease_async(
        &self,
        lease: &Lease,
        ttl: Duration,
    ) -> impl Future<Output = Result<(), LeaseError>> + Send + 'static {
        let lease = lease.clone();
        self.call_async(move |conn, group| lease::renew(conn, group, &lease, ttl))
    }

    /// Gives a lease up (nothing happens if another process took it meanwhile).
    pub fn release_lease(&self, lease: &Lease) -> Result<(), StoreError> {
        let lease = lease.clone();
        self.call(move |conn, _| lease::release(conn, &lease))
    }

    /// The live process driving the migration, if any.
    pub fn driver(&self, id: &MigrationId) -> Result<Option<LeaseHolder>, StoreError> {
        lease::driver(&self.reader(), &self.inner.me, id, schema::now())
    }

    /// Answers when the database can be read.
    pub fn ping(&self) -> Result<(), StoreError> {
        self.data_version().map(drop)
    }

    /// SQLite's `PRAGMA data_version` on the reader: it changes whenever another connection
    /// (this store's writer, or another process) commits. A cheap "anything new?" poll.
    pub fn data_version(&self) -> Result<i64, StoreError> {
        Ok(self
            .reader()
            .pragma_query_value(None, "data_version", |r| r.get(0))?)
    }

    /// The change feed: the counter moves after every commit, this store's or another
    /// process's (noticed within [`feed::POLL`]). Wait on it with `changed()`, then re-read;
    /// a move only says that something may have changed.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        let changes = self.inner.feed.subscribe();
        if self.inner.feed.claim_poller() {
            let since = self.data_version().ok();
            let started = feed::poll(
                Arc::downgrade(&self.inner),
                self.inner.feed.clone(),
                since,
                |inner: &Inner| {
                    let reader = inner.reader.lock().unwrap_or_else(|p| p.into_inner());
                    reader
                        .pragma_query_value(None, "data_version", |r| r.get(0))
                        .ok()
                },
            );
            if let Err(e) = started {
                tracing::warn!("cannot watch for other processes' commits: {e}");
            }
        }
        changes
    }

    /// Transactions and jobs the writer committed so far: jobs / transactions is the average
    /// group size.
    pub fn write_stats(&self) -> (u64, u64) {
        (
            self.inner.stats.transactions.load(Ordering::Relaxed),
            self.inner.stats.jobs.load(Ordering::Relaxed),
        )
    }

    /// This host's name, as leases and process records name it.
    pub fn host(&self) -> &str {
        &self.inner.me.host
    }

    /// Takes up to `limit` alert deliveries that are due at `now` and that no other sender
    /// holds, and holds them until `until` (a sender that dies lets its claim lapse). Emails
    /// only `with_email`: a sender without a mail server leaves them to one that has one.
    pub fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u32,
        with_email: bool,
    ) -> Result<Vec<Delivery>, StoreError> {
        self.call(move |conn, _| outbox::claim(conn, now, until, limit, with_email))
    }

    /// [`Sqlite::claim_deliveries`] without blocking.
    pub fn claim_deliveries_async(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u32,
        with_email: bool,
    ) -> impl Future<Output = Result<Vec<Delivery>, StoreError>> + Send + 'static {
        self.call_async(move |conn, _| outbox::claim(conn, now, until, limit, with_email))
    }

    /// Records an attempt to send a delivery; false when the delivery was no longer pending.
    pub fn record_attempt(&self, record: AttemptRecord) -> Result<bool, StoreError> {
        self.call(move |conn, group| outbox::record(conn, group, &record))
    }

    /// [`Sqlite::record_attempt`] without blocking.
    pub fn record_attempt_async(
        &self,
        record: AttemptRecord,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send + 'static {
        self.call_async(move |conn, group| outbox::record(conn, group, &record))
    }

    /// Alert deliveries per (kind, state), for metrics.
    pub fn delivery_counts(&self) -> Result<Vec<(String, String, i64)>, StoreError> {
        outbox::counts(&self.reader())
    }

    /// Alert deliveries of one migration, or of all, oldest first.
    pub fn deliveries(&self, id: Option<&MigrationId>) -> Result<Vec<Delivery>, StoreError> {
        outbox::list(&self.reader(), id)
    }

    /// Pending deliveries (of one migration, or of all; emails only `with_email`): how many,
    /// and when the first is due.
    pub fn pending_deliveries(
        &self,
        id: Option<&MigrationId>,
        with_email: bool,
    ) -> Result<(u64, Option<DateTime<Utc>>), StoreError> {
        outbox::pending(&self.reader(), id, with_email)
    }

    /// Every attempt to send a delivery, in order.
    pub fn delivery_attempts(&self, delivery: i64) -> Result<Vec<DeliveryAttempt>, StoreError> {
        outbox::attempts(&self.reader(), delivery)
    }
}
