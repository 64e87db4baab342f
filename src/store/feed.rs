//! The change feed: one counter that moves after every commit to the store, so readers wait
//! on it instead of each polling the database. The writer thread bumps it after each of its
//! COMMITs (before any caller hears back, so a caller that saw its write also sees the
//! bump); commits of other processes are noticed by one background poller of SQLite's
//! `PRAGMA data_version`, started the first time somebody subscribes and polling only while
//! somebody listens. A bump says "something may have changed": readers re-read.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::watch;

/// How often the poller looks for other processes' commits while somebody listens.
pub const POLL: Duration = Duration::from_millis(50);

/// The sending side, shared by the writer thread and the poller.
#[derive(Debug)]
pub struct Feed {
    tx: watch::Sender<u64>,
    poller: Mutex<bool>,
}

impl Default for Feed {
    fn default() -> Self {
        Feed {
            tx: watch::Sender::new(0),
            poller: Mutex::new(false),
        }
    }
}

impl Feed {
    /// Something was committed.
    pub fn bump(&self) {
        self.tx.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that sees the bumps after now.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.tx.subscribe()
    }

    /// Whether the poller still has to be started (true at most once).
    pub fn claim_poller(&self) -> bool {
        let mut started = self.poller.lock().unwrap_or_else(|p| p.into_inner());
        !std::mem::replace(&mut *started, true)
    }

    fn listened(&self) -> bool {
        self.tx.receiver_count() > 0
    }
}

/// Polls `version` every [`POLL`] while the feed has listeners; ends once `alive` is gone
/// (the store was dropped). `last` is the version when the first listener subscribed, so a
/// commit between that and the first look still shows.
pub fn poll<S: Send + Sync + 'static>(
    alive: Weak<S>,
    feed: Arc<Feed>,
    mut last: Option<i64>,
    version: impl Fn(&S) -> Option<i64> + Send + 'static,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("sensei-store-feed".to_owned())
        .spawn(move || {
            loop {
                std::thread::sleep(POLL);
                let Some(store) = alive.upgrade() else { return };
                if !feed.listened() {
                    continue;
                }
                let now = version(&store);
                drop(store);
                if now.is_some() && now != last {
                    if last.is_some() {
                        feed.bump();
                    }
                    last = now;
                }
            }
        })
        .map(drop)
}
