//! The `sql` action (and `sql` probes): the step's process is `sensei __step sql`
//! ([`crate::db::child`]), started, logged, timed out and killed exactly like a `run` step's
//! shell, with its rendered spec written on its stdin. [`Child`] does this for any such
//! process (`compare` too). Its outputs come back through
//! `$SENSEI_OUTPUT` as `key=<JSON>` lines; the DSN's password is masked in everything this
//! attempt logs or reports, on top of the migration's secrets. [`child`] runs any such
//! `sensei __step KIND` process (`copy` steps too).

use super::{Attempt, Outcome};
use crate::db::child::{CANCEL_PREFIX, EXIT_SQL};
use crate::db::spec::SqlSpec;
use crate::process::{Exit, Line, RunSpec, StepEnv};
use crate::runbook::duration::Duration as Shown;
use crate::store::LogStream;
use serde_json::{Map, Value as Json};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The SIGTERM-to-SIGKILL grace: the process cancels the statement on the server in it.
const KILL_GRACE: Duration = Duration::from_secs(5);

pub(super) async fn run(
    spec: &SqlSpec,
    exe: &Path,
    env: StepEnv,
    secrets: &[String],
    attempt: &Attempt,
    cancel: watch::Receiver<bool>,
) -> Outcome {
    let process = Child {
        kind: "sql",
        failed: "the SQL failed",
    };
    child(process, spec, exe, env, secrets, attempt, cancel).await
}

/// A `sensei __step KIND` process: its kind, and how its error starts when it exits 1.
#[derive(Debug, Clone, Copy)]
pub(super) struct Child {
    pub kind: &'static str,
    pub failed: &'static str,
}

/// Runs `sensei __step KIND` with `spec`, as JSON, on its stdin, as the step's process.
pub(super) async fn child(
    process: Child,
    spec: &impl serde::Serialize,
    exe: &Path,
    env: StepEnv,
    secrets: &[String],
    attempt: &Attempt,
    cancel: watch::Receiver<bool>,
) -> Outcome {
    let input = match serde_json::to_vec(spec) {
        Ok(bytes) => bytes,
        Err(e) => return failed(format!("the step cannot be encoded: {e}"), None, false),
    };
    let attempt = &Attempt {
        masker: Arc::new(attempt.masker.with(secrets)),
        ..attempt.clone()
    };
    let exe = exe.display().to_string();
    let run = RunSpec {
        // `exec`: the shell becomes the step's process, so the group holds only sensei.
        command: format!(
            "exec {} __step {}",
            crate::runbook::render::shell_word(&exe),
            process.kind
        ),
        dir: attempt.dir.clone(),
        env,
        timeout: attempt.timeout,
        kill_grace: KILL_GRACE,
        capture_last_line: false,
        input: Some(input),
    };
    let mut cancel_note: Option<String> = None;
    let look = |line: &Line| {
        if let Some(note) = line.text.strip_prefix(CANCEL_PREFIX) {
            cancel_note = Some(attempt.masker.mask(note).into_owned());
        }
    };
    let (outcome, _, stderr) = attempt.run_process(run, look, cancel).await;
    let reason = || {
        stderr
            .last
            .clone()
            .map(|l| l.strip_prefix("error: ").map(str::to_owned).unwrap_or(l))
            .unwrap_or_else(|| "no reason given".into())
    };
    let stopped = |what: String| match &cancel_note {
        Some(note) => format!("{what}; {note}"),
        None => format!("{what}; the step's process was stopped before any statement ran"),
    };
    match outcome.exit {
        Exit::Code(0) => {}
        Exit::Code(code) => {
            let error = if code == i32::from(EXIT_SQL) {
                format!("{}: {}", process.failed, reason())
            } else {
                reason()
            };
            let transient =
                attempt.transient_codes.is_empty() || attempt.transient_codes.contains(&code);
            return failed(error, Some(code), transient);
        }
        Exit::Signal(n) => return failed(format!("killed by signal {n}"), None, false),
        Exit::TimedOut => {
            let limit = attempt
                .timeout
                .map(|t| Shown(t).to_string())
                .unwrap_or_default();
            return failed(stopped(format!("timed out after {limit}")), None, false);
        }
        Exit::Cancelled => {
            if let Some(note) = &cancel_note {
                attempt.log(LogStream::Sensei, &format!("stopped: {note}"));
            }
            return Outcome::Cancelled;
        }
        Exit::SpawnFailed(reason) => {
            return failed(attempt.masker.mask(&reason).into_owned(), None, false);
        }
    }
    let outputs: Map<String, Json> = outcome
        .outputs
        .into_iter()
        .map(|(k, v)| {
            let value = serde_json::from_str(&v).unwrap_or(Json::String(v));
            (k, value)
        })
        .collect();
    Outcome::Succeeded {
        outputs: Some(attempt.masker.mask_json(&Json::Object(outputs))),
        exit_code: Some(0),
    }
}

fn failed(error: String, exit_code: Option<i32>, transient: bool) -> Outcome {
    Outcome::Failed {
        error,
        exit_code,
        transient,
    }
}
