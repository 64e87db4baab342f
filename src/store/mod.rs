//! The store: durable migrations, their event log, derived state, logs, gate decisions and
//! leases (SQLite in the state directory by default). Being written; see issue 3.
