//! A round's decisions: what the migration's state becomes next (a phase that starts or
//! ends), which steps start, what a stop leads to once in-flight work ends, and how a
//! dynamic fan-out's placeholder settles with its parts.

use super::Core;
use crate::engine::EngineError;
use crate::engine::lifecycle::{phase_of_state, state_after_phase};
use crate::event::{EventData, MigrationState, NewEvent, StepFailed, StepState, StepSucceeded};
use crate::runbook::model::Phase;

impl Core {
    /// Steps remain but none can start (an interrupted step waits for an operator).
    pub(super) fn stalled(&self) -> bool {
        phase_of_state(self.state).is_some_and(|p| {
            self.graph.phase_stuck(p)
                && self
                    .graph
                    .of_phase(p)
                    .any(|i| self.graph.nodes[i].row.state == StepState::Interrupted)
        })
    }

    /// Decides what changes next: phase transitions, steps to start, what a stop leads to.
    pub(in crate::engine) fn advance(&mut self) -> Result<(), EngineError> {
        if self.draining {
            return Ok(()); // finishing what runs; the next driver takes it from here
        }
        self.settle_placeholders();
        if self.undo.is_some() {
            return self.undo_next();
        }
        if let Some(stop) = self.stop {
            if self.running.is_empty() {
                self.conclude(stop)?;
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
            if self.stop.is_none() && self.running.is_empty() && self.graph.phase_stuck(phase) {
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
    pub(in crate::engine) fn settle_placeholders_at_rest(&mut self) {
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
            let now = self.now;
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
}
