//! The store: durable migrations, their event log, derived step rows, logs, gate decisions
//! and leases, in SQLite in the state directory (`<state_dir>/sensei.db`, WAL).
//!
//! It knows nothing of windows, runbook actions or the lifecycle table: callers decide, the
//! store makes their decisions durable and atomic. Every write goes to one writer thread that
//! commits whatever is queued in one transaction (`writer`); reads use a second connection.
//! A call that writes returns only after the COMMIT, at the configured [`Durability`].
//!
//! The files: `types` (what goes in and out), `schema` (tables and column encodings),
//! `contract` (the async interface a backend implements; `Store`'s own methods are its
//! blocking adapter), `writer` (group commit), `feed` (the change feed readers wait on), `write` (migrations, batches, logs), `read`, `gate`, `lease`,
//! `route` (the alert deliveries each appended event causes, by its runbook's rules),
//! `outbox` (alert deliveries and their attempts), `hooks` (webhook signatures seen and
//! idempotency keys), `pool` (pool slots shared by every migration), `processes` (the process
//! group of each step's latest attempt).

mod contract;
mod error;
mod feed;
mod gate;
mod hooks;
mod lease;
mod outbox;
mod pool;
mod postgres;
mod processes;
mod read;
mod route;
mod schema;
mod sqlite;
mod types;
mod write;
mod writer;

#[cfg(test)]
mod tests;

use crate::event::{Event, MigrationId, MigrationState, NewEvent};
pub use contract::{Location, Store};
pub use error::{GateError, LeaseError, StoreError};
pub use gate::{GateDecision, GateInfo, GateOpen, GateOutcome, GateStatus, GateVote};
pub use lease::{Lease, LeaseHolder};
pub use outbox::{
    AttemptOutcome, AttemptRecord, Delivery, DeliveryAttempt, DeliveryKind, DeliveryState,
    NewDelivery,
};
pub use pool::{PoolHolder, PoolTake};
pub use postgres::{Postgres, redact};
pub use processes::StepProcess;
pub use schema::{DB_FILE, SCHEMA_VERSION};
pub use sqlite::Sqlite;

pub use types::{
    Batch, Committed, Durability, LogLine, LogStream, Migration, MigrationHead, NewLogLine,
    NewMigration, Reported, StepRow,
};
