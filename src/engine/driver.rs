//! The driver: one process walking one migration. It owns the migration's lease and moves in
//! rounds: it brings the core its inputs (an attempt that ended, the clock, what other
//! processes committed), commits the batch the core built, and only then carries out the
//! core's effects (spawn processes, kill them, notify the observer). A crash between two
//! rounds loses nothing that had an effect. Every decision is the core's (`core`); the
//! driver is its I/O: the store, the processes, the network and the clock.
//!
//! Running attempts send their live reports (`progress=`, `checkpoint=`) on a channel the
//! driver reads beside their outcomes; it gives the core every report sent before an outcome
//! first, and every report waiting before it commits (so checkpoints that arrived together
//! share one commit). `recovery` reads what a previous driver left when one attaches.

use super::actions::{self, Attempt, Outcome, Report, Reports};
use super::core::{Core, Effect, Slot, Start, Work};
use super::{EngineError, Observer, Options};
use crate::event::{Event, EventKind, MigrationId, MigrationState, NewEvent, OperatorRequest};
use crate::store::{GateStatus, Lease, Store, StoreError};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

mod recovery;

/// The driver of one migration.
pub struct Driver {
    pub(super) store: Store,
    pub(super) core: Core,
    pub(super) opts: Options,
    pub(super) lease: Lease,
    pub(super) http: reqwest::Client,
    /// Each task hands its slot back with its outcome: the slot is given back once the core
    /// has taken the outcome in, so nothing else starts on it before the end is recorded.
    pub(super) tasks: JoinSet<(usize, Work, Outcome, Slot)>,
    /// The node each task runs (a task that panicked says only its id).
    pub(super) task_nodes: HashMap<tokio::task::Id, usize>,
    pub(super) cancels: HashMap<usize, watch::Sender<bool>>,
    pub(super) observer: Box<dyn Observer>,
    /// Events of other processes (requests, gate decisions) already handled.
    pub(super) seen_seq: i64,
    /// The store's change feed: moves when anything was committed, here or elsewhere.
    pub(super) changes: watch::Receiver<u64>,
    /// Fault injection for crash tests: abort the process right after this many commits,
    /// as abruptly as `kill -9` (`SENSEI_TEST_CRASH_AFTER_COMMITS`).
    pub(super) crash_after: Option<u64>,
    pub(super) commits: u64,
    /// Live reports of running attempts (`progress=`, `checkpoint=`), for the core; attempts
    /// get a sender.
    pub(super) reports: (
        mpsc::UnboundedSender<Report>,
        mpsc::UnboundedReceiver<Report>,
    ),
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("migration", &self.core.migration.id)
            .field("state", &self.core.state)
            .finish_non_exhaustive()
    }
}

impl Driver {
    /// Drives the migration until it rests: certified, failed, cancelled or paused (or it
    /// waits for an operator after an interruption). Returns the final state.
    pub async fn drive(mut self) -> Result<MigrationState, EngineError> {
        let keeper =
            super::keeper::LeaseKeeper::start(&self.store, &self.lease, self.opts.lease_ttl);
        let result = self.drive_loop(keeper.lost()).await;
        keeper.stop();
        // Whatever happened, let in-flight processes go and give up the lease.
        self.kill_in_flight();
        while self.tasks.join_next().await.is_some() {}
        let store = self.store.clone();
        let lease = self.lease.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let _ = store.flush();
            store.release_lease(&lease)
        })
        .await;
        result
    }

    async fn drive_loop(
        &mut self,
        mut lost: watch::Receiver<Option<crate::store::LeaseError>>,
    ) -> Result<MigrationState, EngineError> {
        let mut poll = tokio::time::interval(self.opts.poll);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut draining = false;
        loop {
            let now = self.now();
            self.core.at(now).advance()?;
            self.commit().await?;
            if self.core.at_rest() {
                return Ok(self.core.state);
            }
            let wake = self
                .core
                .next_wake()
                .map(|at| self.opts.clock.sleep_until(at));
            let stop = self.opts.stop.clone().filter(|_| !draining);
            tokio::select! {
                () = stopped(stop) => {
                    draining = true;
                    self.core.drain();
                }
                Some(joined) = self.tasks.join_next(), if !self.tasks.is_empty() => {
                    self.joined(joined);
                    while let Some(joined) = self.tasks.try_join_next() {
                        self.joined(joined);
                    }
                }
                Some(report) = self.reports.1.recv() => {
                    self.report(report);
                    self.take_reports();
                }
                () = sleep_until(wake) => {
                    let now = self.now();
                    self.core.at(now).due_retries();
                    self.core.at(now).live_due();
                    self.gate_deadlines().await?;
                    let now = self.now();
                    self.core.at(now).window_deadlines()?;
                }
                Ok(()) = self.changes.changed() => {
                    self.read_outside().await?;
                }
                _ = poll.tick() => {
                    self.outside().await?;
                    self.gate_deadlines().await?;
                    let now = self.now();
                    self.core.at(now).window_deadlines()?;
                }
                Ok(()) = lost.changed() => {
                    if let Some(e) = lost.borrow_and_update().clone() {
                        return Err(e.into());
                    }
                }
            }
        }
    }

    fn now(&self) -> DateTime<Utc> {
        self.opts.clock.now()
    }

    /// Gives a live report to the core.
    fn report(&mut self, report: Report) {
        let now = self.now();
        self.core
            .at(now)
            .reported(report.node, report.attempt, report.report);
    }

    /// Gives the core every live report sent so far: before an attempt's outcome, so that
    /// its last report is taken in while it still runs.
    fn take_reports(&mut self) {
        while let Ok(report) = self.reports.1.try_recv() {
            self.report(report);
        }
    }

    fn joined(&mut self, joined: Result<(usize, Work, Outcome, Slot), tokio::task::JoinError>) {
        self.take_reports();
        let now = self.now();
        match joined {
            Ok((node, work, outcome, slot)) => {
                self.cancels.remove(&node);
                self.task_nodes.retain(|_, n| *n != node);
                match work {
                    Work::Attempt => self.core.at(now).finished(node, outcome),
                    Work::Undo => self.core.at(now).undone(node, outcome),
                }
                drop(slot);
            }
            Err(e) => {
                let node = self.task_nodes.remove(&e.id());
                if let Some(node) = node {
                    self.cancels.remove(&node);
                }
                self.core.at(now).task_panicked(node, e.to_string());
            }
        }
    }

    /// Commits the batch the core built, then carries out its effects: spawns the attempts
    /// it started, kills what it stopped, and tells the observer what happened. Gates the
    /// core closed are closed in the store first, as decisions of their own.
    async fn commit(&mut self) -> Result<(), EngineError> {
        self.close_gates().await?;
        if let Some(mut batch) = self.core.take_batch() {
            // The store routes the batch's alerts into the outbox in its transaction (SPEC
            // §4); sending them is the alert worker's job, never the driver's.
            batch.fence = Some(self.lease.clone());
            let events = batch.events.clone();
            let id = self.core.migration.id.clone();
            let committed = self.store.commit_async(&id, batch).await?;
            self.core.committed();
            self.commits += 1;
            if self.crash_after == Some(self.commits) {
                std::process::abort();
            }
            for (event, seq) in events.into_iter().zip(committed.seqs) {
                self.observer.event(&Event {
                    seq,
                    migration: id.clone(),
                    at: committed.at,
                    kind: event.kind,
                    step: event.step,
                    data: event.data,
                });
            }
        }
        for effect in self.core.take_effects() {
            match effect {
                Effect::Start(start) => self.spawn_attempt(start),
                Effect::KillInFlight => self.kill_in_flight(),
                // Closed before the batch; none is left by now.
                Effect::CloseGate { .. } => {}
            }
        }
        Ok(())
    }

    /// Kills what the core asked to kill before anything else happens (a cancel must not
    /// wait for the commit to stop a step), and closes in the store the gates it closed.
    async fn close_gates(&mut self) -> Result<(), EngineError> {
        for effect in self.core.take_gate_closes() {
            let Effect::CloseGate {
                step,
                status,
                event,
            } = effect
            else {
                continue;
            };
            self.close_gate(step, status, event).await?;
        }
        Ok(())
    }

    /// Closes a gate in the store with its decision; false when a decision closed it first.
    fn close_gate(
        &self,
        step: String,
        status: GateStatus,
        event: NewEvent,
    ) -> impl Future<Output = Result<bool, EngineError>> + Send + use<> {
        let m = self.core.migration.id.clone();
        blocking(self.store.clone(), move |s| {
            s.close_gate(&m, &step, status, event)
        })
    }

    /// Starts a committed attempt as a task that holds its slot until it ends.
    fn spawn_attempt(&mut self, start: Start) {
        let Start {
            node,
            work,
            action,
            slot,
            step,
            attempt,
            timeout,
            transient_codes,
        } = start;
        let (tx, rx) = tokio::sync::watch::channel(false);
        self.cancels.insert(node, tx);
        let attempt = Attempt {
            migration: self.core.migration.id.clone(),
            step,
            attempt,
            dir: self.opts.dir.clone(),
            timeout,
            transient_codes,
            store: self.store.clone(),
            masker: self.core.masker(),
            reaper: self.opts.reaper.clone(),
            http: self.http.clone(),
            clock: self.opts.clock.clone(),
            reports: (work == Work::Attempt).then(|| Reports {
                tx: self.reports.0.clone(),
                node,
            }),
        };
        let handle = self.tasks.spawn(async move {
            let outcome = actions::perform(action, attempt, rx).await;
            (node, work, outcome, slot)
        });
        self.task_nodes.insert(handle.id(), node);
    }

    /// Cancels every running attempt (their process groups are killed).
    fn kill_in_flight(&mut self) {
        for cancel in self.cancels.values() {
            let _ = cancel.send(true);
        }
    }

    /// Reads and handles what other processes committed, if the change feed moved since the
    /// last look.
    async fn outside(&mut self) -> Result<(), EngineError> {
        if !self.changes.has_changed().unwrap_or(true) {
            return Ok(());
        }
        self.changes.borrow_and_update();
        self.read_outside().await
    }

    /// Reads and handles the events of other processes not seen yet.
    async fn read_outside(&mut self) -> Result<(), EngineError> {
        let events = self
            .store
            .events_async(&self.core.migration.id, self.seen_seq)
            .await?;
        for event in events {
            self.seen_seq = self.seen_seq.max(event.seq);
            match event.kind {
                EventKind::OperatorRequest => {
                    self.observer.event(&event);
                    if let Some(request) = event.read::<OperatorRequest>() {
                        let now = self.now();
                        self.core.at(now).request(request)?;
                        self.carry_out_kills();
                        self.close_gates().await?;
                    }
                }
                EventKind::GateDecided => {
                    self.observer.event(&event);
                    if let Some(node) = event
                        .step
                        .as_deref()
                        .and_then(|s| self.core.open_gate_of(s))
                    {
                        self.gate_changed(node)?;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Kills at once what the core stopped (a cancel or rollback request).
    fn carry_out_kills(&mut self) {
        let effects = self.core.take_effects();
        let mut rest = Vec::new();
        for effect in effects {
            match effect {
                Effect::KillInFlight => self.kill_in_flight(),
                other => rest.push(other),
            }
        }
        self.core.give_back_effects(rest);
    }

    /// A decision was recorded on an open gate: apply it if the gate is now closed.
    fn gate_changed(&mut self, node: usize) -> Result<(), EngineError> {
        let step = self.core.graph.nodes[node].id.clone();
        let Some(gate) = self.store.gate(&self.core.migration.id, &step)? else {
            return Ok(());
        };
        let decisions = self.decisions_for(gate.status);
        let now = self.now();
        self.core.at(now).gate_closed(node, gate.status, &decisions);
        Ok(())
    }

    /// The migration's gate votes, read when a gate was rejected (its reason names who).
    fn decisions_for(&self, status: GateStatus) -> Vec<crate::store::GateDecision> {
        if status != GateStatus::Rejected {
            return Vec::new();
        }
        self.store
            .gate_decisions(&self.core.migration.id)
            .unwrap_or_default()
    }

    /// Gate reminders that are due, then gates whose deadline passed: close them atomically
    /// (a human decision that won the race stands), then apply `on_timeout`.
    async fn gate_deadlines(&mut self) -> Result<(), EngineError> {
        let now = self.now();
        for node in self.core.at(now).gate_reminders_due() {
            let step = self.core.graph.nodes[node].id.clone();
            // An open gate has a row: the driver opened it.
            if let Some(gate) = self.store.gate(&self.core.migration.id, &step)? {
                self.core.remind(node, gate);
            }
        }
        for node in self.core.gates_past_deadline() {
            let Some(due) = self.core.gate_timeout(node) else {
                continue;
            };
            let won = self.close_gate(due.step, due.status, due.event).await?;
            if won && due.cancels {
                let now = self.now();
                self.core.at(now).gate_timeout_cancels(due.node);
                self.close_gates().await?;
            }
            // The decision that closed the gate — the timeout's, or a human's that got there
            // first — is now a committed event like any decision of another process: show it
            // and apply it the same way (the gate is closed at most once either way).
            self.outside().await?;
            if self.core.gate_is_open(node) {
                self.gate_changed(node)?;
            }
        }
        Ok(())
    }

    /// The first step waiting for an operator after an interruption.
    pub fn interrupted(&self) -> Option<&str> {
        self.core.interrupted()
    }

    pub fn id(&self) -> &MigrationId {
        &self.core.migration.id
    }

    pub fn state(&self) -> MigrationState {
        self.core.state
    }
}

/// Runs a blocking store call off the async runtime's threads.
async fn blocking<T: Send + 'static>(
    store: Store,
    call: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, EngineError> {
    tokio::task::spawn_blocking(move || call(&store))
        .await
        .map_err(|e| EngineError::Internal(e.to_string()))?
        .map_err(EngineError::from)
}

/// Resolves when a stop is asked for (never without a receiver, or once its sender is gone).
async fn stopped(stop: Option<tokio::sync::watch::Receiver<bool>>) {
    match stop {
        Some(mut rx) => {
            if rx.wait_for(|&s| s).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending().await,
    }
}

async fn sleep_until(sleep: Option<super::clock::Sleep>) {
    match sleep {
        Some(sleep) => sleep.await,
        None => std::future::pending().await,
    }
}
