//! The `copy` action in the checked model: where rows come from and go, in batches of how
//! many, over which keys. Every name and DSN may be a template (a `for_each` over tables or
//! shards); the engine renders them when the step starts (`engine/core/prepare_copy.rs`).

use super::model::{Action, Runbook};
use super::text::{JsonText, Text};

pub use super::raw_copy::ZeroDates;

/// Rows copied from one database into a table on another.
#[derive(Debug, Clone, PartialEq)]
pub struct CopyAction {
    pub from: CopyFrom,
    pub to: CopyTo,
    /// Rows per batch.
    pub batch: u32,
    /// `{from, to}` bounds (values or templates), or a template naming them; none: every key.
    pub range: Option<JsonText>,
    pub zero_dates: ZeroDates,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CopyFrom {
    pub dsn: Text,
    pub source: CopySource,
    pub key: Text,
}

/// What the source reads.
#[derive(Debug, Clone, PartialEq)]
pub enum CopySource {
    Table(Text),
    Query(Text),
}

#[derive(Debug, Clone, PartialEq)]
pub struct CopyTo {
    pub dsn: Text,
    pub table: Text,
}

impl CopyAction {
    /// Both DSNs: their passwords are secrets.
    pub fn dsns(&self) -> [&Text; 2] {
        [&self.from.dsn, &self.to.dsn]
    }
}

impl Runbook {
    /// Every `copy` step's action.
    pub fn copies(&self) -> impl Iterator<Item = &CopyAction> {
        self.steps.iter().filter_map(|step| match &step.action {
            Action::Copy(copy) => Some(copy),
            _ => None,
        })
    }
}
