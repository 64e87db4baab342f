//! Crash tests: the engine is killed (`kill -9`, or an abort injected right after its Nth
//! commit, for every N) during steps, between steps and during a rollback; after `resume`,
//! no succeeded step has run twice, nothing is lost, and no step process outlived the engine.

mod support;

use support::{Sandbox, alive, pids_in, wait_for};

const BLOCKING: &str = r#"
version: 1
name: blocking
steps:
  - id: a
    run: echo a >> ran
  - id: b
    needs: [a]
    idempotent: IDEMPOTENT
    run: "echo b >> ran; echo $$ > b.pid; sleep 300 & echo $! >> b.pid; while [ ! -e go ]; do sleep 0.02; done"
  - id: c
    needs: [b]
    run: echo c >> ran
"#;

fn killed_during_a_step(idempotent: bool) -> (Sandbox, String) {
    let sb = Sandbox::new();
    let file = sb.write(
        "blocking.yaml",
        &BLOCKING.replace("IDEMPOTENT", &idempotent.to_string()),
    );
    let bg = sb.spawn(&["run", file.to_str().expect("utf-8")]);
    let id = bg.id();
    wait_for("step b to run", || {
        let pids = sb.path("b.pid");
        (pids.exists() && pids_in(&pids).len() == 2).then_some(())
    });
    bg.kill9();
    for pid in pids_in(&sb.path("b.pid")) {
        wait_for("the step's processes to die with the engine", || {
            (!alive(pid)).then_some(())
        });
    }
    sb.write("go", "");
    (sb, id)
}

#[test]
fn kill_9_during_a_non_idempotent_step_interrupts_it_and_the_operator_decides() {
    let (sb, id) = killed_during_a_step(false);
    let resumed = sb.sensei(&["resume", &id]);
    assert_eq!(resumed.code, 1, "{resumed:?}");
    assert!(
        resumed.stdout.contains("--retry-interrupted"),
        "{}",
        resumed.stdout
    );
    assert_eq!(sb.state(&id), "paused");
    assert_eq!(sb.step(&id, "b")["state"], "interrupted");
    sb.sensei(&["resume", &id, "--retry-interrupted"]).ok();
    assert_eq!(sb.state(&id), "certified");
    assert_eq!(
        sb.read("ran"),
        "a\nb\nb\nc\n",
        "a ran once, b was retried by the operator"
    );
}

#[test]
fn kill_9_during_an_idempotent_step_reruns_it_on_resume() {
    let (sb, id) = killed_during_a_step(true);
    sb.sensei(&["resume", &id]).ok();
    assert_eq!(sb.state(&id), "certified");
    assert_eq!(sb.read("ran"), "a\nb\nb\nc\n");
}

#[test]
fn skip_interrupted_lets_dependents_proceed() {
    let (sb, id) = killed_during_a_step(false);
    sb.sensei(&["resume", &id, "--skip-interrupted"]).ok();
    assert_eq!(sb.state(&id), "certified");
    assert_eq!(sb.step(&id, "b")["state"], "skipped");
    assert_eq!(sb.read("ran"), "a\nb\nc\n");
}

/// Resumes (retrying interrupted steps) until the migration rests in `want`.
fn resume_until(sb: &Sandbox, id: &str, want: &str) {
    for _ in 0..20 {
        if sb.state(id) == want {
            return;
        }
        let resumed = sb.sensei(&["resume", id, "--retry-interrupted"]);
        // 0: it ended well; 1: it failed or paused again. Anything else is a broken resume.
        assert!(matches!(resumed.code, 0 | 1), "{resumed:?}");
    }
    panic!("migration did not reach {want}: {}", sb.state(id));
}

const CHAIN: &str = r#"
version: 1
name: chain
concurrency: 1
steps:
  - id: s1
    phase: analyze
    run: echo s1 >> ran
  - id: s2
    run: echo s2 >> ran
  - id: s3
    needs: [s2]
    run: echo s3 >> ran
  - id: s4
    needs: [s3]
    run: echo s4 >> ran
  - id: s5
    phase: validate
    run: echo s5 >> ran
"#;

#[test]
fn a_crash_after_any_commit_loses_nothing_and_reruns_no_succeeded_step() {
    let mut points = 0;
    for n in 1.. {
        let sb = Sandbox::new();
        let file = sb.write("chain.yaml", CHAIN);
        let run = sb
            .command(&["run", file.to_str().expect("utf-8")])
            .env("SENSEI_TEST_CRASH_AFTER_COMMITS", n.to_string())
            .output()
            .expect("run");
        let stdout = String::from_utf8_lossy(&run.stdout);
        let id = support::migration_id(&stdout)
            .unwrap_or_else(|| panic!("crash after commit {n}: no id in {run:?}"));
        if run.status.success() {
            break; // n is past the last commit: every point has been tried
        }
        points += 1;
        resume_until(&sb, &id, "certified");
        assert_eq!(
            sb.read("ran"),
            "s1\ns2\ns3\ns4\ns5\n",
            "crash after commit {n}"
        );
        let states = sb.states(&id);
        assert_eq!(
            states.last().map(String::as_str),
            Some("certified"),
            "crash after commit {n}"
        );
    }
    assert!(points >= 5, "only {points} crash points were tried");
}

const ROLLBACK: &str = r#"
version: 1
name: undo
on_failure: rollback
concurrency: 1
steps:
  - id: r1
    run: echo r1 >> ran
    rollback: echo r1 >> undone
  - id: r2
    needs: [r1]
    run: echo r2 >> ran
    rollback: echo r2 >> undone
  - id: r3
    needs: [r2]
    run: echo r3 >> ran
    rollback: echo r3 >> undone
  - id: boom
    needs: [r3]
    run: exit 9
"#;

#[test]
fn a_crash_during_rollback_resumes_the_rollback_without_undoing_twice() {
    let mut points = 0;
    for n in 1.. {
        let sb = Sandbox::new();
        let file = sb.write("undo.yaml", ROLLBACK);
        let run = sb
            .command(&["run", file.to_str().expect("utf-8")])
            .env("SENSEI_TEST_CRASH_AFTER_COMMITS", n.to_string())
            .output()
            .expect("run");
        let stdout = String::from_utf8_lossy(&run.stdout);
        let id = support::migration_id(&stdout)
            .unwrap_or_else(|| panic!("crash after commit {n}: no id in {run:?}"));
        // Exit code 1 with the final line: the run got to the end without crashing.
        if stdout
            .lines()
            .last()
            .is_some_and(|l| l.ends_with(" failed — `sensei retry ") || l.contains(" failed"))
        {
            break;
        }
        points += 1;
        resume_until(&sb, &id, "failed");
        assert_eq!(sb.read("ran"), "r1\nr2\nr3\n", "crash after commit {n}");
        assert_eq!(sb.read("undone"), "r3\nr2\nr1\n", "crash after commit {n}");
    }
    assert!(points >= 5, "only {points} crash points were tried");
}
