//! What each kind of event says: one type per [`EventKind`], with its fields. Writers build
//! these and readers (crash recovery, the CLI's views, alerts) read their fields, so the
//! fields of a kind are written down once, here.
//!
//! The store and the API keep an event's data as the JSON object these types serialize to:
//! exactly what the engine wrote before they existed (no store migration, no API change).
//! Some keys are written as `null` in one shape of a kind and left out in another; such a
//! field is an `Option<Option<T>>` (see [`written`]). Reading is lenient: a field that an
//! older version did not write reads as its default.

use super::{EventKind, MigrationState, Operation};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

/// A field that is left out (`None`) or written, possibly as `null` (`Some(None)`).
mod written {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<T: Serialize, S: Serializer>(
        value: &Option<Option<T>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(inner) => inner.serialize(s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn yes() -> bool {
    true
}

/// The fields of one kind of event: [`super::Event::read`] reads them from an event of that
/// kind.
pub trait Fields: Into<EventData> + serde::de::DeserializeOwned {
    const KIND: EventKind;
}

/// The fields of an event of `kind` with `data` when it is of `T`'s kind (for an event not yet
/// committed, or data held apart from its event).
pub fn read<T: Fields>(kind: EventKind, data: &Json) -> Option<T> {
    if kind != T::KIND {
        return None;
    }
    T::deserialize(data).ok()
}

/// Declares [`EventData`] with one variant per kind, each holding the type of the same name.
macro_rules! event_data {
    ($($kind:ident,)+) => {
        /// An event's fields, by kind.
        #[derive(Debug, Clone, PartialEq)]
        pub enum EventData { $($kind($kind),)+ }

        impl EventData {
            pub fn kind(&self) -> EventKind {
                match self { $(EventData::$kind(_) => EventKind::$kind,)+ }
            }

            /// The JSON object stored and shown as the event's data.
            pub fn to_json(&self) -> Json {
                let json = match self { $(EventData::$kind(d) => serde_json::to_value(d),)+ };
                json.unwrap_or_else(|_| Json::Object(Map::new()))
            }

            /// Reads the data of an event of `kind`; `None` when it is not an object of that
            /// kind's fields.
            pub fn parse(kind: EventKind, data: &Json) -> Option<EventData> {
                match kind {
                    $(EventKind::$kind => {
                        $kind::deserialize(data).ok().map(EventData::$kind)
                    })+
                }
            }
        }

        $(impl From<$kind> for EventData {
            fn from(d: $kind) -> Self { EventData::$kind(d) }
        }

        impl Fields for $kind {
            const KIND: EventKind = EventKind::$kind;
        })+
    };
}

event_data! {
    MigrationCreated,
    StateChanged,
    StepWaiting,
    StepStarted,
    StepSucceeded,
    StepFailed,
    StepRetrying,
    StepSkipped,
    StepCancelled,
    StepInterrupted,
    StepExpanded,
    StepProgress,
    GateWaiting,
    GateDecided,
    GateTimeoutSoon,
    RollbackStarted,
    StepRolledBack,
    RollbackFailed,
    RollbackFinished,
    WindowClosing,
    WindowClosed,
    OperatorRequest,
    DriverAttached,
}

/// A migration was created: from which runbook, with which (masked) params, by whom; a
/// schedule or a webhook adds where it came from (`origin`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MigrationCreated {
    pub runbook: String,
    pub path: Json,
    pub params: Json,
    pub digest: String,
    pub by: String,
    pub steps: usize,
    #[serde(flatten)]
    pub origin: Map<String, Json>,
}

/// The migration moved from one lifecycle state to another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateChanged {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<MigrationState>,
    pub to: MigrationState,
    #[serde(default)]
    pub reason: String,
    /// Who caused it (an operator, `window`, `timeout`), when not the run itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// A cancel without rollback: the succeeded steps whose changes stay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept_changes: Option<Vec<String>>,
    /// A cancel after rolling back what succeeded.
    #[serde(default, skip_serializing_if = "is_false")]
    pub rolled_back: bool,
}

/// A step waits for its window.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StepWaiting {
    pub window: String,
    pub reason: String,
}

/// An attempt started; `command` is the masked command of a `run` step, `checkpoint` the
/// step's last recorded checkpoint the attempt goes on from (masked; absent when none).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StepStarted {
    pub attempt: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
}

/// A step succeeded: an attempt (`attempt`, `duration_ms`, `exit_code`, `outputs`), a gate
/// (`gate`), a fan-out (`expansions`), or a step an earlier run made and a retry keeps
/// (`kept`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StepSucceeded {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none", with = "written")]
    pub duration_ms: Option<Option<i64>>,
    #[serde(skip_serializing_if = "Option::is_none", with = "written")]
    pub exit_code: Option<Option<i32>>,
    #[serde(skip_serializing_if = "Option::is_none", with = "written")]
    pub outputs: Option<Option<Json>>,
    /// A gate's status when it closed (`approved`, `rejected`, `timed_out`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expansions: Option<usize>,
    #[serde(skip_serializing_if = "is_false")]
    pub kept: bool,
}

/// A step failed for good: an attempt, a gate (rejected, timed out), a fan-out, or a step
/// that could not start (`error` says why).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StepFailed {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", with = "written")]
    pub exit_code: Option<Option<i32>>,
    #[serde(skip_serializing_if = "Option::is_none", with = "written")]
    pub duration_ms: Option<Option<i64>>,
    /// A gate's status when it closed (`approved`, `rejected`, `timed_out`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expansions: Option<usize>,
}

/// An attempt failed and another follows after `delay_ms`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StepRetrying {
    pub attempt: u32,
    pub of: u32,
    pub error: String,
    pub exit_code: Option<i32>,
    pub delay_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StepSkipped {
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StepCancelled {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
}

/// A step was running when its driver stopped: run again (`rerun`) or left to the operator;
/// `process_group` when its processes still run.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StepInterrupted {
    pub rerun: bool,
    pub idempotent: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process_group: Option<i32>,
}

/// A `for_each` step expanded into one step per item.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StepExpanded {
    pub items: Vec<Json>,
    pub steps: Vec<String>,
}

/// A running attempt's progress reached another whole percent (`progress=DONE/TOTAL` in
/// its `$SENSEI_OUTPUT`). Rate-limited by the engine (`engine::core::live`): at most one per
/// step per second, and only when the whole percent changed, so at most 101 per attempt.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StepProgress {
    pub attempt: u32,
    pub done: u64,
    pub total: u64,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct GateWaiting {
    pub approvers: Vec<String>,
    pub required: u32,
    pub deadline: Option<String>,
    pub starter: String,
    pub digest: String,
}

/// A gate decision: a vote (`approve`, `reject`, with the tally), or the gate ending on its
/// own (`timeout`, `cancel`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct GateDecided {
    pub who: String,
    pub decision: String,
    #[serde(skip_serializing_if = "Option::is_none", with = "written")]
    pub comment: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none", with = "written")]
    pub digest: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approvals: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub required: Option<u32>,
    /// What the gate's `on_timeout` did (`approve`, `fail`, `cancel`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_timeout: Option<String>,
    /// The gate's status after the decision.
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct GateTimeoutSoon {
    pub deadline: String,
    pub approvers: Vec<String>,
    /// Who has approved so far.
    pub approvals: Vec<String>,
    pub required: u32,
}

/// A rollback began: the steps it undoes, in order, and how it ends (`fail` or `cancel`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RollbackStarted {
    pub steps: Vec<String>,
    pub then: String,
    /// Succeeded steps with a rollback command that it keeps because they come before a
    /// point of no return that succeeded.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kept: Vec<String>,
    /// An admin allowed it to cross points of no return.
    #[serde(skip_serializing_if = "is_false")]
    pub past_point_of_no_return: bool,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct StepRolledBack {}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RollbackFailed {
    pub error: String,
}

/// A rollback ended: all undone (`ok`), or stopped at `failed_step`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RollbackFinished {
    /// A rollback that does not say it stopped finished.
    #[serde(default = "yes")]
    pub ok: bool,
    pub rolled_back: u32,
    pub failed_step: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct WindowClosing {
    pub window: String,
    pub closes: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct WindowClosed {
    pub window: String,
    pub on_close: String,
    pub next_opens: Option<String>,
}

/// An operator asked for a lifecycle operation (the driver carries out pause, cancel and
/// rollback; for the others it is the audit record).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperatorRequest {
    pub op: Operation,
    #[serde(default)]
    pub by: String,
    #[serde(default)]
    pub local: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// A cancel's `--rollback`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub rollback: bool,
    /// A rollback's (or a cancel's `--rollback`) `--past-point-of-no-return`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub past_point_of_no_return: bool,
}

/// A process took the migration over to drive it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriverAttached {
    pub by: String,
    pub op: Operation,
    pub pid: u32,
    pub host: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Writes `data` and reads it back: the JSON is `expected`, and it parses to `data`.
    fn round_trip(data: impl Into<EventData>, expected: Json) {
        let data = data.into();
        assert_eq!(data.to_json(), expected);
        assert_eq!(EventData::parse(data.kind(), &expected), Some(data));
    }

    #[test]
    fn fields_are_written_as_before() {
        round_trip(
            StepSucceeded {
                attempt: Some(2),
                duration_ms: Some(None),
                exit_code: Some(Some(0)),
                outputs: Some(None),
                ..StepSucceeded::default()
            },
            json!({ "attempt": 2, "duration_ms": null, "exit_code": 0, "outputs": null }),
        );
        round_trip(
            StepSucceeded {
                kept: true,
                ..StepSucceeded::default()
            },
            json!({ "kept": true }),
        );
        round_trip(
            StateChanged {
                from: Some(MigrationState::Running),
                to: MigrationState::Cancelled,
                reason: "cancelled".into(),
                by: Some("alice".into()),
                kept_changes: Some(vec!["copy".into()]),
                rolled_back: false,
            },
            json!({ "from": "running", "to": "cancelled", "reason": "cancelled", "by": "alice", "kept_changes": ["copy"] }),
        );
        round_trip(
            OperatorRequest {
                op: Operation::Cancel,
                by: "bob".into(),
                local: true,
                comment: None,
                rollback: true,
                past_point_of_no_return: false,
            },
            json!({ "op": "cancel", "by": "bob", "local": true, "rollback": true }),
        );
        round_trip(
            RollbackFinished {
                ok: true,
                rolled_back: 3,
                failed_step: None,
            },
            json!({ "ok": true, "rolled_back": 3, "failed_step": null }),
        );
        round_trip(StepRolledBack {}, json!({}));
    }

    #[test]
    fn a_kind_and_its_fields_go_together() {
        let data = EventData::from(StepSkipped {
            reason: "when was false".into(),
        });
        assert_eq!(data.kind(), EventKind::StepSkipped);
        // Data of another shape does not read as a kind that needs fields.
        assert_eq!(
            EventData::parse(EventKind::DriverAttached, &json!({})),
            None
        );
        assert!(EventData::parse(EventKind::StepSkipped, &json!({})).is_some());
    }
}
