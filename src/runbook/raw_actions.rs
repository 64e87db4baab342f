//! The action keys of a step as written (`http`, `gate`, `sql`) and of a polling check's
//! `probe`: the part of the format each action owns. `raw.rs` holds the runbook and the
//! step; the same rules apply here (serde structs with positions, the schema generated
//! from them).

use super::duration::Duration;
use super::raw::OutputsFormat;
use super::raw_schema;
use super::wrappers::{Entries, Spanned};
use schemars::JsonSchema;
use serde::Deserialize;

/// An HTTP request step.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Http")]
pub struct RawHttp {
    pub method: Option<HttpMethod>,
    pub url: Spanned<String>,
    pub headers: Option<Entries<Spanned<String>>>,
    /// JSON body; string values are templates, JSON-encoded when rendered.
    pub body: Option<serde_json::Value>,
    /// Accepted statuses (default: any 2xx).
    #[schemars(inner(range(min = 100, max = 599)))]
    pub expect_status: Option<Vec<Spanned<u16>>>,
    pub timeout: Option<Spanned<Duration>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    #[default]
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Options,
}

impl HttpMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Head => "HEAD",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Patch => "PATCH",
            HttpMethod::Delete => "DELETE",
            HttpMethod::Options => "OPTIONS",
        }
    }
}

/// What a polling check runs before each evaluation: exactly one of `run`, `http` or `sql`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Probe", transform = raw_schema::probe)]
pub struct RawProbe {
    /// Shell command, run like a `run` step; its outputs are the `key=value` lines it writes
    /// to `$SENSEI_OUTPUT`, or its last stdout line with `outputs: json`.
    pub run: Option<Spanned<String>>,
    /// HTTP request, sent like an `http` step's; its outputs are `status`, `headers`, `body`.
    pub http: Option<Spanned<RawHttp>>,
    /// SQL, run like a `sql` step's; its outputs are the first row's columns, `rows`,
    /// `row_count` and `rows_affected`.
    pub sql: Option<Spanned<Box<RawSql>>>,
    /// `json`: the last stdout line of the `run` command is a JSON object of outputs.
    pub outputs: Option<Spanned<OutputsFormat>>,
}

/// An approval gate.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Gate")]
pub struct RawGate {
    /// Identities (token names, or `--as` names locally) who may decide the gate; without
    /// the list, anyone but the migration's starter may.
    #[schemars(length(min = 1), extend("uniqueItems" = true))]
    pub approvers: Option<Spanned<Vec<Spanned<String>>>>,
    /// Approvals needed (default 1).
    #[schemars(range(min = 1))]
    pub required: Option<Spanned<u32>>,
    /// Through a server, only callers whose token holds one of these roles may decide it
    /// (`admin` always may); for a gate that matters more than others, such as the one
    /// before a point of no return.
    #[schemars(length(min = 1), extend("uniqueItems" = true))]
    pub roles: Option<Spanned<Vec<Spanned<GateRole>>>>,
    pub timeout: Option<Spanned<Duration>>,
    /// What happens at the timeout (default `fail`).
    pub on_timeout: Option<OnTimeout>,
}

/// A role a gate may ask its deciders to hold (the server's token roles).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GateRole {
    Viewer,
    Operator,
    Approver,
    Admin,
}

impl GateRole {
    pub fn as_str(self) -> &'static str {
        match self {
            GateRole::Viewer => "viewer",
            GateRole::Operator => "operator",
            GateRole::Approver => "approver",
            GateRole::Admin => "admin",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnTimeout {
    #[default]
    Fail,
    Cancel,
    Approve,
}

/// SQL run on PostgreSQL or MySQL/MariaDB: exactly one of `query` or `file`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Sql", transform = raw_schema::sql)]
pub struct RawSql {
    /// Connection URL: `postgres://user:password@host:5432/db` (or `postgresql://`),
    /// `mysql://...` or `mariadb://...`; TLS as its `sslmode` (`ssl-mode`) says. A template;
    /// its password is a secret, masked everywhere.
    #[schemars(regex(pattern = raw_schema::DSN_PATTERN))]
    pub dsn: Spanned<String>,
    /// The SQL: one statement or several separated by `;`. A template whose values are
    /// inserted as text, as they are: pass data values through `params`.
    pub query: Option<Spanned<String>>,
    /// A file of SQL, relative to the runbook's directory: read when the runbook is loaded,
    /// part of the plan's digest, kept with the migration, and sent as written (no templates).
    pub file: Option<Spanned<String>>,
    /// Values for the query's placeholders (`$1`, `$2`, ... on PostgreSQL, each `?` on
    /// MySQL), each a value or a template; they reach the SQL as quoted literals.
    pub params: Option<Spanned<Vec<Spanned<serde_json::Value>>>>,
    /// Run everything in one transaction (default `true`); with `false` each statement
    /// commits by itself, and what ran before an error stays.
    pub transaction: Option<bool>,
}

/// A comparison of two tables or queries, on PostgreSQL or MySQL/MariaDB, by key ranges.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Compare")]
pub struct RawCompare {
    /// What was migrated from.
    pub source: Spanned<RawCompareSide>,
    /// What was migrated to.
    pub target: Spanned<RawCompareSide>,
    /// The key column, or the key columns in order, named alike on both sides: rows are
    /// paired by it, and key ranges split its (first column's) values.
    #[schemars(with = "CompareKey")]
    pub key: Spanned<serde_json::Value>,
    /// The columns compared besides the key (default: every column; then both sides must
    /// have the same columns).
    #[schemars(length(min = 1))]
    pub columns: Option<Spanned<Vec<Spanned<String>>>>,
    /// How many key ranges (default 16): each is counted and checksummed on both sides,
    /// reported as it ends (`progress=`), and named when it differs.
    #[schemars(range(min = 1, max = 100000))]
    pub ranges: Option<Spanned<u32>>,
    /// How many differing keys to name (default 5).
    #[schemars(range(max = 1000))]
    pub samples: Option<Spanned<u32>>,
}

/// One side of a comparison: exactly one of `table` or `query`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "CompareSide", transform = raw_schema::compare_side)]
pub struct RawCompareSide {
    /// Connection URL, as for `sql` (a template; its password is a secret).
    #[schemars(regex(pattern = raw_schema::DSN_PATTERN))]
    pub dsn: Spanned<String>,
    /// A table, `orders` or `shop.orders`, quoted where it needs quotes as its engine quotes
    /// names (`"Order Lines"`, `` `order-lines` ``); a template.
    pub table: Option<Spanned<String>>,
    /// A query whose rows are compared, read as a derived table (a template; values are
    /// inserted as text).
    pub query: Option<Spanned<String>>,
}

/// Schema of a compare `key`: a column name or a list of them.
#[derive(JsonSchema)]
#[schemars(untagged)]
#[allow(dead_code)]
enum CompareKey {
    One(#[schemars(length(min = 1))] String),
    Many(
        #[schemars(length(min = 1), extend("uniqueItems" = true), inner(length(min = 1)))]
        Vec<String>,
    ),
}
