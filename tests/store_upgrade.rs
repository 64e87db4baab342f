//! A store written by the previous release opens and upgrades: `tests/fixtures/store/v9/`
//! holds a SQLite store made by the release before the PostgreSQL store (commit bd07b93,
//! schema version 9) with `sensei run upgrade.yaml`, stopped while its gate waited: a step
//! that succeeded with output, progress and a checkpoint, a gate waiting for alice, an alert
//! delivery in the outbox. This build must read all of it, and carry the migration on.

mod support;

use support::Sandbox;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/store/v9");

fn sandbox_with_the_old_store() -> Sandbox {
    let sandbox = Sandbox::new();
    std::fs::create_dir_all(sandbox.path(".sensei")).expect("state dir");
    std::fs::copy(
        format!("{FIXTURE}/sensei.db"),
        sandbox.path(".sensei/sensei.db"),
    )
    .expect("copy the old store");
    std::fs::copy(
        format!("{FIXTURE}/upgrade.yaml"),
        sandbox.path("upgrade.yaml"),
    )
    .expect("copy its runbook");
    sandbox
}

#[test]
fn a_store_of_the_previous_release_is_read_and_its_migration_finishes() {
    let sandbox = sandbox_with_the_old_store();
    let status = sandbox.status("latest");
    assert_eq!(status["state"], "running", "{status}");
    let id = status["id"].as_str().expect("id").to_owned();
    let steps = status["steps"].as_array().expect("steps");
    let copy = steps.iter().find(|s| s["id"] == "copy").expect("copy");
    assert_eq!(copy["state"], "succeeded", "{copy}");
    let logs = sandbox.sensei(&["logs", &id, "copy"]).ok();
    assert!(logs.stdout.contains("copied 3 rows"), "{logs:?}");

    sandbox
        .sensei(&["approve", &id, "go", "--as", "alice"])
        .ok();
    let resumed = sandbox.sensei(&["resume", &id]);
    assert_eq!(resumed.code, 0, "{resumed:?}");
    assert_eq!(sandbox.state(&id), "certified");
    let logs = sandbox.sensei(&["logs", &id, "switch"]).ok();
    assert!(logs.stdout.contains("switched"), "{logs:?}");
}
