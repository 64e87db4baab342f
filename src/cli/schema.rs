//! `sensei schema`: the runbook JSON Schema, generated from the format's types.

use super::exit;

/// The schema text, exactly as `schemas/runbook.schema.json` holds it.
pub fn text() -> String {
    let schema = schemars::schema_for!(crate::runbook::raw::RawRunbook);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

pub fn run() -> u8 {
    out!("{}", text());
    exit::OK
}
