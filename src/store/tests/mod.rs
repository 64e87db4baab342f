//! The store's tests, against real SQLite files in temporary directories. Shared helpers here;
//! one file per concern.

#![allow(clippy::unwrap_used)]

mod basics;
mod checkpoints;
mod commits;
mod contract;
mod feed;
mod gates;
mod history;
mod hooks;
mod leases;
mod logs;
mod outbox;
mod pg;

use super::*;
use crate::event::{EventKind, MigrationId, NewEvent, StepState};
use chrono::{DateTime, Utc};
use serde_json::json;
use tempfile::TempDir;

/// A fresh state directory and a store on it.
fn store() -> (TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap()
}

/// The runbook of the tests' migrations: its rules route a failed step to `chatops`, and a
/// retrying one to `chatops` and `mail` (the store routes every event it appends).
const ALERTING: &str = r#"version: 1
name: orders-cutover
alerts:
  channels:
    chatops: { webhook: { url: "https://chat.example.com/hook" } }
    mail: { email: { to: [dba@example.com] } }
  rules:
    - { on: [step_failed], notify: [chatops] }
    - { on: [step_retrying], notify: [chatops, mail] }
steps:
  - id: a
    run: "true"
  - id: b
    run: "true"
  - id: c
    run: "true"
"#;

fn new_migration(id: &str, steps: &[&str]) -> NewMigration {
    NewMigration {
        id: MigrationId::from(id.to_owned()),
        runbook: "orders-cutover".to_owned(),
        runbook_path: "runbooks/orders.yaml".to_owned(),
        runbook_text: ALERTING.to_owned(),
        runbook_files: Default::default(),
        params: json!({"tables": ["orders"], "dsn": "postgres://secret"}),
        masked_params: json!({"tables": ["orders"], "dsn": "***"}),
        digest: "sha256:abc".to_owned(),
        starter: "alice".to_owned(),
        steps: steps.iter().map(|s| (*s).to_owned()).collect(),
        created_event_data: json!({"runbook": "orders-cutover"}),
    }
}

/// Creates a migration with steps a, b, c.
fn create(store: &Store, id: &str) -> MigrationId {
    store
        .create_migration(new_migration(id, &["a", "b", "c"]))
        .unwrap()
        .id
}

fn id(s: &str) -> MigrationId {
    MigrationId::from(s.to_owned())
}

fn event(kind: EventKind, step: &str) -> NewEvent {
    NewEvent::for_step(kind, step, json!({"step": step}))
}

fn step(name: &str, state: StepState) -> StepRow {
    StepRow::new(name, state)
}

/// A second, plain connection to the database, to look or meddle behind the store's back.
fn raw(dir: &TempDir) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    conn
}
