//! Step progress and estimated times to finish, end to end with the real `sensei` binary
//! and a real store: a step writes `progress=DONE/TOTAL` to `$SENSEI_OUTPUT` while it runs,
//! and `sensei status`, `sensei run`'s lines, the API, the metrics and the console show it
//! (with an ETA when one can be estimated, and the reason when not); a flood of reports
//! does not slow the step and costs a bounded number of events; bad reports are reported.
//!
//! The steps wait for a file the test creates, so the test can look at them mid-run without
//! sleeping: it polls with a deadline.

mod harness;
mod support;

use serde_json::{Value, json};
use support::{Sandbox, wait_for};

/// A step that reports 1 of 1000 at once, waits for the file named by `gate`, then reports
/// up to 1000 of 1000 and writes an output; a second step after it.
const COPYING: &str = r#"version: 1
name: copying
params:
  gate: { type: string, default: go }
steps:
  - id: copy
    run: |
      echo progress=1/1000 >> "$SENSEI_OUTPUT"
      while [ ! -f {{params.gate}} ]; do sleep 0.02; done
      i=0; while [ $i -lt 900 ]; do i=$((i+100)); echo "progress=$i/1000" >> "$SENSEI_OUTPUT"; done
      echo progress=1000/1000 >> "$SENSEI_OUTPUT"
      echo rows=7 >> "$SENSEI_OUTPUT"
  - id: after
    needs: [copy]
    run: "true"
"#;

fn step<'a>(status: &'a Value, id: &str) -> &'a Value {
    status["steps"]
        .as_array()
        .and_then(|steps| steps.iter().find(|s| s["id"] == id))
        .unwrap_or_else(|| panic!("no step {id} in {status}"))
}

/// Polls `sensei status --format json` until `copy` reported `done`; that status.
fn reported(sb: &Sandbox, id: &str, done: u64) -> Value {
    wait_for(&format!("copy to report {done}"), || {
        let status = sb.status(id);
        (step(&status, "copy")["progress"]["done"] == done).then_some(status)
    })
}

fn progress_events(events: &[Value], step: &str) -> Vec<Value> {
    events
        .iter()
        .filter(|e| e["kind"] == "step_progress" && e["step"] == step)
        .map(|e| e["data"].clone())
        .collect()
}

#[test]
fn a_running_step_shows_its_progress_and_eta_and_keeps_its_last_progress() {
    let sb = Sandbox::new();
    let file = sb.write("copying.yaml", COPYING);
    let file = file.to_str().expect("utf-8");

    // First run: no earlier run to go by for `after`.
    let run = sb.spawn(&["run", file]);
    let id = run.id();
    let status = reported(&sb, &id, 1);
    let copy = step(&status, "copy");
    assert_eq!(copy["state"], "running");
    assert_eq!(copy["progress"]["total"], 1000);
    assert!(copy["progress"]["at"].is_string(), "{copy}");
    // One unit in at least the follower's first look (250 ms): hundreds of seconds to go.
    assert_eq!(copy["eta"]["basis"], "progress", "{copy}");
    assert!(
        copy["eta"]["remaining_ms"].as_i64().unwrap_or(0) > 10_000,
        "{copy}"
    );
    assert!(copy["eta"]["finishes_at"].is_string(), "{copy}");
    assert_eq!(
        status["eta"],
        json!({ "unknown": "step after has no earlier run or `estimate` to go by" })
    );
    assert!(
        step(&status, "after").get("eta").is_none(),
        "only running steps"
    );
    let text = sb.sensei(&["status", &id]).ok().stdout;
    assert!(text.contains("0% (1/1000), about "), "{text}");
    assert!(
        text.contains("time to finish unknown: step after has no earlier run"),
        "{text}"
    );

    std::fs::write(sb.path("go"), "").expect("gate file");
    let done = run.finish();
    assert_eq!(done.code, 0, "{done:?}");
    assert!(
        done.stdout.contains("  ⋯ copy 0% (1/1000), "),
        "{}",
        done.stdout
    );
    let status = sb.status(&id);
    let copy = step(&status, "copy");
    assert_eq!(copy["state"], "succeeded");
    assert_eq!(
        copy["progress"]["done"], 1000,
        "the last report is kept: {copy}"
    );
    assert_eq!(
        copy["outputs"],
        json!({ "rows": "7" }),
        "progress is no output"
    );
    assert!(copy.get("eta").is_none(), "{copy}");
    assert_eq!(status["eta"], json!({ "unknown": "it is certified" }));
    assert!(step(&status, "after").get("progress").is_none());
    let events = sb.events(&id);
    let reports = progress_events(&events, "copy");
    assert_eq!(
        reports[0],
        json!({ "attempt": 1, "done": 1, "total": 1000 })
    );
    assert!(reports.len() <= 101, "{reports:?}");

    // Second run: `after` goes by the first, so the migration's end can be estimated.
    let run = sb.spawn(&["run", file, "-p", "gate=go2"]);
    let id = run.id();
    let status = reported(&sb, &id, 1);
    let remaining = status["eta"]["remaining_ms"].as_i64();
    assert!(remaining.is_some_and(|ms| ms > 10_000), "{}", status["eta"]);
    let text = sb.sensei(&["status", &id]).ok().stdout;
    assert!(text.contains("expected to finish in about "), "{text}");
    std::fs::write(sb.path("go2"), "").expect("gate file");
    assert_eq!(run.finish().code, 0);
}

#[test]
fn a_flood_of_reports_neither_slows_the_step_nor_floods_the_store() {
    let sb = Sandbox::new();
    // The same 100,000 lines, to a plain file and to $SENSEI_OUTPUT.
    let file = sb.write(
        "flood.yaml",
        r#"version: 1
name: flood
steps:
  - id: plain
    run: |
      i=0; while [ $i -lt 100000 ]; do i=$((i+1)); echo "progress=$i/100000"; done > plain.txt
  - id: flood
    needs: [plain]
    run: |
      i=0; while [ $i -lt 100000 ]; do i=$((i+1)); echo "progress=$i/100000"; done >> "$SENSEI_OUTPUT"
      echo rows=1 >> "$SENSEI_OUTPUT"
"#,
    );
    let run = sb.sensei(&["run", file.to_str().expect("utf-8")]).ok();
    let id = run.id();
    let events = sb.events(&id);
    let took = |step: &str| {
        events
            .iter()
            .find(|e| e["kind"] == "step_succeeded" && e["step"] == step)
            .and_then(|e| e["data"]["duration_ms"].as_i64())
            .unwrap_or_else(|| panic!("no duration of {step}"))
    };
    let (plain, flood) = (took("plain"), took("flood"));
    assert!(
        flood < plain * 3 + 1000,
        "followed: {flood} ms, plain: {plain} ms"
    );
    // At most one commit of reports a second, an event only per whole percent.
    let reports = progress_events(&events, "flood");
    assert!(
        reports.len() as i64 <= flood / 1000 + 2 && reports.len() <= 101,
        "{} step_progress events in {flood} ms",
        reports.len()
    );
    let row = sb.step(&id, "flood");
    assert_eq!(row["progress"]["done"], 100_000, "the last report: {row}");
    assert_eq!(row["outputs"], json!({ "rows": "1" }));
    let logs = sb.sensei(&["logs", &id, "flood"]).ok().stdout;
    assert!(!logs.contains("SENSEI_OUTPUT"), "no complaint: {logs}");
}

#[test]
fn bad_progress_reports_are_reported_and_never_fail_the_step() {
    let sb = Sandbox::new();
    let file = sb.write(
        "bad.yaml",
        r#"version: 1
name: bad
steps:
  - id: count
    run: |
      echo progress=abc >> "$SENSEI_OUTPUT"
      echo progress=5/3 >> "$SENSEI_OUTPUT"
      echo progress=7 >> "$SENSEI_OUTPUT"
      echo progress=2/4 >> "$SENSEI_OUTPUT"
"#,
    );
    let run = sb.sensei(&["run", file.to_str().expect("utf-8")]).ok();
    let id = run.id();
    let row = sb.step(&id, "count");
    assert_eq!(row["state"], "succeeded");
    assert_eq!(row["progress"]["done"], 2, "{row}");
    assert_eq!(row["progress"]["total"], 4, "{row}");
    assert!(row["outputs"].is_null(), "{row}");
    let logs = sb.sensei(&["logs", &id, "count"]).ok().stdout;
    for needle in [
        "line 1 of $SENSEI_OUTPUT: `progress=abc` is not a progress report: `abc` is not DONE/TOTAL",
        "line 2 of $SENSEI_OUTPUT: `progress=5/3` is not a progress report: DONE (5) is more than TOTAL (3)",
        "line 3 of $SENSEI_OUTPUT: `progress=7` is not a progress report: `7` is not DONE/TOTAL: write the total too",
    ] {
        assert!(logs.contains(needle), "{needle} in {logs}");
    }
}

#[test]
fn the_api_metrics_and_console_show_progress_while_the_step_runs() {
    use harness::console::Visitor;
    let dir = harness::Dir::new();
    dir.runbook("copying.yaml", COPYING);
    let s = dir.serve_ops();
    let id = s.create(Some("ops-token"), "copying", "{}");
    s.post(&format!("/v1/migrations/{id}/start"), "")
        .expect(200);
    let doc = wait_for("copy to report", || {
        let doc = s.get(&format!("/v1/migrations/{id}")).expect(200).json;
        (step(&doc, "copy")["progress"]["done"] == 1).then_some(doc)
    });
    assert_eq!(step(&doc, "copy")["eta"]["basis"], "progress", "{doc}");
    assert!(doc["eta"]["unknown"].is_string(), "{}", doc["eta"]);

    let status = s
        .get(&format!("/v1/migrations/{id}/status"))
        .expect(200)
        .json;
    assert_eq!(status["running_steps"][0]["step"], "copy", "{status}");
    assert_eq!(status["running_steps"][0]["progress"]["done"], 1);
    assert_eq!(status["running_steps"][0]["eta"]["basis"], "progress");
    assert!(status["eta"]["unknown"].is_string(), "{status}");

    let metrics = s.get("/metrics").expect(200).text;
    let series = format!("sensei_step_progress_ratio{{migration=\"{id}\",step=\"copy\"}} 0.001");
    assert!(metrics.contains(&series), "{metrics}");
    assert!(
        metrics.contains(&format!(
            "sensei_step_eta_seconds{{migration=\"{id}\",step=\"copy\"}} "
        )),
        "{metrics}"
    );

    // The console reads the same document with its session, follows `step_progress`
    // events, and labels a running node with its percent.
    let mut v = Visitor::new(&s);
    v.sign_in("vic-token");
    let page = v.get(&format!("/migrations/{id}"));
    assert_eq!(page.status, 200);
    assert!(page.text.contains(r#""step_progress""#), "{}", page.text);
    let seen = v.get(&format!("/v1/migrations/{id}"));
    let seen: Value = serde_json::from_str(&seen.text).expect("JSON");
    assert_eq!(step(&seen, "copy")["progress"]["total"], 1000);
    let dag = v.get("/assets/dag.js").text;
    assert!(dag.contains("n.state + Sensei.percentOf(n.row)"), "{dag}");
    let script = v.get("/assets/migration.js").text;
    assert!(script.contains("<dt>Progress</dt>") && script.contains("<dt>Time left</dt>"));

    std::fs::write(dir.path("runbooks").join("go"), "").expect("gate file");
    s.wait_state(&id, "certified");
    let metrics = s.get("/metrics").expect(200).text;
    assert!(
        !metrics.contains(&format!("migration=\"{id}\"")),
        "no series once it ended: {metrics}"
    );
}
