//! Hiding secret param values in text that leaves the engine: logs, events, alerts, the API.
//!
//! Output is stored line by line, and a line longer than 64 KiB arrives in pieces. So that
//! neither cut lets a secret through: every line of a multi-line secret is a secret of its
//! own ([`MIN_FRAGMENT`]), and a line that arrives in pieces is masked as if it came whole
//! ([`Masker::mask_piece`]).

use super::helpers::{json_inner, text};
use super::shell;
use crate::runbook::model::Runbook;
use crate::runbook::params::Params;
use serde_json::{Map, Value};
use std::borrow::Cow;

/// What a secret is replaced by.
pub const MASK: &str = "***";

/// The shortest line of a multi-line secret (in characters, surrounding whitespace not
/// counted) that is masked on its own wherever it appears. Output is stored line by line, so
/// a multi-line secret never appears whole in a log; each of its lines must be hidden by
/// itself. Shorter lines are left alone: they are the `{`, `},` and `==` of keys and
/// documents, which carry next to nothing of the secret, while hiding every `}` in every
/// log would garble everything.
pub const MIN_FRAGMENT: usize = 4;

/// Replaces every occurrence of a secret with `***`.
#[derive(Clone, Default)]
pub struct Masker {
    /// Distinct, non-empty, longest first; a multi-line secret's lines included.
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
    /// A masker of `secrets`, and of each line of the multi-line ones ([`MIN_FRAGMENT`]).
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Masker {
        let mut all: Vec<String> = Vec::new();
        for secret in secrets.into_iter().filter(|s| !s.is_empty()) {
            if secret.contains('\n') {
                all.extend(
                    secret
                        .lines()
                        .map(str::trim)
                        .filter(|line| line.chars().count() >= MIN_FRAGMENT)
                        .map(str::to_owned),
                );
            }
            all.push(secret);
        }
        all.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        all.dedup();
        Masker { secrets: all }
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// True when every one of `secrets` (in every form [`forms`] gives) is masked already.
    pub fn covers(&self, secrets: &[String]) -> bool {
        secrets
            .iter()
            .flat_map(|s| forms(s))
            .all(|f| self.secrets.contains(&f))
    }

    /// This masker and `more` secrets besides (in every form [`forms`] gives): a DSN's
    /// password found when its step renders.
    pub fn with(&self, more: &[String]) -> Masker {
        Masker::new(
            self.secrets
                .iter()
                .cloned()
                .chain(more.iter().flat_map(|s| forms(s))),
        )
    }

    /// `text` with every occurrence of every secret replaced by `***`. Where occurrences
    /// overlap (or touch), the whole stretch they cover becomes one `***`, so no part of
    /// either secret shows.
    pub fn mask<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let ranges = self.ranges(text);
        if ranges.is_empty() {
            return Cow::Borrowed(text);
        }
        let mut out = String::with_capacity(text.len());
        let mut done = 0;
        for (start, end) in ranges {
            out.push_str(&text[done..start]);
            out.push_str(MASK);
            done = end;
        }
        out.push_str(&text[done..]);
        Cow::Owned(out)
    }

    /// Masks a line that arrives in pieces (a line longer than the 64 KiB a log line holds)
    /// as if it came whole: a secret may begin in one piece and end in the next, and masked
    /// piece by piece it would show in both halves. `held` carries the end of the line so far
    /// that could still begin a secret (at most the longest secret's length); give each piece
    /// of one line with the same `held`, `ends_line` for the last. Returns the masked text
    /// that can be shown now, `None` when all of it is held for the next piece.
    pub fn mask_piece(&self, held: &mut String, piece: &str, ends_line: bool) -> Option<String> {
        held.push_str(piece);
        let cut = if ends_line {
            held.len()
        } else {
            self.safe_cut(held)
        };
        if cut == 0 && !ends_line {
            return None;
        }
        let rest = held.split_off(cut);
        let shown = self.mask(held).into_owned();
        *held = rest;
        Some(shown)
    }

    /// Where `text` (a line that continues) can be cut so that every secret occurrence that
    /// may continue past its end lies wholly after the cut, and no occurrence is cut in two.
    fn safe_cut(&self, text: &str) -> usize {
        let longest = self.secrets.first().map_or(0, String::len);
        // An occurrence starting before this point would end within `text`.
        let mut cut = text.len().saturating_sub(longest.saturating_sub(1));
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        // Secrets start at character boundaries, so backing up to one's start stays on one.
        for (start, end) in self.ranges(text) {
            if start < cut && cut < end {
                cut = start;
            }
        }
        cut
    }

    /// The stretches of `text` that secrets cover, sorted, overlapping or touching ones merged.
    fn ranges(&self, text: &str) -> Vec<(usize, usize)> {
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
        ranges.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(ranges.len());
        for (start, end) in ranges {
            match merged.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        merged
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
///
/// The passwords of the DSNs known from the runbook and its params are secrets too
/// ([`crate::runbook::sql::dsn_passwords`]), whether or not a param says `secret: true`.
pub fn secret_values(runbook: &Runbook, params: &Params) -> Vec<String> {
    let mut out = Vec::new();
    for (name, value) in params {
        if runbook.param(name).is_some_and(|p| p.secret) {
            collect(value, &mut out);
        }
    }
    out.extend(crate::runbook::sql::dsn_passwords(runbook, params));
    let mut all: Vec<String> = out.iter().flat_map(|t| forms(t)).collect();
    all.sort();
    all.dedup();
    all
}

/// A secret's text in every form a template can print it: itself, shell-quoted, JSON- and
/// HTML-escaped.
pub fn forms(text: &str) -> Vec<String> {
    if text.is_empty() {
        return Vec::new();
    }
    let mut out = shell::forms(text);
    out.push(json_inner(text));
    out.push(handlebars::html_escape(text));
    out.push(text.to_owned());
    out.retain(|f| !f.is_empty());
    out
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
