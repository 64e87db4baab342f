//! Live progress of a driven migration: one plain line per event that matters to the person
//! at the terminal, and on a terminal a progress bar below them (steps done of all, and the
//! migration's state). When output goes to a file or a CI log, only the lines.

use crate::engine::Observer;
use crate::event::{Event, EventData, EventKind, MigrationId, StateChanged, StepExpanded};
use std::io::Write;

#[derive(Debug)]
pub struct Lines {
    id: MigrationId,
    bar: Option<indicatif::ProgressBar>,
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
        Lines { id, bar }
    }

    /// Where other parts of the command print a line to stderr without tearing the bar.
    pub fn notices(&self) -> Notices {
        Notices(self.bar.clone())
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
            EventData::StepStarted(s) if s.attempt > 1 => {
                format!("  ▶ {step} (attempt {})", s.attempt)
            }
            EventData::StepStarted(_) => format!("  ▶ {step}"),
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
                | EventKind::StepCancelled => bar.inc(1),
                EventKind::StepExpanded => bar.inc_length(
                    event
                        .read::<StepExpanded>()
                        .map_or(0, |e| e.steps.len() as u64),
                ),
                EventKind::StateChanged => {
                    if let Some(change) = event.read::<StateChanged>() {
                        bar.set_message(change.to.as_str());
                    }
                }
                _ => {}
            }
        }
        let Some(line) = self.line(event) else { return };
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
