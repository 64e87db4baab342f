//! Rendering a delivery into the message a channel sends: an email (subject, body) or a
//! webhook request (URL, headers, JSON or Slack body).
//!
//! Messages are rendered when a delivery is first attempted, not when its event commits: the
//! commit stays cheap (delivery never slows a migration), the failed step's last log lines are
//! read from the store by then, and a template that cannot render fails the delivery, not the
//! migration. The rendered message is stored with the delivery, so every retry sends the same
//! text. Everything is rendered from what was committed — the event, the migration's state
//! after it, the runbook text the migration started with — so a late delivery tells what
//! happened, not what is true now.
//!
//! Templates see SPEC §2's alert roots: `event` (the alert name), `migration` (`id`, `state`,
//! `started_at`), `runbook` (`name`), `params` (secrets as `***`) and `steps.<id>` (`status`,
//! `outputs`). The default templates also read `alert` (summary, step, error, log lines,
//! link). Every rendered string is then passed through the migration's [`Masker`]: no
//! secret value leaves in an alert, whatever a template or a log line holds.

use super::payload;
use super::summary::{Facts, facts};
use crate::event::Event;
use crate::runbook::model::{ChannelKind, Runbook, Text, WebhookFormat};
use crate::runbook::render::{Escape, Masker, Renderer, Values};
use crate::store::{Delivery, Migration, StepRow};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json, json};
use std::sync::LazyLock;

/// A message ready to send, as stored with its delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Message {
    Email {
        to: Vec<String>,
        cc: Vec<String>,
        subject: String,
        body: String,
        html: bool,
        event_id: String,
    },
    Webhook {
        url: String,
        headers: Vec<(String, String)>,
        /// JSON text.
        body: String,
        /// The environment variable holding the signing key (its name, never its value).
        secret_env: Option<String>,
        event_id: String,
    },
}

impl Message {
    pub fn event_id(&self) -> &str {
        match self {
            Message::Email { event_id, .. } | Message::Webhook { event_id, .. } => event_id,
        }
    }
}

/// What a delivery is rendered from.
#[derive(Debug)]
pub struct Source<'a> {
    pub runbook: &'a Runbook,
    pub migration: &'a Migration,
    pub event: &'a Event,
    pub delivery: &'a Delivery,
    /// The migration's step rows when the message is rendered.
    pub steps: &'a [StepRow],
    /// The last output lines of the step the alert is about.
    pub logs: Vec<String>,
    pub masker: &'a Masker,
    /// A link to the migration (`public_url`).
    pub link: Option<String>,
}

/// The stable id of an event: receivers drop duplicates by it (`X-Sensei-Event-Id`).
pub fn event_id(delivery: &Delivery) -> String {
    format!("{}:{}", delivery.migration, delivery.event_seq)
}

// The texts of a channel that writes none of its own, typed like a runbook's.
static DEFAULT_SUBJECT: LazyLock<Text> = LazyLock::new(|| {
    Text::new(
        "[sensei] {{runbook.name}} {{migration.id}}: {{event}}{{#if alert.step}} ({{alert.step}}){{/if}}",
    )
});

static DEFAULT_TEXT: LazyLock<Text> = LazyLock::new(|| {
    Text::new(
        "{{alert.summary}}

Migration: {{migration.id}}
Runbook:   {{runbook.name}}
State:     {{migration.state}}
Event:     {{event}} at {{alert.time}}
{{#if alert.step}}Step:      {{alert.step}}
{{/if}}{{#if alert.error}}Error:     {{alert.error}}
{{/if}}{{#if alert.logs}}
Last output of {{alert.step}}:
{{#each alert.logs}}  {{this}}
{{/each}}{{/if}}{{#if alert.link}}
{{alert.link}}
{{/if}}",
    )
});

static DEFAULT_HTML: LazyLock<Text> = LazyLock::new(|| {
    Text::new(
        "<p>{{alert.summary}}</p>
<table>
<tr><td>Migration</td><td>{{migration.id}}</td></tr>
<tr><td>Runbook</td><td>{{runbook.name}}</td></tr>
<tr><td>State</td><td>{{migration.state}}</td></tr>
<tr><td>Event</td><td>{{event}} at {{alert.time}}</td></tr>
{{#if alert.step}}<tr><td>Step</td><td>{{alert.step}}</td></tr>
{{/if}}{{#if alert.error}}<tr><td>Error</td><td>{{alert.error}}</td></tr>
{{/if}}</table>
{{#if alert.logs}}<p>Last output of {{alert.step}}:</p>
<pre>{{#each alert.logs}}{{this}}
{{/each}}</pre>
{{/if}}{{#if alert.link}}<p><a href=\"{{alert.link}}\">{{alert.link}}</a></p>
{{/if}}",
    )
});

/// Why a message could not be rendered: the delivery fails for good (retrying renders the
/// same). The text is masked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RenderFailed(pub String);

/// Renders the message of a delivery.
pub fn render(src: &Source<'_>, renderer: &Renderer) -> Result<Message, RenderFailed> {
    let channel = src
        .runbook
        .alerts
        .channels
        .iter()
        .find(|c| c.name == src.delivery.channel)
        .ok_or_else(|| {
            RenderFailed(format!(
                "the runbook has no channel `{}`",
                src.delivery.channel
            ))
        })?;
    let facts = facts(src);
    let values = Values::new(context(src, &facts));
    let mask = |s: String| src.masker.mask(&s).into_owned();
    let text = |template: &Text, escape: Escape| {
        template
            .render(renderer, &values, escape)
            .map(mask)
            .map_err(|e| RenderFailed(mask(format!("channel `{}`: {e}", src.delivery.channel))))
    };
    let event_id = event_id(src.delivery);
    Ok(match &channel.kind {
        ChannelKind::Email {
            to,
            cc,
            subject,
            body,
            html,
        } => {
            let escape = if *html { Escape::Html } else { Escape::None };
            let default_body = if *html { &DEFAULT_HTML } else { &DEFAULT_TEXT };
            let subject = text(subject.as_ref().unwrap_or(&DEFAULT_SUBJECT), Escape::None)?;
            Message::Email {
                to: to.clone(),
                cc: cc.clone(),
                // A header holds one line.
                subject: subject.replace(['\r', '\n'], " "),
                body: text(body.as_ref().unwrap_or(default_body), escape)?,
                html: *html,
                event_id,
            }
        }
        ChannelKind::Webhook {
            url,
            format,
            secret_env,
            headers,
        } => {
            let body = match format {
                WebhookFormat::Json => payload::json_v1(src, &facts, &event_id),
                WebhookFormat::Slack => payload::slack(src, &facts),
            };
            let body = src.masker.mask_json(&body);
            let mut rendered = Vec::with_capacity(headers.len());
            for (name, value) in headers {
                let value = text(value, Escape::None)?;
                rendered.push((name.clone(), value.replace(['\r', '\n'], " ")));
            }
            Message::Webhook {
                url: text(url, Escape::None)?,
                headers: rendered,
                body: body.to_string(),
                secret_env: secret_env.clone(),
                event_id,
            }
        }
    })
}

/// The values templates read (SPEC §2 alert roots, plus `alert` for the defaults), masked.
fn context(src: &Source<'_>, facts: &Facts) -> Json {
    let mut steps = Map::new();
    for row in src.steps {
        steps.insert(
            row.step.clone(),
            json!({
                "status": row.state.as_str(),
                "outputs": row.outputs.clone().unwrap_or_else(|| json!({})),
            }),
        );
    }
    let ctx = json!({
        "event": src.delivery.event,
        "migration": {
            "id": src.migration.id.as_str(),
            "state": src.delivery.migration_state.as_str(),
            "started_at": src.migration.created_at.to_rfc3339(),
        },
        "runbook": { "name": src.migration.runbook },
        "params": src.migration.masked_params,
        "steps": steps,
        "alert": {
            "summary": facts.summary,
            "time": src.event.at.to_rfc3339(),
            "step": facts.step,
            "error": facts.error,
            "logs": src.logs,
            "link": src.link,
            "event_id": event_id(src.delivery),
        },
    });
    src.masker.mask_json(&ctx)
}
