//! Rule matching: which events alert, under which name, and which channels they go to.
//!
//! An event's alert name is the lifecycle state a `state_changed` reaches (`failed`,
//! `certified`, ...; `created` is the `migration_created` event), or the event kind for
//! `step_failed`, `step_retrying`, `gate_waiting`, `gate_decided`, `window_closing`,
//! `rollback_started` and `rollback_finished`. A rule matches an event when its `on` names
//! the event's alert name and, if the rule has `steps`, the event belongs to one of them
//! (a fan-out expansion `copy[orders]` belongs to `copy`); events of no step, such as state
//! changes, never match a rule with `steps`. An event matched by several rules goes once to
//! each channel they name.

use crate::event::{EventKind, MigrationState, NewEvent, StateChanged, StepFailed};
use crate::runbook::model::{Alerts, ChannelKind, Rule};
use crate::store::{DeliveryKind, NewDelivery};

/// Every alert name a rule may select: the runbook checker's list.
#[cfg(test)]
use crate::runbook::ALERT_EVENTS as EVENTS;

/// The alert name of an event, if it is one that can alert.
pub fn alert_name(kind: EventKind, data: &serde_json::Value) -> Option<&'static str> {
    Some(match kind {
        EventKind::StateChanged => return changed_to(data).map(MigrationState::as_str),
        EventKind::MigrationCreated => "created",
        // A fan-out fails because a part did, which alerted already: once is enough.
        EventKind::StepFailed if summarizes_parts(data) => return None,
        EventKind::StepFailed => "step_failed",
        EventKind::StepRetrying => "step_retrying",
        EventKind::GateWaiting => "gate_waiting",
        EventKind::GateDecided => "gate_decided",
        EventKind::GateTimeoutSoon => "gate_timeout_soon",
        EventKind::WindowClosing => "window_closing",
        EventKind::RollbackStarted => "rollback_started",
        EventKind::RollbackFinished => "rollback_finished",
        _ => return None,
    })
}

/// Whether an event can alert at all (most cannot: a step started, a log line's step...).
pub fn may_alert(event: &NewEvent) -> bool {
    alert_name(event.kind, &event.data).is_some()
}

/// A `step_failed` of a fan-out's placeholder, which sums up its parts' failures.
fn summarizes_parts(data: &serde_json::Value) -> bool {
    crate::event::read::<StepFailed>(EventKind::StepFailed, data)
        .is_some_and(|f| f.expansions.is_some())
}

/// The state a `state_changed` event's data moved the migration to.
fn changed_to(data: &serde_json::Value) -> Option<MigrationState> {
    crate::event::read::<StateChanged>(EventKind::StateChanged, data).map(|c| c.to)
}

fn matches(rule: &Rule, alert: &str, step: Option<&str>) -> bool {
    rule.on.iter().any(|on| on == alert)
        && (rule.steps.is_empty()
            || step.is_some_and(|s| {
                rule.steps
                    .iter()
                    .any(|r| r == s || r == crate::plan::base_step(s))
            }))
}

/// The channels (by name, each once, in rule order) an alert goes to.
pub fn channels_for<'a>(alerts: &'a Alerts, alert: &str, step: Option<&str>) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for rule in alerts.rules.iter().filter(|r| matches(r, alert, step)) {
        for channel in &rule.notify {
            if !out.contains(&channel.as_str()) {
                out.push(channel);
            }
        }
    }
    out
}

/// The deliveries a batch of events causes. `state` is the migration's state before the
/// first of them; state changes in the batch move it on, so each delivery records the state
/// its event left the migration in.
pub fn route(alerts: &Alerts, mut state: MigrationState, events: &[NewEvent]) -> Vec<NewDelivery> {
    let mut out = Vec::new();
    if alerts.rules.is_empty() {
        return out;
    }
    for (index, event) in events.iter().enumerate() {
        if event.kind == EventKind::StateChanged
            && let Some(to) = changed_to(&event.data)
        {
            state = to;
        }
        let Some(alert) = alert_name(event.kind, &event.data) else {
            continue;
        };
        for name in channels_for(alerts, alert, event.step.as_deref()) {
            let Some(channel) = alerts.channels.iter().find(|c| c.name == name) else {
                continue; // the checker refuses unknown channels; nothing to send to
            };
            out.push(NewDelivery {
                event: index,
                alert: alert.to_owned(),
                migration_state: state,
                channel: name.to_owned(),
                kind: match channel.kind {
                    ChannelKind::Email { .. } => DeliveryKind::Email,
                    ChannelKind::Webhook { .. } => DeliveryKind::Webhook,
                },
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runbook::model::{Channel, WebhookFormat};
    use serde_json::json;

    fn hook(name: &str) -> Channel {
        Channel {
            name: name.into(),
            kind: ChannelKind::Webhook {
                url: "https://example.com/hook".into(),
                format: WebhookFormat::Json,
                secret_env: None,
                headers: Vec::new(),
            },
        }
    }

    fn rule(on: &[&str], steps: &[&str], notify: &[&str]) -> Rule {
        let owned = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect();
        Rule {
            on: owned(on),
            steps: owned(steps),
            notify: owned(notify),
        }
    }

    fn alerts() -> Alerts {
        Alerts {
            channels: vec![hook("a"), hook("b")],
            rules: vec![
                rule(&["failed", "certified"], &[], &["a", "b"]),
                rule(&["step_failed"], &["cutover"], &["b"]),
                rule(&["failed"], &[], &["b"]),
            ],
        }
    }

    fn changed(from: &str, to: &str) -> NewEvent {
        NewEvent::new(EventKind::StateChanged, json!({ "from": from, "to": to }))
    }

    #[test]
    fn state_changes_alert_by_the_state_they_reach_once_per_channel() {
        let events = [
            changed("running", "completed"),
            changed("completed", "validating"),
            NewEvent::for_step(EventKind::StepFailed, "check", json!({})),
            changed("validating", "failed"),
        ];
        let got = route(&alerts(), MigrationState::Running, &events);
        let summary: Vec<_> = got
            .iter()
            .map(|d| {
                (
                    d.event,
                    d.alert.as_str(),
                    d.channel.as_str(),
                    d.migration_state,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (3, "failed", "a", MigrationState::Failed),
                (3, "failed", "b", MigrationState::Failed),
            ]
        );
    }

    #[test]
    fn a_steps_filter_matches_the_step_and_its_expansions_only() {
        let events = [
            NewEvent::for_step(EventKind::StepFailed, "cutover[eu]", json!({})),
            NewEvent::for_step(EventKind::StepFailed, "cutover", json!({})),
            NewEvent::for_step(EventKind::StepFailed, "cutover-2", json!({})),
            NewEvent::for_step(EventKind::StepRetrying, "cutover", json!({})),
        ];
        let got = route(&alerts(), MigrationState::Running, &events);
        let indexes: Vec<_> = got.iter().map(|d| (d.event, d.kind)).collect();
        assert_eq!(
            indexes,
            [(0, DeliveryKind::Webhook), (1, DeliveryKind::Webhook)]
        );
        assert_eq!(got[0].migration_state, MigrationState::Running);
    }

    #[test]
    fn every_alert_name_is_one_a_rule_may_select() {
        let data = json!({ "to": "failed" });
        for kind in EventKind::ALL {
            if let Some(name) = alert_name(*kind, &data) {
                assert!(EVENTS.contains(&name), "{name}");
            }
        }
        for state in MigrationState::ALL {
            assert!(EVENTS.contains(&state.as_str()), "{state}");
        }
    }
}
