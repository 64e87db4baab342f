//! Live progress of a driven migration: one plain line per event that matters to the person
//! at the terminal, and on a terminal a progress bar below them (steps done of all, and the
//! migration's state). When output goes to a file or a CI log, only the lines.
//!
//! A step that reports progress gets a line each time it passes another tenth (at most 11),
//! with the time it and the migration have left when they can be estimated (see
//! [`crate::eta`]); the bar's message follows every `step_progress` event.

use crate::engine::Observer;
use crate::eta::{self, Eta};
use crate::event::{Event, EventData, EventKind, MigrationId, StateChanged, StepExpanded};
use crate::store::{Reported, StepRow};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::io::Write;

/// Estimates the migration's and its running steps' times to finish, now.
pub type Estimator = Box<dyn FnMut() -> eta::Estimate + Send>;

pub struct Lines {
    id: MigrationId,
    bar: Option<indicatif::ProgressBar>,
    /// When each running step's attempt started (from its `step_started` event).
    started: HashMap<String, DateTime<Utc>>,
    /// The tenth of each step's progress last printed.
    tenths: HashMap<String, u8>,
    estimator: Option<Estimator>,
    /// The migration's state, the bar's message when no step reports progress.
    state: String,
}

impl std::fmt::Debug for Lines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lines")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Lines {
    /// Progress of a migration with `steps` steps; a bar only when stdout is a terminal.
    pub fn new(id: MigrationId, steps: usize, done: usize) -> Lines {
        use std::io::IsTerminal as _;
        let bar = std::io::stdout().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(steps as u64);
            let style =
                indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} steps  {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
            bar.set_style(style);
            bar.set_position(done as u64);
            bar
        });
        Lines {
            id,
            bar,
            started: HashMap::new(),
            tenths: HashMap::new(),
            estimator: None,
            state: String::new(),
        }
    }

    /// Where other parts of the command print a line to stderr without tearing the bar.
    pub fn notices(&self) -> Notices {
        Notices(self.bar.clone())
    }

    /// Says with progress lines how long the migration has left, as `estimator` tells.
    pub fn with_estimator(mut self, estimator: Estimator) -> Lines {
        self.estimator = Some(estimator);
        self
    }

    /// The step's progress as a line, when it passed another tenth; the bar's message.
    fn progress(&mut self, event: &Event, p: &crate::event::StepProgress) -> Option<String> {
        let step = event.step.clone().unwrap_or_default();
        let progress = crate::event::Progress {
            done: p.done,
            total: p.total,
        };
        // From the event alone, for the bar: cheap enough for every event.
        let mut row = StepRow::new(&step, crate::event::StepState::Running);
        row.started_at = self.started.get(&step).copied();
        row.progress = Some(Reported {
            progress,
            at: event.at,
        });
        let quick = eta::running(&row, None, event.at);
        if let Some(bar) = &self.bar {
            bar.set_message(format!("{step} {}% ({})", progress.percent(), left(&quick)));
        }
        let tenth = progress.percent() / 10;
        if self.tenths.insert(step.clone(), tenth) == Some(tenth) {
            return None;
        }
        // For a line: the store's estimates, so the step's and the migration's agree.
        let estimate = self.estimator.as_mut().map(|estimate| estimate());
        let own = estimate
            .as_ref()
            .and_then(|e| e.step(&step).cloned())
            .unwrap_or(quick);
        let whole = match estimate.map(|e| e.migration) {
            Some(Eta::Known { remaining, .. }) => format!(
                "; the migration about {} left",
                short_duration(remaining.num_milliseconds())
            ),
            _ => String::new(),
        };
        Some(format!(
            "  ⋯ {step} {}% ({}/{}), {}{whole}",
            progress.percent(),
            p.done,
            p.total,
            if progress.complete() {
                "done".to_owned()
            } else {
                left(&own)
            }
        ))
    }
}

/// A step's time left in words.
fn left(eta: &Eta) -> String {
    match eta.remaining() {
        Some(left) => format!("about {} left", short_duration(left.num_milliseconds())),
        None => "time left unknown".to_owned(),
    }
}

/// Prints notices (to stderr) around the progress bar, if there is one.
#[derive(Debug, Clone)]
pub struct Notices(Option<indicatif::ProgressBar>);

impl Notices {
    pub fn say(&self, line: &str) {
        match &self.0 {
            Some(bar) => bar.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// A duration in milliseconds, short: `850ms`, `12.4s`, `3m05s`.
pub fn short_duration(ms: i64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60)
    }
}

impl Lines {
    fn line(&self, event: &Event) -> Option<String> {
        let step = event.step.as_deref().unwrap_or("");
        Some(match event.fields()? {
            EventData::StateChanged(c) => format!("● {}  ({})", c.to, c.reason),
            EventData::StepStarted(s) => {
                // A retried migration counts its steps' attempts from 1 again: the
                // checkpoint is named whatever the attempt.
                let mut notes = Vec::new();
                if s.attempt > 1 {
                    notes.push(format!("attempt {}", s.attempt));
                }
                if let Some(c) = &s.checkpoint {
                    let c = crate::event::Checkpoint::shown(c, 60);
                    notes.push(format!("from checkpoint {c:?}"));
                }
                if notes.is_empty() {
                    format!("  ▶ {step}")
                } else {
                    format!("  ▶ {step} ({})", notes.join(", "))
                }
            }
            EventData::StepSucceeded(s) => match s.duration_ms.flatten() {
                Some(ms) => format!("  ✓ {step}  {}", short_duration(ms)),
                None => format!("  ✓ {step}"),
            },
            EventData::StepFailed(f) => {
                format!("  ✗ {step}: {}", f.error.unwrap_or_default())
            }
            EventData::StepRetrying(r) => format!(
                "  ↻ {step}: {}; attempt {} of {} in {}",
                r.error,
                r.attempt + 1,
                r.of,
                short_duration(i64::try_from(r.delay_ms).unwrap_or(i64::MAX))
            ),
            EventData::StepSkipped(s) => format!("  - {step} skipped ({})", s.reason),
            EventData::StepCancelled(_) => format!("  ■ {step} cancelled"),
            EventData::StepInterrupted(i) if i.rerun => format!(
                "  ! {step} was running when its driver stopped; it is idempotent and runs again"
            ),
            EventData::StepInterrupted(_) => format!(
                "  ! {step} was running when its driver stopped and is not idempotent; decide with `sensei resume {} --retry-interrupted` or `--skip-interrupted`",
                self.id
            ),
            EventData::StepExpanded(e) => {
                format!("  ⑃ {step} expands to {}", e.steps.join(", "))
            }
            EventData::GateWaiting(g) => {
                let approvers = g.approvers.join(", ");
                let who = if approvers.is_empty() {
                    format!("anyone but {}", g.starter)
                } else {
                    format!("{approvers} (not {})", g.starter)
                };
                format!(
                    "  ⏸ gate {step} waits for {} approval(s) from {who}:\n      sensei approve {} {step} --as NAME [--comment TEXT]",
                    g.required, self.id
                )
            }
            EventData::GateDecided(d) if d.decision == "timeout" => format!(
                "  ⚑ gate {step} timed out without a decision; on_timeout: {}",
                d.on_timeout.unwrap_or_default()
            ),
            EventData::GateDecided(d) => format!(
                "  ⚑ gate {step}: {} by {}{}",
                d.decision,
                d.who,
                match d.comment.flatten() {
                    Some(c) => format!(" — {c}"),
                    None => String::new(),
                }
            ),
            EventData::GateTimeoutSoon(t) => format!(
                "  ⏳ gate {step} times out at {} ({} of {} approvals so far)",
                t.deadline,
                t.approvals.len(),
                t.required
            ),
            EventData::RollbackStarted(r) if r.steps.is_empty() && r.kept.is_empty() => {
                "↶ nothing to roll back: no step that succeeded has a rollback".to_owned()
            }
            EventData::RollbackStarted(r) => {
                let mut line = if r.steps.is_empty() {
                    "↶ nothing to roll back after the point of no return".to_owned()
                } else {
                    format!("↶ rolling back: {}", r.steps.join(", "))
                };
                if !r.kept.is_empty() {
                    line.push_str(&format!(
                        "\n  ⛔ kept, before a point of no return that succeeded: {} (`sensei rollback --past-point-of-no-return` undoes them)",
                        r.kept.join(", ")
                    ));
                }
                line
            }
            EventData::RollbackFinished(r) if r.ok && r.rolled_back == 0 => return None,
            EventData::StepRolledBack(_) => format!("  ↶ {step} rolled back"),
            EventData::RollbackFailed(f) => {
                format!("  ✗ rollback of {step} failed: {}", f.error)
            }
            EventData::RollbackFinished(r) => format!(
                "↶ rollback finished: {} step(s) rolled back{}",
                r.rolled_back,
                match r.failed_step {
                    Some(s) => format!(", stopped at {s}"),
                    None => String::new(),
                }
            ),
            EventData::WindowClosing(w) => format!(
                "⏰ window {} reaches its cutoff: no new bound step starts; it closes {}",
                w.window, w.closes
            ),
            EventData::WindowClosed(w) => format!(
                "⏰ window {} closed with bound work left (on_close: {})",
                w.window, w.on_close
            ),
            EventData::StepWaiting(w) => format!("  … {step}: {}", w.reason),
            EventData::OperatorRequest(r) => format!("  ⚑ {} requested by {}", r.op, r.by),
            // Said by `progress`, only as it passes each tenth.
            EventData::StepProgress(_) => return None,
            EventData::MigrationCreated(_) | EventData::DriverAttached(_) => return None,
        })
    }
}

impl Observer for Lines {
    fn event(&mut self, event: &Event) {
        if let Some(bar) = &self.bar {
            match event.kind {
                EventKind::StepSucceeded
                | EventKind::StepSkipped
                | EventKind::StepFailed
                | EventKind::StepCancelled => {
                    bar.inc(1);
                    bar.set_message(self.state.clone());
                }
                EventKind::StepExpanded => bar.inc_length(
                    event
                        .read::<StepExpanded>()
                        .map_or(0, |e| e.steps.len() as u64),
                ),
                EventKind::StateChanged => {
                    if let Some(change) = event.read::<StateChanged>() {
                        self.state = change.to.as_str().to_owned();
                        bar.set_message(self.state.clone());
                    }
                }
                _ => {}
            }
        }
        if event.kind == EventKind::StepStarted
            && let Some(step) = &event.step
        {
            self.started.insert(step.clone(), event.at);
            self.tenths.remove(step);
        }
        let line = match event.read::<crate::event::StepProgress>() {
            Some(p) => self.progress(event, &p),
            None => self.line(event),
        };
        let Some(line) = line else { return };
        match &self.bar {
            Some(bar) => bar.suspend(|| {
                let _ = writeln!(std::io::stdout().lock(), "{line}");
            }),
            None => {
                let _ = writeln!(std::io::stdout().lock(), "{line}");
            }
        }
    }
}
