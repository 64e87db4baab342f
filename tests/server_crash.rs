//! `sensei serve` stopped under a running migration — `kill -9` or SIGTERM — and started
//! again: it resumes what was in flight (SPEC §4), re-running idempotent steps and pausing on
//! interrupted ones until an operator says to retry or skip them.

mod harness;

use harness::runbooks::BLOCK;
use harness::{Dir, kinds, wait_for};

#[test]
fn kill_9_mid_migration_then_restart_continues_to_certified() {
    let dir = Dir::new();
    dir.runbook("block.yaml", BLOCK);
    let s = dir.serve_ops();
    let id = s.create(Some("ops-token"), "block", "{}");
    s.post(&format!("/v1/migrations/{id}/start"), "")
        .expect(200);
    let started = dir.path("runbooks/started");
    wait_for("the held step to start", || started.exists().then_some(()));
    assert_eq!(s.state(&id), "running");
    s.kill9();
    std::fs::remove_file(&started).expect("remove marker");

    let s = dir.serve_ops();
    // The idempotent step runs again under the new server.
    wait_for("the step to run again", || started.exists().then_some(()));
    std::fs::write(dir.path("runbooks/go"), "").expect("go");
    s.wait_state(&id, "certified");
    let events = s.events(&id);
    let resumed = events
        .iter()
        .rfind(|e| e["kind"] == "driver_attached")
        .expect("driver_attached");
    assert_eq!(resumed["data"]["by"], "server");
    assert_eq!(resumed["data"]["op"], "resume");
    assert!(kinds(&events).contains(&"step_interrupted".to_owned()));
}

#[test]
fn sigterm_lets_running_steps_finish_then_a_restart_resumes() {
    let dir = Dir::new();
    dir.runbook("block.yaml", BLOCK);
    let s = dir.serve_ops();
    let id = s.create(Some("ops-token"), "block", "{}");
    s.post(&format!("/v1/migrations/{id}/start"), "")
        .expect(200);
    wait_for("the held step to start", || {
        dir.path("runbooks/started").exists().then_some(())
    });
    let pid = s.child.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("run kill");
    assert!(killed.success(), "kill -TERM {pid}: {killed}");
    wait_for("the server to drain", || {
        s.log().contains("running steps get").then_some(())
    });
    // The held step is still running: the server waits for it rather than killing it.
    std::fs::write(dir.path("runbooks/go"), "").expect("go");
    let log = s.log.clone();
    assert_eq!(s.terminate(), 0);
    let log = std::fs::read_to_string(&log)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", log.display()));
    assert!(log.contains("stopped"), "{log}");
    assert!(
        !log.contains("stopping them"),
        "the step was killed:\n{log}"
    );
    let s = dir.serve_ops();
    s.wait_state(&id, "certified");
    let events = kinds(&s.events(&id));
    assert!(events.contains(&"step_succeeded".to_owned()), "{events:?}");
    assert!(
        !events.contains(&"step_interrupted".to_owned()),
        "{events:?}"
    );
}

#[test]
fn an_interrupted_step_waits_for_an_operator_after_a_restart() {
    let dir = Dir::new();
    dir.runbook(
        "block.yaml",
        &BLOCK.replace("idempotent: true", "idempotent: false"),
    );
    let s = dir.serve_ops();
    let id = s.create(Some("ops-token"), "block", "{}");
    s.post(&format!("/v1/migrations/{id}/start"), "")
        .expect(200);
    wait_for("the held step to start", || {
        dir.path("runbooks/started").exists().then_some(())
    });
    s.kill9();

    let s = dir.serve_ops();
    // Not idempotent: it is not run again; the migration pauses for an operator.
    s.wait_state(&id, "paused");
    let status = s.get(&format!("/v1/migrations/{id}/status")).expect(200);
    assert_eq!(status.json["waiting"][0]["step"], "hold", "{}", status.text);
    assert_eq!(status.json["waiting"][0]["state"], "interrupted");
    s.post(
        &format!("/v1/migrations/{id}/resume"),
        r#"{"interrupted":"skip","comment":"done by hand"}"#,
    )
    .expect(200);
    s.wait_state(&id, "certified");
    let status = s.get(&format!("/v1/migrations/{id}")).expect(200);
    assert_eq!(status.json["steps"][0]["state"], "skipped");
    s.post(
        &format!("/v1/migrations/{id}/start"),
        r#"{"interrupted":"skip"}"#,
    )
    .problem(400);
}
