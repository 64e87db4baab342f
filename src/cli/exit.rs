//! Exit codes (SPEC §5), and the one mapping from what went wrong to a code. Every library
//! error the CLI ends a command with gets its code from [`Code`], by the error's kind — the
//! kinds `server::error` maps to HTTP statuses — and every answer of a server from
//! [`of_status`]; so a command exits the same locally and through `--server` (a test below
//! holds the two mappings together). Only conditions the CLI finds itself (a flag that is
//! not a URL, a file it cannot read) name a code where they are found.

use crate::engine::EngineError;
use crate::engine::operation::Refused;
use crate::operator::{DecideError, Done, MovedOn};
use crate::store::{GateError, LeaseError, StoreError};

pub const OK: u8 = 0;
/// The migration or validation failed (or something failed here: the store, the server).
pub const FAILED: u8 = 1;
pub const USAGE: u8 = 2;
/// Refused: illegal transition, unauthorized, another process drives the migration.
pub const REFUSED: u8 = 3;

/// The exit code of an error, by its kind.
pub trait Code: std::fmt::Display {
    fn code(&self) -> u8;
}

/// Says the error, the way every command does, and gives its exit code.
pub fn fail(e: &impl Code) -> u8 {
    super::error(e);
    e.code()
}

/// The exit code of a server's answer that is not 2xx.
pub fn of_status(status: u16) -> u8 {
    match status {
        401 | 403 | 409 => REFUSED,
        400 | 404 | 413 | 415 | 422 => USAGE,
        _ => FAILED,
    }
}

/// The exit code of an operation that was carried out: a rollback that stopped at a failed
/// action failed; whatever else was done succeeded, whatever state that left.
pub fn of_done(done: Done) -> u8 {
    match done {
        Done::RolledBack { ok: false } => FAILED,
        Done::Paused | Done::Cancelled | Done::RolledBack { ok: true } | Done::Attached => OK,
    }
}

impl Code for StoreError {
    fn code(&self) -> u8 {
        match self {
            // The state directory named (flag, environment, configuration) is unusable, or a
            // migration id or prefix matches none or several.
            StoreError::StateDir { .. }
            | StoreError::Open { .. }
            | StoreError::NewerSchema { .. }
            | StoreError::NotFound(_)
            | StoreError::Ambiguous { .. } => USAGE,
            // Another writer changed the migration first: what was asked no longer applies.
            StoreError::StateChanged { .. } => REFUSED,
            StoreError::Exists(_)
            | StoreError::Busy
            | StoreError::Corrupt(_)
            | StoreError::Database(_)
            | StoreError::Closed
            | StoreError::Fenced(_) => FAILED,
        }
    }
}

impl Code for LeaseError {
    fn code(&self) -> u8 {
        match self {
            LeaseError::Held { .. } => REFUSED,
            // This process's own lease was taken over while it drove.
            LeaseError::Lost { .. } => FAILED,
            LeaseError::Store(e) => e.code(),
        }
    }
}

impl Code for Refused {
    fn code(&self) -> u8 {
        REFUSED
    }
}

impl Code for MovedOn {
    fn code(&self) -> u8 {
        REFUSED
    }
}

impl Code for EngineError {
    fn code(&self) -> u8 {
        match self {
            EngineError::Refused(_) | EngineError::Illegal(_) | EngineError::Orphan(_) => REFUSED,
            EngineError::Lease(e) => e.code(),
            EngineError::Store(e) => e.code(),
            EngineError::Runbook { .. }
            | EngineError::Plan(_)
            | EngineError::Env(_)
            | EngineError::Internal(_) => FAILED,
        }
    }
}

impl Code for DecideError {
    fn code(&self) -> u8 {
        match self {
            DecideError::NoStep { .. } | DecideError::NotAGate { .. } => USAGE,
            DecideError::Store(e) | DecideError::Gate(GateError::Store(e)) => e.code(),
            DecideError::NotReached { .. } | DecideError::Refused(_) | DecideError::Gate(_) => {
                REFUSED
            }
        }
    }
}

impl Code for crate::config::ConfigError {
    fn code(&self) -> u8 {
        USAGE
    }
}

/// `sensei serve`'s flags, environment and configuration file.
impl Code for crate::server::config::ConfigError {
    fn code(&self) -> u8 {
        USAGE
    }
}

impl Code for crate::plan::PlanError {
    fn code(&self) -> u8 {
        FAILED
    }
}

/// A server that could not start or stopped on an error failed, whatever the cause.
impl Code for crate::server::ServeError {
    fn code(&self) -> u8 {
        FAILED
    }
}

#[cfg(test)]
mod tests;
