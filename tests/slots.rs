//! Limits that must always hold (issue "Trust", items 6 and 7): every attempt — a first one,
//! a retry, a polling check — starts only with a slot of `concurrency` and of its pool, and
//! only while the migration may start work (not paused, not cancelled, not past its window's
//! cutoff); pools are shared by every migration on one store, and a dead driver's slots come
//! back.
//!
//! Overlaps are caught by the steps themselves: each holds a lock directory while it runs
//! (`mkdir` is atomic) and writes to `overlaps` when it finds the lock taken (or, where a step
//! is killed and cannot clean up, a file naming a holder's pid that is still running, not a
//! zombie).

mod harness;
mod support;

use std::time::{Duration, Instant};
use support::{Sandbox, wait_for};

/// Holds the lock directory `lock` for `secs` seconds as `name`; an overlap is written down.
fn hold(name: &str, secs: &str) -> String {
    format!(
        "mkdir lock || echo {name} >> overlaps; sleep {secs}; rmdir lock 2>/dev/null; echo {name} >> done"
    )
}

fn assert_no_overlap(sb: &Sandbox) {
    assert!(
        !sb.path("overlaps").exists(),
        "steps ran at once beyond a limit: {:?}",
        sb.lines("overlaps")
    );
}

/// The seq of the `nth` event of `kind` for `step`.
fn seq(events: &[serde_json::Value], kind: &str, step: &str, nth: usize) -> i64 {
    events
        .iter()
        .filter(|e| e["kind"] == kind && e["step"] == step)
        .nth(nth)
        .and_then(|e| e["seq"].as_i64())
        .unwrap_or_else(|| panic!("no {kind} #{nth} of {step} in {events:?}"))
}

/// A step that fails its first attempt, then succeeds.
const FAIL_ONCE: &str = "if [ -e tried ]; then echo ok; else touch tried; exit 1; fi";

#[test]
fn a_retry_waits_for_its_pool_slot_and_the_pool_never_drifts() {
    let sb = Sandbox::new();
    let runbook = format!(
        r#"
version: 1
name: pooled
concurrency: 4
pools: {{ primary: 1 }}
steps:
  - id: flaky
    pool: primary
    retry: {{ attempts: 2, backoff: 100ms, max_backoff: 100ms }}
    run: "mkdir lock || echo flaky >> overlaps; rmdir lock; {FAIL_ONCE}"
  - id: long
    pool: primary
    run: "{long}"
  - id: a
    needs: [flaky, long]
    pool: primary
    run: "{a}"
  - id: b
    needs: [flaky, long]
    pool: primary
    run: "{b}"
"#,
        long = hold("long", "1"),
        a = hold("a", "0.3"),
        b = hold("b", "0.3"),
    );
    sb.write("pooled.yaml", &runbook);
    let run = sb.sensei(&["run", "pooled.yaml"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_no_overlap(&sb);
    assert_eq!(sb.lines("done").len(), 3, "{:?}", sb.lines("done"));
    // The retry waited for `long` to give the slot back (it started without one).
    let events = sb.events(&run.id());
    assert!(seq(&events, "step_started", "flaky", 1) > seq(&events, "step_succeeded", "long", 0));
}

/// A step that fails with a backoff of about `backoff` while `long` runs until `go` exists.
fn retrying_beside_a_long_step(backoff: &str, long: &str) -> String {
    format!(
        r#"
version: 1
name: retrying
concurrency: 4
steps:
  - id: long
    run: "{long}"
  - id: flaky
    retry: {{ attempts: 3, backoff: {backoff}, max_backoff: {backoff} }}
    run: "echo x >> attempts; exit 1"
"#
    )
}

const UNTIL_GO: &str = "touch long-started; while [ ! -e go ]; do sleep 0.02; done";

/// Waits until `flaky` is retrying, and returns when its next attempt is due (real time).
fn retry_due(sb: &Sandbox, id: &str) -> Instant {
    wait_for("flaky to be retrying", || {
        let status = sb.status(id);
        let flaky = status["steps"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["step"] == "flaky"))
            .cloned()
            .expect("flaky in the status");
        (flaky["state"] == "retrying").then_some(())
    });
    let events = sb.events(id);
    let retrying = events
        .iter()
        .find(|e| e["kind"] == "step_retrying")
        .expect("step_retrying");
    let delay = retrying["data"]["delay_ms"].as_u64().expect("delay_ms");
    Instant::now() + Duration::from_millis(delay)
}

#[test]
fn no_retry_starts_after_a_pause() {
    let sb = Sandbox::new();
    // A backoff long enough that the pause lands before the retry falls due.
    sb.write("r.yaml", &retrying_beside_a_long_step("2s", UNTIL_GO));
    let bg = sb.spawn(&["run", "r.yaml"]);
    let id = wait_for("the id", || support::migration_id(&bg.stdout()));
    let due = retry_due(&sb, &id);
    sb.sensei(&["pause", &id]).ok();
    // Let the retry fall due while the paused migration still has `long` running.
    while Instant::now() < due + Duration::from_millis(300) {
        std::thread::sleep(Duration::from_millis(20));
    }
    sb.write("go", "");
    let run = bg.finish();
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.contains("paused"), "{run:?}");
    assert_eq!(sb.lines("attempts").len(), 1, "a retry ran after the pause");
    assert_eq!(sb.state(&id), "paused");
    // Resume continues: the retry runs then.
    std::fs::remove_file(sb.path("attempts")).expect("remove attempts");
    let resumed = sb.sensei(&["resume", &id]);
    assert_eq!(resumed.code, 1, "flaky fails for good: {resumed:?}");
    assert!(!sb.lines("attempts").is_empty());
}

#[test]
fn no_retry_starts_after_a_cancel_and_the_cancel_does_not_wait_for_one() {
    let sb = Sandbox::new();
    // `long` takes a while to stop (it finishes its cleanup on SIGTERM): long enough for the
    // retry to fall due while the cancel waits for it.
    let long = "trap 'sleep 1.5; exit 0' TERM; touch long-started; while true; do sleep 0.02; done";
    sb.write("r.yaml", &retrying_beside_a_long_step("500ms", long));
    let bg = sb.spawn(&["run", "r.yaml"]);
    let id = wait_for("the id", || support::migration_id(&bg.stdout()));
    retry_due(&sb, &id);
    let cancel = sb.sensei(&["cancel", &id]);
    assert_eq!(cancel.code, 0, "{cancel:?}");
    let run = bg.finish();
    assert!(run.stdout.contains("cancelled"), "{run:?}");
    assert_eq!(
        sb.lines("attempts").len(),
        1,
        "a retry ran after the cancel"
    );
    let flaky = sb.step(&id, "flaky");
    assert_eq!(flaky["state"], "cancelled", "{flaky}");
}

#[test]
fn no_retry_starts_past_its_windows_cutoff() {
    let sb = Sandbox::new();
    sb.write(
        "w.yaml",
        r#"
version: 1
name: windowed
windows:
  night: { cron: "0 1 * * *", duration: 1h, cutoff: 30m, timezone: UTC, on_close: fail }
steps:
  - id: flaky
    window: night
    retry: { attempts: 3, backoff: 2s, max_backoff: 2s }
    run: "echo x >> attempts; exit 1"
"#,
    );
    // One second before the cutoff: the first attempt may start, its retry falls past it.
    let bg = sb.spawn_with_env(
        &["run", "w.yaml"],
        &[("SENSEI_NOW", "2027-03-06T01:29:59Z")],
    );
    let id = wait_for("the id", || support::migration_id(&bg.stdout()));
    wait_for("flaky to wait for its window", || {
        let flaky = sb.step(&id, "flaky");
        let reason = flaky["reason"].as_str().unwrap_or_default().to_owned();
        reason.contains("window night").then_some(())
    });
    assert_eq!(sb.lines("attempts").len(), 1, "a retry ran past the cutoff");
    assert_eq!(sb.step(&id, "flaky")["attempts"], 1);
    sb.sensei(&["cancel", &id]).ok();
    bg.finish();
    assert_eq!(sb.lines("attempts").len(), 1);
}

#[test]
fn a_polling_check_waits_for_a_slot_of_concurrency() {
    let sb = Sandbox::new();
    let runbook = format!(
        r#"
version: 1
name: polls
concurrency: 1
steps:
  - id: busy
    run: "{busy}"
  - id: settled
    check: "{{{{eq probe.outputs.ok \"yes\"}}}}"
    probe:
      run: "if [ -d lock ]; then echo settled >> overlaps; fi; echo ok=yes >> $SENSEI_OUTPUT"
    every: 50ms
    stable_for: 200ms
    timeout: 30s
"#,
        busy = hold("busy", "0.5"),
    );
    sb.write("p.yaml", &runbook);
    let run = sb.sensei(&["run", "p.yaml"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(sb.lines("done"), ["busy"]);
    assert_no_overlap(&sb);
}

const SHARED_POOL: &str = r#"
version: 1
name: shared
pools: { primary: 1 }
steps:
  - id: work
    pool: primary
    run: sh ../hold.sh
"#;

/// Holds the pool as the process named in `holder`, and writes down an overlap when that
/// file names another process still running (not a zombie: a killed step's shell may stay
/// one, its parent gone).
const HOLD_SH: &str = r#"
h=$(cat ../holder 2>/dev/null)
if [ -n "$h" ] && [ -e "/proc/$h/stat" ]; then
  state=$(cut -d')' -f2 "/proc/$h/stat" | cut -d' ' -f2)
  [ "$state" != Z ] && echo "$PWD" >> ../overlaps
fi
echo $$ > ../holder
touch started
while [ ! -e go ] && [ ! -e ../go ]; do sleep 0.02; done
rm -f ../holder
"#;

#[test]
fn a_pool_is_shared_by_every_migration_on_the_store_and_a_dead_drivers_slot_comes_back() {
    let sb = Sandbox::new();
    sb.write("hold.sh", HOLD_SH);
    for dir in ["a", "b", "c"] {
        std::fs::create_dir(sb.path(dir)).expect("mkdir");
        sb.write(&format!("{dir}/shared.yaml"), SHARED_POOL);
    }
    let first = sb.spawn(&["run", "a/shared.yaml"]);
    wait_for("a's step to hold the pool", || {
        sb.path("a/started").exists().then_some(())
    });
    let second = sb.spawn(&["run", "b/shared.yaml"]);
    let second_id = wait_for("b's id", || support::migration_id(&second.stdout()));
    wait_for("b's step to wait for the pool", || {
        let work = sb.step(&second_id, "work");
        let reason = work["reason"].as_str().unwrap_or_default().to_owned();
        (reason.contains("waiting for a slot in pool primary")).then_some(reason)
    });
    assert!(
        !sb.path("b/started").exists(),
        "b ran while a held the pool"
    );
    // a's driver dies (its watchdog kills its step): its slot comes back, and b goes on.
    first.kill9();
    wait_for("b's step to start", || {
        sb.path("b/started").exists().then_some(())
    });
    sb.write("go", "");
    let run = second.finish();
    assert_eq!(run.code, 0, "{run:?}");
    // A third migration on the same store finds the pool free again.
    let third = sb.sensei(&["run", "c/shared.yaml"]);
    assert_eq!(third.code, 0, "{third:?}");
    assert_no_overlap(&sb);
}

#[test]
fn a_server_shares_a_pool_between_the_migrations_it_drives() {
    let dir = harness::Dir::new();
    std::fs::write(dir.path("hold.sh"), HOLD_SH.replace("../", "../../")).expect("write hold.sh");
    for name in ["one", "two"] {
        std::fs::create_dir(dir.path("runbooks").join(name)).expect("mkdir");
    }
    // Both runbooks name the pool `primary`: one pool on the store, whatever the runbook.
    dir.runbook(
        "one.yaml",
        &SHARED_POOL
            .replace("name: shared", "name: one")
            .replace("run: sh ../hold.sh", "run: cd one && sh ../../hold.sh"),
    );
    dir.runbook(
        "two.yaml",
        &SHARED_POOL
            .replace("name: shared", "name: two")
            .replace("run: sh ../hold.sh", "run: cd two && sh ../../hold.sh"),
    );
    let s = dir.serve_ops();
    let first = s.create(Some("ops-token"), "one", "{}");
    s.post(&format!("/v1/migrations/{first}/start"), "")
        .expect(200);
    let started = |name: &str| dir.path("runbooks").join(name).join("started");
    wait_for("one's step to hold the pool", || {
        started("one").exists().then_some(())
    });
    let second = s.create(Some("ops-token"), "two", "{}");
    s.post(&format!("/v1/migrations/{second}/start"), "")
        .expect(200);
    let reason = wait_for("two's step to wait for the pool", || {
        let detail = s.get(&format!("/v1/migrations/{second}")).expect(200);
        let reason = detail.json["steps"][0]["reason"].as_str()?.to_owned();
        reason.contains("pool primary").then_some(reason)
    });
    assert!(reason.contains(&first), "the holder is named: {reason}");
    assert!(!started("two").exists(), "two ran while one held the pool");
    std::fs::write(dir.path("go"), "").expect("go");
    s.wait_state(&first, "certified");
    s.wait_state(&second, "certified");
    assert!(!dir.path("overlaps").exists(), "both held the pool at once");
}
