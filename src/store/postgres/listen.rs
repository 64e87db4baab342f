//! The change feed on PostgreSQL: this process's commits bump it at once (`Tx::commit`);
//! other servers' commits arrive as `NOTIFY sensei_changes`, which one listener task per
//! process turns into bumps. The listener starts with the first subscriber; each time its
//! LISTEN takes hold (at first, and after reconnecting when its connection dropped) it
//! bumps once, since a commit before then sent a notice nobody heard.

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
                            // Commits before LISTEN took hold (since the first subscriber,
                            // or while the connection was down) sent no notice we heard.
                            match feed.upgrade() {
                                Some(feed) => feed.bump(),
                                None => return,
                            }
                            // `try_recv` (not `recv`, which reconnects without a word)
                            // says when the connection was lost: then connect again here.
                            while let Ok(Some(_)) = listener.try_recv().await {
                                match feed.upgrade() {
                                    Some(feed) => feed.bump(),
                                    None => return,
                                }
                            }
                        }
                    }
                    Err(e) => tracing::warn!("cannot listen for other servers' commits: {e}"),
                }
                if feed.strong_count() == 0 {
                    return;
                }
                tokio::time::sleep(RETRY).await;
            }
        });
    }
    changes
}
