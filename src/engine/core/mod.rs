//! The core: one migration's run-time state and every decision about it, without I/O.
//!
//! The core holds the step states (the run-time graph), slots, windows in use, open gates,
//! stop requests and rollback progress. Its methods are its inputs — a round to advance
//! ([`Core::advance`]), an attempt that ended ([`Core::finished`], [`Core::undone`]), a
//! running attempt's live report ([`Core::reported`], [`Core::live_due`]), the
//! clock ([`Core::due_retries`], [`Core::window_deadlines`], [`Core::due_gates`]), an
//! operator request ([`Core::request`]), a gate that closed ([`Core::gate_closed`]), what a
//! crash left ([`Core::recover`]) — each carrying the time it happens at (`now`, never a
//! clock). They leave behind the batch to commit and the [`Effect`]s to carry out once it is
//! committed, which the driver takes with [`Core::take_batch`] and [`Core::take_effects`].
//! The core never touches the store, a process, the network or the real clock; the two
//! answers it needs from data shared with other migrations (a pool slot, earlier runs'
//! durations) come through [`Shared`], which the driver implements over the store and the
//! property test (`props`) in memory.
//!
//! Where each invariant lives:
//! - a state change is one the lifecycle table allows: [`Core::set_state`], through
//!   `lifecycle::transition`, the only place that changes `state`;
//! - nothing starts while draining, stopping, paused, at rest or outside a window, and
//!   every attempt holds a slot: `launch::admit`, the one admission of every path (first
//!   attempts, retries, polling checks, rollback commands);
//! - in-flight work never exceeds `concurrency` or a pool, and every slot comes back:
//!   `slots` (a [`Slot`] value, given back when dropped);
//! - what an outcome means for the step and the migration: `outcome`;
//! - rollback is a mode of the core whose commands run as ordinary attempts: `rollback`;
//! - windows (cutoffs, closes, `on_close`): `window`; gates and operator requests: `gates`;
//! - live reports of running attempts are committed rate-limited (progress) or at once
//!   (checkpoints): `live`; an attempt goes on from its step's checkpoint: `prepare`, and a
//!   rollback clears it: `rollback`;
//! - what a crash left, and the operation a driver attached for: `recover`.
//! - every committed event gets its alert deliveries: not the core's nor the driver's job;
//!   the store routes each event it appends, in its transaction (`store::route`).

mod advance;
mod gates;
mod launch;
mod live;
mod outcome;
mod prepare;
mod prepare_compare;
mod prepare_copy;
#[cfg(test)]
mod props;
mod recover;
mod rollback;
mod slots;
mod window;

pub use recover::{Orphan, paused_by_window};
pub use rollback::ROLLBACK_ATTEMPT;

pub(in crate::engine) use gates::reminder_at;
pub(in crate::engine) use launch::{Start, Work};
pub(in crate::engine) use recover::Recovery;
pub(in crate::engine) use rollback::{Then, Undo};
pub(in crate::engine) use slots::{Shared, Slot, Slots};

use super::EngineError;
use super::context::Context;
use super::graph::Graph;
use super::lifecycle;
use crate::event::{MigrationState, NewEvent, StateChanged};
use crate::process::StepEnv;
use crate::runbook::model::{OnFailure, Runbook};
use crate::runbook::render::{Masker, Renderer};
use crate::store::{Batch, GateStatus, Migration};
use chrono::{DateTime, Utc};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

/// Why the core stopped starting new steps, and what it does once in-flight ones end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::engine) enum Stop {
    Fail,
    Pause,
    Rollback,
    Cancel,
    /// `cancel --rollback`: roll back what succeeded, then cancel.
    CancelRollback,
}

/// What the driver carries out for the core.
#[derive(Debug)]
pub(in crate::engine) enum Effect {
    /// Start this attempt (or rollback command) with this slot, once the batch that
    /// records its start is committed.
    Start(Start),
    /// Kill every running attempt (their process groups).
    KillInFlight,
    /// Close a gate in the store with its `gate_decided` event (a cancel): written before
    /// the batch, like any gate decision.
    CloseGate {
        step: String,
        status: GateStatus,
        event: NewEvent,
    },
}

/// The parts a core is built from (see `open::build`).
#[derive(Debug)]
pub(in crate::engine) struct Parts {
    pub migration: Migration,
    /// Who drives (a cancel's gates close in its name when no operator asked).
    pub identity: String,
    pub runbook: Arc<Runbook>,
    pub graph: Graph,
    pub ctx: Context,
    pub renderer: Arc<Renderer>,
    pub masker: Arc<Masker>,
    pub env: StepEnv,
    pub concurrency: usize,
    pub shared: Arc<dyn Shared>,
    pub now: DateTime<Utc>,
}

/// The run-time state of one migration.
#[derive(Debug)]
pub(in crate::engine) struct Core {
    pub(in crate::engine) migration: Migration,
    identity: String,
    pub(in crate::engine) runbook: Arc<Runbook>,
    pub(in crate::engine) graph: Graph,
    pub(in crate::engine) state: MigrationState,
    /// The state as last committed: the next batch's expectation.
    pub(in crate::engine) committed: MigrationState,
    ctx: Context,
    renderer: Arc<Renderer>,
    masker: Arc<Masker>,
    /// The environment of the migration's step processes, with the runbook's `env`
    /// rendered once.
    env: StepEnv,
    shared: Arc<dyn Shared>,
    /// The time of the input being handled.
    now: DateTime<Utc>,
    /// Backoff jitter.
    rng: fastrand::Rng,
    /// Steps waiting out a retry backoff, with when they may start again.
    retries: Vec<(DateTime<Utc>, usize)>,
    /// Steps whose backoff has passed: their next attempt starts when admitted.
    retry_due: BTreeSet<usize>,
    /// Steps waiting for their window, with when to look again.
    window_waiting: HashMap<usize, DateTime<Utc>>,
    /// Window occurrences bound steps started in: their cutoff and close matter.
    windows_in_use: HashMap<String, window::InUse>,
    /// Paused by a window's close: resume at this time (its next opening).
    window_pause: Option<DateTime<Utc>>,
    /// Concurrency and pool slots: every running attempt holds one.
    slots: Slots,
    /// Attempts started (their start committed or about to be) and not yet ended.
    running: HashSet<usize>,
    /// Nodes waiting for a pool slot (of this or another migration's steps).
    pool_waiting: HashSet<usize>,
    pub(in crate::engine) stop: Option<Stop>,
    /// A rollback under way: what is left to undo.
    undo: Option<Undo>,
    /// An admin allowed the rollback asked for (or one a crash interrupted) to cross points
    /// of no return.
    pub(in crate::engine) past_point_of_no_return: bool,
    /// Gates waiting for decisions, with their deadlines.
    gates: HashMap<usize, Option<DateTime<Utc>>>,
    /// When to remind that a gate times out soon (`gate_timeout_soon`), until sent.
    gate_reminders: HashMap<usize, DateTime<Utc>>,
    placeholders: Vec<usize>,
    batch: Batch,
    effects: Vec<Effect>,
    /// The operator (or `timeout`) whose request the next state change answers.
    actor: Option<String>,
    /// Stopping on request: let running steps finish, start nothing.
    draining: bool,
    /// The failure that stopped the run, in words (`step copy failed: ...`): the reason of
    /// the state it leads to.
    failure: Option<String>,
    /// Live reports not committed yet, and when they were last.
    live: live::Live,
}

impl Core {
    pub(in crate::engine) fn new(parts: Parts) -> Core {
        let Parts {
            migration,
            identity,
            runbook,
            graph,
            ctx,
            renderer,
            masker,
            env,
            concurrency,
            shared,
            now,
        } = parts;
        let pools: HashMap<String, u32> = runbook.pools.iter().cloned().collect();
        let placeholders = (0..graph.len())
            .filter(|&i| graph.nodes[i].placeholder)
            .collect();
        let state = migration.state;
        Core {
            slots: Slots::new(concurrency, pools, Arc::clone(&shared)),
            migration,
            identity,
            runbook,
            graph,
            state,
            committed: state,
            ctx,
            renderer,
            masker,
            env,
            shared,
            now,
            rng: fastrand::Rng::new(),
            retries: Vec::new(),
            retry_due: BTreeSet::new(),
            window_waiting: HashMap::new(),
            windows_in_use: HashMap::new(),
            window_pause: None,
            running: HashSet::new(),
            pool_waiting: HashSet::new(),
            stop: None,
            undo: None,
            past_point_of_no_return: false,
            gates: HashMap::new(),
            gate_reminders: HashMap::new(),
            placeholders,
            batch: Batch::default(),
            effects: Vec::new(),
            actor: None,
            draining: false,
            failure: None,
            live: live::Live::default(),
        }
    }

    /// Slots held now (by running attempts, or by starts not yet carried out).
    #[cfg(test)]
    pub(in crate::engine) fn slots_held(&self) -> usize {
        self.slots.in_flight()
    }

    /// Jitter from a fixed seed (the property test replays its cases).
    #[cfg(test)]
    pub(in crate::engine) fn seed(&mut self, seed: u64) {
        self.rng = fastrand::Rng::with_seed(seed);
    }

    /// Sets the time of the input being handled.
    pub(in crate::engine) fn at(&mut self, now: DateTime<Utc>) -> &mut Core {
        self.now = now;
        self
    }

    /// The batch built since the last commit, with the state it expects and moves to.
    pub(in crate::engine) fn take_batch(&mut self) -> Option<Batch> {
        if self.batch.events.is_empty()
            && self.batch.steps.is_empty()
            && self.batch.gates.is_empty()
        {
            return None;
        }
        let mut batch = std::mem::take(&mut self.batch);
        batch.expect_state = Some(self.committed);
        batch.state = (self.state != self.committed).then_some(self.state);
        Some(batch)
    }

    /// The batch taken last was committed.
    pub(in crate::engine) fn committed(&mut self) {
        self.committed = self.state;
        self.actor = None;
    }

    /// The effects decided since they were last taken, in order.
    pub(in crate::engine) fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    /// The gates to close in the store now (a cancel), before anything else is committed.
    pub(in crate::engine) fn take_gate_closes(&mut self) -> Vec<Effect> {
        let (closes, rest) = std::mem::take(&mut self.effects)
            .into_iter()
            .partition(|e| matches!(e, Effect::CloseGate { .. }));
        self.effects = rest;
        closes
    }

    /// Effects taken early that the driver leaves for after the commit.
    pub(in crate::engine) fn give_back_effects(&mut self, mut effects: Vec<Effect>) {
        effects.append(&mut self.effects);
        self.effects = effects;
    }

    /// The masker of the migration's secrets (attempts mask what they log).
    pub(in crate::engine) fn masker(&self) -> Arc<Masker> {
        Arc::clone(&self.masker)
    }

    /// A rollback is under way or about to start (a crash interrupted one).
    pub(in crate::engine) fn rolling_back(&self) -> bool {
        self.undo.is_some() || matches!(self.stop, Some(Stop::Rollback | Stop::CancelRollback))
    }

    /// Whether the step of `node` has a `rollback` command.
    pub(in crate::engine) fn has_rollback(&self, node: usize) -> bool {
        self.graph.step(&self.runbook, node).rollback.is_some()
    }

    /// A server shutting down: start nothing more, let running attempts finish.
    pub(in crate::engine) fn drain(&mut self) {
        self.draining = true;
        self.retries.clear();
        self.retry_due.clear();
    }

    /// Attempts running (or about to start): each holds a slot.
    #[cfg(test)]
    pub(in crate::engine) fn in_flight(&self) -> usize {
        self.running.len()
    }

    /// Resting: nothing in flight and nothing more to do without an operator.
    pub(in crate::engine) fn at_rest(&self) -> bool {
        let idle = self.running.is_empty();
        if self.draining {
            return idle;
        }
        idle && self.retries.is_empty()
            && self.retry_due.is_empty()
            && self.undo.is_none()
            && self.window_pause.is_none()
            && (self.state.is_at_rest() || (self.stop.is_none() && self.stalled()))
    }

    /// The next time the core must look at the clock: a retry, a gate deadline, a window,
    /// live reports waiting to be committed.
    pub(in crate::engine) fn next_wake(&self) -> Option<DateTime<Utc>> {
        let retries = self.retries.iter().map(|(at, _)| *at);
        let gates = self.gates.values().flatten().copied();
        let reminders = self.gate_reminders.values().copied();
        retries
            .chain(gates)
            .chain(reminders)
            .chain(self.next_window_wake())
            .chain(self.next_live_wake())
            .min()
    }

    /// Moves the migration to another state (checked by the lifecycle) and records why.
    pub(in crate::engine) fn set_state(
        &mut self,
        to: MigrationState,
        reason: &str,
    ) -> Result<(), EngineError> {
        self.set_state_with(to, reason, |_| {})
    }

    /// [`Core::set_state`] with more fields in its event.
    fn set_state_with(
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
    pub(in crate::engine) fn emit(&mut self, mut event: NewEvent) {
        if !self.masker.is_empty() {
            event.data = self.masker.mask_json(&event.data);
        }
        self.batch.events.push(event);
    }

    /// Changes a node's row and queues it for the next commit (masking any secret in its
    /// error or reason, which the status shows).
    fn update(&mut self, node: usize, change: impl FnOnce(&mut crate::store::StepRow)) {
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

    /// What the runbook says to do after a step failed for good, in the current phase.
    fn failure_policy(&self) -> Stop {
        match (self.runbook.on_failure, self.state) {
            (OnFailure::Rollback, _) => Stop::Rollback,
            // Only a running migration can pause (SPEC §3); elsewhere a failure fails it.
            (OnFailure::Pause, MigrationState::Running) => Stop::Pause,
            _ => Stop::Fail,
        }
    }

    /// Points the template values at `node` (its `item`, the state now); render with
    /// `self.ctx.values()` next.
    fn focus(&mut self, node: usize) {
        self.ctx.focus(&self.graph, node, self.state.as_str());
    }

    /// The first step waiting for an operator after an interruption.
    pub(in crate::engine) fn interrupted(&self) -> Option<&str> {
        self.graph
            .nodes
            .iter()
            .find(|n| n.row.state == crate::event::StepState::Interrupted)
            .map(|n| n.id.as_str())
    }
}
