//! Cancelling a statement on the server, from a second connection: killing the client
//! alone leaves the statement running there (a PostgreSQL backend notices a gone client only
//! when it next writes to it; MySQL runs a statement to its end). The first connection's
//! session id ([`super::connect::Conn::backend_id`]) names what to cancel:
//! `SELECT pg_cancel_backend(pid)` on PostgreSQL, `KILL QUERY id` on MySQL/MariaDB. Both
//! are allowed to the user that owns the session, so the step's own DSN is enough.

use super::connect::{self, Conn};
use super::dsn::{Dsn, Engine};
use std::time::Duration;

/// How long a cancel may take: it happens within the grace period between the engine's
/// SIGTERM and its SIGKILL (5 s).
pub const CANCEL_TIMEOUT: Duration = Duration::from_secs(2);

/// Cancels what session `backend` runs; says what happened, in one sentence. The process
/// logs it as `cancel: <sentence>`, the line the engine quotes when it stopped the step.
pub async fn cancel(dsn: &Dsn, backend: u64) -> Result<String, String> {
    let attempt = async {
        let mut conn = connect::connect(dsn, CANCEL_TIMEOUT)
            .await
            .map_err(|e| format!("could not open a second connection to cancel it: {e}"))?;
        let said = match conn.engine() {
            Engine::Postgres => {
                let sql = format!("SELECT pg_cancel_backend({backend})");
                match conn.scalar(&sql).await {
                    Ok(Some(t)) if t == "t" => Ok(format!(
                        "cancelled the statement on the server (pg_cancel_backend({backend}))"
                    )),
                    Ok(_) => Err(format!(
                        "the server did not cancel backend {backend} (it may have finished already)"
                    )),
                    Err(e) => Err(format!("pg_cancel_backend({backend}) failed: {e}")),
                }
            }
            Engine::Mysql => match conn.simple(&format!("KILL QUERY {backend}")).await {
                Ok(()) => Ok(format!(
                    "cancelled the statement on the server (KILL QUERY {backend})"
                )),
                Err(e) => Err(format!("KILL QUERY {backend} failed: {e}")),
            },
        };
        Conn::close(conn).await;
        said
    };
    tokio::time::timeout(CANCEL_TIMEOUT, attempt)
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "cancelling took longer than {}s; the statement may still run on the server (session {backend})",
                CANCEL_TIMEOUT.as_secs()
            ))
        })
}
