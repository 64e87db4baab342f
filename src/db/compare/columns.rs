//! Which columns are compared, matched by name between the two sides, and how each is read:
//! the classes both sides resolve to ([`crate::db::normal::resolve`]), and whether the first
//! key column is an integer on both sides (then key ranges split its values evenly).
//!
//! Names match exactly, or else ignoring letter case when that finds exactly one column
//! (PostgreSQL folds unquoted names to lower case, MySQL keeps them as created). Without
//! `columns`, both sides must have the same columns: a column on one side only is an error
//! that names it, never a silent skip.

use super::side::Read;
use crate::db::dsn::Engine;
use crate::db::normal::{self, Class, ColumnType};

/// The compared columns, key columns first.
#[derive(Debug, Clone, PartialEq)]
pub struct Columns {
    /// As messages name them.
    pub names: Vec<String>,
    /// As each side's server names them (what the queries select).
    pub source: Vec<String>,
    pub target: Vec<String>,
    /// How each side's values are read.
    pub source_reads: Vec<Read>,
    pub target_reads: Vec<Read>,
    /// Each side's key column types (how its server orders them).
    pub source_keys: Vec<ColumnType>,
    pub target_keys: Vec<ColumnType>,
    /// The class two keys of each key column are ordered by.
    pub key_order: Vec<Class>,
    /// Key ranges split the first key column's values (an integer on both sides).
    pub integer_ranges: bool,
    /// One line per column for the log: its types and what it is compared as.
    pub lines: Vec<String>,
}

impl Columns {
    pub fn keys(&self) -> usize {
        self.key_order.len()
    }
}

/// A side's columns as its server describes them: (name, type name).
pub type Described = [(String, String)];

/// Matches `key` and `columns` (empty: all) between the sides' descriptions.
pub fn plan(
    key: &[String],
    columns: &[String],
    source: (Engine, &Described),
    target: (Engine, &Described),
) -> Result<Columns, String> {
    let mut wanted: Vec<String> = key.to_vec();
    let mut problems = Vec::new();
    if columns.is_empty() {
        for (name, _) in source.1 {
            if !wanted.iter().any(|w| w.eq_ignore_ascii_case(name)) {
                wanted.push(name.clone());
            }
        }
        let only_target: Vec<&str> = target
            .1
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| find(source.1, n).is_none())
            .collect();
        if !only_target.is_empty() {
            problems.push(format!(
                "the source has no {}",
                listed("column", &only_target)
            ));
        }
    } else {
        for c in columns {
            if !wanted.iter().any(|w| w.eq_ignore_ascii_case(c)) {
                wanted.push(c.clone());
            }
        }
    }
    let mut out = Columns {
        names: Vec::new(),
        source: Vec::new(),
        target: Vec::new(),
        source_reads: Vec::new(),
        target_reads: Vec::new(),
        source_keys: Vec::new(),
        target_keys: Vec::new(),
        key_order: Vec::new(),
        integer_ranges: false,
        lines: Vec::new(),
    };
    let mut missing = [Vec::new(), Vec::new()];
    for (i, name) in wanted.iter().enumerate() {
        let s = find(source.1, name);
        let t = find(target.1, name);
        if s.is_none() {
            missing[0].push(name.as_str());
        }
        if t.is_none() {
            missing[1].push(name.as_str());
        }
        let (Some(s), Some(t)) = (s, t) else { continue };
        let (s_name, s_type) = &source.1[s];
        let (t_name, t_type) = &target.1[t];
        let s_col = normal::column_type(source.0, s_type);
        let t_col = normal::column_type(target.0, t_type);
        let (s_class, t_class) = normal::resolve(s_col.class, t_col.class);
        out.names.push(name.clone());
        out.source.push(s_name.clone());
        out.target.push(t_name.clone());
        out.source_reads.push(Read {
            decode: s_col.decode,
            class: s_class,
        });
        out.target_reads.push(Read {
            decode: t_col.decode,
            class: t_class,
        });
        let compared = if s_class == t_class {
            s_class.name().to_owned()
        } else {
            format!("{} against {}", s_class.name(), t_class.name())
        };
        let role = if i < key.len() {
            "key column"
        } else {
            "column"
        };
        out.lines.push(format!(
            "{role} {name}: source {s_type}, target {t_type}: compared as {compared}"
        ));
        if i < key.len() {
            out.source_keys.push(s_col);
            out.target_keys.push(t_col);
            out.key_order.push(if s_class == t_class {
                s_class
            } else {
                Class::Text
            });
            if i == 0 {
                out.integer_ranges = s_col.integer && t_col.integer;
            }
        }
    }
    let mut first: Vec<String> = ["source", "target"]
        .iter()
        .zip(&missing)
        .filter(|(_, names)| !names.is_empty())
        .map(|(side, names)| format!("the {side} has no {}", listed("column", names)))
        .collect();
    first.append(&mut problems);
    let problems = first;
    if !problems.is_empty() {
        let all: Vec<&str> = source.1.iter().map(|(n, _)| n.as_str()).collect();
        return Err(format!(
            "{} (the source's columns: {})",
            problems.join("; "),
            all.join(", ")
        ));
    }
    Ok(out)
}

/// The column named `name`: exactly, or else the one column named so in another case.
fn find(described: &Described, name: &str) -> Option<usize> {
    if let Some(i) = described.iter().position(|(n, _)| n == name) {
        return Some(i);
    }
    let mut alike = described
        .iter()
        .enumerate()
        .filter(|(_, (n, _))| n.eq_ignore_ascii_case(name));
    match (alike.next(), alike.next()) {
        (Some((i, _)), None) => Some(i),
        _ => None,
    }
}

fn listed(what: &str, names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    let s = if names.len() == 1 { "" } else { "s" };
    format!("{what}{s} {}", quoted.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn described(columns: &[(&str, &str)]) -> Vec<(String, String)> {
        columns
            .iter()
            .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
            .collect()
    }

    #[test]
    fn columns_match_by_name_in_any_case_and_key_ranges_need_integers() {
        let my = described(&[("ID", "BIGINT"), ("Total", "DECIMAL"), ("paid", "BOOLEAN")]);
        let pg = described(&[("paid", "BOOL"), ("id", "INT8"), ("total", "NUMERIC")]);
        let cols = plan(
            &["id".into()],
            &[],
            (Engine::Mysql, &my),
            (Engine::Postgres, &pg),
        )
        .expect("they match");
        assert_eq!(cols.names, ["id", "Total", "paid"]);
        assert_eq!(cols.source, ["ID", "Total", "paid"]);
        assert_eq!(cols.target, ["id", "total", "paid"]);
        assert!(cols.integer_ranges);
        assert_eq!(cols.keys(), 1);
        assert_eq!(
            cols.lines[2],
            "column paid: source BOOLEAN, target BOOL: compared as number"
        );
        let text_key = plan(
            &["paid".into()],
            &["id".into()],
            (Engine::Mysql, &my),
            (Engine::Postgres, &pg),
        )
        .expect("they match");
        assert!(!text_key.integer_ranges);
        assert_eq!(text_key.names, ["paid", "id"]);
    }

    #[test]
    fn a_column_on_one_side_only_is_named() {
        let my = described(&[("id", "BIGINT"), ("note", "TEXT")]);
        let pg = described(&[("id", "INT8"), ("comment", "TEXT")]);
        let err = plan(
            &["id".into()],
            &[],
            (Engine::Mysql, &my),
            (Engine::Postgres, &pg),
        )
        .expect_err("they differ");
        assert_eq!(
            err,
            "the target has no column `note`; the source has no column `comment` (the source's columns: id, note)"
        );
        let err = plan(
            &["uid".into()],
            &["id".into()],
            (Engine::Mysql, &my),
            (Engine::Postgres, &pg),
        )
        .expect_err("no such key");
        assert!(
            err.starts_with("the source has no column `uid`; the target has no column `uid`"),
            "{err}"
        );
    }
}
