//! Sensei's cron dialect: what it keeps of croner's syntax and what it refuses, and why
//! (docs/runbooks.md, "Cron expressions", has the table).
//!
//! croner reads more than the documented rule: Quartz's `?` and `W`, a `+` before the
//! day-of-week that turns "either day field matches" into "both must", month and weekday
//! names in any field (`0 1 * MON *` would run in January). Those are refused here, before
//! croner sees the text, each with what to write instead. Kept beyond POSIX: `L` (the last
//! day of the month, or with a weekday the last such weekday) and `#` (the nth weekday of the
//! month), which say "the last Saturday of the month" as nothing else can.
//!
//! The two day fields: when both are restricted, a day matches if either does. A field that
//! starts with `*` but is not `*` alone (`*/2`) is where crons disagree: Vixie cron and
//! cronie count it as unrestricted (both fields must then match), croner as restricted
//! (either). With the other day field restricted it is refused, and the hint spells the
//! range out (`1-31/2`), which every cron reads the same way.

use super::CronError;

const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];

/// The five fields, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Minute,
    Hour,
    DayOfMonth,
    Month,
    DayOfWeek,
}

impl Field {
    const ALL: [Field; 5] = [
        Field::Minute,
        Field::Hour,
        Field::DayOfMonth,
        Field::Month,
        Field::DayOfWeek,
    ];

    fn name(self) -> &'static str {
        match self {
            Field::Minute => "minute",
            Field::Hour => "hour",
            Field::DayOfMonth => "day-of-month",
            Field::Month => "month",
            Field::DayOfWeek => "day-of-week",
        }
    }

    /// What the field's values are.
    fn values(self) -> &'static str {
        match self {
            Field::Minute => "minutes are numbers from 0 to 59",
            Field::Hour => "hours are numbers from 0 to 23",
            Field::DayOfMonth => "days of the month are numbers from 1 to 31, or `L` for the last",
            Field::Month => "months are numbers from 1 to 12, or JAN to DEC",
            Field::DayOfWeek => {
                "days of the week are numbers from 0 to 7 (0 and 7 are Sunday) or SUN to SAT, with `#n` for the nth of the month (`SAT#2`) or `L` for the last (`SATL`)"
            }
        }
    }

    /// Whether a run of letters is one of this field's words.
    fn knows(self, word: &str) -> bool {
        match self {
            Field::Minute | Field::Hour => false,
            Field::DayOfMonth => word == "L",
            Field::Month => MONTHS.contains(&word),
            // `L` after a number (`6L`) is a run of its own.
            Field::DayOfWeek => {
                let weekday = word.strip_suffix('L').unwrap_or(word);
                weekday.is_empty() || WEEKDAYS.contains(&weekday)
            }
        }
    }

    /// The field's whole range, what `*` stands for.
    fn range(self) -> &'static str {
        match self {
            Field::DayOfMonth => "1-31",
            Field::DayOfWeek => "0-6",
            Field::Minute => "0-59",
            Field::Hour => "0-23",
            Field::Month => "1-12",
        }
    }
}

/// Refuses what sensei's dialect leaves out of the five fields of `expr`.
pub fn check(expr: &str, fields: &[&str]) -> Result<(), CronError> {
    let refuse = |message: String, hint: String| {
        Err(CronError {
            message: format!("`{expr}`: {message}"),
            hint: Some(hint),
        })
    };
    for (field, text) in Field::ALL.into_iter().zip(fields) {
        let text = text.to_ascii_uppercase();
        if text.contains('?') {
            return refuse(
                format!(
                    "`?` in the {} field is Quartz's \"no specific value\", not part of sensei's cron",
                    field.name()
                ),
                "write `*`: with `*` in one day field, the other one decides".into(),
            );
        }
        if field == Field::DayOfWeek && text.starts_with('+') {
            return refuse(
                "a `+` before the day-of-week (\"both day fields must match\") is not part of sensei's cron, whose rule is that either day field matches".into(),
                "drop the `+` to fire when either day field matches; for one weekday of the month write `SAT#1` (the first Saturday) or `SATL` (the last)".into(),
            );
        }
        for element in text.split(',') {
            if let Some((message, hint)) = day_element(field, element) {
                return refuse(message, hint.into());
            }
        }
        for word in words(&text) {
            if !field.knows(word) {
                return refuse(
                    format!("`{word}` is not a value of the {} field", field.name()),
                    format!(
                        "{}; month names go in the 4th field and weekday names in the 5th",
                        field.values()
                    ),
                );
            }
        }
    }
    star_step_beside_restricted_days(fields).map_or(Ok(()), |(field, other, text)| {
        refuse(
            format!("`{text}` in the {} field with a {} that is not `*`: crons disagree on how these combine (cronie and Vixie cron fire only when both match, others when either does)", field.name(), other.name()),
            format!(
                "sensei fires when either day field matches: write `{}` for that; or leave the {} `*`",
                text.replacen('*', field.range(), 1),
                other.name()
            ),
        )
    })
}

/// What is refused in one element of a day field's list: `W`, `L` with more than itself in
/// the day of the month, `L` with no weekday in the day of the week.
fn day_element(field: Field, element: &str) -> Option<(String, &'static str)> {
    // Only the letters `L` and `W` are these features (`WED` and `JUL` are names).
    let letters: String = element.chars().filter(char::is_ascii_alphabetic).collect();
    match field {
        Field::DayOfMonth if letters == "W" || letters == "LW" => Some((
            format!(
                "`{element}` in the day-of-month field: `W` (the weekday nearest a day) is Quartz's, not part of sensei's cron"
            ),
            "name the day (`15`), or a weekday of the month in the day-of-week field (`MON#3`, `FRIL`) with `*` as the day of the month",
        )),
        Field::DayOfMonth if letters == "L" && element != "L" => Some((
            format!(
                "`{element}` in the day-of-month field: there `L` stands alone, for the last day of the month"
            ),
            "write `L` for the last day; for the last of a weekday write it in the day-of-week field (`FRIL` is the last Friday)",
        )),
        Field::DayOfWeek if element == "L" => Some((
            "`L` alone in the day-of-week field names no weekday".to_owned(),
            "put the weekday before it: `SATL` or `6L` is the last Saturday of the month",
        )),
        _ => None,
    }
}

/// The runs of letters in a field (`SAT#2` has `SAT`, `FRIL` is one run).
fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| !w.is_empty())
}

/// A day field that starts with `*` without being `*` (`*/2`) while the other day field is
/// restricted: the field, the other one, and its text.
fn star_step_beside_restricted_days(fields: &[&str]) -> Option<(Field, Field, String)> {
    let (dom, dow) = (*fields.get(2)?, *fields.get(4)?);
    let stepped = |f: &str| f.starts_with('*') && f != "*";
    if stepped(dom) && dow != "*" {
        return Some((Field::DayOfMonth, Field::DayOfWeek, dom.to_owned()));
    }
    if stepped(dow) && dom != "*" {
        return Some((Field::DayOfWeek, Field::DayOfMonth, dow.to_owned()));
    }
    None
}
