//! The `sql` action in the checked model (a step's, or a polling check's probe), the SQL
//! files a runbook reads, and the DSN passwords known before anything runs (of `sql`,
//! `copy` and `compare`: [`Runbook::dsns`]).
//!
//! A `file:` is read once, when the runbook is loaded ([`super::Files`]): a migration keeps
//! the text it was created with (in the store, beside its runbook text), the plan's digest
//! covers it, and a resumed migration runs that text, not whatever the file holds by then.

use super::model::{Action, JsonText, Probe, Runbook, Text};
use super::params::Params;
use super::render::{Escape, Renderer, Values};
use crate::db::dsn;
use serde_json::{Value as Json, json};
use std::collections::BTreeMap;

/// SQL to run on PostgreSQL or MySQL/MariaDB.
#[derive(Debug, Clone, PartialEq)]
pub struct Sql {
    /// The connection URL (a template).
    pub dsn: Text,
    pub source: SqlSource,
    /// Values for the query's placeholders, put in as literals.
    pub params: Vec<JsonText>,
    /// All statements in one transaction.
    pub transaction: bool,
}

/// Where the SQL comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlSource {
    /// Written in the runbook (a template).
    Query(Text),
    /// A file, by its path as written (relative to the runbook's directory), with the text it
    /// held when the runbook was loaded; sent as written.
    File { path: String, text: String },
}

/// Most bytes a `file:` may hold.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

impl Runbook {
    /// Every `sql` of the runbook: steps' and probes'.
    pub fn sqls(&self) -> impl Iterator<Item = &Sql> {
        self.steps
            .iter()
            .filter_map(|step| match (&step.action, &step.poll) {
                (Action::Sql(sql), _) => Some(sql),
                (_, Some(poll)) => match &poll.probe {
                    Some(Probe::Sql(sql)) => Some(sql),
                    _ => None,
                },
                _ => None,
            })
    }

    /// The files its `sql` steps and probes read, by path as written, with their text.
    pub fn files(&self) -> BTreeMap<String, String> {
        self.sqls()
            .filter_map(|sql| match &sql.source {
                SqlSource::File { path, text } => Some((path.clone(), text.clone())),
                SqlSource::Query(_) => None,
            })
            .collect()
    }
}

/// The passwords of every DSN known before anything runs: written in a `dsn` (of a `sql`, a
/// `copy` or a `compare`: [`Runbook::dsns`]), rendered from the params alone, or held by a
/// param value or a `for_each` element that is a DSN.
/// They are secrets like `secret: true` params (masked in logs, events, alerts, the API and
/// fan-out ids). A DSN rendered from step outputs is known only when its step starts; the
/// engine adds its password then.
pub fn dsn_passwords(runbook: &Runbook, params: &Params) -> Vec<String> {
    let mut out = Vec::new();
    let mut strings = Vec::new();
    for value in params.values() {
        collect_strings(value, &mut strings);
    }
    for step in &runbook.steps {
        if let Some(super::model::ForEach::List(items)) = &step.for_each {
            items.iter().for_each(|i| collect_strings(i, &mut strings));
        }
    }
    for s in strings {
        out.extend(dsn::secrets_in(s));
    }
    let mut values: Option<(Renderer, Values)> = None;
    for dsn in runbook.dsns() {
        match dsn {
            Text::Plain(text) => out.extend(dsn::secrets_in(text)),
            template @ Text::Template(_) => {
                let (renderer, values) = values.get_or_insert_with(|| {
                    (
                        Renderer::new(),
                        Values::new(
                            json!({ "params": params, "runbook": { "name": runbook.name } }),
                        ),
                    )
                });
                // A DSN that reads more than the params is rendered when its step starts.
                if let Ok(text) = template.render(renderer, values, Escape::None) {
                    out.extend(dsn::secrets_in(&text));
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

fn collect_strings<'a>(value: &'a Json, out: &mut Vec<&'a str>) {
    match value {
        Json::String(s) => out.push(s),
        Json::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        Json::Object(map) => map.values().for_each(|v| collect_strings(v, out)),
        _ => {}
    }
}
