//! The checked runbook: what `check` produces when a runbook has no errors.
//!
//! Later stages (plan, engine, server) hold only these types, so they never see unchecked
//! input: every reference resolves, every duration, cron and zone is parsed, and every step has
//! exactly one action. Every field that may hold a template is a [`Text`] (or a [`JsonText`]),
//! typed plain or template when the runbook is loaded.

pub use super::compare::{Compare, CompareFrom, CompareSide};
pub use super::copy::{CopyAction, CopyFrom, CopySource, CopyTo, ZeroDates};
use super::cron::{CronExpr, TimeZone};
use super::duration::Duration;
pub use super::raw::{
    CatchUp, HttpMethod, OnClose, OnFailure, OnTimeout, OutputsFormat, Overlap, ParamType, Phase,
    WebhookFormat,
};
pub use super::sql::{Sql, SqlSource};
pub use super::text::{JsonText, Text};
use serde_json::Value as Json;

#[derive(Debug, Clone)]
pub struct Runbook {
    pub name: String,
    pub description: Option<String>,
    pub params: Vec<Param>,
    pub env: Vec<(String, Text)>,
    pub concurrency: Option<u32>,
    pub pools: Vec<(String, u32)>,
    pub on_failure: OnFailure,
    pub windows: Vec<Window>,
    pub schedules: Vec<Schedule>,
    pub triggers: Vec<Trigger>,
    pub alerts: Alerts,
    pub steps: Vec<Step>,
}

impl Runbook {
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }

    pub fn param(&self, name: &str) -> Option<&Param> {
        self.params.iter().find(|p| p.name == name)
    }

    pub fn window(&self, name: &str) -> Option<&Window> {
        self.windows.iter().find(|w| w.name == name)
    }

    /// The environment variables Sensei reads a secret from for this runbook (trigger keys,
    /// alert signing keys), each with what it holds; a step never gets them.
    pub fn secret_envs(&self) -> Vec<(String, String)> {
        let triggers = self.triggers.iter().map(|t| {
            let what = format!("the key of the webhook trigger `{}`", t.webhook);
            (t.secret_env.clone(), what)
        });
        let channels = self.alerts.channels.iter().filter_map(|c| match &c.kind {
            ChannelKind::Webhook {
                secret_env: Some(name),
                ..
            } => Some((
                name.clone(),
                format!("the signing key of the alert channel `{}`", c.name),
            )),
            _ => None,
        });
        triggers.chain(channels).collect()
    }
}

#[derive(Debug, Clone)]
pub struct Param {
    pub name: String,
    pub kind: ParamType,
    pub default: Option<Json>,
    pub required: bool,
    pub secret: bool,
    pub description: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Window {
    pub name: String,
    pub cron: CronExpr,
    pub duration: Duration,
    pub timezone: TimeZone,
    pub cutoff: Duration,
    pub on_close: OnClose,
}

#[derive(Debug, Clone)]
pub struct Schedule {
    pub cron: CronExpr,
    pub timezone: TimeZone,
    pub params: Vec<(String, JsonText)>,
    pub overlap: Overlap,
    pub catch_up: CatchUp,
}

#[derive(Debug, Clone)]
pub struct Trigger {
    pub webhook: String,
    pub secret_env: String,
    /// Keys as written; only values are rendered.
    pub params: Vec<(String, JsonText)>,
}

#[derive(Debug, Clone, Default)]
pub struct Alerts {
    pub channels: Vec<Channel>,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
pub struct Channel {
    pub name: String,
    pub kind: ChannelKind,
}

#[derive(Debug, Clone)]
pub enum ChannelKind {
    Email {
        to: Vec<String>,
        cc: Vec<String>,
        subject: Option<Text>,
        body: Option<Text>,
        html: bool,
    },
    Webhook {
        url: Text,
        format: WebhookFormat,
        secret_env: Option<String>,
        headers: Vec<(String, Text)>,
    },
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub on: Vec<String>,
    pub steps: Vec<String>,
    pub notify: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Step {
    pub id: String,
    pub description: Option<String>,
    pub phase: Phase,
    pub needs: Vec<String>,
    pub when: Option<Text>,
    pub for_each: Option<ForEach>,
    pub pool: Option<String>,
    pub window: Option<String>,
    pub idempotent: bool,
    /// Once it has succeeded, rollbacks stop here (see `engine::core::rollback`).
    pub point_of_no_return: bool,
    pub timeout: Option<Duration>,
    pub retry: Retry,
    pub estimate: Option<Duration>,
    pub action: Action,
    pub rollback: Option<Text>,
    /// How a `run` step's outputs are read; on a polling check, its `run` probe's (written
    /// `probe: { run: ..., outputs: json }`: the check step itself has no outputs).
    pub outputs: Option<OutputsFormat>,
    /// A `check` that polls (an automatic gate): `every`, `stable_for`, `probe`.
    pub poll: Option<Poll>,
}

/// An automatic gate: the check is evaluated `every` interval, after running its `probe`
/// (whose outputs the check reads as `probe.outputs`), and passes once it has held true
/// continuously for `stable_for`; the step's `timeout` fails it.
#[derive(Debug, Clone)]
pub struct Poll {
    pub every: Duration,
    pub stable_for: Duration,
    pub probe: Option<Probe>,
}

/// What a polling check runs before each evaluation.
#[derive(Debug, Clone)]
pub enum Probe {
    Run(Text),
    Http(Http),
    Sql(Sql),
}

/// A step's fan-out.
#[derive(Debug, Clone, PartialEq)]
pub enum ForEach {
    /// Written as a list in the runbook.
    List(Vec<Json>),
    /// A template naming a list (params are known at plan time, step outputs only at run time).
    Template(Text),
}

#[derive(Debug, Clone)]
pub enum Action {
    Run(Text),
    Http(Http),
    Gate(Gate),
    Wait(Duration),
    Check(Text),
    Sql(Sql),
    Copy(CopyAction),
    Compare(Box<Compare>),
}

impl Action {
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Run(_) => "run",
            Action::Http(_) => "http",
            Action::Gate(_) => "gate",
            Action::Wait(_) => "wait",
            Action::Check(_) => "check",
            Action::Sql(_) => "sql",
            Action::Copy(_) => "copy",
            Action::Compare(_) => "compare",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Http {
    pub method: HttpMethod,
    pub url: Text,
    pub headers: Vec<(String, Text)>,
    pub body: Option<JsonText>,
    /// Empty means any 2xx.
    pub expect_status: Vec<u16>,
    pub timeout: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct Gate {
    pub approvers: Vec<String>,
    pub required: u32,
    /// Roles a decider's token must hold one of, through a server (`admin` always may).
    pub roles: Vec<String>,
    pub timeout: Option<Duration>,
    pub on_timeout: OnTimeout,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Retry {
    pub attempts: u32,
    pub backoff: Duration,
    pub max_backoff: Duration,
    pub on_exit_codes: Vec<i32>,
}

impl Default for Retry {
    /// One attempt: no retry unless the runbook asks for it.
    fn default() -> Self {
        Retry {
            attempts: 1,
            backoff: Duration::from_secs(10),
            max_backoff: Duration::from_secs(300),
            on_exit_codes: Vec::new(),
        }
    }
}
