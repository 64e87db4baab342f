//! Semantic checks of a loaded runbook (SPEC §2), all in one pass, into the checked model.
//!
//! This file holds the checker and the runbook-wide sections (version, name, params, pools,
//! retry); `check_calendar.rs` checks windows, schedules and triggers, `check_alerts.rs` the
//! alerts, `check_steps.rs` the steps and their graph, `check_poll.rs` automatic gates, and
//! `check_templates.rs` every template. A part with an error is left out of the model, and
//! the model is only returned when there is no error at all.

use super::check_templates::Scope;
use super::model::{Param, Retry, Runbook, Text};
use super::raw::{OnFailure, ParamType, RawParam, RawRetry, RawRunbook};
use super::source::Source;
use super::wrappers::{Entries, Recover, Spanned};
use super::yaml::Node;
use crate::diag::{Diagnostic, Span};
use std::collections::HashSet;

/// Collects diagnostics while the checks run.
pub(crate) struct Checker<'a> {
    pub source: &'a Source,
    pub root: &'a Node,
    pub diagnostics: Vec<Diagnostic>,
    /// Where `sql` files are read from.
    pub files: super::Files<'a>,
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
    files: super::Files<'_>,
) -> (Option<Runbook>, Vec<Diagnostic>) {
    let mut c = Checker {
        source,
        root,
        diagnostics: Vec::new(),
        files,
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
                (k.value.clone(), Text::new(v.value.as_str()))
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

/// An environment variable name: letters, digits and `_`, not starting with a digit.
pub fn valid_env_name(name: &str) -> bool {
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
