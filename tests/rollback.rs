//! Rollback in the lifecycle (issue "Trust", items 8–10): a long rollback runs once, with its
//! driver's lease renewed meanwhile; a rollback voids the gate decisions made before it; and
//! `cancel --rollback` undoes what succeeded before cancelling, while a plain cancel says
//! what stays changed.

mod harness;
mod support;

use std::time::{Duration, Instant};
use support::{Sandbox, wait_for};

/// The lease row's expiry, read straight from the store.
fn lease_expiry(sb: &Sandbox, id: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let conn = rusqlite::Connection::open_with_flags(
        sb.path(".sensei/sensei.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open the store");
    let text: Option<String> = conn
        .query_row(
            "SELECT expires_at FROM leases WHERE migration = ?1",
            [id],
            |r| r.get(0),
        )
        .ok();
    text.map(|t| {
        chrono::DateTime::parse_from_rfc3339(&t)
            .expect("a stored time")
            .with_timezone(&chrono::Utc)
    })
}

#[test]
fn a_long_rollback_keeps_its_lease_and_runs_once() {
    let sb = Sandbox::new();
    sb.write(
        "undo.yaml",
        r#"
version: 1
name: undo
on_failure: rollback
steps:
  - id: change
    run: echo changed >> trace
    rollback: "echo undo-start >> undo; while [ ! -e undo-go ]; do sleep 0.02; done; echo undo-end >> undo"
  - id: break
    needs: [change]
    run: exit 1
"#,
    );
    let ttl = [("SENSEI_TEST_LEASE_TTL_MS", "300")];
    let bg = sb.spawn_with_env(&["run", "undo.yaml"], &ttl);
    let id = bg.id();
    wait_for("the undo to start", || {
        (sb.lines("undo") == ["undo-start"]).then_some(())
    });
    // Several lease times pass while the undo runs: the lease is renewed all along.
    let until = Instant::now() + Duration::from_millis(1200);
    while Instant::now() < until {
        let expiry = lease_expiry(&sb, &id).expect("the driver holds a lease");
        assert!(
            expiry > chrono::Utc::now() - chrono::Duration::milliseconds(100),
            "the lease lapsed during the rollback (expired {expiry})"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Nobody else may take the migration over meanwhile.
    let resume = sb
        .command(&["resume", &id])
        .envs(ttl)
        .output()
        .expect("resume");
    assert_eq!(resume.status.code(), Some(3), "{resume:?}");
    let stderr = String::from_utf8_lossy(&resume.stderr);
    assert!(stderr.contains("is being driven by process"), "{stderr}");
    sb.write("undo-go", "");
    let run = bg.finish();
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(sb.state(&id), "failed");
    assert_eq!(
        sb.lines("undo"),
        ["undo-start", "undo-end"],
        "the undo ran once"
    );
    let events = sb.events(&id);
    let finished = events
        .iter()
        .find(|e| e["kind"] == "rollback_finished")
        .expect("rollback_finished");
    assert_eq!(finished["data"]["ok"], true);
    assert_eq!(finished["data"]["rolled_back"], 1);
}

const SIGNED: &str = r#"
version: 1
name: signed
on_failure: rollback
steps:
  - id: signoff
    gate: { approvers: [alice] }
  - id: change
    run: echo changed >> trace
    rollback: echo undone >> trace
  - id: check
    needs: [change]
    run: test -e fixed
"#;

#[test]
fn a_rollback_voids_the_approvals_before_it() {
    let sb = Sandbox::new();
    sb.write("signed.yaml", SIGNED);
    let bg = sb.spawn(&["run", "signed.yaml"]);
    let id = bg.id();
    wait_for("the gate to wait", || {
        (sb.state(&id) == "awaiting_approval").then_some(())
    });
    sb.sensei(&["approve", &id, "signoff", "--as", "alice"])
        .ok();
    let run = bg.finish();
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(sb.state(&id), "failed");
    assert_eq!(sb.lines("trace"), ["changed", "undone"]);

    // The retry waits at the gate again: what alice signed off was undone.
    sb.write("fixed", "");
    let retry = sb.spawn(&["retry", &id]);
    wait_for("the gate to wait again", || {
        (sb.state(&id) == "awaiting_approval").then_some(())
    });
    assert_eq!(sb.step(&id, "signoff")["state"], "waiting");
    assert_eq!(
        sb.lines("trace"),
        ["changed", "undone"],
        "nothing ran past the gate"
    );
    // The starter still cannot approve it.
    let own = sb.sensei(&["approve", &id, "signoff"]);
    assert_eq!(own.code, 3, "{own:?}");
    sb.sensei(&["approve", &id, "signoff", "--as", "alice"])
        .ok();
    let run = retry.finish();
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(sb.lines("trace"), ["changed", "undone", "changed"]);
    // The audit trail: after the retry, alice's new decision approved it, not the starter.
    let events = sb.events(&id);
    let retried = events
        .iter()
        .rposition(|e| e["kind"] == "state_changed" && e["data"]["to"] == "analyzing")
        .expect("the retry");
    let reason = events[retried]["data"]["reason"]
        .as_str()
        .expect("a reason");
    assert!(reason.contains("voided earlier approvals"), "{reason}");
    let decided: Vec<&serde_json::Value> = events[retried..]
        .iter()
        .filter(|e| e["kind"] == "gate_decided")
        .collect();
    assert_eq!(decided.len(), 1, "{decided:?}");
    assert_eq!(decided[0]["data"]["who"], "alice");
}

const PAUSING: &str = r#"
version: 1
name: pausing
on_failure: pause
steps:
  - id: change
    run: echo changed >> trace
    rollback: echo undone >> trace
  - id: read-only
    phase: analyze
    run: echo looked >> trace
  - id: check
    needs: [change]
    run: test -e fixed
"#;

#[test]
fn cancel_with_rollback_undoes_what_succeeded_then_cancels() {
    let sb = Sandbox::new();
    sb.write("pausing.yaml", PAUSING);
    let run = sb.sensei(&["run", "pausing.yaml"]);
    assert_eq!(run.code, 1, "{run:?}");
    let id = run.id();
    assert_eq!(sb.state(&id), "paused");
    let cancel = sb.sensei(&["cancel", "--rollback", &id]);
    assert_eq!(cancel.code, 0, "{cancel:?}");
    assert!(
        cancel
            .stdout
            .contains("cancelled — rolled back first (1 step undone)"),
        "{cancel:?}"
    );
    assert_eq!(sb.state(&id), "cancelled");
    assert_eq!(sb.lines("trace"), ["looked", "changed", "undone"]);
    assert_eq!(sb.step(&id, "change")["state"], "rolled_back");
    // Within the lifecycle: paused -> cancelled, the rollback in between.
    let states = sb.states(&id);
    assert_eq!(
        states[states.len() - 2..],
        ["paused", "cancelled"],
        "{states:?}"
    );
    let events = sb.events(&id);
    let started = events
        .iter()
        .find(|e| e["kind"] == "rollback_started")
        .expect("rollback_started");
    assert_eq!(started["data"]["then"], "cancel");
}

#[test]
fn a_plain_cancel_says_what_stays_changed() {
    let sb = Sandbox::new();
    sb.write("pausing.yaml", PAUSING);
    let run = sb.sensei(&["run", "pausing.yaml"]);
    let id = run.id();
    let cancel = sb.sensei(&["cancel", &id]);
    assert_eq!(cancel.code, 0, "{cancel:?}");
    assert!(
        cancel
            .stdout
            .contains("cancelled — not rolled back: what change changed stays changed"),
        "{cancel:?}"
    );
    assert_eq!(sb.lines("trace"), ["looked", "changed"]);
    let events = sb.events(&id);
    let cancelled = events
        .iter()
        .rfind(|e| e["kind"] == "state_changed" && e["data"]["to"] == "cancelled")
        .expect("cancelled");
    assert_eq!(
        cancelled["data"]["kept_changes"],
        serde_json::json!(["change"])
    );
}

#[test]
fn cancel_with_rollback_reaches_a_migration_another_process_drives() {
    let sb = Sandbox::new();
    sb.write(
        "driven.yaml",
        r#"
version: 1
name: driven
steps:
  - id: change
    run: echo changed >> trace
    rollback: echo undone >> trace
  - id: long
    needs: [change]
    run: "touch long; while [ ! -e go ]; do sleep 0.02; done"
"#,
    );
    let bg = sb.spawn(&["run", "driven.yaml"]);
    let id = bg.id();
    wait_for("the long step", || sb.path("long").exists().then_some(()));
    let cancel = sb.sensei(&["cancel", "--rollback", &id]);
    assert_eq!(cancel.code, 0, "{cancel:?}");
    let run = bg.finish();
    assert!(run.stdout.contains("cancelled"), "{run:?}");
    assert_eq!(sb.state(&id), "cancelled");
    assert_eq!(sb.lines("trace"), ["changed", "undone"]);
    assert_eq!(sb.step(&id, "long")["state"], "cancelled");
}

#[test]
fn the_api_cancels_with_rollback_and_refuses_rollback_elsewhere() {
    let dir = harness::Dir::new();
    dir.runbook("pausing.yaml", PAUSING);
    let s = dir.serve_ops();
    let id = s.create(Some("ops-token"), "pausing", "{}");
    s.post(&format!("/v1/migrations/{id}/start"), "")
        .expect(200);
    s.wait_state(&id, "paused");
    let refused = s
        .post(
            &format!("/v1/migrations/{id}/pause"),
            r#"{"rollback": true}"#,
        )
        .problem(400);
    assert!(refused.text.contains("only for cancel"), "{}", refused.text);
    let cancelled = s
        .call_as(
            Some("ops-token"),
            "DELETE",
            &format!("/v1/migrations/{id}"),
            Some(r#"{"rollback": true, "comment": "undo it"}"#),
        )
        .expect(200);
    assert_eq!(cancelled.json["state"], "cancelled");
    let trace = std::fs::read_to_string(dir.path("runbooks/trace")).expect("trace");
    assert_eq!(
        trace.lines().collect::<Vec<_>>(),
        ["looked", "changed", "undone"]
    );
}
