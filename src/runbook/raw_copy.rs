//! The `copy` action as written: rows of a table or query on one database, in the order of a
//! key, into a table on another (`check_copy.rs` checks it, `copy.rs` is its model). The same
//! rules as `raw.rs` apply: serde structs with positions, the schema generated from them.

use super::raw_schema::{self, DSN_PATTERN, SINGLE_EXPRESSION_PATTERN};
use super::wrappers::Spanned;
use schemars::JsonSchema;
use serde::Deserialize;

/// Rows streamed from one database into a table on another, in batches, each batch one
/// transaction on the target and one checkpoint.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Copy")]
pub struct RawCopy {
    pub from: Spanned<RawCopyFrom>,
    pub to: Spanned<RawCopyTo>,
    /// Rows per batch (default 10000): each batch is one transaction on the target and one
    /// checkpoint.
    #[schemars(range(min = 1, max = 1_000_000))]
    pub batch: Option<Spanned<u32>>,
    /// The keys this step copies: `from` included, `to` not, either left out for no bound;
    /// integers or templates (`{from: "{{item.from}}", to: "{{item.to}}"}`), or one template
    /// naming such an object (`"{{item}}"`). The step owns the range in the target table.
    #[schemars(with = "Option<CopyRange>")]
    pub range: Option<Spanned<serde_json::Value>>,
    /// What MySQL's zero dates (`0000-00-00`) become in PostgreSQL: `error` (the default)
    /// or `as_null` (`NULL`).
    pub zero_dates: Option<Spanned<ZeroDates>>,
}

/// Where rows come from: exactly one of `table` or `query`, and the `key` they are read by.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "CopyFrom", transform = raw_schema::copy_from)]
pub struct RawCopyFrom {
    /// Connection URL of the source, as for `sql` (a template; its password is a secret).
    #[schemars(regex(pattern = DSN_PATTERN))]
    pub dsn: Spanned<String>,
    /// A table to copy whole (`orders`, `shop.orders`); a template.
    pub table: Option<Spanned<String>>,
    /// A `SELECT` whose rows are copied (read as a derived table); a template.
    pub query: Option<Spanned<String>>,
    /// The integer column rows are read in order of: unique and not null (the primary key).
    pub key: Spanned<String>,
}

/// Where rows go.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "CopyTo")]
pub struct RawCopyTo {
    /// Connection URL of the target, as for `sql`.
    #[schemars(regex(pattern = DSN_PATTERN))]
    pub dsn: Spanned<String>,
    /// The target table (default: `from.table`); it must exist. A template.
    pub table: Option<Spanned<String>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ZeroDates {
    #[default]
    Error,
    /// `as_null`, not `null`: YAML reads a bare `null` as no value at all.
    AsNull,
}

/// Schema of `range`: an object of bounds, or one template naming one.
#[derive(JsonSchema)]
#[schemars(untagged)]
#[allow(dead_code)]
enum CopyRange {
    Template(#[schemars(regex(pattern = SINGLE_EXPRESSION_PATTERN))] String),
    Bounds(CopyBounds),
}

#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
#[allow(dead_code)]
struct CopyBounds {
    /// The first key copied (included).
    from: Option<Bound>,
    /// The first key not copied.
    to: Option<Bound>,
}

#[derive(JsonSchema)]
#[schemars(untagged)]
#[allow(dead_code)]
enum Bound {
    Key(i64),
    Template(String),
}
