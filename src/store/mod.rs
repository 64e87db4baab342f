//! The store: durable migrations, their event log, derived step rows, logs, gate decisions
//! and leases. [`Store`] (`contract`) is the one handle everything uses, over either backend:
//! SQLite in the state directory (`<state_dir>/sensei.db`, WAL; the default) or PostgreSQL
//! shared by several servers (`postgres/`).
//!
//! It knows nothing of windows, runbook actions or the lifecycle table: callers decide, the
//! store makes their decisions durable and atomic. A call that writes returns only after the
//! COMMIT.
//!
//! The files: `contract` (the handle and [`Location`]), `types` (what goes in and out, shared
//! by both backends, as are the row types of `gate`, `lease`, `outbox`, `pool`, `processes`),
//! `error`, `feed` (the change feed readers wait on), `route` (the alert deliveries each
//! appended event causes, by its runbook's rules: one rule for both backends), and
//! `postgres/` (the PostgreSQL backend). The SQLite backend is `sqlite` (its handle),
//! `writer` (one thread that group-commits whatever is queued in one transaction; reads use a
//! second connection), `schema` (tables and column encodings, which PostgreSQL keeps too),
//! `write` (migrations, batches, logs), `read`, `gate`, `lease`, `outbox` (alert deliveries
//! and their attempts), `hooks` (webhook signatures seen and idempotency keys), `pool` (pool
//! slots shared by every migration) and `processes` (the process group of each step's latest
//! attempt).

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
