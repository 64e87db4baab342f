//! The runbook as written (SPEC §2): serde structs with positions, before any semantic check.
//!
//! These types are the single description of the format: the loader fills them (through
//! `node_de`), and `schemas/runbook.schema.json` is generated from them. A step's action is a
//! set of optional sibling keys (`run`, `http`, `gate`, `wait`, `check`, `sql`, `copy`,
//! `compare`) rather than an enum,
//! because positions do not survive serde's tagged enums; `check.rs` demands exactly one, and
//! `raw_schema.rs` says so in the schema, with the other rules a derived schema cannot carry.
//!
//! Top-level sections and list entries are wrapped in [`Recover`] so that one malformed part
//! does not hide the problems of the others.

use super::cron::{CronExpr, TimeZone};
use super::duration::Duration;
pub use super::raw_actions::{
    GateRole, HttpMethod, OnTimeout, RawCompare, RawCompareSide, RawGate, RawHttp, RawProbe, RawSql,
};
pub use super::raw_copy::RawCopy;
use super::raw_schema::{
    self, IDENTIFIER_PATTERN, NAME_PATTERN, SINGLE_EXPRESSION_PATTERN, STEP_ID_PATTERN,
};
use super::wrappers::{Entries, Recover, Spanned};
use schemars::JsonSchema;
use serde::Deserialize;

/// A Sensei runbook: how a migration is done.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Sensei runbook", transform = require_core_keys)]
pub struct RawRunbook {
    /// Format version; must be 1.
    #[serde(default)]
    #[schemars(extend("const" = 1))]
    pub version: Recover<Spanned<u32>>,
    /// Runbook name: lowercase letters, digits, `-` and `_`; unique within a runbook directory.
    #[serde(default)]
    #[schemars(regex(pattern = NAME_PATTERN))]
    pub name: Recover<Spanned<String>>,
    #[serde(default)]
    pub description: Recover<String>,
    /// Typed inputs, set with `-p k=v`, the API body, or a schedule's or trigger's `params`.
    #[serde(default)]
    #[schemars(transform = raw_schema::param_names)]
    pub params: Recover<Entries<Recover<RawParam>>>,
    /// Environment for every `run` step (values are templates).
    #[serde(default)]
    pub env: Recover<Entries<Spanned<String>>>,
    /// Settings every step inherits unless it overrides them.
    #[serde(default)]
    pub defaults: Recover<RawDefaults>,
    /// Most steps of this migration running at once (default: the number of CPUs).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub concurrency: Recover<Spanned<u32>>,
    /// Named slot pools; a step with `pool: NAME` takes one slot while it runs.
    #[serde(default)]
    #[schemars(transform = raw_schema::pool_sizes)]
    pub pools: Recover<Entries<Spanned<u32>>>,
    /// What happens after a step fails for good (default `fail`).
    #[serde(default)]
    pub on_failure: Recover<Spanned<OnFailure>>,
    /// Recurring periods in which the steps bound to them may start.
    #[serde(default)]
    pub windows: Recover<Entries<Recover<RawWindow>>>,
    /// Cron schedules on which a server creates and starts migrations.
    #[serde(default)]
    pub schedules: Recover<Vec<Recover<RawSchedule>>>,
    /// Signed webhooks (`POST /v1/hooks/NAME`) that create and start migrations.
    #[serde(default)]
    pub triggers: Recover<Vec<Recover<RawTrigger>>>,
    /// Email and webhook notifications on lifecycle events.
    #[serde(default)]
    pub alerts: Recover<RawAlerts>,
    /// The steps: a DAG through `needs`, grouped in phases.
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub steps: Recover<Vec<Recover<RawStep>>>,
}

/// `version`, `name` and `steps` are required. The loader takes them as optional so that a
/// runbook missing one is still checked everywhere else; the schema says what users must write.
fn require_core_keys(schema: &mut schemars::Schema) {
    schema.insert(
        "required".into(),
        serde_json::json!(["version", "name", "steps"]),
    );
}

/// A typed input of the runbook.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Param", transform = raw_schema::param)]
pub struct RawParam {
    #[serde(rename = "type")]
    pub kind: Spanned<ParamType>,
    /// Value used when none is given; must have the param's type.
    pub default: Option<Spanned<serde_json::Value>>,
    /// A value must be given (a required param has no default).
    pub required: Option<Spanned<bool>>,
    /// The value is shown as `***` in logs, events, alerts and the API.
    pub secret: Option<bool>,
    pub description: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    String,
    Integer,
    Number,
    Boolean,
    List,
    Object,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Defaults")]
pub struct RawDefaults {
    /// Longest a step may run before it is killed.
    pub timeout: Option<Spanned<Duration>>,
    pub retry: Option<RawRetry>,
}

/// Retries of a failed step, with exponential backoff and jitter.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Retry")]
pub struct RawRetry {
    /// Total attempts, the first included.
    #[schemars(range(min = 1))]
    pub attempts: Option<Spanned<u32>>,
    /// Wait before the first retry; doubles after each attempt.
    pub backoff: Option<Spanned<Duration>>,
    /// Longest wait between two attempts.
    pub max_backoff: Option<Spanned<Duration>>,
    /// Exit codes treated as transient; any other failure is final at once.
    pub on_exit_codes: Option<Vec<i32>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    Rollback,
    Pause,
    #[default]
    Fail,
}

/// A recurring period (cron + duration + zone) in which steps bound to it may start.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Window")]
pub struct RawWindow {
    /// When the window opens.
    pub cron: Spanned<CronExpr>,
    /// How long it stays open.
    pub duration: Spanned<Duration>,
    /// IANA zone of `cron` (default UTC).
    pub timezone: Option<Spanned<TimeZone>>,
    /// No new bound step starts in the last `cutoff` of the window.
    pub cutoff: Option<Spanned<Duration>>,
    /// What the migration does if bound work remains when the window closes (default pause).
    pub on_close: Option<OnClose>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnClose {
    #[default]
    Pause,
    Rollback,
    Fail,
}

impl OnClose {
    /// The name as written in a runbook (and in `window_closed` events).
    pub fn as_str(self) -> &'static str {
        match self {
            OnClose::Pause => "pause",
            OnClose::Rollback => "rollback",
            OnClose::Fail => "fail",
        }
    }

    /// What happens at the close when bound work is left, for people (the console); the
    /// engine's `core::window` carries it out, docs/operations.md (Windows) says the same.
    pub fn explain(self) -> &'static str {
        match self {
            OnClose::Pause => {
                "the migration pauses, and resumes by itself at the window's next opening"
            }
            OnClose::Rollback => {
                "once running steps finish, the steps that succeeded are rolled back and the migration fails"
            }
            OnClose::Fail => "once running steps finish, the migration fails",
        }
    }
}

/// A cron schedule on which a server creates and starts a migration.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Schedule")]
pub struct RawSchedule {
    pub cron: Spanned<CronExpr>,
    pub timezone: Option<Spanned<TimeZone>>,
    /// Params of the migrations it creates (values may be templates).
    pub params: Option<Entries<Spanned<serde_json::Value>>>,
    pub overlap: Option<Overlap>,
    pub catch_up: Option<CatchUp>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Overlap {
    #[default]
    Skip,
    Queue,
    Allow,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CatchUp {
    None,
    #[default]
    Latest,
    All,
}

/// A signed incoming webhook that creates and starts a migration.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Trigger")]
pub struct RawTrigger {
    /// The hook's name: `POST /v1/hooks/NAME`.
    #[schemars(regex(pattern = NAME_PATTERN))]
    pub webhook: Spanned<String>,
    /// Environment variable holding the HMAC-SHA256 key.
    #[schemars(regex(pattern = IDENTIFIER_PATTERN))]
    pub secret_env: Spanned<String>,
    /// Params of the migration (templates over `payload`, the JSON body).
    pub params: Option<Entries<Spanned<serde_json::Value>>>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Alerts")]
pub struct RawAlerts {
    #[serde(default)]
    pub channels: Entries<Recover<RawChannel>>,
    #[serde(default)]
    pub rules: Vec<Recover<RawRule>>,
}

/// Where alerts go: exactly one of `email` or `webhook`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Channel", transform = raw_schema::channel)]
pub struct RawChannel {
    pub email: Option<RawEmail>,
    pub webhook: Option<RawWebhook>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Email")]
pub struct RawEmail {
    #[schemars(length(min = 1), inner(contains(pattern = "@")))]
    pub to: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    #[schemars(inner(contains(pattern = "@")))]
    pub cc: Vec<Spanned<String>>,
    /// Subject template.
    pub subject: Option<Spanned<String>>,
    /// Body template (plain text unless `html: true`).
    pub body: Option<Spanned<String>>,
    pub html: Option<bool>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Webhook")]
pub struct RawWebhook {
    #[schemars(regex(pattern = r"^https?://"))]
    pub url: Spanned<String>,
    pub format: Option<WebhookFormat>,
    /// Environment variable holding a key to sign deliveries with (HMAC-SHA256).
    pub secret_env: Option<Spanned<String>>,
    pub headers: Option<Entries<Spanned<String>>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    #[default]
    Json,
    Slack,
}

/// Which events notify which channels.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Rule")]
pub struct RawRule {
    /// Event names: lifecycle states and step, gate, window and rollback events.
    #[schemars(transform = raw_schema::alert_events)]
    pub on: Spanned<Vec<Spanned<String>>>,
    /// Only events of these steps.
    pub steps: Option<Vec<Spanned<String>>>,
    pub notify: Spanned<Vec<Spanned<String>>>,
}

/// A node of the DAG with exactly one action: `run`, `http`, `gate`, `wait`, `check`, `sql`,
/// `copy` or `compare`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Step", transform = raw_schema::step)]
pub struct RawStep {
    /// Unique id: lowercase letters, digits, `-` and `_`.
    #[schemars(regex(pattern = STEP_ID_PATTERN))]
    pub id: Spanned<String>,
    pub description: Option<String>,
    /// Default: `approve` for gates, `execute` for every other step.
    pub phase: Option<Spanned<Phase>>,
    /// Steps that must finish first; needing a fan-out step means needing every expansion.
    pub needs: Option<Vec<Spanned<String>>>,
    /// A template; when it renders false the step is skipped.
    pub when: Option<Spanned<String>>,
    /// Fan-out: a list, or a template naming a list; `{{item}}` is the element.
    #[schemars(with = "Option<ForEach>")]
    pub for_each: Option<Spanned<serde_json::Value>>,
    /// Named pool the step takes a slot from while it runs.
    pub pool: Option<Spanned<String>>,
    /// Window the step may only start in.
    pub window: Option<Spanned<String>>,
    /// Safe to re-run after a crash.
    pub idempotent: Option<bool>,
    /// Once this step has succeeded, a rollback undoes only the steps after it (the steps
    /// that need it, directly or not, and every step of a later phase); undoing it and what
    /// came before takes `--past-point-of-no-return`, by an admin.
    pub point_of_no_return: Option<bool>,
    /// Longest run time (replaces `defaults.timeout`); a polling check fails when its
    /// condition has not held for `stable_for` by then.
    pub timeout: Option<Spanned<Duration>>,
    pub retry: Option<Box<RawRetry>>,
    /// Expected run time, used to decide whether the step fits in its window.
    pub estimate: Option<Spanned<Duration>>,
    /// Shell command, run with `sh -c` in the runbook's directory.
    pub run: Option<Spanned<String>>,
    pub http: Option<Spanned<Box<RawHttp>>>,
    pub gate: Option<Spanned<Box<RawGate>>>,
    /// Timer.
    pub wait: Option<Spanned<Duration>>,
    /// A template that must render `true`.
    pub check: Option<Spanned<String>>,
    /// SQL on PostgreSQL or MySQL/MariaDB; its outputs are the first row's columns, `rows`,
    /// `row_count` and `rows_affected`.
    pub sql: Option<Spanned<Box<RawSql>>>,
    /// Rows from a table or query on one database into a table on another, in batches by
    /// key, each batch one transaction and one checkpoint.
    pub copy: Option<Spanned<Box<RawCopy>>>,
    /// Compares two tables or queries (across PostgreSQL and MySQL/MariaDB) by key ranges;
    /// fails when they differ.
    pub compare: Option<Spanned<Box<RawCompare>>>,
    /// Makes a `check` an automatic gate: evaluate it at this interval until it has held for
    /// `stable_for`; the step's `timeout` fails it.
    #[schemars(transform = raw_schema::polling_interval)]
    pub every: Option<Spanned<Duration>>,
    /// How long a polling check must hold continuously before the step passes (default 0s:
    /// the first true evaluation passes). Needs `every`.
    pub stable_for: Option<Spanned<Duration>>,
    /// What a polling check runs before each evaluation; the check reads its outputs as
    /// `probe.outputs.KEY`. Needs `every`.
    pub probe: Option<Spanned<Box<RawProbe>>>,
    /// Shell command that undoes the step (of a `run`, `http`, `sql` or `copy` step).
    pub rollback: Option<Spanned<String>>,
    /// `json`: the last stdout line is a JSON object of outputs.
    pub outputs: Option<OutputsFormat>,
}

#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Deserialize,
    JsonSchema,
    serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Analyze,
    Plan,
    Approve,
    Execute,
    Validate,
}

impl Phase {
    pub const ALL: [Phase; 5] = [
        Phase::Analyze,
        Phase::Plan,
        Phase::Approve,
        Phase::Execute,
        Phase::Validate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Analyze => "analyze",
            Phase::Plan => "plan",
            Phase::Approve => "approve",
            Phase::Execute => "execute",
            Phase::Validate => "validate",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputsFormat {
    Json,
}

/// Schema of `for_each`: a list, or a template string that names one.
// `uniqueItems` refuses an element written twice; it also takes `1` and `1.0` (or one object
// with its keys in another order) as equal, though they name different expansions and the
// checks accept them: here the schema is stricter than `sensei validate`, knowingly.
#[derive(JsonSchema)]
#[schemars(untagged)]
#[allow(dead_code)]
enum ForEach {
    Template(#[schemars(regex(pattern = SINGLE_EXPRESSION_PATTERN))] String),
    List(#[schemars(extend("uniqueItems" = true))] Vec<serde_json::Value>),
}
