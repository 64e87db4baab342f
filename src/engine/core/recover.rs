//! What a driver decides when it attaches to a migration: settle what a previous driver left
//! (steps a crash interrupted, gates still open or decided meanwhile, pool waits), then apply
//! the operation it attached for (start, resume, retry, rollback, pause, cancel) as lifecycle
//! transitions. What it needs to know of the store and the host (processes still running,
//! gate rows, the events so far) the driver reads first, as a [`Recovery`].

use super::{Core, Stop};
use crate::engine::EngineError;
use crate::engine::open::{Attach, Interrupted, KEPT};
use crate::event::Event;
use crate::event::{DriverAttached, StepInterrupted, StepSkipped};
use crate::event::{EventKind, MigrationState, NewEvent, StepState};
use crate::event::{StateChanged, WindowClosed};
use crate::store::{GateDecision, GateInfo};
use std::collections::HashMap;

/// What a previous driver left, as the store and the host tell it.
#[derive(Debug, Default)]
pub(in crate::engine) struct Recovery {
    /// Process groups still running on this host, of the latest attempt of steps that were
    /// running or interrupted, by step.
    pub orphans: HashMap<String, Orphan>,
    /// Rollback commands still running on this host, by step (when a rollback was under way).
    pub undo_orphans: HashMap<String, Orphan>,
    /// The gate rows of waiting steps, by step.
    pub gates: HashMap<String, GateInfo>,
    /// The migration's gate votes (who rejected a gate decided meanwhile).
    pub decisions: Vec<GateDecision>,
    /// The migration's events, for a retry (did a rollback void approvals?), a recovery
    /// (did a window's close pause it?) and a rollback (may it cross a point of no return?).
    pub events: Vec<Event>,
}

impl Core {
    /// Settles what the previous driver left: steps it was running when it died, gates
    /// still waiting, steps waiting for a pool.
    pub(in crate::engine) fn recover(
        &mut self,
        how: Attach,
        left: &Recovery,
    ) -> Result<(), EngineError> {
        let choice = match how {
            Attach::Resume(choice) => choice,
            _ => None,
        };
        let now = self.now;
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
                    // Its processes outlived their driver (and its watchdog): never start a
                    // second copy beside them, idempotent or not.
                    let orphan = left.orphans.get(&id).cloned();
                    let idempotent = self.graph.step(&self.runbook, node).idempotent;
                    let rerun = idempotent && orphan.is_none();
                    let to = if rerun {
                        StepState::Pending
                    } else {
                        StepState::Interrupted
                    };
                    let reason = match &orphan {
                        Some(o) => Some(o.reason()),
                        None if !idempotent => {
                            Some("was running when its driver stopped".to_owned())
                        }
                        None => None,
                    };
                    self.update(node, |row| {
                        row.state = to;
                        row.reason = reason;
                    });
                    self.emit(NewEvent::step(
                        &id,
                        StepInterrupted {
                            rerun,
                            idempotent,
                            process_group: orphan.as_ref().map(|o| o.pgid),
                        },
                    ));
                }
                StepState::Waiting if self.graph.nodes[node].placeholder => {}
                StepState::Waiting => {
                    if let Some(gate) = left.gates.get(&id) {
                        self.gates.insert(node, gate.deadline);
                        let opened = self.graph.nodes[node].row.started_at;
                        if let (Some(opened), Some(deadline)) = (opened, gate.deadline) {
                            let at = super::reminder_at(opened, deadline);
                            if at > self.now {
                                self.gate_reminders.insert(node, at);
                            }
                        }
                        // Decided while no process drove the migration: its event is older
                        // than what this driver reads as news, so apply the decision now.
                        self.gate_closed(node, gate.status, &left.decisions);
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
        if choice == Some(Interrupted::Retry)
            && let Some(orphan) = self.orphans_of_interrupted(left)
        {
            return Err(EngineError::Orphan(orphan));
        }
        if self
            .stop
            .is_some_and(|s| matches!(s, Stop::Rollback | Stop::CancelRollback))
        {
            // A rollback a crash interrupted: its command must not run twice at once.
            for node in 0..self.graph.len() {
                let has_undo = self.graph.step(&self.runbook, node).rollback.is_some();
                if has_undo && self.graph.nodes[node].row.state == StepState::Succeeded {
                    let id = self.graph.nodes[node].id.clone();
                    if let Some(orphan) = left.undo_orphans.get(&id) {
                        return Err(EngineError::Orphan(orphan.clone()));
                    }
                }
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
                    self.emit(NewEvent::step(
                        &id,
                        StepSkipped {
                            reason: "skipped after interruption".into(),
                        },
                    ));
                }
                None => {}
            }
        }
        Ok(())
    }

    /// The first interrupted step whose processes still run.
    fn orphans_of_interrupted(&self, left: &Recovery) -> Option<Orphan> {
        self.graph
            .nodes
            .iter()
            .filter(|n| n.row.state == StepState::Interrupted)
            .find_map(|n| left.orphans.get(&n.id).cloned())
    }

    /// Applies the operation the driver attached for, and records who attached.
    pub(in crate::engine) fn operate(
        &mut self,
        how: Attach,
        lease: &crate::store::Lease,
        left: &Recovery,
    ) -> Result<(), EngineError> {
        let who = self.identity.clone();
        self.emit(NewEvent::of(DriverAttached {
            by: who.clone(),
            op: how.operation(),
            pid: lease.pid,
            host: lease.host.clone(),
        }));
        self.actor = Some(who.clone());
        match how {
            Attach::Start => {
                self.set_state(MigrationState::Analyzing, &format!("started by {who}"))?
            }
            // A rollback a crash interrupted goes on first; a `cancel --rollback` keeps the
            // migration where the cancel put it until its rollback ends.
            Attach::Resume(_) | Attach::Recover if self.stop == Some(Stop::CancelRollback) => {}
            Attach::Resume(_) if self.state == MigrationState::Created => {
                self.set_state(MigrationState::Analyzing, &format!("started by {who}"))?
            }
            Attach::Resume(_) => {
                if self.interrupted().is_some() {
                    if self.state == MigrationState::Running {
                        self.set_state(MigrationState::Paused, "a step was interrupted")?;
                    }
                } else if self.state == MigrationState::Paused {
                    self.set_state(MigrationState::Running, &format!("resumed by {who}"))?;
                    self.retry_unfinished(Rerun::default());
                }
            }
            Attach::Recover => {
                if self.interrupted().is_some() {
                    if self.state == MigrationState::Running {
                        self.set_state(MigrationState::Paused, "a step was interrupted")?;
                    }
                } else if self.state == MigrationState::Paused {
                    self.window_pause = self.paused_by_window(&left.events);
                }
            }
            Attach::Retry => {
                // A rollback voids the gate decisions made before it: what was signed off
                // was undone, so the retry waits at its gates again.
                let voided = rolled_back_since_start(&left.events);
                let reason = if voided {
                    format!("retried by {who}; the rollback voided earlier approvals")
                } else {
                    format!("retried by {who}")
                };
                self.set_state(MigrationState::Analyzing, &reason)?;
                self.retry_unfinished(Rerun {
                    rolled_back: true,
                    gates: voided,
                });
            }
            Attach::Rollback => {
                self.past_point_of_no_return = asked_past_point_of_no_return(&left.events);
                self.stop = Some(Stop::Rollback);
            }
            Attach::Pause => self.set_state(MigrationState::Paused, &format!("paused by {who}"))?,
            Attach::Cancel | Attach::CancelRollback => {
                if self.state == MigrationState::Running {
                    self.set_state(
                        MigrationState::Paused,
                        &format!("cancel requested by {who}"),
                    )?;
                }
                if how == Attach::CancelRollback {
                    self.past_point_of_no_return = asked_past_point_of_no_return(&left.events);
                }
                self.stop = Some(if how == Attach::CancelRollback {
                    Stop::CancelRollback
                } else {
                    Stop::Cancel
                });
            }
        }
        Ok(())
    }

    /// Steps to run again: failed and cancelled ones, and as `rerun` says, rolled-back ones
    /// and decided gates; succeeded steps are kept (SPEC §3).
    fn retry_unfinished(&mut self, rerun: Rerun) {
        let mut again = vec![false; self.graph.len()];
        for node in self.graph.topological_order() {
            let state = self.graph.nodes[node].row.state;
            let is_gate = matches!(
                self.graph.step(&self.runbook, node).action,
                crate::runbook::model::Action::Gate(_)
            );
            let runs_again = matches!(state, StepState::Failed | StepState::Cancelled)
                || (rerun.rolled_back && state == StepState::RolledBack)
                || (rerun.gates && is_gate && state == StepState::Succeeded);
            let upstream_reruns = self.graph.nodes[node].needs.iter().any(|&n| again[n]);
            again[node] = runs_again || upstream_reruns;
            if runs_again {
                self.update(node, |row| {
                    row.state = StepState::Pending;
                    row.attempts = 0;
                    row.error = None;
                    row.reason = None;
                    row.finished_at = None;
                    row.kept = false;
                });
            } else if upstream_reruns && state == StepState::Succeeded {
                // Kept, but it passes again in order: its dependents must not start before
                // what it depends on has run again.
                self.update(node, |row| {
                    row.state = StepState::Pending;
                    row.kept = true;
                    row.reason = Some(KEPT.to_owned());
                });
            }
        }
    }
}

/// Whether a rollback started since the migration last started (or was retried): its gate
/// decisions are then void.
fn rolled_back_since_start(events: &[Event]) -> bool {
    let started = events
        .iter()
        .rev()
        .find(|e| {
            e.read::<StateChanged>()
                .is_some_and(|c| c.to == MigrationState::Analyzing)
        })
        .map_or(0, |e| e.seq);
    events
        .iter()
        .any(|e| e.kind == EventKind::RollbackStarted && e.seq > started)
}

/// A step's processes that outlived their driver: their group still runs on this host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "step {step} (attempt {attempt}) still runs in process group {pgid} on this host, left by a driver that died; wait for it to end or stop it (`kill -TERM -- -{pgid}`), then resume: sensei never runs two copies of a step"
)]
pub struct Orphan {
    pub step: String,
    pub attempt: u32,
    pub pgid: i32,
}

impl Orphan {
    pub(in crate::engine) fn reason(&self) -> String {
        format!(
            "its processes (group {}) still run, left by a driver that died",
            self.pgid
        )
    }
}

/// What a retry or a resume runs again besides failed and cancelled steps.
#[derive(Debug, Clone, Copy, Default)]
struct Rerun {
    /// Steps a rollback undid.
    rolled_back: bool,
    /// Gates that were decided (a rollback voided the decisions).
    gates: bool,
}

/// The window whose close paused the migration, when its latest pause came from one.
pub fn paused_by_window(events: &[crate::event::Event]) -> Option<String> {
    let paused = events
        .iter()
        .rev()
        .filter_map(|e| e.read::<StateChanged>())
        .find(|c| c.to == MigrationState::Paused)?;
    if paused.by.as_deref() != Some("window") {
        return None;
    }
    let closed = events.iter().rev().find_map(|e| e.read::<WindowClosed>())?;
    Some(closed.window)
}

impl Core {
    /// When the migration was paused by a window's close: that window's next opening.
    fn paused_by_window(&self, events: &[Event]) -> Option<chrono::DateTime<chrono::Utc>> {
        let window = paused_by_window(events).and_then(|name| self.runbook.window(&name))?;
        let now = self.now;
        Some(match crate::calendar::window_state(window, now) {
            crate::calendar::WindowState::Open { .. } => now,
            crate::calendar::WindowState::Cutoff { next_opens, .. }
            | crate::calendar::WindowState::Closed { next_opens } => next_opens,
        })
    }
}

/// Whether the latest operator request (the one a driver attached to carry out) allowed its
/// rollback to cross points of no return.
fn asked_past_point_of_no_return(events: &[Event]) -> bool {
    events
        .iter()
        .rev()
        .find_map(|e| e.read::<crate::event::OperatorRequest>())
        .is_some_and(|r| r.past_point_of_no_return)
}
