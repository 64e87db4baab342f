//! Fire times across DST changes: the rules windows and schedules share (docs/runbooks.md,
//! "Time zones and DST").
//!
//! The rules are cronie's (cron(8), "Daylight Saving Time and other time changes"). An
//! expression that *names* times of day — no `*` in its minute and hour fields, such as
//! `30 2 * * SUN` or `0 1,13 * * *` — fires once per named wall time: a named time inside a
//! spring-forward gap fires at the first instant after the gap, and a named time that occurs
//! twice in a fall-back overlap fires at its first occurrence only. An expression with a
//! *rhythm* (`*` in the minute or hour field: `*/30 * * * *`, `0 */2 * * *`, `@hourly`) keeps
//! it in real time: its wall times inside a gap do not exist and are skipped, and its wall
//! times in a repeated hour fire on both passes.
//!
//! croner already applies these rules to an expression whose minute and hour are one plain
//! value each. It treats lists and ranges (`0 1,13`) as rhythms, so [`Fires`] adds the two
//! cronie rules for them: the repeated pass is dropped, and a named time inside a gap fires
//! right after it.

use chrono::{DateTime, NaiveDateTime, Offset as _, TimeZone as _, Utc};
use chrono_tz::Tz;
use croner::{Cron, CronIterator};
use std::collections::VecDeque;
use std::fmt;

/// One fire time of a cron expression in a zone.
#[derive(Clone, Debug, PartialEq)]
pub struct Fire {
    pub at: DateTime<Tz>,
    /// The named wall time that did not exist that day (a spring-forward gap), when the fire
    /// moved to the first instant after the gap.
    pub shifted_from: Option<NaiveDateTime>,
}

/// Fire times strictly after an instant, in order, following the rules above.
pub struct Fires {
    cron: Cron,
    tz: Tz,
    inner: CronIterator<DateTime<Tz>>,
    names_times: bool,
    /// The last instant handed out (or the start): gaps are looked for after it.
    cursor: DateTime<Utc>,
    pending: VecDeque<Fire>,
}

impl fmt::Debug for Fires {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.debug_struct("Fires")
            .field("tz", &self.tz)
            .field("cursor", &self.cursor)
            .finish_non_exhaustive()
    }
}

impl Fires {
    pub(super) fn new(cron: &Cron, names_times: bool, tz: Tz, after: DateTime<Utc>) -> Fires {
        Fires {
            inner: cron.iter_after(after.with_timezone(&tz)),
            cron: cron.clone(),
            tz,
            names_times,
            cursor: after,
            pending: VecDeque::new(),
        }
    }

    /// Named wall times inside the spring-forward gaps after the cursor and up to `until`
    /// (inclusive), each as a fire at the end of its gap.
    fn gap_fires(&self, until: DateTime<Utc>) -> Vec<Fire> {
        changes(self.tz, self.cursor, until)
            .into_iter()
            .filter(|c| c.shift_minutes > 0)
            .filter_map(|c| {
                let end = c.at.naive_local();
                let start = end - chrono::Duration::minutes(i64::from(c.shift_minutes));
                let named = (0..c.shift_minutes)
                    .map(|m| start + chrono::Duration::minutes(i64::from(m)))
                    .find(|wall| self.cron.is_time_matching(wall).unwrap_or(false))?;
                Some(Fire {
                    at: c.at,
                    shifted_from: Some(named),
                })
            })
            .collect()
    }
}

impl Iterator for Fires {
    type Item = Fire;

    fn next(&mut self) -> Option<Fire> {
        if let Some(fire) = self.pending.pop_front() {
            return Some(fire);
        }
        loop {
            let at = self.inner.next()?;
            let utc = at.with_timezone(&Utc);
            if self.names_times && is_second_pass(self.tz, &at) {
                continue;
            }
            let mut fire = Fire {
                at,
                shifted_from: None,
            };
            if self.names_times {
                for gap in self.gap_fires(utc) {
                    if gap.at == fire.at {
                        // croner moved it already; record which time it stands for.
                        fire.shifted_from = gap.shifted_from;
                    } else {
                        self.pending.push_back(gap);
                    }
                }
            }
            self.cursor = utc;
            self.pending.push_back(fire);
            return self.pending.pop_front();
        }
    }
}

/// True when `at`'s wall time occurs twice (a fall-back overlap) and `at` is the second.
fn is_second_pass(tz: Tz, at: &DateTime<Tz>) -> bool {
    match tz.from_local_datetime(&at.naive_local()) {
        chrono::LocalResult::Ambiguous(_, later) => later == *at,
        _ => false,
    }
}

/// Every change of UTC offset after `from` and up to `to` (inclusive).
pub fn changes(tz: Tz, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<OffsetChange> {
    // Zones change their offset at most a few times a year, never twice within a day, so one
    // look per day finds every change.
    let day = chrono::Duration::days(1);
    let mut out = Vec::new();
    let mut lo = from;
    while lo < to {
        let hi = (lo + day).min(to);
        if let Some(change) = offset_change(tz, lo, hi) {
            out.push(change);
        }
        lo = hi;
    }
    out
}

/// A change of UTC offset (a DST change) between two instants, if there is one.
pub fn offset_change(tz: Tz, from: DateTime<Utc>, to: DateTime<Utc>) -> Option<OffsetChange> {
    let offset_at = |t: i64| {
        tz.timestamp_opt(t, 0)
            .single()
            .map(|d| d.offset().fix().local_minus_utc())
    };
    let (mut lo, mut hi) = (from.timestamp(), to.timestamp());
    let (before, after) = (offset_at(lo)?, offset_at(hi)?);
    if before == after {
        return None;
    }
    // Binary search for the first second with the new offset.
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if offset_at(mid)? == before {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some(OffsetChange {
        at: tz.timestamp_opt(hi, 0).single()?,
        shift_minutes: (after - before) / 60,
    })
}

#[derive(Clone, Debug, PartialEq)]
pub struct OffsetChange {
    /// The first instant with the new offset.
    pub at: DateTime<Tz>,
    /// Positive when clocks go forward (spring), negative when they go back (autumn).
    pub shift_minutes: i32,
}

impl OffsetChange {
    /// `1h`, `30m`: how far the clocks move.
    pub fn amount(&self) -> String {
        let minutes = self.shift_minutes.abs();
        if minutes % 60 == 0 {
            format!("{}h", minutes / 60)
        } else {
            format!("{minutes}m")
        }
    }

    /// The wall time the clocks showed just before the change (`02:00` in Berlin each spring).
    pub fn wall_before(&self) -> NaiveDateTime {
        self.at.naive_local() - chrono::Duration::minutes(i64::from(self.shift_minutes))
    }

    fn direction(&self) -> &'static str {
        if self.shift_minutes > 0 {
            "forward"
        } else {
            "back"
        }
    }

    /// `forward 1h on Sun 2027-03-28 at 02:00 (to 03:00 CEST)`: one of several changes while
    /// a long window is open, so with its day.
    pub fn dated(&self) -> String {
        format!(
            "{} {} on {} at {} (to {})",
            self.direction(),
            self.amount(),
            self.wall_before().format("%a %Y-%m-%d"),
            self.wall_before().format("%H:%M"),
            self.at.format("%H:%M %Z"),
        )
    }
}

impl fmt::Display for OffsetChange {
    /// `clocks go back 1h at 03:00 (to 02:00 CET); the window still lasts its full duration in
    /// real time`: windows are measured in elapsed time, not wall-clock time.
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "clocks go {} {} at {} (to {}); the window still lasts its full duration in real time",
            self.direction(),
            self.amount(),
            self.wall_before().format("%H:%M"),
            self.at.format("%H:%M %Z"),
        )
    }
}

/// The shortest time between two consecutive fire times, and where it happens.
#[derive(Clone, Debug, PartialEq)]
pub struct Period {
    pub length: std::time::Duration,
    /// The first of the two fire times.
    pub from: DateTime<Tz>,
    /// True when a DST change falls between the two, making the period shorter than usual.
    pub across_dst: bool,
}

/// The shortest period of an expression in a zone, over a sample year: 64 fire times from its
/// start, and the fire times around each DST change of that year (where daily and rarer
/// windows get shorter by the change, or by a named time moved past a gap).
pub fn shortest_period(fires: impl Fn(DateTime<Utc>) -> Fires, tz: Tz) -> Option<Period> {
    let year = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single()?;
    let next_year = Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).single()?;
    let mut samples: Vec<Vec<DateTime<Tz>>> = vec![fires(year).take(64).map(|f| f.at).collect()];
    for change in changes(tz, year, next_year) {
        let at = change.at.with_timezone(&Utc);
        // Two days before, for daily and rarer expressions; three hours before, for frequent
        // ones, whose 64 fire times would otherwise end before the change.
        for lead in [chrono::Duration::hours(50), chrono::Duration::hours(3)] {
            let sample: Vec<DateTime<Tz>> = fires(at - lead).take(64).map(|f| f.at).collect();
            samples.push(sample);
        }
    }
    let period_of = |pair: &[DateTime<Tz>]| -> Option<Period> {
        let length = (pair[1] - pair[0]).to_std().ok()?;
        let (a, b) = (pair[0].with_timezone(&Utc), pair[1].with_timezone(&Utc));
        Some(Period {
            length,
            from: pair[0],
            across_dst: !changes(tz, a, b).is_empty(),
        })
    };
    samples
        .iter()
        .flat_map(|s| s.windows(2).filter_map(period_of))
        .min_by_key(|p| (p.length, p.from.with_timezone(&Utc)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runbook::cron::CronExpr;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("rfc3339")
            .with_timezone(&Utc)
    }

    fn zone(name: &str) -> Tz {
        name.parse().expect("zone")
    }

    #[test]
    fn finds_the_dst_change_inside_an_interval_to_the_second() {
        let berlin = zone("Europe/Berlin");
        let change = offset_change(
            berlin,
            utc("2027-03-27T23:00:00Z"),
            utc("2027-03-28T03:00:00Z"),
        )
        .expect("a change");
        assert_eq!(change.shift_minutes, 60);
        assert_eq!(change.at.to_rfc3339(), "2027-03-28T03:00:00+02:00");
        assert_eq!(change.wall_before().to_string(), "2027-03-28 02:00:00");
        assert!(
            offset_change(
                berlin,
                utc("2027-01-01T00:00:00Z"),
                utc("2027-01-02T00:00:00Z")
            )
            .is_none()
        );
        // Both changes of a year, although the offsets at the ends are equal.
        let year = changes(
            berlin,
            utc("2027-01-01T00:00:00Z"),
            utc("2028-01-01T00:00:00Z"),
        );
        let shown: Vec<String> = year.iter().map(|c| c.at.to_rfc3339()).collect();
        assert_eq!(
            shown,
            ["2027-03-28T03:00:00+02:00", "2027-10-31T02:00:00+01:00"]
        );
    }

    #[test]
    fn names_or_rhythm() {
        let names = |text: &str| CronExpr::parse(text).expect("cron").names_times();
        assert!(names("30 2 * * *"));
        assert!(names("0 1,13 * * MON-FRI"));
        assert!(names("0-30/15 2 * * *"));
        assert!(names("@daily"));
        assert!(names("@weekly"));
        assert!(!names("@hourly"));
        assert!(!names("*/30 * * * *"));
        assert!(!names("0 */2 * * *"));
        assert!(!names("15 * * * *"));
    }

    #[test]
    fn shortest_periods_include_dst_changes() {
        let period = |cron: &str, tz: &str| {
            CronExpr::parse(cron)
                .expect("cron")
                .shortest_period(zone(tz))
                .map(|p| {
                    format!(
                        "{}s from {}{}",
                        p.length.as_secs(),
                        p.from.to_rfc3339(),
                        if p.across_dst { " across dst" } else { "" }
                    )
                })
        };
        // A daily window is 23 real hours apart across spring-forward.
        assert_eq!(
            period("0 1 * * *", "Europe/Berlin").as_deref(),
            Some("82800s from 2026-03-29T01:00:00+01:00 across dst")
        );
        // 02:30 moved to 03:00 CEST: 23h30m on either side.
        assert_eq!(
            period("30 2 * * *", "Europe/Berlin").as_deref(),
            Some("84600s from 2026-03-28T02:30:00+01:00 across dst")
        );
        // A rhythm keeps real time; hourly is always an hour.
        assert_eq!(
            period("@hourly", "America/New_York").as_deref(),
            Some("3600s from 2025-12-31T20:00:00-05:00")
        );
        // Every two hours fires at 02:00 on both passes of the repeated hour.
        assert_eq!(
            period("0 */2 * * *", "Europe/Berlin").as_deref(),
            Some("3600s from 2026-10-25T02:00:00+02:00 across dst")
        );
        // Named hours open once: the repeated 01:00 does not make a 1h period.
        assert_eq!(
            period("0 1,13 * * *", "America/New_York").as_deref(),
            Some("39600s from 2026-03-08T01:00:00-05:00 across dst")
        );
        assert_eq!(period("0 0 30 2 *", "UTC"), None);
    }
}
