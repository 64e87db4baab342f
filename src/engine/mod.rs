//! The engine: walks a plan, runs its steps and maps their outcomes onto the migration
//! lifecycle, committing every event before it takes effect.
//!
//! - [`lifecycle`]: the transition table, the only judge of state changes.
//! - [`operation`]: operator operations as paths through the lifecycle.
//! - `open`: creating a migration, and attaching a driver to one (lease, rebuilt graph).
//! - `core`: the migration's run-time state and every decision about it, without I/O: its
//!   inputs are an attempt that ended, a running attempt's live report (progress), the
//!   clock, an operator request, a gate decision, what a crash left; its outputs the batch to
//!   commit and the effects to carry out. Its module
//!   docs say where each invariant lives.
//! - `driver`: the round loop and all of its I/O (give the core its inputs, commit, carry out
//!   the effects); `actions` runs `run`/`http`/`wait`, `poll` the automatic gates; `graph` is
//!   the run-time DAG; `context` the values templates see; [`clock`] the injected time;
//!   [`gate`] who may decide a gate.

mod actions;
pub mod clock;
mod context;
mod core;
mod driver;
pub mod gate;
mod graph;
mod keeper;
pub mod lifecycle;
mod open;
pub mod operation;
mod poll;
mod shared;

pub use self::core::{ROLLBACK_ATTEMPT, paused_by_window};
pub use driver::Driver;
pub use open::{Attach, Interrupted, NewRun, attach, create};

use crate::event::Event;
use crate::process::{Inherited, Reaper};
use clock::{Clock, SystemClock};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Where a migration's `run` steps run: the directory of the runbook file it was created
/// from (SPEC §2), or the current directory when that is gone.
pub fn run_dir(runbook_path: &str) -> PathBuf {
    std::path::Path::new(runbook_path)
        .parent()
        .filter(|p| p.is_dir())
        .map(std::path::Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// How a driver runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where `run` steps run: the runbook's directory.
    pub dir: PathBuf,
    /// Kills step processes if this process dies.
    pub reaper: Option<Arc<Reaper>>,
    /// What step processes inherit from this process's environment (the fixed list and the
    /// configuration's pass-through names); nothing else of it reaches a step.
    pub inherited_env: Inherited,
    /// Who drives (recorded on the events it causes).
    pub identity: String,
    pub lease_ttl: Duration,
    /// How often the driver looks for requests and decisions of other processes.
    pub poll: Duration,
    /// Time for windows, gate deadlines, retry backoff and waits.
    pub clock: Arc<dyn Clock>,
    /// Becomes true when the driver should stop (a server shutting down): no new step
    /// starts, running ones finish, then the lease is released and `drive` returns with
    /// the migration between states, for the next driver to resume.
    pub stop: Option<tokio::sync::watch::Receiver<bool>>,
}

impl Options {
    pub fn new(dir: PathBuf, identity: String) -> Options {
        Options {
            dir,
            reaper: None,
            inherited_env: Inherited::from_process(&[]),
            identity,
            lease_ttl: lease_time(crate::config::DEFAULT_LEASE_TIME),
            poll: Duration::from_millis(100),
            clock: Arc::new(SystemClock),
            stop: None,
        }
    }
}

/// A driver's lease for a configured `lease_time`. Crash and takeover tests shorten leases
/// below the configuration's 1 s minimum (`SENSEI_TEST_LEASE_TTL_MS`), so that a lease that
/// is not renewed lapses within a test's time.
pub fn lease_time(configured: Duration) -> Duration {
    test_lease_ttl().unwrap_or(configured)
}

fn test_lease_ttl() -> Option<Duration> {
    let ms: u64 = std::env::var("SENSEI_TEST_LEASE_TTL_MS")
        .ok()?
        .parse()
        .ok()?;
    Some(Duration::from_millis(ms.max(30)))
}

/// Sees every event of the migration as it is committed (progress output, tests).
pub trait Observer: Send {
    fn event(&mut self, event: &Event);
}

/// An observer that ignores everything.
#[derive(Debug, Default)]
pub struct Quiet;

impl Observer for Quiet {
    fn event(&mut self, _: &Event) {}
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Lease(#[from] crate::store::LeaseError),
    #[error(transparent)]
    Illegal(#[from] lifecycle::IllegalTransition),
    #[error(transparent)]
    Refused(#[from] operation::Refused),
    #[error("the runbook stored with migration {id} no longer loads: {reason}")]
    Runbook { id: String, reason: String },
    #[error(transparent)]
    Plan(#[from] crate::plan::PlanError),
    #[error("the runbook's `env` cannot be rendered: {0}")]
    Env(String),
    #[error(transparent)]
    Orphan(#[from] self::core::Orphan),
    #[error("internal error: {0}")]
    Internal(String),
}
