//! The PostgreSQL store's tables, in the current schema (`search_path`), versioned in
//! `sensei_schema` and upgraded in order, under an advisory lock so that servers starting
//! together do not upgrade twice.
//!
//! Columns keep the SQLite backend's encodings (times as RFC 3339 text in UTC with
//! milliseconds, JSON as text, wire names as text), so the two backends share their row
//! types and a store can be read the same way on both.

use super::super::StoreError;
use sqlx::PgPool;

/// Each entry upgrades the schema by one version; the index + 1 is the version it reaches.
/// Never edit a shipped entry: append a new one.
const UPGRADES: &[&str] = &[V1];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = UPGRADES.len() as i64;

/// The SQLite backend's tables as of its version 9, in PostgreSQL's words.
const V1: &str = "
CREATE TABLE migrations (
    n             BIGSERIAL PRIMARY KEY,
    id            TEXT NOT NULL UNIQUE,
    runbook       TEXT NOT NULL,
    runbook_path  TEXT NOT NULL,
    runbook_text  TEXT NOT NULL,
    runbook_files TEXT NOT NULL DEFAULT '{}',
    params        TEXT NOT NULL,
    masked_params TEXT NOT NULL,
    digest        TEXT NOT NULL,
    state         TEXT NOT NULL,
    starter       TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    last_seq      BIGINT NOT NULL
);
CREATE INDEX migrations_by_state ON migrations (state, n);

CREATE TABLE events (
    migration TEXT NOT NULL REFERENCES migrations (id),
    seq       BIGINT NOT NULL,
    at        TEXT NOT NULL,
    kind      TEXT NOT NULL,
    step      TEXT,
    data      TEXT NOT NULL,
    PRIMARY KEY (migration, seq)
);

CREATE TABLE steps (
    n                  BIGSERIAL PRIMARY KEY,
    migration          TEXT NOT NULL REFERENCES migrations (id),
    step               TEXT NOT NULL,
    state              TEXT NOT NULL,
    attempts           BIGINT NOT NULL,
    started_at         TEXT,
    finished_at        TEXT,
    exit_code          BIGINT,
    outputs            TEXT,
    error              TEXT,
    reason             TEXT,
    kept               BOOLEAN NOT NULL DEFAULT FALSE,
    progress_done      BIGINT,
    progress_total     BIGINT,
    progress_at        TEXT,
    checkpoint         TEXT,
    checkpoint_attempt BIGINT,
    checkpoint_at      TEXT,
    UNIQUE (migration, step)
);

CREATE TABLE logs (
    seq       BIGSERIAL PRIMARY KEY,
    migration TEXT NOT NULL REFERENCES migrations (id),
    step      TEXT NOT NULL,
    attempt   BIGINT NOT NULL,
    stream    TEXT NOT NULL,
    at        TEXT NOT NULL,
    text      TEXT NOT NULL
);
CREATE INDEX logs_by_step ON logs (migration, step, seq);

CREATE TABLE gates (
    migration TEXT NOT NULL REFERENCES migrations (id),
    step      TEXT NOT NULL,
    round     BIGINT NOT NULL,
    status    TEXT NOT NULL,
    approvers TEXT NOT NULL,
    required  BIGINT NOT NULL,
    deadline  TEXT,
    opened_at TEXT NOT NULL,
    closed_at TEXT,
    PRIMARY KEY (migration, step)
);

CREATE TABLE gate_votes (
    n         BIGSERIAL PRIMARY KEY,
    migration TEXT NOT NULL,
    step      TEXT NOT NULL,
    round     BIGINT NOT NULL,
    who       TEXT NOT NULL,
    decision  TEXT NOT NULL,
    comment   TEXT,
    digest    TEXT NOT NULL,
    local     BOOLEAN NOT NULL,
    at        TEXT NOT NULL,
    UNIQUE (migration, step, round, who),
    FOREIGN KEY (migration, step) REFERENCES gates (migration, step)
);

CREATE TABLE leases (
    migration  TEXT PRIMARY KEY REFERENCES migrations (id),
    token      TEXT NOT NULL,
    pid        BIGINT NOT NULL,
    pid_start  BIGINT,
    host       TEXT NOT NULL,
    since      TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

CREATE TABLE deliveries (
    id              BIGSERIAL PRIMARY KEY,
    migration       TEXT NOT NULL REFERENCES migrations (id),
    event_seq       BIGINT NOT NULL,
    event           TEXT NOT NULL,
    step            TEXT,
    migration_state TEXT NOT NULL,
    channel         TEXT NOT NULL,
    kind            TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    claimed_until   TEXT,
    last_error      TEXT,
    message         TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    UNIQUE (migration, event_seq, channel)
);
CREATE INDEX deliveries_due ON deliveries (state, next_attempt_at);
CREATE INDEX deliveries_by_migration ON deliveries (migration, id);

CREATE TABLE delivery_attempts (
    delivery BIGINT NOT NULL REFERENCES deliveries (id),
    attempt  BIGINT NOT NULL,
    at       TEXT NOT NULL,
    outcome  TEXT NOT NULL,
    status   BIGINT,
    error    TEXT,
    PRIMARY KEY (delivery, attempt)
);

CREATE TABLE hook_signatures (
    hook       TEXT NOT NULL,
    signature  TEXT NOT NULL,
    timestamp  BIGINT NOT NULL,
    seen_at    TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    PRIMARY KEY (hook, signature)
);
CREATE INDEX hook_signatures_expiry ON hook_signatures (expires_at);

CREATE TABLE hook_keys (
    hook       TEXT NOT NULL,
    key        TEXT NOT NULL,
    migration  TEXT NOT NULL REFERENCES migrations (id),
    created_at TEXT NOT NULL,
    PRIMARY KEY (hook, key)
);

CREATE TABLE pool_slots (
    id        BIGSERIAL PRIMARY KEY,
    pool      TEXT NOT NULL,
    migration TEXT NOT NULL REFERENCES migrations (id),
    step      TEXT NOT NULL,
    token     TEXT NOT NULL,
    taken_at  TEXT NOT NULL
);
CREATE INDEX pool_slots_by_pool ON pool_slots (pool);

CREATE TABLE step_processes (
    migration  TEXT NOT NULL REFERENCES migrations (id),
    step       TEXT NOT NULL,
    attempt    BIGINT NOT NULL,
    pgid       BIGINT NOT NULL,
    pg_start   BIGINT,
    host       TEXT NOT NULL,
    started_at TEXT NOT NULL,
    PRIMARY KEY (migration, step)
);
";

/// Brings the schema to [`SCHEMA_VERSION`] in one transaction, holding an advisory lock so
/// a second server starting at the same moment waits and then finds it done.
pub async fn upgrade(pool: &PgPool, shown: &str) -> Result<(), StoreError> {
    match apply(pool).await {
        Ok(found) if found > SCHEMA_VERSION => Err(StoreError::NewerSchema {
            path: shown.into(),
            found,
            known: SCHEMA_VERSION,
        }),
        Ok(_) => Ok(()),
        Err(e) => Err(StoreError::Open {
            path: shown.into(),
            reason: format!("cannot upgrade its schema: {e}"),
        }),
    }
}

/// Upgrades what is older than this build; returns the version found.
async fn apply(pool: &PgPool) -> Result<i64, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('sensei_schema'))")
        .execute(&mut *tx)
        .await?;
    sqlx::query("CREATE TABLE IF NOT EXISTS sensei_schema (version BIGINT NOT NULL)")
        .execute(&mut *tx)
        .await?;
    let found: Option<i64> = sqlx::query_scalar("SELECT max(version) FROM sensei_schema")
        .fetch_one(&mut *tx)
        .await?;
    let found = found.unwrap_or(0);
    if found >= SCHEMA_VERSION {
        return Ok(found);
    }
    for version in found.max(0)..SCHEMA_VERSION {
        let sql: &'static str = UPGRADES[version as usize];
        // One statement at a time (the upgrades hold no `;` but between statements).
        for statement in sql.split(';').filter(|s| !s.trim().is_empty()) {
            sqlx::query(statement).execute(&mut *tx).await?;
        }
    }
    sqlx::query("DELETE FROM sensei_schema")
        .execute(&mut *tx)
        .await?;
    sqlx::query("INSERT INTO sensei_schema (version) VALUES ($1)")
        .bind(SCHEMA_VERSION)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(found)
}
