//! Automatic gates: a `check` with `every` is evaluated on the clock, after its `probe` runs,
//! and passes once it has held true continuously for `stable_for`. A false evaluation, or a
//! probe that fails, resets the continuity; the step's `timeout` (on the clock) fails it.
//! Each evaluation is logged, so `sensei logs` shows the lag creeping down.

use super::actions::{self, Attempt, Outcome, Prepared};
use crate::runbook::duration::Duration as Shown;
use crate::runbook::model::Text;
use crate::runbook::render::{Renderer, Values};
use crate::store::LogStream;
use serde_json::{Value as Json, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// A polling check, rendered and ready.
#[derive(Debug, Clone)]
pub struct Poll {
    pub template: Text,
    /// The step's template context; `probe.outputs` is added at each evaluation.
    pub ctx: Json,
    pub renderer: Arc<Renderer>,
    pub probe: Option<Prepared>,
    pub every: Duration,
    pub stable_for: Duration,
    pub timeout: Option<Duration>,
    /// When the attempt started (its recorded start): the timeout counts from here, not
    /// from whenever its task first runs.
    pub started: chrono::DateTime<chrono::Utc>,
}

/// The time limit of an http probe without its own `timeout`.
const HTTP_DEFAULT: Duration = Duration::from_secs(30);

fn chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or_default()
}

/// Evaluates the check until it has held for `stable_for`, the timeout passes, or the step
/// is cancelled.
pub async fn run(poll: Poll, attempt: &Attempt, cancel: watch::Receiver<bool>) -> Outcome {
    let clock = Arc::clone(&attempt.clock);
    let started = poll.started;
    let mut held_since = None;
    let mut last = String::from("not evaluated");
    loop {
        let evaluated_at = clock.now();
        if let Some(limit) = poll
            .timeout
            .filter(|&l| evaluated_at - started >= chrono(l))
        {
            return Outcome::Failed {
                error: format!(
                    "the check did not hold for {} within its timeout of {} (last evaluation: {last})",
                    Shown(poll.stable_for),
                    Shown(limit)
                ),
                exit_code: None,
                transient: false,
            };
        }
        let mut values = Values::new(poll.ctx.clone());
        let mut probe_ok = true;
        if let Some(probe) = &poll.probe {
            // A probe may run until the step's timeout; an http probe without its own
            // timeout gets 30 s, as an http step does.
            let left = poll
                .timeout
                .map(|t| t.saturating_sub((clock.now() - started).to_std().unwrap_or_default()));
            let limit = match probe {
                Prepared::Http { .. } => Some(left.map_or(HTTP_DEFAULT, |l| l.min(HTTP_DEFAULT))),
                _ => left,
            };
            // A probe is not the step's work: what it writes is no progress of the step.
            let probe_attempt = Attempt {
                timeout: limit,
                reports: None,
                ..attempt.clone()
            };
            let outcome = Box::pin(actions::perform(
                probe.clone(),
                probe_attempt,
                cancel.clone(),
            ))
            .await;
            match outcome {
                Outcome::Succeeded { outputs, .. } => {
                    if let Some(obj) = values.json_mut().as_object_mut() {
                        obj.insert(
                            "probe".into(),
                            json!({ "outputs": outputs.unwrap_or_else(|| json!({})) }),
                        );
                    }
                }
                Outcome::Failed { error, .. } => {
                    last = format!("the probe failed: {error}");
                    attempt.log(LogStream::Sensei, &last);
                    probe_ok = false;
                }
                Outcome::Cancelled => return Outcome::Cancelled,
            }
        }
        let holds = if probe_ok {
            match poll.template.render_bool(&poll.renderer, &values) {
                Ok(holds) => holds,
                Err(e) => {
                    return Outcome::Failed {
                        error: format!("check cannot be rendered: {e}"),
                        exit_code: None,
                        transient: false,
                    };
                }
            }
        } else {
            false
        };
        let now = clock.now();
        if holds {
            last = "the check held".to_owned();
            let since = *held_since.get_or_insert(now);
            let held = (now - since).to_std().unwrap_or_default();
            attempt.log(
                LogStream::Sensei,
                &format!(
                    "check holds (for {} of {})",
                    Shown(held),
                    Shown(poll.stable_for)
                ),
            );
            if held >= poll.stable_for {
                return Outcome::Succeeded {
                    outputs: Some(json!({ "held_for_ms": held.as_millis() as u64 })),
                    exit_code: None,
                };
            }
        } else {
            if probe_ok && !last.starts_with("the check cannot") {
                last = "the check did not hold".to_owned();
                attempt.log(LogStream::Sensei, &last);
            }
            held_since = None;
        }
        // Evaluations start `every` apart; one that ran long delays the next, never overlaps.
        let mut next = (evaluated_at + chrono(poll.every)).max(now);
        if let Some(limit) = poll.timeout {
            next = next.min(started + chrono(limit));
        }
        tokio::select! {
            () = clock.sleep_until(next) => {}
            () = actions::cancelled(cancel.clone()) => return Outcome::Cancelled,
        }
    }
}
