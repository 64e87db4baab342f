//! Rendering of messages from committed facts: default and custom templates, HTML escaping,
//! the JSON v1 and Slack payloads, and masking of secrets everywhere.

#![allow(clippy::unwrap_used)]

use super::message::{Message, Source, render};
use crate::event::{Event, EventKind, MigrationId, MigrationState, StepState};
use crate::runbook::render::{Masker, Renderer, secret_values};
use crate::store::{Delivery, DeliveryKind, DeliveryState, Migration, StepRow};
use chrono::{DateTime, Utc};
use serde_json::{Value as Json, json};

const RUNBOOK: &str = r#"
version: 1
name: orders
params:
  dsn: { type: string, secret: true }
  table: { type: string, default: orders }
alerts:
  channels:
    plain: { email: { to: [dba@example.com] } }
    rich: { email: { to: [dba@example.com], html: true } }
    custom: { email: { to: [dba@example.com], cc: [ops@example.com], subject: "{{runbook.name}} {{event}} {{params.dsn}}", body: "<b>{{params.table}}</b> {{steps.copy.status}}", html: true } }
    hook: { webhook: { url: "https://hooks.example.com/x", headers: { X-Table: "{{params.table}}" } } }
    chat: { webhook: { url: "https://hooks.example.com/y", format: slack } }
  rules:
    - { on: [failed, step_failed], notify: [plain, rich, custom, hook, chat] }
steps:
  - id: copy
    run: ./copy.sh
"#;

const SECRET: &str = "postgres://u:hunter2@db";

fn at() -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000, 0).unwrap()
}

fn render_for(channel: &str, table: &str) -> Message {
    let runbook = crate::runbook::load_bytes("r.yaml", RUNBOOK.as_bytes());
    assert!(!runbook.has_errors(), "{}", runbook.render());
    let runbook = runbook.runbook.unwrap();
    let params = json!({ "dsn": SECRET, "table": table });
    let masker = Masker::new(secret_values(&runbook, params.as_object().unwrap()));
    let id = MigrationId::from("m-test00000001".to_owned());
    let migration = Migration {
        id: id.clone(),
        runbook: "orders".into(),
        runbook_path: "r.yaml".into(),
        runbook_text: RUNBOOK.into(),
        runbook_files: Default::default(),
        params: params.clone(),
        masked_params: json!({ "dsn": "***", "table": table }),
        digest: "d".into(),
        state: MigrationState::Failed,
        starter: "alice".into(),
        created_at: at(),
        updated_at: at(),
        last_seq: 9,
    };
    let event = Event {
        seq: 7,
        migration: id.clone(),
        at: at(),
        kind: EventKind::StepFailed,
        step: Some("copy".into()),
        data: json!({ "attempt": 1, "error": format!("exit 3 connecting to {SECRET}") }),
    };
    let mut row = StepRow::new("copy", StepState::Failed);
    row.error = Some("exit 3".into());
    let delivery = Delivery {
        id: 1,
        migration: id,
        event_seq: 7,
        event: "step_failed".into(),
        step: Some("copy".into()),
        migration_state: MigrationState::Running,
        channel: channel.into(),
        kind: DeliveryKind::Email,
        state: DeliveryState::Pending,
        attempts: 0,
        next_attempt_at: Some(at()),
        last_error: None,
        message: None,
        created_at: at(),
        updated_at: at(),
    };
    let src = Source {
        runbook: &runbook,
        migration: &migration,
        event: &event,
        delivery: &delivery,
        steps: &[row],
        logs: vec![
            "copying <orders>".into(),
            format!("FATAL: cannot reach {SECRET}"),
        ],
        masker: &masker,
        link: Some("https://sensei.example.com/v1/migrations/m-test00000001".into()),
    };
    render(&src, &Renderer::new()).unwrap()
}

fn assert_no_secret(message: &Message) {
    let text = serde_json::to_string(message).unwrap();
    assert!(!text.contains("hunter2"), "{text}");
}

#[test]
fn the_default_email_is_plain_text_with_the_failed_step_its_logs_and_a_link() {
    let m = render_for("plain", "orders");
    assert_no_secret(&m);
    let Message::Email {
        subject,
        body,
        html,
        event_id,
        ..
    } = m
    else {
        panic!("not an email")
    };
    assert_eq!(
        subject,
        "[sensei] orders m-test00000001: step_failed (copy)"
    );
    assert!(!html);
    assert_eq!(event_id, "m-test00000001:7");
    for want in [
        "step copy failed",
        "Migration: m-test00000001",
        "Runbook:   orders",
        "State:     running",
        "Step:      copy",
        "Error:     exit 3 connecting to ***",
        "Last output of copy:\n  copying <orders>\n  FATAL: cannot reach ***\n",
        "https://sensei.example.com/v1/migrations/m-test00000001",
    ] {
        assert!(body.contains(want), "{want:?} not in:\n{body}");
    }
}

#[test]
fn custom_templates_render_with_masked_params_and_html_escaping() {
    let m = render_for("custom", "<orders & co>");
    assert_no_secret(&m);
    let Message::Email {
        subject, body, cc, ..
    } = m
    else {
        panic!("not an email")
    };
    assert_eq!(subject, "orders step_failed ***");
    assert_eq!(body, "<b>&lt;orders &amp; co&gt;</b> failed");
    assert_eq!(cc, ["ops@example.com"]);
}

#[test]
fn the_json_payload_is_version_1_with_masked_params() {
    let Message::Webhook {
        body, headers, url, ..
    } = render_for("hook", "orders")
    else {
        panic!("not a webhook")
    };
    assert_eq!(url, "https://hooks.example.com/x");
    assert_eq!(headers, [("X-Table".to_owned(), "orders".to_owned())]);
    let body: Json = serde_json::from_str(&body).unwrap();
    assert_eq!(body["version"], 1);
    assert_eq!(body["event"], "step_failed");
    assert_eq!(body["event_id"], "m-test00000001:7");
    assert_eq!(body["migration"], "m-test00000001");
    assert_eq!(body["runbook"], "orders");
    assert_eq!(body["state"], "running");
    assert_eq!(body["step"], "copy");
    assert_eq!(body["params"], json!({ "dsn": "***", "table": "orders" }));
    assert_eq!(body["error"], "exit 3 connecting to ***");
    assert!(!body.to_string().contains("hunter2"));
}

#[test]
fn the_slack_payload_has_text_and_blocks() {
    let m = render_for("chat", "orders");
    assert_no_secret(&m);
    let Message::Webhook { body, .. } = m else {
        panic!("not a webhook")
    };
    let body: Json = serde_json::from_str(&body).unwrap();
    let text = body["text"].as_str().unwrap();
    assert!(
        text.contains("orders m-test00000001: step_failed"),
        "{text}"
    );
    let blocks = body["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "section");
    assert!(
        blocks[0]["text"]["text"]
            .as_str()
            .unwrap()
            .contains("step copy failed")
    );
    assert!(
        blocks
            .iter()
            .any(|b| b.to_string().contains("FATAL: cannot reach ***"))
    );
}

#[test]
fn the_default_html_email_escapes_every_value() {
    let m = render_for("rich", "orders");
    assert_no_secret(&m);
    let Message::Email { body, html, .. } = m else {
        panic!("not an email")
    };
    assert!(html);
    assert!(body.contains("<table>"), "{body}");
    assert!(body.contains("copying &lt;orders&gt;"), "{body}");
    assert!(!body.contains("<orders>"), "{body}");
    assert!(
        body.contains("<a href=\"https://sensei.example.com/v1/migrations/m-test00000001\">"),
        "{body}"
    );
}
