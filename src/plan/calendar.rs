//! The calendar side of a plan: next window openings (with DST notes) and schedule fire times.

use super::PlanStep;
use crate::runbook::cron::offset_change;
use crate::runbook::model::{CatchUp, OnClose, Overlap, Runbook};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// How many openings and fire times a plan shows.
const SHOWN: usize = 3;

#[derive(Debug, Clone, Serialize)]
pub struct WindowPlan {
    pub name: String,
    pub cron: String,
    pub timezone: String,
    pub duration: String,
    pub cutoff: String,
    pub on_close: OnClose,
    /// Plan steps bound to the window.
    pub steps: Vec<String>,
    pub openings: Vec<Opening>,
}

/// One occurrence of a window, in the window's zone.
#[derive(Debug, Clone, Serialize)]
pub struct Opening {
    /// RFC 3339 with the zone's offset.
    pub opens: String,
    pub closes: String,
    /// Last moment a bound step may start (closes minus cutoff).
    pub last_start: String,
    /// A DST change inside the window, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dst: Option<String>,
    /// For people: `Sat 2026-11-28 01:00 CET → 05:00 CET, last start 04:30`.
    #[serde(skip)]
    pub display: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SchedulePlan {
    pub cron: String,
    pub timezone: String,
    pub overlap: Overlap,
    pub catch_up: CatchUp,
    /// RFC 3339 with the zone's offset.
    pub next: Vec<String>,
    /// For people: `Wed 2026-11-25 05:30 UTC`.
    #[serde(skip)]
    pub display: Vec<String>,
}

pub(super) fn windows(
    runbook: &Runbook,
    steps: &[PlanStep],
    now: DateTime<Utc>,
) -> Vec<WindowPlan> {
    runbook
        .windows
        .iter()
        .map(|w| {
            let tz = w.timezone.0;
            let length = chrono::Duration::milliseconds(w.duration.as_millis() as i64);
            let cutoff = chrono::Duration::milliseconds(w.cutoff.as_millis() as i64);
            let openings = w
                .cron
                .next_after(tz, now, SHOWN)
                .into_iter()
                .map(|opens| {
                    let closes = opens + length;
                    let dst =
                        offset_change(tz, opens.with_timezone(&Utc), closes.with_timezone(&Utc));
                    let last_start = closes - cutoff;
                    let display = format!(
                        "{} → {}, last start {}",
                        opens.format("%a %Y-%m-%d %H:%M %Z"),
                        closes.format(if closes.date_naive() == opens.date_naive() {
                            "%H:%M %Z"
                        } else {
                            "%a %H:%M %Z"
                        }),
                        last_start.format("%H:%M %Z"),
                    );
                    Opening {
                        display,
                        opens: opens.to_rfc3339(),
                        closes: closes.to_rfc3339(),
                        last_start: (closes - cutoff).to_rfc3339(),
                        dst: dst.map(|d| d.to_string()),
                    }
                })
                .collect();
            WindowPlan {
                name: w.name.clone(),
                cron: w.cron.as_str().to_owned(),
                timezone: w.timezone.name().to_owned(),
                duration: w.duration.to_string(),
                cutoff: w.cutoff.to_string(),
                on_close: w.on_close,
                steps: steps
                    .iter()
                    .filter(|s| s.window.as_deref() == Some(w.name.as_str()))
                    .map(|s| s.id.clone())
                    .collect(),
                openings,
            }
        })
        .collect()
}

pub(super) fn schedules(runbook: &Runbook, now: DateTime<Utc>) -> Vec<SchedulePlan> {
    runbook
        .schedules
        .iter()
        .map(|s| {
            let next = s.cron.next_after(s.timezone.0, now, SHOWN);
            SchedulePlan {
                display: next
                    .iter()
                    .map(|t| t.format("%a %Y-%m-%d %H:%M %Z").to_string())
                    .collect(),
                cron: s.cron.as_str().to_owned(),
                timezone: s.timezone.name().to_owned(),
                overlap: s.overlap,
                catch_up: s.catch_up,
                next: next.iter().map(DateTime::to_rfc3339).collect(),
            }
        })
        .collect()
}
