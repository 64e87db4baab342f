//! What an operator does to a migration from outside its driver, shared by the CLI and the
//! server so that both follow the same rules with the same words:
//! - [`protocol`]: a lifecycle operation on a migration another process may be driving —
//!   record the request, follow it until its effect shows, take the migration over when its
//!   driver stopped without acting. The one owner of that protocol: the CLI and the server
//!   only wait (blocking or async) and attach (foreground or background) differently.
//! - [`gate`]: a gate decision (the rules of [`crate::engine::gate`], then the store's
//!   atomic vote).

pub mod gate;
pub mod protocol;

pub use gate::{DecideError, decide};
pub use protocol::{
    Ask, Done, Inadmissible, MovedOn, Observed, Progress, admit, done, observe, progress, request,
};

/// Who asks for something, as the audit trail records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requester<'a> {
    pub who: &'a str,
    /// An unauthenticated identity (the CLI's `--as`, a server without tokens).
    pub local: bool,
    pub comment: Option<&'a str>,
    /// The roles its token holds; `None` for an identity nobody proved, which holds every
    /// role (see [`crate::engine::gate::Decider`]).
    pub roles: Option<&'a [String]>,
}
