//! Webhook bodies: Sensei's versioned JSON payload (`format: json`) and a Slack-compatible
//! message (`format: slack`, `text` plus `blocks`).
//!
//! Payload version 1 (docs/alerts.md) — fields are only ever added within a version:
//! `version` (1), `event` (the alert name), `event_id` (`<migration>:<seq>`, stable across
//! retries), `time` (RFC 3339, when the event was committed), `migration` (its id),
//! `runbook`, `state` (the migration's state right after the event), `step` (or null),
//! `params` (secrets as `***`), `summary`, `error` (or null), `data` (the event's own fields)
//! and `link` (or null, without `public_url`).

use super::message::Source;
use super::summary::Facts;
use serde_json::{Value as Json, json};

/// The version of the JSON payload this build sends.
pub const VERSION: u32 = 1;

/// `format: json`.
pub fn json_v1(src: &Source<'_>, facts: &Facts, event_id: &str) -> Json {
    json!({
        "version": VERSION,
        "event": src.delivery.event,
        "event_id": event_id,
        "time": src.event.at.to_rfc3339(),
        "migration": src.migration.id.as_str(),
        "runbook": src.migration.runbook,
        "state": src.delivery.migration_state.as_str(),
        "step": facts.step,
        "params": src.migration.masked_params,
        "summary": facts.summary,
        "error": facts.error,
        "data": src.event.data,
        "link": src.link,
    })
}

/// Slack's mrkdwn treats `&`, `<` and `>` as markup.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `format: slack`: `text` for notifications and clients without blocks, `blocks` for the
/// message itself.
pub fn slack(src: &Source<'_>, facts: &Facts) -> Json {
    let head = format!(
        "[sensei] {} {}: {}",
        src.migration.runbook, src.migration.id, src.delivery.event
    );
    let text = format!("{head} — {}", facts.summary);
    let mut main = format!(
        "*{}* `{}` — *{}*\n{}",
        escape(&src.migration.runbook),
        src.migration.id,
        escape(&src.delivery.event),
        escape(&facts.summary)
    );
    if let Some(error) = &facts.error {
        main.push_str(&format!("\n```{}```", escape(error)));
    }
    let mut context = vec![format!(
        "state: *{}*",
        escape(src.delivery.migration_state.as_str())
    )];
    if let Some(step) = &facts.step {
        context.push(format!("step: `{}`", escape(step)));
    }
    if let Some(link) = &src.link {
        context.push(format!("<{}|open>", escape(link)));
    }
    let mut blocks = vec![
        json!({ "type": "section", "text": { "type": "mrkdwn", "text": main } }),
        json!({
            "type": "context",
            "elements": [{ "type": "mrkdwn", "text": context.join(" · ") }],
        }),
    ];
    if !src.logs.is_empty() {
        // Slack takes at most 3000 characters in a section: keep the end, where errors are.
        let logs = src.logs.join("\n");
        let count = logs.chars().count();
        let logs: String = logs.chars().skip(count.saturating_sub(2800)).collect();
        blocks.push(json!({
            "type": "section",
            "text": { "type": "mrkdwn", "text": format!("```{}```", escape(&logs)) },
        }));
    }
    json!({ "text": text, "blocks": blocks })
}
