//! What every request handler shares: the store, the runbooks, the drivers, the tokens, the
//! metrics; the shutdown signal. Live event streams and waiting lifecycle calls wake up on
//! the store's change feed ([`Store::changes`]).

use super::auth::Tokens;
use super::drivers::Drivers;
use super::metrics::Metrics;
use super::runbooks::Runbooks;
use crate::store::Store;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Cheap to clone: everything is behind one `Arc`.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Shared>,
}

#[derive(Debug)]
pub struct Shared {
    pub store: Store,
    pub runbooks: Arc<Runbooks>,
    pub drivers: Arc<Drivers>,
    pub tokens: Tokens,
    pub metrics: Metrics,
    pub body_limit: usize,
    pub shutdown: Shutdown,
    /// Console sign-ins.
    pub sessions: super::console::session::Sessions,
    /// Held by webhook calls with an idempotency key while they look it up and create.
    pub hook_calls: tokio::sync::Mutex<()>,
}

impl Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.inner
    }
}

impl AppState {
    pub fn new(
        store: Store,
        runbooks: Arc<Runbooks>,
        drivers: Arc<Drivers>,
        tokens: Tokens,
        body_limit: usize,
    ) -> AppState {
        AppState {
            inner: Arc::new(Shared {
                store,
                runbooks,
                drivers,
                tokens,
                metrics: Metrics::default(),
                body_limit,
                shutdown: Shutdown::default(),
                sessions: Default::default(),
                hook_calls: tokio::sync::Mutex::new(()),
            }),
        }
    }
}

/// The server-wide stop signal: once triggered it stays triggered.
#[derive(Debug, Clone)]
pub struct Shutdown {
    tx: Arc<watch::Sender<bool>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown {
            tx: Arc::new(watch::Sender::new(false)),
        }
    }
}

impl Shutdown {
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// A receiver that turns true at shutdown (for workers that take one).
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.tx.subscribe()
    }

    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }

    /// Resolves once the signal is triggered.
    pub async fn wait(&self) {
        let mut rx = self.tx.subscribe();
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

/// Looks at the runbooks directory once a second until shutdown.
pub async fn watch_runbooks(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = state.shutdown.wait() => return,
        }
        let runbooks = state.runbooks.clone();
        // File reads and checks are blocking work.
        let _ = tokio::task::spawn_blocking(move || runbooks.refresh()).await;
    }
}
