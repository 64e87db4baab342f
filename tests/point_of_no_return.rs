//! A point of no return (issue 15, item 5): once it has succeeded, a rollback — automatic or
//! asked for — undoes only the steps after it; only `--past-point-of-no-return` crosses it,
//! and through a server only an admin may ask for that. `plan` shows it.

mod harness;
mod support;

use support::Sandbox;

/// Each step leaves a line in `ledger`, and so does each undo; `verify` fails until `fixed`
/// exists, and the runbook rolls back on failure.
const CUTOVER: &str = r#"
version: 1
name: cutover
on_failure: rollback
steps:
  - id: schema
    run: echo schema >> ledger
    rollback: echo undo-schema >> ledger
  - id: copy
    needs: [schema]
    run: echo copy >> ledger
    rollback: echo undo-copy >> ledger
  - id: cutover
    needs: [copy]
    point_of_no_return: true
    run: echo cutover >> ledger
    rollback: echo undo-cutover >> ledger
  - id: switch
    needs: [cutover]
    run: echo switch >> ledger
    rollback: echo undo-switch >> ledger
  - id: verify
    phase: validate
    run: test -e fixed
"#;

fn reason_of_last_state(sb: &Sandbox, id: &str) -> String {
    sb.events(id)
        .iter()
        .rev()
        .find(|e| e["kind"] == "state_changed")
        .map(|e| e["data"]["reason"].as_str().unwrap_or_default().to_owned())
        .unwrap_or_default()
}

#[test]
fn a_rollback_stops_at_a_point_of_no_return_until_asked_to_cross_it() {
    let sb = Sandbox::new();
    sb.write("cutover.yaml", CUTOVER);
    let plan = sb.sensei(&["plan", "cutover.yaml"]).ok();
    assert!(
        plan.stdout.contains("cutover (POINT OF NO RETURN"),
        "{}",
        plan.stdout
    );

    // The automatic rollback undoes only what came after the cutover.
    let run = sb.sensei(&["run", "cutover.yaml"]);
    assert_eq!(run.code, 1, "{run:?}");
    let id = run.id();
    assert_eq!(sb.state(&id), "failed");
    assert_eq!(
        sb.lines("ledger"),
        ["schema", "copy", "cutover", "switch", "undo-switch"]
    );
    let started: Vec<_> = sb
        .events(&id)
        .into_iter()
        .filter(|e| e["kind"] == "rollback_started")
        .collect();
    assert_eq!(started[0]["data"]["steps"], serde_json::json!(["switch"]));
    assert_eq!(
        started[0]["data"]["kept"],
        serde_json::json!(["cutover", "copy", "schema"])
    );
    let reason = reason_of_last_state(&sb, &id);
    assert!(
        reason.contains("stopped at the point of no return cutover: 3 steps kept"),
        "{reason}"
    );
    assert_eq!(sb.step(&id, "cutover")["state"], "succeeded");

    // Asked for, it still does not cross it.
    let again = sb.sensei(&["rollback", &id]);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(
        again
            .stdout
            .contains("kept, before a point of no return that succeeded: cutover, copy, schema"),
        "{}",
        again.stdout
    );
    assert_eq!(sb.lines("ledger").len(), 5, "nothing more was undone");

    // Crossing it is explicit, and undoes the rest, dependents first.
    let past = sb.sensei(&["rollback", &id, "--past-point-of-no-return"]);
    assert_eq!(past.code, 0, "{past:?}");
    assert_eq!(
        sb.lines("ledger")[5..],
        ["undo-cutover", "undo-copy", "undo-schema"]
    );
    let last = sb
        .events(&id)
        .into_iter()
        .rev()
        .find(|e| e["kind"] == "rollback_started")
        .expect("rollback_started");
    assert_eq!(last["data"]["past_point_of_no_return"], true);
    let requests: Vec<_> = sb
        .events(&id)
        .into_iter()
        .filter(|e| e["kind"] == "operator_request")
        .map(|e| e["data"]["past_point_of_no_return"].clone())
        .collect();
    assert_eq!(
        requests,
        [serde_json::Value::Null, serde_json::Value::Bool(true)]
    );
}

#[test]
fn before_its_point_of_no_return_succeeds_a_rollback_undoes_everything() {
    let sb = Sandbox::new();
    sb.write(
        "early.yaml",
        &CUTOVER.replace("run: echo cutover >> ledger", "run: exit 1"),
    );
    let run = sb.sensei(&["run", "early.yaml"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        sb.lines("ledger"),
        ["schema", "copy", "undo-copy", "undo-schema"]
    );
}

#[test]
fn through_a_server_only_an_admin_crosses_a_point_of_no_return() {
    let dir = harness::Dir::new();
    dir.runbook("cutover.yaml", CUTOVER);
    let server = dir.serve_ops();
    let id = server.create(Some("ops-token"), "cutover", "{}");
    server.post(&format!("/v1/migrations/{id}/start"), "{}");
    server.wait_state(&id, "failed");

    let path = format!("/v1/migrations/{id}/rollback");
    let body = r#"{"past_point_of_no_return": true}"#;
    let refused = server
        .call_as(Some("ops-token"), "POST", &path, Some(body))
        .problem(403);
    assert!(refused.text.contains("admin"), "{}", refused.text);
    let misplaced = server
        .call_as(
            Some("ops-token"),
            "POST",
            &format!("/v1/migrations/{id}/pause"),
            Some(body),
        )
        .problem(400);
    assert!(
        misplaced.text.contains("past_point_of_no_return"),
        "{}",
        misplaced.text
    );
    server
        .call_as(Some("root-token"), "POST", &path, Some(body))
        .expect(200);
    let ledger =
        || std::fs::read_to_string(dir.path("runbooks").join("ledger")).unwrap_or_default();
    harness::wait_for("the rollback past the point of no return", || {
        ledger().contains("undo-schema").then_some(())
    });
    assert!(ledger().contains("undo-cutover"), "{}", ledger());
}

/// The gate before a point of no return may ask more than the others: two approvals, from
/// tokens holding the `admin` role.
const GUARDED: &str = r#"
version: 1
name: guarded
steps:
  - id: copy
    run: "true"
  - id: final-signoff
    needs: [copy]
    phase: execute
    gate: { required: 1, roles: [admin] }
  - id: cutover
    needs: [final-signoff]
    point_of_no_return: true
    run: "true"
"#;

#[test]
fn a_gate_may_ask_its_deciders_for_a_role() {
    let sb = Sandbox::new();
    sb.write("guarded.yaml", GUARDED);
    let plan = sb.sensei(&["plan", "guarded.yaml"]).ok();
    assert!(
        plan.stdout
            .contains("1 of anyone but the starter holding admin"),
        "{}",
        plan.stdout
    );

    let dir = harness::Dir::new();
    dir.runbook("guarded.yaml", GUARDED);
    let server = dir.serve_ops();
    let id = server.create(Some("ops-token"), "guarded", "{}");
    let started = server.post(&format!("/v1/migrations/{id}/start"), "{}");
    assert!(started.status < 300, "{}", started.text);
    harness::wait_for("the gate to wait", || {
        let doc = server.get(&format!("/v1/migrations/{id}/status")).json;
        let waiting = doc["waiting"].as_array()?;
        waiting
            .iter()
            .any(|w| w["step"] == "final-signoff")
            .then_some(())
    });
    let approve = format!("/v1/migrations/{id}/gates/final-signoff/approve");
    let refused = server
        .call_as(Some("alice-token"), "POST", &approve, Some("{}"))
        .problem(403);
    assert!(
        refused
            .text
            .contains("it takes a token with the role admin, and alice's has approver"),
        "{}",
        refused.text
    );
    server
        .call_as(Some("root-token"), "POST", &approve, Some("{}"))
        .expect(200);
    server.wait_state(&id, "certified");
}
