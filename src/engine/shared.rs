//! The store's answers to what the core asks of data shared with other migrations: a pool
//! slot (taken atomically across every migration on the store) and earlier runs' durations.

use crate::store::{Lease, PoolTake, Store, StoreError};

/// The store's answers to what the core asks of data shared with other migrations.
#[derive(Debug)]
pub(super) struct StoreShared {
    pub store: Store,
    pub lease: Lease,
}

impl super::core::Shared for StoreShared {
    fn take_pool_slot(&self, pool: &str, size: u32, step: &str) -> Result<PoolTake, StoreError> {
        self.store.take_pool_slot(pool, size, step, &self.lease)
    }

    fn release_pool_slot(&self, slot: i64) {
        self.store.release_pool_slot(slot);
    }

    fn step_durations(&self, runbook: &str, step: &str, limit: u32) -> Vec<chrono::Duration> {
        self.store
            .step_durations(runbook, step, limit)
            .unwrap_or_default()
    }
}
