//! Starting steps: `when`, dynamic fan-out, gates, checks, and the attempts that run. Every
//! attempt passes [`Core::admit`], the one place that decides whether work may start now
//! (stop requests, pause, windows) and hands out its slot (`slots`). Everything decided here
//! is committed before any process starts (the driver commits, then carries out effects).

use super::Core;
use super::slots::Slot;
use crate::engine::EngineError;
use crate::engine::actions::Prepared;
use crate::event::{
    GateWaiting, StepExpanded, StepFailed, StepSkipped, StepStarted, StepSucceeded,
};
use crate::event::{MigrationState, NewEvent, StepState};
use crate::runbook::model::{Action, ForEach, Gate, Phase};
use crate::store::GateOpen;
use serde_json::Value as Json;
use std::collections::BTreeSet;
use std::time::Duration;

impl Core {
    /// Starts what can start in `phase`: first the steps that wait for something other
    /// than their needs (a retry whose backoff passed, a pool slot, a window), then the
    /// steps whose needs are met, in plan order.
    pub(in crate::engine) fn launch_ready(&mut self, phase: Phase) -> Result<(), EngineError> {
        let mut again: BTreeSet<usize> = self.retry_due.iter().copied().collect();
        again.extend(self.pool_waiting.iter().copied());
        again.extend(self.window_waiters_due());
        for node in again {
            if !self.slots.has_room() {
                break;
            }
            if self.graph.nodes[node].phase == phase {
                self.launch(node)?;
            }
        }
        let ready: Vec<usize> = self.graph.ready(phase).collect();
        for node in ready {
            if !self.slots.has_room() && self.needs_slot(node) {
                break;
            }
            self.launch(node)?;
        }
        Ok(())
    }

    /// Whether starting the node runs an attempt (which needs a slot), rather than deciding
    /// it at once (a gate, a check without `every`, a kept step, a fan-out placeholder).
    fn needs_slot(&self, node: usize) -> bool {
        let n = &self.graph.nodes[node];
        if n.placeholder || n.row.kept {
            return false;
        }
        let step = self.graph.step(&self.runbook, node);
        match step.action {
            Action::Run(_)
            | Action::Http(_)
            | Action::Wait(_)
            | Action::Sql(_)
            | Action::Copy(_)
            | Action::Compare(_) => true,
            Action::Check(_) => step.poll.is_some(),
            Action::Gate(_) => false,
        }
    }

    fn launch(&mut self, node: usize) -> Result<(), EngineError> {
        if self.graph.nodes[node].row.state == StepState::Retrying {
            return self.launch_attempt(node);
        }
        if self.graph.nodes[node].row.kept {
            self.pass_kept(node);
            return Ok(());
        }
        let step = self.graph.step(&self.runbook, node).clone();
        if let Some(when) = &step.when {
            self.focus(node);
            match when.render_bool(&self.renderer, self.ctx.values()) {
                Ok(true) => {}
                Ok(false) => {
                    self.skip(node, "`when` rendered false");
                    return Ok(());
                }
                Err(e) => {
                    self.fail_at_start(node, format!("`when` cannot be rendered: {e}"));
                    return Ok(());
                }
            }
        }
        if self.graph.nodes[node].placeholder {
            self.expand(node, &step.for_each);
            return Ok(());
        }
        match &step.action {
            Action::Gate(gate) => self.open_gate(node, gate),
            Action::Check(template) if step.poll.is_none() => {
                self.focus(node);
                match template.render_bool(&self.renderer, self.ctx.values()) {
                    Ok(true) => self.succeed_at_once(node),
                    Ok(false) => {
                        self.fail_at_start(node, format!("check `{template}` rendered false"))
                    }
                    Err(e) => self.fail_at_start(node, format!("check cannot be rendered: {e}")),
                }
            }
            _ => return self.launch_attempt(node),
        }
        Ok(())
    }

    /// Starts an attempt of the node (its first, or a retry) if it is admitted.
    fn launch_attempt(&mut self, node: usize) -> Result<(), EngineError> {
        let Some(slot) = self.admit(node, Work::Attempt)? else {
            return Ok(());
        };
        self.retry_due.remove(&node);
        let step = self.graph.step(&self.runbook, node).clone();
        match self.prepare(node, &step.action, step.outputs.is_some()) {
            Ok(action) => self.start(node, action, slot),
            // The slot goes back as it is dropped here.
            Err(e) => self.fail_at_start(node, e),
        }
        Ok(())
    }

    /// The one admission decision of every path that starts an attempt — a first attempt,
    /// a retry, a polling check, a rollback command: not while the driver drains, a stop
    /// is under way or the migration is paused (a rollback's own commands excepted), not
    /// outside the step's window, and only with a slot (concurrency, and the step's pool).
    /// A step refused for its window or a full pool waits, with the reason in its row.
    pub(in crate::engine) fn admit(
        &mut self,
        node: usize,
        work: Work,
    ) -> Result<Option<Slot>, EngineError> {
        if self.draining {
            return Ok(None);
        }
        if work == Work::Attempt {
            let stopping = self.stop.is_some() || self.undo.is_some();
            if stopping || self.state == MigrationState::Paused || self.state.is_at_rest() {
                return Ok(None);
            }
            if !self.window_allows(node) {
                return Ok(None);
            }
        }
        let step = self.graph.step(&self.runbook, node);
        let pool = step.pool.clone();
        let id = self.graph.nodes[node].id.clone();
        match self.slots.take(&id, pool.as_deref())? {
            Ok(slot) => {
                self.pool_waiting.remove(&node);
                self.window_waiting.remove(&node);
                Ok(Some(slot))
            }
            Err(full) => {
                if let Some(reason) = full.reason(self.migration.id.as_str()) {
                    self.pool_waiting.insert(node);
                    if self.graph.nodes[node].row.reason.as_deref() != Some(reason.as_str()) {
                        // A retry keeps its state (its backoff is over); a first attempt waits.
                        let state = match self.graph.nodes[node].row.state {
                            StepState::Retrying => StepState::Retrying,
                            _ => StepState::Waiting,
                        };
                        self.update(node, |row| {
                            row.state = state;
                            row.reason = Some(reason);
                        });
                    }
                }
                Ok(None)
            }
        }
    }

    /// Records the start of an attempt; the process starts after the commit, holding `slot`.
    pub(in crate::engine) fn start(&mut self, node: usize, action: Prepared, slot: Slot) {
        let now = self.now;
        self.update(node, |row| {
            row.state = StepState::Running;
            row.attempts += 1;
            row.started_at = Some(now);
            row.finished_at = None;
            row.error = None;
            row.reason = None;
            // Progress is an attempt's: a new one starts from nothing reported. The
            // checkpoint is the step's: the attempt goes on from it (see `prepare`).
            row.progress = None;
        });
        let command = match &action {
            Prepared::Run { command, .. } => Some(command.clone()),
            _ => None,
        };
        let row = &self.graph.nodes[node].row;
        let (attempt, checkpoint) = (row.attempts, row.checkpoint.clone().map(|c| c.value));
        let id = self.graph.nodes[node].id.clone();
        self.emit(NewEvent::step(
            &id,
            StepStarted {
                attempt,
                command,
                checkpoint,
            },
        ));
        self.queue_start(node, Work::Attempt, action, slot);
    }

    fn skip(&mut self, node: usize, reason: &str) {
        let now = self.now;
        self.update(node, |row| {
            row.state = StepState::Skipped;
            row.finished_at = Some(now);
            row.reason = Some(reason.to_owned());
        });
        let id = self.graph.nodes[node].id.clone();
        self.emit(NewEvent::step(
            &id,
            StepSkipped {
                reason: reason.to_owned(),
            },
        ));
    }

    fn succeed_at_once(&mut self, node: usize) {
        let now = self.now;
        self.update(node, |row| {
            row.state = StepState::Succeeded;
            row.attempts += 1;
            row.started_at = Some(now);
            row.finished_at = Some(now);
        });
        let id = self.graph.nodes[node].id.clone();
        let attempt = Some(self.graph.nodes[node].row.attempts);
        self.emit(NewEvent::step(
            &id,
            StepSucceeded {
                attempt,
                ..StepSucceeded::default()
            },
        ));
    }

    /// A step that succeeded before a retry passes again without running.
    fn pass_kept(&mut self, node: usize) {
        self.update(node, |row| {
            row.state = StepState::Succeeded;
            row.reason = None;
            row.kept = false;
        });
        let id = self.graph.nodes[node].id.clone();
        self.emit(NewEvent::step(
            &id,
            StepSucceeded {
                kept: true,
                ..StepSucceeded::default()
            },
        ));
    }

    /// A step that fails before anything runs (a template that cannot render, a false check).
    fn fail_at_start(&mut self, node: usize, error: String) {
        let now = self.now;
        let error = self.masker.mask(&error).into_owned();
        self.update(node, |row| {
            row.state = StepState::Failed;
            row.attempts += 1;
            row.started_at = Some(now);
            row.finished_at = Some(now);
            row.error = Some(error.clone());
        });
        let id = self.graph.nodes[node].id.clone();
        self.emit(NewEvent::step(
            &id,
            StepFailed {
                error: Some(error),
                ..StepFailed::default()
            },
        ));
        self.failed_for_good(node);
    }

    /// Expands a dynamic fan-out now that the steps it reads have finished.
    fn expand(&mut self, node: usize, for_each: &Option<ForEach>) {
        let Some(ForEach::Template(template)) = for_each else {
            return self.fail_at_start(
                node,
                "a dynamic fan-out without a `for_each` template".into(),
            );
        };
        self.focus(node);
        let items = match template.render_value(&self.renderer, self.ctx.values()) {
            Ok(Json::Array(items)) => items,
            Ok(other) => {
                return self.fail_at_start(
                    node,
                    format!("`for_each` must give a list, but `{template}` gave {other}"),
                );
            }
            Err(e) => {
                return self.fail_at_start(node, format!("`for_each` cannot be rendered: {e}"));
            }
        };
        let added = self.graph.expand(node, &items, &self.masker);
        let ids: Vec<String> = added
            .iter()
            .map(|&i| self.graph.nodes[i].id.clone())
            .collect();
        for &i in &added {
            self.batch.steps.push(self.graph.nodes[i].row.clone());
        }
        let count = added.len();
        self.update(node, |row| {
            row.state = StepState::Waiting;
            row.reason = Some(format!("on its {count} expansions"));
        });
        let id = self.graph.nodes[node].id.clone();
        self.emit(NewEvent::step(&id, StepExpanded { items, steps: ids }));
    }

    /// Opens a gate: it waits for decisions recorded in the store by `sensei approve`/the API.
    fn open_gate(&mut self, node: usize, gate: &Gate) {
        let now = self.now;
        let deadline = gate
            .timeout
            .and_then(|t| chrono::Duration::from_std(t.as_std()).ok())
            .map(|t| now + t);
        let id = self.graph.nodes[node].id.clone();
        let mut who = if gate.approvers.is_empty() {
            format!("anyone but {}", self.migration.starter)
        } else {
            gate.approvers.join(", ")
        };
        if !gate.roles.is_empty() {
            who.push_str(&format!(" holding {}", gate.roles.join(" or ")));
        }
        self.update(node, |row| {
            row.state = StepState::Waiting;
            row.attempts += 1;
            row.started_at = Some(now);
            row.reason = Some(format!("gate: {} of {who}", gate.required));
        });
        self.batch.gates.push(GateOpen {
            step: id.clone(),
            approvers: gate.approvers.clone(),
            required: gate.required,
            deadline,
        });
        self.emit(NewEvent::step(
            &id,
            GateWaiting {
                approvers: gate.approvers.clone(),
                required: gate.required,
                deadline: deadline.map(|d| d.to_rfc3339()),
                starter: self.migration.starter.clone(),
                digest: self.migration.digest.clone(),
            },
        ));
        if let Some(deadline) = deadline {
            self.gate_reminders
                .insert(node, super::reminder_at(now, deadline));
        }
        self.gates.insert(node, deadline);
    }

    /// Retries whose backoff has passed become due: their attempts start as they are
    /// admitted (see [`Core::admit`]), like any other.
    pub(in crate::engine) fn due_retries(&mut self) {
        let now = self.now;
        let (due, later): (Vec<_>, Vec<_>) = self.retries.drain(..).partition(|(at, _)| *at <= now);
        self.retries = later;
        self.retry_due.extend(due.into_iter().map(|(_, node)| node));
    }

    /// The backoff before attempt `next` (2, 3, ...): exponential, capped, with jitter so
    /// that many retrying steps do not hammer a recovering service at the same moment.
    pub(in crate::engine) fn backoff(&mut self, node: usize, next: u32) -> Duration {
        let retry = &self.graph.step(&self.runbook, node).retry;
        let base = retry.backoff.as_std();
        let exp = base.saturating_mul(1u32 << (next.saturating_sub(2)).min(20));
        let capped = exp.min(retry.max_backoff.as_std());
        // "Equal jitter": between half and all of the capped delay.
        capped / 2 + capped.mul_f64(self.rng.f64() / 2.0)
    }
}

/// What an attempt's task does: run a step, or undo one (a rollback command).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::engine) enum Work {
    Attempt,
    Undo,
}

/// An attempt decided this round, started once the round's batch is committed: what runs,
/// with the slot it holds until it ends.
#[derive(Debug)]
pub(in crate::engine) struct Start {
    pub node: usize,
    pub work: Work,
    pub action: Prepared,
    pub slot: Slot,
    pub step: String,
    /// The attempt's number (0 for a rollback command).
    pub attempt: u32,
    pub timeout: Option<std::time::Duration>,
    /// Exit codes that make a failure transient (retried).
    pub transient_codes: Vec<i32>,
}

impl Core {
    /// Queues the start of an attempt (or rollback command) of `node`: it counts as in
    /// flight from now until its outcome comes back.
    pub(in crate::engine) fn queue_start(
        &mut self,
        node: usize,
        work: Work,
        action: Prepared,
        slot: Slot,
    ) {
        let step = self.graph.step(&self.runbook, node);
        let (attempt, transient_codes) = match work {
            Work::Attempt => (
                self.graph.nodes[node].row.attempts,
                step.retry.on_exit_codes.clone(),
            ),
            Work::Undo => (super::ROLLBACK_ATTEMPT, Vec::new()),
        };
        let timeout = step.timeout.map(|t| t.as_std());
        self.running.insert(node);
        self.effects.push(super::Effect::Start(Start {
            node,
            work,
            action,
            slot,
            step: self.graph.nodes[node].id.clone(),
            attempt,
            timeout,
            transient_codes,
        }));
    }
}
