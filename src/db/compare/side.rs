//! One side of a comparison: its connection (sessions in UTC, floats and binary written the
//! same way each time), its columns as the server describes them, and its rows streamed in
//! key order with every value made canonical as it arrives (nothing is held but the row
//! being merged).

use super::hash::Values;
use super::query;
use crate::db::connect::{self, CONNECT_TIMEOUT, Conn, ConnectError};
use crate::db::dsn::{Dsn, Engine};
use crate::db::normal::{self, Class, ColumnType, Decode};
use futures_util::TryStreamExt;
use futures_util::stream::BoxStream;
use sqlx::mysql::{MySqlQueryResult, MySqlRow};
use sqlx::postgres::{PgQueryResult, PgRow};
use sqlx::{Column, Either, Executor, Row, Statement, TypeInfo};

/// Settings that make a session's text the same each time: UTC for `timestamptz` and
/// MySQL's `TIMESTAMP`, floats in their shortest exact form, `bytea` in hex, ISO dates.
const PG_SESSION: &str = "SET TimeZone = 'UTC'; SET extra_float_digits = 1; SET bytea_output = 'hex'; SET DateStyle = 'ISO, YMD'";
const MY_SESSION: &str = "SET time_zone = '+00:00'";

/// An open side.
#[derive(Debug)]
pub struct Side {
    /// `source` or `target`.
    pub name: &'static str,
    pub dsn: Dsn,
    /// What follows `FROM` in its queries ([`query::from`]).
    pub from: String,
    pub conn: Conn,
    /// The session id a cancel names.
    pub backend: u64,
}

/// How one column of a side is read: its decoding and the class it is compared as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Read {
    pub decode: Decode,
    pub class: Class,
}

impl Side {
    pub async fn open(name: &'static str, dsn: Dsn, from: String) -> Result<Side, ConnectError> {
        let mut conn = connect::connect(&dsn, CONNECT_TIMEOUT).await?;
        let backend = conn.backend_id().await?;
        match conn.engine() {
            Engine::Postgres => {
                conn.simple(PG_SESSION).await?;
                // PostgreSQL 14 and later end a statement whose client is gone: best effort.
                let _ = conn
                    .simple("SET client_connection_check_interval = 2000")
                    .await;
            }
            Engine::Mysql => conn.simple(MY_SESSION).await?,
        }
        Ok(Side {
            name,
            dsn,
            from,
            conn,
            backend,
        })
    }

    pub fn engine(&self) -> Engine {
        self.conn.engine()
    }

    /// The columns it reads, by name, with their types (the server's description of
    /// `SELECT *`; nothing runs).
    pub async fn describe(&mut self) -> Result<Vec<(String, String)>, sqlx::Error> {
        let sql = query::describe(&self.from);
        fn named<'a>(columns: impl Iterator<Item = (&'a str, &'a str)>) -> Vec<(String, String)> {
            columns.map(|(n, t)| (n.to_owned(), t.to_owned())).collect()
        }
        Ok(match &mut self.conn {
            Conn::Pg(c) => {
                let statement = (&mut **c).prepare(sql.as_str()).await?;
                named(
                    statement
                        .columns()
                        .iter()
                        .map(|c| (c.name(), c.type_info().name())),
                )
            }
            Conn::My(c) => {
                let statement = (&mut **c).prepare(sql.as_str()).await?;
                named(
                    statement
                        .columns()
                        .iter()
                        .map(|c| (c.name(), c.type_info().name())),
                )
            }
        })
    }

    /// The values of the first row of `sql`, as text.
    pub async fn first_row(&mut self, sql: &str) -> Result<Vec<Option<String>>, sqlx::Error> {
        let mut rows = self.rows(sql);
        let values = match &mut rows {
            Rows::Pg(s) => loop {
                match s.try_next().await? {
                    Some(Either::Right(row)) => break Some(texts(&row, pg_value)?),
                    Some(Either::Left(_)) => {}
                    None => break None,
                }
            },
            Rows::My(s) => loop {
                match s.try_next().await? {
                    Some(Either::Right(row)) => break Some(texts(&row, my_value)?),
                    Some(Either::Left(_)) => {}
                    None => break None,
                }
            },
        };
        // The rest of the result is read (and dropped) before the connection is used again.
        drop(rows);
        Ok(values.unwrap_or_default())
    }

    /// The rows of `sql`, as they come.
    pub fn rows<'a>(&'a mut self, sql: &'a str) -> Rows<'a> {
        match &mut self.conn {
            Conn::Pg(c) => Rows::Pg(sqlx::raw_sql(sql).fetch_many(&mut **c)),
            Conn::My(c) => Rows::My(sqlx::raw_sql(sql).fetch_many(&mut **c)),
        }
    }
}

/// How a column of type `type_name` on `engine` is read when its class is `class`.
pub fn read(engine: Engine, type_name: &str, class: Class) -> Read {
    Read {
        decode: normal::column_type(engine, type_name).decode,
        class,
    }
}

fn texts<R>(row: &R, value: ValueOf<R>) -> Result<Vec<Option<String>>, sqlx::Error>
where
    R: Row,
{
    (0..row.len())
        .map(|i| Ok(value(row, i)?.map(|b| String::from_utf8_lossy(b).into_owned())))
        .collect()
}

/// Reads the i-th value of a row as the server sent it.
type ValueOf<R> = for<'r> fn(&'r R, usize) -> Result<Option<&'r [u8]>, sqlx::Error>;

/// PostgreSQL sends text-protocol values as UTF-8 text.
fn pg_value(row: &PgRow, i: usize) -> Result<Option<&[u8]>, sqlx::Error> {
    row.try_get_unchecked::<Option<&str>, _>(i)
        .map(|v| v.map(str::as_bytes))
}

/// MySQL's may be binary (`BLOB`, `BIT`).
fn my_value(row: &MySqlRow, i: usize) -> Result<Option<&[u8]>, sqlx::Error> {
    row.try_get_unchecked::<Option<&[u8]>, _>(i)
}

/// A result being read.
pub enum Rows<'c> {
    Pg(BoxStream<'c, Result<Either<PgQueryResult, PgRow>, sqlx::Error>>),
    My(BoxStream<'c, Result<Either<MySqlQueryResult, MySqlRow>, sqlx::Error>>),
}

impl std::fmt::Debug for Rows<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Rows::Pg(_) => "Rows::Pg",
            Rows::My(_) => "Rows::My",
        })
    }
}

impl Rows<'_> {
    /// The next row, each column made canonical by `reads` (in the order of the query's
    /// columns); `None` at the end.
    pub async fn next(&mut self, reads: &[Read]) -> Result<Option<Values>, sqlx::Error> {
        fn canonical<R: Row>(
            row: &R,
            reads: &[Read],
            value: ValueOf<R>,
        ) -> Result<Values, sqlx::Error> {
            reads
                .iter()
                .enumerate()
                .map(|(i, r)| Ok(normal::canonical(r.decode, r.class, value(row, i)?)))
                .collect()
        }
        loop {
            match self {
                Rows::Pg(s) => match s.try_next().await? {
                    Some(Either::Right(row)) => return canonical(&row, reads, pg_value).map(Some),
                    Some(Either::Left(_)) => {}
                    None => return Ok(None),
                },
                Rows::My(s) => match s.try_next().await? {
                    Some(Either::Right(row)) => return canonical(&row, reads, my_value).map(Some),
                    Some(Either::Left(_)) => {}
                    None => return Ok(None),
                },
            }
        }
    }
}

/// The column types of a side, for its key columns: how its server orders them.
pub fn key_types(engine: Engine, types: &[&str]) -> Vec<ColumnType> {
    types
        .iter()
        .map(|t| normal::column_type(engine, t))
        .collect()
}
