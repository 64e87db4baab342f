//! Window math, pure and clock-free: where a window stands at an instant, its next openings,
//! whether a bound step fits, and the words an operator reads while a step waits.
//!
//! The plan (next openings, DST notes) and the engine (may this bound step start now?) both
//! ask here, so they cannot disagree. Fire times come from [`crate::runbook::cron`], which
//! applies the DST rules of docs/runbooks.md; a window's `duration` and `cutoff` are elapsed
//! time. Every interval is half-open: a window is open from `opens` up to but not including
//! `closes`, and a bound step may start from `opens` up to but not including `last_start`
//! (`closes - cutoff`), the instant the cutoff begins.

#[cfg(test)]
mod tests;

use crate::runbook::cron::{OffsetChange, changes, offset_change};
use crate::runbook::model::Window;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;

/// `next_opens` of a window whose expression fires no more (checked runbooks have none:
/// `validate` rejects an expression that never fires).
pub const NEVER: DateTime<Utc> = DateTime::<Utc>::MAX_UTC;

/// Where a window stands at an instant.
#[derive(Debug, Clone, PartialEq)]
pub enum WindowState {
    /// Open, and a bound step may start until `last_start` (closes - cutoff).
    Open {
        opened: DateTime<Utc>,
        last_start: DateTime<Utc>,
        closes: DateTime<Utc>,
    },
    /// Open but past the cutoff: no new bound step may start.
    Cutoff {
        opened: DateTime<Utc>,
        closes: DateTime<Utc>,
        next_opens: DateTime<Utc>,
    },
    Closed {
        next_opens: DateTime<Utc>,
    },
}

/// One occurrence of a window.
#[derive(Debug, Clone, PartialEq)]
pub struct Occurrence {
    pub opens: DateTime<Utc>,
    /// `closes - cutoff`: bound steps start before this instant.
    pub last_start: DateTime<Utc>,
    pub closes: DateTime<Utc>,
    /// What DST does to this occurrence, for people: the opening moved past a spring-forward
    /// gap, or the clocks change while it is open.
    pub dst: Option<String>,
}

/// Where `window` stands at `now`. An occurrence that opened at or before `now` and has not
/// closed counts, so a window that crosses midnight is open after midnight.
pub fn window_state(window: &Window, now: DateTime<Utc>) -> WindowState {
    let tz = window.timezone.0;
    let length = span(window.duration.as_std());
    // Only an occurrence that opened after `now - duration` can still be open.
    let since = now
        .checked_sub_signed(length)
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let mut opened = None;
    let mut next_opens = NEVER;
    for fire in window.cron.fires_after(tz, since) {
        let at = fire.at.with_timezone(&Utc);
        if at > now {
            next_opens = at;
            break;
        }
        // `validate` keeps occurrences from overlapping; if they did, the latest one counts.
        opened = Some(at);
    }
    let Some(opened) = opened else {
        return WindowState::Closed { next_opens };
    };
    let (last_start, closes) = bounds(window, opened);
    if now < last_start {
        WindowState::Open {
            opened,
            last_start,
            closes,
        }
    } else {
        WindowState::Cutoff {
            opened,
            closes,
            next_opens,
        }
    }
}

/// The first `count` occurrences that open strictly after `after`.
pub fn openings(window: &Window, after: DateTime<Utc>, count: usize) -> Vec<Occurrence> {
    let tz = window.timezone.0;
    window
        .cron
        .fires_after(tz, after)
        .take(count)
        .map(|fire| {
            let opens = fire.at.with_timezone(&Utc);
            let (last_start, closes) = bounds(window, opens);
            let mut notes = Vec::new();
            if let Some(wall) = fire.shifted_from {
                // The gap ends at the opening: the change is within the few hours before it.
                let gap = opens
                    .checked_sub_signed(chrono::Duration::hours(4))
                    .and_then(|from| offset_change(tz, from, opens));
                let clocks = gap.map_or(String::new(), |g| {
                    format!(
                        ": clocks go forward {} at {}",
                        g.amount(),
                        g.wall_before().format("%H:%M")
                    )
                });
                notes.push(format!(
                    "{} does not exist on {}{clocks}; the window opens right after, at {}",
                    wall.format("%H:%M"),
                    wall.format("%a %Y-%m-%d"),
                    fire.at.format("%H:%M %Z"),
                ));
            }
            if let Some(note) = changes_inside(tz, opens, closes) {
                notes.push(note);
            }
            Occurrence {
                opens,
                last_start,
                closes,
                dst: (!notes.is_empty()).then(|| notes.join("; ")),
            }
        })
        .collect()
}

/// The note on the DST changes while an occurrence is open: every one of them, so that a
/// window open for months, whose offsets at both ends may be equal, still shows both; each
/// with its day once the window lasts more than a day.
fn changes_inside(
    tz: chrono_tz::Tz,
    opens: DateTime<Utc>,
    closes: DateTime<Utc>,
) -> Option<String> {
    let inside = changes(tz, opens, closes);
    match inside.as_slice() {
        [] => None,
        [one] if closes - opens <= chrono::Duration::days(1) => Some(one.to_string()),
        many => Some(format!(
            "clocks go {}; the window still lasts its full duration in real time",
            many.iter()
                .map(OffsetChange::dated)
                .collect::<Vec<_>>()
                .join(", then ")
        )),
    }
}

/// "window saturday-night opens Sat 01:00 CET (in 2h14m)" — for a step's waiting reason
/// (times in the window's zone).
pub fn waiting_reason(window: &Window, state: &WindowState, now: DateTime<Utc>) -> String {
    let tz = window.timezone.0;
    let name = &window.name;
    let next = |at: DateTime<Utc>| {
        if at == NEVER {
            "never opens again".to_owned()
        } else {
            format!("opens {} (in {})", when(at, now, tz), humanize(at - now))
        }
    };
    match *state {
        WindowState::Closed { next_opens } => format!("window {name} {}", next(next_opens)),
        WindowState::Cutoff {
            closes, next_opens, ..
        } => format!(
            "window {name} is past its cutoff (closes {}); next {}",
            when(closes, now, tz),
            next(next_opens)
        ),
        WindowState::Open {
            opened,
            last_start,
            closes,
        } => {
            // A bound step waits in an open window only when its estimate does not fit.
            let next_opens = openings(window, opened, 1)
                .first()
                .map_or(NEVER, |o| o.opens);
            format!(
                "window {name} closes {} (in {}), too soon for this step's estimate (last start {}); next {}",
                when(closes, now, tz),
                humanize(closes - now),
                when(last_start, now, tz),
                next(next_opens)
            )
        }
    }
}

/// Whether a bound step with this estimate may start now: open, before cutoff, and
/// now + estimate <= closes.
pub fn fits(
    state: &WindowState,
    now: DateTime<Utc>,
    estimate: Option<std::time::Duration>,
) -> bool {
    let WindowState::Open {
        opened,
        last_start,
        closes,
    } = *state
    else {
        return false;
    };
    let finishes = match estimate {
        None => Some(now),
        Some(e) => now.checked_add_signed(span(e)),
    };
    opened <= now && now < last_start && finishes.is_some_and(|end| end <= closes)
}

/// "2h14m", "45s", "3d4h": the two largest units, truncated to whole seconds.
pub fn humanize(d: chrono::Duration) -> String {
    if d < chrono::Duration::zero() {
        return format!(
            "-{}",
            humanize(
                chrono::Duration::zero()
                    .checked_sub(&d)
                    .unwrap_or(chrono::Duration::MAX)
            )
        );
    }
    let secs = d.num_seconds();
    let parts = [
        (secs / 86_400, "d"),
        (secs % 86_400 / 3_600, "h"),
        (secs % 3_600 / 60, "m"),
        (secs % 60, "s"),
    ];
    let Some(first) = parts.iter().position(|(value, _)| *value > 0) else {
        return "0s".to_owned();
    };
    parts[first..]
        .iter()
        .take(2)
        .filter(|(value, _)| *value > 0)
        .map(|(value, unit)| format!("{value}{unit}"))
        .collect()
}

/// `last_start` and `closes` of the occurrence that opens at `opens`.
fn bounds(window: &Window, opens: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let closes = opens
        .checked_add_signed(span(window.duration.as_std()))
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    let last_start = closes
        .checked_sub_signed(span(window.cutoff.as_std()))
        .unwrap_or(opens);
    (last_start, closes)
}

/// A runbook duration as chrono's, saturating (runbook durations fit by far).
fn span(d: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// `Sat 01:00 CET` within a week of `now`, `Sat 2027-04-03 01:00 CEST` further away.
pub fn when(at: DateTime<Utc>, now: DateTime<Utc>, tz: Tz) -> String {
    let local = at.with_timezone(&tz);
    if (at - now).num_days().abs() < 7 {
        local.format("%a %H:%M %Z").to_string()
    } else {
        local.format("%a %Y-%m-%d %H:%M %Z").to_string()
    }
}
