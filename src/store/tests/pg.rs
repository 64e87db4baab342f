//! PostgreSQL for the store's tests: a schema of its own per test in the database
//! `SENSEI_TEST_PG` names (`.ci/run` sets it), dropped when the test ends.

use super::*;

/// A schema created for one test; dropped (with everything in it) on drop.
pub struct Schema {
    base: String,
    name: String,
    /// The URL a store connects to: the base URL with `search_path` set to the schema.
    pub url: String,
}

/// Runs `work` on a runtime of its own, on a thread of its own (callers may be async tests).
fn on_own_runtime<T: Send + 'static>(
    work: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(work)
    })
    .join()
    .unwrap()
}

async fn execute(base: String, sql: String) -> Result<(), sqlx::Error> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&base).await?;
    sqlx::query(&sql).execute(&mut conn).await?;
    conn.close().await
}

impl Schema {
    /// A fresh schema, or None (with a note) when `SENSEI_TEST_PG` is unset.
    pub fn create() -> Option<Schema> {
        let Ok(base) = std::env::var("SENSEI_TEST_PG") else {
            eprintln!("SENSEI_TEST_PG is unset: the PostgreSQL store is not tested here");
            return None;
        };
        let name = format!("sensei_t{:016x}", fastrand::u64(..));
        on_own_runtime(execute(base.clone(), format!("CREATE SCHEMA {name}")))
            .unwrap_or_else(|e| panic!("cannot create a schema in {base}: {e}"));
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-c%20search_path%3D{name}");
        Some(Schema { base, name, url })
    }

    pub fn store(&self) -> Store {
        Store::connect(&Location::Postgres(self.url.clone()), Durability::Full).unwrap()
    }

    /// Runs `sql` in the schema, behind the stores' backs.
    pub fn execute(&self, sql: &str) {
        on_own_runtime(execute(self.url.clone(), sql.to_owned()))
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA {} CASCADE", self.name);
        let _ = on_own_runtime(execute(self.base.clone(), sql));
    }
}

/// A fresh store on each backend this machine has: SQLite always, PostgreSQL where
/// `SENSEI_TEST_PG` is set. Keep the returned value alive as long as the store.
pub fn each() -> Vec<(Store, Fresh)> {
    let (dir, sqlite) = store();
    let mut stores = vec![(sqlite, Fresh::Dir(dir))];
    if let Some(schema) = Schema::create() {
        stores.push((schema.store(), Fresh::Schema(schema)));
    }
    stores
}

/// What a fresh store lives in.
pub enum Fresh {
    Dir(TempDir),
    Schema(Schema),
}

impl Fresh {
    /// Another handle on the same store, as a second process (or server) opens it.
    pub fn open(&self) -> Store {
        match self {
            Fresh::Dir(dir) => Store::open(dir.path()).unwrap(),
            Fresh::Schema(schema) => schema.store(),
        }
    }

    /// Runs `sql` (the same text on both backends) behind the store's back, as another
    /// process would have written it.
    pub fn execute(&self, sql: &str) {
        match self {
            Fresh::Dir(dir) => raw(dir)
                .execute_batch(sql)
                .unwrap_or_else(|e| panic!("{sql}: {e}")),
            Fresh::Schema(schema) => schema.execute(sql),
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Fresh::Schema(_))
    }
}

impl std::fmt::Display for Fresh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_postgres() {
            "postgres"
        } else {
            "sqlite"
        })
    }
}

#[test]
fn a_postgres_store_opens_upgrades_and_answers() {
    let Some(schema) = Schema::create() else {
        return;
    };
    let store = schema.store();
    store.ping().unwrap();
    assert!(store.is_shared());
    drop(store);
    // A second open finds the schema at this build's version.
    let again = schema.store();
    again.ping().unwrap();
    drop(again);
    // A store a newer release upgraded is refused in words, and left as it is.
    schema.execute("UPDATE sensei_schema SET version = 99");
    let refused = Store::connect(&Location::Postgres(schema.url.clone()), Durability::Full)
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("written by a newer sensei (schema version 99"),
        "{refused}"
    );
    schema.execute("UPDATE sensei_schema SET version = 1");
    schema.store().ping().unwrap();
}
