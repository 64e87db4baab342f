//! The planner with explicit instants: no clock, no store.

#![allow(clippy::unwrap_used)]
use super::*;
use crate::runbook::cron::{CronExpr, TimeZone};
use chrono_tz::Tz;

fn schedule(cron: &str, tz: &str, catch_up: CatchUp) -> Schedule {
    Schedule {
        cron: CronExpr::parse(cron).unwrap(),
        timezone: TimeZone::parse(tz).unwrap(),
        params: Vec::new(),
        overlap: Overlap::Skip,
        catch_up,
    }
}

fn t(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

fn ts(texts: &[&str]) -> Vec<DateTime<Utc>> {
    texts.iter().map(|s| t(s)).collect()
}

fn local(at: DateTime<Utc>) -> String {
    at.with_timezone(&Tz::Europe__Berlin)
        .format("%H:%M %Z")
        .to_string()
}

#[test]
fn every_minute_fires_once_a_minute_boundary_is_reached() {
    let s = schedule("* * * * *", "UTC", CatchUp::Latest);
    let last = t("2026-05-01T12:00:00Z");
    assert_eq!(
        Due::live(&s, last, t("2026-05-01T12:00:59Z")),
        Due::default()
    );
    assert_eq!(
        Due::live(&s, last, t("2026-05-01T12:01:00Z")).fires,
        ts(&["2026-05-01T12:01:00Z"])
    );
    // A stalled loop still sees every fire time it passed, oldest first.
    assert_eq!(
        Due::live(&s, t("2026-05-01T12:00:58Z"), t("2026-05-01T12:03:01Z")).fires,
        ts(&[
            "2026-05-01T12:01:00Z",
            "2026-05-01T12:02:00Z",
            "2026-05-01T12:03:00Z"
        ])
    );
    assert_eq!(
        next_fire(&s, t("2026-05-01T11:59:58Z")),
        Some(t("2026-05-01T12:00:00Z"))
    );
}

#[test]
fn hourly_in_berlin_keeps_to_real_hours_across_both_dst_changes() {
    let s = schedule("0 * * * *", "Europe/Berlin", CatchUp::All);
    // Spring forward, 2026-03-29 02:00 CET -> 03:00 CEST: no hour is lost.
    let spring = Due::live(&s, t("2026-03-28T23:30:00Z"), t("2026-03-29T02:30:00Z"));
    assert_eq!(
        spring.fires,
        ts(&[
            "2026-03-29T00:00:00Z",
            "2026-03-29T01:00:00Z",
            "2026-03-29T02:00:00Z"
        ])
    );
    let seen: Vec<String> = spring.fires.into_iter().map(local).collect();
    assert_eq!(seen, ["01:00 CET", "03:00 CEST", "04:00 CEST"]);
    // Fall back, 2026-10-25 03:00 CEST -> 02:00 CET: 02:00 is seen twice, an hour apart.
    let fall = Due::live(&s, t("2026-10-24T23:30:00Z"), t("2026-10-25T02:30:00Z"));
    assert_eq!(
        fall.fires,
        ts(&[
            "2026-10-25T00:00:00Z",
            "2026-10-25T01:00:00Z",
            "2026-10-25T02:00:00Z"
        ])
    );
    let seen: Vec<String> = fall.fires.into_iter().map(local).collect();
    assert_eq!(seen, ["02:00 CEST", "02:00 CET", "03:00 CET"]);
}

#[test]
fn a_named_time_in_berlin_fires_once_on_dst_days() {
    let s = schedule("30 2 * * *", "Europe/Berlin", CatchUp::All);
    // 02:30 does not exist on 2026-03-29: it fires right after the gap, 03:00 CEST.
    let spring = Due::live(&s, t("2026-03-28T12:00:00Z"), t("2026-03-29T12:00:00Z"));
    assert_eq!(spring.fires, ts(&["2026-03-29T01:00:00Z"]));
    // 02:30 happens twice on 2026-10-25: it fires once, at the first (CEST).
    let fall = Due::live(&s, t("2026-10-24T12:00:00Z"), t("2026-10-25T12:00:00Z"));
    assert_eq!(fall.fires, ts(&["2026-10-25T00:30:00Z"]));
}

#[test]
fn catch_up_decides_what_was_missed_while_down() {
    // Last fired at 10:00, down until 11:05: 10:10 ... 11:00 were missed (6).
    let (last, now) = (t("2026-05-01T10:00:00Z"), t("2026-05-01T11:05:00Z"));
    let none = Due::after_downtime(&schedule("*/10 * * * *", "UTC", CatchUp::None), last, now);
    assert_eq!(
        none,
        Due {
            fires: Vec::new(),
            dropped: 6
        }
    );
    let latest = Due::after_downtime(&schedule("*/10 * * * *", "UTC", CatchUp::Latest), last, now);
    assert_eq!(
        latest,
        Due {
            fires: ts(&["2026-05-01T11:00:00Z"]),
            dropped: 5
        }
    );
    let all = Due::after_downtime(&schedule("*/10 * * * *", "UTC", CatchUp::All), last, now);
    assert_eq!(all.dropped, 0);
    assert_eq!(
        all.fires,
        ts(&[
            "2026-05-01T10:10:00Z",
            "2026-05-01T10:20:00Z",
            "2026-05-01T10:30:00Z",
            "2026-05-01T10:40:00Z",
            "2026-05-01T10:50:00Z",
            "2026-05-01T11:00:00Z",
        ])
    );
    // Nothing missed: nothing due, whatever catch_up says.
    for c in [CatchUp::None, CatchUp::Latest, CatchUp::All] {
        let s = schedule("*/10 * * * *", "UTC", c);
        assert_eq!(
            Due::after_downtime(&s, last, t("2026-05-01T10:09:59Z")),
            Due::default()
        );
    }
}

#[test]
fn catch_up_all_keeps_the_most_recent_hundred() {
    let s = schedule("* * * * *", "UTC", CatchUp::All);
    let due = Due::after_downtime(&s, t("2026-05-01T09:00:00Z"), t("2026-05-01T12:00:30Z"));
    assert_eq!(due.fires.len(), CATCH_UP_LIMIT);
    assert_eq!(due.dropped, 80);
    assert_eq!(due.fires.first(), Some(&t("2026-05-01T10:21:00Z")));
    assert_eq!(due.fires.last(), Some(&t("2026-05-01T12:00:00Z")));
    assert!(due.fires.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn overlap_skips_queues_or_allows_when_an_earlier_one_is_active() {
    for overlap in [Overlap::Skip, Overlap::Queue, Overlap::Allow] {
        assert_eq!(on_fire(overlap, false), Action::Start);
    }
    assert_eq!(on_fire(Overlap::Skip, true), Action::Skip);
    assert_eq!(on_fire(Overlap::Queue, true), Action::Queue);
    assert_eq!(on_fire(Overlap::Allow, true), Action::Start);
}

#[test]
fn a_queue_starts_its_oldest_waiting_migration_once_none_is_driven() {
    use Stage::{Driven, Resting, Waiting};
    assert_eq!(
        queued(Overlap::Queue, &[Resting, Driven, Waiting, Waiting]),
        Vec::<usize>::new()
    );
    assert_eq!(
        queued(Overlap::Queue, &[Resting, Resting, Waiting, Waiting]),
        vec![2]
    );
    assert_eq!(queued(Overlap::Queue, &[Resting]), Vec::<usize>::new());
    // Without a queue, a migration created but never started (a crash between the two) is
    // started at the next pass.
    assert_eq!(
        queued(Overlap::Allow, &[Driven, Waiting, Waiting]),
        vec![1, 2]
    );
    assert_eq!(queued(Overlap::Skip, &[Resting, Waiting]), vec![1]);
}
