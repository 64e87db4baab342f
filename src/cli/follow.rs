//! `--follow` (`-f`) for `status`, `events` and `logs`: what they read and wait on, and when
//! a followed migration rests.
//!
//! A command reads through a [`Feed`] — the local store ([`LocalFeed`]) or a server
//! ([`super::stream::RemoteFeed`]) — in rounds: read what is new, print it, stop if the
//! migration [`rests`], else wait for a change. Without `--follow` a command is one round.
//! Locally the wait is on the store's change feed ([`Store::changes`]: it moves whenever
//! any process commits); through a server it reads the event stream (SSE). Either way a look
//! is also taken every [`IDLE`], because two changes write nothing a waiter can see: a
//! driver killed outright (its lease then belongs to no live process) and, through a server,
//! a driver letting go of its lease. Ctrl-C ends a follow quietly (exit 0): following changes
//! nothing.

use super::stream::RemoteFeed;
pub(super) use super::stream::Use;
use super::{error, exit};
use crate::event::{MigrationId, MigrationState, StepState};
use crate::store::Store;
use serde_json::Value as Json;
use std::collections::HashMap;
use std::time::Duration;
use tokio::signal::unix::{Signal, SignalKind, signal};

/// The longest wait without a look, whatever the feed says.
pub(super) const IDLE: Duration = Duration::from_secs(1);

/// What a command reads and waits on.
pub(super) trait Feed {
    /// The status document (`sensei status --format json`).
    fn status(&mut self) -> Result<Json, u8>;
    /// Every event after seq `after`, read now.
    fn events(&mut self, after: i64) -> Result<Vec<Json>, u8>;
    /// The events that came with the waits since the last call, when the feed brings them
    /// itself (a server's stream); `None` when they are to be read ([`Feed::events`]).
    fn arrived(&mut self) -> Option<Vec<Json>>;
    /// The log lines of each step after its mark (the seq of the last line shown), in the
    /// order they were written.
    fn logs(&mut self, marks: &[(String, i64)]) -> Result<Vec<Json>, u8>;
    /// Waits until something may have changed, at most [`IDLE`]; false once Ctrl-C ended the
    /// follow.
    fn wait(&mut self) -> Result<bool, u8>;
}

/// Whether a followed migration rests: nothing will change without an operator. A final
/// state rests at once. A failed or paused one rests once no process drives it any more (a
/// pause lets the running steps finish, and a cancel passes through paused), and so does one
/// whose driver stopped at an interrupted step, waiting for an operator's choice. A migration
/// whose driver died elsewhere does not: a resume continues it.
pub(super) fn rests(status: &Json) -> bool {
    let Some(state) = status["state"]
        .as_str()
        .and_then(|s| s.parse::<MigrationState>().ok())
    else {
        return true;
    };
    let interrupted = status["steps"].as_array().is_some_and(|steps| {
        steps
            .iter()
            .any(|s| s["state"] == StepState::Interrupted.as_str())
    });
    let undriven = status["driver"].is_null();
    state.is_terminal() || (undriven && (state.is_at_rest() || interrupted))
}

/// Ctrl-C, caught while a follow runs: from then on SIGINT no longer ends the process, and
/// the next wait ends the follow instead.
pub(super) fn interrupt(runtime: &tokio::runtime::Runtime) -> Result<Signal, u8> {
    let _context = runtime.enter();
    signal(SignalKind::interrupt()).map_err(|e| {
        error(format!("cannot catch Ctrl-C: {e}"));
        exit::FAILED
    })
}

/// The local store. Its runtime and Ctrl-C only when following.
pub(super) struct LocalFeed {
    store: Store,
    id: MigrationId,
    waiting: Option<Waiting>,
}

/// What a following local feed waits with. The change feed is subscribed before the first
/// look, so a commit after it shows as a change.
struct Waiting {
    runtime: tokio::runtime::Runtime,
    ctrl_c: Signal,
    changes: tokio::sync::watch::Receiver<u64>,
}

impl LocalFeed {
    pub(super) fn new(store: Store, id: MigrationId, follow: bool) -> Result<LocalFeed, u8> {
        let waiting = if follow {
            let runtime = super::runtime()?;
            let ctrl_c = interrupt(&runtime)?;
            let changes = store.changes();
            Some(Waiting {
                runtime,
                ctrl_c,
                changes,
            })
        } else {
            None
        };
        Ok(LocalFeed { store, id, waiting })
    }
}

impl Feed for LocalFeed {
    fn status(&mut self) -> Result<Json, u8> {
        let m = super::local::load(&self.store, &self.id)?;
        let steps = self.store.steps(&m.id).map_err(|e| exit::fail(&e))?;
        let driver = self.store.driver(&m.id).ok().flatten();
        let eta = crate::eta::Estimate::of(&self.store, &m, &steps, chrono::Utc::now());
        Ok(crate::view::status(&m, &steps, driver.as_ref(), &eta))
    }

    fn events(&mut self, after: i64) -> Result<Vec<Json>, u8> {
        let events = self
            .store
            .events(&self.id, after)
            .map_err(|e| exit::fail(&e))?;
        Ok(events
            .iter()
            .map(|e| serde_json::to_value(e).unwrap_or_default())
            .collect())
    }

    fn arrived(&mut self) -> Option<Vec<Json>> {
        None
    }

    /// One read from the lowest mark (log seqs grow in commit order across every writer).
    fn logs(&mut self, marks: &[(String, i64)]) -> Result<Vec<Json>, u8> {
        let (step, after) = match marks {
            [(step, after)] => (Some(step.as_str()), *after),
            _ => (None, marks.iter().map(|(_, m)| *m).min().unwrap_or(0)),
        };
        let lines = self
            .store
            .logs_after(&self.id, step, after)
            .map_err(|e| exit::fail(&e))?;
        let marks: HashMap<&str, i64> = marks.iter().map(|(s, m)| (s.as_str(), *m)).collect();
        Ok(lines
            .iter()
            .filter(|l| marks.get(l.step.as_str()).is_some_and(|m| l.seq > *m))
            .map(|l| serde_json::to_value(l).unwrap_or_default())
            .collect())
    }

    fn wait(&mut self) -> Result<bool, u8> {
        let Some(Waiting {
            runtime,
            ctrl_c,
            changes,
        }) = &mut self.waiting
        else {
            return Ok(true);
        };
        let until = tokio::time::Instant::now() + IDLE;
        runtime.block_on(async {
            tokio::select! {
                _ = ctrl_c.recv() => Ok(false),
                _ = changes.changed() => Ok(true),
                () = tokio::time::sleep_until(until) => Ok(true),
            }
        })
    }
}

/// The feed of a command: the server's with `--server`, else the local store's; `id` is the
/// migration (a prefix or `latest` locally; none: the newest).
pub(super) fn open(
    local: &super::local::Local,
    id: Option<&str>,
    follow: bool,
    purpose: Use,
) -> Result<Box<dyn Feed>, u8> {
    match super::client::Client::from_local(local) {
        Some(client) => Ok(Box::new(RemoteFeed::new(client?, id, follow, purpose)?)),
        None => {
            let store = local.open_existing()?;
            let m = super::local::find(&store, id.unwrap_or("latest"))?;
            Ok(Box::new(LocalFeed::new(store, m.id, follow)?))
        }
    }
}

/// Prints a JSON document: pretty as the one document of a command, or on one line each as
/// a follow prints them as they come (JSON Lines).
pub(super) fn print_json(doc: &impl serde::Serialize, follow: bool) {
    let text = if follow {
        serde_json::to_string(doc)
    } else {
        serde_json::to_string_pretty(doc)
    };
    outln!("{}", text.unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::rests;
    use serde_json::json;

    #[test]
    fn a_migration_rests_once_final_or_still_and_undriven() {
        let driver = json!({ "pid": 1, "host": "h" });
        let doc = |state: &str, driver: &serde_json::Value, step: &str| json!({ "state": state, "driver": driver, "steps": [{ "step": "a", "state": step }] });
        let none = serde_json::Value::Null;
        assert!(rests(&doc("certified", &driver, "succeeded")));
        assert!(rests(&doc("failed", &none, "failed")));
        // A pause lets running steps finish; a cancel passes through paused.
        assert!(!rests(&doc("paused", &driver, "running")));
        assert!(rests(&doc("paused", &none, "succeeded")));
        // A driver stopped at an interrupted step: an operator chooses.
        assert!(rests(&doc("validating", &none, "interrupted")));
        // A driver that died: a resume continues it.
        assert!(!rests(&doc("running", &none, "running")));
        assert!(!rests(&doc("created", &none, "pending")));
    }
}
