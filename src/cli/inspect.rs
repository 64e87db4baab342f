//! Inspecting migrations: `status` (once, or followed with `-f`) and `list`, each as text for
//! people or `--format json` for scripts (SPEC §5); `logs` and `events` are [`super::history`].
//! With `--server` they ask the REST API instead of the local store; both paths render the
//! same JSON views with the same functions.

use super::client::{self, Client};
use super::follow::{self, Feed, Use};
use super::local::Local;
use super::progress::short_duration;
use super::{Format, exit};
use crate::event::MigrationState;
use chrono::{DateTime, Utc};
use serde_json::{Value as Json, json};

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The migration id or a unique prefix (default: the newest migration).
    id: Option<String>,
    /// Keep watching: print the status again each time it changes, until the migration rests.
    #[arg(long, short = 'f')]
    follow: bool,
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
    /// Only migrations of this runbook (its `name`).
    #[arg(long, value_name = "NAME")]
    runbook: Option<String>,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    #[command(flatten)]
    local: Local,
}

/// A text field of a JSON view (empty when absent).
pub(super) fn text<'a>(doc: &'a Json, key: &str) -> &'a str {
    doc[key].as_str().unwrap_or_default()
}

/// A timestamp of a JSON view, formatted (empty when absent).
pub(super) fn time(doc: &Json, key: &str, format: &str) -> String {
    doc[key]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc).format(format).to_string())
        .unwrap_or_default()
}

/// `sensei status [ID] [-f]`: the status document, printed again while followed each time
/// the state, a step or its driver changes.
pub fn status(args: &StatusArgs) -> u8 {
    let feed = follow::open(&args.local, args.id.as_deref(), args.follow, Use::WakeUp);
    match feed.and_then(|feed| show_status(feed, args)) {
        Ok(()) => exit::OK,
        Err(code) => code,
    }
}

fn show_status(mut feed: Box<dyn Feed>, args: &StatusArgs) -> Result<(), u8> {
    let mut shown = None;
    loop {
        let doc = feed.status()?;
        let seen = json!([doc["state"], doc["steps"], doc["driver"].is_null()]);
        if shown.as_ref() != Some(&seen) {
            match args.format {
                Format::Json => follow::print_json(&doc, args.follow),
                Format::Text => {
                    if shown.is_some() {
                        outln!();
                    }
                    render_status(&doc);
                }
            }
            shown = Some(seen);
        }
        if !args.follow || follow::rests(&doc) || !feed.wait()? {
            return Ok(());
        }
    }
}

/// What became of the steps that are not done: `; 1 failed, 8 cancelled` (pending steps are
/// not listed: they are the rest).
fn not_done(by_state: &Json) -> String {
    let parts: Vec<String> = by_state
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(state, _)| !matches!(state.as_str(), "succeeded" | "skipped" | "pending"))
        .map(|(state, n)| format!("{n} {}", state.replace('_', " ")))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("; {}", parts.join(", "))
    }
}

/// The text of `status`, from the status document.
fn render_status(doc: &Json) {
    let id = text(doc, "id");
    let steps = doc["steps"].as_array().cloned().unwrap_or_default();
    outln!(
        "migration {id}  {}  {}",
        text(doc, "runbook"),
        text(doc, "state")
    );
    outln!(
        "  started by {} at {}; {} of {} steps done{}",
        text(doc, "starter"),
        time(doc, "created_at", "%Y-%m-%d %H:%M:%S UTC"),
        doc["progress"]["done"].as_u64().unwrap_or_default(),
        steps.len(),
        not_done(&doc["progress"]["by_state"])
    );
    let state = text(doc, "state").parse::<MigrationState>().ok();
    if let Some(line) = state.and_then(|s| eta_line(s, &doc["eta"])) {
        outln!("  {line}");
    }
    match doc["driver"].as_object() {
        Some(d) => outln!(
            "  driven by process {} on {}",
            d.get("pid").cloned().unwrap_or_default(),
            d.get("host").and_then(Json::as_str).unwrap_or_default()
        ),
        None if state.is_some_and(|s| !s.is_at_rest() && s != MigrationState::Created) => {
            outln!("  no process drives it: `sensei resume {id}` continues it")
        }
        None => {}
    }
    if let Some(row) = steps.iter().find(|s| text(s, "state") == "interrupted") {
        outln!(
            "  {}",
            super::drive::interrupted_choice(id, text(row, "step"))
        );
    }
    let width = steps
        .iter()
        .map(|s| text(s, "step").chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    for row in &steps {
        outln!(
            "  {:<width$}  {:<11} {}",
            text(row, "step"),
            text(row, "state"),
            step_note(row)
        );
    }
}

/// When a migration being driven is expected to finish, or why that is unknown; nothing
/// for one that waits for people or has ended (its state says so).
fn eta_line(state: MigrationState, eta: &Json) -> Option<String> {
    use MigrationState as M;
    if state.is_at_rest() || matches!(state, M::Created | M::AwaitingApproval) {
        return None;
    }
    Some(match eta["remaining_ms"].as_i64() {
        Some(ms) => format!(
            "expected to finish in about {} (at {})",
            short_duration(ms),
            time(eta, "finishes_at", "%H:%M:%S UTC")
        ),
        None => format!(
            "time to finish unknown: {}",
            eta["unknown"].as_str().unwrap_or("no estimate")
        ),
    })
}

/// A running step's progress and time left: `42% (42/100), about 1m05s left`.
fn running_note(row: &Json) -> Option<String> {
    if text(row, "state") != "running" {
        return None;
    }
    let mut parts = Vec::new();
    let progress = &row["progress"];
    if let (Some(done), Some(total)) = (progress["done"].as_u64(), progress["total"].as_u64()) {
        let p = crate::event::Progress { done, total };
        parts.push(format!("{}% ({done}/{total})", p.percent()));
    }
    match row["eta"]["remaining_ms"].as_i64() {
        Some(ms) => parts.push(format!("about {} left", short_duration(ms))),
        None if !row["eta"].is_null() => parts.push("time left unknown".to_owned()),
        None => {}
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// Where a step that has not succeeded got to: `checkpoint "orders:42000"` (cut when long),
/// what its next attempt goes on from. A succeeded step's last one is in the JSON.
fn checkpoint_note(row: &Json) -> Option<String> {
    let value = row["checkpoint"]["value"].as_str()?;
    if text(row, "state") == "succeeded" {
        return None;
    }
    Some(format!(
        "checkpoint {:?}",
        crate::event::Checkpoint::shown(value, 60)
    ))
}

/// What a step row adds to its state: attempts, duration, progress and time left, its
/// checkpoint, why it waits or failed.
fn step_note(row: &Json) -> String {
    let mut parts = Vec::new();
    let attempts = row["attempts"].as_u64().unwrap_or_default();
    if attempts > 1 {
        parts.push(format!("attempt {attempts}"));
    }
    parts.extend(running_note(row));
    parts.extend(checkpoint_note(row));
    let at = |key: &str| {
        row[key]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
    };
    let succeeded = text(row, "state") == "succeeded";
    if let (Some(start), Some(end), true) = (at("started_at"), at("finished_at"), succeeded) {
        parts.push(short_duration((end - start).num_milliseconds()));
    }
    if let Some(reason) = row["reason"].as_str() {
        parts.push(reason.to_owned());
    }
    if let Some(error) = row["error"].as_str().filter(|_| !succeeded) {
        parts.push(error.to_owned());
    }
    parts.join("; ")
}

/// `sensei list [--state STATE] [--runbook NAME]`.
pub fn list(args: &ListArgs) -> u8 {
    let items = match Client::from_local(&args.local) {
        Some(client) => client.and_then(|client| {
            let state = args.state.map(|s| s.as_str().to_owned());
            let mut query: Vec<(&str, &str)> =
                state.iter().map(|s| ("state", s.as_str())).collect();
            query.extend(args.runbook.iter().map(|r| ("runbook", r.as_str())));
            client
                .call(client::Method::Get, &["v1", "migrations"], &query, None)
                .map(|(_, doc)| doc.as_array().cloned().unwrap_or_default())
        }),
        None => local_list(args),
    };
    let items = match items {
        Ok(items) => items,
        Err(code) => return code,
    };
    match args.format {
        Format::Json => follow::print_json(&items, false),
        Format::Text if items.is_empty() => outln!("no migrations{}", filters(args)),
        Format::Text => {
            outln!(
                "{:<14}  {:<17} {:<24} CREATED (UTC)",
                "ID",
                "STATE",
                "RUNBOOK"
            );
            for m in &items {
                outln!(
                    "{:<14}  {:<17} {:<24} {}",
                    text(m, "id"),
                    text(m, "state"),
                    text(m, "runbook"),
                    time(m, "created_at", "%Y-%m-%d %H:%M")
                );
            }
        }
    }
    exit::OK
}

/// What an empty list was filtered by, for its one line.
fn filters(args: &ListArgs) -> String {
    let mut by = Vec::new();
    if let Some(state) = args.state {
        by.push(format!("in state {state}"));
    }
    if let Some(runbook) = &args.runbook {
        by.push(format!("of runbook `{runbook}`"));
    }
    if by.is_empty() {
        String::new()
    } else {
        format!(" {}", by.join(" "))
    }
}

fn local_list(args: &ListArgs) -> Result<Vec<Json>, u8> {
    let store = args.local.open_existing()?;
    let migrations = store.list(args.state).map_err(|e| exit::fail(&e))?;
    Ok(migrations
        .iter()
        .filter(|m| args.runbook.as_ref().is_none_or(|r| *r == m.runbook))
        .map(crate::view::summary)
        .collect())
}
