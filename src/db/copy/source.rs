//! Reading the source: one short statement per batch, keyset-paginated by the key
//!
//! ```sql
//! SELECT * FROM <table, or (query) AS sensei_src> WHERE key > <last> AND key < <to> ORDER BY key LIMIT <batch>
//! ```
//!
//! so each batch is a range of keys, the next batch starts where the last one ended (no
//! `OFFSET`, which reads every skipped row again), and no statement holds a snapshot of the
//! source for longer than a batch. A `query` is read as a derived table: a plain `SELECT`
//! (with joins and `WHERE`) is merged into the outer one by both servers' planners, so the
//! key's index serves the range. Rows stream in and are encoded as they come ([`Filling`]).

use super::batch::{Batch, Filling, Shape, conditions};
use super::names::{Name, quote};
use super::session;
use super::{CopyError, FromSpec, KeyRange};
use crate::db::connect::Conn;
use futures_util::TryStreamExt;
use sqlx::Row;
use sqlx::mysql::MySqlRow;
use sqlx::postgres::PgRow;

/// The source connection and how it is read.
#[derive(Debug)]
pub struct Reader {
    conn: Conn,
    /// The relation read: a quoted table, or `(query) AS sensei_src`.
    relation: String,
    /// The key, quoted.
    key: String,
    range: KeyRange,
    batch: u32,
}

impl Reader {
    /// A reader of `from` on `conn`; the error says what is wrong with the table or key name.
    pub fn new(conn: Conn, from: &FromSpec, range: KeyRange, batch: u32) -> Result<Reader, String> {
        let engine = conn.engine();
        let relation = match (&from.table, &from.query) {
            (Some(table), _) => Name::parse(table, engine)
                .map_err(|e| format!("`from.table` `{table}`: {e}"))?
                .quoted(engine),
            (None, Some(query)) => {
                let query = query.trim().trim_end_matches(';').trim_end();
                format!("({query}) AS sensei_src")
            }
            (None, None) => return Err("`from` has neither `table` nor `query`".into()),
        };
        let key = from.key.trim();
        if key.is_empty() {
            return Err("`from.key` is empty".into());
        }
        Ok(Reader {
            conn,
            relation,
            key: quote(key, engine),
            range,
            batch,
        })
    }

    pub fn into_conn(self) -> Conn {
        self.conn
    }

    fn filtered(&self, after: Option<i64>) -> String {
        let conditions = conditions(&self.key, self.range, after);
        if conditions.is_empty() {
            format!("FROM {}", self.relation)
        } else {
            format!("FROM {} WHERE {conditions}", self.relation)
        }
    }

    /// The statement that reads the batch after `after`.
    pub fn batch_sql(&self, after: Option<i64>) -> String {
        format!(
            "SELECT * {} ORDER BY {} LIMIT {}",
            self.filtered(after),
            self.key,
            self.batch
        )
    }

    /// Rows in the range, and how many of them are at or before `checkpoint` (copied
    /// already): one scan of the range, for `progress=`.
    pub async fn count(&mut self, checkpoint: Option<i64>) -> Result<(u64, u64), CopyError> {
        let done = match checkpoint {
            Some(c) => format!("COUNT(CASE WHEN {} <= {c} THEN 1 END)", self.key),
            None => "0".into(),
        };
        let sql = format!("SELECT COUNT(*), {done} {}", self.filtered(None));
        let rows = session::texts(&mut self.conn, &sql)
            .await
            .map_err(CopyError::Source)?;
        let number = |i: usize| {
            rows.first()
                .and_then(|r| r.get(i).cloned().flatten())
                .and_then(|t| t.parse::<u64>().ok())
                .unwrap_or(0)
        };
        Ok((number(0), number(1)))
    }

    /// Reads and encodes the batch after `after` (at most `batch` rows).
    pub async fn read(
        &mut self,
        after: Option<i64>,
        shape: &mut Shape,
    ) -> Result<Batch, CopyError> {
        let sql = self.batch_sql(after);
        let mut filling = Filling::new(after, self.batch);
        match &mut self.conn {
            Conn::Pg(c) => {
                let mut rows = sqlx::raw_sql(&sql).fetch(&mut **c);
                while let Some(row) = rows.try_next().await.map_err(CopyError::Source)? {
                    filling.row(shape, &row, pg_value)?;
                }
            }
            Conn::My(c) => {
                let mut rows = sqlx::raw_sql(&sql).fetch(&mut **c);
                while let Some(row) = rows.try_next().await.map_err(CopyError::Source)? {
                    filling.row(shape, &row, my_value)?;
                }
            }
        }
        Ok(filling.finish())
    }
}

/// PostgreSQL sends text-protocol values as UTF-8 text.
fn pg_value(row: &PgRow, i: usize) -> Result<Option<&[u8]>, sqlx::Error> {
    row.try_get_unchecked::<Option<&str>, _>(i)
        .map(|v| v.map(str::as_bytes))
}

/// MySQL's are bytes (binary strings and `BIT` are not text).
fn my_value(row: &MySqlRow, i: usize) -> Result<Option<&[u8]>, sqlx::Error> {
    row.try_get_unchecked::<Option<&[u8]>, _>(i)
}
