//! What a driver does when it attaches to a migration: settle what a previous driver left
//! (steps a crash interrupted, gates still open or decided meanwhile, pool waits), then apply
//! the operation it attached for (start, resume, retry, rollback, pause, cancel) as lifecycle
//! transitions.

use super::EngineError;
use super::driver::{Driver, Stop};
use super::open::{Attach, Interrupted, KEPT};
use crate::event::{EventKind, MigrationId, MigrationState, NewEvent, StepState};
use serde_json::json;

impl Driver {
    /// Settles what the previous driver left: steps it was running when it died, gates
    /// still waiting, steps waiting for a pool.
    pub(super) fn recover(&mut self, how: Attach) -> Result<(), EngineError> {
        let choice = match how {
            Attach::Resume(choice) => choice,
            _ => None,
        };
        let now = self.clock().now();
        for node in 0..self.graph.len() {
            let row = &self.graph.nodes[node].row;
            let id = row.step.clone();
            match row.state {
                // Waiting out a backoff: its last attempt ended and was recorded, so the
                // next one may simply start (the attempt count carries on).
                StepState::Retrying => self.update(node, |row| {
                    row.state = StepState::Pending;
                    row.reason = None;
                }),
                StepState::Running => {
                    let idempotent = self.graph.step(&self.runbook, node).idempotent;
                    let to = if idempotent {
                        StepState::Pending
                    } else {
                        StepState::Interrupted
                    };
                    self.update(node, |row| {
                        row.state = to;
                        row.reason =
                            (!idempotent).then(|| "was running when its driver stopped".to_owned());
                    });
                    self.emit(NewEvent::for_step(
                        EventKind::StepInterrupted,
                        &id,
                        json!({ "rerun": idempotent, "idempotent": idempotent }),
                    ));
                }
                StepState::Waiting if self.graph.nodes[node].placeholder => {}
                StepState::Waiting => {
                    if let Some(gate) = self.store.gate(&self.migration.id, &id)? {
                        self.gates.insert(node, gate.deadline);
                        let opened = self.graph.nodes[node].row.started_at;
                        if let (Some(opened), Some(deadline)) = (opened, gate.deadline) {
                            let at = super::outside::reminder_at(opened, deadline);
                            if at > self.clock().now() {
                                self.gate_reminders.insert(node, at);
                            }
                        }
                        // Decided while no process drove the migration: its event is older
                        // than what this driver reads as news, so apply the decision now.
                        self.gate_closed(node, gate.status);
                    } else {
                        self.update(node, |row| {
                            row.state = StepState::Pending;
                            row.reason = None;
                        });
                    }
                }
                _ => {}
            }
        }
        for node in 0..self.graph.len() {
            if self.graph.nodes[node].row.state != StepState::Interrupted {
                continue;
            }
            let id = self.graph.nodes[node].id.clone();
            match choice {
                Some(Interrupted::Retry) => self.update(node, |row| {
                    row.state = StepState::Pending;
                    row.reason = None;
                }),
                Some(Interrupted::Skip) => {
                    self.update(node, |row| {
                        row.state = StepState::Skipped;
                        row.finished_at = Some(now);
                        row.reason = Some("skipped by an operator after an interruption".into());
                    });
                    self.emit(NewEvent::for_step(
                        EventKind::StepSkipped,
                        &id,
                        json!({ "reason": "skipped after interruption" }),
                    ));
                }
                None => {}
            }
        }
        Ok(())
    }

    /// Applies the operation the driver attached for, and records who attached.
    pub(super) fn operate(&mut self, how: Attach) -> Result<(), EngineError> {
        let who = self.opts.identity.clone();
        self.emit(NewEvent::new(
            EventKind::DriverAttached,
            json!({ "by": who, "op": how.operation(), "pid": self.lease.pid, "host": self.lease.host }),
        ));
        self.actor = Some(who.clone());
        match how {
            Attach::Start => {
                self.set_state(MigrationState::Analyzing, &format!("started by {who}"))?
            }
            // A rollback a crash interrupted goes on first; a `cancel --rollback` keeps the
            // migration where the cancel put it until its rollback ends.
            Attach::Resume(_) | Attach::Recover if self.stop == Some(Stop::CancelRollback) => {}
            Attach::Resume(_) => {
                if self.interrupted().is_some() {
                    if self.state == MigrationState::Running {
                        self.set_state(MigrationState::Paused, "a step was interrupted")?;
                    }
                } else if self.state == MigrationState::Paused {
                    self.set_state(MigrationState::Running, &format!("resumed by {who}"))?;
                    self.retry_unfinished(false);
                }
            }
            Attach::Recover => {
                if self.interrupted().is_some() {
                    if self.state == MigrationState::Running {
                        self.set_state(MigrationState::Paused, "a step was interrupted")?;
                    }
                } else if self.state == MigrationState::Paused {
                    self.window_pause = self.paused_by_window()?;
                }
            }
            Attach::Retry => {
                self.set_state(MigrationState::Analyzing, &format!("retried by {who}"))?;
                self.retry_unfinished(true);
            }
            Attach::Rollback => self.stop = Some(Stop::Rollback),
            Attach::Pause => self.set_state(MigrationState::Paused, &format!("paused by {who}"))?,
            Attach::Cancel => {
                if self.state == MigrationState::Running {
                    self.set_state(
                        MigrationState::Paused,
                        &format!("cancel requested by {who}"),
                    )?;
                }
                self.stop = Some(Stop::Cancel);
            }
        }
        Ok(())
    }

    /// The first step waiting for an operator after an interruption.
    pub fn interrupted(&self) -> Option<&str> {
        self.graph
            .nodes
            .iter()
            .find(|n| n.row.state == StepState::Interrupted)
            .map(|n| n.id.as_str())
    }

    /// Steps to run again: failed and cancelled ones (and, on retry, rolled-back ones);
    /// succeeded steps are kept (SPEC §3).
    fn retry_unfinished(&mut self, rolled_back_too: bool) {
        let mut again = vec![false; self.graph.len()];
        for node in self.graph.topological_order() {
            let state = self.graph.nodes[node].row.state;
            let rerun = matches!(state, StepState::Failed | StepState::Cancelled)
                || (rolled_back_too && state == StepState::RolledBack);
            let upstream_reruns = self.graph.nodes[node].needs.iter().any(|&n| again[n]);
            again[node] = rerun || upstream_reruns;
            if rerun {
                self.update(node, |row| {
                    row.state = StepState::Pending;
                    row.attempts = 0;
                    row.error = None;
                    row.reason = None;
                    row.finished_at = None;
                });
            } else if upstream_reruns && state == StepState::Succeeded {
                // Kept, but it passes again in order: its dependents must not start before
                // what it depends on has run again.
                self.update(node, |row| {
                    row.state = StepState::Pending;
                    row.reason = Some(KEPT.to_owned());
                });
            }
        }
    }

    pub fn id(&self) -> &MigrationId {
        &self.migration.id
    }

    pub fn state(&self) -> MigrationState {
        self.state
    }
}

/// The window whose close paused the migration, when its latest pause came from one.
pub fn paused_by_window(events: &[crate::event::Event]) -> Option<&str> {
    let paused = events.iter().rev().find(|e| {
        e.kind == EventKind::StateChanged
            && e.data.get("to").and_then(|t| t.as_str()) == Some("paused")
    })?;
    if paused.data.get("by").and_then(|b| b.as_str()) != Some("window") {
        return None;
    }
    let closed = events
        .iter()
        .rev()
        .find(|e| e.kind == EventKind::WindowClosed)?;
    closed.data.get("window").and_then(|w| w.as_str())
}

impl Driver {
    /// When the migration was paused by a window's close: that window's next opening.
    fn paused_by_window(&self) -> Result<Option<chrono::DateTime<chrono::Utc>>, EngineError> {
        let events = self.store.events(&self.migration.id, 0)?;
        let Some(window) = paused_by_window(&events).and_then(|name| self.runbook.window(name))
        else {
            return Ok(None);
        };
        let now = self.clock().now();
        Ok(Some(match crate::calendar::window_state(window, now) {
            crate::calendar::WindowState::Open { .. } => now,
            crate::calendar::WindowState::Cutoff { next_opens, .. }
            | crate::calendar::WindowState::Closed { next_opens } => next_opens,
        }))
    }
}
