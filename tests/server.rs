//! `sensei serve` driven over HTTP: migrations from creation to certified, lifecycle
//! operations, gates and self-approval, the live event stream, and runbooks reloaded from
//! the directory. Crashes and restarts are in `server_crash.rs`.

mod harness;

use harness::runbooks::{BLOCK, FLOW};
use harness::{Dir, kinds, wait_for};
use serde_json::Value;

/// Fails until the file `fixed` exists; `setup` has a rollback.
const FLAKY: &str = r#"version: 1
name: flaky
steps:
  - id: setup
    run: echo set > setup.done
    rollback: rm -f setup.done
  - id: fragile
    needs: [setup]
    run: test -f fixed
  - id: verify
    phase: validate
    run: echo ok
"#;

#[test]
fn create_start_approve_runs_to_certified() {
    let dir = Dir::new();
    dir.runbook("flow.yaml", FLOW);
    let s = dir.serve_ops();
    let reply = s
        .post(
            "/v1/migrations",
            r#"{"runbook":"flow","params":{"note":"hi"}}"#,
        )
        .expect(201);
    assert_eq!(reply.json["state"], "created");
    assert_eq!(reply.json["starter"], "ops");
    let id = reply.json["id"].as_str().expect("an id").to_owned();
    let started = s
        .post(&format!("/v1/migrations/{id}/start"), r#"{"comment":"go"}"#)
        .expect(200);
    assert_ne!(started.json["state"], "created", "{}", started.text);
    s.wait_state(&id, "awaiting_approval");
    let status = s.get(&format!("/v1/migrations/{id}/status")).expect(200);
    assert_eq!(status.json["phase"], "approve");
    assert_eq!(status.json["waiting"][0]["step"], "signoff");
    assert_eq!(status.json["progress"]["total"], 4);
    let decided = s
        .call_as(
            Some("alice-token"),
            "POST",
            &format!("/v1/migrations/{id}/gates/signoff/approve"),
            Some(r#"{"comment":"looks good"}"#),
        )
        .expect(200);
    assert_eq!(decided.json["status"], "approved");
    s.wait_state(&id, "certified");

    let events = s.events(&id);
    let request = events
        .iter()
        .find(|e| e["kind"] == "operator_request")
        .expect("audit of start");
    assert_eq!(request["data"]["by"], "ops");
    assert_eq!(request["data"]["op"], "start");
    assert_eq!(request["data"]["comment"], "go");
    assert_eq!(request["data"]["local"], false);
    let decision = events
        .iter()
        .find(|e| e["kind"] == "gate_decided")
        .expect("gate decision");
    assert_eq!(decision["data"]["who"], "alice");
    assert_eq!(decision["data"]["comment"], "looks good");
    assert_eq!(decision["data"]["local"], false);
    let logs = s
        .get(&format!("/v1/migrations/{id}/steps/analyze/logs"))
        .expect(200);
    assert_eq!(logs.json[0]["text"], "analyzing hi");
    let detail = s.get(&format!("/v1/migrations/{id}")).expect(200);
    assert_eq!(detail.json["decisions"][0]["who"], "alice");
    assert_eq!(detail.json["steps"].as_array().map(Vec::len), Some(4));
    let metrics = s.get("/metrics").expect(200).text;
    for line in [
        "sensei_migrations{state=\"certified\"} 1",
        "sensei_gate_wait_seconds_count 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no `{line}` in:\n{metrics}"
        );
    }
    let steps_timed = metrics
        .lines()
        .find_map(|l| l.strip_prefix("sensei_step_duration_seconds_count "))
        .map(|n| {
            n.parse::<u64>()
                .unwrap_or_else(|e| panic!("a count, not {n:?}: {e}"))
        });
    assert!(steps_timed.is_some_and(|n| n >= 3), "{metrics}");
    let listed = s.get("/v1/migrations?state=certified").expect(200);
    assert_eq!(listed.json[0]["id"], id.as_str());
    assert_eq!(
        s.get("/v1/migrations?state=failed").expect(200).json,
        Value::Array(vec![])
    );
}

#[test]
fn the_starter_cannot_approve_their_own_migration() {
    let dir = Dir::new();
    dir.runbook("flow.yaml", FLOW);
    let mut s = dir.serve_ops();
    s.token = Some("root-token");
    let id = s.create(Some("root-token"), "flow", "{}");
    s.post(&format!("/v1/migrations/{id}/start"), "")
        .expect(200);
    s.wait_state(&id, "awaiting_approval");
    let refused = s
        .post(&format!("/v1/migrations/{id}/gates/signoff/approve"), "")
        .problem(403);
    let detail = refused.json["detail"].as_str().expect("a detail");
    assert!(detail.contains("root started migration"), "{detail}");
    // Not an approver of this gate either way: ops has no approver role at all.
    s.call_as(
        Some("ops-token"),
        "POST",
        &format!("/v1/migrations/{id}/gates/signoff/approve"),
        None,
    )
    .problem(403);
    s.call_as(
        Some("bob-token"),
        "POST",
        &format!("/v1/migrations/{id}/gates/signoff/reject"),
        Some(r#"{"comment":"not tonight"}"#),
    )
    .expect(200);
    s.wait_state(&id, "cancelled");
    // A closed gate refuses later decisions.
    s.call_as(
        Some("alice-token"),
        "POST",
        &format!("/v1/migrations/{id}/gates/signoff/approve"),
        None,
    )
    .problem(409);
}

#[test]
fn pause_resume_and_cancel_over_http() {
    let dir = Dir::new();
    dir.runbook("block.yaml", BLOCK);
    let s = dir.serve_ops();
    let id = s.create(Some("ops-token"), "block", "{}");
    s.post(&format!("/v1/migrations/{id}/start"), "")
        .expect(200);
    s.wait_state(&id, "running");
    let paused = s
        .post(&format!("/v1/migrations/{id}/pause"), "")
        .expect(200);
    assert_eq!(paused.json["state"], "paused");
    // Its driver still waits for the held step: resuming now is a conflict, not a second driver.
    let busy = s
        .post(&format!("/v1/migrations/{id}/resume"), "")
        .problem(409);
    assert_eq!(
        busy.json["type"], "urn:sensei:problem:conflict",
        "{}",
        busy.text
    );
    // The held step finishes; nothing new starts while paused.
    std::fs::write(dir.path("runbooks").join("go"), "").expect("go");
    wait_for("the paused driver to rest", || {
        let status = s.get(&format!("/v1/migrations/{id}/status")).expect(200);
        let driver = status.json.get("driver");
        assert!(driver.is_some(), "no driver field: {}", status.text);
        driver.is_some_and(Value::is_null).then_some(())
    });
    // The driver is gone, so nothing more starts by itself: the held step is the last one.
    let detail = s.get(&format!("/v1/migrations/{id}")).expect(200);
    assert_eq!(detail.json["state"], "paused", "{}", detail.text);
    assert_eq!(
        detail.json["steps"][0]["state"], "succeeded",
        "{}",
        detail.text
    );
    assert_eq!(
        detail.json["steps"][1]["state"], "pending",
        "{}",
        detail.text
    );
    let resumed = s
        .post(&format!("/v1/migrations/{id}/resume"), "")
        .expect(200);
    assert_ne!(resumed.json["state"], "paused", "{}", resumed.text);
    s.wait_state(&id, "certified");
    s.post(&format!("/v1/migrations/{id}/resume"), "")
        .problem(409);

    let other = s.create(Some("ops-token"), "block", "{}");
    let cancelled = s
        .call_as(
            Some("ops-token"),
            "DELETE",
            &format!("/v1/migrations/{other}"),
            None,
        )
        .expect(200);
    assert_eq!(cancelled.json["state"], "cancelled");
    let refused = s
        .post(&format!("/v1/migrations/{other}/start"), "")
        .problem(409);
    assert_eq!(refused.json["allowed"], Value::Array(vec![]));
}

#[test]
fn a_failed_migration_rolls_back_then_retries_to_certified() {
    let dir = Dir::new();
    dir.runbook("flaky.yaml", FLAKY);
    let s = dir.serve_ops();
    let id = s.create(Some("ops-token"), "flaky", "{}");
    s.post(&format!("/v1/migrations/{id}/start"), "")
        .expect(200);
    s.wait_state(&id, "failed");
    assert!(dir.path("runbooks/setup.done").exists());
    let rolled = s
        .post(
            &format!("/v1/migrations/{id}/rollback"),
            r#"{"comment":"undo"}"#,
        )
        .expect(200);
    assert_eq!(rolled.json["state"], "failed");
    assert!(!dir.path("runbooks/setup.done").exists());
    std::fs::write(dir.path("runbooks/fixed"), "").expect("fixed");
    s.post(&format!("/v1/migrations/{id}/retry"), "")
        .expect(200);
    s.wait_state(&id, "certified");
    let events = kinds(&s.events(&id));
    assert!(
        events.contains(&"rollback_finished".to_owned()),
        "{events:?}"
    );
}

#[test]
fn the_event_stream_replays_history_then_streams_new_events() {
    let dir = Dir::new();
    dir.runbook("flow.yaml", FLOW);
    let s = dir.serve_ops();
    let id = s.create(Some("ops-token"), "flow", "{}");
    s.post(&format!("/v1/migrations/{id}/start"), "")
        .expect(200);
    s.wait_state(&id, "awaiting_approval");
    let history = s.events(&id);
    let mut stream = s.stream(&id);
    let replayed = stream.until("gate_waiting");
    let ids: Vec<i64> = replayed
        .iter()
        .map(|m| {
            m.id.unwrap_or_else(|| panic!("a message without an id: {m:?}"))
        })
        .collect();
    let expected: Vec<i64> = (1..=ids.len() as i64).collect();
    assert_eq!(ids, expected, "replay from the first event, in order");
    assert_eq!(
        replayed.len(),
        history.len(),
        "the whole history: {replayed:?}"
    );
    assert_eq!(replayed[0].event, "migration_created");
    assert_eq!(replayed[0].data["kind"], "migration_created");
    s.call_as(
        Some("bob-token"),
        "POST",
        &format!("/v1/migrations/{id}/gates/signoff/approve"),
        None,
    )
    .expect(200);
    let live = stream.until("gate_decided");
    assert_eq!(
        live.last().map(|m| m.data["data"]["who"].clone()),
        Some("bob".into())
    );
    let rest = stream.until("state_changed");
    assert!(!rest.is_empty());
    // The stream ends by itself once the migration is certified.
    let mut last = None;
    while let Some(m) = stream.next() {
        last = Some(m);
    }
    assert_eq!(
        last.map(|m| m.data["data"]["to"].clone()),
        Some("certified".into())
    );
    // Resuming after an id sends only what is newer.
    let newer = s
        .get(&format!("/v1/migrations/{id}/events?after=3"))
        .expect(200);
    assert_eq!(newer.json[0]["seq"], 4);
}

#[test]
fn runbooks_reload_and_an_invalid_edit_keeps_the_last_good_version() {
    let dir = Dir::new();
    dir.runbook("flow.yaml", FLOW);
    let s = dir.serve_ops();
    let listed = s.get("/v1/runbooks").expect(200);
    assert_eq!(listed.json["runbooks"][0]["name"], "flow");
    assert_eq!(listed.json["runbooks"][0]["valid"], true);

    dir.runbook(
        "flow.yaml",
        "version: 1\nname: flow\nsteps:\n  - id: x\n    rnu: echo\n",
    );
    let entry = wait_for("the invalid edit to be seen", || {
        let listed = s.get("/v1/runbooks").expect(200);
        let entry = listed.json["runbooks"][0].clone();
        (entry["valid"] == false).then_some(entry)
    });
    assert_eq!(entry["name"], "flow", "the last good version stays active");
    assert!(entry["diagnostics"][0]["message"].is_string(), "{entry}");
    let id = s.create(Some("ops-token"), "flow", "{}");
    assert_eq!(s.state(&id), "created");

    dir.runbook("more.yaml", &FLOW.replace("name: flow", "name: more"));
    wait_for("a new file to be loaded", || {
        let listed = s.get("/v1/runbooks").expect(200);
        let names: Vec<Value> = listed.json["runbooks"]
            .as_array()
            .unwrap_or_else(|| panic!("no runbooks list: {}", listed.text))
            .iter()
            .map(|e| e["name"].clone())
            .collect();
        names.contains(&Value::from("more")).then_some(())
    });
    s.create(Some("ops-token"), "more", "{}");
}

/// A rehearsal shifts the engine's clock; the store stamps creation and updates with one
/// clock all the same, so a migration is never updated before it was created.
#[test]
fn a_shifted_clock_never_puts_an_update_before_the_creation() {
    let dir = Dir::new();
    dir.runbook("flow.yaml", FLOW);
    let s = dir.serve_with_tokens(&[], &[("SENSEI_NOW", "2031-06-07T01:00:00Z")]);
    let id = s.create(Some("ops-token"), "flow", "{}");
    s.post(&format!("/v1/migrations/{id}/start"), "{}")
        .expect(200);
    wait_for("the gate", || {
        (s.state(&id) == "awaiting_approval").then_some(())
    });
    let doc = s.get(&format!("/v1/migrations/{id}")).expect(200).json;
    let time = |key: &str| {
        let text = doc[key]
            .as_str()
            .unwrap_or_else(|| panic!("no {key}: {doc}"));
        chrono::DateTime::parse_from_rfc3339(text).unwrap_or_else(|e| panic!("{key}: {e}"))
    };
    assert!(time("created_at") <= time("updated_at"), "{doc}");
}
