//! What other processes ask of a driven migration, decided: operator requests (`sensei
//! pause`, `cancel`, `rollback` from another shell, or the API) and gates (a decision that
//! closed one, a deadline that passed, a reminder that is due). The driver reads them from
//! the store and brings them here; closing a gate in the store (which races human
//! decisions atomically) is its effect.

use super::{Core, Effect, Stop};
use crate::engine::EngineError;
use crate::event::{GateDecided, GateTimeoutSoon, StepFailed, StepSucceeded};
use crate::event::{MigrationState, NewEvent, Operation, OperatorRequest, StepState};
use crate::runbook::model::{Action, OnTimeout};
use crate::store::{GateDecision, GateInfo, GateStatus};
use chrono::{DateTime, Utc};

/// A gate whose deadline passed: the driver closes it in the store with this event, unless a
/// human decision got there first.
#[derive(Debug)]
pub(in crate::engine) struct DueGate {
    pub node: usize,
    pub step: String,
    pub status: GateStatus,
    pub event: NewEvent,
    /// `on_timeout: cancel`: a timeout that won cancels the migration.
    pub cancels: bool,
}

impl Core {
    /// An operator asked for a lifecycle operation while this process drives the migration.
    pub(in crate::engine) fn request(
        &mut self,
        request: OperatorRequest,
    ) -> Result<(), EngineError> {
        let (op, rollback) = (request.op, request.rollback);
        let past_point_of_no_return = request.past_point_of_no_return;
        let who = if request.by.is_empty() {
            "someone".to_owned()
        } else {
            request.by
        };
        // A rollback under way is not interrupted: the request stays in the history, and
        // the requester sees the migration end where the rollback leads.
        if self.undo.is_some() {
            return Ok(());
        }
        // The request was possible when it was committed, but this driver may have moved
        // the migration on since (the execute phase ended, say): judge it by the lifecycle
        // as it is now, like the CLI does. The requester sees that it was not carried out.
        if crate::engine::operation::path(op, self.state).is_err() {
            return Ok(());
        }
        self.actor = Some(who.clone());
        match (op, self.state) {
            // A failure being handled (in-flight steps finishing before on_failure applies)
            // is not overridden by a pause: the runbook's on_failure decides.
            (Operation::Pause, MigrationState::Running) if self.stop.is_none() => {
                self.set_state(MigrationState::Paused, &format!("paused by {who}"))?;
                self.stop = Some(Stop::Pause);
            }
            (Operation::Cancel, state) => {
                if state == MigrationState::Running {
                    self.set_state(
                        MigrationState::Paused,
                        &format!("cancel requested by {who}"),
                    )?;
                }
                self.kill_in_flight();
                self.close_open_gates(GateStatus::Cancelled, &who);
                self.past_point_of_no_return = rollback && past_point_of_no_return;
                self.stop = Some(if rollback {
                    Stop::CancelRollback
                } else {
                    Stop::Cancel
                });
            }
            (Operation::Rollback, MigrationState::Running | MigrationState::Paused) => {
                self.kill_in_flight();
                self.past_point_of_no_return = past_point_of_no_return;
                self.stop = Some(Stop::Rollback);
            }
            // Anything else was possible when asked but no longer is; the requester saw
            // the state it acted on, and the event stays in the history.
            _ => self.actor = None,
        }
        Ok(())
    }

    /// Cancels every running attempt (their process groups are killed).
    fn kill_in_flight(&mut self) {
        self.effects.push(Effect::KillInFlight);
    }

    /// The node of `step` when it is a gate waiting for decisions.
    pub(in crate::engine) fn open_gate_of(&self, step: &str) -> Option<usize> {
        self.graph.find(step).filter(|n| self.gates.contains_key(n))
    }

    /// Whether the gate of `node` still waits for decisions.
    pub(in crate::engine) fn gate_is_open(&self, node: usize) -> bool {
        self.gates.contains_key(&node)
    }

    /// A gate closed with `status` (nothing happens while it is open): its step succeeds,
    /// fails or is cancelled. `decisions` are the migration's gate votes, read when it was
    /// rejected (who rejected it, and why).
    pub(in crate::engine) fn gate_closed(
        &mut self,
        node: usize,
        status: GateStatus,
        decisions: &[GateDecision],
    ) {
        let now = self.now;
        let (state, error) = match status {
            GateStatus::Open => return,
            GateStatus::Approved => (StepState::Succeeded, None),
            GateStatus::Rejected => (StepState::Failed, Some(self.rejection(node, decisions))),
            GateStatus::TimedOut => (
                StepState::Failed,
                Some("timed out without a decision".to_owned()),
            ),
            GateStatus::Cancelled => (StepState::Cancelled, None),
        };
        self.gates.remove(&node);
        self.update(node, |row| {
            row.state = state;
            row.finished_at = Some(now);
            row.reason = None;
            row.error = error.clone();
        });
        let id = self.graph.nodes[node].id.clone();
        match state {
            StepState::Succeeded => self.emit(NewEvent::step(
                &id,
                StepSucceeded {
                    gate: Some(status.as_str().to_owned()),
                    ..StepSucceeded::default()
                },
            )),
            StepState::Failed => {
                self.emit(NewEvent::step(
                    &id,
                    StepFailed {
                        gate: Some(status.as_str().to_owned()),
                        error,
                        ..StepFailed::default()
                    },
                ));
                self.failed_for_good(node);
            }
            _ => {}
        }
    }

    /// Who rejected a gate, and why if they said: `rejected by alice: numbers look off`.
    fn rejection(&self, node: usize, decisions: &[GateDecision]) -> String {
        let step = &self.graph.nodes[node].id;
        let vote = decisions
            .iter()
            .rev()
            .find(|d| &d.step == step && d.decision == crate::event::Decision::Reject);
        match vote {
            Some(v) => match &v.comment {
                Some(comment) => format!("rejected by {}: {comment}", v.who),
                None => format!("rejected by {}", v.who),
            },
            None => "rejected".to_owned(),
        }
    }

    /// Gates whose deadline has passed, in no particular order.
    pub(in crate::engine) fn gates_past_deadline(&self) -> Vec<usize> {
        let now = self.now;
        self.gates
            .iter()
            .filter(|(_, deadline)| deadline.is_some_and(|d| d <= now))
            .map(|(&node, _)| node)
            .collect()
    }

    /// How a gate past its deadline closes (`on_timeout`), if it is still open: an earlier
    /// one's consequences (a cancel) may have closed it already.
    pub(in crate::engine) fn gate_timeout(&self, node: usize) -> Option<DueGate> {
        if !self.gates.contains_key(&node) {
            return None;
        }
        let Action::Gate(gate) = &self.graph.step(&self.runbook, node).action else {
            return None;
        };
        let (status, outcome) = match gate.on_timeout {
            OnTimeout::Approve => (GateStatus::Approved, "approve"),
            OnTimeout::Fail => (GateStatus::TimedOut, "fail"),
            OnTimeout::Cancel => (GateStatus::TimedOut, "cancel"),
        };
        let step = self.graph.nodes[node].id.clone();
        let event = NewEvent::step(
            &step,
            GateDecided {
                who: "timeout".into(),
                decision: "timeout".into(),
                on_timeout: Some(outcome.to_owned()),
                status: status.as_str().to_owned(),
                ..GateDecided::default()
            },
        );
        Some(DueGate {
            node,
            step,
            status,
            event,
            cancels: gate.on_timeout == OnTimeout::Cancel,
        })
    }

    /// A timeout with `on_timeout: cancel` closed its gate: the migration is cancelled.
    pub(in crate::engine) fn gate_timeout_cancels(&mut self, node: usize) {
        self.actor = Some("timeout".into());
        self.gates.remove(&node);
        self.close_open_gates(GateStatus::Cancelled, "timeout");
        self.stop = Some(Stop::Cancel);
    }

    /// Gates still open whose reminder time has come (`gate_timeout_soon`): the driver
    /// reads their votes so far and brings them to [`Core::remind`]. Each is due once.
    pub(in crate::engine) fn gate_reminders_due(&mut self) -> Vec<usize> {
        let now = self.now;
        let due: Vec<usize> = self
            .gate_reminders
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(&n, _)| n)
            .collect();
        for node in &due {
            self.gate_reminders.remove(node);
        }
        due.into_iter()
            .filter(|n| matches!(self.gates.get(n), Some(Some(_))))
            .collect()
    }

    /// Reminds that a gate times out soon, with its votes so far.
    pub(in crate::engine) fn remind(&mut self, node: usize, gate: GateInfo) {
        let Some(Some(deadline)) = self.gates.get(&node).copied() else {
            return;
        };
        let id = self.graph.nodes[node].id.clone();
        self.emit(NewEvent::step(
            &id,
            GateTimeoutSoon {
                deadline: deadline.to_rfc3339(),
                approvers: gate.approvers,
                approvals: gate.approvals,
                required: gate.required,
            },
        ));
    }

    /// Closes every gate still waiting (on cancel, or when the migration ends otherwise);
    /// their steps become cancelled. The store's gate rows close as effects, before the
    /// batch is committed.
    pub(in crate::engine) fn close_open_gates(&mut self, status: GateStatus, who: &str) {
        let open: Vec<usize> = self.gates.keys().copied().collect();
        for node in open {
            let id = self.graph.nodes[node].id.clone();
            let event = NewEvent::step(
                &id,
                GateDecided {
                    who: who.to_owned(),
                    decision: "cancel".into(),
                    status: status.as_str().to_owned(),
                    ..GateDecided::default()
                },
            );
            self.effects.push(Effect::CloseGate {
                step: id,
                status,
                event,
            });
            self.gates.remove(&node);
            if self.graph.nodes[node].row.state == StepState::Waiting {
                let now = self.now;
                self.update(node, |row| {
                    row.state = StepState::Cancelled;
                    row.finished_at = Some(now);
                    row.reason = None;
                });
            }
        }
    }
}

/// When to remind that a gate opened at `opened` times out at `deadline`: a quarter of its
/// time before, but never more than an hour before (a 24 h sign-off is reminded an hour
/// ahead, a 2 h one 30 minutes ahead).
pub(in crate::engine) fn reminder_at(
    opened: DateTime<Utc>,
    deadline: DateTime<Utc>,
) -> DateTime<Utc> {
    let lead = ((deadline - opened) / 4).min(chrono::Duration::hours(1));
    deadline - lead
}
