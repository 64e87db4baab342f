//! `sensei plan FILE [-p k=v]`: the resolved DAG of a runbook, in several renderings.

use super::{error, exit};
use crate::plan::{self, render};
use crate::runbook;
use chrono::{DateTime, Utc};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The runbook file.
    file: PathBuf,
    /// A param value, `name=value` (repeatable).
    #[arg(short = 'p', long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
    #[arg(long, value_enum, default_value = "text")]
    format: PlanFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum PlanFormat {
    Text,
    Json,
    Mermaid,
    Dot,
    /// For a pull request: a Mermaid graph, the phase table, gates, windows and schedules.
    Markdown,
}

pub fn run(args: &Args) -> u8 {
    let checked = match runbook::load_file(&args.file) {
        Ok(c) => c,
        Err(e) => {
            error(format!("cannot read {}: {e}", args.file.display()));
            return exit::USAGE;
        }
    };
    eprint!("{}", checked.render());
    let Some(runbook) = &checked.runbook else {
        error(format!(
            "{} is not a valid runbook; fix the errors above",
            args.file.display()
        ));
        return exit::FAILED;
    };
    let params = match super::params_from_flags(runbook, &args.params) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let plan = match plan::build(runbook, &checked.source.text, &params, now()) {
        Ok(plan) => plan,
        Err(e) => return exit::fail(&e),
    };
    let text = match args.format {
        PlanFormat::Text => render::text(&plan),
        PlanFormat::Json => render::json(&plan),
        PlanFormat::Mermaid => render::mermaid(&plan),
        PlanFormat::Dot => render::dot(&plan),
        PlanFormat::Markdown => render::markdown(&plan),
    };
    out!("{text}");
    exit::OK
}

/// The current time, or `SENSEI_NOW` (RFC 3339) so plans can be reproduced and snapshot-tested.
fn now() -> DateTime<Utc> {
    super::fixed_now().unwrap_or_else(Utc::now)
}
