//! `sensei serve`: reads the configuration (flags over the file), sets up logging and the
//! async runtime, and runs the server until SIGTERM or SIGINT (see [`crate::server`]).

use super::exit;
use crate::engine::clock::{Clock, ShiftedClock, SystemClock};
use crate::server::{self, config};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The configuration file (default: sensei.yaml in the current directory, when it exists).
    #[arg(long, value_name = "FILE", env = "SENSEI_CONFIG")]
    config: Option<PathBuf>,
    /// The address to listen on (default 127.0.0.1:8080; without tokens, loopback only).
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// The state directory holding the embedded store (default .sensei).
    #[arg(long, value_name = "DIR", env = "SENSEI_STATE_DIR")]
    state_dir: Option<PathBuf>,
    /// A PostgreSQL store shared with other servers, e.g. postgres://sensei@db/sensei
    /// (default: `store` of the configuration file, else the state directory's SQLite).
    #[arg(long, value_name = "URL", env = "SENSEI_STORE", hide_env_values = true)]
    store: Option<String>,
    /// The directory of runbooks offered by the API (default ./runbooks), reloaded on change.
    #[arg(long, value_name = "DIR")]
    runbooks: Option<PathBuf>,
    /// Request bodies larger than this many bytes are refused with 413 (default 1 MiB).
    #[arg(long, value_name = "BYTES")]
    max_body: Option<usize>,
    /// On SIGTERM, how long running steps may take to finish before they are stopped
    /// (default 30s; their migrations resume at the next start either way).
    #[arg(long, value_name = "DURATION", value_parser = parse_grace)]
    shutdown_grace: Option<std::time::Duration>,
    #[command(flatten)]
    keys: crate::config::KeyFlags,
    /// Log lines as text for people or JSON objects for log collectors.
    #[arg(long, value_enum, default_value = "text")]
    log_format: super::Format,
}

/// `sensei serve`.
pub fn run(args: &Args) -> u8 {
    init_logging(args.log_format);
    let flags = config::Flags {
        config: args.config.clone(),
        listen: args.listen.clone(),
        state_dir: args.state_dir.clone(),
        store: args.store.clone(),
        runbooks: args.runbooks.clone(),
        body_limit: args.max_body,
        shutdown_grace: args.shutdown_grace,
        keys: args.keys.clone(),
    };
    let settings = match config::Settings::resolve(&flags, |name| std::env::var(name).ok()) {
        Ok(s) => s,
        Err(e) => return exit::fail(&e),
    };
    let clock: Arc<dyn Clock> = match super::fixed_now() {
        Some(start) => Arc::new(ShiftedClock::starting_at(start)),
        None => Arc::new(SystemClock),
    };
    let runtime = match super::multi_thread_runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    match runtime.block_on(server::serve(settings, clock, std::future::pending())) {
        Ok(()) => exit::OK,
        Err(e) => exit::fail(&e),
    }
}

/// Logs to stderr; `SENSEI_LOG` (or `RUST_LOG`) filters, as `info` by default.
fn init_logging(format: super::Format) {
    let filter = std::env::var("SENSEI_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".to_owned());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match format {
        super::Format::Json => builder.json().try_init(),
        super::Format::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
    };
}

fn parse_grace(text: &str) -> Result<std::time::Duration, String> {
    crate::runbook::duration::Duration::parse(text)
        .map(|d| d.as_std())
        .map_err(|e| e.to_string())
}
