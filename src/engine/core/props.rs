//! A model-based property test of the core: random sequences of inputs — attempts that
//! succeed, fail for good or transiently (retries), the clock moving (backoffs, gate
//! timeouts, a window opening, reaching its cutoff and closing), operator requests (pause,
//! cancel, cancel with rollback, rollback, an admin's rollback past the point of no
//! return), gate decisions, a crash and recovery from the
//! committed state, an operator's resume — fed to a core the way the driver feeds it, with
//! the store, the pools and the processes modelled in memory. proptest shrinks a failure
//! to a minimal sequence.
//!
//! Checked after every commit and effect:
//! - every state change is in the lifecycle table (written out here, independently of
//!   `lifecycle`), and starts where the previous one ended;
//! - in-flight attempts never exceed `concurrency`, nor the pool's size;
//! - no attempt starts while the migration is paused, cancelled or at rest, nor a
//!   window-bound step outside its window or past its cutoff;
//! - a step that succeeded never starts again;
//! - a rollback not allowed past a point of no return (`c`) never undoes a step before it
//!   once it has succeeded (`checks::check_undo`);
//! - every slot comes back: once everything ended, no pool slot is held and no slot counted;
//! - a core rebuilt from what was committed (a crash) is in the committed state with the
//!   committed rows, and replaying a sequence reaches the same decisions, commit by commit.
//!
//! Cases: 24 by default (a few seconds in CI); `SENSEI_CORE_CASES=2000 cargo test --lib
//! core::props` for a longer run.

use super::{Core, Effect, Recovery, Shared, Start, Work};
use crate::calendar::{self, WindowState};
use crate::engine::actions::Outcome;
use crate::engine::open::{Attach, check_operation, core_from};
use crate::event::{Event, MigrationId, MigrationState, StateChanged, StepState};
use crate::process::Inherited;
use crate::store::{Batch, GateInfo, GateStatus, Migration, PoolTake, StepRow, StoreError};
use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

const RUNBOOK: &str = r#"version: 1
name: props
concurrency: 2
pools: { primary: 1 }
windows:
  night: { cron: "0 1 * * *", duration: 1h, timezone: UTC, cutoff: 10m, on_close: pause }
steps:
  - id: look
    phase: analyze
    run: "true"
  - id: signoff
    gate: { timeout: 3h, on_timeout: fail }
  - id: a
    pool: primary
    retry: { attempts: 3, backoff: 1s, max_backoff: 5s }
    run: "true"
    rollback: "true"
  - id: b
    pool: primary
    run: "true"
    rollback: "true"
  - id: c
    retry: { attempts: 2, backoff: 1s }
    point_of_no_return: true
    run: "true"
    rollback: "true"
  - id: d
    needs: [a, c]
    window: night
    run: "true"
    rollback: "true"
  - id: verify
    phase: validate
    run: "true"
"#;

const CONCURRENCY: usize = 2;
const POOL_SIZE: usize = 1;

/// SPEC §3, as written there.
const TABLE: &[(MigrationState, &[MigrationState])] = {
    use MigrationState::*;
    &[
        (Created, &[Analyzing, Cancelled]),
        (Analyzing, &[Planning, Failed]),
        (Planning, &[AwaitingApproval, Failed]),
        (AwaitingApproval, &[Approved, Cancelled]),
        (Approved, &[Running, Cancelled]),
        (Running, &[Paused, Completed, Failed]),
        (Paused, &[Running, Cancelled]),
        (Completed, &[Validating]),
        (Validating, &[Certified, Failed]),
        (Certified, &[]),
        (Failed, &[Analyzing]),
        (Cancelled, &[]),
    ]
};

#[derive(Debug, Clone, Copy)]
enum How {
    Succeed,
    Transient,
    Fail,
}

#[derive(Debug, Clone)]
enum Input {
    /// The attempt at this index (modulo) of those running ends.
    Finish(usize, How),
    /// The clock moves on by this many minutes.
    Tick(u32),
    Pause,
    Cancel,
    CancelRollback,
    Rollback,
    /// A rollback an admin allowed to cross the point of no return (`c`).
    RollbackPast,
    Approve,
    Reject,
    /// The driver dies; another attaches to what was committed.
    Crash,
    /// An operator resumes the migration once it rests.
    Resume,
}

fn input() -> impl Strategy<Value = Input> {
    let how = prop_oneof![
        4 => Just(How::Succeed),
        2 => Just(How::Transient),
        1 => Just(How::Fail),
    ];
    prop_oneof![
        8 => (0usize..4, how).prop_map(|(i, h)| Input::Finish(i, h)),
        3 => prop_oneof![Just(1u32), Just(20), Just(90), Just(600)].prop_map(Input::Tick),
        1 => Just(Input::Pause),
        1 => Just(Input::Cancel),
        1 => Just(Input::CancelRollback),
        1 => Just(Input::Rollback),
        1 => Just(Input::RollbackPast),
        2 => Just(Input::Approve),
        1 => Just(Input::Reject),
        1 => Just(Input::Crash),
        1 => Just(Input::Resume),
    ]
}

/// Pool slots, as the store shares them between migrations.
mod checks;
mod world;
use world::World;

fn run(inputs: &[Input]) -> Result<Vec<Vec<String>>, TestCaseError> {
    let mut world = World::new()?;
    for input in inputs {
        world.step(input)?;
    }
    world.settle()?;
    Ok(world.trace)
}

fn cases() -> u32 {
    std::env::var("SENSEI_CORE_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(24)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_core_keeps_its_invariants(inputs in proptest::collection::vec(input(), 1..60)) {
        let first = run(&inputs)?;
        let again = run(&inputs)?;
        prop_assert_eq!(first, again, "the same inputs reached other decisions");
    }
}

/// The model drives a migration all the way: the property above is not vacuous.
#[test]
fn the_model_certifies_a_migration() -> Result<(), TestCaseError> {
    let mut world = World::new()?;
    world.step(&Input::Finish(0, How::Succeed))?;
    world.step(&Input::Approve)?;
    world.settle()?;
    assert_eq!(world.state, MigrationState::Certified, "{:?}", world.trace);
    assert!(
        world
            .trace
            .iter()
            .flatten()
            .any(|d| d.starts_with("start d "))
    );
    Ok(())
}
