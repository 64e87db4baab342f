//! Commands that drive a migration in the foreground: `run`, `start`, `resume`, `retry` and
//! (when no other process drives it) `rollback`, `pause`, `cancel`. They hold the
//! migration's lease while they work and print progress as events commit.

use super::alerts::Worker;
use super::interrupt;
use super::local::{self, Local};
use super::progress::Lines;
use super::{error, exit, params_from_flags};
use crate::config::Config;
use crate::engine::{self, Attach, Interrupted, NewRun, Options};
use crate::event::{MigrationId, MigrationState, RollbackFinished, StateChanged};
use crate::operator::Ask;
use crate::process::Reaper;
use crate::runbook;
use crate::store::Store;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The runbook file.
    file: PathBuf,
    /// A param value, `name=value` (repeatable).
    #[arg(short = 'p', long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
    #[command(flatten)]
    local: Local,
}

#[derive(Debug, clap::Args)]
pub struct IdArgs {
    /// The migration id (or a unique prefix of it, or `latest`).
    pub(super) id: String,
    /// Why; recorded with the request in the audit trail (the `operator_request` event).
    #[arg(long, short = 'm', value_name = "TEXT")]
    pub(super) comment: Option<String>,
    #[command(flatten)]
    pub(super) local: Local,
}

#[derive(Debug, clap::Args)]
pub struct ResumeArgs {
    /// The migration id (or a unique prefix of it, or `latest`).
    id: String,
    /// Run again the steps a crash interrupted (they were not marked idempotent).
    #[arg(long, conflicts_with = "skip_interrupted")]
    retry_interrupted: bool,
    /// Skip the steps a crash interrupted; their dependents proceed.
    #[arg(long)]
    skip_interrupted: bool,
    /// Why; recorded with the request in the audit trail (the `operator_request` event).
    #[arg(long, short = 'm', value_name = "TEXT")]
    comment: Option<String>,
    #[command(flatten)]
    local: Local,
}

/// `sensei run FILE [-p k=v]`: create a migration and drive it until it rests.
pub fn run(args: &RunArgs) -> u8 {
    if let Err(code) = args.local.local_only("run") {
        return code;
    }
    // A broken configuration stops the command before anything is created.
    let config = match args.local.config() {
        Ok(config) => config,
        Err(code) => return code,
    };
    // The loaded runbook is dropped before driving: the driver rebuilds what it needs from
    // the stored text, so the parse tree does not stay in memory for the whole run.
    let (store, migration) = match create(args, &config) {
        Ok(created) => created,
        Err(code) => return code,
    };
    sayln!("migration {} created", migration.id);
    drive(&store, &migration.id, &args.local, Attach::Start)
}

/// Loads the runbook and params (nothing is stored when they are wrong), then creates the
/// migration.
fn create(args: &RunArgs, config: &Config) -> Result<(Store, crate::store::Migration), u8> {
    let checked = match runbook::load_file(&args.file) {
        Ok(c) => c,
        Err(e) => {
            error(format!("cannot read {}: {e}", args.file.display()));
            return Err(exit::USAGE);
        }
    };
    eprint!("{}", checked.render());
    let Some(runbook) = &checked.runbook else {
        error(format!(
            "{} is not a valid runbook; fix the errors above",
            args.file.display()
        ));
        return Err(exit::FAILED);
    };
    // A secret the runbook reads must not reach its steps through `step_env.pass`.
    if let Err(message) = config.step_env.refuse(&runbook.secret_envs()) {
        error(format!("{}: {message}", args.file.display()));
        return Err(exit::USAGE);
    }
    let params = params_from_flags(runbook, &args.params)?;
    let store = args.local.open()?;
    let path = std::fs::canonicalize(&args.file).unwrap_or_else(|_| args.file.clone());
    let created = engine::create(
        &store,
        NewRun {
            runbook,
            runbook_path: path.display().to_string(),
            runbook_text: checked.source.text.clone(),
            params,
            starter: args.local.identity(),
            id: None,
            now: None,
            origin: Default::default(),
        },
    );
    created
        .map(|migration| (store, migration))
        .map_err(|e| exit::fail(&e))
}

/// `sensei start|resume|retry ID [-m TEXT]`: through a server, its lifecycle call; locally,
/// the request recorded as the server records it, then driven here.
pub fn attach(args: &IdArgs, how: Attach) -> u8 {
    if let Some(client) = super::client::Client::from_local(&args.local) {
        let mut body = super::client::comment_body(args.comment.as_deref());
        match how {
            Attach::Resume(Some(Interrupted::Retry)) => body["interrupted"] = "retry".into(),
            Attach::Resume(Some(Interrupted::Skip)) => body["interrupted"] = "skip".into(),
            _ => {}
        }
        return match client {
            Ok(client) => super::client::operate(&client, &args.id, how.operation().as_str(), body),
            Err(code) => code,
        };
    }
    let store = match args.local.open_existing() {
        Ok(s) => s,
        Err(code) => return code,
    };
    let m = match local::find(&store, &args.id) {
        Ok(m) => m,
        Err(code) => return code,
    };
    let ask = Ask::new(how.operation(), false);
    match super::decide::record(&store, &m, ask, &args.local, args.comment.as_deref()) {
        Ok(_) => drive(&store, &m.id, &args.local, how),
        Err(code) => code,
    }
}

/// `sensei resume ID [--retry-interrupted|--skip-interrupted]`.
pub fn resume(args: &ResumeArgs) -> u8 {
    let choice = match (args.retry_interrupted, args.skip_interrupted) {
        (true, _) => Some(Interrupted::Retry),
        (_, true) => Some(Interrupted::Skip),
        _ => None,
    };
    attach(
        &IdArgs {
            id: args.id.clone(),
            comment: args.comment.clone(),
            local: args.local.clone(),
        },
        Attach::Resume(choice),
    )
}

/// Drives a migration in this process until it rests; the exit code says how it ended.
pub fn drive(store: &Store, id: &MigrationId, local: &Local, how: Attach) -> u8 {
    let config = match local.config() {
        Ok(c) => c,
        Err(code) => return code,
    };
    // One thread: a driver's work is small and ordered (decide, commit, spawn), and waking
    // tokio workers on other cores for each step costs more than the work itself. Commits
    // wait on the store's writer thread, processes on the kernel, neither on this thread.
    let runtime = match super::runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    let dir = store
        .migration(id)
        .ok()
        .flatten()
        .map_or_else(|| PathBuf::from("."), |m| engine::run_dir(&m.runbook_path));
    let mut opts = Options::new(dir, local.identity());
    opts.reaper = spawn_reaper();
    opts.inherited_env = config.inherited_env();
    opts.lease_ttl = engine::lease_time(config.lease_time());
    if let Some(start) = super::fixed_now() {
        opts.clock = std::sync::Arc::new(crate::engine::clock::ShiftedClock::starting_at(start));
    }
    // Only the counts: the rows are not kept while the migration runs (10,000 steps' rows
    // are megabytes, and the driver reads its own).
    let (total, done) = store.steps(id).map_or((0, 0), |rows| {
        let done = rows.iter().filter(|r| r.state.is_settled()).count();
        (rows.len(), done)
    });
    let lines = Lines::new(id.clone(), total, done).with_estimator(estimator(store, id));
    let interrupted = {
        let _runtime = runtime.enter();
        let (stop, interrupted) = interrupt::listen(id, lines.notices());
        opts.stop = stop;
        interrupted
    };
    // Alerts are sent beside the driver, never by it: a slow or broken channel cannot hold
    // up the migration, and a failed delivery never fails it.
    let worker = Worker::start(&runtime, store, &config);
    let result = runtime.block_on(async {
        let driver = engine::attach(store, id, opts, Box::new(lines), how).await?;
        driver.drive().await
    });
    let _ = store.flush();
    if let Some(worker) = worker {
        worker.finish(&runtime, Some(id));
    }
    match result {
        Ok(state) => finish(store, id, state, interrupted.by()),
        Err(e) => exit::fail(&e),
    }
}

/// The migration's and its steps' times to finish, as the progress lines say them: read
/// from the store (its rows, earlier runs) each time a step passes another tenth.
fn estimator(store: &Store, id: &MigrationId) -> super::progress::Estimator {
    let (store, id) = (store.clone(), id.clone());
    Box::new(move || {
        let m = store.migration(&id).ok().flatten();
        match (m, store.steps(&id)) {
            (Some(m), Ok(rows)) => crate::eta::Estimate::of(&store, &m, &rows, chrono::Utc::now()),
            _ => crate::eta::Estimate {
                steps: Default::default(),
                migration: crate::eta::Eta::Unknown("the migration cannot be read".into()),
            },
        }
    })
}

/// The last line: where the migration rests and what an operator can do next.
fn finish(store: &Store, id: &MigrationId, state: MigrationState, signal: Option<&str>) -> u8 {
    let next = match (state, signal) {
        (MigrationState::Certified, _) => String::new(),
        (MigrationState::Cancelled, _) => cancel_note(store, id),
        (MigrationState::Failed, _) => {
            format!(" — `sensei retry {id}` runs it again, keeping succeeded steps")
        }
        (MigrationState::Paused, _) => match interrupted_hint(store, id) {
            hint if hint.is_empty() => format!(" — `sensei resume {id}` continues"),
            hint => hint,
        },
        // Stopped by a signal before the migration came to rest: nothing drives it now.
        (_, Some(signal)) => format!(" — stopped by {signal}; `sensei resume {id}` continues"),
        (_, None) => interrupted_hint(store, id),
    };
    sayln!("migration {id} {state}{next}");
    if state == MigrationState::Certified {
        exit::OK
    } else {
        exit::FAILED
    }
}

/// What a cancel left: the changes a plain cancel kept, or where a `--rollback` stopped.
pub(super) fn cancel_note(store: &Store, id: &MigrationId) -> String {
    let Ok(events) = store.events(id, 0) else {
        return String::new();
    };
    let cancelled = events
        .iter()
        .rev()
        .filter_map(|e| e.read::<StateChanged>())
        .find(|c| c.to == MigrationState::Cancelled);
    let kept = cancelled
        .as_ref()
        .and_then(|c| c.kept_changes.clone())
        .unwrap_or_default();
    if !kept.is_empty() {
        return format!(
            " — not rolled back: what {} changed stays changed",
            kept.join(", ")
        );
    }
    let rollback = events
        .iter()
        .rev()
        .find_map(|e| e.read::<RollbackFinished>());
    let rolled_back = cancelled.is_some_and(|c| c.rolled_back);
    match rollback.filter(|_| rolled_back) {
        Some(r) if !r.ok => format!(
            " — its rollback stopped at step {} (`sensei events {id}` shows why)",
            r.failed_step.as_deref().unwrap_or("?")
        ),
        Some(r) => {
            let undone = r.rolled_back;
            let s = if undone == 1 { "" } else { "s" };
            format!(" — rolled back first ({undone} step{s} undone)")
        }
        None => String::new(),
    }
}

fn interrupted_hint(store: &Store, id: &MigrationId) -> String {
    let interrupted = store.steps(id).ok().and_then(|rows| {
        rows.into_iter()
            .find(|r| r.state == crate::event::StepState::Interrupted)
            .map(|r| r.step)
    });
    match interrupted {
        Some(step) => format!(" — {}", interrupted_choice(id, &step)),
        None => String::new(),
    }
}

/// What an operator chooses for a step that was interrupted: a plain resume would stop at it.
pub(super) fn interrupted_choice(id: impl std::fmt::Display, step: &str) -> String {
    format!(
        "step {step} was interrupted; `sensei resume {id} --retry-interrupted` runs it again, `--skip-interrupted` skips it"
    )
}

/// The watchdog that kills step processes if this process dies (`sensei __reap`).
fn spawn_reaper() -> Option<Arc<Reaper>> {
    match Reaper::spawn_sensei() {
        Ok(r) => Some(Arc::new(r)),
        Err(e) => {
            eprintln!("warning: {e}; step processes will not be killed if sensei itself is killed");
            None
        }
    }
}
