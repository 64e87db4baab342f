//! Cron expressions and IANA time zones, as windows and schedules use them.
//!
//! Parsing is croner's, restricted to what SPEC §2 promises: standard 5-field expressions
//! (minute hour day-of-month month day-of-week, POSIX semantics: 0 and 7 are Sunday, a
//! restricted day-of-month OR day-of-week) and the `@hourly`-style macros. Fire times are
//! computed in the zone with croner's DST rules (the Vixie-cron rules, see docs/runbooks.md):
//! a fixed time that falls in a spring-forward gap fires right after the gap, and a fixed time
//! in a fall-back overlap fires once, at its first occurrence.

use chrono::{DateTime, Offset, TimeZone as _, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, Deserialize, Deserializer};
use std::borrow::Cow;
use std::fmt;

const MACROS: [&str; 7] = [
    "@yearly",
    "@annually",
    "@monthly",
    "@weekly",
    "@daily",
    "@midnight",
    "@hourly",
];

/// A checked cron expression, with the text it was written as.
#[derive(Clone)]
pub struct CronExpr {
    text: String,
    cron: Cron,
}

impl fmt::Debug for CronExpr {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "CronExpr({:?})", self.text)
    }
}

impl PartialEq for CronExpr {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl CronExpr {
    pub fn parse(text: &str) -> Result<CronExpr, String> {
        let trimmed = text.trim();
        if trimmed.starts_with('@') {
            if !MACROS.contains(&trimmed.to_ascii_lowercase().as_str()) {
                return Err(format!(
                    "`{trimmed}` is not a cron macro; use one of {}",
                    MACROS.join(", ")
                ));
            }
        } else {
            let fields = trimmed.split_whitespace().count();
            if fields != 5 {
                return Err(format!(
                    "`{trimmed}` has {fields} fields; a cron expression has 5: minute hour day-of-month month day-of-week"
                ));
            }
        }
        let parser = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build();
        // croner has no @midnight; it is cron's other name for @daily.
        let pattern = if trimmed.eq_ignore_ascii_case("@midnight") {
            "@daily"
        } else {
            trimmed
        };
        let cron = parser
            .parse(pattern)
            .map_err(|e| format!("`{trimmed}` is not a valid cron expression: {e}"))?;
        Ok(CronExpr {
            text: trimmed.to_owned(),
            cron,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first fire times strictly after `after`, in `tz`.
    pub fn next_after(&self, tz: Tz, after: DateTime<Utc>, count: usize) -> Vec<DateTime<Tz>> {
        let start = after.with_timezone(&tz);
        self.cron.iter_after(start).take(count).collect()
    }
}

impl<'de> Deserialize<'de> for CronExpr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        CronExpr::parse(&text).map_err(de::Error::custom)
    }
}

impl JsonSchema for CronExpr {
    fn schema_name() -> Cow<'static, str> {
        "Cron".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A standard 5-field cron expression (minute hour day-of-month month day-of-week) or @hourly, @daily, @weekly, @monthly, @yearly",
            "examples": ["0 1 * * SAT", "*/30 * * * *", "@daily"],
        })
    }
}

/// An IANA time zone such as `Europe/Berlin`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeZone(pub Tz);

impl Default for TimeZone {
    fn default() -> Self {
        TimeZone(Tz::UTC)
    }
}

impl TimeZone {
    pub fn parse(text: &str) -> Result<TimeZone, (String, Option<String>)> {
        text.parse::<Tz>().map(TimeZone).map_err(|_| {
            let hint = crate::diag::suggest(text, chrono_tz::TZ_VARIANTS.iter().map(|t| t.name()))
                .or_else(|| {
                    Some(
                        "use an IANA name such as `Europe/Berlin`, `America/New_York` or `UTC`"
                            .to_owned(),
                    )
                });
            (format!("`{text}` is not an IANA time zone"), hint)
        })
    }

    pub fn name(&self) -> &'static str {
        self.0.name()
    }
}

impl<'de> Deserialize<'de> for TimeZone {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        TimeZone::parse(&text).map_err(|(message, hint)| match hint {
            Some(hint) => de::Error::custom(format!("{message}{}{hint}", super::node_de::HINT)),
            None => de::Error::custom(message),
        })
    }
}

impl JsonSchema for TimeZone {
    fn schema_name() -> Cow<'static, str> {
        "TimeZone".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "An IANA time zone name; default UTC",
            "examples": ["UTC", "Europe/Berlin", "America/New_York"],
        })
    }
}

/// A change of UTC offset (a DST change) between two instants, if there is one.
pub fn offset_change(tz: Tz, from: DateTime<Utc>, to: DateTime<Utc>) -> Option<OffsetChange> {
    let offset_at = |t: DateTime<Utc>| tz.offset_from_utc_datetime(&t.naive_utc()).fix();
    let (before, after) = (offset_at(from), offset_at(to));
    if before == after {
        return None;
    }
    // Binary search for the first minute with the new offset.
    let (mut lo, mut hi) = (from, to);
    while hi - lo > chrono::Duration::minutes(1) {
        let mid = lo + (hi - lo) / 2;
        if offset_at(mid) == before {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some(OffsetChange {
        at: hi.with_timezone(&tz),
        shift_minutes: (after.local_minus_utc() - before.local_minus_utc()) / 60,
    })
}

#[derive(Clone, Debug, PartialEq)]
pub struct OffsetChange {
    pub at: DateTime<Tz>,
    /// Positive when clocks go forward (spring), negative when they go back (autumn).
    pub shift_minutes: i32,
}

impl fmt::Display for OffsetChange {
    /// `clocks go back 1h at 03:00 CEST (to 02:00 CET); the window still lasts its full
    /// duration in real time`: windows are measured in elapsed time, not wall-clock time.
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let direction = if self.shift_minutes > 0 {
            "forward"
        } else {
            "back"
        };
        let minutes = self.shift_minutes.abs();
        let amount = if minutes % 60 == 0 {
            format!("{}h", minutes / 60)
        } else {
            format!("{minutes}m")
        };
        let before =
            self.at.naive_local() - chrono::Duration::minutes(i64::from(self.shift_minutes));
        write!(
            f,
            "clocks go {direction} {amount} at {} (to {}); the window still lasts its full duration in real time",
            before.format("%H:%M"),
            self.at.format("%H:%M %Z"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("rfc3339")
            .with_timezone(&Utc)
    }

    #[test]
    fn accepts_five_fields_and_macros_only() {
        assert!(CronExpr::parse("0 1 * * SAT").is_ok());
        assert!(CronExpr::parse("*/30 * * * *").is_ok());
        assert!(CronExpr::parse("@daily").is_ok());
        assert!(CronExpr::parse("@midnight").is_ok());
        let six = CronExpr::parse("0 0 1 * * SAT").expect_err("six fields");
        assert!(six.contains("has 6 fields"), "{six}");
        let bad = CronExpr::parse("61 * * * *").expect_err("minute 61");
        assert!(bad.contains("not a valid cron expression"), "{bad}");
        let mac = CronExpr::parse("@fortnightly").expect_err("macro");
        assert!(mac.contains("not a cron macro"), "{mac}");
    }

    #[test]
    fn sunday_is_zero_and_seven_as_in_posix_cron() {
        let tz = Tz::UTC;
        let after = utc("2026-11-25T00:00:00Z"); // a Wednesday
        let zero = CronExpr::parse("0 9 * * 0")
            .expect("cron")
            .next_after(tz, after, 1);
        let seven = CronExpr::parse("0 9 * * 7")
            .expect("cron")
            .next_after(tz, after, 1);
        assert_eq!(zero[0].to_rfc3339(), "2026-11-29T09:00:00+00:00");
        assert_eq!(zero, seven);
    }

    #[test]
    fn fire_times_follow_the_zone() {
        let cron = CronExpr::parse("0 1 * * SAT").expect("cron");
        let berlin: Tz = "Europe/Berlin".parse().expect("tz");
        let next = cron.next_after(berlin, utc("2026-11-25T00:00:00Z"), 3);
        let shown: Vec<String> = next.iter().map(|t| t.to_rfc3339()).collect();
        assert_eq!(
            shown,
            [
                "2026-11-28T01:00:00+01:00",
                "2026-12-05T01:00:00+01:00",
                "2026-12-12T01:00:00+01:00"
            ]
        );
    }

    #[test]
    fn finds_the_dst_change_inside_an_interval() {
        let berlin: Tz = "Europe/Berlin".parse().expect("tz");
        let change = offset_change(
            berlin,
            utc("2027-03-27T23:00:00Z"),
            utc("2027-03-28T03:00:00Z"),
        )
        .expect("a change");
        assert_eq!(change.shift_minutes, 60);
        assert_eq!(change.at.to_rfc3339(), "2027-03-28T03:00:00+02:00");
        assert!(
            offset_change(
                berlin,
                utc("2027-01-01T00:00:00Z"),
                utc("2027-01-02T00:00:00Z")
            )
            .is_none()
        );
    }

    #[test]
    fn unknown_zones_get_a_suggestion() {
        let (message, hint) = TimeZone::parse("Europe/Berln").expect_err("typo");
        assert_eq!(message, "`Europe/Berln` is not an IANA time zone");
        assert_eq!(hint.as_deref(), Some("did you mean `Europe/Berlin`?"));
    }
}
