//! Checkpoints inside a step, end to end with the real `sensei` binary and a real store: a
//! step writes `checkpoint=VALUE` to `$SENSEI_OUTPUT` as it goes; the engine commits it as
//! it arrives, so after a `kill -9` of `sensei run` the resumed attempt gets the last one in
//! `$SENSEI_CHECKPOINT` and `{{checkpoint}}`; a retry after a failure (in the same run, or a
//! `sensei retry` of the failed migration) goes on from it too; a rollback of the step clears
//! it; `sensei status`, the API and the console show it; a bad one is reported, not kept.
//!
//! Steps wait for files the test creates, so the test looks at them mid-run without
//! sleeping: it polls with a deadline.

mod harness;
mod support;

use serde_json::Value;
use support::{Sandbox, alive, pids_in, wait_for};

/// A step that says what it was given, then (on its first attempt only) records three
/// checkpoints and waits for ever; later attempts finish.
const RESUMABLE: &str = r#"version: 1
name: resumable
steps:
  - id: copy
    run: |
      echo $$ > copy.pid
      echo "env=[$SENSEI_CHECKPOINT] template=[{{#if checkpoint}}{{checkpoint}}{{else}}none{{/if}}]" >> seen
      if [ -z "$SENSEI_CHECKPOINT" ]; then
        for i in 1 2 3; do echo "checkpoint=rows after id $i" >> "$SENSEI_OUTPUT"; done
        while [ ! -f never ]; do sleep 0.02; done
      fi
  - id: after
    needs: [copy]
    run: "true"
"#;

fn checkpoint_of(sb: &Sandbox, id: &str, step: &str) -> Value {
    sb.step(id, step)["checkpoint"].clone()
}

#[test]
fn after_a_kill_9_the_resumed_attempt_goes_on_from_the_last_checkpoint() {
    let sb = Sandbox::new();
    let file = sb.write("resumable.yaml", RESUMABLE);
    let run = sb.spawn(&["run", file.to_str().expect("utf-8")]);
    let id = run.id();
    // The last one written is committed while the step still runs.
    let recorded = wait_for("the third checkpoint to be recorded", || {
        let c = checkpoint_of(&sb, &id, "copy");
        (c["value"] == "rows after id 3").then_some(c)
    });
    assert_eq!(recorded["attempt"], 1, "{recorded}");
    assert!(recorded["at"].is_string(), "{recorded}");
    assert_eq!(sb.step(&id, "copy")["state"], "running");
    let pid = pids_in(&sb.path("copy.pid"))[0];
    run.kill9();
    wait_for("the step's processes to die with the engine", || {
        (!alive(pid)).then_some(())
    });

    // Not idempotent: the operator decides, and sees where it got to.
    let resumed = sb.sensei(&["resume", &id]);
    assert_eq!(resumed.code, 1, "{resumed:?}");
    assert_eq!(sb.step(&id, "copy")["state"], "interrupted");
    let text = sb.sensei(&["status", &id]).ok().stdout;
    assert!(
        text.contains(r#"checkpoint "rows after id 3""#),
        "the status names the checkpoint: {text}"
    );
    let resumed = sb.sensei(&["resume", &id, "--retry-interrupted"]).ok();
    assert!(
        resumed
            .stdout
            .contains(r#"▶ copy (attempt 2, from checkpoint "rows after id 3")"#),
        "{}",
        resumed.stdout
    );
    assert_eq!(sb.state(&id), "certified");
    assert_eq!(
        sb.lines("seen"),
        [
            "env=[] template=[none]",
            "env=[rows after id 3] template=[rows after id 3]"
        ]
    );
    let copy = sb.step(&id, "copy");
    assert_eq!(copy["state"], "succeeded");
    assert_eq!(copy["checkpoint"]["value"], "rows after id 3", "{copy}");
    assert_eq!(copy["checkpoint"]["attempt"], 1, "written by the first");
    assert!(sb.step(&id, "after").get("checkpoint").is_none());
    let started: Vec<Value> = sb
        .events(&id)
        .into_iter()
        .filter(|e| e["kind"] == "step_started" && e["step"] == "copy")
        .map(|e| e["data"].clone())
        .collect();
    assert_eq!(started.len(), 2, "{started:?}");
    assert!(started[0].get("checkpoint").is_none(), "{started:?}");
    assert_eq!(started[1]["checkpoint"], "rows after id 3");
    assert_eq!(
        sb.events(&id)
            .iter()
            .filter(|e| e["kind"] == "step_progress")
            .count(),
        0,
        "no event per checkpoint"
    );
}

/// `copy` records one more checkpoint than it was given, then fails until `copy-ok` exists
/// (one retry in the run); `verify` fails until `verify-ok` exists, which rolls `copy` back.
const RETRYING: &str = r#"version: 1
name: retrying
on_failure: rollback
steps:
  - id: copy
    retry: { attempts: 2, backoff: 100ms }
    run: |
      echo "copy from=[$SENSEI_CHECKPOINT]" >> seen
      n=${SENSEI_CHECKPOINT#batch-}
      echo "checkpoint=batch-$((${n:-0} + 1))" >> "$SENSEI_OUTPUT"
      [ -f copy-ok ] || exit 3
    rollback: echo "undo copy" >> seen
  - id: verify
    needs: [copy]
    run: "[ -f verify-ok ]"
"#;

#[test]
fn retries_go_on_from_the_checkpoint_and_a_rollback_clears_it() {
    let sb = Sandbox::new();
    let file = sb.write("retrying.yaml", RETRYING);
    let run = sb.sensei(&["run", file.to_str().expect("utf-8")]);
    assert_eq!(run.code, 1, "{run:?}");
    let id = run.id();
    // The retry in the run went on from the first attempt's checkpoint.
    assert_eq!(sb.lines("seen"), ["copy from=[]", "copy from=[batch-1]"]);
    let copy = sb.step(&id, "copy");
    assert_eq!(copy["state"], "failed");
    assert_eq!(copy["checkpoint"]["value"], "batch-2", "{copy}");
    assert_eq!(copy["checkpoint"]["attempt"], 2, "{copy}");
    let text = sb.sensei(&["status", &id]).ok().stdout;
    assert!(text.contains(r#"checkpoint "batch-2""#), "{text}");

    // `sensei retry` of the failed migration keeps it: the work is not redone.
    sb.write("copy-ok", "");
    let retried = sb.sensei(&["retry", &id]);
    assert_eq!(retried.code, 1, "verify still fails: {retried:?}");
    assert!(
        retried
            .stdout
            .contains(r#"▶ copy (from checkpoint "batch-2")"#),
        "{}",
        retried.stdout
    );
    assert_eq!(
        sb.lines("seen")[2..],
        ["copy from=[batch-2]", "undo copy"],
        "copy went on from batch-2, then verify failed and copy was rolled back"
    );
    // Rolled back: its work was undone, so its checkpoint is gone.
    let copy = sb.step(&id, "copy");
    assert_eq!(copy["state"], "rolled_back");
    assert!(copy.get("checkpoint").is_none(), "{copy}");

    sb.write("verify-ok", "");
    sb.sensei(&["retry", &id]).ok();
    assert_eq!(sb.state(&id), "certified");
    assert_eq!(
        sb.lines("seen")[4..],
        ["copy from=[]"],
        "after the rollback it starts over"
    );
    assert_eq!(checkpoint_of(&sb, &id, "copy")["value"], "batch-1");
}

#[test]
fn a_bad_checkpoint_is_reported_in_the_log_and_not_recorded() {
    let sb = Sandbox::new();
    let file = sb.write(
        "bad.yaml",
        r#"version: 1
name: bad
steps:
  - id: copy
    run: |
      echo "checkpoint=good" >> "$SENSEI_OUTPUT"
      printf 'checkpoint=%05000d\n' 7 >> "$SENSEI_OUTPUT"
      echo "checkpoint=" >> "$SENSEI_OUTPUT"
      echo rows=3 >> "$SENSEI_OUTPUT"
"#,
    );
    let run = sb.sensei(&["run", file.to_str().expect("utf-8")]).ok();
    let id = run.id();
    let copy = sb.step(&id, "copy");
    assert_eq!(copy["state"], "succeeded", "a bad one never fails the step");
    assert_eq!(copy["checkpoint"]["value"], "good", "{copy}");
    assert_eq!(
        copy["outputs"],
        serde_json::json!({ "rows": "3" }),
        "no output"
    );
    let logs = sb.sensei(&["logs", &id, "copy"]).ok().stdout;
    for needle in [
        "line 2 of $SENSEI_OUTPUT: `checkpoint=0000000000000000000000000000000000000000…` is not a checkpoint (it was not recorded): it is 5000 bytes long, more than 4096",
        "line 3 of $SENSEI_OUTPUT: `checkpoint=` is not a checkpoint (it was not recorded): a checkpoint is not empty",
    ] {
        assert!(logs.contains(needle), "{needle} in {logs}");
    }
}

#[test]
fn the_api_and_the_console_show_a_running_steps_checkpoint() {
    use harness::console::Visitor;
    let dir = harness::Dir::new();
    dir.runbook(
        "holding.yaml",
        r#"version: 1
name: holding
steps:
  - id: copy
    run: |
      echo "checkpoint=orders:42000" >> "$SENSEI_OUTPUT"
      while [ ! -f go ]; do sleep 0.02; done
"#,
    );
    let s = dir.serve_ops();
    let id = s.create(Some("ops-token"), "holding", "{}");
    s.post(&format!("/v1/migrations/{id}/start"), "")
        .expect(200);
    let step = |doc: &Value| -> Value {
        doc["steps"]
            .as_array()
            .and_then(|steps| steps.iter().find(|r| r["id"] == "copy"))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let doc = wait_for("the checkpoint in the API", || {
        let doc = s.get(&format!("/v1/migrations/{id}")).expect(200).json;
        (step(&doc)["checkpoint"]["value"] == "orders:42000").then_some(doc)
    });
    assert_eq!(step(&doc)["checkpoint"]["attempt"], 1, "{doc}");
    let status = s
        .get(&format!("/v1/migrations/{id}/status"))
        .expect(200)
        .json;
    assert_eq!(status["running_steps"][0]["step"], "copy", "{status}");
    assert_eq!(
        status["running_steps"][0]["checkpoint"]["value"],
        "orders:42000"
    );

    // The console reads the same document and shows it in the step's detail.
    let mut v = Visitor::new(&s);
    v.sign_in("vic-token");
    let seen = v.get(&format!("/v1/migrations/{id}"));
    let seen: Value = serde_json::from_str(&seen.text).expect("JSON");
    assert_eq!(step(&seen)["checkpoint"]["value"], "orders:42000");
    let script = v.get("/assets/migration.js").text;
    assert!(
        script.contains("<dt>Checkpoint</dt>") && script.contains("r.checkpoint.value"),
        "{script}"
    );

    std::fs::write(dir.path("runbooks").join("go"), "").expect("gate file");
    s.wait_state(&id, "certified");
}
