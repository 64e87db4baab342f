//! Hiding secret param values in text that leaves the engine: logs, events, alerts, the API.

use super::helpers::{json_inner, text};
use super::shell;
use crate::runbook::model::Runbook;
use crate::runbook::params::Params;
use serde_json::{Map, Value};
use std::borrow::Cow;

const MASK: &str = "***";

/// Replaces every occurrence of a secret with `***`.
#[derive(Clone, Default)]
pub struct Masker {
    /// Distinct, non-empty, longest first.
    secrets: Vec<String>,
}

impl std::fmt::Debug for Masker {
    // Never print the secrets themselves, not even in a debug dump.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Masker")
            .field("secrets", &self.secrets.len())
            .finish()
    }
}

impl Masker {
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Masker {
        let mut secrets: Vec<String> = secrets.into_iter().filter(|s| !s.is_empty()).collect();
        secrets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        secrets.dedup();
        Masker { secrets }
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// `text` with every occurrence of every secret replaced by `***`. Where occurrences
    /// overlap (or touch), the whole stretch they cover becomes one `***`, so no part of
    /// either secret shows.
    pub fn mask<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut ranges: Vec<(usize, usize)> = Vec::new();
        for secret in &self.secrets {
            let mut from = 0;
            while let Some(found) = text.get(from..).and_then(|rest| rest.find(secret.as_str())) {
                let start = from + found;
                ranges.push((start, start + secret.len()));
                // Overlapping occurrences of the same secret count too (`aa` in `aaa`).
                from = start + text[start..].chars().next().map_or(1, char::len_utf8);
            }
        }
        if ranges.is_empty() {
            return Cow::Borrowed(text);
        }
        ranges.sort_unstable();
        let mut out = String::with_capacity(text.len());
        let mut done = 0;
        let mut ranges = ranges.into_iter().peekable();
        while let Some((start, mut end)) = ranges.next() {
            while let Some(&(next_start, next_end)) = ranges.peek() {
                if next_start > end {
                    break;
                }
                end = end.max(next_end);
                ranges.next();
            }
            out.push_str(&text[done..start]);
            out.push_str(MASK);
            done = end;
        }
        out.push_str(&text[done..]);
        Cow::Owned(out)
    }

    /// `value` with secrets masked in every string, key and number.
    pub fn mask_json(&self, value: &Value) -> Value {
        if self.is_empty() {
            return value.clone();
        }
        match value {
            Value::String(s) => Value::String(self.mask(s).into_owned()),
            Value::Number(n) => {
                let text = n.to_string();
                match self.mask(&text) {
                    Cow::Borrowed(_) => value.clone(),
                    Cow::Owned(masked) => Value::String(masked),
                }
            }
            Value::Array(items) => Value::Array(items.iter().map(|v| self.mask_json(v)).collect()),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (self.mask(k).into_owned(), self.mask_json(v)))
                    .collect::<Map<_, _>>(),
            ),
            Value::Null | Value::Bool(_) => value.clone(),
        }
    }
}

/// The values of the runbook's `secret: true` params, in every form a template can print them:
/// the text itself (for a list or object: each string or number in it, and its JSON form) and
/// that text as shell quoting, JSON and HTML escaping write it, so a rendered command or body
/// that is logged does not show a secret in escaped form. Booleans are not listed: masking
/// every `true` would hide nothing and garble everything.
pub fn secret_values(runbook: &Runbook, params: &Params) -> Vec<String> {
    let mut out = Vec::new();
    for (name, value) in params {
        if runbook.param(name).is_some_and(|p| p.secret) {
            collect(value, &mut out);
        }
    }
    let mut forms = Vec::new();
    for text in out.into_iter().filter(|t| !t.is_empty()) {
        forms.extend(shell::forms(&text));
        forms.push(json_inner(&text));
        forms.push(handlebars::html_escape(&text));
        forms.push(text);
    }
    forms.retain(|f| !f.is_empty());
    forms.sort();
    forms.dedup();
    forms
}

fn collect(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Null | Value::Bool(_) => {}
        Value::String(_) | Value::Number(_) => out.extend(text(value).map(Cow::into_owned)),
        Value::Array(items) => {
            out.push(value.to_string());
            items.iter().for_each(|v| collect(v, out));
        }
        Value::Object(map) => {
            out.push(value.to_string());
            map.values().for_each(|v| collect(v, out));
        }
    }
}
