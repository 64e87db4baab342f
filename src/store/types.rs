//! The plain data the store takes and returns: migrations, batches of changes, step rows and
//! log lines. No SQL here; how these are stored is `schema`'s and `write`'s business.

use crate::event::{Checkpoint, MigrationId, MigrationState, NewEvent, Progress, StepState};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value as Json;
use std::collections::BTreeMap;

use super::gate::GateOpen;
use super::lease::Lease;

/// How hard each commit insists on reaching the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// WAL with `synchronous=FULL`: a returned commit survives a power cut.
    #[default]
    Full,
    /// WAL with `synchronous=NORMAL`: survives a crash of the process, not of the machine.
    Normal,
}

/// A migration about to be created.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMigration {
    pub id: MigrationId,
    /// The runbook's name.
    pub runbook: String,
    pub runbook_path: String,
    /// The text the migration started with; a resumed migration keeps it (SPEC §6).
    pub runbook_text: String,
    /// The SQL files the runbook reads, by path as written, as they were at creation.
    pub runbook_files: BTreeMap<String, String>,
    /// The real values, secrets included: a resumed migration needs them (SPEC §6).
    pub params: Json,
    /// The same with secret values shown as `***`, for everything that prints them.
    pub masked_params: Json,
    pub digest: String,
    pub starter: String,
    /// The plan's step ids; each gets a `pending` row, in this order.
    pub steps: Vec<String>,
    /// The data of the `migration_created` event.
    pub created_event_data: Json,
}

/// What a list shows of a migration: not its runbook text and params, which can be large
/// and would be read for every migration ever run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MigrationHead {
    pub id: MigrationId,
    pub runbook: String,
    pub state: MigrationState,
    pub starter: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Migration {
    /// Its runbook as it was created: the stored text, with the stored SQL files.
    pub fn load_runbook(&self) -> crate::runbook::Checked {
        crate::runbook::load_with(
            &self.runbook_path,
            self.runbook_text.as_bytes(),
            crate::runbook::Files::Stored(&self.runbook_files),
        )
    }
}

/// A migration as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Migration {
    pub id: MigrationId,
    pub runbook: String,
    pub runbook_path: String,
    pub runbook_text: String,
    /// The SQL files the runbook reads, by path as written, as they were at creation
    /// (not in API documents: SQL may hold what a viewer should not read).
    #[serde(skip)]
    pub runbook_files: BTreeMap<String, String>,
    /// Secrets included: never print this; print `masked_params`.
    #[serde(skip)]
    pub params: Json,
    pub masked_params: Json,
    pub digest: String,
    pub state: MigrationState,
    pub starter: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The seq of its newest event.
    pub last_seq: i64,
}

impl NewMigration {
    /// The migration this becomes once stored at `at` in `created`, its first event `seq`
    /// (what either backend's create answers).
    pub fn stored(self, at: DateTime<Utc>, last_seq: i64) -> Migration {
        Migration {
            id: self.id,
            runbook: self.runbook,
            runbook_path: self.runbook_path,
            runbook_text: self.runbook_text,
            runbook_files: self.runbook_files,
            params: self.params,
            masked_params: self.masked_params,
            digest: self.digest,
            state: MigrationState::Created,
            starter: self.starter,
            created_at: at,
            updated_at: at,
            last_seq,
        }
    }
}

/// Changes to one migration, committed all or nothing.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Batch {
    /// When set and the stored state differs, nothing of the batch is written
    /// ([`super::StoreError::StateChanged`]).
    pub expect_state: Option<MigrationState>,
    /// The new state; the caller has already checked the lifecycle.
    pub state: Option<MigrationState>,
    /// Appended with consecutive seqs and the commit's time.
    pub events: Vec<NewEvent>,
    /// Upserted by step id.
    pub steps: Vec<StepRow>,
    /// Gates to open (an open gate stays as it is, votes included).
    pub gates: Vec<GateOpen>,
    /// The driver's lease: when set, the batch is refused ([`super::StoreError::Fenced`])
    /// unless the migration's lease row still holds its token.
    pub fence: Option<Lease>,
}

/// What a committed batch became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// The seqs given to the batch's events, in order.
    pub seqs: Vec<i64>,
    /// The commit's time, as stored (millisecond precision).
    pub at: DateTime<Utc>,
}

/// The derived state of one plan step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepRow {
    pub step: String,
    pub state: StepState,
    pub attempts: u32,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub exit_code: Option<i32>,
    pub outputs: Option<Json>,
    pub error: Option<String>,
    /// Why it waits, was skipped or was interrupted.
    pub reason: Option<String>,
    /// It succeeded before a retry and passes again, in order, without running (shown in
    /// views only when set: its `reason` says so in words too).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub kept: bool,
    /// The latest progress its latest attempt reported (shown only when it reported any).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<Reported>,
    /// The last checkpoint its attempts recorded (`checkpoint=`), which its next attempt goes
    /// on from; kept across attempts and retries, cleared when the step is rolled back (shown
    /// only when there is one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<Checkpoint>,
}

/// A step's progress as the engine heard it, and when (on the engine's clock, as
/// `started_at`): an ETA extrapolates from this moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Reported {
    #[serde(flatten)]
    pub progress: Progress,
    pub at: DateTime<Utc>,
}

impl StepRow {
    /// A row in `state` with nothing else known yet.
    pub fn new(step: &str, state: StepState) -> Self {
        StepRow {
            step: step.to_owned(),
            state,
            attempts: 0,
            started_at: None,
            finished_at: None,
            exit_code: None,
            outputs: None,
            error: None,
            reason: None,
            kept: false,
            progress: None,
            checkpoint: None,
        }
    }
}

crate::event::wire_enum! {
    /// Where a log line came from: the step's stdout or stderr, or sensei itself.
    LogStream {
        Stdout = "stdout",
        Stderr = "stderr",
        Sensei = "sensei",
    }
}

/// A line of step output about to be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLogLine {
    pub step: String,
    pub attempt: u32,
    pub stream: LogStream,
    pub at: DateTime<Utc>,
    pub text: String,
}

/// A stored line of step output; `seq` grows with every line the store writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogLine {
    pub seq: i64,
    pub step: String,
    pub attempt: u32,
    pub stream: LogStream,
    pub at: DateTime<Utc>,
    pub text: String,
}
