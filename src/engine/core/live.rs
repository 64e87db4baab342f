//! Live reports of running attempts (`progress=`, `checkpoint=`): what the core keeps,
//! commits and announces. Where the rate limits live, and where they do not apply:
//!
//! - a report only changes the node's row in memory; rows with news are committed together
//!   at most once per [`LIVE_EVERY`] (a report after a quiet second is committed at once,
//!   later ones wait for [`Core::live_due`]), so a step that reports a thousand times a
//!   second costs the store one commit a second;
//! - except a checkpoint: it puts the rows with news in the batch at once, so the driver
//!   commits it with its next commit, right after it handed the report over. Checkpoints
//!   that arrive together (the follower hands on only the newest of each look, and the
//!   driver gives the core every report waiting before it commits) share one commit and one
//!   row, the last value: nobody was told of the ones before it, so nothing is lost. A step
//!   is never told its checkpoint was committed; the contract it can rely on (a checkpoint
//!   is durable within about one look of the follower and one commit of being written) is
//!   in docs/runbooks.md, "Checkpoints". No event is announced per checkpoint: the row is
//!   where it lives, and `step_started` says which one each attempt went on from;
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
use crate::event::{Checkpoint, NewEvent, StepProgress, StepState};
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
        let now = self.now;
        let urgent = match report {
            LiveReport::Progress(progress) => {
                self.graph.nodes[node].row.progress = Some(Reported { progress, at: now });
                false
            }
            LiveReport::Checkpoint(value) => {
                // Stored, shown and given back masked: a secret written into it stays out of
                // the store (the next attempt then gets `***` where it was).
                let value = self.masker.mask(&value).into_owned();
                self.graph.nodes[node].row.checkpoint = Some(Checkpoint {
                    value,
                    attempt,
                    at: now,
                });
                true
            }
        };
        self.live.dirty.insert(node);
        if urgent || self.live.last.is_none_or(|last| now >= last + LIVE_EVERY) {
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
            // One row per step in a batch: reports that arrive together are coalesced to
            // the latest (the row as it is now).
            match self
                .batch
                .steps
                .iter_mut()
                .rev()
                .find(|r| r.step == row.step)
            {
                Some(queued) => *queued = row,
                None => self.batch.steps.push(row),
            }
        }
        self.live.last = Some(self.now);
    }
}

#[cfg(test)]
mod tests;
