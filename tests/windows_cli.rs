//! Cutover windows as a user sees them with `sensei run`, in real time: `SENSEI_NOW` starts
//! the migration's clock a moment before a window opens, so each test takes seconds.

mod support;

use support::{Sandbox, wait_for};

const OPENS_SOON: &str = r#"
version: 1
name: opens-soon
windows:
  night: { cron: "0 1 * * *", duration: 1h, timezone: Europe/Berlin, cutoff: 10m }
steps:
  - id: prepare
    run: "true"
  - id: switch
    needs: [prepare]
    window: night
    run: echo switched > switched
"#;

#[test]
fn a_bound_step_waits_with_its_reason_then_runs_when_the_window_opens() {
    let sb = Sandbox::new();
    let file = sb.write("w.yaml", OPENS_SOON);
    // 00:59:58 in Berlin (CET, UTC+1).
    let bg = sb.spawn_with_env(
        &["run", file.to_str().expect("utf-8")],
        &[("SENSEI_NOW", "2027-03-05T23:59:58Z")],
    );
    let id = bg.id();
    wait_for("switch to wait", || {
        (sb.step(&id, "switch")["state"] == "waiting").then_some(())
    });
    let reason = sb.step(&id, "switch")["reason"]
        .as_str()
        .expect("why switch waits")
        .to_owned();
    assert!(
        reason.starts_with("window night opens Sat 01:00 CET (in "),
        "{reason}"
    );
    assert_eq!(sb.state(&id), "running");
    let run = bg.finish();
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .contains("switch: window night opens Sat 01:00 CET"),
        "{}",
        run.stdout
    );
    assert!(sb.path("switched").exists());
}

const CLOSES_SOON: &str = r#"
version: 1
name: closes-soon
windows:
  night: { cron: "0 1 * * *", duration: 3s, timezone: UTC, cutoff: 1s, on_close: pause }
steps:
  - id: copy
    window: night
    run: "while [ ! -e go ]; do sleep 0.02; done"
  - id: switch
    needs: [copy]
    window: night
    run: touch switched
"#;

#[test]
fn a_window_closing_on_bound_work_pauses_and_an_operator_can_cancel_it() {
    let sb = Sandbox::new();
    let file = sb.write("w.yaml", CLOSES_SOON);
    let bg = sb.spawn_with_env(
        &["run", file.to_str().expect("utf-8")],
        &[("SENSEI_NOW", "2027-03-06T00:59:59.500Z")],
    );
    let id = bg.id();
    wait_for("copy to run", || {
        (sb.step(&id, "copy")["state"] == "running").then_some(())
    });
    let kinds = |sb: &Sandbox| -> Vec<String> {
        sb.events(&id)
            .iter()
            .map(|e| e["kind"].as_str().expect("an event kind").to_owned())
            .collect()
    };
    wait_for("window_closing at the cutoff", || {
        kinds(&sb)
            .contains(&"window_closing".to_owned())
            .then_some(())
    });
    wait_for("the close to pause it", || {
        (sb.state(&id) == "paused").then_some(())
    });
    // The running step was not killed: it finishes when it is done.
    assert_eq!(sb.step(&id, "copy")["state"], "running");
    sb.write("go", "");
    wait_for("copy to finish", || {
        (sb.step(&id, "copy")["state"] == "succeeded").then_some(())
    });
    assert_eq!(sb.state(&id), "paused", "it waits for the next opening");
    sb.sensei(&["cancel", &id, "--as", "ops"]).ok();
    let run = bg.finish();
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(sb.state(&id), "cancelled");
    assert!(!sb.path("switched").exists());
    assert!(
        run.stdout
            .contains("window night closed with bound work left (on_close: pause)"),
        "{}",
        run.stdout
    );
}

#[test]
fn on_close_rollback_undoes_the_bound_work_once_running_steps_finish() {
    let sb = Sandbox::new();
    let file = sb.write(
        "w.yaml",
        &CLOSES_SOON
            .replace("on_close: pause", "on_close: rollback")
            .replace(
                "    run: \"while [ ! -e go ]; do sleep 0.02; done\"",
                "    run: \"while [ ! -e go ]; do sleep 0.02; done\"\n    rollback: touch undone",
            ),
    );
    let bg = sb.spawn_with_env(
        &["run", file.to_str().expect("utf-8")],
        &[("SENSEI_NOW", "2027-03-06T00:59:59.500Z")],
    );
    let id = bg.id();
    wait_for("copy to run", || {
        (sb.step(&id, "copy")["state"] == "running").then_some(())
    });
    wait_for("the close", || {
        sb.events(&id)
            .iter()
            .any(|e| e["kind"] == "window_closed")
            .then_some(())
    });
    sb.write("go", "");
    let run = bg.finish();
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(sb.state(&id), "failed");
    assert_eq!(sb.step(&id, "copy")["state"], "rolled_back");
    assert!(sb.path("undone").exists());
    assert!(!sb.path("switched").exists());
}

#[test]
fn an_automatic_gate_waits_for_its_condition_to_hold() {
    let sb = Sandbox::new();
    let file = sb.write(
        "gate.yaml",
        r#"version: 1
name: lag
steps:
  - id: caught-up
    check: "{{lt probe.outputs.lag 5}}"
    probe: { run: "echo lag=$(cat lag) >> $SENSEI_OUTPUT" }
    every: 100ms
    stable_for: 300ms
    timeout: 1m
  - id: cutover
    needs: [caught-up]
    run: touch cut
"#,
    );
    sb.write("lag", "40");
    let bg = sb.spawn(&["run", file.to_str().expect("utf-8")]);
    let id = bg.id();
    let evaluations = || {
        sb.sensei(&["logs", &id, "caught-up"])
            .ok()
            .stdout
            .lines()
            .count()
    };
    wait_for("a few evaluations", || (evaluations() >= 3).then_some(()));
    assert!(
        !sb.path("cut").exists(),
        "the gate passed while the lag was 40"
    );
    sb.write("lag", "2");
    let run = bg.finish();
    assert_eq!(run.code, 0, "{run:?}");
    assert!(sb.path("cut").exists());
    let logs = sb.sensei(&["logs", &id, "caught-up"]).stdout;
    assert!(
        logs.contains("the check did not hold") && logs.contains("check holds"),
        "{logs}"
    );
}
