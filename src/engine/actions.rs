//! Step actions that take time, each kind in its own file: `run` (a shell command, through
//! `process`: `actions/run.rs`), `http` (reqwest: `actions/http.rs`), `sql`, `copy` and
//! `compare` (`sensei __step sql|copy|compare`, through `process` the same way:
//! `actions/sql.rs`, `actions/copy.rs`, `actions/compare.rs`) and `wait` (a timer, here).
//! Each returns an [`Outcome`]; the driver decides what it means for the step and the
//! migration. This file holds what they share: the prepared action, the attempt
//! ([`Attempt::run_process`], the one way a step's process is run), its logs and
//! [`perform`]. `check` and `gate` do not run here: a check is decided when it starts, and a
//! gate waits for decisions in the store.

mod compare;
mod copy;
mod http;
mod run;
mod sql;

use crate::event::MigrationId;
use crate::process::{self, Line, LiveReport, OnReport, Reaper, RunSpec, StepEnv, Stream};
use crate::runbook::render::Masker;
use crate::store::{LogStream, NewLogLine, Store};
use chrono::Utc;
use serde_json::Value as Json;
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
        } => run::run(command, env, json_outputs, &attempt, cancel).await,
        Prepared::Http { timeout, .. } => {
            let timeout = timeout
                .or(attempt.timeout)
                .unwrap_or(Duration::from_secs(30));
            let call = http::http(action, &attempt);
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
