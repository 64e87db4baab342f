//! One connection to PostgreSQL or MySQL/MariaDB through sqlx, and the few things Sensei
//! asks of it: run SQL with the text protocol (so several statements may go at once and
//! every value arrives as text), read one value, and name its server-side session (the
//! backend id that a cancel targets).
//!
//! TLS is what the DSN says, read by sqlx: `sslmode` for PostgreSQL (`disable`, `prefer`
//! (the default), `require`, `verify-ca`, `verify-full`, with `sslrootcert`), `ssl-mode` for
//! MySQL (`DISABLED`, `PREFERRED` (the default), `REQUIRED`, `VERIFY_CA`,
//! `VERIFY_IDENTITY`, with `ssl-ca`), over rustls. PostgreSQL's environment variables
//! (`PGPASSWORD`, `PGSSLMODE`, ...) and `~/.pgpass` fill in what the URL leaves out, as for
//! `psql`.

use super::dsn::{Dsn, Engine};
use super::exec::{Results, Stop};
use futures_util::TryStreamExt;
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlRow};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgRow};
use sqlx::{Column, Connection, Either, Row, TypeInfo};
use std::str::FromStr;
use std::time::Duration;

/// How long connecting may take before the step fails (as a transient failure).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// An open connection.
#[derive(Debug)]
pub enum Conn {
    Pg(Box<PgConnection>),
    My(Box<MySqlConnection>),
}

/// Why connecting failed, said without the DSN's password (the caller masks the driver's
/// text too).
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("no connection within {}s", .0.as_secs())]
    TimedOut(Duration),
    #[error("{0}")]
    Driver(#[from] sqlx::Error),
}

/// Connects with `timeout`.
pub async fn connect(dsn: &Dsn, timeout: Duration) -> Result<Conn, ConnectError> {
    let connecting = async {
        Ok::<_, sqlx::Error>(match dsn.engine {
            Engine::Postgres => {
                let options = PgConnectOptions::from_str(dsn.as_str())?;
                let options = if options.get_application_name().is_none() {
                    options.application_name("sensei")
                } else {
                    options
                };
                Conn::Pg(Box::new(PgConnection::connect_with(&options).await?))
            }
            Engine::Mysql => {
                let options = MySqlConnectOptions::from_str(dsn.as_str())?;
                Conn::My(Box::new(MySqlConnection::connect_with(&options).await?))
            }
        })
    };
    match tokio::time::timeout(timeout, connecting).await {
        Ok(conn) => Ok(conn?),
        Err(_) => Err(ConnectError::TimedOut(timeout)),
    }
}

impl Conn {
    pub fn engine(&self) -> Engine {
        match self {
            Conn::Pg(_) => Engine::Postgres,
            Conn::My(_) => Engine::Mysql,
        }
    }

    /// Runs SQL without keeping its rows (`BEGIN`, `COMMIT`, `SET ...`).
    pub async fn simple(&mut self, sql: &str) -> Result<(), sqlx::Error> {
        match self {
            Conn::Pg(c) => sqlx::raw_sql(sql).execute(&mut **c).await.map(drop),
            Conn::My(c) => sqlx::raw_sql(sql).execute(&mut **c).await.map(drop),
        }
    }

    /// The first column of the first row of `sql`, as text (`None` for no row or `NULL`).
    pub async fn scalar(&mut self, sql: &str) -> Result<Option<String>, sqlx::Error> {
        let mut results = Results::new(1, usize::MAX);
        self.run(sql, &mut results, &mut |_| {})
            .await
            .map_err(|stop| match stop {
                Stop::Sql(e) => e,
                Stop::TooManyRows(_) => sqlx::Error::RowNotFound,
            })?;
        Ok(results.first_text())
    }

    /// The id of this connection's session on the server: what a cancel names.
    pub async fn backend_id(&mut self) -> Result<u64, sqlx::Error> {
        let sql = match self.engine() {
            Engine::Postgres => "SELECT pg_backend_pid()",
            Engine::Mysql => "SELECT CONNECTION_ID()",
        };
        let text = self.scalar(sql).await?.unwrap_or_default();
        text.parse().map_err(|_| {
            sqlx::Error::Protocol(format!("the server gave `{text}` as its session id"))
        })
    }

    /// Whether the connection is encrypted, where the server says (PostgreSQL).
    pub async fn tls(&mut self) -> Option<bool> {
        match self.engine() {
            Engine::Postgres => self
                .scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                .await
                .ok()
                .flatten()
                .map(|s| s == "t"),
            Engine::Mysql => None,
        }
    }

    /// Runs `sql` (one statement or several) and feeds `results`; `done` hears of each
    /// statement's end with its rows affected and rows returned.
    pub async fn run(
        &mut self,
        sql: &str,
        results: &mut Results,
        done: &mut (dyn FnMut(Ended) + Send),
    ) -> Result<(), Stop> {
        match self {
            Conn::Pg(c) => {
                let mut stream = sqlx::raw_sql(sql).fetch_many(&mut **c);
                while let Some(item) = stream.try_next().await.map_err(Stop::Sql)? {
                    match item {
                        Either::Left(r) => done(results.end_statement(r.rows_affected())),
                        Either::Right(row) => results.row(&columns(&row), |i| pg_text(&row, i))?,
                    }
                }
            }
            Conn::My(c) => {
                let mut stream = sqlx::raw_sql(sql).fetch_many(&mut **c);
                while let Some(item) = stream.try_next().await.map_err(Stop::Sql)? {
                    match item {
                        Either::Left(r) => done(results.end_statement(r.rows_affected())),
                        Either::Right(row) => results.row(&columns(&row), |i| my_bytes(&row, i))?,
                    }
                }
            }
        }
        Ok(())
    }

    pub async fn close(self) {
        let _ = match self {
            Conn::Pg(c) => c.close().await,
            Conn::My(c) => c.close().await,
        };
    }
}

/// A statement that ended: its rows affected and the rows it returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ended {
    pub affected: u64,
    pub returned: usize,
}

/// Names and type names of a row's columns.
fn columns<R: Row>(row: &R) -> Vec<(String, String)> {
    row.columns()
        .iter()
        .map(|c| (c.name().to_owned(), c.type_info().name().to_owned()))
        .collect()
}

/// PostgreSQL sends text-protocol values as UTF-8 text (the connection's client encoding).
fn pg_text(row: &PgRow, i: usize) -> Result<Option<Vec<u8>>, sqlx::Error> {
    row.try_get_unchecked::<Option<&str>, _>(i)
        .map(|v| v.map(|s| s.as_bytes().to_vec()))
}

/// MySQL's may be binary (`BLOB`, `BIT`).
fn my_bytes(row: &MySqlRow, i: usize) -> Result<Option<Vec<u8>>, sqlx::Error> {
    row.try_get_unchecked::<Option<&[u8]>, _>(i)
        .map(|v| v.map(<[u8]>::to_vec))
}
