//! Step actions that take time: `run` (a shell command, through `process`), `http` (reqwest),
//! `sql` (`sensei __step sql`, through `process`: `actions/sql.rs`), `copy` and `compare`
//! (`sensei __step copy`, `sensei __step compare`, the same way: `actions/copy.rs`,
//! `actions/compare.rs`) and `wait` (a timer). Each returns an [`Outcome`]; the driver decides
//! what it means for the step and the migration. `check` and `gate` do not run here: a check is
//! decided when it starts, and a gate waits for decisions in the store.

mod compare;
mod copy;
mod sql;

use crate::event::MigrationId;
use crate::process::{self, Exit, Line, LiveReport, OnReport, Reaper, RunSpec, StepEnv, Stream};
use crate::runbook::render::Masker;
use crate::store::{LogStream, NewLogLine, Store};
use chrono::Utc;
use serde_json::{Map, Value as Json, json};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// An action with every template rendered, ready to start.
#[derive(Debug, Clone)]
pub enum Prepared {
    Run {
        command: String,
        env: StepEnv,
        json_outputs: bool,
    },
    Http {
        method: reqwest::Method,
        url: String,
        headers: Vec<(String, String)>,
        body: Option<Json>,
        expect_status: Vec<u16>,
        transient_status: Vec<u16>,
        /// The request's own `timeout`; without it the step's, then 30 s.
        timeout: Option<Duration>,
    },
    /// A `sql` step or probe: `sensei __step sql` with `spec` on its stdin.
    Sql {
        spec: crate::db::spec::SqlSpec,
        /// The sensei binary (this process's own).
        exe: PathBuf,
        env: StepEnv,
        /// The DSN's password in every form: masked in this attempt's output.
        secrets: Vec<String>,
    },
    /// A `copy` step: `sensei __step copy` with `spec` on its stdin.
    Copy {
        spec: Box<crate::db::copy::CopySpec>,
        exe: PathBuf,
        env: StepEnv,
        /// Both DSNs' passwords in every form.
        secrets: Vec<String>,
    },
    /// A `compare` step: `sensei __step compare` with `spec` on its stdin.
    Compare {
        spec: Box<crate::db::compare::spec::CompareSpec>,
        exe: PathBuf,
        env: StepEnv,
        /// Both DSNs' passwords in every form.
        secrets: Vec<String>,
    },
    Wait {
        duration: Duration,
        /// When it ends, on the driver's clock.
        until: chrono::DateTime<Utc>,
    },
    /// A polling check (an automatic gate).
    Poll(Box<super::poll::Poll>),
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Succeeded {
        outputs: Option<Json>,
        exit_code: Option<i32>,
    },
    Failed {
        error: String,
        exit_code: Option<i32>,
        transient: bool,
    },
    Cancelled,
}

/// A live report of a running attempt (`progress=`, `checkpoint=`), on its way to the driver.
#[derive(Debug)]
pub struct Report {
    pub node: usize,
    pub attempt: u32,
    pub report: LiveReport,
}

/// Where an attempt's live reports go: the driver's channel. Sending never waits, so a step
/// that reports is never slowed by the driver or the store.
#[derive(Debug, Clone)]
pub struct Reports {
    pub tx: mpsc::UnboundedSender<Report>,
    pub node: usize,
}

/// What every attempt needs besides its action.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub migration: MigrationId,
    pub step: String,
    pub attempt: u32,
    pub dir: PathBuf,
    pub timeout: Option<Duration>,
    pub transient_codes: Vec<i32>,
    pub store: Store,
    pub masker: Arc<Masker>,
    pub reaper: Option<Arc<Reaper>>,
    pub http: reqwest::Client,
    pub clock: Arc<dyn super::clock::Clock>,
    /// Where the live reports of a `run` or `sql` step go; none for rollback commands and
    /// probes.
    pub reports: Option<Reports>,
}

impl Attempt {
    /// Hands a live report of this attempt to the driver (nothing for an attempt without
    /// [`Attempt::reports`]). Every action that follows a `$SENSEI_OUTPUT` passes its
    /// reports here, so a checkpoint reaches the core the same way from any of them.
    pub(super) fn report(&self, report: LiveReport) {
        if let Some(to) = &self.reports {
            // A driver that is gone has nobody left to tell.
            let _ = to.tx.send(Report {
                node: to.node,
                attempt: self.attempt,
                report,
            });
        }
    }

    /// Records the process group of this attempt (with the store's next group commit).
    fn record_process(&self, pgid: i32) {
        let start = u32::try_from(pgid).ok().and_then(crate::host::start_of);
        self.store.record_process(
            &self.migration,
            crate::store::StepProcess {
                step: self.step.clone(),
                attempt: self.attempt,
                pgid,
                pg_start: start,
                host: self.store.host().to_owned(),
                started_at: Utc::now(),
            },
        );
    }

    /// Logs a line, secrets masked.
    pub(super) fn log(&self, stream: LogStream, text: &str) {
        self.log_masked(stream, self.masker.mask(text).into_owned());
    }

    /// Logs a line whose secrets are masked already.
    fn log_masked(&self, stream: LogStream, text: String) {
        self.store.log(
            &self.migration,
            NewLogLine {
                step: self.step.clone(),
                attempt: self.attempt,
                stream,
                at: Utc::now(),
                text,
            },
        );
    }
}

/// One pipe of a running step as it is logged: its lines masked whole, also when a long line
/// arrives in pieces (see [`Masker::mask_piece`]).
#[derive(Default)]
pub(super) struct Logged {
    /// The end of a line in pieces that may begin a secret, held for the next piece.
    held: String,
    /// The last non-empty text logged, masked: what an error message may quote.
    pub(super) last: Option<String>,
}

impl Attempt {
    /// Runs the process of a step's attempt: its output lines are logged (masked; each also
    /// goes to `look`), its process group recorded, its live reports passed on, and what its
    /// `$SENSEI_OUTPUT` held that was not an output is logged once it ends. Every action that
    /// starts a process for an attempt goes through here. Gives the outcome and the two
    /// streams' logs (whose `last` line an error message may quote).
    pub(super) async fn run_process(
        &self,
        spec: RunSpec,
        mut look: impl FnMut(&Line) + Send,
        cancel: watch::Receiver<bool>,
    ) -> (process::RunOutcome, Logged, Logged) {
        let (mut stdout, mut stderr) = (Logged::default(), Logged::default());
        let on_line = |stream: Stream, line: Line| {
            look(&line);
            match stream {
                Stream::Stdout => stdout.line(self, LogStream::Stdout, line),
                Stream::Stderr => stderr.line(self, LogStream::Stderr, line),
            }
        };
        let on_spawn = |pgid: i32| self.record_process(pgid);
        let mut send = |report: LiveReport| self.report(report);
        let on_report: Option<OnReport<'_>> = match self.reports {
            Some(_) => Some(&mut send),
            None => None,
        };
        let outcome = process::run_observed(
            spec,
            self.reaper.as_deref(),
            on_line,
            on_spawn,
            on_report,
            cancel,
        )
        .await;
        stdout.flush(self, LogStream::Stdout);
        stderr.flush(self, LogStream::Stderr);
        for problem in &outcome.output_errors {
            self.log(LogStream::Sensei, problem);
        }
        (outcome, stdout, stderr)
    }
}

impl Logged {
    fn line(&mut self, attempt: &Attempt, stream: LogStream, line: Line) {
        if let Some(text) = attempt
            .masker
            .mask_piece(&mut self.held, &line.text, line.ends_line)
        {
            self.shown(attempt, stream, text);
        }
    }

    /// Logs what is still held (a pipe that ended inside a line).
    fn flush(&mut self, attempt: &Attempt, stream: LogStream) {
        if !self.held.is_empty() {
            let text = attempt
                .masker
                .mask(&std::mem::take(&mut self.held))
                .into_owned();
            self.shown(attempt, stream, text);
        }
    }

    fn shown(&mut self, attempt: &Attempt, stream: LogStream, text: String) {
        if !text.trim().is_empty() {
            self.last = Some(text.clone());
        }
        attempt.log_masked(stream, text);
    }
}

/// Runs one attempt of an action until it ends, times out or is cancelled.
pub async fn perform(action: Prepared, attempt: Attempt, cancel: watch::Receiver<bool>) -> Outcome {
    match action {
        Prepared::Run {
            command,
            env,
            json_outputs,
        } => run(command, env, json_outputs, &attempt, cancel).await,
        Prepared::Http { timeout, .. } => {
            let timeout = timeout
                .or(attempt.timeout)
                .unwrap_or(Duration::from_secs(30));
            let call = http(action, &attempt);
            tokio::select! {
                outcome = tokio::time::timeout(timeout, call) => outcome.unwrap_or_else(|_| Outcome::Failed {
                    error: format!("no response within {}", crate::runbook::duration::Duration(timeout)),
                    exit_code: None,
                    transient: true,
                }),
                () = cancelled(cancel) => Outcome::Cancelled,
            }
        }
        Prepared::Sql {
            spec,
            exe,
            env,
            secrets,
        } => sql::run(&spec, &exe, env, &secrets, &attempt, cancel).await,
        Prepared::Copy {
            spec,
            exe,
            env,
            secrets,
        } => copy::run(&spec, &exe, env, &secrets, &attempt, cancel).await,
        Prepared::Compare {
            spec,
            exe,
            env,
            secrets,
        } => compare::run(&spec, &exe, env, &secrets, &attempt, cancel).await,
        Prepared::Poll(poll) => super::poll::run(*poll, &attempt, cancel).await,
        // A zero wait is a no-op step: do not round it up to the timer's 1 ms tick.
        Prepared::Wait { duration, .. } if duration.is_zero() => Outcome::Succeeded {
            outputs: None,
            exit_code: None,
        },
        Prepared::Wait { until, .. } => tokio::select! {
            () = attempt.clock.sleep_until(until) => {
                Outcome::Succeeded { outputs: None, exit_code: None }
            }
            () = cancelled(cancel) => Outcome::Cancelled,
        },
    }
}

/// Resolves when the watch turns true (or its sender is gone, which never cancels).
pub(super) async fn cancelled(mut cancel: watch::Receiver<bool>) {
    if cancel.wait_for(|&c| c).await.is_err() {
        std::future::pending::<()>().await;
    }
}

async fn run(
    command: String,
    env: StepEnv,
    json_outputs: bool,
    attempt: &Attempt,
    cancel: watch::Receiver<bool>,
) -> Outcome {
    let spec = RunSpec {
        command,
        dir: attempt.dir.clone(),
        env,
        timeout: attempt.timeout,
        kill_grace: Duration::from_secs(5),
        capture_last_line: json_outputs,
        input: None,
    };
    let (outcome, stdout, stderr) = attempt.run_process(spec, |_| {}, cancel).await;
    let exit_code = match outcome.exit {
        Exit::Code(code) => Some(code),
        _ => None,
    };
    let failure = |error: String, transient: bool| Outcome::Failed {
        error,
        exit_code,
        transient,
    };
    match outcome.exit {
        Exit::Code(0) => {}
        Exit::Code(code) => {
            let tail = stderr
                .last
                .map(|last| format!(": {last}"))
                .unwrap_or_default();
            return failure(
                format!("exited with code {code}{tail}"),
                // Without `on_exit_codes` every exit code may be retried (up to `attempts`).
                attempt.transient_codes.is_empty() || attempt.transient_codes.contains(&code),
            );
        }
        Exit::Signal(n) => return failure(format!("killed by signal {n}"), false),
        Exit::TimedOut => {
            let limit = attempt.timeout.map(crate::runbook::duration::Duration);
            return failure(
                format!(
                    "timed out after {}; its processes were killed",
                    limit.map(|d| d.to_string()).unwrap_or_default()
                ),
                false,
            );
        }
        Exit::Cancelled => return Outcome::Cancelled,
        Exit::SpawnFailed(reason) => {
            return failure(attempt.masker.mask(&reason).into_owned(), false);
        }
    }
    let mut outputs: Map<String, Json> = outcome
        .outputs
        .into_iter()
        .map(|(k, v)| (k, Json::String(v)))
        .collect();
    if json_outputs {
        let last = outcome.last_stdout_line.unwrap_or_default();
        match serde_json::from_str::<Json>(&last) {
            Ok(Json::Object(fields)) => outputs.extend(fields),
            _ => {
                // Quoted as it was logged: a line in pieces was masked whole there.
                return failure(
                    format!(
                        "the step declares `outputs: json`, but its last line of output is not a JSON object: `{}`",
                        stdout.last.unwrap_or_default()
                    ),
                    false,
                );
            }
        }
    }
    let outputs = (!outputs.is_empty()).then(|| attempt.masker.mask_json(&Json::Object(outputs)));
    Outcome::Succeeded { outputs, exit_code }
}

async fn http(action: Prepared, attempt: &Attempt) -> Outcome {
    let Prepared::Http {
        method,
        url,
        headers,
        body,
        expect_status,
        transient_status,
        ..
    } = action
    else {
        return Outcome::Failed {
            error: "not an http action".into(),
            exit_code: None,
            transient: false,
        };
    };
    let shown_url = attempt.masker.mask(&url).into_owned();
    attempt.log(LogStream::Sensei, &format!("{method} {shown_url}"));
    let mut request = attempt.http.request(method, &url);
    for (name, value) in &headers {
        request = request.header(name, value);
    }
    if let Some(body) = &body {
        request = request.json(body);
    }
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => {
            let reason = attempt.masker.mask(&error_chain(&e)).into_owned();
            return Outcome::Failed {
                error: format!("request to {shown_url} failed: {reason}"),
                exit_code: None,
                transient: e.is_connect() || e.is_timeout(),
            };
        }
    };
    let status = response.status().as_u16();
    let response_headers: Map<String, Json> = response
        .headers()
        .iter()
        .filter_map(|(k, v)| {
            Some((
                k.as_str().to_owned(),
                Json::String(v.to_str().ok()?.to_owned()),
            ))
        })
        .collect();
    let text = response.text().await.unwrap_or_default();
    attempt.log(LogStream::Stdout, &format!("HTTP {status}"));
    // Masked whole before it is cut into lines, so a multi-line secret is found as one.
    let shown = attempt.masker.mask(&text);
    for line in shown.lines().take(200) {
        attempt.log_masked(LogStream::Stdout, line.to_owned());
    }
    let body = serde_json::from_str::<Json>(&text).unwrap_or(Json::String(text));
    let outputs = attempt.masker.mask_json(&json!({
        "status": status,
        "headers": response_headers,
        "body": body,
    }));
    let expected = if expect_status.is_empty() {
        (200..300).contains(&status)
    } else {
        expect_status.contains(&status)
    };
    if expected {
        Outcome::Succeeded {
            outputs: Some(outputs),
            exit_code: None,
        }
    } else {
        let wanted = if expect_status.is_empty() {
            "a 2xx status".to_owned()
        } else {
            let list: Vec<String> = expect_status.iter().map(u16::to_string).collect();
            format!("status {}", list.join(" or "))
        };
        Outcome::Failed {
            error: format!("{shown_url} answered {status}, expected {wanted}"),
            exit_code: None,
            transient: transient_status.contains(&status),
        }
    }
}

/// reqwest's error with its causes, which say what actually went wrong.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
