//! Step processes through the library API, with real processes: exit codes, streamed output,
//! `$SENSEI_OUTPUT`, timeouts and cancels that kill whole trees, the background job that holds
//! the pipes, long lines, and the `sensei __reap` watchdog killing groups when the engine dies.
//!
//! Waiting is done by polling with a deadline, never by a fixed sleep.

use nix::errno::Errno;
use nix::sys::signal::killpg;
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;
use sensei::process::{Exit, Inherited, Line, Reaper, RunOutcome, RunSpec, StepEnv, Stream, run};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Generous: the machine is shared and tests run in parallel.
const DEADLINE: Duration = Duration::from_secs(20);

/// A command that records its process tree in `pids` (the shell, which leads the group, then
/// two background sleeps), says `ready`, and waits for ever.
const TREE: &str =
    r#"echo $$ > pids; sleep 300 & echo $! >> pids; sleep 300 & echo $! >> pids; echo ready; wait"#;

fn spec(command: &str, dir: &Path) -> RunSpec {
    RunSpec {
        command: command.to_owned(),
        dir: dir.to_owned(),
        env: StepEnv::minimal(),
        timeout: None,
        kill_grace: Duration::from_secs(5),
        capture_last_line: false,
        input: None,
    }
}

fn reaper_program() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sensei"))
}

fn reaper() -> Reaper {
    Reaper::spawn(&reaper_program(), &["__reap"]).expect("start the reaper")
}

/// Runs `spec` to the end and collects every line (or piece of one) it printed.
async fn run_pieces(spec: RunSpec, reaper: Option<&Reaper>) -> (RunOutcome, Vec<(Stream, Line)>) {
    let (_keep, cancel) = watch::channel(false);
    let mut lines = Vec::new();
    let outcome = run(
        spec,
        reaper,
        |stream, line| lines.push((stream, line)),
        cancel,
    )
    .await;
    (outcome, lines)
}

/// Runs `spec` to the end and collects the text of every line it printed.
async fn run_collect(
    spec: RunSpec,
    reaper: Option<&Reaper>,
) -> (RunOutcome, Vec<(Stream, String)>) {
    let (outcome, lines) = run_pieces(spec, reaper).await;
    let lines = lines
        .into_iter()
        .map(|(stream, line)| (stream, line.text))
        .collect();
    (outcome, lines)
}

fn of(lines: &[(Stream, String)], which: Stream) -> Vec<&str> {
    lines
        .iter()
        .filter(|(stream, _)| *stream == which)
        .map(|(_, line)| line.as_str())
        .collect()
}

fn poll_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The pids a `TREE` command wrote (the first is the group id).
fn read_pids(file: &Path) -> Vec<i32> {
    let text = std::fs::read_to_string(file)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
    let pids: Vec<i32> = text
        .lines()
        .map(|l| {
            l.trim()
                .parse()
                .unwrap_or_else(|e| panic!("not a pid: {l:?} ({e})"))
        })
        .collect();
    assert_eq!(pids.len(), 3, "the tree did not record itself: {text:?}");
    pids
}

/// Asserts that every process of a tree is gone (no /proc entry, not even a zombie) and that
/// its group no longer exists. Reaps zombies that were re-parented to this test process.
fn assert_tree_gone(pids: &[i32]) {
    let pgid = pids[0];
    poll_until(&format!("the tree {pids:?} is gone"), || {
        // Reaps what it can; an error (ECHILD) means there is nothing of ours left to reap.
        while let Ok(status) = waitpid(Pid::from_raw(-pgid), Some(WaitPidFlag::WNOHANG)) {
            if status == nix::sys::wait::WaitStatus::StillAlive {
                break;
            }
        }
        pids.iter()
            .all(|pid| !Path::new(&format!("/proc/{pid}")).exists())
    });
    assert_eq!(killpg(Pid::from_raw(pgid), None), Err(Errno::ESRCH));
}

#[tokio::test]
async fn exit_codes_and_signals() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (command, exit) in [
        ("true", Exit::Code(0)),
        ("exit 3", Exit::Code(3)),
        ("kill -TERM $$", Exit::Signal(15)),
        ("kill -KILL $$", Exit::Signal(9)),
    ] {
        let (outcome, _) = run_collect(spec(command, dir.path()), None).await;
        assert_eq!(outcome.exit, exit, "{command}");
    }
}

#[tokio::test]
async fn stdout_and_stderr_lines_arrive_in_order() {
    let dir = tempfile::tempdir().expect("temp dir");
    let command =
        "echo one; echo err1 >&2; printf 'two\\r\\n\\n'; echo err2 >&2; printf 'no newline'";
    let (outcome, lines) = run_collect(spec(command, dir.path()), None).await;
    assert_eq!(outcome.exit, Exit::Code(0));
    assert_eq!(
        of(&lines, Stream::Stdout),
        vec!["one", "two", "", "no newline"]
    );
    assert_eq!(of(&lines, Stream::Stderr), vec!["err1", "err2"]);
}

#[tokio::test]
async fn lines_are_handed_on_while_the_process_runs() {
    // The step prints a line, then waits until the test has seen it: only streaming lets it end.
    let dir = tempfile::tempdir().expect("temp dir");
    let seen = dir.path().join("seen");
    let mut spec = spec(
        "echo first; while [ ! -e seen ]; do sleep 0.01; done; echo second",
        dir.path(),
    );
    spec.timeout = Some(DEADLINE);
    let (_keep, cancel) = watch::channel(false);
    let mut lines = Vec::new();
    let outcome = run(
        spec,
        None,
        |_, line: Line| {
            if line.text == "first" {
                std::fs::write(&seen, "").expect("touch");
            }
            lines.push(line.text);
        },
        cancel,
    )
    .await;
    assert_eq!(outcome.exit, Exit::Code(0));
    assert_eq!(lines, vec!["first", "second"]);
}

#[tokio::test]
async fn env_and_working_directory() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut spec = spec(
        "pwd; echo \"$GREETING\"; test -n \"$PATH\" && echo inherited",
        dir.path(),
    );
    spec.env = StepEnv::new(
        Inherited::from_process(&[]),
        vec![("GREETING".into(), "hello world".into())],
    );
    let (outcome, lines) = run_collect(spec, None).await;
    assert_eq!(outcome.exit, Exit::Code(0));
    let pwd = dir.path().canonicalize().expect("canonical");
    assert_eq!(
        of(&lines, Stream::Stdout),
        vec![pwd.to_str().expect("utf-8"), "hello world", "inherited"]
    );
}

#[tokio::test]
async fn the_process_gets_exactly_its_environment_and_nothing_of_the_engines() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = std::env::var_os("PATH").expect("PATH is set for tests");
    let parent = [
        ("PATH", path.to_str().expect("utf-8")),
        ("LC_ALL", "C"),
        ("PASSED", "yes"),
        ("API_TOKEN", "secret"),
    ]
    .map(|(k, v)| (k.into(), v.into()));
    let mut spec = spec("env | sort", dir.path());
    spec.env = StepEnv::new(
        Inherited::from_vars(&["PASSED".into()], parent),
        vec![("FROM_RUNBOOK".into(), "r".into())],
    );
    let (outcome, lines) = run_collect(spec, None).await;
    assert_eq!(outcome.exit, Exit::Code(0));
    // This test process's own environment (CARGO_*, HOME, ...) is not the step's; `PWD` is
    // the shell's own.
    let names: Vec<&str> = of(&lines, Stream::Stdout)
        .into_iter()
        .filter_map(|l| l.split_once('=').map(|(name, _)| name))
        .filter(|name| *name != "PWD")
        .collect();
    assert_eq!(
        names,
        [
            "FROM_RUNBOOK",
            "LC_ALL",
            "PASSED",
            "PATH",
            "SENSEI_CHECKPOINT",
            "SENSEI_OUTPUT"
        ]
    );
}

#[tokio::test]
async fn outputs_file_is_parsed_reported_and_removed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let command = r#"echo "$SENSEI_OUTPUT"; printf 'rows=5\n# note\n\nurl=a=b\nnot a pair\n' > "$SENSEI_OUTPUT""#;
    let (outcome, lines) = run_collect(spec(command, dir.path()), None).await;
    assert_eq!(outcome.exit, Exit::Code(0));
    assert_eq!(
        outcome.outputs,
        vec![("rows".into(), "5".into()), ("url".into(), "a=b".into())]
    );
    assert_eq!(
        outcome.output_errors,
        vec!["line 5 of $SENSEI_OUTPUT is not key=value: not a pair"]
    );
    let path = &of(&lines, Stream::Stdout)[0];
    assert!(
        !path.is_empty() && !Path::new(path).exists(),
        "{path} not removed"
    );
}

#[tokio::test]
async fn last_non_empty_stdout_line_is_captured_on_request() {
    let dir = tempfile::tempdir().expect("temp dir");
    let command = r#"echo first; echo '{"rows": 5}'; echo err >&2; echo; echo '   '"#;
    let mut with = spec(command, dir.path());
    with.capture_last_line = true;
    let (outcome, _) = run_collect(with, None).await;
    assert_eq!(outcome.last_stdout_line.as_deref(), Some(r#"{"rows": 5}"#));
    let (outcome, _) = run_collect(spec(command, dir.path()), None).await;
    assert_eq!(outcome.last_stdout_line, None);
}

#[tokio::test]
async fn spawn_failure_names_the_directory() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("no-such-dir");
    let (outcome, lines) = run_collect(spec("true", &missing), None).await;
    let Exit::SpawnFailed(message) = outcome.exit else {
        panic!("expected a spawn failure, got {:?}", outcome.exit);
    };
    assert_eq!(
        message,
        format!(
            "the working directory {} does not exist or is not a directory",
            missing.display()
        )
    );
    assert!(lines.is_empty());
}

#[tokio::test]
async fn timeout_terminates_the_whole_tree() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut spec = spec(TREE, dir.path());
    spec.timeout = Some(Duration::from_secs(1));
    let reaper = reaper();
    let (outcome, lines) = run_collect(spec, Some(&reaper)).await;
    assert_eq!(outcome.exit, Exit::TimedOut);
    assert_eq!(of(&lines, Stream::Stdout), vec!["ready"]);
    assert!(outcome.duration >= Duration::from_secs(1));
    assert_tree_gone(&read_pids(&dir.path().join("pids")));
    assert!(reaper.healthy());
}

#[tokio::test]
async fn a_tree_that_ignores_sigterm_is_killed_after_the_grace() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut spec = spec(&format!("trap '' TERM; {TREE}"), dir.path());
    spec.timeout = Some(Duration::from_secs(1));
    spec.kill_grace = Duration::from_millis(300);
    let (outcome, _) = run_collect(spec, Some(&reaper())).await;
    assert_eq!(outcome.exit, Exit::TimedOut);
    assert!(
        outcome.duration >= Duration::from_millis(1300),
        "{:?}",
        outcome.duration
    );
    assert_tree_gone(&read_pids(&dir.path().join("pids")));
}

#[tokio::test]
async fn cancel_kills_the_whole_tree() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (cancel_tx, cancel) = watch::channel(false);
    let started = Instant::now();
    let outcome = run(
        spec(TREE, dir.path()),
        Some(&reaper()),
        |_, line| {
            if line.text == "ready" {
                cancel_tx.send_replace(true);
            }
        },
        cancel,
    )
    .await;
    assert_eq!(outcome.exit, Exit::Cancelled);
    assert!(started.elapsed() < DEADLINE);
    assert_tree_gone(&read_pids(&dir.path().join("pids")));
}

#[tokio::test]
async fn dropping_the_run_future_kills_the_tree() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ready = std::sync::Arc::new(tokio::sync::Notify::new());
    let notify = ready.clone();
    let (_keep, cancel) = watch::channel(false);
    let reaper = reaper();
    let step = run(
        spec(TREE, dir.path()),
        Some(&reaper),
        move |_, line| {
            if line.text == "ready" {
                notify.notify_one();
            }
        },
        cancel,
    );
    tokio::select! {
        outcome = step => panic!("the step ended by itself: {outcome:?}"),
        () = ready.notified() => {}
    }
    assert_tree_gone(&read_pids(&dir.path().join("pids")));
}

#[tokio::test]
async fn cancelled_before_the_start_runs_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_keep, cancel) = watch::channel(true);
    let outcome = run(spec("touch ran", dir.path()), None, |_, _| {}, cancel).await;
    assert_eq!(outcome.exit, Exit::Cancelled);
    assert!(!dir.path().join("ran").exists());
}

#[tokio::test]
async fn a_dropped_cancel_sender_never_cancels() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (cancel_tx, cancel) = watch::channel(false);
    drop(cancel_tx);
    let outcome = run(
        spec("sleep 0.2; exit 4", dir.path()),
        None,
        |_, _| {},
        cancel,
    )
    .await;
    assert_eq!(outcome.exit, Exit::Code(4));
}

#[tokio::test]
async fn a_background_job_holding_the_pipes_does_not_keep_the_step_open() {
    let dir = tempfile::tempdir().expect("temp dir");
    let command =
        "echo $$ > pids; sleep 300 & echo $! >> pids; sleep 300 & echo $! >> pids; echo done";
    let (outcome, lines) = run_collect(spec(command, dir.path()), Some(&reaper())).await;
    assert_eq!(outcome.exit, Exit::Code(0));
    assert_eq!(of(&lines, Stream::Stdout), vec!["done"]);
    // A few milliseconds when the group is killed as the shell exits; without that kill the
    // pipes would only be abandoned after the one-second drain limit.
    assert!(
        outcome.duration < Duration::from_millis(800),
        "{:?}",
        outcome.duration
    );
    assert_tree_gone(&read_pids(&dir.path().join("pids")));
}

#[tokio::test]
async fn a_process_that_left_the_group_cannot_hold_the_step_open() {
    // `setsid` puts the sleep in a new session: killing the step's group cannot reach it, and it
    // holds stdout open. The step still ends, about a second after its shell.
    let dir = tempfile::tempdir().expect("temp dir");
    let command = "setsid sh -c 'echo $$ > escaped; exec sleep 300' & \
                   while [ ! -s escaped ]; do sleep 0.01; done; echo done";
    let (outcome, lines) = run_collect(spec(command, dir.path()), None).await;
    let escaped: i32 = std::fs::read_to_string(dir.path().join("escaped"))
        .expect("pid")
        .trim()
        .parse()
        .expect("a pid");
    let _ = nix::sys::signal::kill(Pid::from_raw(escaped), nix::sys::signal::Signal::SIGKILL);
    let _ = waitpid(Pid::from_raw(escaped), None);
    assert_eq!(outcome.exit, Exit::Code(0));
    assert_eq!(of(&lines, Stream::Stdout), vec!["done"]);
    assert!(
        outcome.duration < Duration::from_secs(10),
        "{:?}",
        outcome.duration
    );
}

#[tokio::test]
async fn a_long_line_without_newline_arrives_in_pieces() {
    let dir = tempfile::tempdir().expect("temp dir");
    let command = "head -c 200000 /dev/zero | tr '\\0' x";
    let (outcome, lines) = run_pieces(spec(command, dir.path()), None).await;
    assert_eq!(outcome.exit, Exit::Code(0));
    let pieces: Vec<(usize, bool)> = lines
        .iter()
        .map(|(_, line)| (line.text.len(), line.ends_line))
        .collect();
    assert_eq!(
        pieces,
        vec![(65536, false), (65536, false), (65536, false), (3392, true)]
    );
}

#[test]
fn the_reaper_runs_in_its_own_process_group() {
    let reaper = reaper();
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", reaper.id())).expect("stat");
    // Fields after the command name (which is in parentheses): state ppid pgrp ...
    let after = stat.rsplit_once(')').expect("stat format").1;
    let pgrp: u32 = after
        .split_whitespace()
        .nth(2)
        .expect("pgrp")
        .parse()
        .expect("number");
    assert_eq!(pgrp, reaper.id());
}

#[test]
fn the_reaper_holds_none_of_the_engines_environment() {
    let reaper = reaper();
    // Its environment, as any process of the same user could read it.
    let environ = std::fs::read(format!("/proc/{}/environ", reaper.id())).expect("environ");
    assert_eq!(String::from_utf8_lossy(&environ), "");
}

#[test]
fn dropping_the_last_reaper_handle_kills_the_watched_groups() {
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    let mut sleeper = std::process::Command::new("sleep")
        .arg("300")
        .process_group(0)
        .spawn()
        .expect("spawn");
    let reaper = reaper();
    let clone = reaper.clone();
    reaper.watch(i32::try_from(sleeper.id()).expect("pid"));
    drop(reaper);
    assert!(clone.healthy());
    drop(clone); // the pipe closes as if the engine had exited
    let status = sleeper.wait().expect("wait");
    assert_eq!(status.signal(), Some(9));
}

/// Where `engine_dies` tells its helper to record the step's tree.
const ENGINE_ENV: &str = "SENSEI_TEST_ENGINE_DIR";

/// Not a test by itself: `engine_dies` runs this test binary again, filtered to this function,
/// with `ENGINE_ENV` set; then it plays an engine that starts a reaper, runs a step, and never
/// finishes. Without the variable it returns at once.
#[test]
fn engine_helper() {
    let Some(dir) = std::env::var_os(ENGINE_ENV).map(PathBuf::from) else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let reaper = reaper();
        let (_keep, cancel) = watch::channel(false);
        let ready = dir.join("ready");
        run(
            spec(TREE, &dir),
            Some(&reaper),
            // Lines reach this callback only after the group was registered with the reaper.
            |_, line| {
                if line.text == "ready" {
                    std::fs::write(&ready, "").expect("write ready");
                }
            },
            cancel,
        )
        .await;
    });
    unreachable!("the step runs until the engine is killed");
}

#[test]
fn engine_dies() {
    // This process adopts the orphans of the killed engine, so it can reap them and check that
    // nothing is left, not even a zombie.
    nix::sys::prctl::set_child_subreaper(true).expect("subreaper");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut engine = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "engine_helper",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ENGINE_ENV, dir.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start the engine");
    poll_until("the engine's step is ready", || {
        dir.path().join("ready").exists()
    });
    let pids = read_pids(&dir.path().join("pids"));
    assert_eq!(
        killpg(Pid::from_raw(pids[0]), None),
        Ok(()),
        "the step is running"
    );

    engine.kill().expect("SIGKILL the engine");
    engine.wait().expect("wait for the engine");
    assert_tree_gone(&pids);
}
