//! `sensei __step sql`: the process of one `sql` step attempt (or `sql` probe), started by
//! the engine like any step process: in its own process group, with its output streamed to
//! the store, stopped with SIGTERM (then SIGKILL) on timeout, pause or cancel, and killed by
//! the watchdog if the engine dies. It reads its [`SqlSpec`] as JSON on stdin.
//!
//! It connects, notes its session id on the server, runs the SQL ([`super::exec`]), and
//! writes its outputs to `$SENSEI_OUTPUT` as `key=<JSON>` lines. On SIGTERM or SIGINT, or
//! when its own deadline passes, it cancels the statement on the server from a second
//! connection ([`super::cancel`]) before it exits. Its stdout is a short log (statement
//! kinds, rows, durations); its last stderr line says why it failed. Neither ever shows the
//! DSN's password: every line goes through a masker of its forms.
//!
//! Exit codes: 0 done; 1 the SQL failed; 2 the spec could not be read; 75 (`EX_TEMPFAIL`)
//! a failure that may pass (no connection, a deadlock, a serialization failure); 124 its
//! own deadline passed; 143 stopped by a signal.

use super::cancel;
use super::connect::{self, CONNECT_TIMEOUT};
use super::dsn::{Dsn, Engine};
use super::exec::{self, MAX_ROWS, MAX_ROWS_BYTES, Results, Stop, Undone};
use super::spec::SqlSpec;
use super::sqltext;
use crate::runbook::render::Masker;
use serde_json::Value as Json;
use std::io::{Read, Write};
use std::time::{Duration, Instant};
use tokio::signal::unix::{SignalKind, signal};

pub const EXIT_SQL: u8 = 1;
pub const EXIT_SPEC: u8 = 2;
pub const EXIT_TRANSIENT: u8 = 75;
pub const EXIT_DEADLINE: u8 = 124;
pub const EXIT_STOPPED: u8 = 143;

/// Output names the step sets itself, and names `$SENSEI_OUTPUT` gives a meaning of its own;
/// a column with one of them is not an output by its name.
pub const RESERVED: &[&str] = &[
    "rows",
    "row_count",
    "rows_affected",
    "progress",
    "checkpoint",
];

/// How the line that says what became of a cancel starts (the engine quotes it).
pub const CANCEL_PREFIX: &str = "cancel: ";

/// How long after its timeout the process stops by itself when no signal came.
const OWN_DEADLINE_AFTER: Duration = Duration::from_secs(1);
/// How long a cancelled statement gets to end (its transaction rolled back) before exit.
const WIND_DOWN: Duration = Duration::from_millis(1500);

/// The entry point: the spec from `input`, the exit code out.
pub fn main(input: impl Read) -> u8 {
    enter(input, "sql", run)
}

/// The entry of a database step's process (`sql`, `copy`, `compare`): its spec as JSON
/// from `input` (stdin: never argv, which other users can read), run on a current-thread
/// runtime; the exit code out.
pub(crate) fn enter<S, F>(mut input: impl Read, kind: &str, run: impl FnOnce(S) -> F) -> u8
where
    S: serde::de::DeserializeOwned,
    F: std::future::Future<Output = u8>,
{
    let mut text = String::new();
    if let Err(e) = input.read_to_string(&mut text) {
        eprintln!("error: could not read the step's spec from stdin: {e}");
        return EXIT_SPEC;
    }
    let spec: S = match serde_json::from_str(&text) {
        Ok(spec) => spec,
        Err(e) => {
            eprintln!(
                "error: stdin is not a {kind} step's spec ({e}); sensei starts this command itself for a `{kind}` step"
            );
            return EXIT_SPEC;
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    match runtime {
        Ok(rt) => rt.block_on(run(spec)),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            EXIT_SPEC
        }
    }
}

/// What stops a database step's process before its work ends: SIGTERM or SIGINT from
/// sensei, or its own deadline, [`OWN_DEADLINE_AFTER`] past the step's timeout. Listening
/// starts when this is called, so call it before connecting: a signal that comes while
/// connecting must not kill the process before it can cancel. `None` (said on stderr) when
/// the signals cannot be listened for.
pub(crate) fn stop_when(timeout_ms: Option<u64>) -> Option<impl std::future::Future<Output = Why>> {
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        eprintln!("error: cannot listen for signals");
        return None;
    };
    let deadline =
        timeout_ms.map(|ms| Instant::now() + Duration::from_millis(ms) + OWN_DEADLINE_AFTER);
    Some(async move {
        let at = deadline.map(tokio::time::Instant::from_std);
        tokio::select! {
            _ = term.recv() => Why::Signal("SIGTERM"),
            _ = int.recv() => Why::Signal("SIGINT"),
            () = async { match at { Some(at) => tokio::time::sleep_until(at).await, None => std::future::pending().await } } => Why::Deadline,
        }
    })
}

/// Lines out, the DSN's password masked (the `copy` child says its lines through it too).
pub(crate) struct Say {
    pub(crate) masker: Masker,
}

impl Say {
    pub(crate) fn out(&self, line: &str) {
        let _ = writeln!(std::io::stdout(), "{}", self.masker.mask(line));
    }
    pub(crate) fn err(&self, line: &str) {
        let _ = writeln!(std::io::stderr(), "{}", self.masker.mask(line));
    }
}

/// Why the process stops before its SQL ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Why {
    Signal(&'static str),
    Deadline,
}

async fn run(spec: SqlSpec) -> u8 {
    let Some(stop) = stop_when(spec.timeout_ms) else {
        return EXIT_SPEC;
    };
    tokio::pin!(stop);

    let dsn = match Dsn::parse(&spec.dsn) {
        Ok(dsn) => dsn,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_SPEC;
        }
    };
    let say = Say {
        masker: Masker::new(dsn.secrets()),
    };
    let started = Instant::now();
    say.out(&format!(
        "connecting to {} at {}",
        dsn.engine.name(),
        dsn.target()
    ));
    let connecting = async {
        let mut conn = connect::connect(&dsn, CONNECT_TIMEOUT).await?;
        let backend = conn.backend_id().await?;
        Ok::<_, connect::ConnectError>((conn, backend))
    };
    let (mut conn, backend) = tokio::select! {
        connected = connecting => match connected {
            Ok(c) => c,
            Err(e) => {
                say.err(&format!("error: could not connect to {}: {e}", dsn.target()));
                return EXIT_TRANSIENT;
            }
        },
        why = &mut stop => return stopped(&say, why, None),
    };
    if dsn.engine == Engine::Postgres {
        // PostgreSQL 14 and later then end a statement whose client is gone (killed with
        // the engine): best effort, an older server refuses the setting.
        let _ = conn
            .simple("SET client_connection_check_interval = 2000")
            .await;
    }
    let tls = match conn.tls().await {
        Some(true) => ", TLS",
        Some(false) => ", no TLS",
        None => "",
    };
    say.out(&format!("connected: session {backend}{tls}"));
    let query = match bind(&mut conn, &spec).await {
        Ok(q) => q,
        Err(message) => {
            say.err(&format!("error: {message}"));
            return EXIT_SQL;
        }
    };
    let mut results = Results::new(MAX_ROWS, MAX_ROWS_BYTES);
    let outcome = {
        let mut log = |line: String| say.out(&line);
        let work = exec::execute(&mut conn, &query, spec.transaction, &mut results, &mut log);
        tokio::pin!(work);
        tokio::select! {
            done = &mut work => Ok(done),
            why = &mut stop => {
                say.out(&format!("stopping ({}): cancelling the statement on the server", shown(why)));
                match cancel::cancel(&dsn, backend).await {
                    Ok(said) => say.out(&format!("{CANCEL_PREFIX}{said}")),
                    Err(said) => say.err(&format!("{CANCEL_PREFIX}{said}")),
                }
                // The cancelled statement ends (and its transaction rolls back) before exit;
                // the server's word on it goes to the log.
                match tokio::time::timeout(WIND_DOWN, &mut work).await {
                    Ok(Err((Stop::Sql(e), _))) => {
                        say.out(&format!("the server ended the statement: {}", exec::describe(&e).0));
                    }
                    Ok(Err((Stop::TooManyRows(_), _))) | Ok(Ok(())) => {}
                    Err(_) => say.out("the statement had not ended when the process exited"),
                }
                Err(why)
            }
        }
    };
    match outcome {
        Err(why) => stopped(&say, why, Some(backend)),
        Ok(Err((stop, undone))) => {
            let code = match &stop {
                Stop::Sql(e) if exec::transient(e) => EXIT_TRANSIENT,
                _ => EXIT_SQL,
            };
            let (message, more) = match &stop {
                Stop::Sql(e) => exec::describe(e),
                Stop::TooManyRows(m) => (m.clone(), Vec::new()),
            };
            for line in more {
                say.out(&line);
            }
            say.out(match undone {
                Undone::RolledBack => "rolled back: nothing of this step remains",
                Undone::Kept => "no transaction: what ran before the error stays",
            });
            conn.close().await;
            say.err(&format!("error: {message}"));
            code
        }
        Ok(Ok(())) => {
            conn.close().await;
            if let Err(e) = write_outputs(&say, &results) {
                say.err(&format!("error: could not write the outputs: {e}"));
                return EXIT_SQL;
            }
            say.out(&format!("done in {} ms", started.elapsed().as_millis()));
            0
        }
    }
}

pub(crate) fn shown(why: Why) -> String {
    match why {
        Why::Signal(name) => format!("{name} from sensei"),
        Why::Deadline => "the step's timeout passed".into(),
    }
}

pub(crate) fn stopped(say: &Say, why: Why, backend: Option<u64>) -> u8 {
    if backend.is_none() {
        say.out(&format!(
            "stopped ({}) before any statement ran",
            shown(why)
        ));
    }
    say.err(&format!("error: stopped: {}", shown(why)));
    match why {
        Why::Signal(_) => EXIT_STOPPED,
        Why::Deadline => EXIT_DEADLINE,
    }
}

/// The query with `params` put in as literals (MySQL's escaping depends on the session's
/// `sql_mode`).
async fn bind(conn: &mut connect::Conn, spec: &SqlSpec) -> Result<String, String> {
    if spec.params.is_empty() {
        return Ok(spec.query.clone());
    }
    let engine = conn.engine();
    let no_backslash_escapes = engine == Engine::Mysql
        && conn
            .scalar("SELECT @@SESSION.sql_mode")
            .await
            .map_err(|e| format!("could not read the session's sql_mode: {e}"))?
            .is_some_and(|mode| mode.contains("NO_BACKSLASH_ESCAPES"));
    sqltext::bind(engine, &spec.query, &spec.params, no_backslash_escapes)
        .map_err(|e| e.to_string())
}

/// The outputs of a result: the first row's columns, `rows`, `row_count`, `rows_affected`.
pub fn outputs(results: &Results) -> (Vec<(String, Json)>, Vec<String>) {
    let mut out = Vec::new();
    let mut notes = Vec::new();
    if let Some(first) = results.rows().first() {
        for name in results.columns() {
            let usable = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !usable {
                notes.push(format!(
                    "column `{name}` is not an output by its name (use letters, digits, `_` and `-`: `... AS name`); it is in `rows`"
                ));
            } else if RESERVED.contains(&name.as_str()) {
                notes.push(format!(
                    "column `{name}` has a name outputs reserve; rename it (`... AS other`) to read it by name; it is in `rows`"
                ));
            } else if let Some(value) = first.get(name) {
                out.push((name.clone(), value.clone()));
            }
        }
    }
    let rows: Vec<Json> = results.rows().iter().cloned().map(Json::Object).collect();
    out.push(("row_count".into(), Json::from(rows.len())));
    out.push(("rows".into(), Json::Array(rows)));
    out.push(("rows_affected".into(), Json::from(results.affected)));
    (out, notes)
}

fn write_outputs(say: &Say, results: &Results) -> std::io::Result<()> {
    let (outputs, mut notes) = outputs(results);
    notes.dedup();
    for note in &notes {
        say.out(note);
    }
    let Some(path) = std::env::var_os(crate::process::OUTPUT_ENV) else {
        return Ok(());
    };
    let mut text = String::new();
    for (key, value) in outputs {
        text.push_str(&key);
        text.push('=');
        text.push_str(&value.to_string());
        text.push('\n');
    }
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)?
        .write_all(text.as_bytes())
}
