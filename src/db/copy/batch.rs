//! Rows becoming a batch: each source row's key checked (an integer, rising), each value
//! converted for its target column and encoded for the target, as the rows stream in. The
//! column layout is decided on the first row of the copy ([`Shape`]); a value that cannot be
//! copied stops the copy with its column and its row's key.

use super::encode::{Encoded, Encoder};
use super::layout::{self, Ends, Layout, TargetColumn};
use super::names::{Name, quote};
use super::types::{Cell, is_zero_date};
use super::{CopyError, KeyRange};
use crate::db::dsn::Engine;
use sqlx::{Column, Row, TypeInfo};

/// How a row's i-th value is read as sent (`None`: `NULL`), per driver.
pub type ValueOf<R> = fn(&R, usize) -> Result<Option<&[u8]>, sqlx::Error>;

/// A batch read and encoded, not yet written.
#[derive(Debug)]
pub struct Batch {
    pub rows: u64,
    /// Each row's key, in order (a target error names a row by its line).
    pub keys: Vec<i64>,
    pub data: Encoded,
}

impl Batch {
    pub fn last(&self) -> Option<i64> {
        self.keys.last().copied()
    }
}

/// What the copy knows of both ends, and the layout once the first row has come.
#[derive(Debug)]
pub struct Shape {
    pub source: Engine,
    pub target: Engine,
    pub table: Name,
    /// The target table as written, for messages.
    pub table_shown: String,
    pub target_columns: Vec<TargetColumn>,
    pub key: String,
    pub zero_dates_null: bool,
    pub no_backslash_escapes: bool,
    pub layout: Option<Layout>,
}

impl Shape {
    /// The target's column list in the source's order, quoted: `("id", "note")`.
    pub fn column_list(&self) -> String {
        let names: Vec<String> = self
            .layout
            .iter()
            .flat_map(|l| l.columns.iter())
            .map(|c| quote(&c.target, self.target))
            .collect();
        format!("({})", names.join(", "))
    }

    fn encoder(&self) -> Encoder {
        match self.target {
            Engine::Postgres => Encoder::copy(),
            Engine::Mysql => Encoder::insert(
                format!(
                    "INSERT INTO {} {} VALUES ",
                    self.table.quoted(Engine::Mysql),
                    self.column_list()
                ),
                self.no_backslash_escapes,
            ),
        }
    }
}

/// A batch being filled.
#[derive(Debug)]
pub struct Filling {
    encoder: Option<Encoder>,
    keys: Vec<i64>,
    /// The key before this batch's first (the checkpoint or the previous batch's last).
    after: Option<i64>,
}

impl Filling {
    pub fn new(after: Option<i64>, capacity: u32) -> Filling {
        Filling {
            encoder: None,
            keys: Vec::with_capacity(capacity.min(100_000) as usize),
            after,
        }
    }

    /// Takes one row; `value(row, i)` is its i-th value as sent (`None`: `NULL`).
    pub fn row<R: Row>(
        &mut self,
        shape: &mut Shape,
        row: &R,
        value: ValueOf<R>,
    ) -> Result<(), CopyError> {
        if shape.layout.is_none() {
            let columns: Vec<(String, String)> = row
                .columns()
                .iter()
                .map(|c| (c.name().to_owned(), c.type_info().name().to_owned()))
                .collect();
            let ends = Ends {
                source: shape.source,
                target: shape.target,
                table: &shape.table_shown,
                columns: &shape.target_columns,
                key: &shape.key,
            };
            let found = layout::layout(&columns, ends).map_err(|problems| {
                CopyError::Data(format!(
                    "the source's rows do not fit `{}`: {problems}",
                    shape.table_shown
                ))
            })?;
            shape.layout = Some(found);
        }
        let encoder = match &mut self.encoder {
            Some(e) => e,
            None => self.encoder.insert(shape.encoder()),
        };
        let Some(layout) = &shape.layout else {
            return Ok(());
        };
        let key_column = &layout.columns[layout.key].name;
        let raw_key = value(row, layout.key).map_err(CopyError::Source)?;
        let key = raw_key
            .and_then(|k| std::str::from_utf8(k).ok())
            .and_then(|k| k.parse::<i64>().ok())
            .ok_or_else(|| {
                CopyError::Data(format!(
                    "a row's key `{key_column}` is {}, not an integer: the key is a unique, non-null integer column",
                    raw_key.map_or("NULL".into(), |k| format!("`{}`", String::from_utf8_lossy(k)))
                ))
            })?;
        let previous = self.keys.last().copied().or(self.after);
        if let Some(previous) = previous
            && key <= previous
        {
            return Err(CopyError::Data(format!(
                "the key `{key_column}` is not unique: {key} came after {previous} in key order; `key` must be a unique column (the primary key)"
            )));
        }
        encoder.begin_row();
        for (i, column) in layout.columns.iter().enumerate() {
            let raw = value(row, i).map_err(CopyError::Source)?;
            let at = |problem: String| {
                CopyError::Data(format!(
                    "row with {key_column} {key}, column `{}`: {problem}",
                    column.name
                ))
            };
            let cell = match raw {
                Some(text) if column.zero_dates && is_zero_date(text) => {
                    if !shape.zero_dates_null {
                        return Err(at(format!(
                            "`{}` is a zero date, which PostgreSQL has no value for; write `zero_dates: as_null` in the step to copy zero dates as NULL, or fix them in the source",
                            String::from_utf8_lossy(text)
                        )));
                    }
                    Cell::Null
                }
                _ => column.conv.apply(raw).map_err(at)?,
            };
            encoder.cell(&cell, column.bare).map_err(at)?;
        }
        encoder.end_row();
        self.keys.push(key);
        Ok(())
    }

    pub fn finish(self) -> Batch {
        Batch {
            rows: self.keys.len() as u64,
            keys: self.keys,
            data: self
                .encoder
                .map_or(Encoded::Copy(Vec::new()), Encoder::finish),
        }
    }
}

/// `WHERE` conditions of the keys after `after` (or from the range's start) in `range`,
/// for a quoted `key`: `` `id` > 42 AND `id` < 1000 ``; empty for every key.
pub fn conditions(key: &str, range: KeyRange, after: Option<i64>) -> String {
    let mut parts = Vec::new();
    match (after, range.from) {
        (Some(after), Some(from)) if after < from => parts.push(format!("{key} >= {from}")),
        (Some(after), _) => parts.push(format!("{key} > {after}")),
        (None, Some(from)) => parts.push(format!("{key} >= {from}")),
        (None, None) => {}
    }
    if let Some(to) = range.to {
        parts.push(format!("{key} < {to}"));
    }
    parts.join(" AND ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_start_after_the_checkpoint_inside_the_range() {
        let range = KeyRange {
            from: Some(100),
            to: Some(200),
        };
        assert_eq!(
            conditions("`id`", range, None),
            "`id` >= 100 AND `id` < 200"
        );
        assert_eq!(
            conditions("`id`", range, Some(150)),
            "`id` > 150 AND `id` < 200"
        );
        // A checkpoint before the range (another range's) does not widen it.
        assert_eq!(
            conditions("`id`", range, Some(5)),
            "`id` >= 100 AND `id` < 200"
        );
        assert_eq!(conditions("\"id\"", KeyRange::default(), None), "");
        assert_eq!(
            conditions("\"id\"", KeyRange::default(), Some(7)),
            "\"id\" > 7"
        );
    }
}
