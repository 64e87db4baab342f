//! Checks of `alerts`: channels (email or webhook, addresses, URLs) and the rules that route
//! events to them.

use super::check::Checker;
use super::check_templates::Scope;
use super::model::{Alerts, Channel, ChannelKind, Param, Rule, Text};
use super::raw::{RawAlerts, RawChannel, RawRule};
use super::wrappers::{Entries, Recover, Spanned};
use crate::diag;
use std::collections::HashSet;

/// Event names alert rules may select: every lifecycle state, and step, gate, window and
/// rollback events.
pub const ALERT_EVENTS: &[&str] = &[
    "created",
    "analyzing",
    "planning",
    "awaiting_approval",
    "approved",
    "running",
    "paused",
    "completed",
    "validating",
    "certified",
    "failed",
    "cancelled",
    "step_failed",
    "step_retrying",
    "gate_waiting",
    "gate_decided",
    "gate_timeout_soon",
    "window_closing",
    "rollback_started",
    "rollback_finished",
];

impl Checker<'_> {
    pub(super) fn alerts(
        &mut self,
        alerts: Option<&RawAlerts>,
        params: &[Param],
        steps: &[String],
        broken_steps: &HashSet<String>,
    ) -> Alerts {
        let Some(alerts) = alerts else {
            return Alerts::default();
        };
        let scope = Scope::alert(params);
        let mut channels = Vec::new();
        for (name, raw) in alerts.channels.iter() {
            if let Some(raw) = &raw.0
                && let Some(kind) = self.channel(name, raw, &scope)
            {
                channels.push(Channel {
                    name: name.value.clone(),
                    kind,
                });
            }
        }
        let mut rules = Vec::new();
        for raw in alerts.rules.iter().filter_map(|r| r.0.as_ref()) {
            rules.push(self.rule(raw, &alerts.channels, steps, broken_steps));
        }
        Alerts { channels, rules }
    }

    fn channel(
        &mut self,
        name: &Spanned<String>,
        raw: &RawChannel,
        scope: &Scope,
    ) -> Option<ChannelKind> {
        match (&raw.email, &raw.webhook) {
            (Some(email), None) => {
                if email.to.value.is_empty() {
                    self.error(
                        email.to.span,
                        format!("channel `{}` sends email to nobody", name.value),
                    )
                    .hint = Some("list at least one address in `to`".into());
                }
                for address in email.to.value.iter().chain(&email.cc) {
                    if !address.value.contains('@') {
                        self.error(
                            address.span,
                            format!("`{}` is not an email address", address.value),
                        );
                    }
                }
                for t in [&email.subject, &email.body].into_iter().flatten() {
                    self.template(&t.value, t.span, scope);
                }
                Some(ChannelKind::Email {
                    to: email.to.value.iter().map(|a| a.value.clone()).collect(),
                    cc: email.cc.iter().map(|a| a.value.clone()).collect(),
                    subject: email.subject.as_ref().map(|s| Text::new(s.value.as_str())),
                    body: email.body.as_ref().map(|s| Text::new(s.value.as_str())),
                    html: email.html.unwrap_or(false),
                })
            }
            (None, Some(hook)) => {
                let url = &hook.url.value;
                self.template(url, hook.url.span, scope);
                if !(url.starts_with("https://") || url.starts_with("http://")) {
                    self.error(hook.url.span, format!("`{url}` is not an http(s) URL"));
                }
                let headers = hook
                    .headers
                    .as_ref()
                    .map(|h| h.0.as_slice())
                    .unwrap_or_default();
                for (_, value) in headers {
                    self.template(&value.value, value.span, scope);
                }
                Some(ChannelKind::Webhook {
                    url: Text::new(url.as_str()),
                    format: hook.format.unwrap_or_default(),
                    secret_env: hook.secret_env.as_ref().map(|s| s.value.clone()),
                    headers: headers
                        .iter()
                        .map(|(k, v)| (k.value.clone(), Text::new(v.value.as_str())))
                        .collect(),
                })
            }
            _ => {
                self.error(
                    name.span,
                    format!(
                        "channel `{}` must have exactly one of `email` or `webhook`",
                        name.value
                    ),
                )
                .hint = Some(
                    "a channel sends either email or to a webhook; declare two channels to do both"
                        .into(),
                );
                None
            }
        }
    }

    fn rule(
        &mut self,
        raw: &RawRule,
        channels: &Entries<Recover<RawChannel>>,
        steps: &[String],
        broken_steps: &HashSet<String>,
    ) -> Rule {
        for event in &raw.on.value {
            if !ALERT_EVENTS.contains(&event.value.as_str()) {
                let hint = diag::suggest(&event.value, ALERT_EVENTS.iter().copied())
                    .unwrap_or_else(|| format!("events are: {}", ALERT_EVENTS.join(", ")));
                self.error(event.span, format!("unknown event `{}`", event.value))
                    .hint = Some(hint);
            }
        }
        for step in raw.steps.iter().flatten() {
            if !steps.contains(&step.value) && !broken_steps.contains(&step.value) {
                let hint = diag::suggest(&step.value, steps.iter().map(String::as_str));
                self.error(step.span, format!("unknown step `{}`", step.value))
                    .hint = hint;
            }
        }
        for channel in &raw.notify.value {
            if channels.get(&channel.value).is_none() {
                let hint = diag::suggest(&channel.value, channels.names())
                    .unwrap_or_else(|| "declare it under `alerts.channels`".into());
                self.error(channel.span, format!("unknown channel `{}`", channel.value))
                    .hint = Some(hint);
            }
        }
        Rule {
            on: raw.on.value.iter().map(|e| e.value.clone()).collect(),
            steps: raw
                .steps
                .iter()
                .flatten()
                .map(|s| s.value.clone())
                .collect(),
            notify: raw.notify.value.iter().map(|c| c.value.clone()).collect(),
        }
    }
}
