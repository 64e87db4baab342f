//! The `compare` action in the checked model, and the DSNs a runbook names (those of `sql`,
//! `copy` and `compare`), whose passwords are secrets before anything runs
//! ([`super::sql::dsn_passwords`]).

use super::model::{Action, Runbook, Text};

/// A comparison of two tables or queries by key ranges.
#[derive(Debug, Clone, PartialEq)]
pub struct Compare {
    pub source: CompareSide,
    pub target: CompareSide,
    /// Key column names (templates), at least one.
    pub key: Vec<Text>,
    /// Other columns compared (templates); empty: every column.
    pub columns: Vec<Text>,
    pub ranges: u32,
    pub samples: u32,
}

/// Default number of key ranges.
pub const DEFAULT_RANGES: u32 = 16;
/// Default number of sample keys.
pub const DEFAULT_SAMPLES: u32 = 5;

#[derive(Debug, Clone, PartialEq)]
pub struct CompareSide {
    /// The connection URL (a template).
    pub dsn: Text,
    pub from: CompareFrom,
}

/// What a side reads (a template).
#[derive(Debug, Clone, PartialEq)]
pub enum CompareFrom {
    Table(Text),
    Query(Text),
}

impl Runbook {
    /// Every DSN of the runbook: its `sql` steps' and probes', and both sides of its `copy`
    /// and `compare` steps.
    pub fn dsns(&self) -> impl Iterator<Item = &Text> {
        let compares = self.steps.iter().filter_map(|step| match &step.action {
            Action::Compare(c) => Some([&c.source.dsn, &c.target.dsn]),
            _ => None,
        });
        self.sqls()
            .map(|sql| &sql.dsn)
            .chain(self.copies().flat_map(|copy| copy.dsns()))
            .chain(compares.flatten())
    }
}
