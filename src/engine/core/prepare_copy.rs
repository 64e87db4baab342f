//! Rendering a `copy` step into what its process runs: DSNs, table names, the query and the
//! key as text (names are quoted by the process, never spliced), the range's bounds as
//! integers. A bound that is not an integer fails the step before anything runs. The
//! attempt's checkpoint reaches the process in `$SENSEI_CHECKPOINT`, like any step's.

use super::Core;
use crate::db::copy::{CopySpec, FromSpec, KeyRange, ToSpec};
use crate::db::dsn::Dsn;
use crate::engine::actions::Prepared;
use crate::process::StepEnv;
use crate::runbook::model::{CopyAction, CopySource, Text, ZeroDates};
use crate::runbook::render::{Escape, Values};
use serde_json::Value as Json;

impl Core {
    pub(super) fn prepare_copy(
        &self,
        node: usize,
        copy: &CopyAction,
        ctx: &Values,
        env: StepEnv,
    ) -> Result<Prepared, String> {
        let text = |t: &Text, what: &str| {
            t.render(&self.renderer, ctx, Escape::None)
                .map_err(|e| format!("`{what}` cannot be rendered: {e}"))
        };
        let from_dsn = text(&copy.from.dsn, "from.dsn")?;
        let to_dsn = text(&copy.to.dsn, "to.dsn")?;
        // The messages never quote a DSN: it may hold a password.
        let from = Dsn::parse(&from_dsn).map_err(|e| format!("`from.dsn`: {e}; {}", e.hint()))?;
        let to = Dsn::parse(&to_dsn).map_err(|e| format!("`to.dsn`: {e}; {}", e.hint()))?;
        let (table, query) = match &copy.from.source {
            CopySource::Table(t) => (Some(text(t, "from.table")?), None),
            CopySource::Query(q) => (None, Some(text(q, "from.query")?)),
        };
        let range = match &copy.range {
            None => KeyRange::default(),
            Some(range) => {
                let value = range
                    .render(&self.renderer, ctx)
                    .map_err(|e| format!("`range` cannot be rendered: {e}"))?;
                key_range(&value)?
            }
        };
        let timeout = self.graph.step(&self.runbook, node).timeout;
        let exe = std::env::current_exe()
            .map_err(|e| format!("cannot find the sensei binary that runs `copy` steps: {e}"))?;
        let mut secrets = from.secrets();
        secrets.extend(to.secrets());
        Ok(Prepared::Copy {
            spec: Box::new(CopySpec {
                from: FromSpec {
                    dsn: from_dsn,
                    table,
                    query,
                    key: text(&copy.from.key, "from.key")?,
                },
                to: ToSpec {
                    dsn: to_dsn,
                    table: text(&copy.to.table, "to.table")?,
                },
                batch: copy.batch,
                range,
                zero_dates_null: copy.zero_dates == ZeroDates::AsNull,
                timeout_ms: timeout
                    .map(|t| u64::try_from(t.as_std().as_millis()).unwrap_or(u64::MAX)),
            }),
            exe,
            env,
            secrets,
        })
    }
}

/// A rendered `range`: `{from, to}` with integer (or integer text) bounds, either absent or
/// null.
fn key_range(value: &Json) -> Result<KeyRange, String> {
    let Json::Object(bounds) = value else {
        return Err(format!(
            "`range` rendered `{value}`, not an object of bounds (`{{\"from\": 0, \"to\": 1000}}`)"
        ));
    };
    if let Some(other) = bounds.keys().find(|k| !matches!(k.as_str(), "from" | "to")) {
        return Err(format!(
            "`range` has an unknown key `{other}`: its bounds are `from` (included) and `to` (not)"
        ));
    }
    let bound = |name: &str| -> Result<Option<i64>, String> {
        match bounds.get(name) {
            None | Some(Json::Null) => Ok(None),
            Some(Json::Number(n)) if n.as_i64().is_some() => Ok(n.as_i64()),
            Some(Json::String(s)) if s.trim().parse::<i64>().is_ok() => Ok(s.trim().parse().ok()),
            Some(other) => Err(format!(
                "`range.{name}` rendered `{other}`, not an integer key"
            )),
        }
    };
    let range = KeyRange {
        from: bound("from")?,
        to: bound("to")?,
    };
    if let (Some(from), Some(to)) = (range.from, range.to)
        && from >= to
    {
        return Err(format!(
            "`range` is empty: `from` ({from}) is not below `to` ({to})"
        ));
    }
    Ok(range)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rendered_ranges_take_integers_and_integer_text() {
        assert_eq!(
            key_range(&json!({"from": 0, "to": "250000"})),
            Ok(KeyRange {
                from: Some(0),
                to: Some(250_000)
            })
        );
        assert_eq!(key_range(&json!({"to": null})), Ok(KeyRange::default()));
        assert_eq!(
            key_range(&json!({"from": 1.5})),
            Err("`range.from` rendered `1.5`, not an integer key".into())
        );
        assert!(key_range(&json!([0, 1])).is_err());
        assert!(key_range(&json!({"from": 5, "to": 5})).is_err());
        assert!(key_range(&json!({"start": 5})).is_err());
    }
}
