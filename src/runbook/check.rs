//! Semantic checks of a loaded runbook (SPEC §2), all in one pass, into the checked model.
//!
//! This file checks the runbook-wide sections (version, name, params, pools, windows,
//! schedules, triggers, alerts); `check_steps.rs` checks the steps and their graph and
//! `check_templates.rs` every template. A part with an error is left out of the model, and
//! the model is only returned when there is no error at all.

use super::check_templates::Scope;
use super::duration::Duration;
use super::model::{
    Alerts, Channel, ChannelKind, Param, Retry, Rule, Runbook, Schedule, Trigger, Window,
};
use super::raw::{
    OnFailure, ParamType, RawAlerts, RawChannel, RawParam, RawRetry, RawRule, RawRunbook,
    RawSchedule, RawTrigger, RawWindow,
};
use super::source::Source;
use super::wrappers::{Entries, Recover, Spanned};
use super::yaml::Node;
use crate::diag::{self, Diagnostic, Span};
use std::collections::HashSet;

/// Event names alert rules may select: every lifecycle state, and step, gate, window and
/// rollback events.
pub const ALERT_EVENTS: &[&str] = &[
    "created",
    "analyzing",
    "planning",
    "awaiting_approval",
    "approved",
    "running",
    "paused",
    "completed",
    "validating",
    "certified",
    "failed",
    "cancelled",
    "step_failed",
    "step_retrying",
    "gate_waiting",
    "gate_decided",
    "gate_timeout_soon",
    "window_closing",
    "rollback_started",
    "rollback_finished",
];

/// Collects diagnostics while the checks run.
pub(crate) struct Checker<'a> {
    pub source: &'a Source,
    pub root: &'a Node,
    pub diagnostics: Vec<Diagnostic>,
}

impl<'a> Checker<'a> {
    pub fn error(&mut self, span: Span, message: impl Into<String>) -> &mut Diagnostic {
        self.diagnostics.push(Diagnostic::error(span, message));
        self.diagnostics.last_mut().expect("just pushed")
    }

    pub fn warning(&mut self, span: Span, message: impl Into<String>) -> &mut Diagnostic {
        self.diagnostics.push(Diagnostic::warning(span, message));
        self.diagnostics.last_mut().expect("just pushed")
    }

    fn errors(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    fn present(&self, key: &str) -> bool {
        self.root.get(key).is_some()
    }

    /// True when `name` is written under the mapping `section` (`params`, `pools`, `windows`),
    /// whether or not it loaded. A declared entry that failed to load has had its own error
    /// reported; references to it must not be reported again as unknown.
    pub fn declared(&self, section: &str, name: &str) -> bool {
        self.root.get(section).and_then(|s| s.get(name)).is_some()
    }

    /// The span of the key whose value was written at `value`, or `value` itself. For a
    /// mapping (whose own span is its first key or its `{`), the key reads better in a message.
    pub fn key_span(&self, value: Span) -> Span {
        fn find(node: &Node, value: Span) -> Option<Span> {
            match &node.value {
                super::yaml::Value::Map(entries) => entries.iter().find_map(|(k, v)| {
                    // Compare positions only: `Spanned` marks a mapping with length 1.
                    if (v.span.line, v.span.column) == (value.line, value.column) {
                        Some(k.span)
                    } else {
                        find(v, value)
                    }
                }),
                super::yaml::Value::Seq(items) => items.iter().find_map(|i| find(i, value)),
                _ => None,
            }
        }
        find(self.root, value).unwrap_or(value)
    }

    /// True when a step with this id is written in the runbook, whether or not it loaded
    /// (a step with a malformed field or without exactly one action is left out of the model).
    pub fn declared_step(&self, id: &str) -> bool {
        match self.root.get("steps").map(|s| &s.value) {
            Some(super::yaml::Value::Seq(steps)) => steps
                .iter()
                .any(|s| s.get("id").and_then(Node::as_str) == Some(id)),
            _ => false,
        }
    }
}

/// Checks a loaded runbook; returns the model when no check found an error.
pub fn check(
    raw: &RawRunbook,
    source: &Source,
    root: &Node,
    broken_steps: &HashSet<String>,
) -> (Option<Runbook>, Vec<Diagnostic>) {
    let mut c = Checker {
        source,
        root,
        diagnostics: Vec::new(),
    };
    let errors_before = c.errors();
    c.version(&raw.version);
    let name = c.name(&raw.name);
    let params = c.params(raw.params.0.as_ref());
    let pools = c.pools(raw.pools.0.as_ref());
    let concurrency = raw.concurrency.0.as_ref().and_then(|n| {
        if n.value == 0 {
            c.error(n.span, "`concurrency` must be at least 1");
            None
        } else {
            Some(n.value)
        }
    });
    let windows = c.windows(raw.windows.0.as_ref());
    let defaults = raw.defaults.0.as_ref();
    let default_retry = c.retry(defaults.and_then(|d| d.retry.as_ref()), &Retry::default());
    let default_timeout = defaults.and_then(|d| d.timeout.as_ref()).map(|t| t.value);

    let scope = Scope::runbook(&params);
    let env = match raw.env.0.as_ref() {
        Some(env) => env
            .iter()
            .map(|(k, v)| {
                c.template(&v.value, v.span, &scope);
                (k.value.clone(), v.value.clone())
            })
            .collect(),
        None => Vec::new(),
    };

    let steps = c.steps(
        raw.steps.0.as_ref(),
        &super::check_steps::Context {
            params: &params,
            pools: &pools,
            windows: &windows,
            default_retry: &default_retry,
            default_timeout,
            broken_steps,
        },
    );
    let step_ids: Vec<String> = steps.iter().map(|s| s.id.clone()).collect();
    let schedules = c.schedules(raw.schedules.0.as_deref(), &params);
    let triggers = c.triggers(raw.triggers.0.as_deref(), &params);
    let alerts = c.alerts(raw.alerts.0.as_ref(), &params, &step_ids, broken_steps);

    let ok = c.errors() == errors_before;
    let runbook = match (ok, name) {
        (true, Some(name)) => Some(Runbook {
            name,
            description: raw.description.0.clone(),
            params,
            env,
            concurrency,
            pools,
            on_failure: raw
                .on_failure
                .0
                .as_ref()
                .map_or(OnFailure::default(), |o| o.value),
            windows,
            schedules,
            triggers,
            alerts,
            steps,
        }),
        _ => None,
    };
    (runbook, c.diagnostics)
}

impl Checker<'_> {
    fn version(&mut self, version: &Recover<Spanned<u32>>) {
        match &version.0 {
            Some(v) if v.value != 1 => {
                self.error(v.span, format!("unsupported runbook version {}", v.value))
                    .hint = Some("this sensei reads `version: 1`".into());
            }
            Some(_) => {}
            None if !self.present("version") => {
                self.error(Span::new(1, 1, 1), "the runbook has no `version`")
                    .hint = Some("add `version: 1` at the top".into());
            }
            None => {}
        }
    }

    fn name(&mut self, name: &Recover<Spanned<String>>) -> Option<String> {
        match &name.0 {
            Some(n) if !valid_name(&n.value, 63) => {
                self.error(n.span, format!("invalid runbook name `{}`", n.value))
                    .hint = Some("use 1 to 63 lowercase letters, digits, `-` and `_`, starting with a letter or digit".into());
                None
            }
            Some(n) => Some(n.value.clone()),
            None => {
                if !self.present("name") {
                    self.error(Span::new(1, 1, 1), "the runbook has no `name`")
                        .hint = Some("add `name: my-migration` at the top".into());
                }
                None
            }
        }
    }

    fn params(&mut self, params: Option<&Entries<Recover<RawParam>>>) -> Vec<Param> {
        let Some(params) = params else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (name, raw) in params.iter() {
            if !valid_identifier(&name.value) {
                self.error(name.span, format!("invalid param name `{}`", name.value))
                    .hint = Some("param names are letters, digits and `_`, so templates can name them (`{{params.batch_size}}`)".into());
            }
            let Some(raw) = &raw.0 else { continue };
            let required = raw.required.as_ref().is_some_and(|r| r.value);
            if let Some(default) = &raw.default {
                if let Err(found) = value_has_type(&default.value, raw.kind.value) {
                    self.error(
                        default.span,
                        format!(
                            "the default of param `{}` is {found}, but the param is {}",
                            name.value,
                            article(raw.kind.value)
                        ),
                    );
                }
                if required && let Some(r) = &raw.required {
                    self.warning(
                        r.span,
                        format!(
                            "param `{}` is required and has a default; the default is never used",
                            name.value
                        ),
                    );
                }
            }
            if raw.secret == Some(true)
                && let Some(default) = &raw.default
            {
                self.warning(
                    default.span,
                    format!("secret param `{}` has a default, so its value is in the runbook (and in git)", name.value),
                );
            }
            out.push(Param {
                name: name.value.clone(),
                kind: raw.kind.value,
                default: raw.default.as_ref().map(|d| d.value.clone()),
                required,
                secret: raw.secret.unwrap_or(false),
                description: raw.description.clone(),
            });
        }
        out
    }

    fn pools(&mut self, pools: Option<&Entries<Spanned<u32>>>) -> Vec<(String, u32)> {
        let Some(pools) = pools else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (name, size) in pools.iter() {
            if size.value == 0 {
                self.error(size.span, format!("pool `{}` has no slots", name.value))
                    .hint = Some(
                    "a pool's size is the number of steps that may hold it at once: 1 or more"
                        .into(),
                );
            }
            out.push((name.value.clone(), size.value));
        }
        out
    }

    pub fn retry(&mut self, raw: Option<&RawRetry>, base: &Retry) -> Retry {
        let Some(raw) = raw else {
            return base.clone();
        };
        let attempts = match &raw.attempts {
            Some(a) if a.value == 0 => {
                self.error(
                    a.span,
                    "`attempts` must be at least 1 (the first run counts)",
                );
                1
            }
            Some(a) => a.value,
            None => base.attempts,
        };
        let backoff = raw.backoff.as_ref().map_or(base.backoff, |b| b.value);
        let max_backoff = raw
            .max_backoff
            .as_ref()
            .map_or(base.max_backoff, |b| b.value);
        if let Some(max) = &raw.max_backoff
            && max.value < backoff
        {
            self.error(
                max.span,
                format!(
                    "`max_backoff` ({}) is shorter than `backoff` ({backoff})",
                    max.value
                ),
            );
        }
        Retry {
            attempts,
            backoff,
            max_backoff,
            on_exit_codes: raw
                .on_exit_codes
                .clone()
                .unwrap_or_else(|| base.on_exit_codes.clone()),
        }
    }

    fn windows(&mut self, windows: Option<&Entries<Recover<RawWindow>>>) -> Vec<Window> {
        let Some(windows) = windows else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (name, raw) in windows.iter() {
            let Some(raw) = &raw.0 else { continue };
            let cutoff = raw.cutoff.as_ref().map_or(Duration::default(), |c| c.value);
            if let Some(c) = &raw.cutoff
                && c.value >= raw.duration.value
            {
                self.error(
                    c.span,
                    format!(
                        "the cutoff of window `{}` ({}) is not shorter than its duration ({})",
                        name.value, c.value, raw.duration.value
                    ),
                )
                .hint = Some("no step could ever start in this window; shorten `cutoff`".into());
            }
            let timezone = raw.timezone.as_ref().map(|t| t.value).unwrap_or_default();
            let window = Window {
                name: name.value.clone(),
                cron: raw.cron.value.clone(),
                duration: raw.duration.value,
                timezone,
                cutoff,
                on_close: raw.on_close.unwrap_or_default(),
            };
            if never_fires(&window.cron, timezone) {
                self.error(
                    raw.cron.span,
                    format!(
                        "window `{}` never opens: `{}` matches no date",
                        name.value,
                        window.cron.as_str()
                    ),
                )
                .hint = Some("check the day-of-month and month fields".into());
            } else if let Some(period) = window.cron.shortest_period(timezone.0)
                && window.duration.as_std() > period.length
            {
                let (when, hint) = if period.across_dst {
                    (
                        format!(
                            " across the DST change after {}",
                            period.from.format("%a %Y-%m-%d %H:%M %Z")
                        ),
                        "a window must close before it reopens, also when clocks change: shorten `duration` or open it less often",
                    )
                } else {
                    (
                        String::new(),
                        "a window must close before it reopens: shorten `duration` or open it less often",
                    )
                };
                self.error(
                    raw.duration.span,
                    format!(
                        "window `{}` lasts {} but opens again after {}{when}",
                        name.value,
                        window.duration,
                        Duration(period.length)
                    ),
                )
                .hint = Some(hint.into());
            }
            out.push(window);
        }
        out
    }

    fn schedules(
        &mut self,
        schedules: Option<&[Recover<RawSchedule>]>,
        params: &[Param],
    ) -> Vec<Schedule> {
        let scope = Scope::schedule(params);
        let mut out = Vec::new();
        for raw in schedules
            .unwrap_or_default()
            .iter()
            .filter_map(|s| s.0.as_ref())
        {
            let values = self.param_values(raw.params.as_ref(), params, &scope);
            // Secret params cannot be written here (they would be in git); the server has to
            // supply them, so only plain required params are flagged.
            for p in params.iter().filter(|p| p.required && !p.secret) {
                if !values.iter().any(|(n, _)| *n == p.name) {
                    self.warning(
                        raw.cron.span,
                        format!("this schedule does not set required param `{}`: its migrations cannot start", p.name),
                    );
                }
            }
            let timezone = raw.timezone.as_ref().map(|t| t.value).unwrap_or_default();
            if never_fires(&raw.cron.value, timezone) {
                self.error(
                    raw.cron.span,
                    format!(
                        "this schedule never fires: `{}` matches no date",
                        raw.cron.value.as_str()
                    ),
                )
                .hint = Some("check the day-of-month and month fields".into());
            }
            out.push(Schedule {
                cron: raw.cron.value.clone(),
                timezone,
                params: values,
                overlap: raw.overlap.unwrap_or_default(),
                catch_up: raw.catch_up.unwrap_or_default(),
            });
        }
        out
    }

    fn triggers(
        &mut self,
        triggers: Option<&[Recover<RawTrigger>]>,
        params: &[Param],
    ) -> Vec<Trigger> {
        let scope = Scope::trigger(params);
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for raw in triggers
            .unwrap_or_default()
            .iter()
            .filter_map(|t| t.0.as_ref())
        {
            let hook = &raw.webhook;
            if !valid_name(&hook.value, 63) {
                self.error(hook.span, format!("invalid webhook name `{}`", hook.value))
                    .hint = Some("webhook names appear in URLs (`/v1/hooks/NAME`): lowercase letters, digits, `-` and `_`".into());
            } else if !seen.insert(hook.value.clone()) {
                self.error(
                    hook.span,
                    format!("webhook `{}` is declared twice", hook.value),
                );
            }
            if !valid_env_name(&raw.secret_env.value) {
                self.error(raw.secret_env.span, format!("`{}` is not an environment variable name", raw.secret_env.value))
                    .hint = Some("name the variable that holds the key, e.g. `SENSEI_HOOK_DEPLOY`; never the key itself".into());
            }
            let values = self.param_values(raw.params.as_ref(), params, &scope);
            out.push(Trigger {
                webhook: hook.value.clone(),
                secret_env: raw.secret_env.value.clone(),
                params: values,
            });
        }
        out
    }

    /// `params:` of a schedule or trigger: declared names, templates in string values.
    fn param_values(
        &mut self,
        values: Option<&Entries<Spanned<serde_json::Value>>>,
        params: &[Param],
        scope: &Scope,
    ) -> Vec<(String, serde_json::Value)> {
        let mut out = Vec::new();
        for (name, value) in values.map(|v| v.0.as_slice()).unwrap_or_default() {
            if !params.iter().any(|p| p.name == name.value) && !self.declared("params", &name.value)
            {
                let hint = diag::suggest(&name.value, params.iter().map(|p| p.name.as_str()))
                    .unwrap_or_else(|| "declare it under `params:`".into());
                self.error(name.span, format!("unknown param `{}`", name.value))
                    .hint = Some(hint);
            }
            self.json_templates(&value.value, value.span, scope);
            let templated = value
                .value
                .as_str()
                .is_some_and(super::template::is_template);
            if let Some(p) = params.iter().find(|p| p.name == name.value)
                && !templated
                && let Err(found) = value_has_type(&value.value, p.kind)
            {
                self.error(
                    value.span,
                    format!(
                        "param `{}` is {}, but this value is {found}",
                        p.name,
                        article(p.kind)
                    ),
                );
            }
            out.push((name.value.clone(), value.value.clone()));
        }
        out
    }

    /// Checks every string inside a JSON value as a template.
    pub fn json_templates(&mut self, value: &serde_json::Value, span: Span, scope: &Scope) {
        match value {
            serde_json::Value::String(s) => self.template(s, span, scope),
            serde_json::Value::Array(items) => {
                items
                    .iter()
                    .for_each(|i| self.json_templates(i, span, scope));
            }
            serde_json::Value::Object(map) => {
                map.values()
                    .for_each(|v| self.json_templates(v, span, scope));
            }
            _ => {}
        }
    }

    fn alerts(
        &mut self,
        alerts: Option<&RawAlerts>,
        params: &[Param],
        steps: &[String],
        broken_steps: &HashSet<String>,
    ) -> Alerts {
        let Some(alerts) = alerts else {
            return Alerts::default();
        };
        let scope = Scope::alert(params);
        let mut channels = Vec::new();
        for (name, raw) in alerts.channels.iter() {
            if let Some(raw) = &raw.0
                && let Some(kind) = self.channel(name, raw, &scope)
            {
                channels.push(Channel {
                    name: name.value.clone(),
                    kind,
                });
            }
        }
        let mut rules = Vec::new();
        for raw in alerts.rules.iter().filter_map(|r| r.0.as_ref()) {
            rules.push(self.rule(raw, &alerts.channels, steps, broken_steps));
        }
        Alerts { channels, rules }
    }

    fn channel(
        &mut self,
        name: &Spanned<String>,
        raw: &RawChannel,
        scope: &Scope,
    ) -> Option<ChannelKind> {
        match (&raw.email, &raw.webhook) {
            (Some(email), None) => {
                if email.to.value.is_empty() {
                    self.error(
                        email.to.span,
                        format!("channel `{}` sends email to nobody", name.value),
                    )
                    .hint = Some("list at least one address in `to`".into());
                }
                for address in email.to.value.iter().chain(&email.cc) {
                    if !address.value.contains('@') {
                        self.error(
                            address.span,
                            format!("`{}` is not an email address", address.value),
                        );
                    }
                }
                for t in [&email.subject, &email.body].into_iter().flatten() {
                    self.template(&t.value, t.span, scope);
                }
                Some(ChannelKind::Email {
                    to: email.to.value.iter().map(|a| a.value.clone()).collect(),
                    cc: email.cc.iter().map(|a| a.value.clone()).collect(),
                    subject: email.subject.as_ref().map(|s| s.value.clone()),
                    body: email.body.as_ref().map(|s| s.value.clone()),
                    html: email.html.unwrap_or(false),
                })
            }
            (None, Some(hook)) => {
                let url = &hook.url.value;
                self.template(url, hook.url.span, scope);
                if !(url.starts_with("https://") || url.starts_with("http://")) {
                    self.error(hook.url.span, format!("`{url}` is not an http(s) URL"));
                }
                let headers = hook
                    .headers
                    .as_ref()
                    .map(|h| h.0.as_slice())
                    .unwrap_or_default();
                for (_, value) in headers {
                    self.template(&value.value, value.span, scope);
                }
                Some(ChannelKind::Webhook {
                    url: url.clone(),
                    format: hook.format.unwrap_or_default(),
                    secret_env: hook.secret_env.as_ref().map(|s| s.value.clone()),
                    headers: headers
                        .iter()
                        .map(|(k, v)| (k.value.clone(), v.value.clone()))
                        .collect(),
                })
            }
            _ => {
                self.error(
                    name.span,
                    format!(
                        "channel `{}` must have exactly one of `email` or `webhook`",
                        name.value
                    ),
                )
                .hint = Some(
                    "a channel sends either email or to a webhook; declare two channels to do both"
                        .into(),
                );
                None
            }
        }
    }

    fn rule(
        &mut self,
        raw: &RawRule,
        channels: &Entries<Recover<RawChannel>>,
        steps: &[String],
        broken_steps: &HashSet<String>,
    ) -> Rule {
        for event in &raw.on.value {
            if !ALERT_EVENTS.contains(&event.value.as_str()) {
                let hint = diag::suggest(&event.value, ALERT_EVENTS.iter().copied())
                    .unwrap_or_else(|| format!("events are: {}", ALERT_EVENTS.join(", ")));
                self.error(event.span, format!("unknown event `{}`", event.value))
                    .hint = Some(hint);
            }
        }
        for step in raw.steps.iter().flatten() {
            if !steps.contains(&step.value) && !broken_steps.contains(&step.value) {
                let hint = diag::suggest(&step.value, steps.iter().map(String::as_str));
                self.error(step.span, format!("unknown step `{}`", step.value))
                    .hint = hint;
            }
        }
        for channel in &raw.notify.value {
            if channels.get(&channel.value).is_none() {
                let hint = diag::suggest(&channel.value, channels.names())
                    .unwrap_or_else(|| "declare it under `alerts.channels`".into());
                self.error(channel.span, format!("unknown channel `{}`", channel.value))
                    .hint = Some(hint);
            }
        }
        Rule {
            on: raw.on.value.iter().map(|e| e.value.clone()).collect(),
            steps: raw
                .steps
                .iter()
                .flatten()
                .map(|s| s.value.clone())
                .collect(),
            notify: raw.notify.value.iter().map(|c| c.value.clone()).collect(),
        }
    }
}

/// An expression such as `0 0 30 2 *` (February 30th) is valid cron but never fires.
fn never_fires(cron: &crate::runbook::cron::CronExpr, tz: crate::runbook::cron::TimeZone) -> bool {
    let Some(start) = chrono::DateTime::from_timestamp(1_767_225_600, 0) else {
        return false;
    };
    // 2026-01-01T00:00:00Z; croner searches several years ahead, so leap days are found.
    cron.next_after(tz.0, start, 1).is_empty()
}

/// `^[a-z0-9][a-z0-9_-]{0,max-1}$`: runbook, webhook names.
pub fn valid_name(name: &str, max: usize) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && name.len() <= max
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

fn valid_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn valid_env_name(name: &str) -> bool {
    valid_identifier(name)
}

/// "an integer", "a list": a type with its article, for messages.
pub fn article(kind: ParamType) -> &'static str {
    match kind {
        ParamType::Integer => "an integer",
        ParamType::Object => "an object",
        ParamType::List => "a list",
        ParamType::String => "a string",
        ParamType::Number => "a number",
        ParamType::Boolean => "a boolean",
    }
}

pub fn type_name(kind: ParamType) -> &'static str {
    match kind {
        ParamType::String => "string",
        ParamType::Integer => "integer",
        ParamType::Number => "number",
        ParamType::Boolean => "boolean",
        ParamType::List => "list",
        ParamType::Object => "object",
    }
}

/// Whether a JSON value fits a param type; `Err` describes what it is instead.
pub fn value_has_type(value: &serde_json::Value, kind: ParamType) -> Result<(), &'static str> {
    use serde_json::Value as J;
    let ok = match kind {
        ParamType::String => value.is_string(),
        ParamType::Integer => value.is_i64() || value.is_u64(),
        ParamType::Number => value.is_number(),
        ParamType::Boolean => value.is_boolean(),
        ParamType::List => value.is_array(),
        ParamType::Object => value.is_object(),
    };
    if ok {
        return Ok(());
    }
    Err(match value {
        J::Null => "empty",
        J::Bool(_) => "a boolean",
        J::Number(n) if n.is_f64() => "a number",
        J::Number(_) => "an integer",
        J::String(_) => "a string",
        J::Array(_) => "a list",
        J::Object(_) => "an object",
    })
}
