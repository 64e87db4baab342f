//! The calendar side of a plan: next window openings (with DST notes, from
//! [`crate::calendar`]), whether the bound work fits each window, and schedule fire times.

use super::PlanStep;
use super::fit::{WindowFit, fit};
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
    /// Whether the estimated bound work fits; absent when no step is bound to the window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fit: Option<WindowFit>,
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
    /// What DST does to this opening, if anything: moved past a spring-forward gap, or a
    /// clock change while the window is open.
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
            let openings = crate::calendar::openings(w, now, SHOWN)
                .into_iter()
                .map(|o| {
                    let (opens, closes, last_start) = (
                        o.opens.with_timezone(&tz),
                        o.closes.with_timezone(&tz),
                        o.last_start.with_timezone(&tz),
                    );
                    let on_opening_day = |t: &DateTime<chrono_tz::Tz>| {
                        t.format(if t.date_naive() == opens.date_naive() {
                            "%H:%M %Z"
                        } else {
                            "%a %H:%M %Z"
                        })
                    };
                    Opening {
                        display: format!(
                            "{} → {}, last start {}",
                            opens.format("%a %Y-%m-%d %H:%M %Z"),
                            on_opening_day(&closes),
                            on_opening_day(&last_start),
                        ),
                        opens: opens.to_rfc3339(),
                        closes: closes.to_rfc3339(),
                        last_start: last_start.to_rfc3339(),
                        dst: o.dst,
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
                fit: fit(runbook, steps, w),
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
