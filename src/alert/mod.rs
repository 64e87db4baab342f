//! Alerts (SPEC §2 `alerts`, §4 outbox): committed events become email and webhook
//! deliveries, delivered at least once.
//!
//! - `rules`: which events alert, under which name, and to which channels. The engine calls
//!   [`rules::route`] when it commits a batch, so a batch's deliveries are written in the
//!   same transaction as its events; so do the other writers of alerting events (creation,
//!   gate votes and gate timeouts), each in its own transaction.
//! - `deliver`: the worker that claims due deliveries, renders (`message`, `summary`,
//!   `payload`), sends (`email`, `webhook`, with `sign`) and records each attempt, retrying
//!   with backoff. It runs beside a driver (`sensei run`) or a server, never inside a commit.

mod backoff;
mod deliver;
pub mod email;
pub mod message;
pub mod payload;
pub mod rules;
pub mod send;
pub mod sign;
mod summary;
pub mod webhook;

#[cfg(test)]
mod tests;

pub use deliver::{Attempt, Deliverer};
