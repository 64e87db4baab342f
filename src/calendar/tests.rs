//! Window math against fixed instants: the DST table, window states at every edge, waiting
//! reasons, `fits` and `humanize`.

use super::*;
use crate::runbook::cron::{CronExpr, TimeZone};
use crate::runbook::duration::Duration;
use crate::runbook::model::OnClose;

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("rfc3339")
        .with_timezone(&Utc)
}

fn window(name: &str, cron: &str, tz: &str, duration: &str, cutoff: &str) -> Window {
    Window {
        name: name.to_owned(),
        cron: CronExpr::parse(cron).expect("cron"),
        duration: Duration::parse(duration).expect("duration"),
        timezone: TimeZone::parse(tz).expect("zone"),
        cutoff: Duration::parse(cutoff).expect("cutoff"),
        on_close: OnClose::Pause,
    }
}

/// `opens → closes` in the window's zone, `(dst)` when the occurrence has a DST note.
fn shown(w: &Window, o: &Occurrence) -> String {
    let tz = w.timezone.0;
    format!(
        "{} → {}{}",
        o.opens.with_timezone(&tz).to_rfc3339(),
        o.closes.with_timezone(&tz).to_rfc3339(),
        if o.dst.is_some() { " (dst)" } else { "" }
    )
}

const BERLIN: &str = "Europe/Berlin";
const NEW_YORK: &str = "America/New_York";

/// In 2027 Berlin springs forward on Sun 03-28 at 01:00Z (02:00 CET → 03:00 CEST) and falls
/// back on Sun 10-31 at 01:00Z (03:00 CEST → 02:00 CET); New York springs forward on Sun 03-14
/// at 07:00Z (02:00 EST → 03:00 EDT) and falls back on Sun 11-07 at 06:00Z (02:00 EDT →
/// 01:00 EST).
/// (case, cron, zone, duration, after, occurrences)
type DstRow = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
);

#[rustfmt::skip]
const DST_TABLE: &[DstRow] = &[
    // (case, cron, zone, duration, after, occurrences)
    ("spring-forward Berlin: 02:30 does not exist, opens right after the gap", "30 2 * * *", BERLIN, "1h", "2027-03-27T12:00:00Z",
        &["2027-03-28T03:00:00+02:00 → 2027-03-28T04:00:00+02:00 (dst)", "2027-03-29T02:30:00+02:00 → 2027-03-29T03:30:00+02:00"]),
    ("spring-forward New York: 02:30 does not exist, opens right after the gap", "30 2 * * *", NEW_YORK, "1h", "2027-03-13T12:00:00Z",
        &["2027-03-14T03:00:00-04:00 → 2027-03-14T04:00:00-04:00 (dst)", "2027-03-15T02:30:00-04:00 → 2027-03-15T03:30:00-04:00"]),
    ("spring-forward weekly: the week's window is kept, not lost", "30 2 * * SUN", BERLIN, "4h", "2027-03-20T12:00:00Z",
        &["2027-03-21T02:30:00+01:00 → 2027-03-21T06:30:00+01:00", "2027-03-28T03:00:00+02:00 → 2027-03-28T07:00:00+02:00 (dst)", "2027-04-04T02:30:00+02:00 → 2027-04-04T06:30:00+02:00"]),
    ("fall-back Berlin: 02:30 occurs twice, opens once at the first", "30 2 * * *", BERLIN, "1h", "2027-10-30T12:00:00Z",
        &["2027-10-31T02:30:00+02:00 → 2027-10-31T02:30:00+01:00 (dst)", "2027-11-01T02:30:00+01:00 → 2027-11-01T03:30:00+01:00"]),
    ("fall-back New York: 01:30 occurs twice, opens once at the first", "30 1 * * *", NEW_YORK, "1h", "2027-11-06T12:00:00Z",
        &["2027-11-07T01:30:00-04:00 → 2027-11-07T01:30:00-05:00 (dst)", "2027-11-08T01:30:00-05:00 → 2027-11-08T02:30:00-05:00"]),
    ("fall-back New York, asked during the repeated hour: no second opening", "30 1 * * *", NEW_YORK, "1h", "2027-11-07T06:10:00Z",
        &["2027-11-08T01:30:00-05:00 → 2027-11-08T02:30:00-05:00"]),
    ("window spanning fall-back Berlin: 4 real hours, closes 04:00 not 05:00", "0 1 * * *", BERLIN, "4h", "2027-10-30T12:00:00Z",
        &["2027-10-31T01:00:00+02:00 → 2027-10-31T04:00:00+01:00 (dst)"]),
    ("window spanning fall-back New York: 4 real hours, closes 04:00", "0 1 * * *", NEW_YORK, "4h", "2027-11-06T12:00:00Z",
        &["2027-11-07T01:00:00-04:00 → 2027-11-07T04:00:00-05:00 (dst)"]),
    ("window spanning spring-forward Berlin: 4 real hours, closes 06:00", "0 1 * * *", BERLIN, "4h", "2027-03-27T12:00:00Z",
        &["2027-03-28T01:00:00+01:00 → 2027-03-28T06:00:00+02:00 (dst)"]),
    ("hourly across spring-forward Berlin: every real hour, no 02:00", "0 * * * *", BERLIN, "1h", "2027-03-27T23:30:00Z",
        &["2027-03-28T01:00:00+01:00 → 2027-03-28T03:00:00+02:00 (dst)", "2027-03-28T03:00:00+02:00 → 2027-03-28T04:00:00+02:00", "2027-03-28T04:00:00+02:00 → 2027-03-28T05:00:00+02:00"]),
    ("hourly across fall-back Berlin: every real hour, 02:00 twice", "0 * * * *", BERLIN, "1h", "2027-10-30T22:30:00Z",
        &["2027-10-31T01:00:00+02:00 → 2027-10-31T02:00:00+02:00", "2027-10-31T02:00:00+02:00 → 2027-10-31T02:00:00+01:00 (dst)", "2027-10-31T02:00:00+01:00 → 2027-10-31T03:00:00+01:00", "2027-10-31T03:00:00+01:00 → 2027-10-31T04:00:00+01:00"]),
    ("hourly across spring-forward New York", "@hourly", NEW_YORK, "1h", "2027-03-14T05:30:00Z",
        &["2027-03-14T01:00:00-05:00 → 2027-03-14T03:00:00-04:00 (dst)", "2027-03-14T03:00:00-04:00 → 2027-03-14T04:00:00-04:00"]),
    ("hourly across fall-back New York: 01:00 twice", "0 * * * *", NEW_YORK, "1h", "2027-11-07T04:30:00Z",
        &["2027-11-07T01:00:00-04:00 → 2027-11-07T01:00:00-05:00 (dst)", "2027-11-07T01:00:00-05:00 → 2027-11-07T02:00:00-05:00", "2027-11-07T02:00:00-05:00 → 2027-11-07T03:00:00-05:00"]),
    ("daily 00:30 Berlin is unaffected by the change that night", "30 0 * * *", BERLIN, "1h", "2027-03-27T12:00:00Z",
        &["2027-03-28T00:30:00+01:00 → 2027-03-28T01:30:00+01:00", "2027-03-29T00:30:00+02:00 → 2027-03-29T01:30:00+02:00"]),
    ("crossing midnight: 23:00 + 3h closes 02:00 the next day", "0 23 * * *", "UTC", "3h", "2027-06-01T00:00:00Z",
        &["2027-06-01T23:00:00+00:00 → 2027-06-02T02:00:00+00:00", "2027-06-02T23:00:00+00:00 → 2027-06-03T02:00:00+00:00"]),
    ("crossing midnight into spring-forward Berlin: 3 real hours", "0 23 * * SAT", BERLIN, "3h", "2027-03-27T00:00:00Z",
        &["2027-03-27T23:00:00+01:00 → 2027-03-28T03:00:00+02:00 (dst)"]),
    ("named hours in a list, fall-back New York: 01:00 once", "0 1,13 * * *", NEW_YORK, "1h", "2027-11-06T12:00:00Z",
        &["2027-11-06T13:00:00-04:00 → 2027-11-06T14:00:00-04:00", "2027-11-07T01:00:00-04:00 → 2027-11-07T01:00:00-05:00 (dst)", "2027-11-07T13:00:00-05:00 → 2027-11-07T14:00:00-05:00"]),
    ("named hours in a list, spring-forward Berlin: 02:30 right after the gap", "30 2,14 * * *", BERLIN, "1h", "2027-03-27T12:00:00Z",
        &["2027-03-27T14:30:00+01:00 → 2027-03-27T15:30:00+01:00", "2027-03-28T03:00:00+02:00 → 2027-03-28T04:00:00+02:00 (dst)", "2027-03-28T14:30:00+02:00 → 2027-03-28T15:30:00+02:00"]),
    ("two named times in one gap open once", "0,30 2 * * *", BERLIN, "10m", "2027-03-27T12:00:00Z",
        &["2027-03-28T03:00:00+02:00 → 2027-03-28T03:10:00+02:00 (dst)", "2027-03-29T02:00:00+02:00 → 2027-03-29T02:10:00+02:00"]),
];

#[test]
fn dst_table() {
    let mut failures = Vec::new();
    for (case, cron, tz, duration, after, expected) in DST_TABLE {
        let w = window("w", cron, tz, duration, "0s");
        let got: Vec<String> = openings(&w, utc(after), expected.len())
            .iter()
            .map(|o| shown(&w, o))
            .collect();
        if got != *expected {
            failures.push(format!(
                "{case}:\n  expected {expected:#?}\n  got      {got:#?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn dst_notes_say_what_happens() {
    let shifted = window("w", "30 2 * * *", BERLIN, "1h", "0s");
    let o = &openings(&shifted, utc("2027-03-27T12:00:00Z"), 1)[0];
    assert_eq!(
        o.dst.as_deref(),
        Some(
            "02:30 does not exist on Sun 2027-03-28: clocks go forward 1h at 02:00; the window opens right after, at 03:00 CEST"
        )
    );
    let spanning = window("w", "0 1 * * *", NEW_YORK, "4h", "30m");
    let o = &openings(&spanning, utc("2027-11-06T12:00:00Z"), 1)[0];
    assert_eq!(
        o.dst.as_deref(),
        Some(
            "clocks go back 1h at 02:00 (to 01:00 EST); the window still lasts its full duration in real time"
        )
    );
    assert_eq!(o.last_start, utc("2027-11-07T08:30:00Z"), "03:30 EST");
}

/// A window open for most of a year spans both changes of the year, although its offsets at
/// opening and close are the same: the note names each change, with its day.
#[test]
fn dst_notes_name_every_change_inside_a_long_window() {
    let yearly = window("w", "0 0 1 1 *", BERLIN, "320d", "0s");
    let o = &openings(&yearly, utc("2026-12-31T12:00:00Z"), 1)[0];
    assert_eq!(
        o.dst.as_deref(),
        Some(
            "clocks go forward 1h on Sun 2027-03-28 at 02:00 (to 03:00 CEST), then back 1h on Sun 2027-10-31 at 03:00 (to 02:00 CET); the window still lasts its full duration in real time"
        )
    );
    // Open into the summer: the one change, with its day too.
    let half = window("w", "0 0 1 1 *", BERLIN, "200d", "0s");
    let o = &openings(&half, utc("2026-12-31T12:00:00Z"), 1)[0];
    assert_eq!(
        o.dst.as_deref(),
        Some(
            "clocks go forward 1h on Sun 2027-03-28 at 02:00 (to 03:00 CEST); the window still lasts its full duration in real time"
        )
    );
}

/// Berlin, Saturdays 01:00 CET for 4h, cutoff 30m. On 2027-11-27 it opens at 00:00Z, its
/// cutoff starts at 03:30Z, it closes at 04:00Z; it opens next on 2027-12-04 at 00:00Z.
#[test]
fn window_state_at_every_edge() {
    let w = window("saturday-night", "0 1 * * SAT", BERLIN, "4h", "30m");
    let open = WindowState::Open {
        opened: utc("2027-11-27T00:00:00Z"),
        last_start: utc("2027-11-27T03:30:00Z"),
        closes: utc("2027-11-27T04:00:00Z"),
    };
    let cutoff = WindowState::Cutoff {
        opened: utc("2027-11-27T00:00:00Z"),
        closes: utc("2027-11-27T04:00:00Z"),
        next_opens: utc("2027-12-04T00:00:00Z"),
    };
    let closed_before = WindowState::Closed {
        next_opens: utc("2027-11-27T00:00:00Z"),
    };
    let closed_after = WindowState::Closed {
        next_opens: utc("2027-12-04T00:00:00Z"),
    };
    let table = [
        ("before opening", "2027-11-26T21:46:00Z", &closed_before),
        (
            "a second before opening",
            "2027-11-26T23:59:59Z",
            &closed_before,
        ),
        ("exactly at opening", "2027-11-27T00:00:00Z", &open),
        ("inside, before the cutoff", "2027-11-27T02:00:00Z", &open),
        ("a second before last_start", "2027-11-27T03:29:59Z", &open),
        ("exactly at last_start", "2027-11-27T03:30:00Z", &cutoff),
        ("inside, after the cutoff", "2027-11-27T03:45:00Z", &cutoff),
        ("exactly at close", "2027-11-27T04:00:00Z", &closed_after),
        ("after close", "2027-11-27T05:00:00Z", &closed_after),
    ];
    for (case, now, expected) in table {
        assert_eq!(&window_state(&w, utc(now)), expected, "{case} ({now})");
    }
}

#[test]
fn window_state_across_midnight_and_dst() {
    let late = window("late", "0 23 * * *", "UTC", "3h", "1h");
    assert_eq!(
        window_state(&late, utc("2027-06-02T00:30:00Z")),
        WindowState::Open {
            opened: utc("2027-06-01T23:00:00Z"),
            last_start: utc("2027-06-02T01:00:00Z"),
            closes: utc("2027-06-02T02:00:00Z"),
        },
        "opened yesterday, still open after midnight"
    );
    assert_eq!(
        window_state(&late, utc("2027-06-02T01:30:00Z")),
        WindowState::Cutoff {
            opened: utc("2027-06-01T23:00:00Z"),
            closes: utc("2027-06-02T02:00:00Z"),
            next_opens: utc("2027-06-02T23:00:00Z"),
        }
    );
    // Fall-back night in Berlin: opened 01:00 CEST (23:00Z), closes 04:00 CET (03:00Z).
    let nightly = window("nightly", "0 1 * * *", BERLIN, "4h", "30m");
    assert!(matches!(
        window_state(&nightly, utc("2027-10-31T02:29:59Z")),
        WindowState::Open { .. }
    ));
    assert!(matches!(
        window_state(&nightly, utc("2027-10-31T02:30:00Z")),
        WindowState::Cutoff { .. }
    ));
    // Spring-forward night in Berlin: 02:30 moved to 03:00 CEST (01:00Z).
    let shifted = window("nightly", "30 2 * * *", BERLIN, "1h", "0s");
    assert_eq!(
        window_state(&shifted, utc("2027-03-28T01:00:00Z")),
        WindowState::Open {
            opened: utc("2027-03-28T01:00:00Z"),
            last_start: utc("2027-03-28T02:00:00Z"),
            closes: utc("2027-03-28T02:00:00Z"),
        }
    );
}

#[test]
fn overlapping_occurrences_count_from_the_latest() {
    // `validate` rejects a window longer than its period; should one get here, the latest
    // occurrence is the one that is open.
    let w = window("w", "@hourly", "UTC", "90m", "0s");
    assert_eq!(
        window_state(&w, utc("2027-06-01T01:10:00Z")),
        WindowState::Open {
            opened: utc("2027-06-01T01:00:00Z"),
            last_start: utc("2027-06-01T02:30:00Z"),
            closes: utc("2027-06-01T02:30:00Z"),
        }
    );
}

#[test]
fn waiting_reasons() {
    let w = window("saturday-night", "0 1 * * SAT", BERLIN, "4h", "30m");
    let reason = |now: &str| {
        let now = utc(now);
        waiting_reason(&w, &window_state(&w, now), now)
    };
    assert_eq!(
        reason("2027-11-26T21:46:00Z"),
        "window saturday-night opens Sat 01:00 CET (in 2h14m)"
    );
    assert_eq!(
        reason("2027-11-27T03:45:00Z"),
        "window saturday-night is past its cutoff (closes Sat 05:00 CET); next opens Sat 01:00 CET (in 6d20h)"
    );
    assert_eq!(
        reason("2027-11-27T03:00:00Z"),
        "window saturday-night closes Sat 05:00 CET (in 1h), too soon for this step's estimate (last start Sat 04:30 CET); next opens Sat 01:00 CET (in 6d21h)"
    );
    let monthly = window("month-end", "0 22 28 * *", NEW_YORK, "2h", "0s");
    let now = utc("2027-11-01T12:00:00Z");
    assert_eq!(
        waiting_reason(&monthly, &window_state(&monthly, now), now),
        "window month-end opens Sun 2027-11-28 22:00 EST (in 27d15h)"
    );
    let never = window("feb-30", "0 0 30 2 *", "UTC", "1h", "0s");
    let now = utc("2027-11-01T12:00:00Z");
    let state = window_state(&never, now);
    assert_eq!(state, WindowState::Closed { next_opens: NEVER });
    assert_eq!(
        waiting_reason(&never, &state, now),
        "window feb-30 never opens again"
    );
}

#[test]
fn fits_at_the_edges() {
    let open = WindowState::Open {
        opened: utc("2027-11-27T00:00:00Z"),
        last_start: utc("2027-11-27T03:30:00Z"),
        closes: utc("2027-11-27T04:00:00Z"),
    };
    let min = |m: u64| Some(std::time::Duration::from_secs(m * 60));
    let table = [
        (
            "at opening, no estimate",
            "2027-11-27T00:00:00Z",
            None,
            true,
        ),
        (
            "before opening (a stale state)",
            "2027-11-26T23:59:59Z",
            None,
            false,
        ),
        (
            "a second before last_start",
            "2027-11-27T03:29:59Z",
            None,
            true,
        ),
        ("at last_start", "2027-11-27T03:30:00Z", None, false),
        (
            "finishes exactly at close",
            "2027-11-27T03:00:00Z",
            min(60),
            true,
        ),
        (
            "finishes a second after close",
            "2027-11-27T03:00:01Z",
            min(60),
            false,
        ),
        (
            "a zero estimate before the cutoff",
            "2027-11-27T03:29:59Z",
            min(0),
            true,
        ),
        (
            "longer than the window",
            "2027-11-27T00:00:00Z",
            min(241),
            false,
        ),
        (
            "an absurd estimate",
            "2027-11-27T00:00:00Z",
            Some(std::time::Duration::from_secs(u64::MAX)),
            false,
        ),
    ];
    for (case, now, estimate, expected) in table {
        assert_eq!(fits(&open, utc(now), estimate), expected, "{case}");
    }
    let cutoff = WindowState::Cutoff {
        opened: utc("2027-11-27T00:00:00Z"),
        closes: utc("2027-11-27T04:00:00Z"),
        next_opens: utc("2027-12-04T00:00:00Z"),
    };
    assert!(!fits(&cutoff, utc("2027-11-27T03:45:00Z"), None));
    let closed = WindowState::Closed {
        next_opens: utc("2027-12-04T00:00:00Z"),
    };
    assert!(!fits(&closed, utc("2027-11-28T00:00:00Z"), None));
}

#[test]
fn humanize_keeps_the_two_largest_units() {
    let s = chrono::Duration::seconds;
    let table = [
        (s(2 * 3600 + 14 * 60 + 59), "2h14m"),
        (s(45), "45s"),
        (s(3 * 86_400 + 4 * 3600 + 59), "3d4h"),
        (s(3 * 86_400 + 5 * 60), "3d"),
        (s(3600), "1h"),
        (s(59 * 60 + 59), "59m59s"),
        (s(0), "0s"),
        (chrono::Duration::milliseconds(999), "0s"),
        (s(-300), "-5m"),
        (s(40 * 86_400), "40d"),
    ];
    for (d, expected) in table {
        assert_eq!(humanize(d), expected, "{d:?}");
    }
}
