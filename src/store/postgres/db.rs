//! What every PostgreSQL operation shares: the connection pool, this process's identity (as
//! leases name it), the alert routing, the change feed, and the one way a write transaction
//! starts and ends ([`Db::begin`], [`Tx::commit`]).

use super::super::StoreError;
use super::super::feed::Feed;
use super::super::lease::Me;
use super::super::route::Routes;
use super::schema;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres as Pg, Transaction};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Connections per server: a driver per migration shares them; a write holds one only for
/// its transaction.
const CONNECTIONS: u32 = 8;

/// How long a transaction may wait between statements before PostgreSQL ends it.
const IDLE_IN_TRANSACTION: &str = "5s";

/// The channel every commit notifies.
pub const CHANNEL: &str = "sensei_changes";

#[derive(Debug)]
pub struct Db {
    pub pool: PgPool,
    pub me: Me,
    pub routes: Arc<Routes>,
    pub feed: Arc<Feed>,
    transactions: AtomicU64,
}

/// A write transaction and the database's time when it began: every stamp it writes.
pub struct Tx {
    pub tx: Transaction<'static, Pg>,
    pub now: DateTime<Utc>,
}

impl Db {
    /// Connects and upgrades the schema.
    pub async fn connect(url: &str) -> Result<Db, StoreError> {
        let shown = redact(url);
        let failed = |reason: String| StoreError::Open {
            path: shown.clone().into(),
            reason,
        };
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| failed(format!("the URL is not a PostgreSQL URL: {e}")))?
            // A server paused (or cut off) in the middle of a transaction would hold its
            // row locks, and so stall another server's takeover, until it wakes: PostgreSQL
            // ends such a transaction instead. Every transaction of the store takes
            // milliseconds.
            .options([("idle_in_transaction_session_timeout", IDLE_IN_TRANSACTION)]);
        let pool = PgPoolOptions::new()
            .max_connections(CONNECTIONS)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(|e| failed(format!("cannot connect: {e}")))?;
        schema::upgrade(&pool, &shown).await?;
        Ok(Db {
            pool,
            me: Me::discover(),
            routes: Arc::new(Routes::default()),
            feed: Arc::new(Feed::default()),
            transactions: AtomicU64::new(0),
        })
    }

    /// Begins a write transaction, reading the database's clock.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        let mut tx = self.pool.begin().await?;
        let now = now(&mut tx).await?;
        Ok(Tx { tx, now })
    }

    /// Transactions committed by this process (and as many jobs: each is one).
    pub fn write_stats(&self) -> (u64, u64) {
        let n = self.transactions.load(Ordering::Relaxed);
        (n, n)
    }
}

impl Tx {
    /// Commits, notifying every server's change feed (and this one's at once).
    pub async fn commit(mut self, db: &Db) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(CHANNEL)
            .execute(&mut *self.tx)
            .await?;
        self.tx.commit().await?;
        db.transactions.fetch_add(1, Ordering::Relaxed);
        db.feed.bump();
        Ok(())
    }
}

/// The database's clock, cut to milliseconds as the store keeps times.
pub async fn now(conn: &mut sqlx::PgConnection) -> Result<DateTime<Utc>, StoreError> {
    let millis: i64 =
        sqlx::query_scalar("SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint")
            .fetch_one(conn)
            .await?;
    DateTime::from_timestamp_millis(millis)
        .ok_or_else(|| StoreError::Corrupt(format!("the database's clock reads {millis} ms")))
}

/// Answers when the database does.
pub async fn ping(db: Arc<Db>) -> Result<(), StoreError> {
    sqlx::query("SELECT 1").execute(&db.pool).await?;
    Ok(())
}

/// The URL for messages: its password (in the user part or a `password` parameter)
/// replaced by `***`. Text that is not a URL is shown as it is unless it holds an `@`.
pub fn redact(url: &str) -> String {
    let Ok(mut u) = url::Url::parse(url) else {
        return if url.contains('@') {
            "(a URL that cannot be read)".to_owned()
        } else {
            url.to_owned()
        };
    };
    if u.password().is_some() {
        let _ = u.set_password(Some("***"));
    }
    let secret =
        |k: &str| k.eq_ignore_ascii_case("password") || k.eq_ignore_ascii_case("sslpassword");
    if u.query_pairs().any(|(k, _)| secret(&k)) {
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                let v = if secret(&k) {
                    "***".to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
    }
    u.to_string()
}

/// Why the store at `url` could not be opened.
pub fn open_error(url: &str, reason: String) -> StoreError {
    StoreError::Open {
        path: redact(url).into(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_never_reach_a_message() {
        assert_eq!(
            redact("postgres://sensei:hunter2@db/s"),
            "postgres://sensei:***@db/s"
        );
        let query = redact("postgres://db/s?user=u&password=hunter2&sslmode=require");
        assert!(
            !query.contains("hunter2") && query.contains("sslmode=require"),
            "{query}"
        );
        assert_eq!(redact("/var/lib/sensei"), "/var/lib/sensei");
        assert!(!redact("not a url:hunter2@x").contains("hunter2"));
    }
}
