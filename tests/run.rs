//! `sensei run` and the lifecycle commands against real processes and a real SQLite store:
//! every lifecycle path, gates decided from another process, rollback order, retries,
//! timeouts that kill process trees, injection attempts, secret masking, concurrency and
//! pools, and operations from another shell.

mod support;

use support::{Sandbox, alive, pids_in, wait_for};

const PHASES: &str = r#"
version: 1
name: phases
steps:
  - id: inspect
    phase: analyze
    run: echo inspect >> trace
  - id: decide
    phase: plan
    run: echo decide >> trace
  - id: copy
    run: echo copy >> trace
  - id: verify
    phase: validate
    run: echo verify >> trace
"#;

#[test]
fn a_runbook_without_gates_walks_every_state_to_certified() {
    let sb = Sandbox::new();
    let file = sb.write("phases.yaml", PHASES);
    let run = sb.sensei(&["run", file.to_str().expect("utf-8")]).ok();
    let id = run.id();
    assert!(
        run.stdout
            .lines()
            .last()
            .expect("a last line")
            .ends_with("certified"),
        "{}",
        run.stdout
    );
    assert_eq!(sb.read("trace"), "inspect\ndecide\ncopy\nverify\n");
    assert_eq!(
        sb.states(&id),
        [
            "analyzing",
            "planning",
            "awaiting_approval",
            "approved",
            "running",
            "completed",
            "validating",
            "certified"
        ]
    );
    let approved = sb
        .events(&id)
        .into_iter()
        .find(|e| e["data"]["to"] == "approved")
        .expect("a change to approved");
    assert_eq!(approved["data"]["reason"], "no gates");
    let status = sb.status(&id);
    assert_eq!(status["state"], "certified");
    let steps = status["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 4, "{status}");
    for step in steps {
        assert_eq!(step["state"], "succeeded", "{step}");
        assert_eq!(step["attempts"], 1);
    }
}

#[test]
fn params_that_do_not_fit_are_refused_before_anything_runs() {
    let sb = Sandbox::new();
    let file = sb.write(
        "p.yaml",
        "version: 1\nname: p\nparams:\n  n: { type: integer, required: true }\nsteps:\n  - id: a\n    run: touch ran\n",
    );
    let f = file.to_str().expect("utf-8");
    for (args, message) in [
        (vec!["run", f], "param `n` is required"),
        (
            vec!["run", f, "-p", "n=seven"],
            "param `n` must be an integer, got `seven`",
        ),
        (
            vec!["run", f, "-p", "n=1", "-p", "m=2"],
            "unknown param `m`",
        ),
    ] {
        let run = sb.sensei(&args);
        assert_eq!(run.code, 2, "{run:?}");
        assert!(run.stderr.contains(message), "{}", run.stderr);
        assert!(!run.stdout.contains("created"), "{}", run.stdout);
    }
    assert!(!sb.path("ran").exists());
}

#[test]
fn a_parameter_can_never_inject_a_command() {
    let sb = Sandbox::new();
    let file = sb.write(
        "inject.yaml",
        "version: 1\nname: inject\nparams:\n  v: { type: string }\nsteps:\n  - id: echo\n    run: echo {{params.v}} > out\n",
    );
    for value in [
        "x; touch pwned",
        "$(touch pwned)",
        "`touch pwned`",
        "a' ; touch pwned; echo '",
        "x\ntouch pwned",
    ] {
        let arg = format!("v={value}");
        sb.sensei(&["run", file.to_str().expect("utf-8"), "-p", &arg])
            .ok();
        assert_eq!(sb.read("out").trim_end(), value);
        assert!(!sb.path("pwned").exists(), "injected with {value:?}");
    }
}

#[test]
fn secrets_are_masked_in_logs_events_status_and_errors() {
    let sb = Sandbox::new();
    let file = sb.write(
        "secret.yaml",
        r#"version: 1
name: secret
params:
  token: { type: string, secret: true }
steps:
  - id: leak
    run: "echo the token is {{params.token}}; echo token={{params.token}} >> $SENSEI_OUTPUT"
  - id: fail
    needs: [leak]
    run: "echo bad {{params.token}} >&2; exit 3"
"#,
    );
    let run = sb.sensei(&[
        "run",
        file.to_str().expect("utf-8"),
        "-p",
        "token=hunter2-s3cret",
    ]);
    assert_eq!(run.code, 1, "{run:?}");
    let id = run.id();
    let logs = sb.sensei(&["logs", &id]).ok();
    assert!(logs.stdout.contains("the token is ***"), "{}", logs.stdout);
    // Each read succeeded and holds what the secret would be in, so its absence means masked.
    let events = sb.sensei(&["events", &id, "--format", "json"]).ok();
    assert!(events.stdout.contains("bad ***"), "{}", events.stdout);
    let status = sb.sensei(&["status", &id, "--format", "json"]).ok();
    assert!(status.stdout.contains("bad ***"), "{}", status.stdout);
    let everything = format!(
        "{}{}{}{}{}",
        run.stdout, run.stderr, logs.stdout, events.stdout, status.stdout
    );
    assert!(
        !everything.contains("hunter2"),
        "secret leaked:\n{everything}"
    );
    assert!(
        sb.step(&id, "fail")["error"]
            .as_str()
            .expect("the step's error")
            .contains("bad ***")
    );
}

#[test]
fn transient_exit_codes_are_retried_and_others_fail_at_once() {
    let sb = Sandbox::new();
    let file = sb.write(
        "retry.yaml",
        r#"version: 1
name: retry
defaults:
  retry: { attempts: 3, backoff: 10ms, max_backoff: 50ms, on_exit_codes: [75] }
steps:
  - id: flaky
    run: "echo x >> flaky.count; [ $(wc -l < flaky.count) -ge 3 ] || exit 75"
  - id: broken
    needs: [flaky]
    run: "echo x >> broken.count; exit 4"
"#,
    );
    let run = sb.sensei(&["run", file.to_str().expect("utf-8")]);
    assert_eq!(run.code, 1, "{run:?}");
    let id = run.id();
    assert_eq!(sb.step(&id, "flaky")["attempts"], 3);
    assert_eq!(sb.step(&id, "flaky")["state"], "succeeded");
    assert_eq!(sb.read("broken.count").lines().count(), 1);
    assert_eq!(sb.step(&id, "broken")["state"], "failed");
    let retrying = sb
        .events(&id)
        .iter()
        .filter(|e| e["kind"] == "step_retrying")
        .count();
    assert_eq!(retrying, 2);
    assert_eq!(sb.state(&id), "failed");
}

#[test]
fn a_timeout_kills_the_whole_process_tree() {
    let sb = Sandbox::new();
    let file = sb.write(
        "timeout.yaml",
        r#"version: 1
name: timeout
steps:
  - id: hang
    timeout: 300ms
    run: "echo $$ > pids; sleep 300 & echo $! >> pids; wait"
"#,
    );
    let run = sb.sensei(&["run", file.to_str().expect("utf-8")]);
    assert_eq!(run.code, 1, "{run:?}");
    let id = run.id();
    assert!(
        sb.step(&id, "hang")["error"]
            .as_str()
            .expect("the step's error")
            .contains("timed out after 300ms")
    );
    let pids = pids_in(&sb.path("pids"));
    assert_eq!(pids.len(), 2);
    for pid in pids {
        wait_for("the step's processes to die", || {
            (!alive(pid)).then_some(())
        });
    }
}

#[test]
fn on_failure_rollback_undoes_succeeded_steps_in_reverse_dependency_order_then_retry_keeps_them() {
    let sb = Sandbox::new();
    let file = sb.write(
        "rollback.yaml",
        r#"version: 1
name: rollback
on_failure: rollback
steps:
  - id: a
    run: echo a >> ran
    rollback: echo undo-a >> undone
  - id: b
    needs: [a]
    run: echo b >> ran
    rollback: echo undo-b >> undone
  - id: c
    needs: [b]
    run: echo c >> ran
  - id: d
    needs: [c]
    run: "[ -e fixed ] && echo d >> ran"
"#,
    );
    let run = sb.sensei(&["run", file.to_str().expect("utf-8")]);
    assert_eq!(run.code, 1, "{run:?}");
    let id = run.id();
    assert_eq!(sb.read("undone"), "undo-b\nundo-a\n");
    assert_eq!(sb.state(&id), "failed");
    assert_eq!(sb.step(&id, "a")["state"], "rolled_back");
    assert_eq!(sb.step(&id, "c")["state"], "succeeded");
    let kinds: Vec<String> = sb
        .events(&id)
        .iter()
        .map(|e| e["kind"].as_str().expect("an event kind").to_owned())
        .collect();
    assert!(
        kinds.contains(&"rollback_started".to_owned())
            && kinds.contains(&"rollback_finished".to_owned())
    );

    sb.write("fixed", "");
    sb.sensei(&["retry", &id]).ok();
    assert_eq!(sb.state(&id), "certified");
    // a and b were rolled back, so they ran again; c had succeeded and was kept.
    assert_eq!(sb.read("ran"), "a\nb\nc\na\nb\nd\n");
}

#[test]
fn concurrency_and_pools_limit_how_many_steps_run_together() {
    let sb = Sandbox::new();
    let mut text =
        String::from("version: 1\nname: limits\nconcurrency: 3\npools: { db: 1 }\nsteps:\n");
    for i in 0..6 {
        text.push_str(&format!(
            "  - id: s{i}\n    run: \"echo + >> all; sleep 0.2; echo - >> all\"\n"
        ));
    }
    for i in 0..3 {
        text.push_str(&format!(
            "  - id: p{i}\n    pool: db\n    run: \"echo + >> pool; sleep 0.1; echo - >> pool\"\n"
        ));
    }
    let file = sb.write("limits.yaml", &text);
    sb.sensei(&["run", file.to_str().expect("utf-8")]).ok();
    let peak = |name: &str| {
        let mut now = 0i32;
        let mut peak = 0;
        for line in sb.read(name).lines() {
            now += if line == "+" { 1 } else { -1 };
            peak = peak.max(now);
        }
        peak
    };
    assert!(peak("all") <= 3, "more than 3 steps ran together");
    assert!(peak("all") >= 2, "steps did not run in parallel");
    assert_eq!(peak("pool"), 1, "the pool of 1 was exceeded");
}

const GATED: &str = r#"
version: 1
name: gated
steps:
  - id: prepare
    phase: plan
    run: echo prepare >> trace
  - id: signoff
    gate: { approvers: [alice, bob, starter], required: 2 }
  - id: cutover
    run: echo cutover >> trace
"#;

#[test]
fn a_gate_waits_for_approvals_from_other_processes_and_refuses_the_starter() {
    let sb = Sandbox::new();
    let file = sb.write("gated.yaml", GATED);
    let bg = sb.spawn(&["run", file.to_str().expect("utf-8")]);
    let id = bg.id();
    wait_for("the gate to wait", || {
        (sb.step(&id, "signoff")["state"] == "waiting").then_some(())
    });
    assert_eq!(sb.state(&id), "awaiting_approval");
    assert!(
        bg.stdout()
            .contains(&format!("sensei approve {id} signoff")),
        "{}",
        bg.stdout()
    );

    let own = sb.sensei(&["approve", &id, "signoff", "--as", "starter"]);
    assert_eq!(own.code, 3, "{own:?}");
    assert!(
        own.stderr.contains("starter started migration"),
        "{}",
        own.stderr
    );
    let stranger = sb.sensei(&["approve", &id, "signoff", "--as", "mallory"]);
    assert_eq!(stranger.code, 3);
    assert!(
        stranger
            .stderr
            .contains("its approvers are alice, bob, starter"),
        "{}",
        stranger.stderr
    );

    sb.sensei(&[
        "approve",
        &id,
        "signoff",
        "--as",
        "alice",
        "--comment",
        "looks good",
    ])
    .ok();
    let twice = sb.sensei(&["approve", &id, "signoff", "--as", "alice"]);
    assert_eq!(twice.code, 3, "{twice:?}");
    assert!(
        !sb.read("trace").contains("cutover"),
        "ran before the second approval"
    );
    sb.sensei(&["approve", &id, "signoff", "--as", "bob"]).ok();
    let run = bg.finish();
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(sb.read("trace"), "prepare\ncutover\n");
    let events = sb.events(&id);
    let decisions: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["kind"] == "gate_decided")
        .collect();
    assert_eq!(decisions.len(), 2);
    // The history orders what the check after alice's approval could only see so far: the
    // cutover started after the second approval, not on the first.
    let cutover = events
        .iter()
        .find(|e| e["kind"] == "step_started" && e["step"] == "cutover")
        .expect("the cutover started");
    let seq = |e: &serde_json::Value| e["seq"].as_i64().expect("a seq");
    assert!(seq(cutover) > seq(decisions[1]), "{events:?}");
    assert_eq!(decisions[0]["data"]["who"], "alice");
    assert_eq!(decisions[0]["data"]["comment"], "looks good");
    assert!(
        decisions[0]["data"]["digest"]
            .as_str()
            .expect("a digest")
            .starts_with("sha256:")
    );
}

#[test]
fn a_rejected_gate_cancels_the_migration() {
    let sb = Sandbox::new();
    let file = sb.write("gated.yaml", GATED);
    let bg = sb.spawn(&["run", file.to_str().expect("utf-8")]);
    let id = bg.id();
    wait_for("the gate to wait", || {
        (sb.step(&id, "signoff")["state"] == "waiting").then_some(())
    });
    sb.sensei(&["reject", &id, "signoff", "--as", "bob", "-m", "not tonight"])
        .ok();
    let run = bg.finish();
    assert_eq!(run.code, 1);
    assert_eq!(sb.state(&id), "cancelled");
    assert!(!sb.read("trace").contains("cutover"));
}

const SLOW: &str = r#"
version: 1
name: slow
steps:
  - id: first
    run: "echo started > first.started; while [ ! -e go ]; do sleep 0.02; done"
  - id: second
    needs: [first]
    run: echo second >> trace
"#;

#[test]
fn pause_from_another_shell_lets_the_running_step_finish_then_resume_continues() {
    let sb = Sandbox::new();
    let file = sb.write("slow.yaml", SLOW);
    let bg = sb.spawn(&["run", file.to_str().expect("utf-8")]);
    let id = bg.id();
    wait_for("the first step", || {
        sb.path("first.started").exists().then_some(())
    });
    let pause = sb.spawn(&["pause", &id, "--as", "ops"]);
    wait_for("paused", || (sb.state(&id) == "paused").then_some(()));
    sb.write("go", "");
    assert_eq!(pause.finish().code, 0);
    let run = bg.finish();
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(sb.step(&id, "first")["state"], "succeeded");
    assert_eq!(sb.step(&id, "second")["state"], "pending");
    let illegal = sb.sensei(&["pause", &id]);
    assert_eq!(illegal.code, 3);
    assert!(
        illegal.stderr.contains("cannot pause a paused migration"),
        "{}",
        illegal.stderr
    );
    sb.sensei(&["resume", &id]).ok();
    assert_eq!(sb.state(&id), "certified");
    assert_eq!(sb.read("trace"), "second\n");
}

#[test]
fn cancel_from_another_shell_pauses_then_cancels_and_kills_running_steps() {
    let sb = Sandbox::new();
    let file = sb.write(
        "hang.yaml",
        "version: 1\nname: hang\nsteps:\n  - id: hang\n    run: \"echo $$ > pid; sleep 300\"\n  - id: after\n    needs: [hang]\n    run: touch after\n",
    );
    let bg = sb.spawn(&["run", file.to_str().expect("utf-8")]);
    let id = bg.id();
    wait_for("the step", || sb.path("pid").exists().then_some(()));
    sb.sensei(&["cancel", &id, "--as", "ops"]).ok();
    let run = bg.finish();
    assert_eq!(run.code, 1);
    let states = sb.states(&id);
    assert_eq!(states[states.len() - 2..], ["paused", "cancelled"]);
    assert_eq!(sb.step(&id, "after")["state"], "cancelled");
    for pid in pids_in(&sb.path("pid")) {
        wait_for("the step process to die", || (!alive(pid)).then_some(()));
    }
    let again = sb.sensei(&["resume", &id]);
    assert_eq!(again.code, 3, "{again:?}");
}

#[test]
fn a_second_driver_is_refused() {
    let sb = Sandbox::new();
    let file = sb.write("slow.yaml", SLOW);
    let bg = sb.spawn(&["run", file.to_str().expect("utf-8")]);
    let id = bg.id();
    wait_for("the first step", || {
        sb.path("first.started").exists().then_some(())
    });
    let second = sb.sensei(&["resume", &id]);
    assert_eq!(second.code, 3, "{second:?}");
    assert!(
        second.stderr.contains("is being driven by process"),
        "{}",
        second.stderr
    );
    sb.write("go", "");
    assert_eq!(bg.finish().code, 0);
}

#[test]
fn when_skips_and_dynamic_fan_out_expands_from_step_outputs() {
    let sb = Sandbox::new();
    let file = sb.write(
        "fan.yaml",
        r#"version: 1
name: fan
params:
  dry_run: { type: boolean, default: true }
steps:
  - id: list
    outputs: json
    run: 'echo "{\"tables\": [\"orders\", \"items\"]}"'
  - id: copy
    needs: [list]
    for_each: "{{steps.list.outputs.tables}}"
    run: echo {{item}} >> copied
  - id: real-only
    needs: [copy]
    when: "{{not params.dry_run}}"
    run: touch real
  - id: last
    needs: [real-only]
    run: touch last
"#,
    );
    let run = sb.sensei(&["run", file.to_str().expect("utf-8")]).ok();
    let id = run.id();
    let mut copied: Vec<String> = sb.read("copied").lines().map(str::to_owned).collect();
    copied.sort();
    assert_eq!(copied, ["items", "orders"]);
    assert_eq!(sb.step(&id, "copy[orders]")["state"], "succeeded");
    assert_eq!(sb.step(&id, "real-only")["state"], "skipped");
    assert!(!sb.path("real").exists());
    assert!(
        sb.path("last").exists(),
        "a skipped step counts as finished for its dependents"
    );
}

#[test]
fn without_on_exit_codes_every_failure_is_retried_up_to_attempts() {
    let sb = Sandbox::new();
    let file = sb.write(
        "retry-all.yaml",
        "version: 1\nname: retry-all\nsteps:\n  - id: flaky\n    retry: { attempts: 3, backoff: 10ms }\n    run: \"echo x >> count; [ $(wc -l < count) -ge 3 ] || exit 1\"\n",
    );
    let run = sb.sensei(&["run", file.to_str().expect("utf-8")]).ok();
    let id = run.id();
    assert_eq!(sb.step(&id, "flaky")["attempts"], 3);
    assert_eq!(sb.read("count").lines().count(), 3);
}
