//! The sessions of a copy: settings that make both servers write and read values the same
//! way, and the two small things the copy asks of a connection besides rows (a statement's
//! rows affected, a few rows of text).
//!
//! Both sessions run in UTC: MySQL's `TIMESTAMP` is then read as its UTC wall clock and
//! PostgreSQL's `timestamptz` with `+00`, and a value without a zone written into a column
//! with one is read as UTC. PostgreSQL sessions also fix the output and input styles a
//! server's configuration could change (ISO dates, hex `bytea`, exact floats).

use crate::db::connect::Conn;
use crate::db::dsn::Engine;
use futures_util::TryStreamExt;
use sqlx::{Either, Row};

/// Settings for the source's session.
pub fn source_settings(engine: Engine) -> &'static str {
    match engine {
        Engine::Mysql => "SET time_zone = '+00:00'",
        Engine::Postgres => {
            "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; SET bytea_output = 'hex'; SET extra_float_digits = 3"
        }
    }
}

/// Settings for the target's session.
pub fn target_settings(engine: Engine) -> &'static str {
    match engine {
        Engine::Mysql => "SET time_zone = '+00:00'",
        Engine::Postgres => "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'",
    }
}

/// Runs `sql`; the rows it affected.
pub async fn execute(conn: &mut Conn, sql: &str) -> Result<u64, sqlx::Error> {
    Ok(match conn {
        Conn::Pg(c) => sqlx::raw_sql(sql).execute(&mut **c).await?.rows_affected(),
        Conn::My(c) => sqlx::raw_sql(sql).execute(&mut **c).await?.rows_affected(),
    })
}

/// The rows of `sql`, every value as text (`None` for `NULL`); for small results (a count,
/// a table's columns).
pub async fn texts(conn: &mut Conn, sql: &str) -> Result<Vec<Vec<Option<String>>>, sqlx::Error> {
    let mut out = Vec::new();
    match conn {
        Conn::Pg(c) => {
            let mut stream = sqlx::raw_sql(sql).fetch_many(&mut **c);
            while let Some(item) = stream.try_next().await? {
                if let Either::Right(row) = item {
                    let values = (0..row.len())
                        .map(|i| row.try_get_unchecked::<Option<String>, _>(i))
                        .collect::<Result<_, _>>()?;
                    out.push(values);
                }
            }
        }
        Conn::My(c) => {
            let mut stream = sqlx::raw_sql(sql).fetch_many(&mut **c);
            while let Some(item) = stream.try_next().await? {
                if let Either::Right(row) = item {
                    let values = (0..row.len())
                        .map(|i| {
                            row.try_get_unchecked::<Option<&[u8]>, _>(i)
                                .map(|v| v.map(|b| String::from_utf8_lossy(b).into_owned()))
                        })
                        .collect::<Result<_, _>>()?;
                    out.push(values);
                }
            }
        }
    }
    Ok(out)
}
