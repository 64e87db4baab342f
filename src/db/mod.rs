//! Databases: what `sql` steps (and `sql` probes) do, kept out of the engine.
//!
//! The engine never holds a database connection. It starts `sensei __step sql` ([`child`])
//! as the step's process, so process groups, timeouts, pause and cancel kills, logs
//! streamed to the store, `$SENSEI_OUTPUT` outputs and orphan handling after a crash are
//! the same as for `run` steps. Where each invariant lives:
//!
//! - [`dsn`]: which engine a URL names, and every form of its password (a secret wherever
//!   the URL goes; the runbook checks, the plan's masker and the engine use it).
//! - [`spec`]: the rendered step handed to the process on stdin, never in its arguments.
//! - [`connect`]: one sqlx connection, TLS as the DSN's `sslmode`/`ssl-mode` says, the
//!   text protocol, the session id a cancel names.
//! - [`exec`]: transactions (all or nothing by default), results bounded as outputs.
//! - [`cancel`]: a statement is cancelled on the server, from a second connection, when
//!   the step is stopped or times out.
//! - [`sqltext`]: splitting statements and putting `params` in as literals, by each
//!   engine's lexical rules.
//! - [`value`]: column values as JSON outputs, by type.
//! - [`copy`]: `copy` steps (`sensei __step copy`): rows streamed from one database into a
//!   table on another in batches, each batch one transaction and one checkpoint.
//! - [`normal`]: values of both engines made comparable (canonical bytes, by class), for
//!   `compare` steps ([`compare`]).

pub mod cancel;
pub mod child;
pub mod compare;
pub mod connect;
pub mod copy;
pub mod dsn;
pub mod exec;
pub mod normal;
pub mod spec;
pub mod sqltext;
pub mod value;
