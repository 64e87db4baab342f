//! Estimated times to finish, for running steps and for a migration, as `status`, the API,
//! metrics and the console show them. Unknown is said as unknown, with the reason: an
//! estimate is never made up.
//!
//! A running step:
//! - from its progress, when it reported `progress=DONE/TOTAL` with `0 < DONE`: the rate so
//!   far (DONE units in the time from its start to the report) carries on for the rest, so it
//!   finishes at `at + (TOTAL - DONE) * (at - started) / DONE`;
//! - else from earlier runs: it finishes at `started + the median duration` of the same step
//!   in the last [`HISTORY`] migrations of the runbook (a fan-out part without runs of its
//!   own goes by its step's other parts, this migration's included);
//! - unknown otherwise, and once the time it should have finished by has passed.
//!
//! A migration, while it is being driven (not `created`, `awaiting_approval`, `paused`,
//! `failed` or ended): every step that is not finished gets a remaining duration (a running
//! one its own estimate, a pending one its expected duration: earlier runs, else its
//! `estimate`; a `wait` its duration, a plain `check` none), and the migration needs
//! `max(critical path, total / concurrency)`: the longest chain through `needs`, phases in
//! order, and the work spread over `concurrency` slots. It is unknown while a step has no
//! expected duration, a gate is still to be decided, a step waits for its window (windows
//! and pools are not modelled), or a fan-out over step outputs is not expanded yet.
//!
//! [`Estimate::of`] gathers what it needs (the runbook's shape from its stored text, one
//! query of earlier runs); [`estimate`] is the arithmetic, without I/O.

use crate::event::{MigrationState, StepState};
use crate::runbook::model::{Action, Phase, Runbook};
use crate::store::{Migration, StepRow, Store};
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value as Json, json};
use std::collections::HashMap;

/// How many earlier migrations of a runbook an estimate looks back on.
pub const HISTORY: u32 = 10;

/// What a known estimate went by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// The step's own progress reports.
    Progress,
    /// Durations of earlier runs (or the step's `estimate`).
    History,
}

impl Basis {
    pub fn as_str(self) -> &'static str {
        match self {
            Basis::Progress => "progress",
            Basis::History => "history",
        }
    }
}

/// When something is expected to finish, or why that is not known.
#[derive(Debug, Clone, PartialEq)]
pub enum Eta {
    Known {
        finishes_at: DateTime<Utc>,
        /// From now; never negative.
        remaining: Duration,
        /// A step's; none for a migration's, which combines its steps'.
        basis: Option<Basis>,
    },
    Unknown(String),
}

impl Eta {
    fn known(finishes_at: DateTime<Utc>, now: DateTime<Utc>, basis: Option<Basis>) -> Eta {
        Eta::Known {
            finishes_at,
            remaining: (finishes_at - now).max(Duration::zero()),
            basis,
        }
    }

    pub fn remaining(&self) -> Option<Duration> {
        match self {
            Eta::Known { remaining, .. } => Some(*remaining),
            Eta::Unknown(_) => None,
        }
    }

    /// `{finishes_at, remaining_ms, basis}` (a migration's without `basis`), or
    /// `{unknown: why}`.
    pub fn to_json(&self) -> Json {
        match self {
            Eta::Known {
                finishes_at,
                remaining,
                basis,
            } => {
                let mut eta = json!({
                    "finishes_at": finishes_at,
                    "remaining_ms": remaining.num_milliseconds(),
                });
                if let (Some(basis), Some(obj)) = (basis, eta.as_object_mut()) {
                    obj.insert("basis".into(), json!(basis.as_str()));
                }
                eta
            }
            Eta::Unknown(why) => json!({ "unknown": why }),
        }
    }
}

/// What kind of work a runbook step is, for how long it takes.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// A gate: people decide when.
    Gate,
    /// A `wait`: exactly this long.
    Wait(Duration),
    /// A `check` without polling: decided when it starts.
    Instant,
    /// Anything else: as long as it took before.
    Work,
}

/// What an estimate needs to know of a runbook step.
#[derive(Debug, Clone, PartialEq)]
pub struct Shape {
    pub phase: Phase,
    pub needs: Vec<String>,
    pub kind: Kind,
    pub window: Option<String>,
    /// The step's own `estimate`.
    pub estimate: Option<Duration>,
}

/// Everything an estimate goes by besides the step rows and the time.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// By runbook step id; empty when the runbook text no longer loads.
    pub shapes: HashMap<String, Shape>,
    pub concurrency: usize,
    /// Durations of earlier runs by plan step id (`copy[a]`), newest first.
    pub runs: HashMap<String, Vec<Duration>>,
    /// Why there is no shape, when there is none.
    pub unloadable: Option<String>,
}

/// The runbook step a plan step comes from: `copy[a]` and `copy[*]` are parts of `copy`.
pub fn base(id: &str) -> &str {
    id.split_once('[').map_or(id, |(base, _)| base)
}

impl Inputs {
    /// The shape and concurrency of a checked runbook (as the engine takes them).
    pub fn from_runbook(runbook: &Runbook) -> Inputs {
        let shapes = runbook
            .steps
            .iter()
            .map(|s| {
                let kind = match &s.action {
                    Action::Gate(_) => Kind::Gate,
                    Action::Wait(d) => {
                        Kind::Wait(Duration::from_std(d.as_std()).unwrap_or_default())
                    }
                    Action::Check(_) if s.poll.is_none() => Kind::Instant,
                    _ => Kind::Work,
                };
                let shape = Shape {
                    phase: s.phase,
                    needs: s.needs.clone(),
                    kind,
                    window: s.window.clone(),
                    estimate: s.estimate.and_then(|d| Duration::from_std(d.as_std()).ok()),
                };
                (s.id.clone(), shape)
            })
            .collect();
        let concurrency = runbook
            .concurrency
            .map(|c| c.max(1) as usize)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
        Inputs {
            shapes,
            concurrency,
            runs: HashMap::new(),
            unloadable: None,
        }
    }

    /// How long each step of `rows` is expected to take (see [`Expected`]), worked out once
    /// for all of them.
    pub fn expected(&self, rows: &[StepRow]) -> Expected {
        let own = self
            .runs
            .iter()
            .filter_map(|(id, runs)| Some((id.clone(), median(runs.clone())?)))
            .collect();
        let mut parts: HashMap<&str, Vec<Duration>> = HashMap::new();
        for (id, runs) in &self.runs {
            if base(id) != id {
                parts
                    .entry(base(id))
                    .or_default()
                    .extend(runs.iter().copied());
            }
        }
        let done_here = rows
            .iter()
            .filter(|r| base(&r.step) != r.step && r.state == StepState::Succeeded && !r.kept);
        for row in done_here {
            if let (Some(start), Some(end)) = (row.started_at, row.finished_at) {
                parts.entry(base(&row.step)).or_default().push(end - start);
            }
        }
        let by_step = parts
            .into_iter()
            .filter_map(|(step, runs)| Some((step.to_owned(), median(runs)?)))
            .collect();
        Expected { own, by_step }
    }
}

/// How long steps are expected to take: the median of a step's earlier runs; for a fan-out
/// part without any, the median of its step's parts' runs (earlier ones and this
/// migration's).
#[derive(Debug, Clone, Default)]
pub struct Expected {
    own: HashMap<String, Duration>,
    by_step: HashMap<String, Duration>,
}

impl Expected {
    pub fn get(&self, id: &str) -> Option<Duration> {
        if let Some(own) = self.own.get(id) {
            return Some(*own);
        }
        let step = base(id);
        (step != id)
            .then(|| self.by_step.get(step).copied())
            .flatten()
    }
}

fn median(mut runs: Vec<Duration>) -> Option<Duration> {
    if runs.is_empty() {
        return None;
    }
    runs.sort();
    Some(runs[runs.len() / 2])
}

/// The estimates of one migration: its running steps' and its own.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    /// By step id, running steps only.
    pub steps: HashMap<String, Eta>,
    pub migration: Eta,
}

impl Estimate {
    /// Gathers the inputs of `m` (its runbook's shape, earlier runs) and estimates.
    pub fn of(store: &Store, m: &Migration, rows: &[StepRow], now: DateTime<Utc>) -> Estimate {
        estimate(m.state, rows, &load(store, m), now)
    }

    /// The estimate of a step, if it runs.
    pub fn step(&self, id: &str) -> Option<&Eta> {
        self.steps.get(id)
    }
}

/// The inputs of `m`: its runbook's shape from the text it started with, and the durations
/// of steps in earlier migrations of its runbook.
pub fn load(store: &Store, m: &Migration) -> Inputs {
    let checked = m.load_runbook();
    let mut inputs = match checked.runbook {
        Some(runbook) => Inputs::from_runbook(&runbook),
        None => Inputs {
            unloadable: Some("its runbook text no longer loads".into()),
            ..Inputs::default()
        },
    };
    for (step, took) in store
        .step_history(&m.runbook, &m.id, HISTORY)
        .unwrap_or_default()
    {
        inputs.runs.entry(step).or_default().push(took);
    }
    inputs
}

/// A running step's estimate (see the module documentation).
pub fn running(row: &StepRow, expected: Option<Duration>, now: DateTime<Utc>) -> Eta {
    let Some(started) = row.started_at else {
        return Eta::Unknown("it has no start time".into());
    };
    if let Some(reported) = row.progress.filter(|r| r.progress.done > 0) {
        let p = reported.progress;
        let finishes_at = if p.complete() {
            reported.at
        } else {
            let per_unit = (reported.at - started)
                .num_microseconds()
                .unwrap_or(i64::MAX) as f64
                / p.done as f64;
            let left = per_unit * (p.total - p.done) as f64;
            let left = Duration::microseconds(left.min(i64::MAX as f64) as i64);
            match reported.at.checked_add_signed(left) {
                Some(end) => end,
                None => return Eta::Unknown("its rate so far gives no end".into()),
            }
        };
        if finishes_at < now && !p.complete() {
            return Eta::Unknown(format!(
                "it should have finished by its rate so far, but its last report ({}) is from {}",
                p,
                reported.at.format("%H:%M:%S UTC")
            ));
        }
        return Eta::known(finishes_at, now, Some(Basis::Progress));
    }
    let Some(expected) = expected else {
        return Eta::Unknown(
            "it reports no progress, and no earlier run of it finished to go by".into(),
        );
    };
    let Some(finishes_at) = started.checked_add_signed(expected) else {
        return Eta::Unknown("its earlier runs give no end".into());
    };
    if finishes_at < now {
        return Eta::Unknown(format!(
            "it runs longer than its earlier runs ({} as a rule) and reports no progress",
            crate::runbook::duration::Duration(expected.to_std().unwrap_or_default())
        ));
    }
    Eta::known(finishes_at, now, Some(Basis::History))
}

/// The estimates of a migration in `state` with `rows` (see the module documentation).
pub fn estimate(
    state: MigrationState,
    rows: &[StepRow],
    inputs: &Inputs,
    now: DateTime<Utc>,
) -> Estimate {
    let expected = inputs.expected(rows);
    let steps: HashMap<String, Eta> = rows
        .iter()
        .filter(|r| r.state == StepState::Running)
        .map(|r| (r.step.clone(), running(r, expected.get(&r.step), now)))
        .collect();
    let migration = match whole::whole(state, rows, inputs, &expected, &steps) {
        Ok(left) => match now.checked_add_signed(left) {
            Some(end) => Eta::known(end, now, None),
            None => Eta::Unknown("its steps' estimates give no end".into()),
        },
        Err(why) => Eta::Unknown(why),
    };
    Estimate { steps, migration }
}

mod whole;

#[cfg(test)]
mod tests;
