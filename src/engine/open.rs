//! Creating a migration, and attaching a driver to one: start, resume (also after a crash),
//! retry and rollback. Attaching takes the migration's lease, rebuilds the run-time graph
//! from the stored runbook text, params and step rows, and settles steps that a crash left
//! running (SPEC §4): idempotent ones run again, others become `interrupted` and wait for an
//! operator.

use super::context::Context;
use super::core::{Core, Parts, Shared, Stop, Then};
use super::driver::Driver;
use super::graph::Graph;
use super::operation;
use super::shared::StoreShared;
use super::{EngineError, Observer, Options};
use crate::event::{EventData, MigrationCreated};
use crate::event::{EventKind, MigrationId, MigrationState, Operation};
use crate::event::{RollbackStarted, StepExpanded};
use crate::plan;
use crate::process::StepEnv;
use crate::runbook::model::Runbook;
use crate::runbook::params::Params;
use crate::runbook::render::{self, Escape, Masker, Renderer, Values};
use crate::store::{Migration, NewMigration, Store};
use chrono::Utc;
use serde_json::{Value as Json, json};
use std::collections::HashMap;
use std::sync::Arc;

/// A migration about to be created.
#[derive(Debug)]
pub struct NewRun<'a> {
    pub runbook: &'a Runbook,
    pub runbook_path: String,
    pub runbook_text: String,
    pub params: Params,
    pub starter: String,
    /// The id to create it with (a schedule's fire time names its migration, so a fire time
    /// never creates two); a fresh id when `None`.
    pub id: Option<MigrationId>,
    /// When it is created (an injected clock's now); the system time when `None`.
    pub now: Option<chrono::DateTime<Utc>>,
    /// More fields of its `migration_created` event (what created it).
    pub origin: serde_json::Map<String, Json>,
}

/// Creates a migration in state `created`, with a pending row per plan step.
pub fn create(store: &Store, new: NewRun<'_>) -> Result<Migration, EngineError> {
    let now = new.now.unwrap_or_else(Utc::now);
    let plan = plan::build(new.runbook, &new.runbook_text, &new.params, now)?;
    let masked = Json::Object(plan.params.clone());
    let id = new.id.unwrap_or_else(|| MigrationId::generate(now));
    let created_event_data = EventData::from(MigrationCreated {
        runbook: new.runbook.name.clone(),
        path: json!(new.runbook_path),
        params: masked.clone(),
        digest: plan.digest.clone(),
        by: new.starter.clone(),
        steps: plan.steps.len(),
        origin: new.origin,
    })
    .to_json();
    store.know_alerts(&id, &new.runbook.alerts);
    let migration = store.create_migration(NewMigration {
        id,
        runbook: new.runbook.name.clone(),
        runbook_path: new.runbook_path.clone(),
        runbook_text: new.runbook_text,
        runbook_files: new.runbook.files(),
        params: Json::Object(new.params),
        masked_params: masked.clone(),
        digest: plan.digest.clone(),
        starter: new.starter.clone(),
        steps: plan.steps.iter().map(|s| s.id.clone()).collect(),
        created_event_data,
    })?;
    Ok(migration)
}

/// The reason shown for a succeeded step that a retry keeps (its row's `kept` flag): it
/// passes again, in order, without running.
pub const KEPT: &str = "kept from an earlier run";

/// What to do with steps a crash interrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interrupted {
    Retry,
    Skip,
}

/// Why a driver attaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attach {
    Start,
    Resume(Option<Interrupted>),
    Retry,
    Rollback,
    /// Pause or cancel a migration no live process drives.
    Pause,
    Cancel,
    /// Cancel after rolling back what succeeded (`cancel --rollback`).
    CancelRollback,
    /// Continue what the migration was doing when its driver stopped, without an operator's
    /// decision (a server restarting): mid-phase work goes on, interrupted steps wait for an
    /// operator, and a migration a window's close paused waits for the window's next opening.
    Recover,
}

impl Attach {
    /// The operator's operation this attaching carries out.
    pub fn operation(self) -> Operation {
        match self {
            Attach::Start => Operation::Start,
            Attach::Resume(_) => Operation::Resume,
            Attach::Retry => Operation::Retry,
            Attach::Rollback => Operation::Rollback,
            Attach::Pause => Operation::Pause,
            Attach::Cancel | Attach::CancelRollback => Operation::Cancel,
            Attach::Recover => Operation::Resume,
        }
    }
}

/// Takes the migration's lease and prepares a driver for it. Refuses when another live
/// process drives it, or when the lifecycle does not allow the operation.
pub async fn attach(
    store: &Store,
    id: &MigrationId,
    opts: Options,
    observer: Box<dyn Observer>,
    how: Attach,
) -> Result<Driver, EngineError> {
    let migration = store
        .migration(id)?
        .ok_or_else(|| EngineError::Internal(format!("migration {id} disappeared")))?;
    check_operation(how, migration.state)?;
    let lease = acquire(store, id, opts.lease_ttl, migration.state.is_at_rest()).await?;
    let prepared = build(store, migration, opts, observer, lease.clone()).and_then(|mut driver| {
        driver.attach(how)?;
        Ok(driver)
    });
    if prepared.is_err() {
        // Nothing was committed: let the lease go, so that a refusal holds nothing.
        let store = store.clone();
        let _ = tokio::task::spawn_blocking(move || store.release_lease(&lease)).await;
    }
    prepared
}

/// How long an attach waits for the driver of a migration at rest to let go of it: a driver
/// that brought the migration to rest (failed, paused) releases its lease a moment later, and
/// an operator's `retry` right after a `rollback` must not be refused for that moment.
const HANDOFF: std::time::Duration = std::time::Duration::from_secs(5);

/// Takes the migration's lease; when `at_rest`, waits (up to [`HANDOFF`]) for a driver that is
/// finishing to release it.
async fn acquire(
    store: &Store,
    id: &MigrationId,
    ttl: std::time::Duration,
    at_rest: bool,
) -> Result<crate::store::Lease, EngineError> {
    let deadline = tokio::time::Instant::now() + HANDOFF;
    loop {
        let (s, i) = (store.clone(), id.clone());
        let taken = tokio::task::spawn_blocking(move || s.acquire_lease(&i, ttl))
            .await
            .map_err(|e| EngineError::Internal(e.to_string()))?;
        match taken {
            Err(crate::store::LeaseError::Held { .. })
                if at_rest && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            other => return Ok(other?),
        }
    }
}

/// Resume also continues a migration a crash left mid-phase (no transition needed), and
/// starts one that a crash between creating and starting left `created` (what "resume
/// continues it" means there).
pub(super) fn check_operation(how: Attach, state: MigrationState) -> Result<(), EngineError> {
    if matches!(how, Attach::Resume(_)) && state == MigrationState::Created {
        return Ok(());
    }
    let crashed_mid_phase = matches!(
        state,
        MigrationState::Analyzing
            | MigrationState::Planning
            | MigrationState::AwaitingApproval
            | MigrationState::Approved
            | MigrationState::Running
            | MigrationState::Completed
            | MigrationState::Validating
    );
    if matches!(how, Attach::Resume(_) | Attach::Recover) && crashed_mid_phase {
        return Ok(());
    }
    operation::path(how.operation(), state)?;
    Ok(())
}

fn build(
    store: &Store,
    migration: Migration,
    opts: Options,
    observer: Box<dyn Observer>,
    lease: crate::store::Lease,
) -> Result<Driver, EngineError> {
    let events = store.events(&migration.id, 0)?;
    let seen_seq = events.last().map_or(0, |e| e.seq);
    let shared = Arc::new(StoreShared {
        store: store.clone(),
        lease: lease.clone(),
    });
    let id = migration.id.clone();
    let core = core_from(
        migration,
        || Ok(store.steps(&id)?),
        &events,
        &opts.identity,
        &opts.inherited_env,
        shared,
        opts.clock.now(),
    )?;
    store.know_alerts(&id, &core.runbook.alerts);
    Ok(Driver {
        // Its step output is written only while this lease holds.
        store: store.fenced_by(&lease),
        core,
        opts,
        lease,
        http: reqwest::Client::new(),
        tasks: tokio::task::JoinSet::new(),
        task_nodes: HashMap::new(),
        cancels: HashMap::new(),
        observer,
        seen_seq,
        changes: store.changes(),
        crash_after: std::env::var("SENSEI_TEST_CRASH_AFTER_COMMITS")
            .ok()
            .and_then(|n| n.parse().ok()),
        commits: 0,
        reports: tokio::sync::mpsc::unbounded_channel(),
    })
}

/// The core of a migration as committed: its runbook and params as stored, its step rows and
/// its events (fan-out expansions, a rollback under way). Reads nothing itself, so the
/// property test rebuilds a core after a crash the way a driver does.
pub(super) fn core_from(
    migration: Migration,
    // Read once the runbook is checked and planned, so the rows of a large migration and the
    // parser's working copies are not in memory at once.
    rows: impl FnOnce() -> Result<Vec<crate::store::StepRow>, EngineError>,
    events: &[crate::event::Event],
    identity: &str,
    inherited: &crate::process::Inherited,
    shared: Arc<dyn Shared>,
    now: chrono::DateTime<Utc>,
) -> Result<Core, EngineError> {
    let checked = migration.load_runbook();
    let runbook = checked.runbook.ok_or_else(|| EngineError::Runbook {
        id: migration.id.to_string(),
        reason: "it has errors now; was it created by another version of sensei?".into(),
    })?;
    let params: Params = match &migration.params {
        Json::Object(map) => map.clone(),
        _ => Params::new(),
    };
    let plan = plan::build(&runbook, &migration.runbook_text, &params, Utc::now())?;
    let masker = Arc::new(Masker::new(render::secret_values(&runbook, &params)));
    let mut graph = Graph::from_plan(&runbook, &plan);
    for event in events {
        let (Some(step), Some(expanded)) = (&event.step, event.read::<StepExpanded>()) else {
            continue;
        };
        if let Some(p) = graph.find(step) {
            graph.expand(p, &expanded.items, &masker);
        }
    }
    for row in rows()? {
        if let Some(node) = graph.find(&row.step) {
            let state = row.state;
            let mut row = row;
            row.state = graph.nodes[node].row.state;
            graph.nodes[node].row = row;
            graph.set_state(node, state);
        }
    }
    let renderer = Arc::new(Renderer::new());
    let ctx = Context::new(
        params,
        &migration.id,
        &runbook.name,
        migration.created_at,
        migration.state.as_str(),
    );
    let base = Values::new(ctx.base());
    let env = runbook
        .env
        .iter()
        .map(|(k, v)| {
            let value = v
                .render(&renderer, &base, Escape::None)
                .map_err(|e| EngineError::Env(e.to_string()))?;
            Ok((k.clone(), value))
        })
        .collect::<Result<Vec<_>, EngineError>>()?;
    // Whatever the configuration passes through, a variable this runbook reads a secret
    // from stays with Sensei.
    let withheld: Vec<String> = runbook.secret_envs().into_iter().map(|(n, _)| n).collect();
    let env = StepEnv::new(inherited.without(&withheld), env);
    let concurrency = runbook
        .concurrency
        .map(|c| c.max(1) as usize)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let rolling_back = rollback_in_progress(events);
    let mut core = Core::new(Parts {
        identity: identity.to_owned(),
        runbook: Arc::new(runbook),
        graph,
        ctx,
        renderer,
        masker,
        env,
        concurrency,
        shared,
        now,
        migration,
    });
    core.stop = rolling_back.as_ref().map(|(then, _)| match then {
        Then::Fail => Stop::Rollback,
        Then::Cancel => Stop::CancelRollback,
    });
    core.past_point_of_no_return = rolling_back.is_some_and(|(_, past)| past);
    Ok(core)
}

/// A rollback started and did not finish (a crash interrupted it): where it was to lead, and
/// whether it may cross points of no return.
fn rollback_in_progress(events: &[crate::event::Event]) -> Option<(Then, bool)> {
    let (seq, started) = events
        .iter()
        .rev()
        .find_map(|e| Some((e.seq, e.read::<RollbackStarted>()?)))?;
    let finished = events
        .iter()
        .rev()
        .find(|e| e.kind == EventKind::RollbackFinished)
        .map_or(0, |e| e.seq);
    (seq > finished).then(|| {
        let then = Then::parse(Some(&started.then));
        (then, started.past_point_of_no_return)
    })
}
