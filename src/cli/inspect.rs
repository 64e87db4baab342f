//! Inspecting migrations in the local store: `status`, `list`, `logs` and `events`, each as
//! text for people or `--format json` for scripts (SPEC §5). With `--server` they ask the
//! REST API instead; both paths render the same JSON views with the same functions.

use super::client::{self, Client};
use super::local::{self, Local};
use super::progress::short_duration;
use super::{Format, error, exit};
use crate::event::MigrationState;
use crate::store::{Migration, Store};
use chrono::{DateTime, Utc};
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

/// Prints a JSON document the way every `--format json` does.
fn print_json(doc: &impl serde::Serialize) {
    outln!("{}", serde_json::to_string_pretty(doc).unwrap_or_default());
}

fn text<'a>(doc: &'a Json, key: &str) -> &'a str {
    doc[key].as_str().unwrap_or_default()
}

/// A timestamp of a JSON view, formatted (empty when absent).
fn time(doc: &Json, key: &str, format: &str) -> String {
    doc[key]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc).format(format).to_string())
        .unwrap_or_default()
}

/// `sensei status [ID]`.
pub fn status(args: &StatusArgs) -> u8 {
    let doc = match Client::from_local(&args.local) {
        Some(client) => remote_status(client, args.id.as_deref()),
        None => local_status(&args.local, args.id.as_deref().unwrap_or("latest")),
    };
    match doc {
        Ok(doc) => {
            match args.format {
                Format::Json => print_json(&doc),
                Format::Text => render_status(&doc),
            }
            exit::OK
        }
        Err(code) => code,
    }
}

fn remote_status(client: Result<Client, u8>, id: Option<&str>) -> Result<Json, u8> {
    let client = client?;
    let id = client::resolve(&client, id)?;
    client::status_doc(&client, &id)
}

/// The status document of the local store (`crate::view::status`, as the API builds it).
fn local_status(local: &Local, id: &str) -> Result<Json, u8> {
    let (store, m) = open_and_find(local, id)?;
    let steps = store.steps(&m.id).map_err(|e| exit::fail(&e))?;
    let driver = store.driver(&m.id).ok().flatten();
    Ok(crate::view::status(&m, &steps, driver.as_ref()))
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

/// What a step row adds to its state: attempts, duration, why it waits or failed.
fn step_note(row: &Json) -> String {
    let mut parts = Vec::new();
    let attempts = row["attempts"].as_u64().unwrap_or_default();
    if attempts > 1 {
        parts.push(format!("attempt {attempts}"));
    }
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

/// `sensei list`.
pub fn list(args: &ListArgs) -> u8 {
    let items = match Client::from_local(&args.local) {
        Some(client) => client.and_then(|client| {
            let state = args.state.map(|s| s.as_str().to_owned());
            let query: Vec<(&str, &str)> = state.iter().map(|s| ("state", s.as_str())).collect();
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
        Format::Json => print_json(&items),
        Format::Text => {
            for m in &items {
                outln!(
                    "{}  {:<17} {:<24} {}",
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

fn local_list(args: &ListArgs) -> Result<Vec<Json>, u8> {
    let store = args.local.open_existing()?;
    let migrations = store.list(args.state).map_err(|e| exit::fail(&e))?;
    Ok(migrations.iter().map(crate::view::summary).collect())
}

/// `sensei logs ID [STEP]`.
pub fn logs(args: &LogsArgs) -> u8 {
    let lines = match Client::from_local(&args.local) {
        Some(client) => client.and_then(|client| remote_logs(&client, args)),
        None => local_logs(args),
    };
    let lines = match lines {
        Ok(lines) => lines,
        Err(code) => return code,
    };
    if args.format == Format::Json {
        // One document, like `events` and `list`.
        print_json(&lines);
        return exit::OK;
    }
    for line in &lines {
        if args.step.is_some() {
            outln!("{}", text(line, "text"));
        } else {
            outln!("{} | {}", text(line, "step"), text(line, "text"));
        }
    }
    exit::OK
}

fn local_logs(args: &LogsArgs) -> Result<Vec<Json>, u8> {
    let (store, m) = open_and_find(&args.local, &args.id)?;
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
            return Err(exit::USAGE);
        }
    }
    let lines = store
        .logs(&m.id, args.step.as_deref())
        .map_err(|e| exit::fail(&e))?;
    Ok(lines
        .iter()
        .map(|l| serde_json::to_value(l).unwrap_or_default())
        .collect())
}

/// The logs of one step, or of every step of the status document in store order.
fn remote_logs(client: &Client, args: &LogsArgs) -> Result<Vec<Json>, u8> {
    let id = client::resolve(client, Some(&args.id))?;
    let steps: Vec<String> = match &args.step {
        Some(step) => vec![step.clone()],
        None => client::status_doc(client, &id)?["steps"]
            .as_array()
            .map(|steps| steps.iter().map(|s| text(s, "step").to_owned()).collect())
            .unwrap_or_default(),
    };
    let mut lines = Vec::new();
    for step in &steps {
        let doc = client.get(&["v1", "migrations", &id, "steps", step, "logs"])?;
        lines.extend(doc.as_array().cloned().unwrap_or_default());
    }
    lines.sort_by_key(|l| l["seq"].as_i64().unwrap_or_default());
    Ok(lines)
}

/// `sensei events ID`.
pub fn events(args: &EventsArgs) -> u8 {
    let events = match Client::from_local(&args.local) {
        Some(client) => client.and_then(|client| {
            let id = client::resolve(&client, Some(&args.id))?;
            let doc = client.get(&["v1", "migrations", &id, "events"])?;
            Ok(doc.as_array().cloned().unwrap_or_default())
        }),
        None => local_events(args),
    };
    let events = match events {
        Ok(events) => events,
        Err(code) => return code,
    };
    match args.format {
        Format::Json => print_json(&events),
        Format::Text => {
            for e in &events {
                outln!(
                    "{:>4}  {}  {:<18} {:<20} {}",
                    e["seq"].as_i64().unwrap_or_default(),
                    time(e, "at", "%H:%M:%S%.3f"),
                    text(e, "kind"),
                    text(e, "step"),
                    e["data"]
                );
            }
        }
    }
    exit::OK
}

fn local_events(args: &EventsArgs) -> Result<Vec<Json>, u8> {
    let (store, m) = open_and_find(&args.local, &args.id)?;
    let events = store.events(&m.id, 0).map_err(|e| exit::fail(&e))?;
    Ok(events
        .iter()
        .map(|e| serde_json::to_value(e).unwrap_or_default())
        .collect())
}
