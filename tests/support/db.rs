//! Test databases on the machine's real servers: `SENSEI_TEST_PG` names a PostgreSQL server
//! (`postgres://postgres@127.0.0.1:5432/test`), `SENSEI_TEST_MYSQL` a MySQL or MariaDB one
//! (`mysql://root@127.0.0.1:3306/test`). Each test creates a database of its own
//! (`sensei_t_<random>`) and drops it when it ends. Without the variable, a test says why it
//! skips and passes (a laptop without servers); `.ci/run` sets both.
#![allow(dead_code)]

use sqlx::{Connection, Either, Row};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Postgres,
    Mysql,
}

impl Kind {
    pub fn var(self) -> &'static str {
        match self {
            Kind::Postgres => "SENSEI_TEST_PG",
            Kind::Mysql => "SENSEI_TEST_MYSQL",
        }
    }
}

/// A database of one test's own, dropped at the end.
pub struct TestDb {
    pub kind: Kind,
    /// The server's URL as the environment gives it (its own database).
    admin: url::Url,
    pub name: String,
}

impl TestDb {
    /// The test's database on the server `kind`, or `None` (the reason printed) when the
    /// environment names no server.
    pub fn new(kind: Kind) -> Option<TestDb> {
        TestDb::with_prefix(kind, "sensei_t")
    }

    /// [`TestDb::new`] with the database named `<prefix>_<random>` (benches name theirs
    /// apart from the tests', so a left-over one says where it came from).
    pub fn with_prefix(kind: Kind, prefix: &str) -> Option<TestDb> {
        let Ok(text) = std::env::var(kind.var()) else {
            eprintln!(
                "skipped: {} is not set (CI sets it; e.g. {})",
                kind.var(),
                match kind {
                    Kind::Postgres => "postgres://postgres@127.0.0.1:5432/test",
                    Kind::Mysql => "mysql://root@127.0.0.1:3306/test",
                }
            );
            return None;
        };
        let admin = url::Url::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", kind.var()));
        let name = format!("{prefix}_{:016x}", fastrand::u64(..));
        let db = TestDb { kind, admin, name };
        db.admin_exec(&format!("CREATE DATABASE {}", db.name));
        Some(db)
    }

    /// The URL of the test's database, with `password` as its password when given (the
    /// servers trust local connections, so a PostgreSQL password is carried, not checked).
    pub fn dsn_with(&self, password: Option<&str>) -> String {
        let mut url = self.admin.clone();
        url.set_path(&format!("/{}", self.name));
        if let Some(p) = password {
            url.set_password(Some(p)).expect("a password fits the URL");
        }
        url.to_string()
    }

    pub fn dsn(&self) -> String {
        self.dsn_with(None)
    }

    fn admin_exec(&self, sql: &str) {
        run(self.kind, self.admin.as_str(), sql);
    }

    /// Rows of `sql` on the test's database, each value as text (`None` for NULL).
    pub fn query(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        run(self.kind, &self.dsn(), sql)
    }

    /// The first value of the first row.
    pub fn scalar(&self, sql: &str) -> Option<String> {
        self.query(sql)
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().next().flatten())
    }

    /// Rows of `sql` on the server's own database (to look at other sessions).
    pub fn admin_query(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        run(self.kind, self.admin.as_str(), sql)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Sessions a test left (a cancelled statement's) end with the database.
        let force = match self.kind {
            Kind::Postgres => " WITH (FORCE)",
            Kind::Mysql => "",
        };
        let _ = std::panic::catch_unwind(|| {
            self.admin_exec(&format!("DROP DATABASE IF EXISTS {}{force}", self.name))
        });
    }
}

/// Runs SQL with the text protocol; every value as text.
fn run(kind: Kind, url: &str, sql: &str) -> Vec<Vec<Option<String>>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let work = async {
            let mut out = Vec::new();
            match kind {
                Kind::Postgres => {
                    let mut conn = sqlx::PgConnection::connect(url).await?;
                    let items: Vec<_> = sqlx::raw_sql(sql)
                        .fetch_many(&mut conn)
                        .collect_all()
                        .await?;
                    for item in items {
                        if let Either::Right(row) = item {
                            out.push(
                                (0..row.len())
                                    .map(|i| {
                                        row.try_get_unchecked::<Option<String>, _>(i).ok().flatten()
                                    })
                                    .collect(),
                            );
                        }
                    }
                }
                Kind::Mysql => {
                    let mut conn = sqlx::MySqlConnection::connect(url).await?;
                    let items: Vec<_> = sqlx::raw_sql(sql)
                        .fetch_many(&mut conn)
                        .collect_all()
                        .await?;
                    for item in items {
                        if let Either::Right(row) = item {
                            out.push(
                                (0..row.len())
                                    .map(|i| {
                                        row.try_get_unchecked::<Option<Vec<u8>>, _>(i)
                                            .ok()
                                            .flatten()
                                            .map(|b| String::from_utf8_lossy(&b).into_owned())
                                    })
                                    .collect(),
                            );
                        }
                    }
                }
            }
            Ok::<_, sqlx::Error>(out)
        };
        tokio::time::timeout(Duration::from_secs(30), work)
            .await
            .unwrap_or_else(|_| panic!("`{sql}` took more than 30 s"))
            .unwrap_or_else(|e| panic!("`{sql}` failed: {e}"))
    })
}

/// Collecting a stream of results.
trait CollectAll<T> {
    async fn collect_all(self) -> Result<Vec<T>, sqlx::Error>;
}

impl<'a, T: 'a> CollectAll<T> for futures_util::stream::BoxStream<'a, Result<T, sqlx::Error>> {
    async fn collect_all(self) -> Result<Vec<T>, sqlx::Error> {
        use futures_util::TryStreamExt;
        self.try_collect().await
    }
}
