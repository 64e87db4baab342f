//! Log lines: fire-and-forget, ordered, flushed, and written soon without a flush, on each
//! backend (`pg::each`); riding along with commits is SQLite's own.

use super::*;
use std::time::{Duration, Instant};

fn line(step: &str, n: usize) -> NewLogLine {
    NewLogLine {
        step: step.to_owned(),
        attempt: 1,
        stream: if n.is_multiple_of(2) {
            LogStream::Stdout
        } else {
            LogStream::Stderr
        },
        at: at(n as i64),
        text: format!("{step} line {n}"),
    }
}

#[test]
fn lines_keep_their_order_and_flush_waits_for_them() {
    for (store, _fresh) in pg::each() {
        let m = create(&store, "m-aaaa00000001");
        for n in 0..1000_usize {
            store.log(&m, line(if n.is_multiple_of(3) { "a" } else { "b" }, n));
        }
        store.flush().unwrap();
        let all = store.logs(&m, None).unwrap();
        assert_eq!(all.len(), 1000);
        assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
        let texts: Vec<_> = all.iter().map(|l| l.text.clone()).collect();
        let expected: Vec<_> = (0..1000)
            .map(|n: usize| format!("{} line {n}", if n.is_multiple_of(3) { "a" } else { "b" }))
            .collect();
        assert_eq!(texts, expected);

        let a = store.logs(&m, Some("a")).unwrap();
        assert_eq!(a.len(), 334);
        assert!(a.iter().all(|l| l.step == "a"));
        assert_eq!(a[1].text, "a line 3");
        assert_eq!(a[1].stream, LogStream::Stderr);
        assert_eq!(a[1].at, at(3));
        assert_eq!(a[1].attempt, 1);
        assert_eq!(store.lost_log_lines(), 0);
    }
}

#[test]
fn lines_are_written_soon_without_a_flush() {
    for (store, _fresh) in pg::each() {
        let m = create(&store, "m-aaaa00000001");
        store.log(&m, line("a", 0));
        let start = Instant::now();
        while store.logs(&m, None).unwrap().is_empty() {
            assert!(
                start.elapsed() < Duration::from_secs(2),
                "the line was not written"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// SQLite's own: its group commit (PostgreSQL writes lines on their own, in order).
#[test]
fn lines_ride_along_with_commits() {
    let (_dir, store) = store();
    let m = create(&store, "m-aaaa00000001");
    let (tx0, _) = store.write_stats();
    for n in 0..10 {
        store.log(&m, line("a", n));
    }
    store.commit(&m, Batch::default()).unwrap();
    assert_eq!(store.logs(&m, None).unwrap().len(), 10);
    let (tx1, _) = store.write_stats();
    assert!(tx1 - tx0 <= 2, "{} transactions", tx1 - tx0);
}

#[test]
fn a_line_for_an_unknown_migration_is_counted_as_lost() {
    for (store, _fresh) in pg::each() {
        let m = create(&store, "m-aaaa00000001");
        store.log(&id("m-nope"), line("a", 0));
        store.log(&m, line("a", 1));
        store.flush().unwrap();
        assert_eq!(store.lost_log_lines(), 1);
        assert_eq!(
            store.logs(&m, None).unwrap().len(),
            1,
            "its neighbour is kept"
        );
    }
}

/// A driver's lines are written only while its lease holds: once another process has taken
/// the migration over, what the old driver still queues (a server woken after a pause) is
/// dropped, on every backend.
#[test]
fn a_driver_that_lost_its_lease_writes_no_more_lines() {
    for (store, _fresh) in pg::each() {
        let m = create(&store, "m-aaaa00000001");
        let ttl = std::time::Duration::from_secs(30);
        let old = store.acquire_lease(&m, ttl).unwrap();
        store.fenced_by(&old).log(&m, line("a", 0));
        store.flush().unwrap();
        assert_eq!(store.logs(&m, None).unwrap().len(), 1);

        store.release_lease(&old).unwrap();
        let new = store.acquire_lease(&m, ttl).unwrap();
        store.fenced_by(&old).log(&m, line("a", 1));
        store.fenced_by(&new).log(&m, line("a", 2));
        store.flush().unwrap();
        let texts: Vec<_> = store
            .logs(&m, None)
            .unwrap()
            .into_iter()
            .map(|l| l.text)
            .collect();
        assert_eq!(texts, ["a line 0", "a line 2"]);
    }
}
