//! A migration's time left: every unfinished step's remaining duration, combined as
//! `max(critical path, total / concurrency)` (see the module documentation of [`super`]).

use super::{Eta, Expected, Inputs, Kind, base};
use crate::event::{MigrationState, StepState};
use crate::runbook::model::Phase;
use crate::store::StepRow;
use chrono::Duration;
use std::collections::HashMap;

/// How long the migration has left, or why that is not known.
pub(super) fn whole(
    state: MigrationState,
    rows: &[StepRow],
    inputs: &Inputs,
    expected: &Expected,
    steps: &HashMap<String, Eta>,
) -> Result<Duration, String> {
    use MigrationState as M;
    match state {
        M::Created => return Err("it has not started".into()),
        M::AwaitingApproval => return Err("it waits for approval".into()),
        M::Paused | M::Failed => {
            return Err(format!(
                "it is {state}: nothing runs until an operator acts"
            ));
        }
        M::Certified | M::Cancelled => return Err(format!("it is {state}")),
        _ => {}
    }
    if let Some(why) = &inputs.unloadable {
        return Err(why.clone());
    }
    let mut left: HashMap<&str, Vec<Duration>> = HashMap::new();
    for row in rows {
        let d = remaining(row, rows, inputs, expected, steps)?;
        left.entry(base(&row.step)).or_default().push(d);
    }
    let total: Duration = left.values().flatten().copied().sum();
    let spread = total / i32::try_from(inputs.concurrency.max(1)).unwrap_or(i32::MAX);
    Ok(critical_path(&left, inputs).max(spread))
}

/// How long a step has left: nothing once finished.
fn remaining(
    row: &StepRow,
    rows: &[StepRow],
    inputs: &Inputs,
    expected: &Expected,
    steps: &HashMap<String, Eta>,
) -> Result<Duration, String> {
    let id = &row.step;
    let shape = inputs.shapes.get(base(id));
    let placeholder = id.ends_with("[*]");
    match row.state {
        s if s.is_settled() => return Ok(Duration::zero()),
        StepState::Running => {
            return match steps.get(id) {
                Some(Eta::Known { remaining, .. }) => Ok(*remaining),
                Some(Eta::Unknown(why)) => {
                    Err(format!("step {id} runs, and its end is unknown: {why}"))
                }
                None => Err(format!("step {id} runs with no estimate")),
            };
        }
        StepState::Interrupted => {
            return Err(format!(
                "step {id} was interrupted and waits for an operator"
            ));
        }
        // A fan-out's placeholder waits on its parts, which carry the work.
        StepState::Waiting if placeholder => return Ok(Duration::zero()),
        _ => {}
    }
    let Some(shape) = shape else {
        return Err(format!("step {id} is not in the runbook"));
    };
    if placeholder {
        let expanded = rows
            .iter()
            .any(|r| base(&r.step) == base(id) && r.step != *id);
        return if expanded {
            Ok(Duration::zero())
        } else {
            Err(format!(
                "the fan-out {id} is not expanded yet: how many parts it has is not known"
            ))
        };
    }
    match &shape.kind {
        Kind::Gate => return Err(format!("gate {id} is still to be decided")),
        Kind::Wait(d) => return Ok(*d),
        Kind::Instant => return Ok(Duration::zero()),
        Kind::Work => {}
    }
    if let Some(window) = &shape.window {
        return Err(format!(
            "step {id} is bound to window {window}, which is not modelled"
        ));
    }
    expected
        .get(id)
        .or(shape.estimate)
        .ok_or_else(|| format!("step {id} has no earlier run or `estimate` to go by"))
}

/// The longest chain of remaining durations through `needs`, each phase starting when the
/// earlier ones are done; a step's parts run side by side (the longest counts).
fn critical_path(left: &HashMap<&str, Vec<Duration>>, inputs: &Inputs) -> Duration {
    let own = |step: &str| {
        left.get(step)
            .and_then(|ds| ds.iter().max().copied())
            .unwrap_or_default()
    };
    let mut ends: HashMap<String, Duration> = HashMap::new();
    let mut barrier = Duration::zero();
    let mut longest = Duration::zero();
    for phase in Phase::ALL {
        let mut phase_end = barrier;
        let mut steps: Vec<&String> = inputs
            .shapes
            .iter()
            .filter(|(_, s)| s.phase == phase)
            .map(|(id, _)| id)
            .collect();
        steps.sort();
        for step in steps {
            let end = end_of(step, barrier, &own, inputs, &mut ends);
            phase_end = phase_end.max(end);
        }
        barrier = phase_end;
        longest = longest.max(phase_end);
    }
    // Rows of steps the runbook does not name (none in a checked one) run on their own.
    left.keys()
        .filter(|s| !inputs.shapes.contains_key(**s))
        .map(|s| own(s))
        .fold(longest, Duration::max)
}

/// When `step` ends on the critical path: after its needs (and its phase's start).
fn end_of(
    step: &str,
    barrier: Duration,
    own: &impl Fn(&str) -> Duration,
    inputs: &Inputs,
    ends: &mut HashMap<String, Duration>,
) -> Duration {
    if let Some(end) = ends.get(step) {
        return *end;
    }
    let mut start = barrier;
    if let Some(shape) = inputs.shapes.get(step) {
        for need in &shape.needs {
            // A checked runbook has no cycles; a need of an earlier phase ended by `barrier`.
            if inputs
                .shapes
                .get(need)
                .is_some_and(|n| n.phase == shape.phase)
            {
                start = start.max(end_of(need, barrier, own, inputs, ends));
            }
        }
    }
    let end = start + own(step);
    ends.insert(step.to_owned(), end);
    end
}
