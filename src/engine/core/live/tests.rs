//! The core's handling of live reports: rate limits for progress, none for checkpoints.

use super::*;
use crate::engine::actions::Outcome;
use crate::engine::actions::Prepared;
use crate::engine::core::{Effect, Recovery, Shared, Start};
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
    let (core, start) = running_with(
        "version: 1\nname: live\nsteps:\n  - id: work\n    run: \"true\"\n",
        serde_json::json!({}),
    );
    (core, start.node)
}

/// A core of this runbook whose first step runs its first attempt; that attempt's start.
fn running_with(runbook: &str, params: serde_json::Value) -> (Core, Start) {
    let migration = Migration {
        id: MigrationId::generate(t(0)),
        runbook: "live".into(),
        runbook_path: "live.yaml".into(),
        runbook_text: runbook.into(),
        params,
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
    match advance_to_start(&mut core, t(0)) {
        Some(start) => (core, start),
        None => panic!("work never started"),
    }
}

/// Advances the core at `now`, committing as it goes, until an attempt starts.
fn advance_to_start(core: &mut Core, now: DateTime<Utc>) -> Option<Start> {
    for _ in 0..10 {
        core.at(now).advance().expect("advance");
        if core.take_batch().is_some() {
            core.committed();
        }
        for effect in core.take_effects() {
            if let Effect::Start(start) = effect {
                return Some(start);
            }
        }
    }
    None
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

fn checkpoint(value: &str) -> LiveReport {
    LiveReport::Checkpoint(value.to_owned())
}

fn row_checkpoint(batch: &Batch) -> Vec<Option<(String, u32)>> {
    batch
        .steps
        .iter()
        .map(|r| r.checkpoint.as_ref().map(|c| (c.value.clone(), c.attempt)))
        .collect()
}

#[test]
fn a_checkpoint_is_committed_at_once_and_those_that_arrive_together_share_one_row() {
    let (mut core, node) = running();
    core.at(t(100)).reported(node, 1, report(5));
    assert!(core.take_batch().is_some(), "the first progress");
    core.committed();
    // Within the progress's second: progress waits, a checkpoint does not, and takes the
    // waiting progress with it.
    core.at(t(200)).reported(node, 1, report(7));
    assert!(core.take_batch().is_none(), "progress waits for its second");
    core.at(t(300)).reported(node, 1, checkpoint("batch-1"));
    let batch = core.take_batch().expect("the checkpoint at once");
    core.committed();
    assert_eq!(row_checkpoint(&batch), vec![Some(("batch-1".into(), 1))]);
    assert_eq!(batch.steps[0].progress.map(|r| r.progress.done), Some(7));
    assert_eq!(
        batch.steps[0].checkpoint.as_ref().map(|c| c.at),
        Some(t(300))
    );
    assert!(batch.events.is_empty(), "no event per checkpoint");
    assert_eq!(core.next_live_wake(), None, "nothing waits");
    // Several before the driver commits: one row, the last value.
    for (ms, value) in [(310, "batch-2"), (320, "batch-3"), (330, "batch-4")] {
        core.at(t(ms)).reported(node, 1, checkpoint(value));
    }
    let batch = core.take_batch().expect("the checkpoints");
    core.committed();
    assert_eq!(row_checkpoint(&batch), vec![Some(("batch-4".into(), 1))]);
    // Reports of another attempt, or after the attempt ended, change nothing.
    core.at(t(400)).reported(node, 2, checkpoint("stale"));
    assert!(core.take_batch().is_none());
    core.at(t(500)).finished(
        node,
        Outcome::Succeeded {
            outputs: None,
            exit_code: Some(0),
        },
    );
    let end = core.take_batch().expect("the end");
    core.committed();
    assert_eq!(row_checkpoint(&end), vec![Some(("batch-4".into(), 1))]);
    core.at(t(600)).reported(node, 1, checkpoint("late"));
    assert!(core.take_batch().is_none());
}

/// A step that fails once and reads its checkpoint; a secret param to mask.
const RESUMING: &str = r#"version: 1
name: live
params:
  token: { type: string, secret: true }
steps:
  - id: work
    retry: { attempts: 2, backoff: 1s }
    run: "resume {{#if checkpoint}}--after {{checkpoint}}{{/if}}"
"#;

/// The command and `$SENSEI_CHECKPOINT` of a prepared `run`.
fn command_and_env(start: &Start) -> (String, String) {
    let Prepared::Run { command, env, .. } = &start.action else {
        panic!("not a run: {:?}", start.action);
    };
    let vars = env.vars(std::path::Path::new("/out"));
    let checkpoint = vars
        .iter()
        .rev()
        .find(|(k, _)| k == crate::process::CHECKPOINT_ENV)
        .map(|(_, v)| v.to_string_lossy().into_owned())
        .unwrap_or_else(|| "(unset)".into());
    (command.clone(), checkpoint)
}

#[test]
fn the_next_attempt_goes_on_from_the_last_checkpoint_masked() {
    let params = serde_json::json!({ "token": "s3cr3t-token-value" });
    let (mut core, first) = running_with(RESUMING, params);
    assert_eq!(
        command_and_env(&first),
        ("resume ".into(), String::new()),
        "no checkpoint yet: `{{{{checkpoint}}}}` is null, the variable empty"
    );
    let node = first.node;
    core.at(t(100))
        .reported(node, 1, checkpoint("id>41 s3cr3t-token-value"));
    let batch = core.take_batch().expect("at once");
    core.committed();
    assert_eq!(row_checkpoint(&batch), vec![Some(("id>41 ***".into(), 1))]);
    core.at(t(200)).finished(
        node,
        Outcome::Failed {
            error: "exited with code 1".into(),
            exit_code: Some(1),
            transient: true,
        },
    );
    assert!(core.take_batch().is_some());
    core.committed();
    core.at(t(5000)).due_retries();
    core.at(t(5000)).advance().expect("advance");
    let batch = core.take_batch().expect("the retry's start");
    core.committed();
    let second = core
        .take_effects()
        .into_iter()
        .find_map(|e| match e {
            Effect::Start(start) => Some(start),
            _ => None,
        })
        .expect("the second attempt");
    assert_eq!(second.attempt, 2);
    assert_eq!(
        command_and_env(&second),
        ("resume --after 'id>41 ***'".into(), "id>41 ***".into())
    );
    let started: Vec<&serde_json::Value> = batch
        .events
        .iter()
        .filter(|e| e.kind == EventKind::StepStarted)
        .map(|e| &e.data)
        .collect();
    assert_eq!(started.len(), 1);
    assert_eq!(started[0]["attempt"], 2);
    assert_eq!(started[0]["checkpoint"], "id>41 ***");
    assert_eq!(
        row_checkpoint(&batch),
        vec![Some(("id>41 ***".into(), 1))],
        "kept while the next attempt runs"
    );
}
