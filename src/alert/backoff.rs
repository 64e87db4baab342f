//! When a delivery is tried again: exponential backoff with jitter (`alerts.backoff`
//! doubling up to `alerts.max_backoff`, each delay drawn between half and all of it), never
//! sooner than the receiver's `Retry-After`, until `alerts.retry_for` after the event.

use super::send::Failure;
use crate::config::AlertSettings;
use crate::store::Delivery;
use chrono::{DateTime, Utc};

/// When to try a delivery again after a transient failure at `now`; `None` once past
/// `retry_for` after the delivery was created (the last attempt is made at that deadline).
pub(super) fn retry_at(
    s: &AlertSettings,
    d: &Delivery,
    f: &Failure,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let deadline = d.created_at + chrono::Duration::from_std(s.retry_for.as_std()).ok()?;
    if now >= deadline {
        return None;
    }
    // `d.attempts` attempts failed before this one: the delay doubles with each.
    let full = s
        .backoff
        .as_std()
        .saturating_mul(1u32 << d.attempts.min(20))
        .min(s.max_backoff.as_std());
    let mut delay = full.mul_f64(0.5 + fastrand::f64() / 2.0);
    if let Some(wait) = f.retry_after {
        delay = delay.max(wait);
    }
    let at = now + chrono::Duration::from_std(delay).ok()?;
    Some(at.min(deadline))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::event::{MigrationId, MigrationState};
    use crate::runbook::duration::Duration as Dur;
    use crate::store::{DeliveryKind, DeliveryState};
    use std::time::Duration;

    fn delivery(attempts: u32, created: DateTime<Utc>) -> Delivery {
        Delivery {
            id: 1,
            migration: MigrationId::from("m-1".to_owned()),
            event_seq: 1,
            event: "failed".into(),
            step: None,
            migration_state: MigrationState::Failed,
            channel: "c".into(),
            kind: DeliveryKind::Webhook,
            state: DeliveryState::Pending,
            attempts,
            next_attempt_at: None,
            last_error: None,
            message: None,
            created_at: created,
            updated_at: created,
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap_and_stops_at_retry_for() {
        let s = AlertSettings {
            backoff: Dur::from_secs(10),
            max_backoff: Dur::from_secs(60),
            retry_for: Dur::from_secs(3600),
            ..AlertSettings::default()
        };
        let t0 = Utc::now();
        let f = Failure::transient("503");
        for (attempts, full) in [(0, 10), (1, 20), (2, 40), (3, 60), (10, 60)] {
            for _ in 0..20 {
                let at = retry_at(&s, &delivery(attempts, t0), &f, t0).unwrap();
                let ms = (at - t0).num_milliseconds();
                assert!(ms >= full * 500 && ms <= full * 1000, "{attempts}: {ms}");
            }
        }
        // Close to the deadline the last attempt is at the deadline, and after it none.
        let late = t0 + chrono::Duration::seconds(3595);
        let at = retry_at(&s, &delivery(9, t0), &f, late).unwrap();
        assert_eq!(at, t0 + chrono::Duration::seconds(3600));
        assert_eq!(retry_at(&s, &delivery(10, t0), &f, at), None);
    }

    #[test]
    fn retry_after_is_never_undercut() {
        let s = AlertSettings::default();
        let t0 = Utc::now();
        let mut f = Failure::transient("429");
        f.retry_after = Some(Duration::from_secs(300));
        let at = retry_at(&s, &delivery(0, t0), &f, t0).unwrap();
        assert_eq!((at - t0).num_seconds(), 300);
    }
}
