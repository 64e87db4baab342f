//! Which source column goes into which target column, and how: decided once, from the
//! first row's column types and the target table's declared columns, before anything is
//! written. Every column that cannot be copied is reported at once, each with its name, both
//! types and what to do.
//!
//! Columns match by name (exactly, else ignoring case: an unquoted PostgreSQL name is lower
//! case). A target column the source does not have keeps its default; a source column the
//! target does not have is an error (select only what the target takes, or rename it with
//! `AS`).

use super::types::{self, Conv, Source, Target};
use crate::db::dsn::Engine;

/// A column of the target table, as its catalog declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetColumn {
    pub name: String,
    /// The declared type, for messages (`numeric(12,2)`, `varchar(64)`).
    pub declared: String,
    pub kind: Target,
}

/// How one source column is copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// The source's name for it.
    pub name: String,
    /// The target column's name.
    pub target: String,
    pub conv: Conv,
    /// Check for MySQL's zero dates (a MySQL date going to PostgreSQL).
    pub zero_dates: bool,
    /// A number into a MySQL number column: written without quotes (a quoted one would be a
    /// string, which MySQL's `BIT` reads as bytes).
    pub bare: bool,
}

/// Every source column with its target, and where the key is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub columns: Vec<Column>,
    /// Index of the key among `columns`.
    pub key: usize,
    /// The key's name in the target table.
    pub target_key: String,
}

/// What the copy copies between.
#[derive(Debug, Clone, Copy)]
pub struct Ends<'a> {
    pub source: Engine,
    pub target: Engine,
    /// The target table as written, for messages.
    pub table: &'a str,
    pub columns: &'a [TargetColumn],
    /// The key column as written in the step.
    pub key: &'a str,
}

/// The layout of source columns (name, type name as the driver gives it) into the target.
pub fn layout(source: &[(String, String)], ends: Ends<'_>) -> Result<Layout, String> {
    let mut problems = Vec::new();
    let mut columns = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for (name, type_name) in source {
        let kind = types::source(ends.source, type_name);
        if let Source::Unsupported(hint) = kind {
            problems.push(format!(
                "`{name}` is {} `{type_name}`, which `copy` does not convert: {hint}",
                ends.source.name()
            ));
            continue;
        }
        let Some(target) = find(ends.columns, name) else {
            problems.push(format!(
                "`{name}` ({type_name}) has no column in `{}`: select only the columns it has, or name it after one (`... AS name`)",
                ends.table
            ));
            continue;
        };
        if seen.contains(&target.name.as_str()) {
            problems.push(format!(
                "`{name}` names the column `{}` a second time: select each target column once",
                target.name
            ));
            continue;
        }
        seen.push(&target.name);
        let Some(conv) = types::conversion(kind, target.kind) else {
            problems.push(format!(
                "`{name}` is {} `{type_name}`, which cannot go into the {} column `{}` {}: convert it in `query` (`CAST(...) AS {name}`) or change the target column's type",
                ends.source.name(),
                ends.target.name(),
                target.name,
                target.declared
            ));
            continue;
        };
        let temporal = matches!(kind, Source::Date | Source::DateTime);
        columns.push(Column {
            name: name.clone(),
            target: target.name.clone(),
            conv,
            zero_dates: temporal && ends.source == Engine::Mysql && ends.target == Engine::Postgres,
            bare: ends.target == Engine::Mysql
                && matches!(target.kind, Target::Int | Target::Numeric | Target::Float),
        });
    }
    let key = source.iter().position(|(n, _)| *n == ends.key).or_else(|| {
        source
            .iter()
            .position(|(n, _)| n.eq_ignore_ascii_case(ends.key))
    });
    let key_type = key.map(|k| types::source(ends.source, &source[k].1));
    match (key, key_type) {
        (None, _) => problems.push(format!(
            "the key `{}` is not a column of the source's rows: select it (`key` names the column by which rows are read in order)",
            ends.key
        )),
        (Some(k), Some(t)) if t != Source::Int => problems.push(format!(
            "the key `{}` is `{}`; a key is an integer column (unique, not null: the primary key)",
            source[k].0, source[k].1
        )),
        _ => {}
    }
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    let key = key.unwrap_or_default();
    // The key was matched to a target column above (or reported).
    let key_index = columns.iter().position(|c| c.name == source[key].0);
    match key_index {
        Some(index) => Ok(Layout {
            target_key: columns[index].target.clone(),
            columns,
            key: index,
        }),
        None => Err(format!(
            "the key `{}` has no column in the target",
            ends.key
        )),
    }
}

/// The target column of a source column's name: the same name, else the same ignoring case.
fn find<'a>(columns: &'a [TargetColumn], name: &str) -> Option<&'a TargetColumn> {
    columns
        .iter()
        .find(|c| c.name == name)
        .or_else(|| columns.iter().find(|c| c.name.eq_ignore_ascii_case(name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(name: &str, declared: &str, kind: Target) -> TargetColumn {
        TargetColumn {
            name: name.into(),
            declared: declared.into(),
            kind,
        }
    }

    fn columns() -> Vec<TargetColumn> {
        vec![
            target("id", "bigint", Target::Int),
            target("paid", "boolean", Target::Bool),
            target(
                "created_at",
                "timestamp without time zone",
                Target::DateTime,
            ),
            target("note", "text", Target::Text),
        ]
    }

    fn ends(columns: &[TargetColumn]) -> Ends<'_> {
        Ends {
            source: Engine::Mysql,
            target: Engine::Postgres,
            table: "orders",
            columns,
            key: "id",
        }
    }

    fn source(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect()
    }

    #[test]
    fn columns_match_by_name_and_carry_their_conversion() {
        let columns = columns();
        let found = layout(
            &source(&[
                ("ID", "BIGINT"),
                ("paid", "BOOLEAN"),
                ("created_at", "DATETIME"),
            ]),
            ends(&columns),
        )
        .expect("fits");
        assert_eq!(found.key, 0);
        assert_eq!(found.target_key, "id");
        assert_eq!(found.columns[1].conv, Conv::Bool);
        assert!(found.columns[2].zero_dates);
        assert!(!found.columns[0].zero_dates);
    }

    #[test]
    fn every_column_that_cannot_be_copied_is_named_at_once() {
        let columns = columns();
        let err = layout(
            &source(&[
                ("id", "BIGINT"),
                ("shape", "GEOMETRY"),
                ("paid", "DATETIME"),
                ("extra", "INT"),
            ]),
            ends(&columns),
        )
        .expect_err("does not fit");
        assert!(err.contains("`shape` is MySQL/MariaDB `GEOMETRY`, which `copy` does not convert: select it as text"), "{err}");
        assert!(err.contains("`paid` is MySQL/MariaDB `DATETIME`, which cannot go into the PostgreSQL column `paid` boolean"), "{err}");
        assert!(
            err.contains("`extra` (INT) has no column in `orders`"),
            "{err}"
        );
        let err = layout(&source(&[("note", "TEXT")]), ends(&columns)).expect_err("no key");
        assert!(err.contains("the key `id` is not a column"), "{err}");
        let err = layout(&source(&[("id", "VARCHAR")]), ends(&columns)).expect_err("text key");
        assert!(err.contains("a key is an integer column"), "{err}");
    }
}
