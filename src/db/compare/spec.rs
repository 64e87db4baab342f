//! What the engine hands a `compare` step's process: the rendered step, as JSON on its
//! stdin (never in its arguments, which every user of the machine can read in `ps`).

use serde::{Deserialize, Serialize};

/// A `compare` step with every template rendered.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct CompareSpec {
    pub source: SideSpec,
    pub target: SideSpec,
    /// The key columns, as named on both sides.
    pub key: Vec<String>,
    /// The other columns compared; empty: every column both sides have.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<String>,
    /// How many key ranges.
    pub ranges: u32,
    /// How many differing keys to name.
    pub samples: u32,
    /// The step's timeout in milliseconds (the process also keeps it itself, a little later,
    /// in case no signal comes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

/// One side: where it connects and what it reads.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct SideSpec {
    /// The connection URL, password included.
    pub dsn: String,
    pub from: From,
}

/// What a side reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum From {
    /// A table, `name` or `schema.name`.
    Table(String),
    /// A query, read as a derived table.
    Query(String),
}

impl std::fmt::Debug for CompareSpec {
    // The DSNs hold passwords.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompareSpec")
            .field("source", &self.source.from)
            .field("target", &self.target.from)
            .field("key", &self.key)
            .field("columns", &self.columns)
            .field("ranges", &self.ranges)
            .field("samples", &self.samples)
            .field("timeout_ms", &self.timeout_ms)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for SideSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SideSpec")
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}
