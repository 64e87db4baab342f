//! Checks of `sql` (a step's action, or a polling check's probe): a DSN whose scheme names
//! a database Sensei speaks to, exactly one of `query` or `file` (the file read now, see
//! [`super::Files`]), and `params` that fit the query's placeholders when both are known
//! before anything runs.

use super::check::Checker;
use super::check_templates::Scope;
use super::model::{JsonText, Sql, SqlSource, Text};
use super::raw::RawSql;
use super::wrappers::Spanned;
use crate::db::dsn::{self, Dsn, Engine};
use crate::db::sqltext;

impl Checker<'_> {
    /// The checked model of a `sql`, or `None` when it has an error (reported).
    pub(crate) fn sql(&mut self, sql: &Spanned<Box<RawSql>>) -> Option<Sql> {
        let raw = &sql.value;
        let engine = self.dsn(&raw.dsn);
        let source = match (&raw.query, &raw.file) {
            (Some(query), None) => {
                if query.value.trim().is_empty() {
                    self.error(query.span, "`query` is empty").hint = Some(
                        "write the SQL to run, e.g. `query: SELECT count(*) AS n FROM orders`"
                            .into(),
                    );
                    return None;
                }
                SqlSource::Query(Text::new(query.value.as_str()))
            }
            (None, Some(file)) => match self.files.read(&file.value) {
                Ok(text) if text.trim().is_empty() => {
                    self.error(file.span, format!("SQL file `{}` is empty", file.value));
                    return None;
                }
                Ok(text) => SqlSource::File {
                    path: file.value.clone(),
                    text,
                },
                Err((message, hint)) => {
                    let d = self.error(file.span, message);
                    d.hint = (!hint.is_empty()).then_some(hint);
                    return None;
                }
            },
            (query, _) => {
                let message = if query.is_some() {
                    "`sql` has both `query` and `file`"
                } else {
                    "`sql` has neither `query` nor `file`"
                };
                let at = self.key_span(sql.span);
                self.error(at, message).hint = Some(
                    "give exactly one: `query` (SQL written here, a template) or `file` (a file of SQL beside the runbook)"
                        .into(),
                );
                return None;
            }
        };
        let params: Vec<JsonText> = raw
            .params
            .iter()
            .flat_map(|list| list.value.iter())
            .map(|p| JsonText::new(&p.value))
            .collect();
        if let (Some(engine), Some(list)) = (engine, &raw.params) {
            self.placeholders(engine, &source, &params, list);
        }
        Some(Sql {
            dsn: Text::new(raw.dsn.value.as_str()),
            source,
            params,
            transaction: raw.transaction.unwrap_or(true),
        })
    }

    /// Checks what can be checked of a DSN as written; its engine when the scheme is written.
    pub(crate) fn dsn(&mut self, written: &Spanned<String>) -> Option<Engine> {
        let text = written.value.as_str();
        let (literal, is_template) = match text.find("{{") {
            Some(at) => (&text[..at], true),
            None => (text, false),
        };
        if is_template && !literal.contains("://") {
            // The scheme comes from a value (a whole DSN from a param): known at run time.
            return None;
        }
        let checked = if is_template {
            dsn::engine_of(literal)
        } else {
            Dsn::parse(text).map(|d| d.engine)
        };
        match checked {
            Ok(engine) => {
                if !is_template && !dsn::secrets_in(text).is_empty() {
                    self.warning(written.span, "this DSN holds its password in the runbook")
                        .hint = Some(
                        "the password is masked in every output, but the runbook is kept in git: declare a param with `secret: true` and write `dsn: \"{{params.orders_dsn}}\"`"
                            .into(),
                    );
                }
                Some(engine)
            }
            Err(e) => {
                // The message never quotes the DSN: it may hold a password.
                self.error(written.span, format!("`dsn`: {e}")).hint = Some(e.hint().into());
                None
            }
        }
    }

    /// `params` against the placeholders of SQL known now (not a template).
    fn placeholders(
        &mut self,
        engine: Engine,
        source: &SqlSource,
        params: &[JsonText],
        list: &Spanned<Vec<Spanned<serde_json::Value>>>,
    ) {
        let text = match source {
            SqlSource::Query(Text::Plain(text)) | SqlSource::File { text, .. } => text,
            SqlSource::Query(Text::Template(_)) => return,
        };
        if list.value.is_empty() {
            return;
        }
        let stand_ins = vec![serde_json::Value::Null; params.len()];
        if let Err(e) = sqltext::bind(engine, text, &stand_ins, false) {
            let at = self.key_span(list.span);
            self.error(at, format!("`params` does not fit the query: {e}")).hint = Some(match engine {
                Engine::Postgres => "PostgreSQL placeholders are `$1`, `$2`, ...: one value in `params` for each number".into(),
                Engine::Mysql => "MySQL placeholders are `?`: one value in `params` for each, in order".into(),
            });
        }
    }

    /// The templates of a `sql`: its DSN, its query and its params.
    pub(crate) fn sql_templates(&mut self, sql: &RawSql, scope: &Scope) {
        self.template(&sql.dsn.value, sql.dsn.span, scope);
        if let Some(query) = &sql.query {
            self.template(&query.value, query.span, scope);
        }
        for p in sql.params.iter().flat_map(|list| list.value.iter()) {
            self.json_templates(&p.value, p.span, scope);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::model::{Action, Probe, SqlSource, Text};
    use super::super::{Files, load_bytes, load_with};

    fn diagnostics(steps: &str) -> Vec<String> {
        let yaml = format!(
            "version: 1\nname: t\nparams:\n  dsn: {{ type: string, secret: true }}\nsteps:\n{steps}"
        );
        let mut out = Vec::new();
        for d in load_bytes("r.yaml", yaml.as_bytes()).diagnostics {
            let s = d.span.unwrap_or_default();
            let kind = if d.is_error() { "error" } else { "warning" };
            out.push(format!("{}:{}: {kind}: {}", s.line, s.column, d.message));
            if let Some(hint) = d.hint {
                out.push(format!("  hint: {hint}"));
            }
        }
        out
    }

    #[test]
    fn a_dsn_with_another_scheme_is_located_and_says_which_schemes_work() {
        let found =
            diagnostics("  - id: a\n    sql: { dsn: \"oracle://u@h/db\", query: SELECT 1 }\n");
        assert_eq!(
            found,
            [
                "7:17: error: `dsn`: the DSN's scheme `oracle` is not a database this version of sensei speaks to",
                "  hint: write `postgres://user:password@host:5432/db` (or `postgresql://`) for PostgreSQL, `mysql://user:password@host:3306/db` (or `mariadb://`) for MySQL or MariaDB",
            ]
        );
        let found = diagnostics(
            "  - id: a\n    sql: { dsn: \"sqlite://{{params.dsn}}\", query: SELECT 1 }\n",
        );
        assert_eq!(found.len(), 2, "{found:?}");
        // A DSN that comes whole from a param is checked when it is rendered.
        assert!(
            diagnostics("  - id: a\n    sql: { dsn: \"{{params.dsn}}\", query: SELECT 1 }\n")
                .is_empty()
        );
    }

    #[test]
    fn a_password_written_in_the_runbook_is_a_warning_that_never_quotes_it() {
        let found = diagnostics(
            "  - id: a\n    sql: { dsn: \"postgres://app:hunter22@db/x\", query: SELECT 1 }\n",
        );
        assert_eq!(
            found[0],
            "7:17: warning: this DSN holds its password in the runbook"
        );
        assert!(found.iter().all(|l| !l.contains("hunter22")));
    }

    #[test]
    fn query_and_file_exclude_each_other_and_params_must_fit() {
        let found = diagnostics("  - id: a\n    sql: { dsn: \"{{params.dsn}}\" }\n");
        assert_eq!(found[0], "7:5: error: `sql` has neither `query` nor `file`");
        let found = diagnostics(
            "  - id: a\n    sql: { dsn: \"mysql://u@h/db\", query: \"SELECT ?, ?\", params: [1] }\n",
        );
        assert_eq!(
            found[0],
            "7:57: error: `params` does not fit the query: the query has 2 `?` placeholders, but `params` has 1 value"
        );
        let found = diagnostics("  - id: a\n    sql: { dsn: \"{{params.dsn}}\", file: x.sql }\n");
        assert_eq!(
            found[0],
            "7:41: error: `x.sql` cannot be read: this runbook text has no directory"
        );
    }

    #[test]
    fn a_file_is_read_from_the_runbooks_directory_into_the_model() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("schema.sql"), "CREATE TABLE t (id int);\n").expect("write");
        let yaml = "version: 1\nname: t\nsteps:\n  - id: a\n    sql: { dsn: \"postgres://h/db\", file: schema.sql, transaction: false }\n  - id: c\n    check: \"{{eq probe.outputs.ok 1}}\"\n    probe: { sql: { dsn: \"mysql://h/db\", query: \"SELECT ? AS ok\", params: [\"{{runbook.name}}\"] } }\n    every: 1s\n    timeout: 1m\n";
        let checked = load_with("r.yaml", yaml.as_bytes(), Files::Dir(dir.path()));
        assert!(checked.diagnostics.is_empty(), "{}", checked.render());
        let runbook = checked.runbook.expect("valid");
        let Action::Sql(sql) = &runbook.steps[0].action else {
            panic!("a sql step");
        };
        assert!(!sql.transaction);
        assert_eq!(
            sql.source,
            SqlSource::File {
                path: "schema.sql".into(),
                text: "CREATE TABLE t (id int);\n".into()
            }
        );
        assert_eq!(runbook.files().len(), 1);
        let probe = runbook.steps[1].poll.as_ref().and_then(|p| p.probe.clone());
        let Some(Probe::Sql(sql)) = probe else {
            panic!("a sql probe");
        };
        assert_eq!(
            sql.source,
            SqlSource::Query(Text::Plain("SELECT ? AS ok".into()))
        );
        assert!(sql.transaction);
        let stored = runbook.files();
        let again = load_with("r.yaml", yaml.as_bytes(), Files::Stored(&stored));
        assert!(again.runbook.is_some(), "{}", again.render());
    }
}
