//! Sensei: a workflow engine for production migrations, driven by YAML runbooks.
//!
//! The modules, in pipeline order:
//! - [`diag`]: positions and diagnostics, rendered like a compiler's.
//! - [`runbook`]: runbook text to a checked [`runbook::Runbook`] (or every problem in it).
//! - [`calendar`]: window math shared by plan and engine: where a window stands at an
//!   instant, its next openings (DST included), whether a bound step fits, waiting reasons.
//! - [`plan`]: the resolved DAG of a runbook with concrete params: phases, fan-out, waves,
//!   critical path, gates, windows and a digest that approvals bind to.
//! - [`event`]: migration and step states, event kinds: the names every layer shares.
//! - [`host`]: this host's name and the identity of its processes (pid and start time).
//! - [`engine`]: the lifecycle and the executor that walks a plan.
//! - [`operator`]: what an operator does from outside a driver, shared by the CLI and the
//!   server: the operator protocol (record a request, follow it to its effect, refuse or
//!   take over when the driver did not act; [`operator::protocol`]) and gate decisions.
//! - [`store`]: the durable event log and derived state of migrations (SQLite).
//! - [`process`]: step processes in their own process groups, owned and killed with the engine.
//! - [`db`]: `sql` and `copy` steps: DSNs and their secrets, the `sensei __step sql` process
//!   that runs the SQL, cancels on the server, and writes outputs, and `sensei __step copy`,
//!   which copies rows between databases in batches, a checkpoint after each.
//! - [`alert`]: committed events routed by the runbook's rules into the store's outbox, and
//!   delivered (email, webhooks) at least once, with retries.
//! - [`config`]: the configuration file shared by the CLI and the server.
//! - [`view`]: JSON documents of migrations shared by the CLI's `--format json` and the API.
//! - [`eta`]: estimated times to finish for running steps and migrations (from progress
//!   reports and earlier runs), shown by those documents, metrics and the console.
//! - [`schedule`]: cron tick planner, catch-up, overlap, fire times -> scheduled migrations.
//! - [`server`]: `sensei serve`, the REST API over the same calls as the CLI.
//! - [`cli`]: the `sensei` command line, a thin shell over the above.

pub mod alert;
pub mod calendar;
pub mod cli;
pub mod config;
pub mod db;
pub mod diag;
pub mod engine;
pub mod eta;
pub mod event;
pub mod host;
pub mod operator;
pub mod plan;
pub mod process;
pub mod runbook;
pub mod schedule;
pub mod server;
pub mod store;
pub mod view;
