//! Checks of `copy`: DSNs of databases Sensei speaks to (as for `sql`), exactly one of
//! `from.table` or `from.query`, a target table (written, or the source's), table names that
//! parse for their engine, a batch size in bounds, and a `range` of integer or template
//! bounds with `from` below `to`. What only the servers know (the tables' columns and types)
//! is checked when the step starts, before anything is written (`db/copy/layout.rs`).

use super::check::Checker;
use super::check_templates::Scope;
use super::copy::{CopyAction, CopyFrom, CopySource, CopyTo};
use super::raw_copy::RawCopy;
use super::text::{JsonText, Text, is_template};
use super::wrappers::Spanned;
use crate::db::copy::names::Name;
use crate::db::copy::{DEFAULT_BATCH, MAX_BATCH};
use crate::db::dsn::Engine;
use serde_json::Value as Json;

impl Checker<'_> {
    /// The checked model of a `copy`, or `None` when it has an error (reported).
    pub(crate) fn copy(&mut self, copy: &Spanned<Box<RawCopy>>) -> Option<CopyAction> {
        let raw = &copy.value;
        let from = &raw.from.value;
        let to = &raw.to.value;
        let errors = self.diagnostics.iter().filter(|d| d.is_error()).count();
        let source_engine = self.dsn(&from.dsn);
        let target_engine = self.dsn(&to.dsn);
        let source = match (&from.table, &from.query) {
            (Some(table), None) => {
                self.table_name(table, source_engine, "from.table");
                Some(CopySource::Table(Text::new(table.value.as_str())))
            }
            (None, Some(query)) => {
                if query.value.trim().is_empty() {
                    self.error(query.span, "`query` is empty").hint = Some(
                        "write the SELECT whose rows are copied, e.g. `query: SELECT id, total FROM orders WHERE total > 0`"
                            .into(),
                    );
                }
                Some(CopySource::Query(Text::new(query.value.as_str())))
            }
            (table, _) => {
                let message = if table.is_some() {
                    "`from` has both `table` and `query`"
                } else {
                    "`from` has neither `table` nor `query`"
                };
                let at = self.key_span(raw.from.span);
                self.error(at, message).hint = Some(
                    "give exactly one: `table` (a whole table) or `query` (a SELECT, read as a derived table)"
                        .into(),
                );
                None
            }
        };
        if from.key.value.trim().is_empty() {
            self.error(from.key.span, "`key` is empty").hint = Some(
                "name the integer column rows are read in order of: unique and not null, e.g. `key: id`"
                    .into(),
            );
        }
        let target = match (&to.table, &from.table) {
            (Some(table), _) => {
                self.table_name(table, target_engine, "to.table");
                Some(Text::new(table.value.as_str()))
            }
            // The target table has the source table's name (unquoted: each engine reads it).
            (None, Some(table)) => Some(Text::new(table.value.as_str())),
            (None, None) => {
                let at = self.key_span(raw.to.span);
                self.error(at, "`to` has no `table`").hint = Some(
                    "name the table the rows go into; only a copy of a `from.table` may leave it out (the same name)"
                        .into(),
                );
                None
            }
        };
        let batch = match &raw.batch {
            Some(b) if b.value == 0 || b.value > MAX_BATCH => {
                self.error(b.span, format!("`batch` is {}", b.value)).hint = Some(format!(
                    "a batch is 1 to {MAX_BATCH} rows: one transaction on the target and one checkpoint (default {DEFAULT_BATCH})"
                ));
                DEFAULT_BATCH
            }
            Some(b) => b.value,
            None => DEFAULT_BATCH,
        };
        if let Some(range) = &raw.range {
            self.range(range);
        }
        let errors_now = self.diagnostics.iter().filter(|d| d.is_error()).count();
        if errors_now > errors {
            return None;
        }
        Some(CopyAction {
            from: CopyFrom {
                dsn: Text::new(from.dsn.value.as_str()),
                source: source?,
                key: Text::new(from.key.value.trim()),
            },
            to: CopyTo {
                dsn: Text::new(to.dsn.value.as_str()),
                table: target?,
            },
            batch,
            range: raw.range.as_ref().map(|r| JsonText::new(&r.value)),
            zero_dates: raw.zero_dates.as_ref().map(|z| z.value).unwrap_or_default(),
        })
    }

    /// A table name written as text (not a template) parses for its engine.
    fn table_name(&mut self, table: &Spanned<String>, engine: Option<Engine>, key: &str) {
        let (Some(engine), false) = (engine, is_template(&table.value)) else {
            return;
        };
        if let Err(e) = Name::parse(&table.value, engine) {
            self.error(table.span, format!("`{key}` `{}`: {e}", table.value))
                .hint = Some(match engine {
                Engine::Postgres => "write `table` or `schema.table`; quote a name with other characters: `\"Order Lines\"`".into(),
                Engine::Mysql => "write `table` or `database.table`; quote a name with other characters: `` `order-lines` ``".into(),
            });
        }
    }

    /// `range`: one template, or `from`/`to` bounds that are integers, templates or null.
    fn range(&mut self, range: &Spanned<Json>) {
        let hint = "write `range: { from: 0, to: 250000 }` (from included, to not; integers or templates such as \"{{item.from}}\"), or `range: \"{{item}}\"` naming such an object";
        let bounds = match &range.value {
            Json::String(text) if is_template(text) => return,
            Json::Object(bounds) => bounds,
            _ => {
                self.error(range.span, "`range` is not a range of keys")
                    .hint = Some(hint.into());
                return;
            }
        };
        let mut values = [None, None];
        for (name, value) in bounds {
            let slot = match name.as_str() {
                "from" => 0,
                "to" => 1,
                other => {
                    self.error(range.span, format!("`range` has an unknown key `{other}`"))
                        .hint = Some(hint.into());
                    continue;
                }
            };
            match value {
                Json::Null => {}
                Json::String(text) if is_template(text) => {}
                Json::Number(n) if n.as_i64().is_some() => values[slot] = n.as_i64(),
                other => {
                    self.error(
                        range.span,
                        format!("`range.{name}` is `{other}`, not an integer key"),
                    )
                    .hint = Some(hint.into());
                }
            }
        }
        if let [Some(from), Some(to)] = values
            && from >= to
        {
            self.error(
                range.span,
                format!("`range` is empty: `from` ({from}) is not below `to` ({to})"),
            )
            .hint = Some("`from` is the first key copied, `to` the first key not copied".into());
        }
    }

    /// The templates of a `copy`: its DSNs, names, query and range.
    pub(crate) fn copy_templates(&mut self, copy: &RawCopy, scope: &Scope) {
        let from = &copy.from.value;
        let to = &copy.to.value;
        let texts = [
            Some(&from.dsn),
            from.table.as_ref(),
            from.query.as_ref(),
            Some(&from.key),
            Some(&to.dsn),
            to.table.as_ref(),
        ];
        for text in texts.into_iter().flatten() {
            self.template(&text.value, text.span, scope);
        }
        if let Some(range) = &copy.range {
            self.json_templates(&range.value, range.span, scope);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::load_bytes;
    use super::super::model::{Action, CopySource, Text};

    fn diagnostics(steps: &str) -> Vec<String> {
        let yaml = format!(
            "version: 1\nname: t\nparams:\n  src: {{ type: string, secret: true }}\n  dst: {{ type: string, secret: true }}\nsteps:\n{steps}"
        );
        let mut out = Vec::new();
        for d in load_bytes("r.yaml", yaml.as_bytes()).diagnostics {
            let s = d.span.unwrap_or_default();
            out.push(format!("{}:{}: {}", s.line, s.column, d.message));
            if let Some(hint) = d.hint {
                out.push(format!("  hint: {hint}"));
            }
        }
        out
    }

    #[test]
    fn a_copy_is_checked_before_anything_runs() {
        let found = diagnostics(
            "  - id: c\n    copy:\n      from: { dsn: \"oracle://h/x\", table: orders, query: SELECT 1, key: id }\n      to: { dsn: \"{{params.dst}}\" }\n      batch: 0\n      range: { from: 10, to: 5 }\n",
        );
        let messages: Vec<&String> = found.iter().filter(|l| !l.starts_with("  hint")).collect();
        assert_eq!(
            messages,
            [
                "9:7: `from` has both `table` and `query`",
                "9:20: `dsn`: the DSN's scheme `oracle` is not a database this version of sensei speaks to",
                "11:14: `batch` is 0",
                "12:14: `range` is empty: `from` (10) is not below `to` (5)",
            ],
            "{found:#?}"
        );
        let found = diagnostics(
            "  - id: c\n    copy:\n      from: { dsn: \"mysql://h/x\", query: SELECT 1, key: id }\n      to: { dsn: \"postgres://h/y\" }\n",
        );
        assert_eq!(found[0], "10:7: `to` has no `table`", "{found:#?}");
        let found = diagnostics(
            "  - id: c\n    copy:\n      from: { dsn: \"mysql://h/x\", table: \"orders; DROP\", key: id }\n      to: { dsn: \"postgres://h/y\", table: \"{{params.src}}\" }\n      range: { from: x }\n",
        );
        assert_eq!(
            found[0],
            "9:42: `from.table` `orders; DROP`: `;` cannot appear in a name unless it is quoted (`...`)",
            "{found:#?}"
        );
        assert!(
            found
                .iter()
                .any(|l| l.contains("`range.from` is `\"x\"`, not an integer key")),
            "{found:#?}"
        );
    }

    #[test]
    fn a_copy_of_a_table_goes_into_the_same_name_and_is_idempotent() {
        let yaml = "version: 1\nname: t\nsteps:\n  - id: c\n    for_each: [{ from: 0, to: 10 }, { from: 10, to: 20 }]\n    copy:\n      from: { dsn: \"mysql://root@h/shop\", table: orders, key: id }\n      to: { dsn: \"postgres://h/shop\" }\n      range: \"{{item}}\"\n      zero_dates: as_null\n";
        let checked = load_bytes("r.yaml", yaml.as_bytes());
        assert!(checked.diagnostics.is_empty(), "{}", checked.render());
        let runbook = checked.runbook.expect("valid");
        let step = &runbook.steps[0];
        assert!(step.idempotent, "a copy is safe to run again by itself");
        let Action::Copy(copy) = &step.action else {
            panic!("a copy step");
        };
        assert_eq!(copy.to.table, Text::Plain("orders".into()));
        assert_eq!(
            copy.from.source,
            CopySource::Table(Text::Plain("orders".into()))
        );
        assert_eq!(copy.batch, crate::db::copy::DEFAULT_BATCH);
        assert_eq!(copy.zero_dates, super::super::copy::ZeroDates::AsNull);
        assert_eq!(runbook.copies().count(), 1);
    }
}
