//! `copy` steps: rows read from a query on one database and written into a table on another,
//! in batches, by `sensei __step copy` ([`child`]), a process the engine runs like a `sql`
//! step's (its spec on stdin, its log streamed, stopped with SIGTERM, killed with the engine).
//!
//! The contract (docs/runbooks.md, "Copying tables (`copy`)") and where each part lives:
//!
//! - **Batches are key ranges.** The source is read in the order of an integer `key`,
//!   keyset-paginated (`WHERE key > last ORDER BY key LIMIT batch`: [`source`]), so each
//!   batch is the rows of one range of keys and the next one starts after it, without
//!   `OFFSET`, in a short statement of its own (nothing holds a snapshot for the whole copy).
//! - **One transaction per batch.** Each batch is written in one transaction on the target
//!   (PostgreSQL `COPY ... FROM STDIN`, MySQL multi-row `INSERT`s: [`target`], [`encode`]);
//!   only once it has committed does the step write `checkpoint=<last key>` and
//!   `progress=` to `$SENSEI_OUTPUT` ([`job`]).
//! - **Never a row twice.** The step owns its key range in the target table. Its first
//!   batch's transaction first deletes the target's rows in the range after the checkpoint it
//!   was given (all of the range without one). A crash between a commit and the checkpoint
//!   being recorded leaves rows after the recorded checkpoint; the next attempt deletes them
//!   before it writes them again ([`job`]).
//! - **Types.** Each source column's conversion into its target column is chosen before
//!   anything is written, and every column that cannot be copied is reported at once
//!   ([`layout`], [`types`]); each value's problem names its column and its row's key
//!   ([`batch`]).
//! - **Names** of tables and columns are parsed and quoted, never spliced ([`names`]).

pub mod batch;
pub mod child;
pub mod encode;
pub mod job;
pub mod layout;
pub mod names;
pub mod session;
pub mod source;
pub mod target;
pub mod types;

use serde::{Deserialize, Serialize};

/// Rows per batch when the step does not say.
pub const DEFAULT_BATCH: u32 = 10_000;
/// The most rows a batch may have.
pub const MAX_BATCH: u32 = 1_000_000;

/// A `copy` step with every template rendered, as the engine hands it to the process.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct CopySpec {
    pub from: FromSpec,
    pub to: ToSpec,
    /// Rows per batch.
    pub batch: u32,
    #[serde(default)]
    pub range: KeyRange,
    /// Copy MySQL's zero dates as `NULL` (else they are an error).
    #[serde(default)]
    pub zero_dates_null: bool,
    /// The step's timeout in milliseconds (as for `sql`: the engine stops the process, which
    /// also keeps the deadline itself, a little later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

/// Where rows come from: a table, or a query, read in the order of `key`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct FromSpec {
    pub dsn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// The integer column rows are read in order of.
    pub key: String,
}

/// Where rows go.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct ToSpec {
    pub dsn: String,
    pub table: String,
}

/// The keys a step copies: `from` included, `to` not; either may be open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<i64>,
}

impl KeyRange {
    /// The range as a person reads it: `id >= 0 and < 250000`, `every id`.
    pub fn shown(&self, key: &str) -> String {
        match (self.from, self.to) {
            (None, None) => format!("every {key}"),
            (Some(f), None) => format!("{key} >= {f}"),
            (None, Some(t)) => format!("{key} < {t}"),
            (Some(f), Some(t)) => format!("{key} >= {f} and < {t}"),
        }
    }
}

impl std::fmt::Debug for FromSpec {
    // The DSN holds a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FromSpec")
            .field("table", &self.table)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ToSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToSpec")
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for CopySpec {
    // The DSNs hold passwords, and a query may hold secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CopySpec")
            .field("from_table", &self.from.table)
            .field("query_bytes", &self.from.query.as_ref().map(String::len))
            .field("key", &self.from.key)
            .field("to_table", &self.to.table)
            .field("batch", &self.batch)
            .field("range", &self.range)
            .field("timeout_ms", &self.timeout_ms)
            .finish_non_exhaustive()
    }
}

/// Why a copy stopped.
#[derive(Debug)]
pub enum CopyError {
    /// The source server refused or failed.
    Source(sqlx::Error),
    /// The target server refused or failed; `at` names the row when the server said which.
    Target {
        error: sqlx::Error,
        at: Option<String>,
    },
    /// The rows or the tables do not fit; the text says where and what to do.
    Data(String),
}

impl CopyError {
    pub fn target(error: sqlx::Error) -> CopyError {
        CopyError::Target { error, at: None }
    }

    /// Whether another attempt may get through (a lost connection, a deadlock, ...).
    pub fn transient(&self) -> bool {
        match self {
            CopyError::Source(e) | CopyError::Target { error: e, .. } => super::exec::transient(e),
            CopyError::Data(_) => false,
        }
    }

    /// The error in one line, and more lines for the log (the server's detail and hint).
    pub fn describe(&self) -> (String, Vec<String>) {
        match self {
            CopyError::Source(e) => {
                let (message, more) = super::exec::describe(e);
                (format!("the source failed: {message}"), more)
            }
            CopyError::Target { error, at } => {
                let (message, more) = super::exec::describe(error);
                let at = at.as_ref().map(|a| format!(" ({a})")).unwrap_or_default();
                (format!("the target failed{at}: {message}"), more)
            }
            CopyError::Data(text) => (text.clone(), Vec::new()),
        }
    }
}
