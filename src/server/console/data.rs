//! What the console pages show that the API documents do not carry as such: the list rows
//! with times and progress (`view::overview`), the plan of a migration (rebuilt from the
//! runbook text and params it started with, as the engine does, for phases, waves, fan-outs,
//! gates and windows) and each runbook's plan with its defaults.

use super::session::Identity;
use crate::event::{EventKind, MigrationState};
use crate::plan;
use crate::runbook::model::Runbook;
use crate::server::auth::Permission;
use crate::server::error::ApiError;
use crate::server::runbooks::Runbooks;
use crate::store::{Migration, Store};
use crate::view;
use chrono::{DateTime, Utc};
use serde_json::{Value as Json, json};

/// Every migration, newest first, as the list page shows it.
pub fn rows(store: &Store) -> Result<Json, ApiError> {
    let mut rows = Vec::new();
    for head in store.list(None)? {
        let steps = store.steps(&head.id)?;
        rows.push(view::overview(&head, &steps));
    }
    Ok(Json::Array(rows))
}

/// The runbook a migration runs (the text it was created with), or why it cannot be read.
pub fn runbook_of(m: &Migration) -> Result<Runbook, String> {
    m.load_runbook().runbook.ok_or_else(|| {
        "its runbook text has errors now (was it created by another version of sensei?)".into()
    })
}

/// The plan a migration runs, as of `now`, or why it cannot be shown.
fn plan_of(
    m: &Migration,
    runbook: &Result<Runbook, String>,
    now: DateTime<Utc>,
) -> Result<plan::Plan, String> {
    let runbook = runbook.as_ref().map_err(Clone::clone)?;
    let params = match &m.params {
        Json::Object(map) => map.clone(),
        _ => Default::default(),
    };
    plan::build(runbook, &m.runbook_text, &params, now).map_err(|e| e.to_string())
}

/// What the migration page embeds: the caller and what they may do, the 12 states in order,
/// and the plan as of `now` (phases, waves, steps, gates, windows; secrets masked as the plan
/// masks them).
pub fn migration(
    m: &Migration,
    who: &Identity,
    runbook: &Result<Runbook, String>,
    now: DateTime<Utc>,
) -> Json {
    let may = |p: Permission| who.caller.roles.iter().any(|r| r.grants(p));
    let (plan, plan_error) = match plan_of(m, runbook, now) {
        Ok(p) => (serde_json::to_value(&p).unwrap_or(Json::Null), None),
        Err(e) => (Json::Null, Some(e)),
    };
    json!({
        "id": m.id,
        "caller": who.caller.name,
        "may": { "operate": may(Permission::Operate), "approve": may(Permission::Approve) },
        "states": MigrationState::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "event_kinds": EventKind::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
        "plan": plan,
        "plan_error": plan_error,
    })
}

/// A runbook file as the runbooks page shows it.
#[derive(Debug)]
pub struct RunbookView {
    pub file: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub valid: bool,
    /// The diagnostics rendered like the CLI's, with their positions.
    pub report: String,
    /// The plan as `sensei plan` prints it, with the params' defaults.
    pub plan: Result<String, String>,
}

/// Every runbook file, valid or not, with its diagnostics and its plan as of `now`.
pub fn runbooks(runbooks: &Runbooks, now: DateTime<Utc>) -> Vec<RunbookView> {
    let listing = runbooks.listing();
    let items = listing.as_array().cloned().unwrap_or_default();
    items
        .iter()
        .map(|item| {
            let name = item["name"].as_str().map(str::to_owned);
            let plan = match name.as_deref().and_then(|n| runbooks.get(n)) {
                Some(active) => default_plan(&active, now),
                None => Err("no valid version of this file is loaded".to_owned()),
            };
            RunbookView {
                file: item["file"].as_str().unwrap_or_default().to_owned(),
                description: item["description"].as_str().map(str::to_owned),
                valid: item["valid"].as_bool().unwrap_or(false),
                report: item["report"].as_str().unwrap_or_default().to_owned(),
                name,
                plan,
            }
        })
        .collect()
}

fn default_plan(
    active: &crate::server::runbooks::Active,
    now: DateTime<Utc>,
) -> Result<String, String> {
    let params = crate::runbook::params::resolve_json(&active.runbook, &Default::default())
        .map_err(|errors| {
            let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
            format!("the plan needs params to be shown: {}", errors.join("; "))
        })?;
    let plan =
        plan::build(&active.runbook, &active.text, &params, now).map_err(|e| e.to_string())?;
    Ok(plan::render::text(&plan))
}
