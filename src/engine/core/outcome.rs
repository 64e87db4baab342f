//! What a step's outcome means: the step's next state (succeeded, retrying, failed,
//! cancelled), and for a failure, what the migration does (SPEC §2 `on_failure`). The one
//! place where step outcomes turn into migration transitions.

use super::{Core, Stop};
use crate::engine::EngineError;
use crate::engine::actions::Outcome;
use crate::event::{MigrationState, NewEvent, StepState};
use crate::event::{StepCancelled, StepFailed, StepRetrying, StepSucceeded};

impl Core {
    /// An attempt ended.
    pub(in crate::engine) fn finished(&mut self, node: usize, outcome: Outcome) {
        self.running.remove(&node);
        self.forget_live(node);
        let now = self.now;
        let id = self.graph.nodes[node].id.clone();
        let attempt = self.graph.nodes[node].row.attempts;
        let started = self.graph.nodes[node].row.started_at;
        let duration_ms = started.map(|s| (now - s).num_milliseconds().max(0));
        match outcome {
            Outcome::Succeeded { outputs, exit_code } => {
                self.update(node, |row| {
                    row.state = StepState::Succeeded;
                    row.finished_at = Some(now);
                    row.exit_code = exit_code;
                    row.outputs = outputs.clone();
                });
                self.emit(NewEvent::step(
                    &id,
                    StepSucceeded {
                        attempt: Some(attempt),
                        duration_ms: Some(duration_ms),
                        exit_code: Some(exit_code),
                        outputs: Some(outputs),
                        ..StepSucceeded::default()
                    },
                ));
            }
            Outcome::Failed {
                error,
                exit_code,
                transient,
            } => {
                let max = self.graph.step(&self.runbook, node).retry.attempts;
                if transient && attempt < max && self.stop.is_none() {
                    let delay = self.backoff(node, attempt + 1);
                    self.update(node, |row| {
                        row.state = StepState::Retrying;
                        row.exit_code = exit_code;
                        row.error = Some(error.clone());
                    });
                    self.emit(NewEvent::step(
                        &id,
                        StepRetrying {
                            attempt,
                            of: max,
                            error: error.clone(),
                            exit_code,
                            delay_ms: delay.as_millis() as u64,
                        },
                    ));
                    let at = self.now + chrono::Duration::from_std(delay).unwrap_or_default();
                    self.retries.push((at, node));
                    return;
                }
                self.update(node, |row| {
                    row.state = StepState::Failed;
                    row.finished_at = Some(now);
                    row.exit_code = exit_code;
                    row.error = Some(error.clone());
                });
                self.emit(NewEvent::step(
                    &id,
                    StepFailed {
                        attempt: Some(attempt),
                        error: Some(error),
                        exit_code: Some(exit_code),
                        duration_ms: Some(duration_ms),
                        ..StepFailed::default()
                    },
                ));
                self.failed_for_good(node);
            }
            Outcome::Cancelled => {
                self.update(node, |row| {
                    row.state = StepState::Cancelled;
                    row.finished_at = Some(now);
                });
                self.emit(NewEvent::step(
                    &id,
                    StepCancelled {
                        attempt: Some(attempt),
                    },
                ));
            }
        }
    }

    /// A step task panicked: a bug in Sensei, not the step. Fail the migration visibly
    /// rather than hang (its slot went back with the task).
    pub(in crate::engine) fn task_panicked(&mut self, node: Option<usize>, error: String) {
        if let Some(node) = node {
            self.running.remove(&node);
            self.forget_live(node);
        }
        self.stop = Some(Stop::Fail);
        self.emit(NewEvent::of(StepFailed {
            error: Some(format!("internal error in a step task: {error}")),
            ..StepFailed::default()
        }));
    }

    /// A step failed and will not be retried: stop starting steps, as the runbook says.
    pub(in crate::engine) fn failed_for_good(&mut self, node: usize) {
        if self.stop.is_none() {
            self.stop = Some(self.failure_policy());
        }
        if self.failure.is_none() {
            let n = &self.graph.nodes[node];
            self.failure = Some(match &n.row.error {
                Some(error) => format!("step {} failed: {error}", n.id),
                None => format!("step {} failed", n.id),
            });
        }
    }

    /// Steps that waited for a slot or a window wait no more once the run stops: they are
    /// pending again (a retry or resume looks at them afresh), so a failed or paused
    /// migration does not say they wait.
    pub(in crate::engine) fn settle_waits(&mut self) {
        let waiting: Vec<usize> = self
            .pool_waiting
            .drain()
            .chain(self.window_waiting.drain().map(|(node, _)| node))
            .collect();
        for node in waiting {
            match self.graph.nodes[node].row.state {
                StepState::Waiting => self.update(node, |row| {
                    row.state = StepState::Pending;
                    row.reason = None;
                }),
                StepState::Retrying => self.update(node, |row| row.reason = None),
                _ => {}
            }
        }
    }

    /// The failure that stopped the run, in words, for the reason of where it leads.
    pub(in crate::engine) fn failure_reason(&self) -> String {
        self.failure
            .clone()
            .unwrap_or_else(|| "a step failed".to_owned())
    }

    /// In-flight steps have ended after a stop: take the migration where the stop leads.
    pub(in crate::engine) fn conclude(&mut self, stop: Stop) -> Result<(), EngineError> {
        self.retries.clear();
        self.retry_due.clear();
        match stop {
            Stop::Fail => {
                if !self.state.is_at_rest() {
                    // Nobody may decide a gate of a migration that ended: close the ones
                    // still waiting (a retry opens them again). A cancelled migration never
                    // runs what is left; a failed one keeps it pending for a retry.
                    self.close_open_gates(crate::store::GateStatus::Cancelled, "sensei");
                    let to = self.failed_state();
                    if to == MigrationState::Cancelled {
                        self.cancel_remaining();
                    }
                    self.settle_waits();
                    self.settle_placeholders_at_rest();
                    let reason = self.failure_reason();
                    self.set_state(to, &reason)?;
                }
            }
            Stop::Pause => {
                if self.state == MigrationState::Running {
                    self.settle_waits();
                    let reason = format!("{}; on_failure is pause", self.failure_reason());
                    self.set_state(MigrationState::Paused, &reason)?;
                }
            }
            Stop::Cancel => {
                self.window_pause = None;
                self.cancel_open_work();
                if self.state != MigrationState::Cancelled {
                    // Say what stays changed: cancelled is final, so nothing undoes it later.
                    let kept = self.kept_changes();
                    let reason = if kept.is_empty() {
                        "cancelled".to_owned()
                    } else {
                        format!(
                            "cancelled; not rolled back, so what these steps changed stays changed: {}",
                            kept.join(", ")
                        )
                    };
                    self.set_state_with(MigrationState::Cancelled, &reason, |change| {
                        change.kept_changes = Some(kept)
                    })?;
                }
            }
            Stop::Rollback => {
                // Rollback is a mode: its commands run as attempts, one at a time, while
                // the driver goes on renewing its lease and reading requests; the stop
                // ends when the rollback does (`rollback::undo_next`).
                return self.begin_rollback(super::Then::Fail);
            }
            Stop::CancelRollback => {
                return self.begin_rollback(super::Then::Cancel);
            }
        }
        self.stop = None;
        Ok(())
    }

    /// Where a failure leads from the current state: `failed`, except while gates wait
    /// (awaiting_approval may only become approved or cancelled, SPEC §3), and a paused
    /// migration resumes first so the failure is visible.
    pub(in crate::engine) fn failed_state(&mut self) -> MigrationState {
        match self.state {
            MigrationState::AwaitingApproval
            | MigrationState::Approved
            | MigrationState::Created => MigrationState::Cancelled,
            MigrationState::Paused => {
                let _ = self.set_state(MigrationState::Running, "resumed to record the failure");
                MigrationState::Failed
            }
            _ => MigrationState::Failed,
        }
    }

    /// Steps whose changes a plain cancel leaves in place: those that succeeded and either
    /// have a `rollback` command or ran an action of the execute phase.
    fn kept_changes(&self) -> Vec<String> {
        (0..self.graph.len())
            .filter(|&n| {
                let step = self.graph.step(&self.runbook, n);
                let acted = matches!(
                    step.action,
                    crate::runbook::model::Action::Run(_)
                        | crate::runbook::model::Action::Http(_)
                        | crate::runbook::model::Action::Sql(_)
                        | crate::runbook::model::Action::Copy(_)
                ) && self.graph.nodes[n].phase == crate::runbook::model::Phase::Execute;
                self.graph.nodes[n].row.state == StepState::Succeeded
                    && !self.graph.nodes[n].placeholder
                    && (acted || step.rollback.is_some())
            })
            .map(|n| self.graph.nodes[n].id.clone())
            .collect()
    }

    /// What a cancel ends: open gates close as cancelled (by whoever asked for it), and the
    /// steps that never ran become cancelled.
    pub(in crate::engine) fn cancel_open_work(&mut self) {
        let who = self.actor.clone().unwrap_or_else(|| self.identity.clone());
        self.close_open_gates(crate::store::GateStatus::Cancelled, &who);
        self.cancel_remaining();
    }

    /// Steps that never ran become cancelled; open gates close.
    pub(in crate::engine) fn cancel_remaining(&mut self) {
        let now = self.now;
        for node in 0..self.graph.len() {
            let state = self.graph.nodes[node].row.state;
            if matches!(
                state,
                StepState::Pending
                    | StepState::Waiting
                    | StepState::Retrying
                    | StepState::Interrupted
            ) {
                self.update(node, |row| {
                    row.state = StepState::Cancelled;
                    row.finished_at = Some(now);
                    row.reason = None;
                });
            }
        }
        self.gates.clear();
        self.pool_waiting.clear();
    }
}
