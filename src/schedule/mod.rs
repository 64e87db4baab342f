//! Schedules: cron tick planner, catch-up, overlap rules and fire times -> scheduled
//! migrations (no HTTP here; `server::scheduler` runs this on the server's clock).
//!
//! - [`plan`]: pure: the fire times of a schedule that are due between the last fire time
//!   handled and now, with `catch_up` applied to the ones missed while the server was down,
//!   and what `overlap` says about a fire time given the schedule's earlier migrations.
//! - [`id`]: the deterministic migration id of a fire time, so that a fire time never
//!   creates two migrations, even across restarts, without anything stored beside them.
//! - [`fire`]: creates the migration of a fire time (params rendered and resolved, plan
//!   built, `schedule` and `fire_time` recorded in its created event).

pub mod fire;
pub mod id;
pub mod plan;

pub use fire::{Fired, starter};
pub use id::{fire_time, keyed_id, scheduled_id};
