//! Live reports of running attempts (`progress=` today; issue 15's checkpoints would join
//! them): what the core keeps, commits and announces. Where the rate limits live:
//!
//! - a report only changes the node's row in memory; rows with news are committed together
//!   at most once per [`LIVE_EVERY`] (a report after a quiet second is committed at once,
//!   later ones wait for [`Core::live_due`]), so a step that reports a thousand times a
//!   second costs the store one commit a second;
//! - a `step_progress` event is announced with such a commit only when the whole percent
//!   changed since the step's last one: at most 101 per attempt, so the event log, SSE
//!   followers and the console are not flooded;
//! - the attempt's end commits its row as it is, so the stored progress is always the last
//!   one the step reported.
//!
//! A report of an attempt that is no longer running (it ended, or a newer one started) is
//! dropped: the process layer hands on a run's last report before its outcome, and the
//! driver gives the core every report before the outcome that follows it.

use super::Core;
use crate::event::{NewEvent, StepProgress, StepState};
use crate::process::LiveReport;
use crate::store::Reported;
use chrono::{DateTime, Utc};
use std::collections::{BTreeSet, HashMap};

/// At most one commit of live reports per this.
pub(in crate::engine) const LIVE_EVERY: chrono::Duration = chrono::Duration::seconds(1);

/// What the core keeps of live reports between commits.
#[derive(Debug, Default)]
pub(in crate::engine) struct Live {
    /// Nodes whose row holds a report not committed yet.
    dirty: BTreeSet<usize>,
    /// When reports were last put in a batch.
    last: Option<DateTime<Utc>>,
    /// The whole percent of each running node's last `step_progress` event.
    announced: HashMap<usize, u8>,
}

impl Core {
    /// A running attempt reported something through its `$SENSEI_OUTPUT`.
    pub(in crate::engine) fn reported(&mut self, node: usize, attempt: u32, report: LiveReport) {
        let Some(n) = self.graph.nodes.get(node) else {
            return;
        };
        let current = self.running.contains(&node)
            && n.row.state == StepState::Running
            && n.row.attempts == attempt;
        if !current {
            return;
        }
        match report {
            LiveReport::Progress(progress) => {
                self.graph.nodes[node].row.progress = Some(Reported {
                    progress,
                    at: self.now,
                });
            }
        }
        self.live.dirty.insert(node);
        if self
            .live
            .last
            .is_none_or(|last| self.now >= last + LIVE_EVERY)
        {
            self.commit_live();
        }
    }

    /// When reports wait to be committed: the next time [`Core::live_due`] has work.
    pub(in crate::engine) fn next_live_wake(&self) -> Option<DateTime<Utc>> {
        if self.live.dirty.is_empty() {
            return None;
        }
        Some(self.live.last.map_or(self.now, |last| last + LIVE_EVERY))
    }

    /// Commits the reports that waited, if their time has come.
    pub(in crate::engine) fn live_due(&mut self) {
        if self.next_live_wake().is_some_and(|at| at <= self.now) {
            self.commit_live();
        }
    }

    /// An attempt of `node` ended: its row goes with the end, as it is.
    pub(in crate::engine) fn forget_live(&mut self, node: usize) {
        self.live.dirty.remove(&node);
        self.live.announced.remove(&node);
    }

    /// Puts the rows with news in the batch, and a `step_progress` event for each whose
    /// whole percent changed.
    fn commit_live(&mut self) {
        for node in std::mem::take(&mut self.live.dirty) {
            if !self.running.contains(&node) {
                continue;
            }
            let row = self.graph.nodes[node].row.clone();
            if let Some(reported) = row.progress {
                let percent = reported.progress.percent();
                if self.live.announced.insert(node, percent) != Some(percent) {
                    self.emit(NewEvent::step(
                        &row.step,
                        StepProgress {
                            attempt: row.attempts,
                            done: reported.progress.done,
                            total: reported.progress.total,
                        },
                    ));
                }
            }
            self.batch.steps.push(row);
        }
        self.live.last = Some(self.now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::actions::Outcome;
    use crate::engine::core::{Effect, Recovery, Shared};
    use crate::engine::open::{Attach, core_from};
    use crate::event::{EventKind, MigrationId, MigrationState, Progress};
    use crate::store::{Batch, Migration, PoolTake, StoreError};
    use std::sync::Arc;

    #[derive(Debug)]
    struct NoShared;

    impl Shared for NoShared {
        fn take_pool_slot(&self, _: &str, _: u32, _: &str) -> Result<PoolTake, StoreError> {
            Ok(PoolTake::Taken(1))
        }
        fn release_pool_slot(&self, _: i64) {}
        fn step_durations(&self, _: &str, _: &str, _: u32) -> Vec<chrono::Duration> {
            Vec::new()
        }
    }

    fn t(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_900_000_000_000 + ms).unwrap_or_default()
    }

    /// A core whose one step `work` runs its first attempt; its node.
    fn running() -> (Core, usize) {
        let migration = Migration {
            id: MigrationId::generate(t(0)),
            runbook: "live".into(),
            runbook_path: "live.yaml".into(),
            runbook_text: "version: 1\nname: live\nsteps:\n  - id: work\n    run: \"true\"\n"
                .into(),
            params: serde_json::json!({}),
            masked_params: serde_json::json!({}),
            digest: "digest".into(),
            state: MigrationState::Created,
            starter: "starter".into(),
            created_at: t(0),
            updated_at: t(0),
            last_seq: 0,
            runbook_files: Default::default(),
        };
        let inherited = crate::process::Inherited::from_process(&[]);
        let shared: Arc<dyn Shared> = Arc::new(NoShared);
        let mut core = core_from(
            migration,
            || Ok(Vec::new()),
            &[],
            "d",
            &inherited,
            shared,
            t(0),
        )
        .expect("a core");
        let lease = crate::store::Lease {
            migration: core.migration.id.clone(),
            token: "token".into(),
            pid: 1,
            host: "host".into(),
        };
        let left = Recovery::default();
        core.at(t(0))
            .recover(Attach::Start, &left)
            .expect("recover");
        core.operate(Attach::Start, &lease, &left).expect("operate");
        for _ in 0..10 {
            core.at(t(0)).advance().expect("advance");
            if core.take_batch().is_some() {
                core.committed();
            }
            for effect in core.take_effects() {
                if let Effect::Start(start) = effect {
                    return (core, start.node);
                }
            }
        }
        panic!("work never started");
    }

    fn report(done: u64) -> LiveReport {
        LiveReport::Progress(Progress { done, total: 1000 })
    }

    fn progress_events(batch: &Batch) -> Vec<serde_json::Value> {
        batch
            .events
            .iter()
            .filter(|e| e.kind == EventKind::StepProgress)
            .map(|e| e.data.clone())
            .collect()
    }

    #[test]
    fn a_flood_of_reports_costs_one_commit_a_second_and_an_event_per_whole_percent() {
        let (mut core, node) = running();
        let (mut commits, mut events) = (0, 0);
        // 10,000 reports over 5 s, one every half millisecond.
        for i in 0..10_000u64 {
            let now = t(i as i64 / 2);
            core.at(now).reported(node, 1, report(i / 10));
            if core.next_wake().is_some_and(|at| at <= now) {
                core.at(now).live_due();
            }
            if let Some(batch) = core.take_batch() {
                core.committed();
                commits += 1;
                events += progress_events(&batch).len();
                assert!(batch.steps.iter().all(|r| r.progress.is_some()));
            }
        }
        assert!((5..=6).contains(&commits), "{commits} commits");
        assert!(events <= commits, "{events} events");
        // What waited is committed when its time comes, and the end keeps the last value.
        core.at(t(6000)).live_due();
        let last = core.take_batch().expect("the last reports");
        core.committed();
        assert_eq!(
            last.steps[0].progress.map(|r| r.progress),
            Some(Progress {
                done: 999,
                total: 1000
            })
        );
        core.at(t(6100)).reported(node, 1, report(1000));
        core.at(t(6200)).finished(
            node,
            Outcome::Succeeded {
                outputs: None,
                exit_code: Some(0),
            },
        );
        let end = core.take_batch().expect("the end");
        let row = end.steps.last().expect("the row");
        assert_eq!(row.state, StepState::Succeeded);
        assert_eq!(row.progress.map(|r| r.progress.done), Some(1000));
    }

    #[test]
    fn a_report_is_committed_at_once_after_a_quiet_second_and_announced_per_percent() {
        let (mut core, node) = running();
        core.at(t(100)).reported(node, 1, report(5));
        let batch = core.take_batch().expect("at once");
        core.committed();
        assert_eq!(
            progress_events(&batch),
            vec![serde_json::json!({ "attempt": 1, "done": 5, "total": 1000 })]
        );
        // The same whole percent a second later: the row, no event.
        core.at(t(1200)).reported(node, 1, report(9));
        let batch = core.take_batch().expect("the row");
        core.committed();
        assert!(progress_events(&batch).is_empty());
        assert_eq!(batch.steps.len(), 1);
        // Reports of another attempt, or of a step that does not run, change nothing.
        core.at(t(3000)).reported(node, 2, report(500));
        core.at(t(3000)).reported(node + 100, 1, report(500));
        assert!(core.take_batch().is_none());
        assert_eq!(core.next_live_wake(), None);
    }
}
