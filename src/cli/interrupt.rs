//! Ctrl-C (SIGINT) and SIGTERM while a command drives a migration in the foreground.
//!
//! The first asks the driver to drain, as a server does on SIGTERM: no new step starts, the
//! running ones finish and their outcomes are committed, and the command exits with the
//! migration resumable (`sensei resume ID`). Killing a step half-way is what an operator at
//! the terminal least wants by accident, so that takes a second signal: the command then
//! exits at once, as a crash would; the watchdog kills the running steps, and a resume shows
//! them as interrupted.

use super::progress::Notices;
use crate::event::MigrationId;
use std::sync::Arc;
use std::sync::OnceLock;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

/// The signal that stopped a drive, once one has.
#[derive(Debug, Clone, Default)]
pub struct Interrupted(Arc<OnceLock<&'static str>>);

impl Interrupted {
    /// The signal's name (`SIGINT`, `SIGTERM`) if one arrived.
    pub fn by(&self) -> Option<&'static str> {
        self.0.get().copied()
    }
}

/// Starts listening for the signals on the current tokio runtime. Returns the receiver for
/// the driver's `Options::stop` and what tells, afterwards, whether a signal stopped it.
/// Without a usable signal handler the command simply keeps the default behaviour.
/// What it says goes through `notices`, so that a progress bar does not wipe it out.
pub fn listen(id: &MigrationId, notices: Notices) -> (Option<watch::Receiver<bool>>, Interrupted) {
    let interrupted = Interrupted::default();
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return (None, interrupted);
    };
    let (stop, rx) = watch::channel(false);
    let id = id.clone();
    let seen = interrupted.clone();
    tokio::spawn(async move {
        loop {
            let name = tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            };
            if seen.0.set(name).is_err() {
                notices.say(&format!(
                    "{name} again: stopping now; running steps are killed and show as interrupted — `sensei resume {id} --retry-interrupted` runs them again, `--skip-interrupted` skips them"
                ));
                std::process::exit(i32::from(super::exit::FAILED));
            }
            notices.say(&format!(
                "{name}: no new step starts; running steps finish first (send it again to stop them now)"
            ));
            let _ = stop.send(true);
        }
    });
    (Some(rx), interrupted)
}
