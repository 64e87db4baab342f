//! Schedules in the real server: `sensei serve` with its clock shifted by `SENSEI_NOW` to a
//! couple of seconds before a minute boundary fires a `* * * * *` schedule once at the
//! boundary, the migration runs to certified, a restart that lives through the same fire
//! time again creates nothing, and a restart after downtime catches up the latest missed
//! fire time (`catch_up: latest`).

mod harness;

use harness::{Dir, Server, wait_for};
use serde_json::Value;

const TICK: &str = r#"version: 1
name: tick
params:
  label: { type: string, default: none }
schedules:
  - cron: "* * * * *"
    params: { label: "from-{{runbook.name}}" }
steps:
  - id: work
    run: echo working on {{params.label}}
  - id: verify
    phase: validate
    run: echo verified
"#;

/// Another every-minute schedule, written as `tock.yaml`: a pass plans the runbooks in file
/// order, so once tock's migration of a fire time exists, the pass that created it has
/// planned `tick` at that fire time too — the marker that a restarted server got past it.
const TOCK: &str = r#"version: 1
name: tock
schedules:
  - cron: "* * * * *"
steps:
  - id: note
    run: echo noted
"#;

fn server(dir: &Dir, now: &str) -> Server {
    dir.serve_with_tokens(&[], &[("SENSEI_NOW", now)])
}

/// The migrations of `tick`, newest first.
fn migrations(s: &Server) -> Vec<Value> {
    let listed = s.get("/v1/migrations?runbook=tick").expect(200);
    listed
        .json
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("not a list of migrations: {}", listed.text))
}

fn at(text: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(text)
        .expect("time")
        .to_utc()
}

#[test]
fn a_fire_time_creates_one_migration_even_across_restarts() {
    let dir = Dir::new();
    dir.runbook("tick.yaml", TICK);
    let fire = "2026-05-01T12:01:00Z";
    let id = sensei::schedule::scheduled_id("tick", 0, at(fire)).to_string();

    // Two seconds before the boundary: nothing yet, then one migration at 12:01:00.
    let s = server(&dir, "2026-05-01T12:00:58Z");
    assert!(migrations(&s).is_empty());
    let list = wait_for("the fire time's migration", || {
        let list = migrations(&s);
        (!list.is_empty()).then_some(list)
    });
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["starter"], "schedule:tick#0");
    s.wait_state(&id, "certified");
    let events = s.events(&id);
    assert_eq!(events[0]["data"]["fire_time"], fire);
    assert_eq!(events[0]["data"]["schedule"]["index"], 0);
    assert_eq!(events[0]["data"]["schedule"]["cron"], "* * * * *");
    let detail = s.get(&format!("/v1/migrations/{id}")).expect(200).json;
    assert_eq!(detail["params"]["label"], "from-tick");
    assert_eq!(migrations(&s).len(), 1);
    assert_eq!(s.terminate(), 0);

    // The same two seconds again: the restarted server passes 12:01:00 a second time, which
    // tock, new to it, fires at (see TOCK).
    dir.runbook("tock.yaml", TOCK);
    let s = server(&dir, "2026-05-01T12:00:58Z");
    let tock = sensei::schedule::scheduled_id("tock", 0, at(fire)).to_string();
    wait_for("the pass at 12:01:00", || {
        (s.get(&format!("/v1/migrations/{tock}")).status == 200).then_some(())
    });
    let list = migrations(&s);
    assert_eq!(list.len(), 1, "a second migration for {fire}: {list:?}");
    assert_eq!(s.terminate(), 0);
    std::fs::remove_file(dir.path("runbooks").join("tock.yaml")).expect("remove tock.yaml");

    // Down until 12:04:30: 12:02, 12:03 and 12:04 were missed; `latest` runs 12:04 only.
    let s = server(&dir, "2026-05-01T12:04:30Z");
    let caught = sensei::schedule::scheduled_id("tick", 0, at("2026-05-01T12:04:00Z")).to_string();
    wait_for("the caught-up migration", || {
        (migrations(&s).len() > 1).then_some(())
    });
    s.wait_state(&caught, "certified");
    // The startup pass decided the missed fire times at once, before it created 12:04's
    // migration; nothing is due again before 12:05.
    let log = s.log();
    assert!(
        log.contains("2 fire time(s) missed while the server was down are not run"),
        "{log}"
    );
    let ids: Vec<String> = migrations(&s)
        .iter()
        .map(|m| m["id"].as_str().expect("an id").to_owned())
        .collect();
    assert_eq!(ids, [caught, id], "{}", s.log());
}
