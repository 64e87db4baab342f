//! What an alert is about, in words: a one-line summary per alert name, the step it concerns
//! (for a migration that failed: the step that failed last) and that step's error.

use super::message::Source;
use crate::event::{Event, EventData, StateChanged, StepState};
use crate::store::StepRow;

/// The facts every message format shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub summary: String,
    pub step: Option<String>,
    pub error: Option<String>,
}

/// The step an alert is about: the event's, or for a migration that failed, the step that
/// failed last (whose failure caused it, if one did).
pub fn subject_step(event: &Event, alert: &str, steps: &[StepRow]) -> Option<String> {
    if event.step.is_some() || alert != "failed" {
        return event.step.clone();
    }
    steps
        .iter()
        .filter(|r| r.state == StepState::Failed)
        .max_by_key(|r| r.finished_at)
        .map(|r| r.step.clone())
}

/// The facts of a delivery's event.
pub fn facts(src: &Source<'_>) -> Facts {
    let fields = src.event.fields();
    let alert = src.delivery.event.as_str();
    let step = subject_step(src.event, alert, src.steps);
    let row_error = || {
        let step = step.as_deref()?;
        src.steps.iter().find(|r| r.step == step)?.error.clone()
    };
    let error = match &fields {
        Some(EventData::StepFailed(f)) => f.error.clone(),
        Some(EventData::StepRetrying(r)) => Some(r.error.clone()),
        _ => None,
    }
    .or_else(|| match alert {
        "failed" | "step_failed" | "step_retrying" => row_error(),
        _ => None,
    });
    let s = step.as_deref().unwrap_or("?");
    let summary = match fields {
        Some(EventData::MigrationCreated(c)) => format!("created by {}", c.by),
        Some(EventData::StepFailed(_)) => format!("step {s} failed"),
        Some(EventData::StepRetrying(r)) => format!(
            "step {s} failed (attempt {} of {}) and will be retried",
            r.attempt, r.of
        ),
        Some(EventData::GateWaiting(g)) => {
            let mut line = format!(
                "gate {s} waits for {} approval(s) from {}",
                g.required,
                g.approvers.join(", "),
            );
            if !g.starter.is_empty() {
                line.push_str(&format!(" (not {}, who started it)", g.starter));
            }
            line
        }
        Some(EventData::GateDecided(d)) => {
            format!("gate {s}: {} by {} (gate {})", d.decision, d.who, d.status,)
        }
        Some(EventData::GateTimeoutSoon(_)) => format!("gate {s} times out soon"),
        Some(EventData::WindowClosing(w)) => format!(
            "window {} reached its cutoff; it closes at {}",
            w.window, w.closes,
        ),
        Some(EventData::RollbackStarted(r)) => {
            format!("rollback started: {}", r.steps.join(", "))
        }
        Some(EventData::RollbackFinished(r)) if !r.ok => format!(
            "rollback stopped: rolling back {} failed",
            r.failed_step.unwrap_or_default()
        ),
        Some(EventData::RollbackFinished(r)) => {
            format!("rollback finished: {} step(s) rolled back", r.rolled_back)
        }
        Some(EventData::StateChanged(change)) => state_line(alert, &change, step.as_deref()),
        _ => format!("migration is {alert}"),
    };
    Facts {
        summary,
        step,
        error,
    }
}

/// The summary of a state change: the state, why, and who caused it.
fn state_line(state: &str, change: &StateChanged, step: Option<&str>) -> String {
    let mut line = format!("migration is {state}");
    if !change.reason.is_empty() {
        line.push_str(&format!(": {}", change.reason));
    }
    if let Some(by) = &change.by {
        line.push_str(&format!(" (by {by})"));
    }
    if state == "failed"
        && let Some(step) = step
        && !line.contains(step)
    {
        line.push_str(&format!("; step {step} failed"));
    }
    line
}
