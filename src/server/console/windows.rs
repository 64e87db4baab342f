//! The migration page's windows, in words, rendered here on the server's clock (the drivers'
//! clock, so a `SENSEI_NOW` rehearsal shows what its engine sees): open or closed, "opens Sat
//! 01:00 CET (in 2h14m)" in the window's own zone, the cutoff, and what `on_close` does. Every
//! instant and duration comes from [`crate::calendar`], the code the engine asks.
//!
//! Relative times are `<time data-rel datetime=...>` elements: `windows.js` keeps them
//! current each second and asks for this section again when one of them passes, since the
//! window's state then changed.

use super::html::escape;
use crate::calendar::{self, NEVER, WindowState};
use crate::runbook::model::{Runbook, Window};
use chrono::{DateTime, SecondsFormat, Utc};

/// `Sat 01:00 CET (in 2h14m)`, the relative part live.
fn at(t: DateTime<Utc>, now: DateTime<Utc>, window: &Window) -> String {
    let rel = if t > now {
        format!("in {}", calendar::humanize(t - now))
    } else {
        format!("{} ago", calendar::humanize(now - t))
    };
    format!(
        "<strong>{}</strong> (<time data-rel datetime=\"{}\">{rel}</time>)",
        escape(&calendar::when(t, now, window.timezone.0)),
        t.to_rfc3339_opts(SecondsFormat::Millis, true),
    )
}

/// The state line: badge class, badge text, sentence.
fn state_line(w: &Window, now: DateTime<Utc>) -> (&'static str, &'static str, String) {
    let next = |t: DateTime<Utc>| {
        if t == NEVER {
            "it never opens again".to_owned()
        } else {
            format!("opens {}", at(t, now, w))
        }
    };
    match calendar::window_state(w, now) {
        WindowState::Closed { next_opens } => (
            "st-pending",
            "closed",
            format!("Closed: {}.", next(next_opens)),
        ),
        WindowState::Open {
            opened,
            last_start,
            closes,
        } => (
            "st-succeeded",
            "open",
            format!(
                "Open since {}: bound steps may start until {}; closes {}.",
                at(opened, now, w),
                at(last_start, now, w),
                at(closes, now, w)
            ),
        ),
        WindowState::Cutoff {
            closes, next_opens, ..
        } => (
            "st-waiting",
            "past its cutoff",
            format!(
                "Open, past its cutoff: no bound step may start now; closes {}. Next {}.",
                at(closes, now, w),
                next(next_opens)
            ),
        ),
    }
}

/// The cutoff, with the last start of the occurrence that matters now (the open one, or
/// the next): the occurrence opening at `opened` is the first after the instant before it.
fn cutoff_line(w: &Window, now: DateTime<Utc>) -> String {
    let from = match calendar::window_state(w, now) {
        WindowState::Open { opened, .. } | WindowState::Cutoff { opened, .. } => {
            opened - chrono::Duration::milliseconds(1)
        }
        WindowState::Closed { .. } => now,
    };
    let occurrence = calendar::openings(w, from, 1)
        .first()
        .map(|o| (o.last_start, o.closes));
    let rule = if w.cutoff.is_zero() {
        "none: bound steps may start until the window closes".to_owned()
    } else {
        format!(
            "{}: no bound step starts in the last {} before the window closes",
            w.cutoff, w.cutoff
        )
    };
    match occurrence {
        Some((last_start, closes)) => format!(
            "{rule} (this time: last start {}, closes {})",
            escape(&calendar::when(last_start, now, w.timezone.0)),
            escape(&calendar::when(closes, now, w.timezone.0)),
        ),
        None => rule,
    }
}

/// The windows section of a migration's page at `now`.
pub fn section(runbook: &Runbook, now: DateTime<Utc>) -> String {
    if runbook.windows.is_empty() {
        return "<p>This runbook has no windows.</p>".to_owned();
    }
    let mut out = String::new();
    for w in &runbook.windows {
        let (class, badge, line) = state_line(w, now);
        let bound: Vec<&str> = runbook
            .steps
            .iter()
            .filter(|s| s.window.as_deref() == Some(w.name.as_str()))
            .map(|s| s.id.as_str())
            .collect();
        let bound = if bound.is_empty() {
            "none".to_owned()
        } else {
            escape(&bound.join(", "))
        };
        let dst = calendar::openings(w, now, 1)
            .into_iter()
            .next()
            .and_then(|o| o.dst)
            .map(|note| format!("<dt>Clocks</dt><dd>{}</dd>", escape(&note)))
            .unwrap_or_default();
        out.push_str(&format!(
            r#"<div class="window" data-window="{name}">
<h3>{name} <span class="badge {class}">{badge}</span></h3>
<p class="window-state">{line}</p>
<dl class="kv">
<dt>Opens</dt><dd>cron <code>{cron}</code> in {zone}, for {duration}</dd>
<dt>Cutoff</dt><dd>{cutoff}</dd>
<dt>On close</dt><dd><code>{on_close}</code>: if bound work is left when it closes, {explain}. A close never stops a running step.</dd>
<dt>Bound steps</dt><dd>{bound}</dd>
{dst}</dl>
</div>
"#,
            name = escape(&w.name),
            cron = escape(w.cron.as_str()),
            zone = escape(w.timezone.name()),
            duration = w.duration,
            cutoff = cutoff_line(w, now),
            on_close = w.on_close.as_str(),
            explain = w.on_close.explain(),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runbook(window: &str) -> Runbook {
        let text = format!(
            "version: 1\nname: w\nwindows:\n{window}steps:\n  - id: copy\n    window: night\n    run: echo\n"
        );
        crate::runbook::load_bytes("w.yaml", text.as_bytes())
            .runbook
            .expect("a valid runbook")
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("a time")
            .with_timezone(&Utc)
    }

    const PARIS: &str = "  night: { cron: \"0 1 * * 6\", duration: 4h, timezone: Europe/Paris, cutoff: 30m, on_close: rollback }\n";

    #[test]
    fn a_closed_window_says_when_it_opens_in_its_zone_and_in_how_long() {
        // Friday 2027-03-05 22:46 UTC is 23:46 CET: the window opens Sat 01:00 CET.
        let html = section(&runbook(PARIS), at("2027-03-05T22:46:00Z"));
        assert!(html.contains(">closed</span>"), "{html}");
        assert!(
            html.contains("Closed: opens <strong>Sat 01:00 CET</strong> (<time data-rel datetime=\"2027-03-06T00:00:00.000Z\">in 1h14m</time>)."),
            "{html}"
        );
        assert!(
            html.contains("30m: no bound step starts in the last 30m before the window closes (this time: last start Sat 04:30 CET, closes Sat 05:00 CET)"),
            "{html}"
        );
        assert!(
            html.contains("the steps that succeeded are rolled back and the migration fails"),
            "{html}"
        );
        assert!(html.contains("<dd>copy</dd>"), "{html}");
    }

    #[test]
    fn an_open_window_says_until_when_steps_may_start_and_when_it_closes() {
        let html = section(&runbook(PARIS), at("2027-03-06T01:00:00Z"));
        assert!(html.contains(">open</span>"), "{html}");
        assert!(html.contains("Open since <strong>Sat 01:00 CET</strong> (<time data-rel datetime=\"2027-03-06T00:00:00.000Z\">1h ago</time>)"), "{html}");
        assert!(html.contains("may start until <strong>Sat 04:30 CET</strong> (<time data-rel datetime=\"2027-03-06T03:30:00.000Z\">in 2h30m</time>)"), "{html}");
        let late = section(&runbook(PARIS), at("2027-03-06T03:45:00Z"));
        assert!(late.contains(">past its cutoff</span>"), "{late}");
        assert!(late.contains("closes <strong>Sat 05:00 CET</strong> (<time data-rel datetime=\"2027-03-06T04:00:00.000Z\">in 15m</time>). Next opens <strong>Sat 01:00 CET</strong> (<time data-rel datetime=\"2027-03-13T00:00:00.000Z\">in 6d20h</time>)."), "{late}");
    }

    #[test]
    fn a_runbook_without_windows_says_so() {
        let r = crate::runbook::load_bytes(
            "n.yaml",
            b"version: 1\nname: n\nsteps:\n  - id: a\n    run: echo\n",
        )
        .runbook
        .expect("valid");
        assert_eq!(
            section(&r, Utc::now()),
            "<p>This runbook has no windows.</p>"
        );
    }
}
