//! The SQL a `compare` step sends: names quoted by each engine's rules (so any name is a
//! name, never code), the rows of a table or of a query, and an `ORDER BY` under which both
//! servers return keys in the order [`crate::db::normal::order`] expects: numbers, dates and
//! uuids by value (their own order), text by its bytes (`COLLATE "C"` on PostgreSQL,
//! `CAST(... AS BINARY)` on MySQL, whatever the column's collation), `NULL` first.

use super::spec::From;
use crate::db::copy::names::Name;
use crate::db::dsn::Engine;
use crate::db::normal::ColumnType;

/// A name quoted: `"na""me"` on PostgreSQL, `` `na``me` `` on MySQL.
pub fn ident(engine: Engine, name: &str) -> String {
    let q = match engine {
        Engine::Postgres => '"',
        Engine::Mysql => '`',
    };
    let mut out = String::with_capacity(name.len() + 2);
    out.push(q);
    for c in name.chars() {
        if c == q {
            out.push(q);
        }
        out.push(c);
    }
    out.push(q);
    out
}

/// What follows `FROM`: a table, its name read as a `copy` step reads one (`shop.orders`,
/// `"Order Lines"`, an unquoted PostgreSQL name in lower case) and quoted, or a query as a
/// derived table. The error says what is wrong with the name.
pub fn from(engine: Engine, from: &From) -> Result<String, String> {
    match from {
        From::Table(name) => Ok(Name::parse(name, engine)?.quoted(engine)),
        From::Query(query) => {
            let query = query
                .trim()
                .trim_end_matches(|c: char| c == ';' || c.is_whitespace());
            Ok(format!("({query}) AS sensei_compare"))
        }
    }
}

/// Every column, to learn their names and types; `from` as [`from`] gives it.
pub fn describe(from: &str) -> String {
    format!("SELECT * FROM {from}")
}

/// The first key column's smallest and largest value.
pub fn bounds(engine: Engine, from: &str, key: &str) -> String {
    let k = ident(engine, key);
    format!("SELECT min({k}), max({k}) FROM {from}")
}

/// Whether any row has no first key column.
pub fn has_null(engine: Engine, from: &str, key: &str) -> String {
    format!(
        "SELECT 1 FROM {from} WHERE {} IS NULL LIMIT 1",
        ident(engine, key)
    )
}

pub fn count(from: &str) -> String {
    format!("SELECT count(*) FROM {from}")
}

/// Which rows a query reads, by the first key column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bounds {
    All,
    /// From and to, both included.
    Between(i128, i128),
    Null,
}

/// The rows of `bounds`, `columns` (key columns first, as named on this side) in key order.
pub fn rows(
    engine: Engine,
    from: &str,
    columns: &[String],
    keys: &[ColumnType],
    bounds: Bounds,
) -> String {
    let list: Vec<String> = columns.iter().map(|c| ident(engine, c)).collect();
    // Within a range of values the first key column holds no NULL (or only NULL): its plain
    // order is the index's, which a `NULLS FIRST` would make PostgreSQL sort again.
    let first_has_nulls = bounds == Bounds::All;
    let order: Vec<String> = columns
        .iter()
        .zip(keys)
        .enumerate()
        .map(|(i, (name, t))| order_term(engine, &ident(engine, name), t, i > 0 || first_has_nulls))
        .collect();
    let first = ident(engine, &columns[0]);
    let filter = match bounds {
        Bounds::All => String::new(),
        Bounds::Between(lo, hi) => format!(" WHERE {first} BETWEEN {lo} AND {hi}"),
        Bounds::Null => format!(" WHERE {first} IS NULL"),
    };
    format!(
        "SELECT {} FROM {from}{filter} ORDER BY {}",
        list.join(", "),
        order.join(", ")
    )
}

fn order_term(engine: Engine, quoted: &str, t: &ColumnType, nulls: bool) -> String {
    let nulls = if nulls { " NULLS FIRST" } else { "" };
    match (engine, t.collated) {
        (Engine::Postgres, true) => format!("{quoted} COLLATE \"C\"{nulls}"),
        (Engine::Postgres, false) => format!("{quoted}{nulls}"),
        // MySQL puts NULL first in ascending order by itself.
        (Engine::Mysql, true) => format!("CAST({quoted} AS BINARY)"),
        (Engine::Mysql, false) => quoted.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::normal::column_type;

    #[test]
    fn names_are_quoted_so_they_stay_names() {
        assert_eq!(ident(Engine::Postgres, r#"a"b"#), r#""a""b""#);
        assert_eq!(ident(Engine::Mysql, "a`b"), "`a``b`");
        assert_eq!(
            from(Engine::Postgres, &From::Table("shop.Orders".into())),
            Ok(r#""shop"."orders""#.into())
        );
        assert_eq!(
            from(Engine::Postgres, &From::Table(r#""Order Lines""#.into())),
            Ok(r#""Order Lines""#.into())
        );
        assert!(from(Engine::Mysql, &From::Table("t; DROP TABLE x".into())).is_err());
        assert_eq!(
            from(Engine::Mysql, &From::Query("SELECT 1 AS id;\n".into())),
            Ok("(SELECT 1 AS id) AS sensei_compare".into())
        );
    }

    #[test]
    fn rows_come_in_key_order_text_by_its_bytes() {
        let int = column_type(Engine::Postgres, "INT8");
        let text = column_type(Engine::Postgres, "TEXT");
        let columns = ["id".to_owned(), "code".to_owned(), "total".to_owned()];
        assert_eq!(
            rows(
                Engine::Postgres,
                r#""t""#,
                &columns,
                &[int, text],
                Bounds::Between(1, 100)
            ),
            r#"SELECT "id", "code", "total" FROM "t" WHERE "id" BETWEEN 1 AND 100 ORDER BY "id", "code" COLLATE "C" NULLS FIRST"#
        );
        let text = column_type(Engine::Mysql, "VARCHAR");
        assert_eq!(
            rows(Engine::Mysql, "`t`", &columns[1..], &[text], Bounds::All),
            "SELECT `code`, `total` FROM `t` ORDER BY CAST(`code` AS BINARY)"
        );
    }
}
