//! The tick planner, pure and clock-free: which fire times of a schedule are due, given the
//! last fire time handled and now, and what `overlap` says when one is due.
//!
//! Fire times come from [`crate::runbook::cron`] in the schedule's time zone, with its DST
//! rules (a named time in a spring-forward gap fires right after the gap, one in a fall-back
//! overlap fires once; a rhythm keeps to real time). Every interval is half-open on the left:
//! the fire times due are those in `(last, now]`.
//!
//! While the server runs, every fire time reached is due ([`Due::live`]). At startup the
//! fire times in `(last, now]` were missed while the server was down, and the schedule's
//! `catch_up` picks among them ([`Due::after_downtime`]): `none` keeps none (only fire times
//! from now on), `latest` the most recent, `all` every one, oldest first, at most
//! [`CATCH_UP_LIMIT`] (the most recent ones; the rest are counted in `dropped` and logged).

use crate::runbook::model::Schedule;
use crate::runbook::raw::{CatchUp, Overlap};
use chrono::{DateTime, Duration, Utc};
use std::collections::VecDeque;

/// At most this many fire times are due at once.
pub const CATCH_UP_LIMIT: usize = 100;

/// Fire times older than this before now are not looked at (a server down for longer
/// catches up from then on).
pub const LOOKBACK_DAYS: i64 = 400;

/// Fire times that are due, oldest first, and how many more were missed but not kept.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Due {
    pub fires: Vec<DateTime<Utc>>,
    pub dropped: usize,
}

impl Due {
    /// The server is running: every fire time in `(last, now]` is due (normally one).
    pub fn live(schedule: &Schedule, last: DateTime<Utc>, now: DateTime<Utc>) -> Due {
        between(schedule, last, now)
    }

    /// At startup: the fire times in `(last, now]` were missed; `catch_up` decides.
    pub fn after_downtime(schedule: &Schedule, last: DateTime<Utc>, now: DateTime<Utc>) -> Due {
        let missed = between(schedule, last, now);
        let total = missed.fires.len() + missed.dropped;
        match schedule.catch_up {
            CatchUp::None => Due {
                fires: Vec::new(),
                dropped: total,
            },
            CatchUp::Latest => Due {
                fires: missed.fires.last().copied().into_iter().collect(),
                dropped: total.saturating_sub(1),
            },
            CatchUp::All => missed,
        }
    }
}

/// The fire times in `(last, now]`, the most recent [`CATCH_UP_LIMIT`] kept.
fn between(schedule: &Schedule, last: DateTime<Utc>, now: DateTime<Utc>) -> Due {
    let from = last.max(now - Duration::days(LOOKBACK_DAYS));
    let mut kept = VecDeque::with_capacity(CATCH_UP_LIMIT);
    let mut dropped = 0;
    for fire in schedule.cron.fires_after(schedule.timezone.0, from) {
        let at = fire.at.with_timezone(&Utc);
        if at > now {
            break;
        }
        if kept.len() == CATCH_UP_LIMIT {
            kept.pop_front();
            dropped += 1;
        }
        kept.push_back(at);
    }
    Due {
        fires: kept.into(),
        dropped,
    }
}

/// The first fire time strictly after `after` (none for an expression that fires no more).
pub fn next_fire(schedule: &Schedule, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    schedule
        .cron
        .fires_after(schedule.timezone.0, after)
        .next()
        .map(|f| f.at.with_timezone(&Utc))
}

/// What to do with a due fire time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Create its migration and start it now.
    Start,
    /// Create its migration and leave it `created` until the earlier ones rest ([`queued`]).
    Queue,
    /// Create nothing: an earlier migration of the schedule is still active.
    Skip,
}

/// `overlap` for a due fire time, given whether an earlier migration of the same schedule is
/// still active (not at rest: created, queued or being driven).
pub fn on_fire(overlap: Overlap, earlier_active: bool) -> Action {
    match (overlap, earlier_active) {
        (_, false) | (Overlap::Allow, true) => Action::Start,
        (Overlap::Queue, true) => Action::Queue,
        (Overlap::Skip, true) => Action::Skip,
    }
}

/// A schedule's migration as the start pass sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Created, never started.
    Waiting,
    /// Started and not at rest.
    Driven,
    /// At rest (certified, failed, paused, cancelled).
    Resting,
}

/// Which of a schedule's migrations (oldest first) to start now: with `queue`, the oldest
/// waiting one once none is driven; otherwise every waiting one (a migration created but not
/// started, as a crash between the two leaves it).
pub fn queued(overlap: Overlap, stages: &[Stage]) -> Vec<usize> {
    let waiting = stages
        .iter()
        .enumerate()
        .filter(|(_, s)| **s == Stage::Waiting)
        .map(|(i, _)| i);
    if overlap == Overlap::Queue {
        if stages.contains(&Stage::Driven) {
            return Vec::new();
        }
        return waiting.take(1).collect();
    }
    waiting.collect()
}

#[cfg(test)]
mod tests;
