//! Rollback (runbook `rollback` actions): the `rollback` command of every succeeded step,
//! dependents before what they depend on, one at a time.
//!
//! Rollback is a mode of the core, not a loop inside it: each command runs as an ordinary
//! attempt (admitted, holding a slot, in a task), so the driver goes on renewing its lease,
//! reading requests and committing while a long undo runs. Each undone step is committed as
//! `rolled_back` before the next command starts, so a crash resumes the rollback where it
//! stopped (`rollback_started` says what it ends in). The first command that fails stops
//! the rollback: undoing more on top of a failed undo could make things worse, and an
//! operator must look.
//!
//! A point of no return (`point_of_no_return: true`) that succeeded bounds every rollback:
//! only the steps after it are undone — the steps that need it, directly or not, and every
//! step of a later phase — unless an admin asked to cross it (`past_point_of_no_return`,
//! recorded with the request and in `rollback_started`, so a rollback a crash interrupted
//! goes on under the same permission). This is the one place that decides it.

use super::Core;
use super::Work;
use crate::engine::EngineError;
use crate::engine::actions::{Outcome, Prepared};
use crate::event::{MigrationState, NewEvent, StepState};
use crate::event::{RollbackFailed, RollbackFinished, RollbackStarted, StepRolledBack};
use crate::runbook::render::Escape;
use std::collections::VecDeque;

/// Rollback output is logged as attempt 0 of the step.
pub const ROLLBACK_ATTEMPT: u32 = 0;

/// Where the migration goes once its rollback ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::engine) enum Then {
    /// `failed` (SPEC §3), ready for a retry: `on_failure: rollback`, a window's
    /// `on_close: rollback`, or `sensei rollback`.
    Fail,
    /// `cancelled`: `sensei cancel --rollback`.
    Cancel,
}

impl Then {
    pub(in crate::engine) fn as_str(self) -> &'static str {
        match self {
            Then::Fail => "fail",
            Then::Cancel => "cancel",
        }
    }

    pub(in crate::engine) fn parse(text: Option<&str>) -> Then {
        match text {
            Some("cancel") => Then::Cancel,
            _ => Then::Fail,
        }
    }
}

/// A rollback under way.
#[derive(Debug)]
pub(in crate::engine) struct Undo {
    /// Nodes still to undo, in order.
    todo: VecDeque<usize>,
    /// The node whose command runs now.
    running: Option<usize>,
    rolled_back: u32,
    /// The step whose command failed, which stopped the rollback.
    failed: Option<String>,
    then: Then,
    /// The first point of no return that bounded it, and how many steps it kept before it.
    kept: Option<(String, usize)>,
}

impl Core {
    /// Starts rolling back every succeeded step that has a `rollback` action.
    pub(in crate::engine) fn begin_rollback(&mut self, then: Then) -> Result<(), EngineError> {
        if then == Then::Fail && self.state == MigrationState::Paused {
            self.set_state(MigrationState::Running, "resumed to roll back")?;
        }
        let mut order = self.graph.topological_order();
        order.reverse();
        let undoable: Vec<usize> = order
            .into_iter()
            .filter(|&n| {
                self.graph.nodes[n].row.state == StepState::Succeeded
                    && self.graph.step(&self.runbook, n).rollback.is_some()
            })
            .collect();
        let bound = self.point_of_no_return();
        let (todo, kept): (Vec<usize>, Vec<usize>) = match &bound {
            Some((_, after)) => undoable.into_iter().partition(|&n| after[n]),
            None => (undoable, Vec::new()),
        };
        let names = |nodes: &[usize]| -> Vec<String> {
            nodes
                .iter()
                .map(|&n| self.graph.nodes[n].id.clone())
                .collect()
        };
        self.emit(NewEvent::of(RollbackStarted {
            steps: names(&todo),
            then: then.as_str().to_owned(),
            kept: names(&kept),
            past_point_of_no_return: self.past_point_of_no_return,
        }));
        self.undo = Some(Undo {
            todo: VecDeque::from(todo),
            running: None,
            rolled_back: 0,
            failed: None,
            then,
            kept: bound.map(|(point, _)| (point, kept.len())),
        });
        self.undo_next()
    }

    /// The first point of no return that succeeded (in plan order), and for each node
    /// whether it comes after one that did; `None` when none did, or when an admin allowed
    /// the rollback to cross them.
    fn point_of_no_return(&self) -> Option<(String, Vec<bool>)> {
        if self.past_point_of_no_return {
            return None;
        }
        let passed: Vec<usize> = (0..self.graph.len())
            .filter(|&n| {
                self.graph.step(&self.runbook, n).point_of_no_return
                    && self.graph.nodes[n].row.state == StepState::Succeeded
            })
            .collect();
        let first = *passed.first()?;
        // Phases run in order, so a node of a later phase than a passed point is after it
        // even with no `needs` between them; a dependent of one is after it in any case.
        let phase = |n: usize| {
            let p = self.graph.nodes[n].phase;
            crate::runbook::model::Phase::ALL
                .iter()
                .position(|&q| q == p)
        };
        let earliest = passed.iter().map(|&n| phase(n)).min().flatten();
        let mut after: Vec<bool> = (0..self.graph.len()).map(|n| phase(n) > earliest).collect();
        let mut stack: Vec<usize> = passed
            .iter()
            .flat_map(|&n| self.graph.dependents(n).iter().copied())
            .collect();
        while let Some(n) = stack.pop() {
            if !after[n] {
                after[n] = true;
                stack.extend(self.graph.dependents(n).iter().copied());
            }
        }
        Some((self.graph.nodes[first].id.clone(), after))
    }

    /// Starts the next rollback command when none runs, or ends the rollback when none is
    /// left.
    pub(in crate::engine) fn undo_next(&mut self) -> Result<(), EngineError> {
        let Some(undo) = &self.undo else {
            return Ok(());
        };
        if undo.running.is_some() {
            return Ok(());
        }
        let Some(&node) = undo.todo.front() else {
            return self.finish_rollback();
        };
        let Some(slot) = self.admit(node, Work::Undo)? else {
            return Ok(()); // no slot yet (a pool another migration holds): tried again later
        };
        if let Some(undo) = &mut self.undo {
            undo.todo.pop_front();
        }
        match self.undo_command(node) {
            Ok(command) => {
                if let Some(undo) = &mut self.undo {
                    undo.running = Some(node);
                }
                let action = Prepared::Run {
                    command,
                    env: self.env.clone(),
                    json_outputs: false,
                };
                self.queue_start(node, Work::Undo, action, slot);
                Ok(())
            }
            Err(error) => {
                self.undo_failed(node, error);
                self.finish_rollback()
            }
        }
    }

    /// A step's rollback command, rendered.
    fn undo_command(&mut self, node: usize) -> Result<String, String> {
        let step = self.graph.step(&self.runbook, node);
        let Some(command) = step.rollback.clone() else {
            return Err("the step has no rollback command".into());
        };
        if command.is_template() {
            self.focus(node);
        }
        command
            .render(&self.renderer, self.ctx.values(), Escape::Shell)
            .map_err(|e| format!("the rollback command cannot be rendered: {e}"))
    }

    /// A rollback command ended.
    pub(in crate::engine) fn undone(&mut self, node: usize, outcome: Outcome) {
        self.running.remove(&node);
        if let Some(undo) = &mut self.undo {
            undo.running = None;
        }
        match outcome {
            Outcome::Succeeded { .. } => {
                // Its work was undone: a retry starts it over, not from its checkpoint.
                self.update(node, |row| {
                    row.state = StepState::RolledBack;
                    row.checkpoint = None;
                });
                let id = self.graph.nodes[node].id.clone();
                self.emit(NewEvent::step(&id, StepRolledBack {}));
                if let Some(undo) = &mut self.undo {
                    undo.rolled_back += 1;
                }
            }
            Outcome::Failed { error, .. } => self.undo_failed(node, error),
            Outcome::Cancelled => self.undo_failed(node, "cancelled".into()),
        }
    }

    fn undo_failed(&mut self, node: usize, error: String) {
        let id = self.graph.nodes[node].id.clone();
        let error = self.masker.mask(&error).into_owned();
        self.emit(NewEvent::step(&id, RollbackFailed { error }));
        if let Some(undo) = &mut self.undo {
            undo.todo.clear();
            undo.failed = Some(id);
        }
    }

    /// Records how the rollback ended and takes the migration where it leads.
    fn finish_rollback(&mut self) -> Result<(), EngineError> {
        let Some(undo) = self.undo.take() else {
            return Ok(());
        };
        self.emit(NewEvent::of(RollbackFinished {
            ok: undo.failed.is_none(),
            rolled_back: undo.rolled_back,
            failed_step: undo.failed.clone(),
        }));
        self.stop = None;
        self.settle_waits();
        if undo.then == Then::Fail {
            self.settle_placeholders_at_rest();
        }
        match undo.then {
            Then::Fail => {
                if self.state != MigrationState::Failed {
                    let to = self.failed_state();
                    if to == MigrationState::Cancelled {
                        self.cancel_remaining(); // cancelled is final: nothing is left to run
                    }
                    let mut reason = match (&self.failure, undo.rolled_back, &undo.failed) {
                        (Some(failure), 0, None) => format!("{failure}; nothing to roll back"),
                        (Some(failure), _, None) => format!("rolled back after {failure}"),
                        (Some(failure), _, Some(step)) => {
                            format!("{failure}; rolling back stopped at {step}")
                        }
                        (None, _, _) => "rolled back".to_owned(),
                    };
                    reason.push_str(&kept_words(undo.kept.as_ref()));
                    self.set_state(to, &reason)?;
                }
            }
            Then::Cancel => {
                self.cancel_open_work();
                if self.state != MigrationState::Cancelled {
                    self.set_state_with(
                        MigrationState::Cancelled,
                        &format!(
                            "cancelled and rolled back{}",
                            kept_words(undo.kept.as_ref())
                        ),
                        |change| change.rolled_back = true,
                    )?;
                }
            }
        }
        Ok(())
    }
}

/// What a rollback kept at a point of no return, as the end of a reason: `; stopped at the
/// point of no return cutover: 3 steps kept (...)`.
fn kept_words(kept: Option<&(String, usize)>) -> String {
    match kept {
        None => String::new(),
        Some((point, 0)) => format!("; stopped at the point of no return {point}"),
        Some((point, n)) => format!(
            "; stopped at the point of no return {point}: {n} step{} kept (an admin's --past-point-of-no-return undoes them)",
            if *n == 1 { "" } else { "s" }
        ),
    }
}
