//! The server's scheduler task: creates and starts the migrations of every loaded runbook's
//! `schedules` at their fire times, on the server's injected clock (`SENSEI_NOW` shifts it).
//!
//! Each pass (at the next fire time, and at least every [`POLL`] so reloaded runbooks and
//! finished migrations are seen) plans with [`crate::schedule::plan`]:
//!
//! - **Watermark.** Per schedule (runbook, index, cron, zone) the scheduler keeps the last
//!   instant it planned up to; a pass makes the fire times in `(watermark, now]` due. At
//!   startup the watermark is the newest fire time among the schedule's migrations (read
//!   back from their deterministic ids), and the fire times after it were missed while the
//!   server was down: `catch_up` picks among them. A schedule never fired before, or one
//!   that appears (a runbook loaded or changed) while the server runs, starts from now.
//! - **Once per fire time.** The migration of a fire time has a deterministic id, so a
//!   second create — a repeated pass, a restart — finds it and creates nothing.
//! - **Overlap.** An earlier migration of the same schedule that is not at rest (created,
//!   queued or driven) is active: `skip` creates nothing for the fire time (logged; nothing
//!   records a skip, so after a restart a skipped fire time newer than the schedule's last
//!   migration counts as missed and `catch_up` may run it), `queue` creates it and leaves it `created`, `allow` starts it anyway.
//!   The start pass then starts, with `queue`, the oldest waiting migration once none of the
//!   schedule's is driven; otherwise every waiting one (also one a crash left between create
//!   and start). Queued migrations are ordinary `created` migrations: they survive restarts
//!   and can be cancelled.
//!
//! Migrations are started with [`super::Drivers::attach`] by `schedule:<runbook>#<index>`.
//! The store is listed once per pass while any schedule exists (fine for hundreds of
//! migrations; an index by starter would be the next step).

use super::runbooks::Active;
use super::state::AppState;
use crate::engine::Attach;
use crate::engine::clock::Clock;
use crate::event::{MigrationId, MigrationState};
use crate::runbook::model::Schedule;
use crate::schedule::fire::{self, FireTime, Fired};
use crate::schedule::plan::{self, Action, Due, Stage};
use crate::schedule::{fire_time, starter};
use crate::store::MigrationHead;
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// The longest a pass waits for the next.
pub const POLL: Duration = Duration::from_secs(2);

/// A schedule as the watermark knows it: a changed expression or zone is a new schedule.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    runbook: String,
    index: usize,
    cron: String,
    zone: String,
}

/// The scheduler's memory between passes.
#[derive(Debug, Default)]
struct Scheduler {
    marks: HashMap<Key, DateTime<Utc>>,
    /// Migrations this run has started (they may still read `created` for a moment).
    started: HashSet<MigrationId>,
    /// Migrations that could not be started: not tried again by this run.
    refused: HashSet<MigrationId>,
}

/// Runs passes until shutdown.
pub async fn run(state: AppState, clock: Arc<dyn Clock>) {
    let mut scheduler = Scheduler::default();
    let mut first = true;
    loop {
        let now = clock.now();
        let next = scheduler.pass(&state, now, first).await;
        first = false;
        let wake = async {
            match next {
                Some(at) => clock.sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = wake => {}
            () = tokio::time::sleep(POLL) => {}
            () = state.shutdown.wait() => return,
        }
    }
}

impl Scheduler {
    /// Fires what is due and starts what may start; returns the next fire time of all.
    async fn pass(
        &mut self,
        state: &AppState,
        now: DateTime<Utc>,
        first: bool,
    ) -> Option<DateTime<Utc>> {
        let actives = state.runbooks.actives();
        if actives.iter().all(|a| a.runbook.schedules.is_empty()) {
            self.marks.clear();
            return None;
        }
        let migrations = match state.store.list(None) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!("schedules: cannot list migrations: {e}");
                return Some(now);
            }
        };
        let mut seen = HashSet::new();
        let mut next: Option<DateTime<Utc>> = None;
        for active in &actives {
            for (index, schedule) in active.runbook.schedules.iter().enumerate() {
                let key = Key {
                    runbook: active.runbook.name.clone(),
                    index,
                    cron: schedule.cron.as_str().to_owned(),
                    zone: schedule.timezone.0.name().to_owned(),
                };
                seen.insert(key.clone());
                let by = starter(&active.runbook.name, index);
                // Oldest first.
                let mine: Vec<&MigrationHead> = migrations
                    .iter()
                    .rev()
                    .filter(|m| m.runbook == active.runbook.name && m.starter == by)
                    .collect();
                let (due, mark) = match self.marks.get(&key) {
                    Some(&last) => (Due::live(schedule, last, now), last.max(now)),
                    None => {
                        let last = mine
                            .iter()
                            .filter_map(|m| fire_time(&m.id, &active.runbook.name, index))
                            .max();
                        match last {
                            Some(last) if first => {
                                (Due::after_downtime(schedule, last, now), last.max(now))
                            }
                            Some(last) => (Due::default(), last.max(now)),
                            None => (Due::default(), now),
                        }
                    }
                };
                self.marks.insert(key, mark);
                if due.dropped > 0 {
                    tracing::warn!(
                        "schedule {by} (`{}`): {} fire time(s) missed while the server was down are not run (catch_up: {:?})",
                        schedule.cron.as_str(),
                        due.dropped,
                        schedule.catch_up
                    );
                }
                let mut stages: Vec<(MigrationId, Stage)> =
                    mine.iter().map(|m| (m.id.clone(), self.stage(m))).collect();
                for at in due.fires {
                    let active_before = stages
                        .iter()
                        .any(|(_, s)| matches!(s, Stage::Waiting | Stage::Driven));
                    if plan::on_fire(schedule.overlap, active_before) == Action::Skip {
                        tracing::info!(
                            "schedule {by}: fire time {at} skipped: an earlier migration of this schedule is still active (overlap: skip)"
                        );
                        continue;
                    }
                    if let Some(id) = create(state, active, index, at, now).await {
                        stages.push((id, Stage::Waiting));
                    }
                }
                self.start(state, schedule, &by, &stages).await;
                if let Some(at) = plan::next_fire(schedule, mark) {
                    next = Some(next.map_or(at, |n| n.min(at)));
                }
            }
        }
        self.marks.retain(|k, _| seen.contains(k));
        next
    }

    fn stage(&self, m: &MigrationHead) -> Stage {
        if m.state.is_at_rest() || self.refused.contains(&m.id) {
            Stage::Resting
        } else if m.state == MigrationState::Created && !self.started.contains(&m.id) {
            Stage::Waiting
        } else {
            Stage::Driven
        }
    }

    /// Starts what the overlap rule lets start now.
    async fn start(
        &mut self,
        state: &AppState,
        schedule: &Schedule,
        by: &str,
        stages: &[(MigrationId, Stage)],
    ) {
        let only: Vec<Stage> = stages.iter().map(|(_, s)| *s).collect();
        for i in plan::queued(schedule.overlap, &only) {
            let Some((id, _)) = stages.get(i) else {
                continue;
            };
            match state.drivers.attach(id, Attach::Start, by).await {
                Ok(_) => {
                    tracing::info!(migration = %id, "schedule {by}: started");
                    self.started.insert(id.clone());
                }
                Err(e) => {
                    tracing::error!(migration = %id, "schedule {by}: cannot start: {e}");
                    self.refused.insert(id.clone());
                }
            }
        }
    }
}

/// Creates the migration of fire time `at`; its id when it is new.
async fn create(
    state: &AppState,
    active: &Arc<Active>,
    index: usize,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<MigrationId> {
    let (store, active) = (state.store.clone(), active.clone());
    let by = starter(&active.runbook.name, index);
    let created = tokio::task::spawn_blocking(move || {
        fire::create(
            &store,
            FireTime {
                runbook: &active.runbook,
                runbook_path: active.path.display().to_string(),
                runbook_text: active.text.clone(),
                index,
                fire: at,
                now,
            },
        )
    })
    .await;
    match created {
        Ok(Ok(Fired::Created(m))) => {
            tracing::info!(migration = %m.id, runbook = %m.runbook, by = %m.starter, "created for fire time {at}");
            Some(m.id)
        }
        Ok(Ok(Fired::Already(id))) => {
            tracing::debug!(migration = %id, "schedule {by}: fire time {at} was handled already");
            None
        }
        Ok(Err(e)) => {
            tracing::error!("schedule {by}: fire time {at} created no migration: {e}");
            None
        }
        Err(e) => {
            tracing::error!("schedule {by}: fire time {at}: the task failed: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests;
