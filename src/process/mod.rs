//! Step processes, owned by the engine (DESIGN habit 10).
//!
//! [`run`] starts a step's command as `sh -c <command>` in a process group of its own, streams
//! its stdout and stderr line by line, and ends with the group gone: on timeout or cancel the
//! whole group gets SIGTERM, then SIGKILL after a grace period; when the shell exits, whatever
//! is left of its group (background jobs) is killed, so a step ends when its shell ends. If the
//! engine itself dies, the [`Reaper`] watchdog kills the groups it was told about.
//!
//! - `env`: the environment a step process gets (never Sensei's whole environment).
//! - `lines`: capped line reading of the pipes.
//! - `outputs`: the `$SENSEI_OUTPUT` file (SPEC §2), read once the process exited.
//! - `live`: live reports (`progress=`, `checkpoint=`) in that file, followed while the step
//!   runs.
//! - `group`: signals to a group, reaping of re-parented members, the kill-on-drop guard.
//! - `reaper`: the `sensei __reap` watchdog and the engine's handle on it.

mod env;
mod group;
mod lines;
mod live;
mod outputs;
mod reaper;

pub use env::{
    CHECKPOINT_ENV, INHERITED, Inherited, StepEnv, always_inherited, conceal_own_environment,
};
pub use live::{FOLLOW_EVERY, LiveReport};
pub use outputs::OUTPUT_ENV;
pub use reaper::{Reaper, reap_main};

use group::Group;
use lines::Lines;
use live::Follower;
use outputs::OutputFile;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// After the shell exited and its group was killed, how long to keep reading pipes that are
/// still open: only a process that left the group (`setsid`) can hold them now, and the step
/// must not wait for it.
const PIPE_DRAIN_LIMIT: Duration = Duration::from_secs(1);

/// What to run for one step.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// Run with `sh -c`.
    pub command: String,
    /// The working directory.
    pub dir: PathBuf,
    /// The process's environment (besides `SENSEI_OUTPUT`); nothing else is inherited.
    pub env: StepEnv,
    /// From the start; `None` waits for ever.
    pub timeout: Option<Duration>,
    /// On timeout or cancel: SIGTERM to the group, then SIGKILL after this.
    pub kill_grace: Duration,
    /// Keep the last non-empty stdout line (for `outputs: json`).
    pub capture_last_line: bool,
    /// Bytes the command reads on its stdin (a `sql` step's spec: never in its arguments,
    /// which any user can read in `ps`); without them, stdin is `/dev/null`.
    pub input: Option<Vec<u8>>,
}

/// One line of a step's output without its line ending, or a piece of a line longer than
/// 64 KiB (those arrive in pieces, to bound memory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub text: String,
    /// False for a piece that the next piece of the same pipe continues.
    pub ends_line: bool,
}

/// Which pipe a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// The shell exited with this code.
    Code(i32),
    /// The shell was killed by this signal (not by the engine).
    Signal(i32),
    /// The timeout passed; the group was killed.
    TimedOut,
    /// Cancelled through the watch channel; the group was killed (or never started).
    Cancelled,
    /// The process could not be started; one sentence saying why.
    SpawnFailed(String),
}

/// The result of [`run`].
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub exit: Exit,
    /// `key=value` lines of the `$SENSEI_OUTPUT` file, in order (also after a timeout or
    /// cancel), without live reports (`progress=`), which go to `on_report`.
    pub outputs: Vec<(String, String)>,
    /// One sentence per line of that file that was not `key=value` or a valid live report.
    pub output_errors: Vec<String>,
    /// The last non-empty stdout line, when [`RunSpec::capture_last_line`] is set. Lines longer
    /// than 64 KiB arrive in pieces, so this is at most the last 64 KiB piece.
    pub last_stdout_line: Option<String>,
    /// From the start of `run` until the group was gone.
    pub duration: Duration,
}

impl RunOutcome {
    /// An outcome of a run that never started a process.
    fn unstarted(exit: Exit, started: Instant) -> Self {
        RunOutcome {
            exit,
            outputs: Vec::new(),
            output_errors: Vec::new(),
            last_stdout_line: None,
            duration: started.elapsed(),
        }
    }
}

/// Errors of this module. [`run`] reports its own as [`Exit::SpawnFailed`] sentences.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("could not start the process watchdog `{}`: {source}", program.display())]
    ReaperSpawn {
        program: PathBuf,
        source: std::io::Error,
    },
    #[error("could not create the ${OUTPUT_ENV} file in {}: {source}", dir.display())]
    OutputFile {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("the working directory {} does not exist or is not a directory", dir.display())]
    MissingDir { dir: PathBuf },
    // These do not quote the command: it may hold secrets, and a message cut to a readable
    // length could cut a secret in two where no mask finds it. The step's id says which it was.
    #[error("could not start /bin/sh in {}: {source}", dir.display())]
    Spawn {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("the shell started but has no usable process id")]
    NoPid,
}

/// Runs one step's command as an owned process group; see the module documentation.
///
/// `on_line` receives each line of stdout and stderr as it arrives (each pipe in order), a
/// line longer than 64 KiB in pieces.
/// `cancel` becoming true kills the group; a dropped sender never cancels. If the returned future
/// is dropped before it completes, the group is killed at once (SIGKILL).
pub async fn run(
    spec: RunSpec,
    reaper: Option<&Reaper>,
    on_line: impl FnMut(Stream, Line) + Send,
    cancel: watch::Receiver<bool>,
) -> RunOutcome {
    run_observed(spec, reaper, on_line, |_| {}, None, cancel).await
}

/// A callback for the live reports of a run (see [`run_observed`]).
pub type OnReport<'a> = &'a mut (dyn FnMut(LiveReport) + Send);

/// [`run`], telling `on_spawn` the process group id as soon as the shell runs (the engine
/// records it, so that a resume can tell whether the group outlived its driver), and
/// `on_report` each live report (`progress=`) of `$SENSEI_OUTPUT` as the step writes it:
/// the file is looked at every [`FOLLOW_EVERY`] while the shell runs, and once more when it
/// has exited, so the last report given is the file's last (see `live`).
pub async fn run_observed(
    spec: RunSpec,
    reaper: Option<&Reaper>,
    mut on_line: impl FnMut(Stream, Line) + Send,
    on_spawn: impl FnOnce(i32) + Send,
    mut on_report: Option<OnReport<'_>>,
    mut cancel: watch::Receiver<bool>,
) -> RunOutcome {
    let started = Instant::now();
    if *cancel.borrow_and_update() {
        return RunOutcome::unstarted(Exit::Cancelled, started);
    }
    let output_file = match OutputFile::create() {
        Ok(file) => file,
        Err(e) => return RunOutcome::unstarted(Exit::SpawnFailed(e.to_string()), started),
    };
    group::adopt_orphans();
    let mut child = match command(&spec, output_file.path()).spawn() {
        Ok(child) => child,
        Err(source) => {
            let error = spawn_error(&spec, source).to_string();
            return RunOutcome::unstarted(Exit::SpawnFailed(error), started);
        }
    };
    let Some(pgid) = child.id().and_then(|pid| i32::try_from(pid).ok()) else {
        let error = ProcessError::NoPid;
        return RunOutcome::unstarted(Exit::SpawnFailed(error.to_string()), started);
    };
    let group = Group::new(pgid, reaper);
    on_spawn(pgid);
    release(&mut child, spec.input.clone()).await;

    let mut stdout = Lines::new(child.stdout.take());
    let mut stderr = Lines::new(child.stderr.take());
    let mut last_stdout_line = None;
    // Set when the shell has exited: how it ended by itself.
    let mut exited: Option<Exit> = None;
    // Set when the engine stopped it: TimedOut or Cancelled.
    let mut stopped: Option<Exit> = None;
    let mut cancel_open = true;

    let deadline = spec.timeout.map(|timeout| started + timeout);
    let timeout = tokio::time::sleep_until(deadline.unwrap_or(started));
    let sigkill = tokio::time::sleep_until(started);
    let drain = tokio::time::sleep_until(started);
    tokio::pin!(timeout, sigkill, drain);
    let (mut sigkill_armed, mut drain_armed) = (false, false);
    let mut follower = Follower::new(output_file.path().to_path_buf());
    let mut follow = tokio::time::interval_at(started + FOLLOW_EVERY, FOLLOW_EVERY);
    follow.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    let exit = loop {
        if stdout.done()
            && stderr.done()
            && let Some(exit) = exited.take()
        {
            break stopped.take().unwrap_or(exit);
        }
        let running = exited.is_none();
        tokio::select! {
            line = stdout.next_line(), if !stdout.done() => {
                if let Some(line) = line {
                    if spec.capture_last_line && !line.text.trim().is_empty() {
                        last_stdout_line = Some(line.text.clone());
                    }
                    on_line(Stream::Stdout, line);
                }
            }
            line = stderr.next_line(), if !stderr.done() => {
                if let Some(line) = line {
                    on_line(Stream::Stderr, line);
                }
            }
            status = child.wait(), if running => {
                exited = Some(match status {
                    Ok(status) => exit_of(status),
                    Err(e) => Exit::SpawnFailed(format!("could not wait for the shell: {e}")),
                });
                // The step ends when its shell ends: kill background jobs left in the group, so
                // one holding the pipes cannot keep the step open.
                group.kill();
                if !(stdout.done() && stderr.done()) {
                    drain.as_mut().reset(Instant::now() + PIPE_DRAIN_LIMIT);
                    drain_armed = true;
                }
            }
            () = &mut timeout, if running && stopped.is_none() && deadline.is_some() => {
                stopped = Some(Exit::TimedOut);
                group.terminate();
                sigkill.as_mut().reset(Instant::now() + spec.kill_grace);
                sigkill_armed = true;
            }
            changed = cancel.changed(), if running && stopped.is_none() && cancel_open => {
                match changed {
                    Err(_) => cancel_open = false,
                    Ok(()) if *cancel.borrow_and_update() => {
                        stopped = Some(Exit::Cancelled);
                        group.terminate();
                        sigkill.as_mut().reset(Instant::now() + spec.kill_grace);
                        sigkill_armed = true;
                    }
                    Ok(()) => {}
                }
            }
            () = &mut sigkill, if running && sigkill_armed => {
                group.kill();
                sigkill_armed = false;
            }
            () = &mut drain, if drain_armed => {
                stdout.abandon();
                stderr.abandon();
            }
            _ = follow.tick(), if running && on_report.is_some() => {
                if let Some(on_report) = on_report.as_deref_mut() {
                    follower.look().into_iter().for_each(&mut *on_report);
                }
            }
        }
    };
    group.finish().await;
    let parsed = output_file.read();
    if let Some(on_report) = on_report {
        follower
            .settle(parsed.reports)
            .into_iter()
            .for_each(on_report);
    }
    RunOutcome {
        exit,
        outputs: parsed.outputs,
        output_errors: parsed.errors,
        last_stdout_line,
        duration: started.elapsed(),
    }
}

/// The shell of a step waits, before it runs anything, for one line on its stdin: the engine
/// sends it once the process group is registered with the watchdog (and recorded). Should
/// the engine die in between, the shell reads end-of-file and exits without running the
/// command, so no step process ever runs unknown to the watchdog. The same shell then
/// evaluates the command (given as `$0`), with stdin from /dev/null.
const GATE: &str = "IFS= read -r _ || exit 125; exec </dev/null; eval \"$0\"";

/// [`GATE`] for a command that reads [`RunSpec::input`]: the same shell leaves stdin open
/// after the release line (`read` takes no byte past it from a pipe), and the engine writes
/// the input behind that line.
const GATE_WITH_INPUT: &str = "IFS= read -r _ || exit 125; eval \"$0\"";

fn command(spec: &RunSpec, output_file: &Path) -> tokio::process::Command {
    // An absolute path: POSIX sh lives at /bin/sh, and searching PATH costs a failed
    // execve per entry before it, for every step.
    let mut command = tokio::process::Command::new("/bin/sh");
    command
        .arg("-c")
        .arg(if spec.input.is_some() {
            GATE_WITH_INPUT
        } else {
            GATE
        })
        .arg(&spec.command)
        .current_dir(&spec.dir)
        .env_clear()
        .envs(spec.env.vars(output_file))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    command
}

/// Lets the gated shell run its command (see [`GATE`]). A shell that is already gone has
/// nothing to run; its exit is seen as any other. The input, if any, is written by a task of
/// its own, so a command that does not read it cannot hold the step up (its timeout still
/// counts); stdin closes once it is written.
async fn release(child: &mut tokio::process::Child, input: Option<Vec<u8>>) {
    use tokio::io::AsyncWriteExt;
    if let Some(mut stdin) = child.stdin.take() {
        if stdin.write_all(b"\n").await.is_err() {
            return;
        }
        if let Some(input) = input {
            tokio::spawn(async move {
                let _ = stdin.write_all(&input).await;
            });
        }
    }
}

/// Names the likely cause: a missing directory gives the same "not found" as a missing `sh`.
fn spawn_error(spec: &RunSpec, source: std::io::Error) -> ProcessError {
    if !spec.dir.is_dir() {
        return ProcessError::MissingDir {
            dir: spec.dir.clone(),
        };
    }
    ProcessError::Spawn {
        dir: spec.dir.clone(),
        source,
    }
}

fn exit_of(status: ExitStatus) -> Exit {
    match (status.code(), status.signal()) {
        (Some(code), _) => Exit::Code(code),
        (None, Some(signal)) => Exit::Signal(signal),
        // Neither a code nor a signal happens only for stopped processes, which `wait` skips.
        (None, None) => Exit::Code(-1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An engine that dies between spawning a step's shell and registering its group with the
    /// watchdog closes the shell's stdin unreleased: the command never runs.
    #[tokio::test]
    async fn an_unreleased_shell_runs_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spec = RunSpec {
            command: "touch ran".into(),
            dir: dir.path().to_path_buf(),
            env: StepEnv::minimal(),
            timeout: None,
            kill_grace: Duration::from_secs(1),
            capture_last_line: false,
            input: None,
        };
        let output = dir.path().join("out");
        let mut child = command(&spec, &output).spawn().expect("spawn");
        drop(child.stdin.take());
        let status = child.wait().await.expect("wait");
        assert_eq!(status.code(), Some(125));
        assert!(!dir.path().join("ran").exists());

        let mut child = command(&spec, &output).spawn().expect("spawn");
        release(&mut child, None).await;
        assert!(child.wait().await.expect("wait").success());
        assert!(dir.path().join("ran").exists());
    }

    /// Reports come as the step writes them, and the last one is the file's, also when the
    /// step wrote it just before it exited; they are not outputs.
    #[tokio::test]
    async fn live_reports_are_handed_on_while_the_step_runs_and_at_its_end() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spec = RunSpec {
            command:
                "echo progress=1/4 >> \"$SENSEI_OUTPUT\"; while [ ! -f go ]; do sleep 0.01; done; \
                      echo progress=4/4 >> \"$SENSEI_OUTPUT\"; echo rows=2 >> \"$SENSEI_OUTPUT\""
                    .into(),
            dir: dir.path().to_path_buf(),
            env: StepEnv::minimal(),
            timeout: Some(Duration::from_secs(30)),
            kill_grace: Duration::from_secs(1),
            capture_last_line: false,
            input: None,
        };
        let (_tx, rx) = watch::channel(false);
        let reports = std::sync::Mutex::new(Vec::new());
        let go = dir.path().join("go");
        let mut on_report = |report: LiveReport| {
            let mut seen = reports.lock().expect("lock");
            seen.push(report);
            // The first report arrived while the step waits: let it go on.
            std::fs::write(&go, "").expect("go");
        };
        let outcome = run_observed(spec, None, |_, _| {}, |_| {}, Some(&mut on_report), rx).await;
        assert_eq!(outcome.exit, Exit::Code(0));
        assert_eq!(outcome.outputs, vec![("rows".to_owned(), "2".to_owned())]);
        let progress = |done| LiveReport::Progress(crate::event::Progress { done, total: 4 });
        assert_eq!(
            *reports.lock().expect("lock"),
            vec![progress(1), progress(4)]
        );
    }

    #[test]
    fn the_run_future_is_send() {
        fn assert_send<T: Send>(_: &T) {}
        let (_tx, rx) = watch::channel(false);
        let spec = RunSpec {
            command: "true".into(),
            dir: ".".into(),
            env: StepEnv::minimal(),
            timeout: None,
            kill_grace: Duration::from_secs(1),
            capture_last_line: false,
            input: None,
        };
        assert_send(&run(spec, None, |_, _| {}, rx));
    }
}
