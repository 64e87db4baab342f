//! The driver: one process walking one migration. It owns the migration's lease, keeps the
//! run-time graph, and moves in rounds: decide what changes (state transitions, steps that
//! start or finish), commit it as one batch, and only then act on it (spawn processes,
//! notify the observer). A crash between two rounds loses nothing that had an effect.

use super::actions::Outcome;
use super::context::Context;
use super::graph::Graph;
use super::launch::{Spawn, Work};
use super::lifecycle::{self, phase_of_state, state_after_phase};
use super::slots::Slots;
use super::{EngineError, Observer, Options};
use crate::event::{Event, MigrationState, NewEvent, StepState};
use crate::event::{EventData, StateChanged, StepFailed, StepSucceeded};
use crate::process::StepEnv;
use crate::runbook::model::{OnFailure, Phase, Runbook};
use crate::runbook::render::{Masker, Renderer};
use crate::store::{Batch, Lease, Migration, Store};
use chrono::{DateTime, Utc};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Why the driver stopped starting new steps, and what it does once in-flight ones end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stop {
    Fail,
    Pause,
    Rollback,
    Cancel,
    /// `cancel --rollback`: roll back what succeeded, then cancel.
    CancelRollback,
}

/// The driver of one migration.
pub struct Driver {
    pub(super) store: Store,
    pub(super) migration: Migration,
    pub(super) runbook: Arc<Runbook>,
    pub(super) graph: Graph,
    pub(super) state: MigrationState,
    /// The state as last committed: the next batch's expectation.
    pub(super) committed: MigrationState,
    pub(super) ctx: Context,
    pub(super) renderer: Arc<Renderer>,
    pub(super) masker: Arc<Masker>,
    /// The environment of the migration's step processes, with the runbook's `env`
    /// rendered once.
    pub(super) env: StepEnv,
    pub(super) opts: Options,
    pub(super) lease: Lease,
    pub(super) http: reqwest::Client,
    pub(super) tasks: JoinSet<(usize, Work, Outcome)>,
    pub(super) cancels: HashMap<usize, watch::Sender<bool>>,
    /// Steps waiting out a retry backoff, with when they may start again.
    pub(super) retries: Vec<(DateTime<Utc>, usize)>,
    /// Steps whose backoff has passed: their next attempt starts when admitted.
    pub(super) retry_due: BTreeSet<usize>,
    /// Steps waiting for their window, with when to look again.
    pub(super) window_waiting: HashMap<usize, DateTime<Utc>>,
    /// Window occurrences bound steps started in: their cutoff and close matter.
    pub(super) windows_in_use: HashMap<String, super::window::InUse>,
    /// Paused by a window's close: resume at this time (its next opening).
    pub(super) window_pause: Option<DateTime<Utc>>,
    /// Concurrency and pool slots: every running attempt holds one.
    pub(super) slots: Slots,
    /// Nodes waiting for a pool slot (of this or another migration's steps).
    pub(super) pool_waiting: HashSet<usize>,
    pub(super) stop: Option<Stop>,
    /// A rollback under way: what is left to undo.
    pub(super) undo: Option<super::rollback::Undo>,
    /// Gates waiting for decisions, with their deadlines.
    pub(super) gates: HashMap<usize, Option<DateTime<Utc>>>,
    /// When to remind that a gate times out soon (`gate_timeout_soon`), until sent.
    pub(super) gate_reminders: HashMap<usize, DateTime<Utc>>,
    pub(super) placeholders: Vec<usize>,
    pub(super) batch: Batch,
    pub(super) spawn: Vec<Spawn>,
    pub(super) observer: Box<dyn Observer>,
    /// Events of other processes (requests, gate decisions) already handled.
    pub(super) seen_seq: i64,
    pub(super) data_version: i64,
    /// The operator (or `timeout`) whose request the next state change answers.
    pub(super) actor: Option<String>,
    /// Fault injection for crash tests: abort the process right after this many commits,
    /// as abruptly as `kill -9` (`SENSEI_TEST_CRASH_AFTER_COMMITS`).
    pub(super) crash_after: Option<u64>,
    pub(super) commits: u64,
    /// Stopping on request (`Options::stop`): let running steps finish, start nothing.
    pub(super) draining: bool,
    /// The failure that stopped the run, in words (`step copy failed: ...`): the reason of
    /// the state it leads to.
    pub(super) failure: Option<String>,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("migration", &self.migration.id)
            .field("state", &self.state)
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
        for cancel in self.cancels.values() {
            let _ = cancel.send(true);
        }
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
        loop {
            self.advance().await?;
            self.commit().await?;
            if self.at_rest() {
                return Ok(self.state);
            }
            let wake = self.next_wake().map(|at| self.clock().sleep_until(at));
            let stop = self.opts.stop.clone().filter(|_| !self.draining);
            tokio::select! {
                () = stopped(stop) => {
                    self.draining = true;
                    self.retries.clear();
                    self.retry_due.clear();
                }
                Some(joined) = self.tasks.join_next(), if !self.tasks.is_empty() => {
                    self.joined(joined);
                    while let Some(joined) = self.tasks.try_join_next() {
                        self.joined(joined);
                    }
                }
                () = sleep_until(wake) => {
                    self.due_retries();
                    self.gate_deadlines().await?;
                    self.window_deadlines()?;
                }
                _ = poll.tick() => {
                    self.outside().await?;
                    self.gate_deadlines().await?;
                    self.window_deadlines()?;
                }
                Ok(()) = lost.changed() => {
                    if let Some(e) = lost.borrow_and_update().clone() {
                        return Err(e.into());
                    }
                }
            }
        }
    }

    fn joined(&mut self, joined: Result<(usize, Work, Outcome), tokio::task::JoinError>) {
        match joined {
            Ok((node, Work::Attempt, outcome)) => self.finished(node, outcome),
            Ok((node, Work::Undo, outcome)) => self.undone(node, outcome),
            // A step task panicked: a bug in Sensei, not the step. Fail the migration
            // visibly rather than hang (its slot went back with the task).
            Err(e) => {
                self.stop = Some(Stop::Fail);
                self.emit(NewEvent::of(StepFailed {
                    error: Some(format!("internal error in a step task: {e}")),
                    ..StepFailed::default()
                }));
            }
        }
    }

    /// Resting: nothing in flight and nothing more to do without an operator.
    fn at_rest(&self) -> bool {
        if self.draining {
            return self.tasks.is_empty();
        }
        self.tasks.is_empty()
            && self.retries.is_empty()
            && self.retry_due.is_empty()
            && self.undo.is_none()
            && self.window_pause.is_none()
            && (self.state.is_at_rest() || (self.stop.is_none() && self.stalled()))
    }

    /// Steps remain but none can start (an interrupted step waits for an operator).
    fn stalled(&self) -> bool {
        phase_of_state(self.state).is_some_and(|p| {
            self.graph.phase_stuck(p)
                && self
                    .graph
                    .of_phase(p)
                    .any(|i| self.graph.nodes[i].row.state == StepState::Interrupted)
        })
    }

    /// Decides what changes next: phase transitions, steps to start, what a stop leads to.
    async fn advance(&mut self) -> Result<(), EngineError> {
        if self.draining {
            return Ok(()); // finishing what runs; the next driver takes it from here
        }
        self.settle_placeholders();
        if self.undo.is_some() {
            return self.undo_next().await;
        }
        if let Some(stop) = self.stop {
            if self.tasks.is_empty() {
                self.conclude(stop).await?;
            }
            return Ok(());
        }
        loop {
            match self.state {
                MigrationState::Approved => {
                    if !self.execute_can_start() {
                        return Ok(()); // only window-bound steps remain, and their window is closed
                    }
                    self.set_state(MigrationState::Running, "execute phase starts")?;
                    continue;
                }
                MigrationState::Completed => {
                    self.set_state(MigrationState::Validating, "validate phase starts")?;
                    continue;
                }
                _ => {}
            }
            let Some(phase) = phase_of_state(self.state) else {
                return Ok(());
            };
            if self.state == MigrationState::Paused {
                return Ok(());
            }
            if self.graph.phase_done(phase) {
                let reason = self.phase_reason(phase);
                self.set_state(state_after_phase(phase), &reason)?;
                continue;
            }
            self.launch_ready(phase)?;
            self.settle_placeholders();
            if self.graph.phase_done(phase) {
                continue;
            }
            // A failure committed just before a crash: apply the failure policy now.
            if self.stop.is_none()
                && self.tasks.is_empty()
                && self.spawn.is_empty()
                && self.graph.phase_stuck(phase)
            {
                let failed = self
                    .graph
                    .of_phase(phase)
                    .find(|&i| self.graph.nodes[i].row.state == StepState::Failed);
                if let Some(node) = failed {
                    self.failed_for_good(node);
                }
            }
            return Ok(());
        }
    }

    fn phase_reason(&self, phase: Phase) -> String {
        let count = self.graph.of_phase(phase).count();
        match (phase, count) {
            (Phase::Approve, 0) => "no gates".to_owned(),
            (Phase::Approve, _) => "every gate approved".to_owned(),
            (_, 0) => format!("no {} steps", phase.as_str()),
            _ => format!("every {} step finished", phase.as_str()),
        }
    }

    /// A dynamic fan-out's placeholder finishes with its expansions.
    fn settle_placeholders(&mut self) {
        self.settle_placeholders_when(false);
    }

    /// The run stopped on a failure: a fan-out whose parts will not all run now fails if one
    /// of them did, and waits no more otherwise (a retry runs what is left).
    pub(super) fn settle_placeholders_at_rest(&mut self) {
        self.settle_placeholders_when(true);
        for k in 0..self.placeholders.len() {
            let p = self.placeholders[k];
            if self.graph.nodes[p].row.state == StepState::Waiting {
                self.update(p, |row| {
                    row.state = StepState::Pending;
                    row.reason = None;
                });
            }
        }
    }

    /// Settles the placeholders whose parts all settled, or (`at_rest`) of which one failed.
    fn settle_placeholders_when(&mut self, at_rest: bool) {
        for k in 0..self.placeholders.len() {
            let p = self.placeholders[k];
            if self.graph.nodes[p].row.state != StepState::Waiting {
                continue;
            }
            let expansions = &self.graph.nodes[p].expansions;
            let state_of = |e: &usize| self.graph.nodes[*e].row.state;
            let all_settled = expansions.iter().all(|e| state_of(e).is_settled());
            let one_failed = expansions.iter().any(|e| state_of(e) == StepState::Failed);
            if !(all_settled || (at_rest && one_failed)) {
                continue;
            }
            let ok = expansions
                .iter()
                .all(|&e| self.graph.nodes[e].row.state.lets_dependents_run());
            let to = if ok {
                StepState::Succeeded
            } else {
                StepState::Failed
            };
            let now = self.clock().now();
            let error = (!ok).then(|| self.failed_parts(p));
            self.update(p, |row| {
                row.state = to;
                row.finished_at = Some(now);
                row.reason = None;
                row.error = error.clone();
            });
            let expansions = Some(self.graph.nodes[p].expansions.len());
            let data: EventData = if ok {
                StepSucceeded {
                    expansions,
                    ..StepSucceeded::default()
                }
                .into()
            } else {
                StepFailed {
                    expansions,
                    error,
                    ..StepFailed::default()
                }
                .into()
            };
            let id = self.graph.nodes[p].id.clone();
            self.emit(NewEvent::step(&id, data));
        }
    }

    /// Which parts of a fan-out did not succeed, and why: `1 of 3 parts failed: copy[b]
    /// (exited with code 3)`. Each part's own failure was reported (and alerted) already.
    fn failed_parts(&self, placeholder: usize) -> String {
        const NAMED: usize = 5;
        let parts = &self.graph.nodes[placeholder].expansions;
        let failed: Vec<String> = parts
            .iter()
            .map(|&e| &self.graph.nodes[e])
            .filter(|n| n.row.state.is_settled() && !n.row.state.lets_dependents_run())
            .map(|n| match &n.row.error {
                Some(error) => format!("{} ({error})", n.id),
                None => format!("{} ({})", n.id, n.row.state),
            })
            .collect();
        let mut named = failed[..failed.len().min(NAMED)].join(", ");
        if failed.len() > NAMED {
            named.push_str(&format!(" and {} more", failed.len() - NAMED));
        }
        format!("{} of {} parts failed: {named}", failed.len(), parts.len())
    }

    /// Moves the migration to another state (checked by the lifecycle) and records why.
    pub(super) fn set_state(
        &mut self,
        to: MigrationState,
        reason: &str,
    ) -> Result<(), EngineError> {
        self.set_state_with(to, reason, |_| {})
    }

    /// [`Driver::set_state`] with more fields in its event.
    pub(super) fn set_state_with(
        &mut self,
        to: MigrationState,
        reason: &str,
        more: impl FnOnce(&mut StateChanged),
    ) -> Result<(), EngineError> {
        let from = self.state;
        lifecycle::transition(from, to)?;
        self.state = to;
        let mut change = StateChanged {
            from: Some(from),
            to,
            reason: reason.to_owned(),
            by: self.actor.clone(),
            kept_changes: None,
            rolled_back: false,
        };
        more(&mut change);
        self.emit(NewEvent::of(change));
        Ok(())
    }

    /// Adds an event to the batch being built (masking any secret in it).
    pub(super) fn emit(&mut self, mut event: NewEvent) {
        if !self.masker.is_empty() {
            event.data = self.masker.mask_json(&event.data);
        }
        self.batch.events.push(event);
    }

    /// Changes a node's row and queues it for the next commit (masking any secret in its
    /// error or reason, which the status shows).
    pub(super) fn update(&mut self, node: usize, change: impl FnOnce(&mut crate::store::StepRow)) {
        let mut row = self.graph.nodes[node].row.clone();
        change(&mut row);
        for text in [&mut row.error, &mut row.reason].into_iter().flatten() {
            if let std::borrow::Cow::Owned(masked) = self.masker.mask(text) {
                *text = masked;
            }
        }
        let state = row.state;
        row.state = self.graph.nodes[node].row.state;
        self.graph.nodes[node].row = row;
        self.graph.set_state(node, state);
        self.ctx.record(&self.graph.nodes[node]);
        self.batch.steps.push(self.graph.nodes[node].row.clone());
    }

    /// Commits the batch built this round, then acts on it: spawns the steps it started and
    /// tells the observer what happened.
    pub(super) async fn commit(&mut self) -> Result<(), EngineError> {
        if self.batch.events.is_empty()
            && self.batch.steps.is_empty()
            && self.batch.gates.is_empty()
        {
            return Ok(());
        }
        let mut batch = std::mem::take(&mut self.batch);
        batch.expect_state = Some(self.committed);
        batch.fence = Some(self.lease.clone());
        batch.state = (self.state != self.committed).then_some(self.state);
        // Alerts go to the outbox in the transaction of the events that cause them (SPEC §4);
        // sending them is the alert worker's job, never the driver's.
        batch.outbox =
            crate::alert::rules::route(&self.runbook.alerts, self.committed, &batch.events);
        let events = batch.events.clone();
        let committed = self.store.commit_async(&self.migration.id, batch).await?;
        self.committed = self.state;
        self.actor = None;
        self.commits += 1;
        if self.crash_after == Some(self.commits) {
            std::process::abort();
        }
        for (event, seq) in events.into_iter().zip(committed.seqs) {
            self.observer.event(&Event {
                seq,
                migration: self.migration.id.clone(),
                at: committed.at,
                kind: event.kind,
                step: event.step,
                data: event.data,
            });
        }
        for spawn in std::mem::take(&mut self.spawn) {
            self.spawn_attempt(spawn);
        }
        Ok(())
    }

    /// What the runbook says to do after a step failed for good, in the current phase.
    pub(super) fn failure_policy(&self) -> Stop {
        match (self.runbook.on_failure, self.state) {
            (OnFailure::Rollback, _) => Stop::Rollback,
            // Only a running migration can pause (SPEC §3); elsewhere a failure fails it.
            (OnFailure::Pause, MigrationState::Running) => Stop::Pause,
            _ => Stop::Fail,
        }
    }
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

impl Driver {
    pub(super) fn clock(&self) -> &dyn super::clock::Clock {
        self.opts.clock.as_ref()
    }

    /// The next time the driver must look at the clock: a retry, a gate deadline, a window.
    fn next_wake(&self) -> Option<DateTime<Utc>> {
        let retries = self.retries.iter().map(|(at, _)| *at);
        let gates = self.gates.values().flatten().copied();
        let reminders = self.gate_reminders.values().copied();
        retries
            .chain(gates)
            .chain(reminders)
            .chain(self.next_window_wake())
            .min()
    }
}
