//! What other processes ask of a driven migration: operator requests (`sensei pause`,
//! `cancel`, `rollback` from another shell, or the API) and gate decisions. They arrive as
//! committed events; the driver polls the store's cheap change counter and reads only what
//! is new. Gate deadlines are enforced here too, racing human decisions atomically in the store.

use super::EngineError;
use super::driver::{Driver, Stop};
use crate::event::OperatorRequest;
use crate::event::{Event, EventKind, MigrationState, NewEvent, Operation, StepState};
use crate::event::{GateDecided, GateTimeoutSoon, StepFailed, StepSucceeded};
use crate::runbook::model::{Action, OnTimeout};
use crate::store::{GateStatus, Store};
use chrono::{DateTime, Utc};
use serde_json::json;

impl Driver {
    /// Reads and handles what other processes committed since the last look.
    pub(super) async fn outside(&mut self) -> Result<(), EngineError> {
        let version = self.store.data_version()?;
        if version == self.data_version {
            return Ok(());
        }
        self.data_version = version;
        let events = self.store.events(&self.migration.id, self.seen_seq)?;
        for event in events {
            self.seen_seq = self.seen_seq.max(event.seq);
            match event.kind {
                EventKind::OperatorRequest => {
                    self.observer.event(&event);
                    self.request(&event).await?;
                }
                EventKind::GateDecided => {
                    self.observer.event(&event);
                    if let Some(step) = &event.step {
                        self.gate_changed(step)?;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// An operator asked for a lifecycle operation while this process drives the migration.
    async fn request(&mut self, event: &Event) -> Result<(), EngineError> {
        let Some(request) = event.read::<OperatorRequest>() else {
            return Ok(());
        };
        let (op, rollback) = (request.op, request.rollback);
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
        if super::operation::path(op, self.state).is_err() {
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
                self.close_open_gates(GateStatus::Cancelled, &who).await?;
                self.stop = Some(if rollback {
                    Stop::CancelRollback
                } else {
                    Stop::Cancel
                });
            }
            (Operation::Rollback, MigrationState::Running | MigrationState::Paused) => {
                self.kill_in_flight();
                self.stop = Some(Stop::Rollback);
            }
            // Anything else was possible when asked but no longer is; the requester saw
            // the state it acted on, and the event stays in the history.
            _ => self.actor = None,
        }
        Ok(())
    }

    /// Cancels every running attempt (their process groups are killed).
    pub(super) fn kill_in_flight(&mut self) {
        for cancel in self.cancels.values() {
            let _ = cancel.send(true);
        }
    }

    /// A decision was recorded on a gate: apply it if the gate is now closed.
    fn gate_changed(&mut self, step: &str) -> Result<(), EngineError> {
        let Some(node) = self.graph.find(step) else {
            return Ok(());
        };
        if !self.gates.contains_key(&node) {
            return Ok(());
        }
        let Some(gate) = self.store.gate(&self.migration.id, step)? else {
            return Ok(());
        };
        self.gate_closed(node, gate.status);
        Ok(())
    }

    /// A gate closed with `status` (nothing happens while it is open): its step succeeds,
    /// fails or is cancelled.
    pub(super) fn gate_closed(&mut self, node: usize, status: GateStatus) {
        let now = self.clock().now();
        let (state, error) = match status {
            GateStatus::Open => return,
            GateStatus::Approved => (StepState::Succeeded, None),
            GateStatus::Rejected => (StepState::Failed, Some(self.rejection(node))),
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
                    gate: Some(json!(status)),
                    ..StepSucceeded::default()
                },
            )),
            StepState::Failed => {
                self.emit(NewEvent::step(
                    &id,
                    StepFailed {
                        gate: Some(json!(status)),
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
    fn rejection(&self, node: usize) -> String {
        let step = &self.graph.nodes[node].id;
        let decisions = self
            .store
            .gate_decisions(&self.migration.id)
            .unwrap_or_default();
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

    /// Gates whose deadline passed: close them atomically (a human decision that won the
    /// race stands), then apply `on_timeout`.
    pub(super) async fn gate_deadlines(&mut self) -> Result<(), EngineError> {
        let now = self.clock().now();
        self.gate_reminders_due(now)?;
        let due: Vec<usize> = self
            .gates
            .iter()
            .filter(|(_, deadline)| deadline.is_some_and(|d| d <= now))
            .map(|(&node, _)| node)
            .collect();
        for node in due {
            // An earlier one's consequences (a cancel) may have closed it already.
            if !self.gates.contains_key(&node) {
                continue;
            }
            let step = self.graph.step(&self.runbook, node).clone();
            let Action::Gate(gate) = &step.action else {
                continue;
            };
            let id = self.graph.nodes[node].id.clone();
            let (status, outcome) = match gate.on_timeout {
                OnTimeout::Approve => (GateStatus::Approved, "approve"),
                OnTimeout::Fail => (GateStatus::TimedOut, "fail"),
                OnTimeout::Cancel => (GateStatus::TimedOut, "cancel"),
            };
            let event = NewEvent::step(
                &id,
                GateDecided {
                    who: "timeout".into(),
                    decision: "timeout".into(),
                    on_timeout: Some(json!(outcome)),
                    status: json!(status),
                    ..GateDecided::default()
                },
            );
            let alerts = self.gate_alerts(&event);
            let won = blocking(&self.store, {
                let (m, id) = (self.migration.id.clone(), id.clone());
                move |s| s.close_gate_alerting(&m, &id, status, event, alerts)
            })
            .await?;
            if won && gate.on_timeout == OnTimeout::Cancel {
                self.actor = Some("timeout".into());
                self.gates.remove(&node);
                self.close_open_gates(GateStatus::Cancelled, "timeout")
                    .await?;
                self.stop = Some(Stop::Cancel);
            }
            // The decision that closed the gate — the timeout's, or a human's that got there
            // first — is now a committed event like any decision of another process: show it
            // and apply it the same way (the gate is closed at most once either way).
            self.outside().await?;
            if self.gates.contains_key(&node)
                && let Some(g) = self.store.gate(&self.migration.id, &id)?
            {
                self.gate_closed(node, g.status);
            }
        }
        Ok(())
    }

    /// Closes every gate still waiting (on cancel, or when the migration ends otherwise);
    /// their steps become cancelled.
    pub(super) async fn close_open_gates(
        &mut self,
        status: GateStatus,
        who: &str,
    ) -> Result<(), EngineError> {
        let open: Vec<usize> = self.gates.keys().copied().collect();
        for node in open {
            let id = self.graph.nodes[node].id.clone();
            let event = NewEvent::step(
                &id,
                GateDecided {
                    who: who.to_owned(),
                    decision: "cancel".into(),
                    status: json!(status),
                    ..GateDecided::default()
                },
            );
            let m = self.migration.id.clone();
            let alerts = self.gate_alerts(&event);
            blocking(&self.store, move |s| {
                s.close_gate_alerting(&m, &id, status, event, alerts)
            })
            .await?;
            self.gates.remove(&node);
            if self.graph.nodes[node].row.state == StepState::Waiting {
                let now = self.clock().now();
                self.update(node, |row| {
                    row.state = StepState::Cancelled;
                    row.finished_at = Some(now);
                    row.reason = None;
                });
            }
        }
        Ok(())
    }
}

/// When to remind that a gate opened at `opened` times out at `deadline`: a quarter of its
/// time before, but never more than an hour before (a 24 h sign-off is reminded an hour
/// ahead, a 2 h one 30 minutes ahead).
pub(super) fn reminder_at(opened: DateTime<Utc>, deadline: DateTime<Utc>) -> DateTime<Utc> {
    let lead = ((deadline - opened) / 4).min(chrono::Duration::hours(1));
    deadline - lead
}

impl Driver {
    /// `gate_timeout_soon` for gates still open when their reminder time comes.
    fn gate_reminders_due(&mut self, now: DateTime<Utc>) -> Result<(), EngineError> {
        let due: Vec<usize> = self
            .gate_reminders
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(&n, _)| n)
            .collect();
        for node in due {
            self.gate_reminders.remove(&node);
            let Some(Some(deadline)) = self.gates.get(&node).copied() else {
                continue;
            };
            let id = self.graph.nodes[node].id.clone();
            // An open gate has a row: the driver opened it.
            let Some(gate) = self.store.gate(&self.migration.id, &id)? else {
                continue;
            };
            let (approvers, approvals, required) = (gate.approvers, gate.approvals, gate.required);
            self.emit(NewEvent::step(
                &id,
                GateTimeoutSoon {
                    deadline: deadline.to_rfc3339(),
                    approvers,
                    approvals,
                    required,
                },
            ));
        }
        Ok(())
    }
}

/// Runs a blocking store call off the async runtime's threads.
pub(super) async fn blocking<T: Send + 'static>(
    store: &Store,
    call: impl FnOnce(&Store) -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Result<T, EngineError> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || call(&store))
        .await
        .map_err(|e| EngineError::Internal(e.to_string()))?
        .map_err(EngineError::from)
}

impl Driver {
    /// The alert deliveries of a `gate_decided` event this driver commits on its own (a
    /// timeout, a cancel), written with it.
    fn gate_alerts(&self, event: &NewEvent) -> Vec<crate::store::NewDelivery> {
        crate::alert::rules::route(
            &self.runbook.alerts,
            self.committed,
            std::slice::from_ref(event),
        )
    }
}
