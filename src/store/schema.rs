//! How the store lies on disk: the SQLite file, its pragmas, the tables (versioned with
//! `PRAGMA user_version`, upgraded in order) and the encoding of times, JSON and wire names
//! in columns.
//!
//! Times are RFC 3339 text in UTC with millisecond precision, so they sort as text and read
//! the same in the `sqlite3` shell; JSON is text.

use super::{Durability, StoreError};
use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::types::Type;
use rusqlite::{Connection, OpenFlags, Row, TransactionBehavior};
use serde_json::Value as Json;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

/// The file inside the state directory.
pub const DB_FILE: &str = "sensei.db";

/// How long a connection waits for another process's lock before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Prepared statements kept per connection: more than the store has, so none is re-prepared.
const STATEMENT_CACHE: usize = 64;

/// Each entry upgrades the schema by one version; the index + 1 is the version it reaches.
/// Never edit a shipped entry: append a new one.
pub(super) const UPGRADES: &[&str] = &[V1, V2, V3, V4, V5, V6, V7, V8, V9];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = UPGRADES.len() as i64;

const V1: &str = "
CREATE TABLE migrations (
    n             INTEGER PRIMARY KEY,   -- creation order
    id            TEXT NOT NULL UNIQUE,
    runbook       TEXT NOT NULL,
    runbook_path  TEXT NOT NULL,
    runbook_text  TEXT NOT NULL,
    params        TEXT NOT NULL,         -- JSON, secrets included
    masked_params TEXT NOT NULL,         -- JSON
    digest        TEXT NOT NULL,
    state         TEXT NOT NULL,
    starter       TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    last_seq      INTEGER NOT NULL
);
CREATE INDEX migrations_by_state ON migrations (state, n);

CREATE TABLE events (
    migration TEXT NOT NULL REFERENCES migrations (id),
    seq       INTEGER NOT NULL,
    at        TEXT NOT NULL,
    kind      TEXT NOT NULL,
    step      TEXT,
    data      TEXT NOT NULL,               -- JSON
    PRIMARY KEY (migration, seq)
) WITHOUT ROWID;

CREATE TABLE steps (
    n           INTEGER PRIMARY KEY,       -- insertion order
    migration   TEXT NOT NULL REFERENCES migrations (id),
    step        TEXT NOT NULL,
    state       TEXT NOT NULL,
    attempts    INTEGER NOT NULL,
    started_at  TEXT,
    finished_at TEXT,
    exit_code   INTEGER,
    outputs     TEXT,                      -- JSON
    error       TEXT,
    reason      TEXT,
    UNIQUE (migration, step)
);

CREATE TABLE logs (
    seq       INTEGER PRIMARY KEY,
    migration TEXT NOT NULL REFERENCES migrations (id),
    step      TEXT NOT NULL,
    attempt   INTEGER NOT NULL,
    stream    TEXT NOT NULL,
    at        TEXT NOT NULL,
    text      TEXT NOT NULL
);
CREATE INDEX logs_by_step ON logs (migration, step, seq);

CREATE TABLE gates (
    migration TEXT NOT NULL REFERENCES migrations (id),
    step      TEXT NOT NULL,
    round     INTEGER NOT NULL,            -- bumped each time a closed gate opens again
    status    TEXT NOT NULL,
    approvers TEXT NOT NULL,               -- JSON list of names
    required  INTEGER NOT NULL,
    deadline  TEXT,
    opened_at TEXT NOT NULL,
    closed_at TEXT,
    PRIMARY KEY (migration, step)
) WITHOUT ROWID;

CREATE TABLE gate_votes (
    n         INTEGER PRIMARY KEY,
    migration TEXT NOT NULL,
    step      TEXT NOT NULL,
    round     INTEGER NOT NULL,
    who       TEXT NOT NULL,
    decision  TEXT NOT NULL,
    comment   TEXT,
    digest    TEXT NOT NULL,
    local     INTEGER NOT NULL,
    at        TEXT NOT NULL,
    UNIQUE (migration, step, round, who),
    FOREIGN KEY (migration, step) REFERENCES gates (migration, step)
);

CREATE TABLE leases (
    migration  TEXT PRIMARY KEY REFERENCES migrations (id),
    token      TEXT NOT NULL,
    pid        INTEGER NOT NULL,
    pid_start  INTEGER,                    -- the holder's start time (/proc), against pid reuse
    host       TEXT NOT NULL,
    since      TEXT NOT NULL,
    expires_at TEXT NOT NULL
) WITHOUT ROWID;
";

/// The alert outbox (SPEC §4): a delivery per (event, channel), written in the transaction
/// of the event that causes it, and a row per attempt to send it.
const V2: &str = "
CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY,
    migration       TEXT NOT NULL REFERENCES migrations (id),
    event_seq       INTEGER NOT NULL,
    event           TEXT NOT NULL,         -- the alert event name: `failed`, `step_failed`, ...
    step            TEXT,
    migration_state TEXT NOT NULL,         -- the migration's state when the event happened
    channel         TEXT NOT NULL,
    kind            TEXT NOT NULL,         -- email | webhook
    state           TEXT NOT NULL,         -- pending | delivered | failed
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,                  -- set while pending
    claimed_until   TEXT,                  -- a sender holds it until then
    last_error      TEXT,
    message         TEXT,                  -- JSON: the message as rendered for the first attempt
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    UNIQUE (migration, event_seq, channel)
);
CREATE INDEX deliveries_due ON deliveries (state, next_attempt_at);
CREATE INDEX deliveries_by_migration ON deliveries (migration, id);

CREATE TABLE delivery_attempts (
    delivery INTEGER NOT NULL REFERENCES deliveries (id),
    attempt  INTEGER NOT NULL,
    at       TEXT NOT NULL,
    outcome  TEXT NOT NULL,                -- delivered | retry | failed
    status   INTEGER,                      -- the HTTP status or SMTP reply code, when one came
    error    TEXT,
    PRIMARY KEY (delivery, attempt)
) WITHOUT ROWID;
";

/// Webhook triggers (SPEC §6): the signatures each hook accepted, kept until `expires_at`
/// so that a replay is refused (also across restarts), and the idempotency keys with the
/// migration each one created.
const V3: &str = "
CREATE TABLE hook_signatures (
    hook       TEXT NOT NULL,
    signature  TEXT NOT NULL,              -- the header's value, `sha256=<hex>`
    timestamp  INTEGER NOT NULL,           -- the delivery's X-Sensei-Timestamp
    seen_at    TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    PRIMARY KEY (hook, signature)
) WITHOUT ROWID;
CREATE INDEX hook_signatures_expiry ON hook_signatures (expires_at);

CREATE TABLE hook_keys (
    hook       TEXT NOT NULL,
    key        TEXT NOT NULL,              -- the Idempotency-Key header
    migration  TEXT NOT NULL REFERENCES migrations (id),
    created_at TEXT NOT NULL,
    PRIMARY KEY (hook, key)
) WITHOUT ROWID;
";

/// Webhook signatures are kept as their MAC, 64 lower-case hex digits without `sha256=`, so
/// that no other spelling of a MAC seen before is new (V3 kept the header's text, and read
/// upper-case digits and `+3` for `03` as the same MAC). Rows kept by V3 are rewritten to that
/// form, keeping one row per MAC, so a delivery accepted before the upgrade stays refused.
const V4: &str = "
UPDATE OR REPLACE hook_signatures
   SET signature = lower(replace(substr(signature, 8), '+', '0'))
 WHERE signature LIKE 'sha256=%';
";

/// Pool slots shared by every migration on the store (a slot is a row, held under its
/// driver's lease, so a dead driver's slots come back), and the process group of each step's
/// latest attempt (so a resume can tell a step process that outlived its driver).
const V5: &str = "
CREATE TABLE pool_slots (
    id        INTEGER PRIMARY KEY,
    pool      TEXT NOT NULL,
    migration TEXT NOT NULL REFERENCES migrations (id),
    step      TEXT NOT NULL,
    token     TEXT NOT NULL,               -- the holder's lease token
    taken_at  TEXT NOT NULL
);
CREATE INDEX pool_slots_by_pool ON pool_slots (pool);

CREATE TABLE step_processes (
    migration  TEXT NOT NULL REFERENCES migrations (id),
    step       TEXT NOT NULL,
    attempt    INTEGER NOT NULL,
    pgid       INTEGER NOT NULL,
    pg_start   INTEGER,                    -- the group leader's start time (/proc), against pid reuse
    host       TEXT NOT NULL,
    started_at TEXT NOT NULL,
    PRIMARY KEY (migration, step)
) WITHOUT ROWID;
";

/// A step a retry keeps (it succeeded before and passes again without running) is a flag of
/// its row, not the words of its reason; rows an older version marked by those words carry
/// the flag.
const V6: &str = "
ALTER TABLE steps ADD COLUMN kept INTEGER NOT NULL DEFAULT 0;
UPDATE steps SET kept = 1 WHERE reason = 'kept from an earlier run';
";

/// The latest progress a running step reported (`progress=DONE/TOTAL`) and when the engine
/// heard it; NULL for steps that never reported any, as every row an older version wrote.
const V7: &str = "
ALTER TABLE steps ADD COLUMN progress_done INTEGER;
ALTER TABLE steps ADD COLUMN progress_total INTEGER;
ALTER TABLE steps ADD COLUMN progress_at TEXT;
";

/// The SQL files a migration's runbook reads (`sql: { file: ... }`), as they were when it
/// was created: a JSON object of path (as written) to text. A resumed migration runs them,
/// not whatever the files hold by then.
const V8: &str = "
ALTER TABLE migrations ADD COLUMN runbook_files TEXT NOT NULL DEFAULT '{}';
";

/// The last checkpoint a step's attempts recorded (`checkpoint=VALUE`, masked), the attempt
/// that wrote it and when the engine heard it; NULL for steps that never recorded one, as
/// every row an older version wrote.
const V9: &str = "
ALTER TABLE steps ADD COLUMN checkpoint TEXT;
ALTER TABLE steps ADD COLUMN checkpoint_attempt INTEGER;
ALTER TABLE steps ADD COLUMN checkpoint_at TEXT;
";

/// Creates the state directory and opens its database for writing, with the schema upgraded
/// to this build's version.
pub fn open_writer(state_dir: &Path, durability: Durability) -> Result<Connection, StoreError> {
    let not_writable = |e: std::io::Error| StoreError::StateDir {
        path: state_dir.to_path_buf(),
        reason: e.to_string(),
    };
    std::fs::create_dir_all(state_dir).map_err(not_writable)?;
    // SQLite needs to create its -wal and -shm files beside the database; find out now, in
    // words, rather than at the first commit.
    let probe = state_dir.join(format!(
        ".write-test-{}-{}",
        std::process::id(),
        fastrand::u32(..)
    ));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(not_writable)?;
    let _ = std::fs::remove_file(&probe);
    let path = state_dir.join(DB_FILE);
    let open_err = |e: rusqlite::Error| match StoreError::from(e) {
        StoreError::Busy => StoreError::Busy,
        other => StoreError::Open {
            path: path.clone(),
            reason: reason_of(other),
        },
    };
    let mut conn = Connection::open(&path).map_err(open_err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .map_err(open_err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Open {
            path,
            reason: format!("SQLite refused write-ahead logging (journal mode stays {mode})"),
        });
    }
    let sync = match durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", sync)
        .map_err(open_err)?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(open_err)?;
    // A WAL that is checkpointed often stays small and is rewritten in place: a commit's
    // fsync then flushes only its pages, not also the file's growing size. With SQLite's
    // default (1,000 pages) every commit of a fresh store grows the file for the first few
    // hundred steps, at about twice the cost.
    conn.pragma_update(None, "wal_autocheckpoint", WAL_CHECKPOINT_PAGES)
        .map_err(open_err)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    upgrade(&mut conn, &path)?;
    Ok(conn)
}

/// WAL pages after which a commit also checkpoints (see `open_writer`).
const WAL_CHECKPOINT_PAGES: i64 = 200;

/// Opens the database a second time for reads; WAL lets it read while the writer writes.
pub fn open_reader(state_dir: &Path) -> Result<Connection, StoreError> {
    let path = state_dir.join(DB_FILE);
    let open_err = |e: rusqlite::Error| StoreError::Open {
        path: path.clone(),
        reason: reason_of(StoreError::from(e)),
    };
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(&path, flags).map_err(open_err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
    conn.pragma_update(None, "query_only", "ON")
        .map_err(open_err)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

fn reason_of(e: StoreError) -> String {
    match e {
        StoreError::Database(m) | StoreError::Corrupt(m) => m,
        other => other.to_string(),
    }
}

/// Brings the schema to [`SCHEMA_VERSION`], in one transaction so that two processes opening
/// a new state directory at once do not both create it.
fn upgrade(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let version = |c: &Connection| -> Result<i64, StoreError> {
        Ok(c.pragma_query_value(None, "user_version", |r| r.get(0))?)
    };
    if version(conn)? == SCHEMA_VERSION {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found = version(&tx)?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            path: path.to_path_buf(),
            found,
            known: SCHEMA_VERSION,
        });
    }
    for sql in UPGRADES.iter().skip(found.max(0) as usize) {
        tx.execute_batch(sql)?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(())
}

/// A time as stored: RFC 3339, UTC, milliseconds.
pub fn fmt_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `t` cut to what the store keeps, so that what a caller is told equals what it reads back.
pub fn to_millis(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

/// Now, as the store will keep it.
pub fn now() -> DateTime<Utc> {
    to_millis(Utc::now())
}

fn conversion(idx: usize, e: impl std::error::Error + Send + Sync + 'static) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, Box::new(e))
}

/// A time as stored, read back (both backends).
pub fn parse_time(s: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc))
}

/// Reads a stored time.
pub fn time_col(row: &Row<'_>, idx: usize) -> rusqlite::Result<DateTime<Utc>> {
    let s: String = row.get(idx)?;
    parse_time(&s).map_err(|e| conversion(idx, e))
}

/// Reads a stored time that may be absent.
pub fn opt_time_col(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<DateTime<Utc>>> {
    match row.get_ref(idx)? {
        rusqlite::types::ValueRef::Null => Ok(None),
        _ => time_col(row, idx).map(Some),
    }
}

/// Reads stored JSON.
pub fn json_col(row: &Row<'_>, idx: usize) -> rusqlite::Result<Json> {
    let s: String = row.get(idx)?;
    serde_json::from_str(&s).map_err(|e| conversion(idx, e))
}

/// Reads stored JSON that may be absent.
pub fn opt_json_col(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<Json>> {
    match row.get_ref(idx)? {
        rusqlite::types::ValueRef::Null => Ok(None),
        _ => json_col(row, idx).map(Some),
    }
}

/// Reads a wire name (a state, a kind, a status).
pub fn name_col<T>(row: &Row<'_>, idx: usize) -> rusqlite::Result<T>
where
    T: FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let s: String = row.get(idx)?;
    s.parse().map_err(|e| conversion(idx, e))
}

/// JSON as stored.
pub fn json_text(v: &Json) -> String {
    // Serialising a `Value` cannot fail: its map keys are strings.
    serde_json::to_string(v).unwrap_or_else(|_| "null".to_owned())
}
