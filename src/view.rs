//! JSON views of migrations, built in one place so that `sensei status|list --format json`
//! and the REST API show the same documents: a list item, and the status (state, phase,
//! progress, waiting reasons, steps, estimated times to finish), and alert deliveries. Secret
//! params appear only masked.

use crate::engine::lifecycle::phase_of_state;
use crate::eta::Estimate;
use crate::event::StepState;
use crate::store::{LeaseHolder, Migration, MigrationHead, StepRow};
use serde_json::{Value as Json, json};

/// A migration in a list: who, what, where it stands.
pub fn summary(m: &MigrationHead) -> Json {
    json!({
        "id": m.id,
        "runbook": m.runbook,
        "state": m.state,
        "starter": m.starter,
        "created_at": m.created_at,
        "updated_at": m.updated_at,
    })
}

/// Steps done (succeeded or skipped: what lets their dependents run) and in all. A failed,
/// cancelled or rolled-back step is not done; [`by_state`] says what became of the others.
pub fn progress(steps: &[StepRow]) -> (usize, usize) {
    let done = steps
        .iter()
        .filter(|s| s.state.lets_dependents_run())
        .count();
    (done, steps.len())
}

/// How many steps are in each state, in the order of [`StepState::ALL`] (states no step is
/// in are left out).
pub fn by_state(steps: &[StepRow]) -> Vec<(StepState, usize)> {
    StepState::ALL
        .iter()
        .map(|&state| (state, steps.iter().filter(|s| s.state == state).count()))
        .filter(|&(_, n)| n > 0)
        .collect()
}

/// A step row with its id also as `id` (SPEC §5 names it so; `step` stays for scripts).
pub fn step(row: &StepRow) -> Json {
    let mut value = serde_json::to_value(row).unwrap_or_default();
    if let Some(obj) = value.as_object_mut() {
        obj.insert("id".into(), Json::String(row.step.clone()));
    }
    value
}

/// Why steps wait, or wait for an operator: waiting steps with their reason, and steps a
/// crash interrupted.
pub fn waiting(steps: &[StepRow]) -> Vec<Json> {
    steps
        .iter()
        .filter(|s| matches!(s.state, StepState::Waiting | StepState::Interrupted))
        .map(|s| json!({ "step": s.step, "state": s.state, "reason": s.reason }))
        .collect()
}

/// A step row as [`step`] shows it, with its estimated time to finish while it runs (`eta`).
pub fn step_estimated(row: &StepRow, eta: &Estimate) -> Json {
    let mut value = step(row);
    if let (Some(obj), Some(eta)) = (value.as_object_mut(), eta.step(&row.step)) {
        obj.insert("eta".into(), eta.to_json());
    }
    value
}

/// The status document: the migration, its phase and progress, who drives it, why it
/// waits, when it is expected to finish, and every step.
pub fn status(
    m: &Migration,
    steps: &[StepRow],
    driver: Option<&LeaseHolder>,
    eta: &Estimate,
) -> Json {
    let (done, total) = progress(steps);
    json!({
        "id": m.id,
        "runbook": m.runbook,
        "state": m.state,
        "phase": phase_of_state(m.state).map(|p| p.as_str()),
        "digest": m.digest,
        "starter": m.starter,
        "params": m.masked_params,
        "created_at": m.created_at,
        "updated_at": m.updated_at,
        "progress": {
            "done": done,
            "total": total,
            "by_state": by_state(steps)
                .into_iter()
                .map(|(state, n)| (state.as_str().to_owned(), json!(n)))
                .collect::<serde_json::Map<String, Json>>(),
        },
        "eta": eta.migration.to_json(),
        "driver": driver.map(|d| json!({ "pid": d.pid, "host": d.host, "since": d.since })),
        "waiting": waiting(steps),
        "steps": steps.iter().map(|s| step_estimated(s, eta)).collect::<Vec<_>>(),
    })
}

/// An alert delivery with its event id and its attempt log (`sensei alerts --format json`
/// and `GET /v1/alerts`).
pub fn delivery(d: &crate::store::Delivery, attempts: &[crate::store::DeliveryAttempt]) -> Json {
    let mut item = serde_json::to_value(d).unwrap_or_default();
    if let Some(obj) = item.as_object_mut() {
        obj.insert(
            "event_id".into(),
            json!(format!("{}:{}", d.migration, d.event_seq)),
        );
        obj.insert("attempt_log".into(), json!(attempts));
    }
    item
}

/// A migration in the console's list: the summary, when its steps first started and when it
/// ended (certified or cancelled), and its progress.
pub fn overview(m: &MigrationHead, steps: &[StepRow]) -> Json {
    let (done, total) = progress(steps);
    let started_at = steps.iter().filter_map(|s| s.started_at).min();
    let ended_at = m.state.is_terminal().then_some(m.updated_at);
    let mut item = summary(m);
    if let Some(obj) = item.as_object_mut() {
        obj.insert("started_at".into(), json!(started_at));
        obj.insert("ended_at".into(), json!(ended_at));
        obj.insert("progress".into(), json!({ "done": done, "total": total }));
    }
    item
}
