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

fn server(dir: &Dir, now: &str) -> Server {
    dir.serve_with_tokens(&[], &[("SENSEI_NOW", now)])
}

fn migrations(s: &Server) -> Vec<Value> {
    s.get("/v1/migrations")
        .expect(200)
        .json
        .as_array()
        .cloned()
        .unwrap_or_default()
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

    // The same two seconds again: the restarted server passes 12:01:00 a second time.
    let s = server(&dir, "2026-05-01T12:00:58Z");
    std::thread::sleep(std::time::Duration::from_secs(4));
    let list = migrations(&s);
    assert_eq!(list.len(), 1, "a second migration for {fire}: {list:?}");
    assert_eq!(s.terminate(), 0);

    // Down until 12:04:30: 12:02, 12:03 and 12:04 were missed; `latest` runs 12:04 only.
    let s = server(&dir, "2026-05-01T12:04:30Z");
    let caught = sensei::schedule::scheduled_id("tick", 0, at("2026-05-01T12:04:00Z")).to_string();
    wait_for("the caught-up migration", || {
        (migrations(&s).len() > 1).then_some(())
    });
    s.wait_state(&caught, "certified");
    std::thread::sleep(std::time::Duration::from_secs(1));
    let ids: Vec<String> = migrations(&s)
        .iter()
        .map(|m| m["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(ids, [caught, id], "{}", s.log());
}
