//! Creating the migration of a fire time: the schedule's params rendered (templates over
//! `runbook`) and resolved with [`params::resolve_json`], the plan built at the injected
//! clock's now, and the migration stored under the fire time's deterministic id
//! ([`super::id`]) with the starter `schedule:<runbook>#<index>` and `schedule` (index,
//! cron, timezone) and `fire_time` in its created event.
//!
//! This mirrors `engine::create` (which draws a random id and reads the system time): the
//! store's `Exists` answer to a second create of the same id means the fire time was already
//! handled — by an earlier pass or an earlier run of the server.

use super::id::scheduled_id;
use crate::engine::{self, EngineError, NewRun};
use crate::event::MigrationId;
use crate::runbook::Runbook;
use crate::runbook::params;
use crate::runbook::render::{Renderer, Values};
use crate::store::{Migration, Store, StoreError};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, json};

/// The identity a schedule's migrations are created and started by.
pub fn starter(runbook: &str, index: usize) -> String {
    format!("schedule:{runbook}#{index}")
}

/// A fire time to create the migration of.
#[derive(Debug)]
pub struct FireTime<'a> {
    pub runbook: &'a Runbook,
    pub runbook_path: String,
    pub runbook_text: String,
    /// The schedule's index in `runbook.schedules`.
    pub index: usize,
    pub fire: DateTime<Utc>,
    /// The clock's now: the plan's time and the migration's creation time.
    pub now: DateTime<Utc>,
}

/// What became of a fire time.
#[derive(Debug)]
pub enum Fired {
    Created(Box<Migration>),
    /// Its migration exists already.
    Already(MigrationId),
}

/// Why a fire time could not create its migration.
#[derive(Debug, thiserror::Error)]
pub enum FireError {
    #[error("schedule #{index} has no such schedule in runbook `{runbook}`")]
    NoSchedule { runbook: String, index: usize },
    #[error("the schedule's params cannot be used: {0}")]
    Params(String),
    #[error("the plan cannot be built with the schedule's params: {0}")]
    Plan(#[from] crate::plan::PlanError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Engine(EngineError),
}

/// The schedule's params, rendered over `runbook` and resolved against the runbook's params.
pub fn resolve_params(runbook: &Runbook, index: usize) -> Result<params::Params, FireError> {
    let schedule = runbook
        .schedules
        .get(index)
        .ok_or_else(|| FireError::NoSchedule {
            runbook: runbook.name.clone(),
            index,
        })?;
    let values = Values::new(json!({ "runbook": { "name": runbook.name } }));
    let renderer = Renderer::new();
    let mut given = Map::new();
    for (name, value) in &schedule.params {
        let value = value
            .render(&renderer, &values)
            .map_err(|e| FireError::Params(format!("param `{name}`: {e}")))?;
        given.insert(name.clone(), value);
    }
    params::resolve_json(runbook, &given).map_err(|errors| {
        let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
        FireError::Params(errors.join("; "))
    })
}

/// Creates the migration of `at` (state `created`), or finds it was created already.
pub fn create(store: &Store, at: FireTime<'_>) -> Result<Fired, FireError> {
    let runbook = at.runbook;
    let schedule = runbook
        .schedules
        .get(at.index)
        .ok_or_else(|| FireError::NoSchedule {
            runbook: runbook.name.clone(),
            index: at.index,
        })?;
    let id = scheduled_id(&runbook.name, at.index, at.fire);
    // Cheap check first: the common repeat (a restart) needs no plan.
    if store.migration(&id)?.is_some() {
        return Ok(Fired::Already(id));
    }
    let params = resolve_params(runbook, at.index)?;
    let fire_time = at.fire.to_rfc3339_opts(SecondsFormat::Secs, true);
    let mut origin = Map::new();
    origin.insert(
        "schedule".into(),
        json!({
            "index": at.index,
            "cron": schedule.cron.as_str(),
            "timezone": schedule.timezone.0.name(),
        }),
    );
    origin.insert("fire_time".into(), json!(fire_time));
    let created = engine::create(
        store,
        NewRun {
            runbook,
            runbook_path: at.runbook_path.clone(),
            runbook_text: at.runbook_text,
            params,
            starter: starter(&runbook.name, at.index),
            id: Some(id),
            now: Some(at.now),
            origin,
        },
    );
    match created {
        Ok(m) => Ok(Fired::Created(Box::new(m))),
        Err(EngineError::Store(StoreError::Exists(id))) => Ok(Fired::Already(id)),
        Err(EngineError::Plan(e)) => Err(FireError::Plan(e)),
        Err(EngineError::Store(e)) => Err(FireError::Store(e)),
        Err(e) => Err(FireError::Engine(e)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const RUNBOOK: &str = r#"version: 1
name: nightly
params:
  table: { type: string, required: true }
  batch: { type: integer, default: 10 }
schedules:
  - cron: "* * * * *"
    params: { table: "{{runbook.name}}-orders" }
steps:
  - id: copy
    run: echo {{params.table}}
"#;

    #[test]
    fn a_fire_time_creates_one_migration_and_a_second_create_finds_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state")).unwrap();
        let runbook = crate::runbook::load_bytes("nightly.yaml", RUNBOOK.as_bytes())
            .runbook
            .unwrap();
        let fire = DateTime::parse_from_rfc3339("2026-05-01T12:01:00Z")
            .unwrap()
            .to_utc();
        let at = |now| FireTime {
            runbook: &runbook,
            runbook_path: "nightly.yaml".into(),
            runbook_text: RUNBOOK.into(),
            index: 0,
            fire,
            now,
        };
        let Fired::Created(m) = create(&store, at(fire)).unwrap() else {
            panic!("not created");
        };
        assert_eq!(m.id, scheduled_id("nightly", 0, fire));
        assert_eq!(m.starter, "schedule:nightly#0");
        assert_eq!(m.params["table"], "nightly-orders");
        assert_eq!(m.params["batch"], 10);
        let created = &store.events(&m.id, 0).unwrap()[0];
        assert_eq!(created.data["fire_time"], "2026-05-01T12:01:00Z");
        assert_eq!(created.data["schedule"]["index"], 0);
        assert_eq!(created.data["schedule"]["cron"], "* * * * *");
        let again = create(&store, at(fire + chrono::Duration::seconds(5))).unwrap();
        assert!(matches!(again, Fired::Already(id) if id == m.id));
        assert_eq!(store.list(None).unwrap().len(), 1);
    }
}
