//! A migration's history: `events` (what happened) and `logs` (what its steps printed), as
//! text for people or `--format json` for scripts, locally or through a server — once, or
//! followed as it grows (`--follow`, see [`super::follow`]), each event and each line shown
//! once. `logs ID STEP` of a fan-out step shows every part (`copy[a]`, `copy[b]`), each line
//! labelled with its part.

use super::follow::{self, Feed, Use};
use super::inspect::{text, time};
use super::local::Local;
use super::{Format, error, exit};
use crate::event::StepState;
use serde_json::Value as Json;
use std::collections::HashMap;

#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// The migration id or a unique prefix (or `latest`).
    id: String,
    /// Only this step's output (a fan-out step: each of its parts, labelled).
    step: Option<String>,
    /// Keep printing lines as they are written, until the migration rests.
    #[arg(long, short = 'f')]
    follow: bool,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    #[command(flatten)]
    local: Local,
}

#[derive(Debug, clap::Args)]
pub struct EventsArgs {
    /// The migration id or a unique prefix (or `latest`).
    id: String,
    /// Keep printing events as they are committed, until the migration rests.
    #[arg(long, short = 'f')]
    follow: bool,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    #[command(flatten)]
    local: Local,
}

/// `sensei events ID [-f]`.
pub fn events(args: &EventsArgs) -> u8 {
    let feed = follow::open(&args.local, Some(&args.id), args.follow, Use::Events);
    match feed.and_then(|feed| show_events(feed, args)) {
        Ok(()) => exit::OK,
        Err(code) => code,
    }
}

fn show_events(mut feed: Box<dyn Feed>, args: &EventsArgs) -> Result<(), u8> {
    let mut last = 0;
    let mut document = Vec::new();
    loop {
        // The status before the events: they hold everything up to it.
        let rests = !args.follow || follow::rests(&feed.status()?);
        let new = match feed.arrived() {
            Some(events) if !rests => events,
            _ => feed.events(last)?,
        };
        for event in new {
            let seq = event["seq"].as_i64().unwrap_or_default();
            if seq <= last {
                continue;
            }
            last = seq;
            match args.format {
                Format::Json if args.follow => follow::print_json(&event, true),
                Format::Json => document.push(event),
                Format::Text => outln!(
                    "{:>4}  {}  {:<18} {:<20} {}",
                    seq,
                    time(&event, "at", "%H:%M:%S%.3f"),
                    text(&event, "kind"),
                    text(&event, "step"),
                    event["data"]
                ),
            }
        }
        if rests || !feed.wait()? {
            break;
        }
    }
    if args.format == Format::Json && !args.follow {
        follow::print_json(&document, false);
    }
    Ok(())
}

/// `sensei logs ID [STEP] [-f]`.
pub fn logs(args: &LogsArgs) -> u8 {
    let feed = follow::open(&args.local, Some(&args.id), args.follow, Use::WakeUp);
    match feed.and_then(|feed| show_logs(feed, args)) {
        Ok(()) => exit::OK,
        Err(code) => code,
    }
}

fn show_logs(mut feed: Box<dyn Feed>, args: &LogsArgs) -> Result<(), u8> {
    // Per step: the seq of the last line shown, and its state when its lines were last read.
    let mut marks: HashMap<String, i64> = HashMap::new();
    let mut read_in: HashMap<String, String> = HashMap::new();
    let mut document = Vec::new();
    loop {
        let status = feed.status()?;
        let shown = shown(&status, args.step.as_deref())?;
        let rests = !args.follow || follow::rests(&status);
        // A step settled when its lines were last read has written them all; the last round
        // reads every step once more.
        let states = step_states(&status);
        let due: Vec<(String, i64)> = shown
            .steps
            .iter()
            .filter(|step| {
                rests
                    || !read_in
                        .get(*step)
                        .is_some_and(|was| finished(was, &states, step))
            })
            .map(|step| (step.clone(), marks.get(step).copied().unwrap_or(0)))
            .collect();
        for (step, _) in &due {
            read_in.insert(step.clone(), states.get(step).cloned().unwrap_or_default());
        }
        for line in feed.logs(&due)? {
            marks.insert(
                text(&line, "step").to_owned(),
                line["seq"].as_i64().unwrap_or_default(),
            );
            match args.format {
                Format::Json if args.follow => follow::print_json(&line, true),
                Format::Json => document.push(line),
                Format::Text if shown.labelled => {
                    outln!("{} | {}", text(&line, "step"), text(&line, "text"))
                }
                Format::Text => outln!("{}", text(&line, "text")),
            }
        }
        if rests || !feed.wait()? {
            break;
        }
    }
    if args.format == Format::Json && !args.follow {
        // One document, like `events` and `list`.
        follow::print_json(&document, false);
    }
    Ok(())
}

/// Each step's state in a status document.
fn step_states(status: &Json) -> HashMap<String, String> {
    status["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| (text(s, "step").to_owned(), text(s, "state").to_owned()))
        .collect()
}

/// A step whose lines were read in state `was`, settled, and that is still in it.
fn finished(was: &str, now: &HashMap<String, String>, step: &str) -> bool {
    let settled = was.parse::<StepState>().is_ok_and(StepState::is_settled);
    settled && now.get(step).is_some_and(|state| state == was)
}

/// The steps whose lines `logs` shows, and whether each line names its step.
struct Shown {
    steps: Vec<String>,
    labelled: bool,
}

/// Every step (labelled); or STEP alone; or a fan-out step's parts (`STEP[...]`, labelled,
/// with STEP itself when a dynamic fan-out's placeholder is a step of its own).
fn shown(status: &Json, step: Option<&str>) -> Result<Shown, u8> {
    let steps: Vec<&str> = status["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| text(s, "step"))
        .collect();
    let Some(step) = step else {
        return Ok(Shown {
            steps: steps.iter().map(|s| (*s).to_owned()).collect(),
            labelled: true,
        });
    };
    let part_of = |s: &str| {
        s.strip_prefix(step)
            .is_some_and(|rest| rest.starts_with('[') && rest.ends_with(']'))
    };
    let chosen: Vec<String> = steps
        .iter()
        .filter(|s| **s == step || part_of(s))
        .map(|s| (*s).to_owned())
        .collect();
    if chosen.is_empty() {
        let id = text(status, "id");
        error(format!(
            "migration {id} has no step `{step}`; `sensei status {id}` lists its steps"
        ));
        return Err(exit::USAGE);
    }
    let labelled = chosen.iter().any(|s| part_of(s));
    Ok(Shown {
        steps: chosen,
        labelled,
    })
}

#[cfg(test)]
mod tests {
    use super::shown;
    use serde_json::json;

    #[test]
    fn a_fan_out_step_shows_its_parts_labelled_and_a_plain_step_itself() {
        let status = json!({ "id": "m-1", "steps": [
            { "step": "copy[a]" }, { "step": "copy[b]" }, { "step": "copy-all" }, { "step": "copy" },
        ]});
        let parts = shown(&status, Some("copy")).expect("copy");
        assert_eq!(parts.steps, ["copy[a]", "copy[b]", "copy"]);
        assert!(parts.labelled);
        let one = shown(&status, Some("copy[a]")).expect("copy[a]");
        assert_eq!(one.steps, ["copy[a]"]);
        assert!(!one.labelled);
        let plain = shown(&status, Some("copy-all")).expect("copy-all");
        assert_eq!(plain.steps, ["copy-all"]);
        assert!(!plain.labelled);
    }
}
