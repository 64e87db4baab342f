//! Events and the names shared by every layer: migration and step states, event kinds and
//! their stable wire names. A leaf module, so the store can save events without importing the
//! engine, and the server can read them without knowing how steps run.
//!
//! Wire names are stored in the database and returned by the API: never rename one.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

mod checkpoint;
mod data;
mod progress;
pub use checkpoint::{Checkpoint, MAX_CHECKPOINT};
pub use data::*;
pub use progress::Progress;
use serde_json::Value as Json;
use std::fmt;

/// Declares a fieldless enum with a stable snake_case wire name per variant, `as_str`,
/// `Display`, `FromStr` (the error lists every name) and `ALL`.
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $wire:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ::serde::Serialize, ::serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant,)+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire,)+ }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::event::UnknownName;
            fn from_str(s: &str) -> ::std::result::Result<Self, $crate::event::UnknownName> {
                match s {
                    $($wire => ::std::result::Result::Ok($name::$variant),)+
                    _ => Err($crate::event::UnknownName {
                        what: stringify!($name),
                        found: s.to_owned(),
                        expected: &[$($wire,)+],
                    }),
                }
            }
        }
    };
}

/// Lets other modules (the store's gate and log enums) declare wire enums the same way.
pub(crate) use wire_enum;

/// A name that is not one of an enum's wire names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{found}` is not a {what}; expected one of: {}", expected.join(", "))]
pub struct UnknownName {
    pub what: &'static str,
    pub found: String,
    pub expected: &'static [&'static str],
}

wire_enum! {
    /// The lifecycle state of a migration (SPEC §3). Only `engine::lifecycle` decides which
    /// changes are allowed.
    MigrationState {
        Created = "created",
        Analyzing = "analyzing",
        Planning = "planning",
        AwaitingApproval = "awaiting_approval",
        Approved = "approved",
        Running = "running",
        Paused = "paused",
        Completed = "completed",
        Validating = "validating",
        Certified = "certified",
        Failed = "failed",
        Cancelled = "cancelled",
    }
}

impl MigrationState {
    /// No transition leaves this state.
    pub fn is_terminal(self) -> bool {
        matches!(self, MigrationState::Certified | MigrationState::Cancelled)
    }

    /// A driver has stopped working on it: terminal, failed (until a retry) or paused.
    pub fn is_at_rest(self) -> bool {
        matches!(
            self,
            MigrationState::Certified
                | MigrationState::Cancelled
                | MigrationState::Failed
                | MigrationState::Paused
        )
    }
}

wire_enum! {
    /// The state of one plan step (a step, or one expansion of a fan-out step).
    StepState {
        Pending = "pending",
        Waiting = "waiting",
        Running = "running",
        Retrying = "retrying",
        Succeeded = "succeeded",
        Failed = "failed",
        Skipped = "skipped",
        Cancelled = "cancelled",
        Interrupted = "interrupted",
        RolledBack = "rolled_back",
    }
}

impl StepState {
    /// Finished for its dependents: they may start (skipped counts as finished, SPEC §2).
    pub fn lets_dependents_run(self) -> bool {
        matches!(self, StepState::Succeeded | StepState::Skipped)
    }

    /// Will not change again without an operator (retry, resume) or a rollback.
    pub fn is_settled(self) -> bool {
        matches!(
            self,
            StepState::Succeeded
                | StepState::Failed
                | StepState::Skipped
                | StepState::Cancelled
                | StepState::RolledBack
        )
    }
}

wire_enum! {
    /// What happened. Data fields per kind are documented in `docs/operations.md`.
    EventKind {
        MigrationCreated = "migration_created",
        StateChanged = "state_changed",
        StepWaiting = "step_waiting",
        StepStarted = "step_started",
        StepSucceeded = "step_succeeded",
        StepFailed = "step_failed",
        StepRetrying = "step_retrying",
        StepSkipped = "step_skipped",
        StepCancelled = "step_cancelled",
        StepInterrupted = "step_interrupted",
        StepExpanded = "step_expanded",
        StepProgress = "step_progress",
        GateWaiting = "gate_waiting",
        GateDecided = "gate_decided",
        GateTimeoutSoon = "gate_timeout_soon",
        RollbackStarted = "rollback_started",
        StepRolledBack = "step_rolled_back",
        RollbackFailed = "rollback_step_failed",
        RollbackFinished = "rollback_finished",
        WindowClosing = "window_closing",
        WindowClosed = "window_closed",
        OperatorRequest = "operator_request",
        DriverAttached = "driver_attached",
    }
}

wire_enum! {
    /// A lifecycle operation asked for by an operator (CLI or API).
    Operation {
        Start = "start",
        Pause = "pause",
        Resume = "resume",
        Cancel = "cancel",
        Retry = "retry",
        Rollback = "rollback",
    }
}

wire_enum! {
    /// A gate decision.
    Decision {
        Approve = "approve",
        Reject = "reject",
    }
}

/// A migration id: `m-` and 12 lowercase base-32 characters, time-ordered (sorting by id
/// sorts by creation) and random enough that two machines never collide in practice.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MigrationId(String);

impl MigrationId {
    /// A fresh id for a migration created at `now`.
    pub fn generate(now: DateTime<Utc>) -> Self {
        const ALPHABET: &[u8] = b"0123456789abcdefghjkmnpqrstvwxyz";
        // 35 bits of seconds (until the year 3058), then 25 random bits.
        let secs = now.timestamp().max(0) as u64 & ((1 << 35) - 1);
        let bits = (secs << 25) | fastrand::u64(..(1 << 25));
        let mut id = String::with_capacity(14);
        id.push_str("m-");
        for i in (0..12).rev() {
            id.push(ALPHABET[((bits >> (i * 5)) & 31) as usize] as char);
        }
        MigrationId(id)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<String> for MigrationId {
    fn from(s: String) -> Self {
        MigrationId(s)
    }
}

impl fmt::Display for MigrationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An event as committed: numbered per migration from 1, in commit order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub seq: i64,
    pub migration: MigrationId,
    pub at: DateTime<Utc>,
    pub kind: EventKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// Kind-specific fields; secret values are already masked.
    pub data: Json,
}

/// An event about to be committed.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub kind: EventKind,
    pub step: Option<String>,
    pub data: Json,
}

impl Event {
    /// The event's fields, read by its kind (`None` when its data is not of that kind).
    pub fn fields(&self) -> Option<EventData> {
        EventData::parse(self.kind, &self.data)
    }

    /// The fields of this event when it is of `T`'s kind: `event.read::<StateChanged>()`.
    pub fn read<T: Fields>(&self) -> Option<T> {
        read(self.kind, &self.data)
    }
}

impl NewEvent {
    /// An event about the migration.
    pub fn of(data: impl Into<EventData>) -> Self {
        let data = data.into();
        NewEvent {
            kind: data.kind(),
            step: None,
            data: data.to_json(),
        }
    }

    /// An event about one step.
    pub fn step(step: &str, data: impl Into<EventData>) -> Self {
        NewEvent {
            step: Some(step.to_owned()),
            ..NewEvent::of(data)
        }
    }

    pub fn new(kind: EventKind, data: Json) -> Self {
        NewEvent {
            kind,
            step: None,
            data,
        }
    }

    pub fn for_step(kind: EventKind, step: &str, data: Json) -> Self {
        NewEvent {
            kind,
            step: Some(step.to_owned()),
            data,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_round_trip() {
        for s in MigrationState::ALL {
            assert_eq!(s.as_str().parse::<MigrationState>(), Ok(*s));
            assert_eq!(serde_json::to_value(s).ok(), Some(Json::from(s.as_str())));
        }
        for s in StepState::ALL {
            assert_eq!(s.as_str().parse::<StepState>(), Ok(*s));
        }
        for k in EventKind::ALL {
            assert_eq!(k.as_str().parse::<EventKind>(), Ok(*k));
        }
        let err = "runing"
            .parse::<MigrationState>()
            .err()
            .map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("awaiting_approval")));
    }

    #[test]
    fn ids_sort_by_creation_time() {
        let a =
            MigrationId::generate(DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default());
        let b =
            MigrationId::generate(DateTime::from_timestamp(1_700_000_001, 0).unwrap_or_default());
        assert!(a < b, "{a} < {b}");
        assert_eq!(a.as_str().len(), 14);
    }
}
