//! Live progress of a driven migration: one plain line per event that matters to the person
//! at the terminal, and on a terminal a progress bar below them (steps done of all, and the
//! migration's state). When output goes to a file or a CI log, only the lines.

use crate::engine::Observer;
use crate::event::{Event, EventKind, MigrationId};
use serde_json::Value as Json;
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

fn field<'a>(event: &'a Event, name: &str) -> &'a Json {
    event.data.get(name).unwrap_or(&Json::Null)
}

fn text(value: &Json) -> String {
    match value {
        Json::String(s) => s.clone(),
        Json::Null => String::new(),
        other => other.to_string(),
    }
}

fn list(value: &Json) -> String {
    match value {
        Json::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(", "),
        other => text(other),
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
        Some(match event.kind {
            EventKind::StateChanged => format!(
                "● {}  ({})",
                text(field(event, "to")),
                text(field(event, "reason"))
            ),
            EventKind::StepStarted => match field(event, "attempt").as_u64() {
                Some(n) if n > 1 => format!("  ▶ {step} (attempt {n})"),
                _ => format!("  ▶ {step}"),
            },
            EventKind::StepSucceeded => match field(event, "duration_ms").as_i64() {
                Some(ms) => format!("  ✓ {step}  {}", short_duration(ms)),
                None => format!("  ✓ {step}"),
            },
            EventKind::StepFailed => format!("  ✗ {step}: {}", text(field(event, "error"))),
            EventKind::StepRetrying => format!(
                "  ↻ {step}: {}; attempt {} of {} in {}",
                text(field(event, "error")),
                field(event, "attempt").as_u64().unwrap_or(0) + 1,
                text(field(event, "of")),
                short_duration(field(event, "delay_ms").as_i64().unwrap_or(0))
            ),
            EventKind::StepSkipped => {
                format!("  - {step} skipped ({})", text(field(event, "reason")))
            }
            EventKind::StepCancelled => format!("  ■ {step} cancelled"),
            EventKind::StepInterrupted if field(event, "rerun") == &Json::Bool(true) => {
                format!(
                    "  ! {step} was running when its driver stopped; it is idempotent and runs again"
                )
            }
            EventKind::StepInterrupted => format!(
                "  ! {step} was running when its driver stopped and is not idempotent; decide with `sensei resume {} --retry-interrupted` or `--skip-interrupted`",
                self.id
            ),
            EventKind::StepExpanded => {
                format!("  ⑃ {step} expands to {}", list(field(event, "steps")))
            }
            EventKind::GateWaiting => {
                let approvers = list(field(event, "approvers"));
                let who = if approvers.is_empty() {
                    format!("anyone but {}", text(field(event, "starter")))
                } else {
                    format!("{approvers} (not {})", text(field(event, "starter")))
                };
                format!(
                    "  ⏸ gate {step} waits for {} approval(s) from {who}:\n      sensei approve {} {step} --as NAME [--comment TEXT]",
                    text(field(event, "required")),
                    self.id
                )
            }
            EventKind::GateDecided if field(event, "decision") == "timeout" => format!(
                "  ⚑ gate {step} timed out without a decision; on_timeout: {}",
                text(field(event, "on_timeout"))
            ),
            EventKind::GateDecided => format!(
                "  ⚑ gate {step}: {} by {}{}",
                text(field(event, "decision")),
                text(field(event, "who")),
                match field(event, "comment") {
                    Json::String(c) => format!(" — {c}"),
                    _ => String::new(),
                }
            ),
            EventKind::GateTimeoutSoon => format!(
                "  ⏳ gate {step} times out at {} ({} of {} approvals so far)",
                text(field(event, "deadline")),
                list(field(event, "approvals"))
                    .split(", ")
                    .filter(|s| !s.is_empty())
                    .count(),
                text(field(event, "required"))
            ),
            EventKind::RollbackStarted => {
                format!("↶ rolling back: {}", list(field(event, "steps")))
            }
            EventKind::StepRolledBack => format!("  ↶ {step} rolled back"),
            EventKind::RollbackFailed => format!(
                "  ✗ rollback of {step} failed: {}",
                text(field(event, "error"))
            ),
            EventKind::RollbackFinished => format!(
                "↶ rollback finished: {} step(s) rolled back{}",
                text(field(event, "rolled_back")),
                match field(event, "failed_step") {
                    Json::String(s) => format!(", stopped at {s}"),
                    _ => String::new(),
                }
            ),
            EventKind::WindowClosing => format!(
                "⏰ window {} reaches its cutoff: no new bound step starts; it closes {}",
                text(field(event, "window")),
                text(field(event, "closes"))
            ),
            EventKind::WindowClosed => format!(
                "⏰ window {} closed with bound work left (on_close: {})",
                text(field(event, "window")),
                text(field(event, "on_close"))
            ),
            EventKind::StepWaiting => format!("  … {step}: {}", text(field(event, "reason"))),
            EventKind::OperatorRequest => format!(
                "  ⚑ {} requested by {}",
                text(field(event, "op")),
                text(field(event, "by"))
            ),
            EventKind::MigrationCreated | EventKind::DriverAttached => {
                return None;
            }
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
                    field(event, "steps")
                        .as_array()
                        .map_or(0, |s| s.len() as u64),
                ),
                EventKind::StateChanged => bar.set_message(text(field(event, "to"))),
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
