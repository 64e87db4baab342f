//! The lease keeper: renews a driver's lease on its own task, every third of the lease's
//! time, whatever the driver is doing (waiting on a long step, running a rollback command,
//! committing). When the lease is lost — another process took the migration over — it says
//! so once, and the driver stops at once; its commits are refused by the store's fence
//! anyway.

use crate::store::{Lease, LeaseError, Store};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Debug)]
pub(super) struct LeaseKeeper {
    task: JoinHandle<()>,
    lost: watch::Receiver<Option<LeaseError>>,
}

impl LeaseKeeper {
    pub(super) fn start(store: &Store, lease: &Lease, ttl: Duration) -> LeaseKeeper {
        let (tx, lost) = watch::channel(None);
        let (store, lease) = (store.clone(), lease.clone());
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(ttl / 3);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await; // the first tick is now: the lease was just taken
            loop {
                tick.tick().await;
                match store.renew_lease_async(&lease, ttl).await {
                    Ok(()) => {}
                    Err(e @ LeaseError::Lost { .. }) => {
                        let _ = tx.send(Some(e));
                        return;
                    }
                    // A busy or failing store: try again at the next tick; the lease
                    // outlives two missed renewals.
                    Err(e) => {
                        tracing::warn!(migration = %lease.migration, "cannot renew the lease: {e}")
                    }
                }
            }
        });
        LeaseKeeper { task, lost }
    }

    /// Becomes `Some` when the lease is lost.
    pub(super) fn lost(&self) -> watch::Receiver<Option<LeaseError>> {
        self.lost.clone()
    }

    pub(super) fn stop(self) {
        self.task.abort();
    }
}
