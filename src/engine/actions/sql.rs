//! The `sql` action (and `sql` probes): the step's process is `sensei __step sql`
//! ([`crate::db::child`]), started, logged, timed out and killed exactly like a `run` step's
//! shell, with its rendered spec written on its stdin. [`Child`] does this for any such
//! process (`compare` too). Its outputs come back through
//! `$SENSEI_OUTPUT` as `key=<JSON>` lines; the DSN's password is masked in everything this
//! attempt logs or reports, on top of the migration's secrets.

use super::{Attempt, Logged, Outcome};
use crate::db::child::{CANCEL_PREFIX, EXIT_SQL};
use crate::db::spec::SqlSpec;
use crate::process::{self, Exit, Line, LiveReport, OnReport, RunSpec, StepEnv, Stream};
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
    let input = match serde_json::to_vec(spec) {
        Ok(bytes) => bytes,
        Err(e) => return failed(format!("the step cannot be encoded: {e}"), None, false),
    };
    let child = Child {
        kind: "sql",
        input,
        exe,
        env,
        secrets,
        failure: |code, reason| {
            if code == i32::from(EXIT_SQL) {
                format!("the SQL failed: {reason}")
            } else {
                reason
            }
        },
    };
    child.run(attempt, cancel).await
}

/// A step whose process is `sensei __step KIND`, with its rendered spec on stdin: `sql`,
/// `compare`.
pub(super) struct Child<'a> {
    pub kind: &'static str,
    pub input: Vec<u8>,
    pub exe: &'a Path,
    pub env: StepEnv,
    /// Its DSNs' passwords, masked in all it logs and reports.
    pub secrets: &'a [String],
    /// The step's error for exit code `code` and the process's last stderr line.
    pub failure: fn(i32, String) -> String,
}

impl Child<'_> {
    pub(super) async fn run(self, attempt: &Attempt, cancel: watch::Receiver<bool>) -> Outcome {
        child(self, attempt, cancel).await
    }
}

async fn child(child: Child<'_>, attempt: &Attempt, cancel: watch::Receiver<bool>) -> Outcome {
    let attempt = &Attempt {
        masker: Arc::new(attempt.masker.with(child.secrets)),
        ..attempt.clone()
    };
    let exe = child.exe.display().to_string();
    let input = child.input;
    let env = child.env;
    let run = RunSpec {
        // `exec`: the shell becomes the step's process, so the group holds only sensei.
        command: format!(
            "exec {} __step {}",
            crate::runbook::render::shell_word(&exe),
            child.kind
        ),
        dir: attempt.dir.clone(),
        env,
        timeout: attempt.timeout,
        kill_grace: KILL_GRACE,
        capture_last_line: false,
        input: Some(input),
    };
    let (mut stdout, mut stderr) = (Logged::default(), Logged::default());
    let mut cancel_note: Option<String> = None;
    let on_line = |stream: Stream, line: Line| {
        if let Some(note) = line.text.strip_prefix(CANCEL_PREFIX) {
            cancel_note = Some(attempt.masker.mask(note).into_owned());
        }
        match stream {
            Stream::Stdout => stdout.line(attempt, LogStream::Stdout, line),
            Stream::Stderr => stderr.line(attempt, LogStream::Stderr, line),
        }
    };
    let on_spawn = |pgid: i32| attempt.record_process(pgid);
    let mut send = |report: LiveReport| attempt.report(report);
    let on_report: Option<OnReport<'_>> = match attempt.reports {
        Some(_) => Some(&mut send),
        None => None,
    };
    let outcome = process::run_observed(
        run,
        attempt.reaper.as_deref(),
        on_line,
        on_spawn,
        on_report,
        cancel,
    )
    .await;
    stdout.flush(attempt, LogStream::Stdout);
    stderr.flush(attempt, LogStream::Stderr);
    for problem in &outcome.output_errors {
        attempt.log(LogStream::Sensei, problem);
    }
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
            let error = (child.failure)(code, reason());
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
