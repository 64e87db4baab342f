//! What an alert is about, in words: a one-line summary per alert name, the step it concerns
//! (for a migration that failed: the step that failed last) and that step's error.

use super::message::Source;
use crate::event::{Event, StepState};
use crate::store::StepRow;
use serde_json::Value as Json;

/// The facts every message format shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub summary: String,
    pub step: Option<String>,
    pub error: Option<String>,
}

fn text(data: &Json, key: &str) -> Option<String> {
    match data.get(key)? {
        Json::Null => None,
        Json::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn names(data: &Json, key: &str) -> String {
    match data.get(key) {
        Some(Json::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join(", "),
        _ => String::new(),
    }
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
    let data = &src.event.data;
    let alert = src.delivery.event.as_str();
    let step = subject_step(src.event, alert, src.steps);
    let row_error = || {
        let step = step.as_deref()?;
        src.steps.iter().find(|r| r.step == step)?.error.clone()
    };
    let error = text(data, "error").or_else(|| match alert {
        "failed" | "step_failed" | "step_retrying" => row_error(),
        _ => None,
    });
    let s = step.as_deref().unwrap_or("?");
    let summary = match alert {
        "created" => format!("created by {}", text(data, "by").unwrap_or_default()),
        "step_failed" => format!("step {s} failed"),
        "step_retrying" => format!(
            "step {s} failed (attempt {} of {}) and will be retried",
            text(data, "attempt").unwrap_or_else(|| "?".into()),
            text(data, "of").unwrap_or_else(|| "?".into()),
        ),
        "gate_waiting" => {
            let mut line = format!(
                "gate {s} waits for {} approval(s) from {}",
                text(data, "required").unwrap_or_else(|| "?".into()),
                names(data, "approvers"),
            );
            if let Some(starter) = text(data, "starter") {
                line.push_str(&format!(" (not {starter}, who started it)"));
            }
            line
        }
        "gate_decided" => format!(
            "gate {s}: {} by {} (gate {})",
            text(data, "decision").unwrap_or_default(),
            text(data, "who").unwrap_or_default(),
            text(data, "status").unwrap_or_default(),
        ),
        "gate_timeout_soon" => format!("gate {s} times out soon"),
        "window_closing" => format!(
            "window {} reached its cutoff; it closes at {}",
            text(data, "window").unwrap_or_default(),
            text(data, "closes").unwrap_or_default(),
        ),
        "rollback_started" => format!("rollback started: {}", names(data, "steps")),
        "rollback_finished" => match data.get("ok") {
            Some(Json::Bool(false)) => format!(
                "rollback stopped: rolling back {} failed",
                text(data, "failed_step").unwrap_or_default()
            ),
            _ => format!(
                "rollback finished: {} step(s) rolled back",
                text(data, "rolled_back").unwrap_or_else(|| "0".into())
            ),
        },
        state => {
            let mut line = format!("migration is {state}");
            if let Some(reason) = text(data, "reason") {
                line.push_str(&format!(": {reason}"));
            }
            if let Some(by) = text(data, "by") {
                line.push_str(&format!(" (by {by})"));
            }
            if state == "failed"
                && let Some(step) = &step
                && !line.contains(step.as_str())
            {
                line.push_str(&format!("; step {step} failed"));
            }
            line
        }
    };
    Facts {
        summary,
        step,
        error,
    }
}
