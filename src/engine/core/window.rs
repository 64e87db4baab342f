//! Cutover windows in the core (SPEC §2 `windows`, issue 4): a step bound to a window starts
//! only while the window is open, before its cutoff, and when its estimate (or the median of
//! its earlier runs) fits before the window closes; otherwise it waits with the reason in its
//! row. When an occurrence the migration was using reaches its cutoff with bound work left,
//! `window_closing` is recorded; when it closes, `on_close` decides: pause (and resume by
//! itself at the next opening), roll back, or fail. Running steps are never killed by a close.

use super::{Core, Stop};
use crate::calendar::{self, WindowState};
use crate::engine::EngineError;
use crate::event::{MigrationState, NewEvent, StepState};
use crate::event::{StepWaiting, WindowClosed, WindowClosing};
use crate::runbook::model::{OnClose, Phase};
use chrono::{DateTime, Utc};
use std::time::Duration;

/// An occurrence of a window that bound steps of this migration started in.
#[derive(Debug, Clone, PartialEq)]
pub(in crate::engine) struct InUse {
    pub last_start: DateTime<Utc>,
    pub closes: DateTime<Utc>,
    pub closing_sent: bool,
}

/// How many earlier runs the observed-duration estimate looks at.
const HISTORY: u32 = 20;

impl Core {
    /// Whether a node may start now as far as its window goes; if not, it waits with the
    /// reason in its row and a wake-up at the window's next change.
    pub(in crate::engine) fn window_allows(&mut self, node: usize) -> bool {
        let step = self.graph.step(&self.runbook, node);
        let Some(window) = step
            .window
            .as_ref()
            .and_then(|w| self.runbook.window(w))
            .cloned()
        else {
            return true;
        };
        let now = self.now;
        let state = calendar::window_state(&window, now);
        let estimate = step
            .estimate
            .map(|e| e.as_std())
            .or_else(|| self.observed(node));
        if calendar::fits(&state, now, estimate) {
            if let WindowState::Open {
                last_start, closes, ..
            } = state
            {
                self.windows_in_use
                    .entry(window.name.clone())
                    .or_insert(InUse {
                        last_start,
                        closes,
                        closing_sent: false,
                    });
            }
            return true;
        }
        let (reason, wake) = match &state {
            WindowState::Open { closes, .. } => (
                format!(
                    "window {} is open, but the estimate ({}) does not fit before it closes; {}",
                    window.name,
                    estimate
                        .map(|e| calendar::humanize(
                            chrono::Duration::from_std(e).unwrap_or_default()
                        ))
                        .unwrap_or_default(),
                    calendar::waiting_reason(
                        &window,
                        &calendar::window_state(&window, *closes),
                        now
                    )
                ),
                *closes,
            ),
            WindowState::Cutoff { next_opens, .. } | WindowState::Closed { next_opens } => {
                (calendar::waiting_reason(&window, &state, now), *next_opens)
            }
        };
        self.window_waiting.insert(node, wake);
        let stale = self.graph.nodes[node].row.reason.as_deref() != Some(reason.as_str());
        if self.graph.nodes[node].row.state != StepState::Waiting || stale {
            let id = self.graph.nodes[node].id.clone();
            self.update(node, |row| {
                row.state = StepState::Waiting;
                row.reason = Some(reason.clone());
            });
            self.emit(NewEvent::step(
                &id,
                StepWaiting {
                    window: window.name.clone(),
                    reason: reason.clone(),
                },
            ));
        }
        false
    }

    /// The median duration of this step's earlier successful runs of the same runbook.
    fn observed(&self, node: usize) -> Option<Duration> {
        let step = &self.graph.step(&self.runbook, node).id;
        let mut runs = self
            .shared
            .step_durations(&self.runbook.name, step, HISTORY);
        if runs.is_empty() {
            return None;
        }
        runs.sort();
        runs[runs.len() / 2].to_std().ok()
    }

    /// An approved migration starts running when an execute step can start: while only
    /// window-bound steps remain and their window is closed, it stays approved (SPEC §3).
    pub(in crate::engine) fn execute_can_start(&mut self) -> bool {
        let mut candidates: Vec<usize> = self.graph.ready(Phase::Execute).collect();
        candidates.extend(self.window_waiting.keys().copied());
        if self.graph.of_phase(Phase::Execute).next().is_none() {
            return true;
        }
        let mut any = false;
        for node in candidates {
            if self.window_allows(node) {
                any = true;
            }
        }
        any || self.graph.phase_done(Phase::Execute)
    }

    /// Nodes waiting for their window whose wake-up time has come: try them again.
    pub(in crate::engine) fn window_waiters_due(&self) -> Vec<usize> {
        let now = self.now;
        self.window_waiting
            .iter()
            .filter(|(_, wake)| **wake <= now)
            .map(|(&n, _)| n)
            .collect()
    }

    /// Bound work of a window that has not started yet.
    fn bound_work_left(&self, window: &str) -> bool {
        (0..self.graph.len()).any(|i| {
            let n = &self.graph.nodes[i];
            self.graph.step(&self.runbook, i).window.as_deref() == Some(window)
                && matches!(n.row.state, StepState::Pending | StepState::Waiting)
        })
    }

    /// Cutoffs and closes of the occurrences in use: `window_closing`, then `on_close`.
    pub(in crate::engine) fn window_deadlines(&mut self) -> Result<(), EngineError> {
        let now = self.now;
        let names: Vec<String> = self.windows_in_use.keys().cloned().collect();
        for name in names {
            let Some(use_) = self.windows_in_use.get(&name).cloned() else {
                continue;
            };
            let left = self.bound_work_left(&name);
            if now >= use_.last_start && !use_.closing_sent && left {
                self.emit(NewEvent::of(WindowClosing {
                    window: name.clone(),
                    closes: use_.closes.to_rfc3339(),
                }));
                if let Some(u) = self.windows_in_use.get_mut(&name) {
                    u.closing_sent = true;
                }
            }
            if now < use_.closes {
                continue;
            }
            self.windows_in_use.remove(&name);
            if !left || self.stop.is_some() || self.state != MigrationState::Running {
                continue;
            }
            self.window_closed(&name)?;
        }
        let resume = self.window_pause.is_some_and(|at| now >= at);
        if resume && self.state == MigrationState::Paused && self.stop.is_none() {
            self.window_pause = None;
            self.actor = Some("window".into());
            self.set_state(MigrationState::Running, "the window opened again")?;
        }
        Ok(())
    }

    fn window_closed(&mut self, name: &str) -> Result<(), EngineError> {
        let Some(window) = self.runbook.window(name).cloned() else {
            return Ok(());
        };
        let now = self.now;
        let next = match calendar::window_state(&window, now) {
            WindowState::Closed { next_opens } | WindowState::Cutoff { next_opens, .. } => {
                Some(next_opens)
            }
            WindowState::Open { opened, .. } => Some(opened),
        };
        self.emit(NewEvent::of(WindowClosed {
            window: name.to_owned(),
            on_close: window.on_close.as_str().to_owned(),
            next_opens: next.map(|t| t.to_rfc3339()),
        }));
        self.actor = Some("window".into());
        match window.on_close {
            OnClose::Pause => {
                let reason = format!(
                    "window {name} closed with bound work left; resumes when it opens again"
                );
                self.set_state(MigrationState::Paused, &reason)?;
                self.window_pause = next;
            }
            OnClose::Rollback => self.stop = Some(Stop::Rollback),
            OnClose::Fail => self.stop = Some(Stop::Fail),
        }
        Ok(())
    }

    /// The earliest time something window-related happens next.
    pub(in crate::engine) fn next_window_wake(&self) -> Option<DateTime<Utc>> {
        let waiting = self.window_waiting.values().copied();
        let in_use = self
            .windows_in_use
            .values()
            .flat_map(|u| [(!u.closing_sent).then_some(u.last_start), Some(u.closes)])
            .flatten();
        waiting.chain(in_use).chain(self.window_pause).min()
    }
}
