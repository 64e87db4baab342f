//! The drivers a server runs: one task per migration it drives, each holding that
//! migration's lease in the store (so no other process drives it meanwhile), all owned here
//! and stopped here at shutdown (DESIGN habit 8).
//!
//! Stopping drains: every driver is asked to stop, so no new step starts and running steps
//! finish (their outcomes recorded), up to a grace period; then what still runs is aborted —
//! its step processes are killed (each step's process group is killed when its task is
//! dropped, and the reaper watchdog kills what remains if the server itself dies). Every
//! change had been committed before it took effect, so the next start resumes those
//! migrations exactly as after a crash (SPEC §4).

use super::error::ApiError;
use crate::engine::clock::Clock;
use crate::engine::{self, Attach, Observer, Options};
use crate::event::StateChanged;
use crate::event::{Event, MigrationId, MigrationState};
use crate::process::{Inherited, Reaper};
use crate::store::Store;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::task::JoinSet;

/// The identity recorded when the server resumes migrations on its own at start.
pub const SERVER_IDENTITY: &str = "server";

#[derive(Debug)]
pub struct Drivers {
    store: Store,
    reaper: Option<Arc<Reaper>>,
    clock: Arc<dyn Clock>,
    /// What step processes inherit from the server's environment.
    inherited_env: Inherited,
    /// How long a driver's lease lasts without renewal.
    lease_time: std::time::Duration,
    /// Migrations this server took over from a driver that died or lost its lease.
    takeovers: std::sync::atomic::AtomicU64,
    tasks: Mutex<JoinSet<()>>,
    /// Migrations driven by this process now.
    active: Arc<Mutex<HashSet<MigrationId>>>,
    closed: AtomicBool,
    /// Tells every driver to stop starting steps (shutdown).
    stop: tokio::sync::watch::Sender<bool>,
}

/// Logs the state changes of driven migrations.
struct LogObserver;

impl Observer for LogObserver {
    fn event(&mut self, event: &Event) {
        if let Some(change) = event.read::<StateChanged>() {
            let from = change.from.map_or("?", |s| s.as_str());
            tracing::info!(
                migration = %event.migration,
                "{from} -> {} ({})",
                change.to,
                change.reason
            );
        }
    }
}

impl Drivers {
    /// Drivers on `clock` (the system clock, or one shifted by `SENSEI_NOW` for rehearsals),
    /// with the watchdog that kills step processes should this process die, giving steps
    /// `inherited_env` of the server's environment.
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        reaper: Option<Arc<Reaper>>,
        inherited_env: Inherited,
        lease_time: std::time::Duration,
    ) -> Drivers {
        Drivers {
            store,
            reaper,
            clock,
            inherited_env,
            lease_time,
            takeovers: std::sync::atomic::AtomicU64::new(0),
            tasks: Mutex::new(JoinSet::new()),
            active: Arc::new(Mutex::new(HashSet::new())),
            closed: AtomicBool::new(false),
            stop: tokio::sync::watch::Sender::new(false),
        }
    }

    /// The time on the drivers' clock: what windows and deadlines are judged by (shifted
    /// by `SENSEI_NOW` in rehearsals), so the console shows the same.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// How many migrations this process drives now (each holds its lease).
    pub fn active(&self) -> usize {
        self.active.lock().map(|a| a.len()).unwrap_or(0)
    }

    /// Migrations this server took over since it started (not counting those it resumed
    /// at its start).
    pub fn takeovers(&self) -> u64 {
        self.takeovers.load(Ordering::Relaxed)
    }

    /// How often the server looks for migrations nobody drives: a fifth of the lease, at
    /// most every 2 s, so a dead server's migrations are taken over within the lease time
    /// and one look.
    pub fn scan_interval(&self) -> std::time::Duration {
        (self.lease_time / 5).clamp(
            std::time::Duration::from_millis(20),
            std::time::Duration::from_secs(2),
        )
    }

    /// Takes over, until shutdown, every migration whose driver died or lost its lease (on
    /// a shared store: another server's).
    pub async fn watch(&self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(self.scan_interval()) => {}
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
            let taken = self.resume_all().await;
            if taken > 0 {
                self.takeovers.fetch_add(taken as u64, Ordering::Relaxed);
            }
        }
    }

    /// Attaches a driver for `how` (the lifecycle and the lease decide whether that is
    /// possible now) and runs it in the background until the migration rests. The state the
    /// driver committed for `how` (`analyzing` for a start), before it drove any further.
    pub async fn attach(
        &self,
        id: &MigrationId,
        how: Attach,
        who: &str,
    ) -> Result<MigrationState, ApiError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(ApiError::Unavailable("the server is shutting down".into()));
        }
        let dir = self
            .store
            .migration(id)?
            .map(|m| engine::run_dir(&m.runbook_path))
            .ok_or_else(|| ApiError::NotFound(format!("no migration {id}")))?;
        let mut opts = Options::new(dir, who.to_owned());
        opts.reaper = self.reaper.clone();
        opts.inherited_env = self.inherited_env.clone();
        opts.clock = self.clock.clone();
        opts.lease_ttl = self.lease_time;
        opts.stop = Some(self.stop.subscribe());
        let driver = engine::attach(&self.store, id, opts, Box::new(LogObserver), how).await?;
        let operated = driver.state();
        let (id, active) = (id.clone(), self.active.clone());
        if let Ok(mut set) = active.lock() {
            set.insert(id.clone());
        }
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        // Forget tasks that already finished.
        while tasks.try_join_next().is_some() {}
        tasks.spawn(async move {
            match driver.drive().await {
                Ok(state) => tracing::info!(migration = %id, "driver stopped: {state}"),
                Err(e) => tracing::error!(migration = %id, "driver failed: {e}"),
            }
            if let Ok(mut set) = active.lock() {
                set.remove(&id);
            }
        });
        Ok(operated)
    }

    /// Resumes every migration that is between states (not created, not at rest) and that no
    /// live process drives: what a crash or a stop of the server left (SPEC §4).
    pub async fn resume_all(&self) -> usize {
        // Only the states a driver may have left (between states, or paused by a window),
        // each by the store's index on state: not the whole history on every look.
        let waiting = MigrationState::ALL
            .iter()
            .filter(|s| !s.is_at_rest() || **s == MigrationState::Paused)
            .filter(|s| **s != MigrationState::Created);
        let mut migrations = Vec::new();
        for state in waiting {
            match self.store.list(Some(*state)) {
                Ok(m) => migrations.extend(m),
                Err(e) => {
                    tracing::error!("cannot list migrations to resume: {e}");
                    return 0;
                }
            }
        }
        let mut resumed = 0;
        for m in migrations {
            // A migration a window's close paused waits for the window's next opening: the
            // server drives that wait too.
            let window_paused = m.state == MigrationState::Paused
                && self
                    .store
                    .events(&m.id, 0)
                    .is_ok_and(|e| engine::paused_by_window(&e).is_some());
            if (m.state.is_at_rest() && !window_paused) || m.state == MigrationState::Created {
                continue;
            }
            if !matches!(self.store.driver(&m.id), Ok(None)) {
                continue;
            }
            match self.attach(&m.id, Attach::Recover, SERVER_IDENTITY).await {
                Ok(_) => {
                    tracing::info!(migration = %m.id, "resumed from {}", m.state);
                    resumed += 1;
                }
                // Another server took it first, or it came to rest since the list: the
                // ordinary race of servers that look at once, not a fault.
                Err(e) if self.moved_on(&m) => {
                    tracing::debug!(migration = %m.id, "not resumed, it moved on: {e}")
                }
                Err(e) => tracing::error!(migration = %m.id, "cannot resume: {e}"),
            }
        }
        resumed
    }

    /// Whether a migration listed in `seen` state is driven by someone now, or is in
    /// another state.
    fn moved_on(&self, seen: &crate::store::MigrationHead) -> bool {
        let driven = matches!(self.store.driver(&seen.id), Ok(Some(_)));
        let state = self
            .store
            .migration(&seen.id)
            .ok()
            .flatten()
            .map(|m| m.state);
        driven || state.is_some_and(|s| s != seen.state)
    }

    /// Stops every driver (see the module comment): running steps get `grace` to finish.
    pub async fn shutdown(&self, grace: std::time::Duration) {
        self.closed.store(true, Ordering::SeqCst);
        let mut tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        let running = self.active();
        if running > 0 {
            tracing::info!(
                "stopping {running} driver(s): no new step starts, running steps get {grace:?} to finish; their migrations resume at the next start"
            );
        }
        self.stop.send_replace(true);
        let drained =
            tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            tracing::warn!(
                "steps still running after {grace:?}: stopping them; they resume as after a crash"
            );
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
        }
    }
}

/// The watchdog that kills step processes if the server dies (`sensei __reap`).
pub fn spawn_reaper() -> Option<Arc<Reaper>> {
    match Reaper::spawn_sensei() {
        Ok(r) => Some(Arc::new(r)),
        Err(e) => {
            tracing::warn!("{e}; step processes will not be killed if the server is killed");
            None
        }
    }
}
