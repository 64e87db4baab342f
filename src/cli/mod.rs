//! The `sensei` command line: clap parses, one function per subcommand does the work through
//! the library, and every outcome maps to an exit code (SPEC §5).

mod plan;
pub mod schema;
mod validate;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Exit codes of SPEC §5.
pub mod exit {
    pub const OK: u8 = 0;
    /// The migration or validation failed.
    pub const FAILED: u8 = 1;
    pub const USAGE: u8 = 2;
    /// Refused: illegal transition, unauthorized.
    pub const REFUSED: u8 = 3;
}

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
    /// Internal: the watchdog the engine starts to kill step process groups if it dies.
    #[command(hide = true, name = "__reap")]
    Reap,
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
    let code = match cli.command {
        Command::Validate(args) => validate::run(&args),
        Command::Plan(args) => plan::run(&args),
        Command::Schema => schema::run(),
        Command::Reap => {
            let code = crate::process::reap_main(std::io::stdin().lock());
            u8::try_from(code).unwrap_or(exit::FAILED)
        }
    };
    ExitCode::from(code)
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
