//! The `sensei` command line: clap parses, one function per subcommand does the work through
//! the library, and every outcome maps to an exit code (SPEC §5) — errors by their kind, in
//! one place ([`exit`]).

#[macro_use]
mod output {
    /// `println!` for output people pipe into `head` or a pager: when the reader has gone,
    /// the command ends quietly (exit 0), as Unix tools do, instead of panicking.
    macro_rules! outln {
        ($($arg:tt)*) => {{
            use std::io::Write as _;
            let mut out = std::io::stdout().lock();
            if let Err(e) = writeln!(out, $($arg)*)
                && e.kind() == std::io::ErrorKind::BrokenPipe
            {
                std::process::exit(0);
            }
        }};
    }

    /// `print!` with the same rule as [`outln!`].
    macro_rules! out {
        ($($arg:tt)*) => {{
            use std::io::Write as _;
            let mut out = std::io::stdout().lock();
            if let Err(e) = write!(out, $($arg)*)
                && e.kind() == std::io::ErrorKind::BrokenPipe
            {
                std::process::exit(0);
            }
        }};
    }

    /// `println!` for commands that drive a migration: a closed stdout must not stop the
    /// driver halfway, so write errors are ignored (progress lines do the same).
    macro_rules! sayln {
        ($($arg:tt)*) => {{
            use std::io::Write as _;
            let _ = writeln!(std::io::stdout().lock(), $($arg)*);
        }};
    }
}

mod alerts;
mod client;
mod decide;
mod drive;
pub mod exit;
mod follow;
mod history;
mod inspect;
mod interrupt;
mod local;
mod plan;
mod progress;
pub mod schema;
mod serve;
mod stream;
mod validate;

use crate::engine::Attach;
use crate::event::{Decision, Operation};
use crate::operator::Ask;
use crate::runbook::model::Runbook;
use crate::runbook::params::{self, Params};

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "sensei",
    version,
    about = "Run production migrations from declarative runbooks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check runbook files or directories; exit 0 clean, 1 with errors.
    Validate(validate::Args),
    /// Show the resolved plan of a runbook: phases, waves, gates, windows.
    Plan(plan::Args),
    /// Print the runbook JSON Schema (the same as schemas/runbook.schema.json).
    Schema,
    /// Create a migration from a runbook and drive it here until it is certified, fails,
    /// is cancelled or pauses; exit 0 only when certified.
    Run(drive::RunArgs),
    /// Serve the REST API: migrations, gates, events, runbooks (flags or a config file).
    Serve(serve::Args),
    /// Show a migration's state and steps (default: the newest; `-f`: as they change).
    Status(inspect::StatusArgs),
    /// List migrations, newest first (`--state`, `--runbook` filter).
    List(inspect::ListArgs),
    /// Show the output of a migration's steps (`-f`: as it is written, until it rests).
    Logs(history::LogsArgs),
    /// Show a migration's event history (`-f`: as it grows, until it rests).
    Events(history::EventsArgs),
    /// Start a created migration and drive it here.
    Start(drive::IdArgs),
    /// Pause a running migration (in-flight steps finish; no new step starts).
    Pause(drive::IdArgs),
    /// Continue a paused migration, or one whose driver died, and drive it here.
    Resume(drive::ResumeArgs),
    /// Cancel a migration (a running one pauses first; its running steps are killed). What
    /// its steps changed stays changed, unless `--rollback` undoes it first.
    Cancel(decide::CancelArgs),
    /// Run a failed migration again, keeping the steps that succeeded.
    Retry(drive::IdArgs),
    /// Roll back the succeeded steps of a migration, in reverse dependency order.
    Rollback(decide::RollbackArgs),
    /// Approve a gate (as `--as NAME`; not the migration's starter).
    Approve(decide::DecideArgs),
    /// Reject a gate.
    Reject(decide::DecideArgs),
    /// List alert deliveries and their state (`--deliver` first sends what is due).
    Alerts(alerts::AlertsArgs),
    /// Internal: the watchdog that kills step processes when sensei dies.
    #[command(hide = true, name = "__reap")]
    Reap,
    /// Internal: the process of a database step, started by sensei itself; it reads the
    /// rendered step on stdin.
    #[command(hide = true, name = "__step")]
    Step {
        #[arg(value_enum)]
        kind: StepKind,
    },
}

/// The step kinds `sensei __step` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StepKind {
    Sql,
    Copy,
    Compare,
}

/// Parses the command line and runs the command.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    exit::OK
                }
                _ => exit::USAGE,
            });
        }
    };
    // Before anything else: no process of the same user — a step least of all — may read
    // the tokens and keys in this process's environment through `/proc`.
    if let Err(e) = crate::process::conceal_own_environment() {
        eprintln!("warning: cannot hide this process's environment from other processes: {e}");
    }
    // A rehearsal with a mistyped time would quietly run on the real clock instead.
    if let Err(message) = check_fixed_now() {
        error(message);
        return ExitCode::from(exit::USAGE);
    }
    let code = match cli.command {
        Command::Validate(args) => validate::run(&args),
        Command::Plan(args) => plan::run(&args),
        Command::Schema => schema::run(),
        Command::Run(args) => drive::run(&args),
        Command::Serve(args) => serve::run(&args),
        Command::Status(args) => inspect::status(&args),
        Command::List(args) => inspect::list(&args),
        Command::Logs(args) => history::logs(&args),
        Command::Events(args) => history::events(&args),
        Command::Start(args) => drive::attach(&args, Attach::Start),
        Command::Resume(args) => drive::resume(&args),
        Command::Retry(args) => drive::attach(&args, Attach::Retry),
        Command::Pause(args) => decide::operate(&args, Ask::new(Operation::Pause, false)),
        Command::Cancel(args) => decide::operate(
            &args.id,
            Ask::new(Operation::Cancel, args.rollback)
                .past_point_of_no_return(args.past_point_of_no_return),
        ),
        Command::Rollback(args) => decide::operate(
            &args.id,
            Ask::new(Operation::Rollback, false)
                .past_point_of_no_return(args.past_point_of_no_return),
        ),
        Command::Approve(args) => decide::decide(&args, Decision::Approve),
        Command::Reject(args) => decide::decide(&args, Decision::Reject),
        Command::Alerts(args) => alerts::run(&args),
        Command::Step {
            kind: StepKind::Sql,
        } => crate::db::child::main(std::io::stdin().lock()),
        Command::Step {
            kind: StepKind::Copy,
        } => crate::db::copy::child::main(std::io::stdin().lock()),
        Command::Step {
            kind: StepKind::Compare,
        } => crate::db::compare::child::main(std::io::stdin().lock()),
        Command::Reap => {
            let code = crate::process::reap_main(std::io::stdin().lock());
            u8::try_from(code).unwrap_or(exit::FAILED)
        }
    };
    ExitCode::from(code)
}

/// A one-thread async runtime for a command (a driver, a follow, a client): the work waits
/// on other threads (the store's writer, the kernel), not on this one. The error is said.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, u8> {
    built(
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
    )
}

/// A multi-thread runtime (the server, alert delivery); the error is said.
pub(crate) fn multi_thread_runtime() -> Result<tokio::runtime::Runtime, u8> {
    built(
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
    )
}

fn built(runtime: std::io::Result<tokio::runtime::Runtime>) -> Result<tokio::runtime::Runtime, u8> {
    runtime.map_err(|e| {
        error(format!("cannot start the async runtime: {e}"));
        exit::FAILED
    })
}

/// Prints a one-sentence error the way every command does.
pub(crate) fn error(message: impl std::fmt::Display) {
    eprintln!("error: {message}");
}

/// Output formats shared by commands that have both a human and a JSON form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// Resolves `-p name=value` flags against a runbook's params; every problem is printed,
/// and nothing runs (exit 2).
pub(crate) fn params_from_flags(runbook: &Runbook, flags: &[String]) -> Result<Params, u8> {
    let assignments: Result<Vec<_>, _> =
        flags.iter().map(|p| params::parse_assignment(p)).collect();
    let resolved = assignments
        .map_err(|e| vec![e])
        .and_then(|a| params::resolve_text(runbook, &a));
    resolved.map_err(|errors| {
        errors.iter().for_each(error);
        exit::USAGE
    })
}

/// `SENSEI_NOW` (RFC 3339): the time plans are computed from, and the time a driven
/// migration's clock starts at (then flowing normally) — to rehearse a window cutover, and to
/// test one without waiting for Saturday night.
pub(crate) fn fixed_now() -> Option<chrono::DateTime<chrono::Utc>> {
    let text = std::env::var("SENSEI_NOW").ok()?;
    chrono::DateTime::parse_from_rfc3339(&text)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// `SENSEI_NOW`, when set, must be an RFC 3339 time: checked before any command runs.
fn check_fixed_now() -> Result<(), String> {
    match std::env::var_os("SENSEI_NOW") {
        None => Ok(()),
        Some(_) if fixed_now().is_some() => Ok(()),
        Some(text) => Err(format!(
            "SENSEI_NOW is `{}`, not an RFC 3339 time; write it like `2026-12-05T22:00:00Z` (or `...+01:00`), or unset it to use the real clock",
            text.to_string_lossy()
        )),
    }
}
