//! Inspecting migrations in the local store: `status`, `list`, `logs` and `events`, each as
//! text for people or `--format json` for scripts (SPEC §5).

use super::local::{self, Local};
use super::progress::short_duration;
use super::{Format, error, exit};
use crate::event::{MigrationState, StepState};
use crate::store::{Migration, StepRow, Store};
use serde_json::Value as Json;

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The migration id or a unique prefix (default: the newest migration).
    id: Option<String>,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    #[command(flatten)]
    local: Local,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only migrations in this state.
    #[arg(long)]
    state: Option<MigrationState>,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    #[command(flatten)]
    local: Local,
}

#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// The migration id or a unique prefix (or `latest`).
    id: String,
    /// Only this step's output.
    step: Option<String>,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    #[command(flatten)]
    local: Local,
}

#[derive(Debug, clap::Args)]
pub struct EventsArgs {
    /// The migration id or a unique prefix (or `latest`).
    id: String,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    #[command(flatten)]
    local: Local,
}

fn open_and_find(local: &Local, id: &str) -> Result<(Store, Migration), u8> {
    let store = local.open_existing()?;
    let migration = local::find(&store, id)?;
    Ok((store, migration))
}

fn fail(e: impl std::fmt::Display) -> u8 {
    error(e);
    exit::FAILED
}

/// `sensei status [ID]`.
pub fn status(args: &StatusArgs) -> u8 {
    let (store, m) = match open_and_find(&args.local, args.id.as_deref().unwrap_or("latest")) {
        Ok(found) => found,
        Err(code) => return code,
    };
    let steps = match store.steps(&m.id) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let driver = store.driver(&m.id).ok().flatten();
    let (done, _) = crate::view::progress(&steps);
    match args.format {
        Format::Json => {
            let doc = crate::view::status(&m, &steps, driver.as_ref());
            outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
        Format::Text => {
            outln!("migration {}  {}  {}", m.id, m.runbook, m.state);
            outln!(
                "  started by {} at {}; {done} of {} steps done",
                m.starter,
                m.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
                steps.len()
            );
            match driver {
                Some(d) => outln!("  driven by process {} on {}", d.pid, d.host),
                None if !m.state.is_at_rest() && m.state != MigrationState::Created => {
                    outln!(
                        "  no process drives it: `sensei resume {}` continues it",
                        m.id
                    )
                }
                None => {}
            }
            let width = steps
                .iter()
                .map(|s| s.step.chars().count())
                .max()
                .unwrap_or(4)
                .max(4);
            for row in &steps {
                outln!(
                    "  {:<width$}  {:<11} {}",
                    row.step,
                    row.state.as_str(),
                    step_note(row)
                );
            }
        }
    }
    exit::OK
}

/// What a step row adds to its state: attempts, duration, why it waits or failed.
fn step_note(row: &StepRow) -> String {
    let mut parts = Vec::new();
    if row.attempts > 1 {
        parts.push(format!("attempt {}", row.attempts));
    }
    if let (Some(start), Some(end), StepState::Succeeded) =
        (row.started_at, row.finished_at, row.state)
    {
        parts.push(short_duration((end - start).num_milliseconds()));
    }
    if let Some(reason) = &row.reason {
        parts.push(reason.clone());
    }
    if let Some(error) = row
        .error
        .as_ref()
        .filter(|_| row.state != StepState::Succeeded)
    {
        parts.push(error.clone());
    }
    parts.join("; ")
}

/// `sensei list`.
pub fn list(args: &ListArgs) -> u8 {
    let store = match args.local.open_existing() {
        Ok(s) => s,
        Err(code) => return code,
    };
    let migrations = match store.list(args.state) {
        Ok(m) => m,
        Err(e) => return fail(e),
    };
    match args.format {
        Format::Json => {
            let items: Vec<Json> = migrations.iter().map(crate::view::summary).collect();
            outln!(
                "{}",
                serde_json::to_string_pretty(&items).unwrap_or_default()
            );
        }
        Format::Text => {
            for m in &migrations {
                outln!(
                    "{}  {:<17} {:<24} {}",
                    m.id,
                    m.state.as_str(),
                    m.runbook,
                    m.created_at.format("%Y-%m-%d %H:%M")
                );
            }
        }
    }
    exit::OK
}

/// `sensei logs ID [STEP]`.
pub fn logs(args: &LogsArgs) -> u8 {
    let (store, m) = match open_and_find(&args.local, &args.id) {
        Ok(found) => found,
        Err(code) => return code,
    };
    if let Some(step) = &args.step {
        let known = store
            .steps(&m.id)
            .map(|rows| rows.iter().any(|r| &r.step == step))
            .unwrap_or(false);
        if !known {
            error(format!(
                "migration {} has no step `{step}`; `sensei status {}` lists its steps",
                m.id, m.id
            ));
            return exit::USAGE;
        }
    }
    let lines = match store.logs(&m.id, args.step.as_deref()) {
        Ok(l) => l,
        Err(e) => return fail(e),
    };
    if args.format == Format::Json {
        // One document, like `events` and `list`.
        outln!(
            "{}",
            serde_json::to_string_pretty(&lines).unwrap_or_default()
        );
        return exit::OK;
    }
    for line in &lines {
        if args.step.is_some() {
            outln!("{}", line.text);
        } else {
            outln!("{} | {}", line.step, line.text);
        }
    }
    exit::OK
}

/// `sensei events ID`.
pub fn events(args: &EventsArgs) -> u8 {
    let (store, m) = match open_and_find(&args.local, &args.id) {
        Ok(found) => found,
        Err(code) => return code,
    };
    let events = match store.events(&m.id, 0) {
        Ok(e) => e,
        Err(e) => return fail(e),
    };
    match args.format {
        Format::Json => outln!(
            "{}",
            serde_json::to_string_pretty(&events).unwrap_or_default()
        ),
        Format::Text => {
            for e in &events {
                outln!(
                    "{:>4}  {}  {:<18} {:<20} {}",
                    e.seq,
                    e.at.format("%H:%M:%S%.3f"),
                    e.kind.as_str(),
                    e.step.as_deref().unwrap_or(""),
                    e.data
                );
            }
        }
    }
    exit::OK
}
