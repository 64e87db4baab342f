//! Ctrl-C (SIGINT) and SIGTERM sent to a `sensei run` in the foreground: the first lets the
//! running steps finish and starts nothing new; a second stops at once.

mod support;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use support::{Background, Sandbox, alive, pids_in, wait_for};

const SLOW: &str = r#"
version: 1
name: slow
steps:
  - id: first
    run: "echo $$ > first.pid; echo first >> trace; while [ ! -e go ]; do sleep 0.02; done"
  - id: second
    needs: [first]
    run: echo second >> trace
"#;

fn signal(bg: &Background, signal: Signal) {
    let pid = Pid::from_raw(i32::try_from(bg.child.id()).expect("pid"));
    kill(pid, signal).expect("signal sensei");
}

/// Starts the slow runbook and waits until its first step runs.
fn started(sb: &Sandbox) -> (Background, String) {
    let file = sb.write("slow.yaml", SLOW);
    let bg = sb.spawn(&["run", file.to_str().expect("utf-8")]);
    let id = bg.id();
    wait_for("the first step", || {
        sb.path("first.pid").exists().then_some(())
    });
    (bg, id)
}

#[test]
fn the_first_signal_lets_running_steps_finish_and_starts_nothing_new() {
    for sig in [Signal::SIGINT, Signal::SIGTERM] {
        let sb = Sandbox::new();
        let (bg, id) = started(&sb);
        signal(&bg, sig);
        wait_for("the stop to be acknowledged", || {
            bg.stderr().contains("no new step starts").then_some(())
        });
        // The running step was not killed: it finishes when told to.
        sb.write("go", "");
        let run = bg.finish();
        assert_eq!(run.code, 1, "{run:?}");
        let last = run.stdout.lines().last().expect("a last line");
        assert_eq!(
            last,
            format!("migration {id} running — stopped by {sig}; `sensei resume {id}` continues"),
            "{run:?}"
        );
        assert_eq!(sb.step(&id, "first")["state"], "succeeded");
        assert_eq!(sb.step(&id, "second")["state"], "pending");
        assert_eq!(sb.read("trace"), "first\n");

        // Nothing was lost: a resume runs the rest, and the first step not again.
        sb.sensei(&["resume", &id]).ok();
        assert_eq!(sb.state(&id), "certified");
        assert_eq!(sb.read("trace"), "first\nsecond\n");
    }
}

#[test]
fn a_second_signal_stops_at_once_and_kills_the_running_steps() {
    let sb = Sandbox::new();
    let (bg, id) = started(&sb);
    signal(&bg, Signal::SIGINT);
    wait_for("the stop to be acknowledged", || {
        bg.stderr().contains("no new step starts").then_some(())
    });
    signal(&bg, Signal::SIGINT);
    let run = bg.finish();
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("stopping now"), "{run:?}");
    for pid in pids_in(&sb.path("first.pid")) {
        wait_for("the step process to die", || (!alive(pid)).then_some(()));
    }
    // As after a crash: the step did not finish, so a resume asks what to do with it.
    let resume = sb.sensei(&["resume", &id]);
    assert_eq!(resume.code, 1, "{resume:?}");
    assert_eq!(sb.step(&id, "first")["state"], "interrupted");
    assert!(resume.stdout.contains("--retry-interrupted"), "{resume:?}");
}
