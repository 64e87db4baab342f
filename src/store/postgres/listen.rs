//! The change feed on PostgreSQL: this process's commits bump it at once (`Tx::commit`);
//! other servers' commits arrive as `NOTIFY sensei_changes`, which one listener task per
//! process turns into bumps. The listener starts with the first subscriber; if its
//! connection drops, it reconnects, and bumps once (something may have been missed).

use super::db::{CHANNEL, Db};
use sqlx::postgres::PgListener;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How long the listener waits before connecting again after losing its connection.
const RETRY: Duration = Duration::from_secs(1);

pub fn subscribe(db: &Arc<Db>, runtime: &tokio::runtime::Handle) -> watch::Receiver<u64> {
    let changes = db.feed.subscribe();
    if db.feed.claim_poller() {
        let feed = Arc::downgrade(&db.feed);
        let pool = db.pool.clone();
        runtime.spawn(async move {
            loop {
                match PgListener::connect_with(&pool).await {
                    Ok(mut listener) => {
                        if listener.listen(CHANNEL).await.is_ok() {
                            while listener.recv().await.is_ok() {
                                match feed.upgrade() {
                                    Some(feed) => feed.bump(),
                                    None => return,
                                }
                            }
                        }
                    }
                    Err(e) => tracing::warn!("cannot listen for other servers' commits: {e}"),
                }
                match feed.upgrade() {
                    Some(feed) => feed.bump(),
                    None => return,
                }
                tokio::time::sleep(RETRY).await;
            }
        });
    }
    changes
}
