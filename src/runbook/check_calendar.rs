//! Checks of what says when and how migrations start: `windows` (cron, zone, duration, cutoff,
//! a period long enough, an opening at all), `schedules` and webhook `triggers` (with the
//! params they give).

use super::check::{Checker, article, valid_env_name, valid_name, value_has_type};
use super::check_templates::Scope;
use super::duration::Duration;
use super::model::{JsonText, Param, Schedule, Trigger, Window};
use super::raw::{RawSchedule, RawTrigger, RawWindow};
use super::wrappers::{Entries, Recover, Spanned};
use crate::diag;
use std::collections::HashSet;

impl Checker<'_> {
    pub(super) fn windows(&mut self, windows: Option<&Entries<Recover<RawWindow>>>) -> Vec<Window> {
        let Some(windows) = windows else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (name, raw) in windows.iter() {
            let Some(raw) = &raw.0 else { continue };
            // One rule for the written and the default cutoff (0s): writing the default must
            // not change what is valid, so a window of 0s is refused either way.
            let cutoff = raw.cutoff.as_ref().map_or(Duration::default(), |c| c.value);
            if cutoff >= raw.duration.value {
                let written = if raw.cutoff.is_some() {
                    ""
                } else {
                    ", the default"
                };
                let (span, fix) = match &raw.cutoff {
                    Some(c) if c.value > Duration::default() => (c.span, "shorten `cutoff`"),
                    _ => (raw.duration.span, "give it a `duration` longer than 0s"),
                };
                self.error(
                    span,
                    format!(
                        "the cutoff of window `{}` ({cutoff}{written}) is not shorter than its duration ({})",
                        name.value, raw.duration.value
                    ),
                )
                .hint = Some(format!("no step could ever start in this window; {fix}"));
            }
            let timezone = raw.timezone.as_ref().map(|t| t.value).unwrap_or_default();
            let window = Window {
                name: name.value.clone(),
                cron: raw.cron.value.clone(),
                duration: raw.duration.value,
                timezone,
                cutoff,
                on_close: raw.on_close.unwrap_or_default(),
            };
            if never_fires(&window.cron, timezone) {
                self.error(
                    raw.cron.span,
                    format!(
                        "window `{}` never opens: `{}` matches no date",
                        name.value,
                        window.cron.as_str()
                    ),
                )
                .hint = Some("check the day-of-month and month fields".into());
            } else if let Some(period) = window.cron.shortest_period(timezone.0)
                && window.duration.as_std() > period.length
            {
                let (when, hint) = if period.across_dst {
                    (
                        format!(
                            " across the DST change after {}",
                            period.from.format("%a %Y-%m-%d %H:%M %Z")
                        ),
                        "a window must close before it reopens, also when clocks change: shorten `duration` or open it less often",
                    )
                } else {
                    (
                        String::new(),
                        "a window must close before it reopens: shorten `duration` or open it less often",
                    )
                };
                self.error(
                    raw.duration.span,
                    format!(
                        "window `{}` lasts {} but opens again after {}{when}",
                        name.value,
                        window.duration,
                        Duration(period.length)
                    ),
                )
                .hint = Some(hint.into());
            }
            out.push(window);
        }
        out
    }

    pub(super) fn schedules(
        &mut self,
        schedules: Option<&[Recover<RawSchedule>]>,
        params: &[Param],
    ) -> Vec<Schedule> {
        let scope = Scope::schedule(params);
        let mut out = Vec::new();
        for raw in schedules
            .unwrap_or_default()
            .iter()
            .filter_map(|s| s.0.as_ref())
        {
            let values = self.param_values(raw.params.as_ref(), params, &scope, JsonText::new);
            // Secret params cannot be written here (they would be in git); the server has to
            // supply them, so only plain required params are flagged.
            for p in params.iter().filter(|p| p.required && !p.secret) {
                if !values.iter().any(|(n, _)| *n == p.name) {
                    self.warning(
                        raw.cron.span,
                        format!("this schedule does not set required param `{}`: its migrations cannot start", p.name),
                    );
                }
            }
            let timezone = raw.timezone.as_ref().map(|t| t.value).unwrap_or_default();
            if never_fires(&raw.cron.value, timezone) {
                self.error(
                    raw.cron.span,
                    format!(
                        "this schedule never fires: `{}` matches no date",
                        raw.cron.value.as_str()
                    ),
                )
                .hint = Some("check the day-of-month and month fields".into());
            }
            out.push(Schedule {
                cron: raw.cron.value.clone(),
                timezone,
                params: values,
                overlap: raw.overlap.unwrap_or_default(),
                catch_up: raw.catch_up.unwrap_or_default(),
            });
        }
        out
    }

    pub(super) fn triggers(
        &mut self,
        triggers: Option<&[Recover<RawTrigger>]>,
        params: &[Param],
    ) -> Vec<Trigger> {
        let scope = Scope::trigger(params);
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for raw in triggers
            .unwrap_or_default()
            .iter()
            .filter_map(|t| t.0.as_ref())
        {
            let hook = &raw.webhook;
            if !valid_name(&hook.value, 63) {
                self.error(hook.span, format!("invalid webhook name `{}`", hook.value))
                    .hint = Some("webhook names appear in URLs (`/v1/hooks/NAME`): lowercase letters, digits, `-` and `_`".into());
            } else if !seen.insert(hook.value.clone()) {
                self.error(
                    hook.span,
                    format!("webhook `{}` is declared twice", hook.value),
                );
            }
            if !valid_env_name(&raw.secret_env.value) {
                self.error(raw.secret_env.span, format!("`{}` is not an environment variable name", raw.secret_env.value))
                    .hint = Some("name the variable that holds the key, e.g. `SENSEI_HOOK_DEPLOY`; never the key itself".into());
            }
            // A trigger renders only the values of its params, never their keys.
            let typed = JsonText::with_keys_as_written;
            let values = self.param_values(raw.params.as_ref(), params, &scope, typed);
            out.push(Trigger {
                webhook: hook.value.clone(),
                secret_env: raw.secret_env.value.clone(),
                params: values,
            });
        }
        out
    }

    /// `params:` of a schedule or trigger: declared names, templates in string values; each
    /// value typed with `typed`.
    fn param_values(
        &mut self,
        values: Option<&Entries<Spanned<serde_json::Value>>>,
        params: &[Param],
        scope: &Scope,
        typed: fn(&serde_json::Value) -> JsonText,
    ) -> Vec<(String, JsonText)> {
        let mut out = Vec::new();
        for (name, value) in values.map(|v| v.0.as_slice()).unwrap_or_default() {
            if !params.iter().any(|p| p.name == name.value) && !self.declared("params", &name.value)
            {
                let hint = diag::suggest(&name.value, params.iter().map(|p| p.name.as_str()))
                    .unwrap_or_else(|| "declare it under `params:`".into());
                self.error(name.span, format!("unknown param `{}`", name.value))
                    .hint = Some(hint);
            }
            self.json_templates(&value.value, value.span, scope);
            let text = typed(&value.value);
            if let Some(p) = params.iter().find(|p| p.name == name.value)
                && !text.is_template()
                && let Err(found) = value_has_type(&value.value, p.kind)
            {
                self.error(
                    value.span,
                    format!(
                        "param `{}` is {}, but this value is {found}",
                        p.name,
                        article(p.kind)
                    ),
                );
            }
            out.push((name.value.clone(), text));
        }
        out
    }
}

/// An expression such as `0 0 30 2 *` (February 30th) is valid cron but never fires.
fn never_fires(cron: &crate::runbook::cron::CronExpr, tz: crate::runbook::cron::TimeZone) -> bool {
    let Some(start) = chrono::DateTime::from_timestamp(1_767_225_600, 0) else {
        return false;
    };
    // 2026-01-01T00:00:00Z; croner searches several years ahead, so leap days are found.
    cron.next_after(tz.0, start, 1).is_empty()
}
