//! `sensei __step compare`: the process of one `compare` step attempt, started by the
//! engine like a `sql` step's (its own process group, output streamed to the store, stopped
//! with SIGTERM then SIGKILL on timeout, pause or cancel, killed by the watchdog if the
//! engine dies). It reads its [`CompareSpec`] as JSON on stdin.
//!
//! It connects to both sides, compares them ([`super::run`]), writes `progress=` after each
//! key range and its outputs (`key=<JSON>` lines) to `$SENSEI_OUTPUT`. On SIGTERM or
//! SIGINT, or when its own deadline passes, it cancels the running statement of both sides
//! on their servers before it exits. Nothing it prints shows either DSN's password.
//!
//! Exit codes: 0 the sides match; 1 they could not be compared (a query failed, the
//! columns do not match, a key out of order), as a `sql` step's process exits 1 when its SQL
//! failed; 2 the spec could not be read; 3 they differ (the last stderr line says where);
//! 75 (`EX_TEMPFAIL`) a failure that may pass (no connection, a lost one, a deadlock); 124
//! its own deadline passed; 143 stopped by a signal.

use super::run::{self, Failure};
use super::side::Side;
use super::spec::CompareSpec;
use crate::db::cancel;
use crate::db::child::{
    CANCEL_PREFIX, EXIT_DEADLINE, EXIT_SPEC, EXIT_STOPPED, EXIT_TRANSIENT, Why, shown,
};
use crate::db::dsn::Dsn;
use crate::db::exec;
use crate::runbook::render::Masker;
use serde_json::Value as Json;
use std::io::{Read, Write};

pub const EXIT_CANNOT: u8 = 1;
pub const EXIT_DIFFERS: u8 = 3;

/// The entry point: the spec from `input`, the exit code out.
pub fn main(input: impl Read) -> u8 {
    crate::db::child::enter(input, "compare", run)
}

/// Lines out, the DSNs' passwords masked; reports to `$SENSEI_OUTPUT`.
#[derive(Debug)]
pub struct Say {
    masker: Masker,
}

impl Say {
    pub fn out(&self, line: &str) {
        let _ = writeln!(std::io::stdout(), "{}", self.masker.mask(line));
    }

    pub fn err(&self, line: &str) {
        let _ = writeln!(std::io::stderr(), "{}", self.masker.mask(line));
    }

    /// `progress=DONE/TOTAL`, followed live by the engine.
    pub fn progress(&self, done: usize, total: usize) {
        self.report(&format!("progress={done}/{total}\n"));
    }

    fn outputs(&self, outputs: &[(String, Json)]) {
        let text: String = outputs
            .iter()
            .map(|(k, v)| format!("{k}={}\n", self.masker.mask(&v.to_string())))
            .collect();
        self.report(&text);
    }

    fn report(&self, text: &str) {
        let Some(path) = std::env::var_os(crate::process::OUTPUT_ENV) else {
            return;
        };
        let written = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .and_then(|mut f| f.write_all(text.as_bytes()));
        if let Err(e) = written {
            self.err(&format!("could not write to $SENSEI_OUTPUT: {e}"));
        }
    }
}

async fn run(spec: CompareSpec) -> u8 {
    let Some(stop) = crate::db::child::stop_when(spec.timeout_ms) else {
        return EXIT_SPEC;
    };
    tokio::pin!(stop);

    let (source_dsn, target_dsn) =
        match (Dsn::parse(&spec.source.dsn), Dsn::parse(&spec.target.dsn)) {
            (Ok(s), Ok(t)) => (s, t),
            (Err(e), _) => {
                eprintln!("error: source `dsn`: {e}");
                return EXIT_SPEC;
            }
            (_, Err(e)) => {
                eprintln!("error: target `dsn`: {e}");
                return EXIT_SPEC;
            }
        };
    let mut secrets = source_dsn.secrets();
    secrets.extend(target_dsn.secrets());
    let say = Say {
        masker: Masker::new(secrets),
    };
    for (name, dsn) in [("source", &source_dsn), ("target", &target_dsn)] {
        say.out(&format!(
            "{name}: connecting to {} at {}",
            dsn.engine.name(),
            dsn.target()
        ));
    }
    // A table name is read (and quoted) before anything connects.
    let source_from = super::query::from(source_dsn.engine, &spec.source.from);
    let target_from = super::query::from(target_dsn.engine, &spec.target.from);
    let (source_from, target_from) = match (source_from, target_from) {
        (Ok(s), Ok(t)) => (s, t),
        (Err(e), _) => {
            say.err(&format!("error: the source's `table`: {e}"));
            return EXIT_CANNOT;
        }
        (_, Err(e)) => {
            say.err(&format!("error: the target's `table`: {e}"));
            return EXIT_CANNOT;
        }
    };
    let opening = async {
        let source = Side::open("source", source_dsn.clone(), source_from)
            .await
            .map_err(|e| ("source", source_dsn.target(), e))?;
        let target = Side::open("target", target_dsn.clone(), target_from)
            .await
            .map_err(|e| ("target", target_dsn.target(), e))?;
        Ok::<_, (&str, String, _)>((source, target))
    };
    let (mut source, mut target) = tokio::select! {
        opened = opening => match opened {
            Ok(sides) => sides,
            Err((name, at, e)) => {
                say.err(&format!("error: could not connect to the {name} at {at}: {e}"));
                return EXIT_TRANSIENT;
            }
        },
        why = &mut stop => return stopped(&say, why),
    };
    for side in [&source, &target] {
        say.out(&format!(
            "{}: connected: session {}",
            side.name, side.backend
        ));
    }
    let sessions = [
        (source.dsn.clone(), source.backend),
        (target.dsn.clone(), target.backend),
    ];
    let outcome = {
        let work = run::compare(&mut source, &mut target, &spec, &say);
        tokio::pin!(work);
        tokio::select! {
            done = &mut work => Ok(done),
            why = &mut stop => Err(why),
        }
    };
    let outcome = match outcome {
        Ok(done) => done,
        Err(why) => {
            say.out(&format!(
                "stopping ({}): cancelling the statements on the servers",
                shown(why)
            ));
            // One line for both sides: the engine quotes the last `cancel: ` line it saw.
            let (source, target) = tokio::join!(
                cancel::cancel(&sessions[0].0, sessions[0].1),
                cancel::cancel(&sessions[1].0, sessions[1].1)
            );
            let said = |r: Result<String, String>| r.unwrap_or_else(|e| e);
            say.out(&format!(
                "{CANCEL_PREFIX}source: {}; target: {}",
                said(source),
                said(target)
            ));
            return stopped(&say, why);
        }
    };
    source.conn.close().await;
    target.conn.close().await;
    match outcome {
        Ok(report) => {
            say.outputs(&report.outputs());
            if report.matched() {
                say.out("source and target match");
                0
            } else {
                say.err(&format!("error: {}", report.message()));
                EXIT_DIFFERS
            }
        }
        Err(Failure::Plan(text)) => {
            say.err(&format!("error: {text}"));
            EXIT_CANNOT
        }
        Err(Failure::Sql(side, e)) => {
            let (message, more) = exec::describe(&e);
            for line in more {
                say.out(&line);
            }
            say.err(&format!("error: the {side}'s query failed: {message}"));
            if exec::transient(&e) {
                EXIT_TRANSIENT
            } else {
                EXIT_CANNOT
            }
        }
    }
}

fn stopped(say: &Say, why: Why) -> u8 {
    say.err(&format!("error: stopped: {}", shown(why)));
    match why {
        Why::Signal(_) => EXIT_STOPPED,
        Why::Deadline => EXIT_DEADLINE,
    }
}
