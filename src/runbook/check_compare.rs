//! Checks of `compare`: each side a DSN Sensei speaks to and exactly one of `table` or
//! `query`; a key of one or more column names; `columns` without blanks or repeats; `ranges`
//! and `samples` within bounds. Names are checked against the servers when the step runs
//! (they may be templates, and only the servers know their columns).

use super::check::Checker;
use super::check_templates::Scope;
use super::compare::{Compare, CompareFrom, CompareSide, DEFAULT_RANGES, DEFAULT_SAMPLES};
use super::model::Text;
use super::raw::{RawCompare, RawCompareSide};
use super::wrappers::Spanned;
use serde_json::Value as Json;

/// Most key ranges a step may ask for.
pub const MAX_RANGES: u32 = 100_000;
/// Most sample keys a step may ask for.
pub const MAX_SAMPLES: u32 = 1000;

impl Checker<'_> {
    /// The checked model of a `compare`, or `None` when it has an error (reported).
    pub(crate) fn compare(&mut self, c: &Spanned<Box<RawCompare>>) -> Option<Compare> {
        let raw = &c.value;
        let source = self.compare_side("source", &raw.source);
        let target = self.compare_side("target", &raw.target);
        let key = self.compare_key(&raw.key);
        let columns = self.compare_columns(raw.columns.as_ref());
        let ranges = raw.ranges.as_ref().map_or(Some(DEFAULT_RANGES), |r| {
            if (1..=MAX_RANGES).contains(&r.value) {
                return Some(r.value);
            }
            self.error(r.span, format!("`ranges` must be 1 to {MAX_RANGES}"))
                .hint = Some(
                "each range is one query per side for an integer key: 16 to 1000 suit most tables"
                    .into(),
            );
            None
        });
        let samples = raw.samples.as_ref().map_or(Some(DEFAULT_SAMPLES), |s| {
            if s.value <= MAX_SAMPLES {
                return Some(s.value);
            }
            self.error(s.span, format!("`samples` must be 0 to {MAX_SAMPLES}"))
                .hint =
                Some("a few keys say where to look; the log has every differing range".into());
            None
        });
        Some(Compare {
            source: source?,
            target: target?,
            key: key?,
            columns: columns?,
            ranges: ranges?,
            samples: samples?,
        })
    }

    fn compare_side(&mut self, name: &str, side: &Spanned<RawCompareSide>) -> Option<CompareSide> {
        let raw = &side.value;
        self.dsn(&raw.dsn);
        let from = match (&raw.table, &raw.query) {
            (Some(table), None) => {
                self.not_blank(
                    table,
                    "table",
                    "name the table: `table: orders` or `table: shop.orders`",
                )?;
                CompareFrom::Table(Text::new(table.value.as_str()))
            }
            (None, Some(query)) => {
                self.not_blank(query, "query", "write the query whose rows are compared, e.g. `query: SELECT id, total FROM orders WHERE region = 'eu'`")?;
                CompareFrom::Query(Text::new(query.value.as_str()))
            }
            (table, _) => {
                let message = if table.is_some() {
                    format!("the {name} has both `table` and `query`")
                } else {
                    format!("the {name} has neither `table` nor `query`")
                };
                let at = self.key_span(side.span);
                self.error(at, message).hint = Some(
                    "give exactly one: `table` (a table, `name` or `schema.name`) or `query` (rows of a query)".into(),
                );
                return None;
            }
        };
        Some(CompareSide {
            dsn: Text::new(raw.dsn.value.as_str()),
            from,
        })
    }

    fn not_blank(&mut self, value: &Spanned<String>, what: &str, hint: &str) -> Option<()> {
        if value.value.trim().is_empty() {
            self.error(value.span, format!("`{what}` is empty")).hint = Some(hint.into());
            return None;
        }
        Some(())
    }

    fn compare_key(&mut self, key: &Spanned<Json>) -> Option<Vec<Text>> {
        let names: Option<Vec<&str>> = match &key.value {
            Json::String(name) => Some(vec![name.as_str()]),
            Json::Array(items) if !items.is_empty() => items.iter().map(Json::as_str).collect(),
            _ => None,
        };
        let Some(names) = names.filter(|n| n.iter().all(|n| !n.trim().is_empty())) else {
            self.error(key.span, "`key` must be a column name or a list of column names")
                .hint = Some(
                "name the column that identifies a row on both sides, e.g. `key: id`, or several: `key: [order_id, line]`".into(),
            );
            return None;
        };
        if let Some(twice) = repeated(&names) {
            self.error(key.span, format!("`key` names `{twice}` twice"));
            return None;
        }
        Some(names.into_iter().map(Text::new).collect())
    }

    fn compare_columns(
        &mut self,
        columns: Option<&Spanned<Vec<Spanned<String>>>>,
    ) -> Option<Vec<Text>> {
        let Some(columns) = columns else {
            return Some(Vec::new());
        };
        let mut ok = true;
        for c in &columns.value {
            if c.value.trim().is_empty() {
                self.error(c.span, "a column name is empty");
                ok = false;
            }
        }
        let names: Vec<&str> = columns.value.iter().map(|c| c.value.as_str()).collect();
        if let Some(twice) = repeated(&names) {
            let at = self.key_span(columns.span);
            self.error(at, format!("`columns` names `{twice}` twice"));
            ok = false;
        }
        if columns.value.is_empty() {
            let at = self.key_span(columns.span);
            self.error(at, "`columns` is empty").hint =
                Some("leave `columns` out to compare every column".into());
            ok = false;
        }
        ok.then(|| {
            columns
                .value
                .iter()
                .map(|c| Text::new(c.value.as_str()))
                .collect()
        })
    }

    /// The templates of a `compare`: DSNs, tables, queries, key and column names.
    pub(crate) fn compare_templates(&mut self, raw: &RawCompare, scope: &Scope) {
        for side in [&raw.source.value, &raw.target.value] {
            let texts = [Some(&side.dsn), side.table.as_ref(), side.query.as_ref()];
            for t in texts.into_iter().flatten() {
                self.template(&t.value, t.span, scope);
            }
        }
        match &raw.key.value {
            Json::String(name) => self.template(name, raw.key.span, scope),
            other => self.json_templates(other, raw.key.span, scope),
        }
        for c in raw.columns.iter().flat_map(|c| c.value.iter()) {
            self.template(&c.value, c.span, scope);
        }
    }
}

/// A name given twice (letter case ignored, as the servers' names match).
fn repeated<'a>(names: &[&'a str]) -> Option<&'a str> {
    names
        .iter()
        .enumerate()
        .find(|(i, n)| names[..*i].iter().any(|m| m.eq_ignore_ascii_case(n)))
        .map(|(_, n)| *n)
}

#[cfg(test)]
mod tests {
    use super::super::load_bytes;
    use super::super::model::{Action, CompareFrom, Text};

    fn diagnostics(compare: &str) -> Vec<String> {
        let yaml = format!(
            "version: 1\nname: t\nparams:\n  src: {{ type: string, secret: true }}\nsteps:\n  - id: c\n    phase: validate\n    compare:\n{compare}"
        );
        let mut out = Vec::new();
        for d in load_bytes("r.yaml", yaml.as_bytes()).diagnostics {
            let s = d.span.unwrap_or_default();
            let kind = if d.is_error() { "error" } else { "warning" };
            out.push(format!("{}:{}: {kind}: {}", s.line, s.column, d.message));
        }
        out
    }

    #[test]
    fn a_valid_compare_becomes_the_model_with_defaults() {
        let yaml = "version: 1\nname: t\nparams:\n  src: { type: string }\nsteps:\n  - id: c\n    phase: validate\n    compare:\n      source: { dsn: \"{{params.src}}\", table: shop.orders }\n      target: { dsn: \"postgres://h/db\", query: \"SELECT * FROM orders\" }\n      key: [id, line]\n      columns: [total]\n";
        let checked = load_bytes("r.yaml", yaml.as_bytes());
        assert!(checked.diagnostics.is_empty(), "{}", checked.render());
        let runbook = checked.runbook.expect("valid");
        let Action::Compare(c) = &runbook.steps[0].action else {
            panic!("a compare step");
        };
        assert_eq!(
            c.source.from,
            CompareFrom::Table(Text::Plain("shop.orders".into()))
        );
        assert_eq!(c.key.len(), 2);
        assert_eq!((c.ranges, c.samples), (16, 5));
        assert!(runbook.steps[0].idempotent, "a comparison only reads");
        assert_eq!(runbook.dsns().count(), 2);
    }

    #[test]
    fn sides_keys_and_bounds_are_checked_in_one_pass() {
        let found = diagnostics(
            "      source: { dsn: \"oracle://h/db\", table: a, query: SELECT 1 }\n      target: { dsn: \"{{params.src}}\" }\n      key: []\n      columns: [a, A]\n      ranges: 0\n",
        );
        assert_eq!(
            found,
            [
                "9:7: error: the source has both `table` and `query`",
                "9:22: error: `dsn`: the DSN's scheme `oracle` is not a database this version of sensei speaks to",
                "10:7: error: the target has neither `table` nor `query`",
                "11:12: error: `key` must be a column name or a list of column names",
                "12:7: error: `columns` names `A` twice",
                "13:15: error: `ranges` must be 1 to 100000",
            ]
        );
    }
}
