//! Alerts (SPEC §2 `alerts`, §4 outbox): committed events become email and webhook
//! deliveries, delivered at least once.
//!
//! - `rules`: which events alert, under which name, and to which channels. The engine calls
//!   [`rules::route`] when it commits a batch, so a batch's deliveries are written in the
//!   same transaction as its events.

pub mod rules;
