//! Cron expressions and IANA time zones, as windows and schedules use them.
//!
//! Parsing is croner's, restricted to what SPEC §2 promises: standard 5-field expressions
//! (minute hour day-of-month month day-of-week, POSIX semantics: 0 and 7 are Sunday, a
//! restricted day-of-month OR day-of-week) and the `@hourly`-style macros, plus `L` and `#`
//! in the day fields; [`dialect`] refuses the rest of croner's syntax. Fire times are
//! computed in the zone by [`super::dst`], with cronie's DST rules (see docs/runbooks.md): a
//! named time that falls in a spring-forward gap fires right after the gap, a named time in a
//! fall-back overlap fires once, at its first occurrence, and a rhythm (`*/30`) keeps to real
//! time.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, Deserialize, Deserializer};
use std::borrow::Cow;
use std::fmt;

pub use super::dst::{Fire, Fires, OffsetChange, Period, changes, offset_change};

mod dialect;

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
    /// No `*` in the minute and hour fields: the expression names times of day (`30 2`,
    /// `0 1,13`) rather than a rhythm (`*/30 *`), which decides its DST behaviour.
    names_times: bool,
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

/// Why a cron expression is refused, and what to write instead when there is a better way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronError {
    pub message: String,
    pub hint: Option<String>,
}

impl CronError {
    fn plain(message: String) -> CronError {
        CronError {
            message,
            hint: None,
        }
    }
}

impl fmt::Display for CronError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.message)?;
        match &self.hint {
            Some(hint) => write!(f, " ({hint})"),
            None => Ok(()),
        }
    }
}

impl CronExpr {
    pub fn parse(text: &str) -> Result<CronExpr, CronError> {
        let trimmed = text.trim();
        if trimmed.starts_with('@') {
            if !MACROS.contains(&trimmed.to_ascii_lowercase().as_str()) {
                return Err(CronError::plain(format!(
                    "`{trimmed}` is not a cron macro; use one of {}",
                    MACROS.join(", ")
                )));
            }
        } else {
            let fields: Vec<&str> = trimmed.split_whitespace().collect();
            if fields.len() != 5 {
                return Err(CronError::plain(format!(
                    "`{trimmed}` has {} fields; a cron expression has 5: minute hour day-of-month month day-of-week",
                    fields.len()
                )));
            }
            dialect::check(trimmed, &fields)?;
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
        let cron = parser.parse(pattern).map_err(|e| {
            CronError::plain(format!("`{trimmed}` is not a valid cron expression: {e}"))
        })?;
        let names_times = if trimmed.starts_with('@') {
            !trimmed.eq_ignore_ascii_case("@hourly")
        } else {
            trimmed
                .split_whitespace()
                .take(2)
                .all(|field| !field.contains('*'))
        };
        Ok(CronExpr {
            text: trimmed.to_owned(),
            cron,
            names_times,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// True when the expression names times of day rather than a rhythm (see [`super::dst`]).
    pub fn names_times(&self) -> bool {
        self.names_times
    }

    /// The first fire times strictly after `after`, in `tz`.
    pub fn next_after(&self, tz: Tz, after: DateTime<Utc>, count: usize) -> Vec<DateTime<Tz>> {
        self.fires_after(tz, after)
            .take(count)
            .map(|f| f.at)
            .collect()
    }

    /// Fire times strictly after `after`, in `tz`, with the DST rules of [`super::dst`]; each
    /// says whether it was moved past a spring-forward gap.
    pub fn fires_after(&self, tz: Tz, after: DateTime<Utc>) -> Fires {
        Fires::new(&self.cron, self.names_times, tz, after)
    }

    /// The shortest time between two openings, DST changes included; `None` when the
    /// expression fires less than twice.
    pub fn shortest_period(&self, tz: Tz) -> Option<Period> {
        super::dst::shortest_period(|after| self.fires_after(tz, after), tz)
    }
}

impl<'de> Deserialize<'de> for CronExpr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        CronExpr::parse(&text).map_err(|e| match e.hint {
            Some(hint) => de::Error::custom(format!("{}{}{hint}", e.message, super::node_de::HINT)),
            None => de::Error::custom(e.message),
        })
    }
}

impl JsonSchema for CronExpr {
    fn schema_name() -> Cow<'static, str> {
        "Cron".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A standard 5-field cron expression (minute hour day-of-month month day-of-week; `L` and `#` in the day fields) or @hourly, @daily, @midnight, @weekly, @monthly, @yearly, @annually",
            "examples": ["0 1 * * SAT", "*/30 * * * *", "0 2 * * SATL", "@daily"],
            "pattern": cron_shape(),
        })
    }
}

/// What [`CronExpr::parse`] asks before croner reads the fields: a macro (in any case), or
/// five whitespace-separated fields, the first not starting with `@`. The fields' own
/// grammar (ranges, names, steps) is left to croner.
fn cron_shape() -> String {
    let any_case = |word: &str| -> String {
        word.chars()
            .map(|c| match c {
                'a'..='z' => format!("[{c}{}]", c.to_ascii_uppercase()),
                other => other.to_string(),
            })
            .collect()
    };
    let macros: Vec<String> = MACROS.iter().map(|m| any_case(m)).collect();
    // Five fields of the dialect's characters: numbers, names, `*`, `/`, `-`, `,`, `L`, `#`
    // (so Quartz's `?` and croner's `+` are refused here too; `W` hides in `WED`).
    let field = "[0-9A-Za-z*/,#-]+";
    format!(r"^\s*(({})|{field}(\s+{field}){{4}})\s*$", macros.join("|"))
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
            "enum": chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name()).collect::<Vec<_>>(),
        })
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
        assert!(six.message.contains("has 6 fields"), "{six}");
        let bad = CronExpr::parse("61 * * * *").expect_err("minute 61");
        assert!(bad.message.contains("not a valid cron expression"), "{bad}");
        let mac = CronExpr::parse("@fortnightly").expect_err("macro");
        assert!(mac.message.contains("not a cron macro"), "{mac}");
    }

    /// The first `count` fire times after `after` in UTC, as RFC 3339.
    fn fires(cron: &str, after: &str, count: usize) -> Vec<String> {
        CronExpr::parse(cron)
            .unwrap_or_else(|e| panic!("{cron}: {e}"))
            .next_after(Tz::UTC, utc(after), count)
            .iter()
            .map(|t| t.to_rfc3339())
            .collect()
    }

    /// The message and hint of a refused expression.
    fn refused(cron: &str) -> (String, String) {
        let e = CronExpr::parse(cron).expect_err(cron);
        (e.message, e.hint.unwrap_or_default())
    }

    #[test]
    fn l_is_the_last_day_or_the_last_weekday_of_the_month() {
        let after = "2026-01-01T00:00:00Z";
        assert_eq!(
            fires("0 2 L * *", after, 2),
            ["2026-01-31T02:00:00+00:00", "2026-02-28T02:00:00+00:00"]
        );
        // The last Saturday, by name or number, and lower case as well.
        let last_saturday = ["2026-01-31T02:00:00+00:00", "2026-02-28T02:00:00+00:00"];
        for cron in ["0 2 * * SATL", "0 2 * * 6L", "0 2 * * satl"] {
            assert_eq!(fires(cron, after, 2), last_saturday, "{cron}");
        }
        assert_eq!(
            fires("0 2 * * FRIL", "2026-03-01T00:00:00Z", 1),
            ["2026-03-27T02:00:00+00:00"]
        );
        // Both restricted: either matches (the last Saturday, the last day).
        assert_eq!(
            fires("0 2 L * SATL", "2026-03-01T00:00:00Z", 2),
            ["2026-03-28T02:00:00+00:00", "2026-03-31T02:00:00+00:00"]
        );
    }

    #[test]
    fn hash_is_the_nth_weekday_of_the_month() {
        assert_eq!(
            fires("0 2 * * SAT#2", "2026-01-01T00:00:00Z", 2),
            ["2026-01-10T02:00:00+00:00", "2026-02-14T02:00:00+00:00"]
        );
        // A fifth Saturday only where a month has one.
        assert_eq!(
            fires("0 2 * * 6#5", "2026-01-01T00:00:00Z", 2),
            ["2026-01-31T02:00:00+00:00", "2026-05-30T02:00:00+00:00"]
        );
        for cron in ["0 2 * * SAT#0", "0 2 * * SAT#6", "0 2 1#1 * *"] {
            let e = CronExpr::parse(cron).expect_err(cron);
            assert!(e.message.contains("not a valid cron expression"), "{e}");
        }
    }

    #[test]
    fn restricted_day_fields_combine_by_either() {
        // The 1st, or a Monday (2026-06-01 is both).
        assert_eq!(
            fires("0 2 1 * MON", "2026-05-24T00:00:00Z", 3),
            [
                "2026-05-25T02:00:00+00:00",
                "2026-06-01T02:00:00+00:00",
                "2026-06-08T02:00:00+00:00"
            ]
        );
        // A spelt-out step is a restriction like any other: odd days, or Mondays.
        assert_eq!(
            fires("0 2 1-31/2 * MON", "2026-06-01T03:00:00Z", 3),
            [
                "2026-06-03T02:00:00+00:00",
                "2026-06-05T02:00:00+00:00",
                "2026-06-07T02:00:00+00:00"
            ]
        );
        assert_eq!(
            fires("0 2 1-31/2 * MON", "2026-06-07T03:00:00Z", 1),
            ["2026-06-08T02:00:00+00:00"]
        );
        // `*/2` beside `*` is unambiguous: every other day of the month.
        assert_eq!(
            fires("0 2 */2 * *", "2026-06-01T03:00:00Z", 1),
            ["2026-06-03T02:00:00+00:00"]
        );
    }

    #[test]
    fn a_stepped_star_beside_a_restricted_day_field_is_refused() {
        let (message, hint) = refused("0 2 */2 * MON");
        assert_eq!(
            message,
            "`0 2 */2 * MON`: `*/2` in the day-of-month field with a day-of-week that is not `*`: crons disagree on how these combine (cronie and Vixie cron fire only when both match, others when either does)"
        );
        assert_eq!(
            hint,
            "sensei fires when either day field matches: write `1-31/2` for that; or leave the day-of-week `*`"
        );
        let (message, hint) = refused("0 2 15 * */2");
        assert!(
            message.contains("`*/2` in the day-of-week field"),
            "{message}"
        );
        assert!(hint.contains("write `0-6/2`"), "{hint}");
    }

    #[test]
    fn plus_question_mark_and_w_are_refused_with_what_to_write() {
        let (message, hint) = refused("0 2 1 * +MON");
        assert!(
            message.contains("a `+` before the day-of-week"),
            "{message}"
        );
        assert!(hint.starts_with("drop the `+`"), "{hint}");
        let (message, hint) = refused("0 2 ? * MON");
        assert!(
            message.contains("`?` in the day-of-month field"),
            "{message}"
        );
        assert!(hint.starts_with("write `*`"), "{hint}");
        for cron in ["0 2 15W * *", "0 2 LW * *"] {
            let (message, _) = refused(cron);
            assert!(
                message.contains("`W` (the weekday nearest a day)"),
                "{message}"
            );
        }
    }

    #[test]
    fn l_and_names_are_refused_where_they_mean_nothing_or_something_else() {
        let (message, hint) = refused("0 2 * * L");
        assert!(
            message.contains("`L` alone in the day-of-week field"),
            "{message}"
        );
        assert!(hint.contains("`SATL`"), "{hint}");
        let (message, _) = refused("0 2 L-3 * *");
        assert!(message.contains("there `L` stands alone"), "{message}");
        // croner would read `MON` in the month field as January, `JAN` as Monday.
        let (message, hint) = refused("0 2 * MON *");
        assert!(
            message.contains("`MON` is not a value of the month field"),
            "{message}"
        );
        assert!(
            hint.starts_with("months are numbers from 1 to 12"),
            "{hint}"
        );
        let (message, _) = refused("0 2 * * JAN");
        assert!(
            message.contains("`JAN` is not a value of the day-of-week field"),
            "{message}"
        );
        let (message, _) = refused("0 MON * * *");
        assert!(
            message.contains("`MON` is not a value of the hour field"),
            "{message}"
        );
        let (message, _) = refused("0 2 * * MONDAY");
        assert!(message.contains("`MONDAY` is not a value"), "{message}");
        // Names where they belong are kept.
        assert!(CronExpr::parse("0 2 * JAN-MAR MON-FRI").is_ok());
        assert!(CronExpr::parse("0 2 * * MON-SUN").is_ok());
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
    fn unknown_zones_get_a_suggestion() {
        let (message, hint) = TimeZone::parse("Europe/Berln").expect_err("typo");
        assert_eq!(message, "`Europe/Berln` is not an IANA time zone");
        assert_eq!(hint.as_deref(), Some("did you mean `Europe/Berlin`?"));
    }
}
