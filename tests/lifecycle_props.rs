//! A property test of the lifecycle against the real binary: random sequences of operator
//! operations, each from its own process, while `sensei run` (and any `sensei resume` the
//! sequence starts) drives a migration. Whatever the order and timing, every recorded state
//! change must be one SPEC §3 allows (the table is written out here, independently of the
//! engine), each must start where the previous one ended, no command may crash, and the
//! migration must come to rest.
//!
//! The RNG has a fixed seed, so a failure names its case, seed and sequence, and runs the
//! same operations again (their timing may differ).

mod support;

use std::time::{Duration, Instant};
use support::{Background, Sandbox, wait_for};

/// SPEC §3, as written there.
const ALLOWED: &[(&str, &[&str])] = &[
    ("created", &["analyzing", "cancelled"]),
    ("analyzing", &["planning", "failed"]),
    ("planning", &["awaiting_approval", "failed"]),
    ("awaiting_approval", &["approved", "cancelled"]),
    ("approved", &["running", "cancelled"]),
    ("running", &["paused", "completed", "failed"]),
    ("paused", &["running", "cancelled"]),
    ("completed", &["validating"]),
    ("validating", &["certified", "failed"]),
    ("certified", &[]),
    ("failed", &["analyzing"]),
    ("cancelled", &[]),
];

fn allowed(from: &str, to: &str) -> bool {
    ALLOWED
        .iter()
        .any(|(f, tos)| *f == from && tos.contains(&to))
}

/// States in which nothing happens without an operator.
const RESTING: &[&str] = &["certified", "failed", "cancelled", "paused"];

const RUNBOOK: &str = r#"
version: 1
name: props
steps:
  - id: inspect
    phase: analyze
    run: echo inspect >> ran
  - id: signoff
    gate: { approvers: [alice, bob] }
  - id: prepare
    run: echo prepare >> ran
    rollback: echo undo-prepare >> undone
  - id: copy
    needs: [prepare]
    run: "echo copy >> ran; while [ ! -e go ]; do sleep 0.02; done"
    rollback: echo undo-copy >> undone
  - id: verify
    phase: validate
    run: echo verify >> ran
"#;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    ApproveAlice,
    RejectBob,
    Pause,
    Resume,
    Cancel,
    Retry,
    Rollback,
    /// Create the file that lets the slow step finish.
    Go,
    /// Start another `sensei resume` in the background.
    Driver,
}

/// The operations with weights: approvals move the migration on to where most operations
/// mean something; reject and cancel end it, so they come less often.
const OPS: &[(Op, usize)] = &[
    (Op::ApproveAlice, 3),
    (Op::RejectBob, 1),
    (Op::Pause, 3),
    (Op::Resume, 2),
    (Op::Cancel, 1),
    (Op::Retry, 2),
    (Op::Rollback, 2),
    (Op::Go, 2),
    (Op::Driver, 2),
];

fn pick(rng: &mut fastrand::Rng) -> Op {
    let total: usize = OPS.iter().map(|(_, w)| w).sum();
    let mut n = rng.usize(..total);
    for &(op, weight) in OPS {
        if n < weight {
            return op;
        }
        n -= weight;
    }
    OPS[0].0
}

impl Op {
    fn args(self, id: &str) -> Option<Vec<&str>> {
        Some(match self {
            Op::ApproveAlice => vec!["approve", id, "signoff", "--as", "alice"],
            Op::RejectBob => vec!["reject", id, "signoff", "--as", "bob"],
            Op::Pause => vec!["pause", id, "--as", "ops"],
            Op::Resume | Op::Driver => vec!["resume", id, "--as", "ops"],
            Op::Cancel => vec!["cancel", id, "--as", "ops"],
            Op::Retry => vec!["retry", id, "--as", "ops"],
            Op::Rollback => vec!["rollback", id, "--as", "ops"],
            Op::Go => return None,
        })
    }
}

/// A process started by the case, with what it was for.
struct Started {
    what: String,
    bg: Background,
}

/// Prints the case when a check fails, so it can be replayed.
struct Report {
    case: u64,
    seed: u64,
    ops: Vec<Op>,
    paces: Vec<bool>,
    log: Vec<String>,
}

impl Drop for Report {
    fn drop(&mut self) {
        if std::thread::panicking() || std::env::var_os("SENSEI_PROPS_VERBOSE").is_some() {
            eprintln!(
                "case {}{}: seed {:#x}, operations {:?}, patient {:?}\n{}",
                self.case,
                if std::thread::panicking() {
                    " failed"
                } else {
                    ""
                },
                self.seed,
                self.ops,
                self.paces,
                self.log.join("\n")
            );
        }
    }
}

/// Checks an exit code and stderr of a finished command.
fn check_exit(what: &str, code: i32, stdout: &str, stderr: &str) {
    assert!(
        matches!(code, 0 | 1 | 3),
        "`{what}` exited with {code}:\n{stdout}\n{stderr}"
    );
    for bad in [
        "panicked",
        "internal error",
        "cannot become",
        "stack backtrace",
    ] {
        assert!(
            !stderr.contains(bad),
            "`{what}` reported `{bad}`:\n{stdout}\n{stderr}"
        );
    }
}

/// Waits up to `limit` for a process; returns it if it is still running.
fn settle_within(started: Started, limit: Duration, log: &mut Vec<String>) -> Option<Started> {
    let deadline = Instant::now() + limit;
    let mut started = started;
    loop {
        if let Some(status) = started.bg.child.try_wait().expect("try_wait") {
            // -1: killed by a signal, which check_exit refuses.
            let code = status.code().unwrap_or(-1);
            let (out, err) = (started.bg.stdout(), started.bg.stderr());
            log.push(format!(
                "  `{}` -> {code}: {}",
                started.what,
                // A command may print nothing on stderr.
                err.lines().next().unwrap_or_default()
            ));
            check_exit(&started.what, code, &out, &err);
            return None;
        }
        if Instant::now() >= deadline {
            return Some(started);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn run_case(case: u64) {
    // A fixed seed; SENSEI_PROPS_SEED=<n> explores other sequences.
    let base = match std::env::var("SENSEI_PROPS_SEED") {
        Ok(s) => s
            .parse::<u64>()
            .unwrap_or_else(|e| panic!("SENSEI_PROPS_SEED={s:?} is not a number: {e}")),
        Err(std::env::VarError::NotPresent) => 0x5e_45e1_0000,
        Err(e) => panic!("SENSEI_PROPS_SEED: {e}"),
    };
    let seed = base.wrapping_add(case);
    let mut rng = fastrand::Rng::with_seed(seed);
    let count = rng.usize(4..=8);
    let ops: Vec<Op> = (0..count).map(|_| pick(&mut rng)).collect();
    // Before each operation: issue it at once, or first let the migration move on (its
    // state changes, or 300ms pass) — races and settled states both get their turn.
    let paces: Vec<bool> = (0..count).map(|_| rng.bool()).collect();
    // Where the sequence starts: wherever the run is (0), at the waiting gate (1), or with
    // the gate approved and the slow step running (2).
    let start = rng.usize(..3);
    let mut report = Report {
        case,
        seed,
        ops: ops.clone(),
        paces: paces.clone(),
        log: Vec::new(),
    };

    let sb = Sandbox::new();
    let file = sb.write("props.yaml", RUNBOOK);
    let run = sb.spawn(&["run", file.to_str().expect("utf-8")]);
    let id = run.id();
    let mut running = vec![Started {
        what: "run".into(),
        bg: run,
    }];
    if start >= 1 {
        wait_for("the gate to wait", || {
            (sb.step(&id, "signoff")["state"] == "waiting").then_some(())
        });
    }
    if start == 2 {
        sb.sensei(&["approve", &id, "signoff", "--as", "alice"])
            .ok();
        wait_for("the slow step", || {
            (sb.step(&id, "copy")["state"] == "running").then_some(())
        });
    }
    report.log.push(format!("start {start}"));
    let mut last = sb.state(&id);
    for (&op, &patient) in ops.iter().zip(&paces) {
        if patient {
            let until = Instant::now() + Duration::from_millis(300);
            while sb.state(&id) == last && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        last = sb.state(&id);
        report.log.push(format!("{op:?} in {last}"));
        let Some(args) = op.args(&id) else {
            sb.write("go", "");
            continue;
        };
        let started = Started {
            what: args.join(" "),
            bg: sb.spawn(&args),
        };
        if op == Op::Driver {
            running.push(started);
            continue;
        }
        // A command that drives (resume, retry, an undriven pause/cancel/rollback) may
        // wait for the slow step or the gate: it then keeps driving in the background.
        if let Some(still) = settle_within(started, Duration::from_millis(700), &mut report.log) {
            running.push(still);
        }
    }

    // Let everything settle: the slow step may finish, a gate opened again by a retry is
    // approved, and every process must exit.
    sb.write("go", "");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut still = Vec::new();
        for started in running {
            if let Some(s) = settle_within(started, Duration::ZERO, &mut report.log) {
                still.push(s);
            }
        }
        running = still;
        if running.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            let stuck: Vec<String> = running
                .iter()
                .map(|s| format!("`{}`:\n{}\n{}", s.what, s.bg.stdout(), s.bg.stderr()))
                .collect();
            for s in running {
                s.bg.kill9();
            }
            panic!(
                "processes did not exit (state {}):\n{}",
                sb.state(&id),
                stuck.join("\n")
            );
        }
        if sb.step(&id, "signoff")["state"] == "waiting" {
            let approve = sb.sensei(&["approve", &id, "signoff", "--as", "alice"]);
            report
                .log
                .push(format!("  settle: approve -> {}", approve.code));
            check_exit(
                "approve (settle)",
                approve.code,
                &approve.stdout,
                &approve.stderr,
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }

    let status = sb.status(&id);
    let state = status["state"]
        .as_str()
        .unwrap_or_else(|| panic!("no state: {status}"))
        .to_owned();
    report.log.push(format!("final state {state}"));
    assert!(
        RESTING.contains(&state.as_str()),
        "no process drives the migration, yet it is {state}: {status}"
    );
    assert!(
        status
            .get("driver")
            .unwrap_or_else(|| panic!("no driver field: {status}"))
            .is_null(),
        "{status}"
    );

    let events = sb.events(&id);
    let changes: Vec<(String, String)> = events
        .iter()
        .filter(|e| e["kind"] == "state_changed")
        .map(|e| {
            let end = |key: &str| {
                e["data"][key]
                    .as_str()
                    .unwrap_or_else(|| panic!("a state change without `{key}`: {e}"))
                    .to_owned()
            };
            (end("from"), end("to"))
        })
        .collect();
    report.log.push(format!("transitions {changes:?}"));
    let mut at = "created".to_owned();
    for (from, to) in &changes {
        assert_eq!(from, &at, "a change starts where the previous one ended");
        assert!(allowed(from, to), "SPEC §3 does not allow {from} -> {to}");
        at.clone_from(to);
    }
    assert_eq!(at, state, "the last change ends in the migration's state");
}

// Five tests of five cases each, so the harness runs them side by side.
#[test]
fn random_operations_keep_the_lifecycle_legal_cases_0_to_4() {
    (0..5).for_each(run_case);
}

#[test]
fn random_operations_keep_the_lifecycle_legal_cases_5_to_9() {
    (5..10).for_each(run_case);
}

#[test]
fn random_operations_keep_the_lifecycle_legal_cases_10_to_14() {
    (10..15).for_each(run_case);
}

#[test]
fn random_operations_keep_the_lifecycle_legal_cases_15_to_19() {
    (15..20).for_each(run_case);
}

#[test]
fn random_operations_keep_the_lifecycle_legal_cases_20_to_24() {
    (20..25).for_each(run_case);
}

/// A cancel asked while the migration runs may reach its driver only after the execute phase
/// ended (the step finishes as the request is committed): the driver must then refuse it as
/// the lifecycle does (validating cannot become cancelled), not crash on the transition, and
/// the `cancel` command must say it was not carried out rather than wait.
#[test]
fn a_cancel_that_arrives_after_the_execute_phase_is_refused_not_crashed() {
    for round in 0..5 {
        let sb = Sandbox::new();
        let file = sb.write(
            "late.yaml",
            &format!(
                r#"version: 1
name: late
steps:
  - id: copy
    run: "until '{bin}' events {{{{migration.id}}}} | grep -q operator_reques[t]; do sleep 0.01; done"
  - id: verify
    phase: validate
    run: sleep 0.3
"#,
                bin = support::BIN
            ),
        );
        let run = sb.spawn(&["run", file.to_str().expect("utf-8")]);
        let id = run.id();
        wait_for("the execute step", || {
            (sb.step(&id, "copy")["state"] == "running").then_some(())
        });
        let cancel = sb.spawn(&["cancel", &id, "--as", "ops"]);
        let cancel = cancel.finish();
        let run = run.finish();
        let what = format!("round {round}:\n{cancel:?}\n{run:?}");
        check_exit("cancel", cancel.code, &cancel.stdout, &cancel.stderr);
        check_exit("run", run.code, &run.stdout, &run.stderr);
        match sb.state(&id).as_str() {
            "cancelled" => assert_eq!(cancel.code, 0, "{what}"),
            "certified" => {
                assert_eq!(cancel.code, 3, "{what}");
                assert!(cancel.stderr.contains("validating"), "{what}");
            }
            other => panic!("unexpected state {other}: {what}"),
        }
        let changes = sb.states(&id);
        assert!(
            changes
                .last()
                .is_some_and(|s| s == "cancelled" || s == "certified"),
            "{changes:?}"
        );
    }
}

/// `pause`, `cancel` and `rollback` succeed (exit 0) when they are carried out, whether a
/// driver did it on request or, with no driver, the command itself.
#[test]
fn operations_carried_out_without_a_driver_exit_0() {
    let sb = Sandbox::new();
    let file = sb.write(
        "slow.yaml",
        r#"version: 1
name: slow
steps:
  - id: prepare
    run: echo prepare >> ran
    rollback: echo undo-prepare >> undone
  - id: copy
    needs: [prepare]
    run: "echo started > copy.started; while [ ! -e go ]; do sleep 0.02; done"
"#,
    );
    // Undriven: the driver was killed while the slow step ran.
    let run = sb.spawn(&["run", file.to_str().expect("utf-8")]);
    let id = run.id();
    wait_for("the slow step", || {
        sb.path("copy.started").exists().then_some(())
    });
    run.kill9();
    let pause = sb.sensei(&["pause", &id, "--as", "ops"]);
    assert_eq!(pause.code, 0, "{pause:?}");
    assert_eq!(sb.state(&id), "paused");
    let rollback = sb.sensei(&["rollback", &id, "--as", "ops"]);
    assert_eq!(rollback.code, 0, "{rollback:?}");
    assert_eq!(sb.state(&id), "failed");
    assert_eq!(sb.read("undone"), "undo-prepare\n");

    // A failed rollback action makes `rollback` exit 1.
    let sb = Sandbox::new();
    let file = sb.write(
        "bad-undo.yaml",
        "version: 1\nname: bad-undo\nsteps:\n  - id: a\n    run: \"true\"\n    rollback: exit 7\n  - id: b\n    needs: [a]\n    run: exit 1\n",
    );
    let id = sb.sensei(&["run", file.to_str().expect("utf-8")]).id();
    let rollback = sb.sensei(&["rollback", &id, "--as", "ops"]);
    assert_eq!(rollback.code, 1, "{rollback:?}");

    // Undriven cancel of a migration waiting at a gate.
    let sb = Sandbox::new();
    let file = sb.write(
        "gate.yaml",
        "version: 1\nname: gate\nsteps:\n  - id: signoff\n    gate: { approvers: [alice] }\n  - id: after\n    run: touch after.ran\n",
    );
    let run = sb.spawn(&["run", file.to_str().expect("utf-8")]);
    let id = run.id();
    wait_for("the gate", || {
        (sb.step(&id, "signoff")["state"] == "waiting").then_some(())
    });
    run.kill9();
    let cancel = sb.sensei(&["cancel", &id, "--as", "ops"]);
    assert_eq!(cancel.code, 0, "{cancel:?}");
    assert_eq!(sb.state(&id), "cancelled");
    let late = sb.sensei(&["approve", &id, "signoff", "--as", "alice"]);
    assert_eq!(late.code, 3, "{late:?}");
}
