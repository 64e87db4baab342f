//! The group-commit writer: one thread owns the write connection. Callers send jobs over a
//! channel; the thread takes the first, drains whatever else is queued (up to [`MAX_GROUP`]),
//! runs them all in ONE transaction with a SAVEPOINT per job (so a refused job leaves the
//! others alone), commits once (one fsync), and only then answers every caller.
//!
//! Log lines ride along; when only log lines are queued, the thread waits up to
//! [`LOG_LINGER`] for more, so streaming output costs a few fsyncs a second, not one a line.
//! After each COMMIT it bumps the change feed (`feed`). The thread ends when every sender is gone and the queue is drained.

use super::StoreError;
use super::feed::Feed;
use super::route::Routes;
use super::schema;
use chrono::{DateTime, Utc};
use rusqlite::Connection;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::time::{Duration, Instant};

/// The most jobs one transaction takes.
pub const MAX_GROUP: usize = 512;

/// How long log lines alone wait for company before they are committed.
pub const LOG_LINGER: Duration = Duration::from_millis(50);

/// What every job of one transaction shares.
#[derive(Debug)]
pub struct Group<'w> {
    /// The transaction's time: every event of the group carries it.
    pub now: DateTime<Utc>,
    /// The writer's alert routing, which every appended event goes through.
    pub routes: &'w Routes,
}

/// Where an answer goes: a blocked thread or an awaiting future.
#[derive(Debug)]
pub enum Reply<T> {
    Blocking(SyncSender<T>),
    Async(tokio::sync::oneshot::Sender<T>),
}

impl<T> Reply<T> {
    fn send(self, value: T) {
        // A caller that stopped waiting (a dropped future) no longer cares: nothing to do.
        match self {
            Reply::Blocking(tx) => {
                let _ = tx.send(value);
            }
            Reply::Async(tx) => {
                let _ = tx.send(value);
            }
        }
    }
}

/// Runs inside the job's savepoint (or is told why it cannot run); says whether to keep its
/// writes, and how to answer once the transaction's fate is known.
type Run = Box<dyn FnOnce(Result<(&Connection, &Group), &StoreError>) -> (bool, Finish) + Send>;
/// Answers the caller, given the outcome of the COMMIT.
type Finish = Box<dyn FnOnce(Result<(), &StoreError>) + Send>;

/// One unit of work for the writer.
pub struct Job {
    run: Run,
    /// Someone waits for the answer (everything but log lines).
    waited_for: bool,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("waited_for", &self.waited_for)
            .finish_non_exhaustive()
    }
}

impl Job {
    /// A job whose result goes back to a caller; its writes are kept only if `work` succeeds,
    /// and a failed COMMIT turns its success into that failure.
    pub fn new<T, E>(
        work: impl FnOnce(&Connection, &Group) -> Result<T, E> + Send + 'static,
        reply: Reply<Result<T, E>>,
    ) -> Job
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let run: Run = Box::new(move |ready| {
            let result = match ready {
                Ok((conn, group)) => work(conn, group),
                Err(e) => Err(E::from(e.clone())),
            };
            let keep = result.is_ok();
            let finish: Finish = Box::new(move |committed| {
                let answer = match (committed, result) {
                    (Err(e), Ok(_)) => Err(E::from(e.clone())),
                    (_, r) => r,
                };
                reply.send(answer);
            });
            (keep, finish)
        });
        Job {
            run,
            waited_for: true,
        }
    }

    /// A fire-and-forget job (a log line); a failure only counts in `lost`.
    pub fn detached(
        work: impl FnOnce(&Connection, &Group) -> Result<(), StoreError> + Send + 'static,
        lost: Arc<AtomicU64>,
    ) -> Job {
        let run: Run = Box::new(move |ready| {
            let keep = match ready {
                Ok((conn, group)) => work(conn, group).is_ok(),
                Err(_) => false,
            };
            let finish: Finish = Box::new(move |committed| {
                if !keep || committed.is_err() {
                    lost.fetch_add(1, Ordering::Relaxed);
                }
            });
            (keep, finish)
        });
        Job {
            run,
            waited_for: false,
        }
    }
}

/// Counts of the writer's work, for benchmarks and metrics.
#[derive(Debug, Default)]
pub struct Stats {
    pub transactions: AtomicU64,
    pub jobs: AtomicU64,
}

/// The writer thread's loop; returns when every sender is gone and the queue is empty.
pub fn run(
    conn: Connection,
    rx: Receiver<Job>,
    stats: Arc<Stats>,
    feed: Arc<Feed>,
    routes: Arc<Routes>,
) {
    let mut last = DateTime::<Utc>::MIN_UTC;
    while let Ok(first) = rx.recv() {
        let group = gather(first, &rx);
        stats.transactions.fetch_add(1, Ordering::Relaxed);
        stats.jobs.fetch_add(group.len() as u64, Ordering::Relaxed);
        commit_group(&conn, group, &mut last, &feed, &routes);
    }
}

/// The first job and whatever else is queued; log lines alone linger for company.
fn gather(first: Job, rx: &Receiver<Job>) -> Vec<Job> {
    let mut jobs = vec![first];
    drain(&mut jobs, rx);
    if jobs.iter().any(|j| j.waited_for) {
        return jobs;
    }
    let deadline = Instant::now() + LOG_LINGER;
    while jobs.len() < MAX_GROUP {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(job) => {
                let waited_for = job.waited_for;
                jobs.push(job);
                if waited_for {
                    drain(&mut jobs, rx);
                    break;
                }
            }
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
        }
    }
    jobs
}

fn drain(jobs: &mut Vec<Job>, rx: &Receiver<Job>) {
    while jobs.len() < MAX_GROUP {
        match rx.try_recv() {
            Ok(job) => jobs.push(job),
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
        }
    }
}

/// Runs a group in one transaction and answers every job. Plain SQL rather than rusqlite's
/// transaction types, because a job that fails must be rolled back to its savepoint while
/// the rest of the group goes on.
fn commit_group(
    conn: &Connection,
    jobs: Vec<Job>,
    last: &mut DateTime<Utc>,
    feed: &Feed,
    routes: &Routes,
) {
    let mut finishes = Vec::with_capacity(jobs.len());
    let mut failure: Option<StoreError> =
        conn.execute_batch("BEGIN IMMEDIATE").err().map(Into::into);
    // Taken once the write lock is ours, so it is as close to the commit as it can be; never
    // before the previous group's, so that event times follow seqs even if the clock steps back.
    *last = schema::now().max(*last);
    let group = Group { now: *last, routes };
    for job in jobs {
        if failure.is_none() {
            failure = conn.execute_batch("SAVEPOINT job").err().map(Into::into);
        }
        if let Some(e) = &failure {
            finishes.push((job.run)(Err(e)).1);
            continue;
        }
        let (keep, finish) = (job.run)(Ok((conn, &group)));
        finishes.push(finish);
        let end = if keep {
            "RELEASE job"
        } else {
            "ROLLBACK TO job; RELEASE job"
        };
        failure = conn.execute_batch(end).err().map(Into::into);
        if failure.is_none() && conn.is_autocommit() {
            // SQLite ends the transaction itself after some errors (a full disk, an I/O
            // error); what follows must not run outside a transaction.
            failure = Some(StoreError::Database(
                "SQLite aborted the transaction after an error".to_owned(),
            ));
        }
    }
    if failure.is_none() {
        failure = conn.execute_batch("COMMIT").err().map(Into::into);
    }
    if failure.is_some() && !conn.is_autocommit() {
        // Nothing more to do if even this fails: the answers below carry the first error.
        let _ = conn.execute_batch("ROLLBACK");
    }
    if failure.is_none() {
        // Before the answers: a caller that saw its write also sees the feed move.
        feed.bump();
    }
    for finish in finishes {
        finish(failure.as_ref().map_or(Ok(()), Err));
    }
}
