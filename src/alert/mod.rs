//! Alerts (SPEC §2 `alerts`, §4 outbox): committed events become email and webhook
//! deliveries, delivered at least once.
//!
//! - Routing (which events alert, under which name, and to which channels) is the store's:
//!   `store::route` routes every event it appends in that event's transaction, so no writer
//!   has to remember to. This module starts from the deliveries in the outbox.
//! - `deliver`: the worker that claims due deliveries, renders (`message`, `summary`,
//!   `payload`), sends (`email`, `webhook`, with `sign`) and records each attempt, retrying
//!   with backoff. It runs beside a driver (`sensei run`) or a server, never inside a commit.

mod backoff;
mod deliver;
pub mod email;
pub mod message;
pub mod payload;
pub mod send;
pub mod sign;
mod summary;
pub mod webhook;

#[cfg(test)]
mod tests;

pub use deliver::{Attempt, Deliverer};
