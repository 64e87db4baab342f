//! What the CLI tells an operator when things go wrong, as snapshots of the real binary's
//! output (ids, times and durations replaced): a failed fan-out names the parts that failed
//! and why, once; a rejected gate names who rejected it and why; a failed or cancelled
//! migration counts its steps as they are and no step still "waits"; a mistyped
//! `SENSEI_NOW` is refused; a run does not wait long for alerts it cannot deliver.

mod support;

use serde_json::Value as Json;
use support::{Run, Sandbox, wait_for};

/// The output with what changes from run to run replaced: ids, clock times, durations.
fn normalized(text: &str) -> String {
    let id = regex::Regex::new(r"m-[0-9a-z]{12}").expect("regex");
    let time = regex::Regex::new(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC").expect("regex");
    let duration = regex::Regex::new(r"\b\d+(\.\d+)?(ms|s)\b").expect("regex");
    let text = id.replace_all(text, "m-ID");
    let text = time.replace_all(&text, "TIME");
    duration.replace_all(&text, "DUR").into_owned()
}

fn both(run: &Run) -> String {
    normalized(&format!("{}{}", run.stdout, run.stderr))
}

/// The output with each run of consecutive part endings (`✓ copy[a]`, `✗ copy[b]`) sorted:
/// parts that end at nearly the same moment are recorded in either order, which the
/// snapshot is not about.
fn parts_sorted(text: &str) -> String {
    let is_end = |l: &str| {
        (l.starts_with("  ✓ copy[") || l.starts_with("  ✗ copy[")) && !l.contains("copy[*]")
    };
    let mut out: Vec<&str> = Vec::new();
    let mut ends: Vec<&str> = Vec::new();
    for line in text.lines() {
        if is_end(line) {
            ends.push(line);
            continue;
        }
        ends.sort_unstable();
        out.append(&mut ends);
        out.push(line);
    }
    ends.sort_unstable();
    out.append(&mut ends);
    let mut joined = out.join("\n");
    if text.ends_with('\n') {
        joined.push('\n');
    }
    joined
}

// Parts end in a fixed order (a, then c, then b fails), though c's end and b's may be
// recorded in either order (`parts_sorted`).
const FAN_OUT: &str = r#"version: 1
name: fan
concurrency: 3
steps:
  - id: list
    outputs: json
    run: |
      echo '{"tables": ["a", "b", "c"]}'
  - id: copy
    needs: [list]
    for_each: "{{steps.list.outputs.tables}}"
    run: |
      case {{item}} in
        a) touch a.done ;;
        c) while [ ! -f a.done ]; do sleep 0.02; done; touch c.done ;;
        b) while [ ! -f c.done ]; do sleep 0.02; done; echo "b is broken" >&2; exit 3 ;;
      esac
alerts:
  channels:
    oncall:
      email: { to: [oncall@example.com] }
  rules:
    - on: [step_failed]
      notify: [oncall]
"#;

#[test]
fn a_failed_fan_out_names_its_failed_parts_once() {
    let sb = Sandbox::new();
    sb.write("fan.yaml", FAN_OUT);
    let run = sb.sensei(&["run", "fan.yaml"]);
    assert_eq!(run.code, 1, "{run:?}");
    let id = run.id();
    insta::assert_snapshot!("fan_out_run", parts_sorted(&both(&run)));
    insta::assert_snapshot!(
        "fan_out_status",
        normalized(&sb.sensei(&["status", &id]).stdout)
    );
    // One `step_failed` alert, for the part: the fan-out's own failure sums it up.
    let alerts = sb.sensei(&["alerts", "--format", "json"]);
    let deliveries: Vec<Json> = serde_json::from_str(&alerts.stdout).expect("alerts json");
    let failed: Vec<&str> = deliveries
        .iter()
        .filter(|d| d["event"] == "step_failed")
        .map(|d| d["step"].as_str().unwrap_or("(none)"))
        .collect();
    assert_eq!(failed, ["copy[b]"], "{}", alerts.stdout);
}

const GATED: &str = r#"version: 1
name: gated
on_failure: rollback
steps:
  - id: look
    phase: analyze
    run: echo looked
  - id: signoff
    gate: { approvers: [alice], required: 1 }
  - id: change
    needs: [signoff]
    run: echo changed
    rollback: echo undone
"#;

#[test]
fn a_rejected_gate_says_who_rejected_it_and_why() {
    let sb = Sandbox::new();
    sb.write("gated.yaml", GATED);
    let bg = sb.spawn(&["run", "gated.yaml"]);
    let id = wait_for("the gate to open", || {
        let id = support::migration_id(&bg.stdout())?;
        (sb.state(&id) == "awaiting_approval").then_some(id)
    });
    sb.sensei(&[
        "reject",
        &id,
        "signoff",
        "--as",
        "alice",
        "--comment",
        "numbers look off",
    ])
    .ok();
    let run = bg.finish();
    assert_eq!(run.code, 1, "{run:?}");
    insta::assert_snapshot!("rejected_gate_run", both(&run));
    insta::assert_snapshot!(
        "rejected_gate_status",
        normalized(&sb.sensei(&["status", &id]).stdout)
    );
}

#[test]
fn a_failed_migration_has_no_step_still_waiting_for_a_slot() {
    let sb = Sandbox::new();
    sb.write(
        "pool.yaml",
        r#"version: 1
name: pooled
pools: { primary: 1 }
steps:
  - id: first
    pool: primary
    run: while [ ! -f go ]; do sleep 0.02; done; exit 4
  - id: second
    pool: primary
    run: echo second
"#,
    );
    let bg = sb.spawn(&["run", "pool.yaml"]);
    let id = wait_for("second to wait for the pool", || {
        let id = support::migration_id(&bg.stdout())?;
        (sb.step(&id, "second")["state"] == "waiting").then_some(id)
    });
    sb.write("go", "");
    let run = bg.finish();
    assert_eq!(run.code, 1, "{run:?}");
    let second = sb.step(&id, "second");
    assert_eq!(second["state"], "pending", "{second}");
    assert!(second["reason"].is_null(), "{second}");
    let status = sb.status(&id);
    assert!(
        status["waiting"].as_array().is_some_and(Vec::is_empty),
        "{status}"
    );
    insta::assert_snapshot!(
        "pool_failed_status",
        normalized(&sb.sensei(&["status", &id]).stdout)
    );
}

#[test]
fn a_cancelled_migration_counts_its_cancelled_steps_as_not_done() {
    let sb = Sandbox::new();
    sb.write("gated.yaml", GATED);
    let bg = sb.spawn(&["run", "gated.yaml"]);
    let id = wait_for("the gate to open", || {
        let id = support::migration_id(&bg.stdout())?;
        (sb.state(&id) == "awaiting_approval").then_some(id)
    });
    sb.sensei(&["cancel", &id]).ok();
    bg.finish();
    let status = sb.status(&id);
    assert_eq!(status["progress"]["done"], 1, "{status}");
    assert_eq!(status["progress"]["by_state"]["cancelled"], 2, "{status}");
    insta::assert_snapshot!(
        "cancelled_status",
        normalized(&sb.sensei(&["status", &id]).stdout)
    );
}

#[test]
fn a_mistyped_sensei_now_is_a_usage_error() {
    let sb = Sandbox::new();
    sb.write("gated.yaml", GATED);
    let run = support::Run::from(
        sb.command(&["plan", "gated.yaml"])
            .env("SENSEI_NOW", "saturday 01:00")
            .output()
            .expect("run sensei"),
    );
    assert_eq!(run.code, 2, "{run:?}");
    insta::assert_snapshot!("bad_sensei_now", run.stderr);
}

#[test]
fn a_run_does_not_wait_long_for_alerts_it_cannot_deliver() {
    // A receiver that accepts connections and never answers: the run reports, leaves the
    // alert in the outbox and exits instead of waiting out the request timeout.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let sb = Sandbox::new();
    sb.write(
        "sensei.yaml",
        "alerts: { allow_private_urls: true, timeout: 60s }\n",
    );
    sb.write(
        "silent.yaml",
        &format!(
            r#"version: 1
name: silent
steps:
  - id: boom
    run: exit 3
alerts:
  channels:
    hook:
      webhook: {{ url: "http://127.0.0.1:{port}/hook" }}
  rules:
    - on: [failed]
      notify: [hook]
"#
        ),
    );
    let run = sb.sensei(&["run", "silent.yaml", "--config", "sensei.yaml"]);
    drop(listener);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout
            .contains("delivering 1 alert(s) (waiting up to 2s)"),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("1 alert(s) not delivered yet: they stay in the outbox"),
        "{run:?}"
    );
}
