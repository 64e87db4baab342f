//! Gates against the real binary: timeouts with each `on_timeout`, a gate anyone but the
//! starter may approve, decisions on gates that are not waiting or do not exist, the race of a
//! timeout and a human decision, and a gate in the execute phase.

mod support;

use serde_json::Value;
use support::{Sandbox, wait_for};

/// A gate in the approve phase, then one execute step.
fn gated(gate: &str) -> String {
    format!(
        r#"version: 1
name: gated
steps:
  - id: signoff
    gate: {gate}
  - id: cutover
    run: touch cutover.ran
"#
    )
}

/// The `gate_decided` events of a migration whose gate opened (so an empty list means no
/// decision, not an empty history).
fn decisions(sb: &Sandbox, id: &str) -> Vec<Value> {
    let events = sb.events(id);
    assert!(
        events.iter().any(|e| e["kind"] == "gate_waiting"),
        "the gate of {id} never opened: {events:?}"
    );
    events
        .into_iter()
        .filter(|e| e["kind"] == "gate_decided")
        .collect()
}

fn wait_for_gate(sb: &Sandbox, id: &str, gate: &str) {
    wait_for("the gate to wait", || {
        (sb.step(id, gate)["state"] == "waiting").then_some(())
    });
}

#[test]
fn on_timeout_fail_ends_the_migration_cancelled() {
    let sb = Sandbox::new();
    let file = sb.write(
        "g.yaml",
        &gated("{ approvers: [alice], timeout: 200ms, on_timeout: fail }"),
    );
    let run = sb.sensei(&["run", file.to_str().expect("utf-8")]);
    assert_eq!(run.code, 1, "{run:?}");
    let id = run.id();
    assert_eq!(sb.state(&id), "cancelled");
    let states = sb.states(&id);
    assert_eq!(
        states[states.len() - 2..],
        ["awaiting_approval", "cancelled"],
        "awaiting_approval cannot become failed (SPEC §3)"
    );
    let gate = sb.step(&id, "signoff");
    assert_eq!(gate["state"], "failed");
    assert_eq!(gate["error"], "timed out without a decision");
    assert_eq!(sb.step(&id, "cutover")["state"], "cancelled");
    let decided = decisions(&sb, &id);
    assert_eq!(decided.len(), 1, "{decided:?}");
    assert_eq!(decided[0]["data"]["who"], "timeout");
    assert_eq!(decided[0]["data"]["status"], "timed_out");
    assert!(!sb.path("cutover.ran").exists());
}

#[test]
fn on_timeout_cancel_cancels_the_migration_by_timeout() {
    let sb = Sandbox::new();
    let file = sb.write(
        "g.yaml",
        &gated("{ approvers: [alice], timeout: 200ms, on_timeout: cancel }"),
    );
    let run = sb.sensei(&["run", file.to_str().expect("utf-8")]);
    assert_eq!(run.code, 1, "{run:?}");
    let id = run.id();
    assert_eq!(sb.state(&id), "cancelled");
    let last = sb
        .events(&id)
        .into_iter()
        .rfind(|e| e["kind"] == "state_changed")
        .expect("a state change");
    assert_eq!(last["data"]["from"], "awaiting_approval");
    assert_eq!(last["data"]["to"], "cancelled");
    assert_eq!(last["data"]["by"], "timeout", "{last}");
    let decided = decisions(&sb, &id);
    assert_eq!(decided.len(), 1, "{decided:?}");
    assert_eq!(decided[0]["data"]["who"], "timeout");
    assert_eq!(sb.step(&id, "signoff")["state"], "cancelled");
    assert_eq!(sb.step(&id, "cutover")["state"], "cancelled");
    assert!(!sb.path("cutover.ran").exists());
}

#[test]
fn on_timeout_approve_proceeds_to_certified_decided_by_timeout() {
    let sb = Sandbox::new();
    let file = sb.write(
        "g.yaml",
        &gated("{ approvers: [alice], timeout: 200ms, on_timeout: approve }"),
    );
    let run = sb.sensei(&["run", file.to_str().expect("utf-8")]).ok();
    let id = run.id();
    assert_eq!(sb.state(&id), "certified");
    assert!(sb.path("cutover.ran").exists());
    assert_eq!(sb.step(&id, "signoff")["state"], "succeeded");
    let decided = decisions(&sb, &id);
    assert_eq!(decided.len(), 1, "{decided:?}");
    assert_eq!(decided[0]["data"]["who"], "timeout");
    assert_eq!(decided[0]["data"]["status"], "approved");
    assert!(
        run.stdout
            .contains("gate signoff timed out without a decision; on_timeout: approve"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_gate_without_an_approver_list_may_be_approved_by_anyone_but_the_starter() {
    let sb = Sandbox::new();
    let file = sb.write("g.yaml", &gated("{ required: 1 }"));
    let bg = sb.spawn(&["run", file.to_str().expect("utf-8")]);
    let id = bg.id();
    wait_for_gate(&sb, &id, "signoff");
    assert!(
        bg.stdout().contains("from anyone but starter"),
        "{}",
        bg.stdout()
    );
    let own = sb.sensei(&["approve", &id, "signoff"]);
    assert_eq!(own.code, 3, "{own:?}");
    assert!(
        own.stderr.contains("starter started migration") && own.stderr.contains("ask someone else"),
        "{}",
        own.stderr
    );
    sb.sensei(&["approve", &id, "signoff", "--as", "mallory"])
        .ok();
    let run = bg.finish();
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(sb.state(&id), "certified");
    let decided = decisions(&sb, &id);
    assert_eq!(decided.len(), 1);
    assert_eq!(decided[0]["data"]["who"], "mallory");
    assert_eq!(decided[0]["data"]["status"], "approved");
}

#[test]
fn a_gate_that_is_not_waiting_is_refused_with_a_clear_message() {
    let sb = Sandbox::new();
    let file = sb.write(
        "g.yaml",
        r#"version: 1
name: later
steps:
  - id: prepare
    phase: plan
    run: "while [ ! -e go ]; do sleep 0.02; done"
  - id: signoff
    gate: { approvers: [alice] }
  - id: cutover
    run: touch cutover.ran
"#,
    );
    let bg = sb.spawn(&["run", file.to_str().expect("utf-8")]);
    let id = bg.id();
    wait_for("the plan step to run", || {
        (sb.step(&id, "prepare")["state"] == "running").then_some(())
    });
    // Not reached yet.
    let early = sb.sensei(&["approve", &id, "signoff", "--as", "alice"]);
    assert_eq!(early.code, 3, "{early:?}");
    assert!(
        early.stderr.contains("gate `signoff`") && early.stderr.contains("not waiting"),
        "{}",
        early.stderr
    );
    assert!(!early.stderr.contains("panicked"), "{}", early.stderr);
    sb.write("go", "");
    wait_for_gate(&sb, &id, "signoff");
    sb.sensei(&["approve", &id, "signoff", "--as", "alice"])
        .ok();
    assert_eq!(bg.finish().code, 0);
    // Already decided.
    for (verb, who) in [("approve", "bob"), ("reject", "alice")] {
        let late = sb.sensei(&[verb, &id, "signoff", "--as", who]);
        assert_eq!(late.code, 3, "{late:?}");
        assert!(
            late.stderr
                .contains("gate `signoff` is not waiting for a decision")
                && late.stderr.contains("approved"),
            "{}",
            late.stderr
        );
    }
    assert_eq!(decisions(&sb, &id).len(), 1);
}

#[test]
fn deciding_something_that_is_not_a_gate_is_a_usage_error() {
    let sb = Sandbox::new();
    let file = sb.write("g.yaml", &gated("{ approvers: [alice] }"));
    let bg = sb.spawn(&["run", file.to_str().expect("utf-8")]);
    let id = bg.id();
    wait_for_gate(&sb, &id, "signoff");
    let unknown = sb.sensei(&["approve", &id, "sign-off", "--as", "alice"]);
    assert_eq!(unknown.code, 2, "{unknown:?}");
    assert!(
        unknown.stderr.contains("has no step `sign-off`"),
        "{}",
        unknown.stderr
    );
    let not_a_gate = sb.sensei(&["approve", &id, "cutover", "--as", "alice"]);
    assert_eq!(not_a_gate.code, 2, "{not_a_gate:?}");
    assert!(
        not_a_gate.stderr.contains("step `cutover`") && not_a_gate.stderr.contains("is not a gate"),
        "{}",
        not_a_gate.stderr
    );
    // Nothing was recorded; the real gate still decides.
    assert!(decisions(&sb, &id).is_empty());
    sb.sensei(&["approve", &id, "signoff", "--as", "alice"])
        .ok();
    assert_eq!(bg.finish().code, 0);
}

#[test]
fn a_timeout_and_a_human_decision_at_the_deadline_resolve_to_exactly_one() {
    let (mut approved, mut timed_out) = (0, 0);
    for round in 0..20 {
        let sb = Sandbox::new();
        let file = sb.write(
            "g.yaml",
            &gated("{ approvers: [alice], timeout: 300ms, on_timeout: fail }"),
        );
        let bg = sb.spawn(&["run", file.to_str().expect("utf-8")]);
        let id = bg.id();
        let deadline = wait_for("the gate's deadline", || {
            sb.events(&id)
                .into_iter()
                .find(|e| e["kind"] == "gate_waiting")
                .and_then(|e| e["data"]["deadline"].as_str().map(str::to_owned))
        });
        let deadline = chrono::DateTime::parse_from_rfc3339(&deadline)
            .unwrap_or_else(|e| panic!("deadline {deadline}: {e}"))
            .with_timezone(&chrono::Utc);
        // Aim the approval from 100ms before to 90ms after the deadline (the driver notices
        // a deadline within its 100ms poll). Aiming is not synchronisation: either side may
        // win, and the assertions hold for both.
        let aim = deadline + chrono::Duration::milliseconds(-100 + 10 * round);
        // A negative wait (the aim already passed) is no wait.
        if let Ok(wait) = (aim - chrono::Utc::now()).to_std() {
            std::thread::sleep(wait);
        }
        let approve = sb.sensei(&["approve", &id, "signoff", "--as", "alice"]);
        let run = bg.finish();
        let decided = decisions(&sb, &id);
        let closing: Vec<&Value> = decided
            .iter()
            .filter(|e| e["data"]["status"] != "open")
            .collect();
        assert_eq!(
            closing.len(),
            1,
            "round {round}: exactly one decision closes the gate: {decided:?}"
        );
        assert_eq!(decided.len(), 1, "round {round}: {decided:?}");
        match closing[0]["data"]["status"].as_str() {
            Some("approved") => {
                approved += 1;
                assert_eq!(approve.code, 0, "round {round}: {approve:?}");
                assert_eq!(closing[0]["data"]["who"], "alice");
                assert_eq!(run.code, 0, "round {round}: {run:?}");
                assert_eq!(sb.state(&id), "certified", "round {round}");
                assert!(sb.path("cutover.ran").exists());
            }
            Some("timed_out") => {
                timed_out += 1;
                assert_eq!(approve.code, 3, "round {round}: {approve:?}");
                assert!(
                    approve.stderr.contains("timed out"),
                    "round {round}: {}",
                    approve.stderr
                );
                assert_eq!(closing[0]["data"]["who"], "timeout");
                assert_eq!(run.code, 1, "round {round}: {run:?}");
                assert_eq!(sb.state(&id), "cancelled", "round {round}");
                assert!(!sb.path("cutover.ran").exists());
            }
            other => panic!("round {round}: unexpected gate status {other:?}"),
        }
    }
    eprintln!("race: {approved} approved, {timed_out} timed out");
}

#[test]
fn a_gate_in_the_execute_phase_rejected_fails_the_migration() {
    let sb = Sandbox::new();
    let file = sb.write(
        "g.yaml",
        r#"version: 1
name: execute-gate
on_failure: fail
steps:
  - id: copy
    run: echo copy >> trace
  - id: go-live
    phase: execute
    needs: [copy]
    gate: { approvers: [alice, bob] }
  - id: switch
    needs: [go-live]
    run: echo switch >> trace
"#,
    );
    let bg = sb.spawn(&["run", file.to_str().expect("utf-8")]);
    let id = bg.id();
    wait_for_gate(&sb, &id, "go-live");
    assert_eq!(sb.state(&id), "running");
    sb.sensei(&["reject", &id, "go-live", "--as", "bob", "-m", "not today"])
        .ok();
    let run = bg.finish();
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(sb.state(&id), "failed");
    let states = sb.states(&id);
    assert_eq!(states[states.len() - 2..], ["running", "failed"]);
    let gate = sb.step(&id, "go-live");
    assert_eq!(gate["state"], "failed");
    assert_eq!(gate["error"], "rejected by bob: not today");
    assert_eq!(sb.read("trace"), "copy\n");
    let decided = decisions(&sb, &id);
    assert_eq!(decided.len(), 1);
    assert_eq!(decided[0]["data"]["who"], "bob");
    assert_eq!(decided[0]["data"]["comment"], "not today");
    assert_eq!(decided[0]["data"]["status"], "rejected");
}

#[test]
fn a_rejection_closes_the_other_gates_of_the_ended_migration() {
    let sb = Sandbox::new();
    let file = sb.write(
        "g.yaml",
        r#"version: 1
name: two-gates
steps:
  - id: dba
    gate: { approvers: [alice] }
  - id: security
    gate: { approvers: [bob] }
  - id: cutover
    run: touch cutover.ran
"#,
    );
    let bg = sb.spawn(&["run", file.to_str().expect("utf-8")]);
    let id = bg.id();
    wait_for_gate(&sb, &id, "dba");
    wait_for_gate(&sb, &id, "security");
    sb.sensei(&["reject", &id, "dba", "--as", "alice"]).ok();
    assert_eq!(bg.finish().code, 1);
    assert_eq!(sb.state(&id), "cancelled");
    // The other gate no longer waits: nobody can approve a cancelled migration's gate.
    let late = sb.sensei(&["approve", &id, "security", "--as", "bob"]);
    assert_eq!(late.code, 3, "{late:?}");
    assert!(late.stderr.contains("cancelled"), "{}", late.stderr);
    assert_eq!(sb.step(&id, "security")["state"], "cancelled");
    assert_eq!(sb.step(&id, "cutover")["state"], "cancelled");
    assert!(!sb.path("cutover.ran").exists());
}

#[test]
fn a_gate_decided_while_no_process_drives_the_migration_counts_on_resume() {
    for (verb, who, state, code) in [
        ("approve", "alice", "certified", 0),
        ("reject", "alice", "cancelled", 1),
    ] {
        let sb = Sandbox::new();
        let file = sb.write("g.yaml", &gated("{ approvers: [alice] }"));
        let run = sb.spawn(&["run", file.to_str().expect("utf-8")]);
        let id = run.id();
        wait_for_gate(&sb, &id, "signoff");
        run.kill9();
        sb.sensei(&[verb, &id, "signoff", "--as", who]).ok();
        let resumed = sb.spawn(&["resume", &id]).finish();
        assert_eq!(resumed.code, code, "{verb}: {resumed:?}");
        assert_eq!(sb.state(&id), state, "{verb}");
        assert_eq!(sb.path("cutover.ran").exists(), verb == "approve");
    }
}
