//! `sensei __step copy`: the process of one `copy` step attempt, started by the engine like a
//! `sql` step's (see [`crate::db::child`]): its [`CopySpec`] as JSON on stdin, the step's last
//! checkpoint in `$SENSEI_CHECKPOINT`, `checkpoint=` and `progress=` lines written to
//! `$SENSEI_OUTPUT` after each committed batch, its outputs there at the end.
//!
//! It connects to both servers, reads the target table's columns, and runs the attempt
//! ([`super::job`]). On SIGTERM or SIGINT, or at its own deadline, it cancels the statements
//! of both sessions on their servers; the batch being written rolls back, the ones committed
//! stay, and the next attempt goes on after the last recorded checkpoint. Every line goes
//! through a masker of both DSNs' passwords.
//!
//! Exit codes, as for `sql`: 0 done; 1 the copy failed (a server's error, rows that do not
//! fit); 2 the spec could not be read; 75 a failure that may pass (no connection, a lost
//! one, a deadlock); 124 its own deadline passed; 143 stopped by a signal.

use super::batch::Shape;
use super::job::{self, Hear, Plan, Summary};
use super::names::Name;
use super::session;
use super::source::Reader;
use super::target::Writer;
use super::{CopyError, CopySpec};
use crate::db::cancel;
use crate::db::child::{CANCEL_PREFIX, EXIT_SPEC, EXIT_SQL, EXIT_TRANSIENT, Say, shown, stopped};
use crate::db::connect::{self, CONNECT_TIMEOUT, Conn};
use crate::db::dsn::Dsn;
use crate::runbook::render::Masker;
use std::cell::Cell;
use std::io::{Read, Write};
use std::time::Duration;

/// How long the cancelled statements get to end before exit.
const WIND_DOWN: Duration = Duration::from_millis(1500);

/// The entry point: the spec from `input`, the exit code out.
pub fn main(input: impl Read) -> u8 {
    crate::db::child::enter(input, "copy", run)
}

/// Why an attempt failed before or during the copy.
enum Failure {
    Connect(String),
    Setup(String),
    Copy(CopyError),
}

impl From<CopyError> for Failure {
    fn from(e: CopyError) -> Failure {
        Failure::Copy(e)
    }
}

/// The session ids of both connections, once known: what a cancel names.
#[derive(Default)]
struct Backends {
    source: Cell<Option<u64>>,
    target: Cell<Option<u64>>,
}

async fn run(spec: CopySpec) -> u8 {
    let Some(stop) = crate::db::child::stop_when(spec.timeout_ms) else {
        return EXIT_SPEC;
    };
    tokio::pin!(stop);
    let (from, to) = match (Dsn::parse(&spec.from.dsn), Dsn::parse(&spec.to.dsn)) {
        (Ok(from), Ok(to)) => (from, to),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: {e}");
            return EXIT_SPEC;
        }
    };
    let say = Say {
        masker: Masker::new(from.secrets().into_iter().chain(to.secrets())),
    };
    let checkpoint = match checkpoint() {
        Ok(c) => c,
        Err(message) => {
            say.err(&format!("error: {message}"));
            return EXIT_SQL;
        }
    };
    let backends = Backends::default();
    let attempt = attempt(&spec, &from, &to, &say, &backends, checkpoint);
    tokio::pin!(attempt);
    let outcome = tokio::select! {
        done = &mut attempt => Ok(done),
        why = &mut stop => {
            if backends.source.get().is_some() || backends.target.get().is_some() {
                say.out(&format!("stopping ({}): cancelling the statements on the servers", shown(why)));
                let (source, target) = tokio::join!(
                    cancel_on(&from, backends.source.get()),
                    cancel_on(&to, backends.target.get()),
                );
                say.out(&format!("{CANCEL_PREFIX}source: {source}; target: {target}"));
                if tokio::time::timeout(WIND_DOWN, &mut attempt).await.is_err() {
                    say.out("the statements had not ended when the process exited");
                }
            }
            Err(why)
        }
    };
    match outcome {
        Err(why) => stopped(&say, why, backends.source.get().or(backends.target.get())),
        Ok(Err(failure)) => {
            let (message, code) = match failure {
                Failure::Connect(m) => (m, EXIT_TRANSIENT),
                Failure::Setup(m) => (m, EXIT_SQL),
                Failure::Copy(e) => {
                    let code = if e.transient() {
                        EXIT_TRANSIENT
                    } else {
                        EXIT_SQL
                    };
                    let (message, more) = e.describe();
                    for line in more {
                        say.out(&line);
                    }
                    say.out("the batch being written was rolled back; the batches committed before it stay, and the next attempt goes on after the last checkpoint");
                    (message, code)
                }
            };
            say.err(&format!("error: {message}"));
            code
        }
        Ok(Ok(summary)) => match write_outputs(&summary) {
            Ok(()) => 0,
            Err(e) => {
                say.err(&format!("error: could not write the outputs: {e}"));
                EXIT_SQL
            }
        },
    }
}

/// The checkpoint of an earlier attempt: the last key it committed.
fn checkpoint() -> Result<Option<i64>, String> {
    let text = std::env::var(crate::process::CHECKPOINT_ENV).unwrap_or_default();
    if text.is_empty() {
        return Ok(None);
    }
    text.trim().parse::<i64>().map(Some).map_err(|_| {
        format!(
            "the step's checkpoint `{text}` is not a key of this copy (an integer); something else wrote it: roll the step back (which clears it) to copy its range again"
        )
    })
}

async fn cancel_on(dsn: &Dsn, backend: Option<u64>) -> String {
    match backend {
        Some(b) => cancel::cancel(dsn, b).await.unwrap_or_else(|e| e),
        None => "no session yet".into(),
    }
}

async fn connect_to(dsn: &Dsn, side: &str, settings: &str) -> Result<(Conn, u64), Failure> {
    let failed = |e: String| {
        Failure::Connect(format!(
            "could not connect to the {side} {}: {e}",
            dsn.target()
        ))
    };
    let mut conn = connect::connect(dsn, CONNECT_TIMEOUT)
        .await
        .map_err(|e| failed(e.to_string()))?;
    let backend = conn.backend_id().await.map_err(|e| failed(e.to_string()))?;
    session::execute(&mut conn, settings)
        .await
        .map_err(|e| failed(format!("its session settings were refused: {e}")))?;
    if dsn.engine == crate::db::dsn::Engine::Postgres {
        // As for `sql`: PostgreSQL 14 and later then end a statement whose client was
        // killed (with the engine); an older server refuses the setting.
        let _ = session::execute(&mut conn, "SET client_connection_check_interval = 2000").await;
    }
    Ok((conn, backend))
}

async fn attempt(
    spec: &CopySpec,
    from: &Dsn,
    to: &Dsn,
    say: &Say,
    backends: &Backends,
    checkpoint: Option<i64>,
) -> Result<Summary, Failure> {
    say.out(&format!(
        "copying from {} at {} into `{}` on {} at {}",
        from.engine.name(),
        from.target(),
        spec.to.table,
        to.engine.name(),
        to.target()
    ));
    let table = Name::parse(&spec.to.table, to.engine)
        .map_err(|e| Failure::Setup(format!("`to.table` `{}`: {e}", spec.to.table)))?;
    let (source, target) = tokio::join!(
        connect_to(from, "source", session::source_settings(from.engine)),
        connect_to(to, "target", session::target_settings(to.engine)),
    );
    let ((source, source_id), (target, target_id)) = (source?, target?);
    backends.source.set(Some(source_id));
    backends.target.set(Some(target_id));
    say.out(&format!(
        "connected: source session {source_id}, target session {target_id}"
    ));
    let mut reader =
        Reader::new(source, &spec.from, spec.range, spec.batch).map_err(Failure::Setup)?;
    let mut writer = Writer::new(target, table.clone(), spec.from.key.trim());
    let target_columns = writer.columns(&spec.to.table).await?;
    let no_backslash_escapes = writer.no_backslash_escapes().await?;
    let mut shape = Shape {
        source: from.engine,
        target: to.engine,
        table,
        table_shown: spec.to.table.clone(),
        target_columns,
        key: spec.from.key.trim().to_owned(),
        zero_dates_null: spec.zero_dates_null,
        no_backslash_escapes,
        layout: None,
    };
    if let Some(c) = checkpoint {
        say.out(&format!("going on after the checkpoint: {} {c}", shape.key));
    }
    let plan = Plan {
        range: spec.range,
        batch: spec.batch,
        checkpoint,
    };
    let mut hearing = Hearing {
        say,
        output: std::env::var_os(crate::process::OUTPUT_ENV)
            .and_then(|path| std::fs::OpenOptions::new().append(true).open(path).ok()),
        warned: false,
    };
    let summary = job::run(&mut reader, &mut writer, &mut shape, plan, &mut hearing).await?;
    if let Some(layout) = &shape.layout {
        let columns: Vec<&str> = layout.columns.iter().map(|c| c.target.as_str()).collect();
        say.out(&format!("columns: {}", columns.join(", ")));
    }
    reader.into_conn().close().await;
    writer.into_conn().close().await;
    Ok(summary)
}

/// The log, and `$SENSEI_OUTPUT` for checkpoints.
struct Hearing<'a> {
    say: &'a Say,
    output: Option<std::fs::File>,
    warned: bool,
}

impl Hear for Hearing<'_> {
    fn log(&mut self, line: String) {
        self.say.out(&line);
    }

    fn committed(&mut self, last_key: i64, done: u64, total: u64) {
        let Some(file) = &mut self.output else {
            return;
        };
        // One write: the engine reads complete lines, both in the same look.
        let lines = format!("checkpoint={last_key}\nprogress={done}/{total}\n");
        if let Err(e) = file.write_all(lines.as_bytes())
            && !std::mem::replace(&mut self.warned, true)
        {
            self.say.out(&format!(
                "could not record a checkpoint in $SENSEI_OUTPUT ({e}); a later attempt copies more again"
            ));
        }
    }
}

/// `rows`, `copied`, `batches`, `deleted` and `last_key`, as `key=<JSON>` lines.
fn write_outputs(summary: &Summary) -> std::io::Result<()> {
    let Some(path) = std::env::var_os(crate::process::OUTPUT_ENV) else {
        return Ok(());
    };
    let last = summary
        .last_key
        .map_or(serde_json::Value::Null, serde_json::Value::from);
    let text = format!(
        "rows={}\ncopied={}\nbatches={}\ndeleted={}\nlast_key={last}\n",
        summary.rows, summary.copied, summary.batches, summary.deleted
    );
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)?
        .write_all(text.as_bytes())
}
