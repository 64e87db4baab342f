//! Slots: the one owner of a migration's `concurrency` and of the runbook's pools.
//!
//! Every attempt that runs — a step's first attempt, a retry, a polling check (its probe
//! included), a rollback command — holds a [`Slot`] for as long as it runs. The slot is a
//! value, moved into the attempt's task and given back when it is dropped, which happens when
//! the task ends, however it ends (finished, cancelled, panicked, abandoned). There is no
//! counter that a start or finish path adjusts by hand, so a new path cannot forget one.
//!
//! A pool slot is a row in the store, shared by every migration on it (`store::pool`), taken
//! and given back through [`Shared`]; the concurrency count is this migration's own.

use crate::store::{PoolHolder, PoolTake, StoreError};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// What the core asks of data it shares with other migrations: pool slots (a claim that
/// must be atomic across migrations) and the durations of earlier runs (window estimates).
/// The driver answers from the store; the property test from memory.
pub(in crate::engine) trait Shared: Send + Sync + std::fmt::Debug {
    /// Takes a slot of `pool` (of `size`) for `step`, or says who holds them all.
    fn take_pool_slot(&self, pool: &str, size: u32, step: &str) -> Result<PoolTake, StoreError>;
    /// Gives a pool slot back.
    fn release_pool_slot(&self, slot: i64);
    /// Durations of the last `limit` successful runs of a step of a runbook (none when
    /// they cannot be read: the estimate is then unknown).
    fn step_durations(&self, runbook: &str, step: &str, limit: u32) -> Vec<chrono::Duration>;
}

/// The slots of one migration.
#[derive(Debug)]
pub(in crate::engine) struct Slots {
    concurrency: usize,
    in_flight: Arc<AtomicUsize>,
    /// Pool sizes, as the runbook declares them.
    pools: HashMap<String, u32>,
    shared: Arc<dyn Shared>,
}

/// What running one attempt holds: a place within `concurrency`, and a slot of the step's
/// pool when it has one. Dropping it gives both back.
#[derive(Debug)]
pub struct Slot {
    in_flight: Arc<AtomicUsize>,
    _pool: Option<PoolSlot>,
}

/// A pool slot's row; dropping it deletes the row (with the store's next group commit).
#[derive(Debug)]
struct PoolSlot {
    shared: Arc<dyn Shared>,
    id: i64,
}

/// Why no slot was given.
#[derive(Debug)]
pub(in crate::engine) enum NoSlot {
    /// Every place within `concurrency` is taken: try again when an attempt ends.
    Busy,
    /// The pool is full; these hold its slots (steps of this or other migrations).
    PoolFull {
        pool: String,
        size: u32,
        holders: Vec<PoolHolder>,
    },
}

impl Slots {
    pub(in crate::engine) fn new(
        concurrency: usize,
        pools: HashMap<String, u32>,
        shared: Arc<dyn Shared>,
    ) -> Slots {
        Slots {
            concurrency: concurrency.max(1),
            in_flight: Arc::new(AtomicUsize::new(0)),
            pools,
            shared,
        }
    }

    /// A place within `concurrency` is free.
    pub(in crate::engine) fn has_room(&self) -> bool {
        self.in_flight() < self.concurrency
    }

    /// Attempts holding a slot now.
    pub(in crate::engine) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Takes a slot for an attempt of `step`, with a slot of `pool` when it has one.
    pub(in crate::engine) fn take(
        &self,
        step: &str,
        pool: Option<&str>,
    ) -> Result<Result<Slot, NoSlot>, StoreError> {
        if !self.has_room() {
            return Ok(Err(NoSlot::Busy));
        }
        let pool = match pool {
            None => None,
            Some(name) => {
                // The checker makes every `pool:` name a declared pool.
                let size = self.pools.get(name).copied().unwrap_or(1);
                match self.shared.take_pool_slot(name, size, step)? {
                    PoolTake::Taken(id) => Some(PoolSlot {
                        shared: Arc::clone(&self.shared),
                        id,
                    }),
                    PoolTake::Full(holders) => {
                        return Ok(Err(NoSlot::PoolFull {
                            pool: name.to_owned(),
                            size,
                            holders,
                        }));
                    }
                }
            }
        };
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        Ok(Ok(Slot {
            in_flight: Arc::clone(&self.in_flight),
            _pool: pool,
        }))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Drop for PoolSlot {
    fn drop(&mut self) {
        self.shared.release_pool_slot(self.id);
    }
}

impl NoSlot {
    /// Why a step waits, for its row: `waiting for a slot in pool primary (1 of 1 held by
    /// copy[a] of m-…)`.
    pub(in crate::engine) fn reason(&self, migration: &str) -> Option<String> {
        let NoSlot::PoolFull {
            pool,
            size,
            holders,
        } = self
        else {
            return None;
        };
        let names: Vec<String> = holders
            .iter()
            .map(|h| {
                if h.migration == migration {
                    h.step.clone()
                } else {
                    format!("{} of {}", h.step, h.migration)
                }
            })
            .collect();
        Some(format!(
            "waiting for a slot in pool {pool} ({} of {size} held by {})",
            holders.len(),
            names.join(", ")
        ))
    }
}
