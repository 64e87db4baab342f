//! Alert routing inside the commit (SPEC §4: deliveries are written to the outbox in the same
//! transaction as the events that cause them).
//!
//! This is the one place events become deliveries: [`super::write::append_events`] (and its
//! PostgreSQL twin), which every write that appends events goes through (a batch, a new
//! migration, a gate vote, a gate closed by a timeout), routes what it appends by the
//! migration's runbook's rules. No writer routes for itself, so a new path that appends
//! events cannot forget its alerts. Both backends share the rule of when rules are known or
//! loaded ([`Routes::lookup`]) and how a stored runbook gives them ([`parse`]); only reading
//! the stored text is each backend's own.
//!
//! The rules come from the runbook text the migration was created with, which never changes:
//! parsed once per migration and kept (a bounded cache). A process that has the runbook
//! parsed already (a driver) tells the store its rules ([`Routes::know`]), so the writer
//! thread does not parse a large runbook a second time; that is only a saving: without it
//! the store parses the text itself. A text that no longer loads (a newer release stricter
//! than the one that created the migration) routes nothing rather than refusing the write.

pub mod rules;

use super::StoreError;
use super::outbox::NewDelivery;
use crate::event::{MigrationId, MigrationState, NewEvent};
use crate::runbook::model::Alerts;
use rusqlite::{Connection, OptionalExtension};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// How many migrations' rules are kept; past it the cache starts again (a server with more
/// live migrations than this parses some runbooks twice, nothing worse).
const KEPT: usize = 1024;

/// Each migration's alert rules, as the writer thread has needed them.
#[derive(Debug, Default)]
pub struct Routes {
    rules: Mutex<HashMap<MigrationId, Arc<Alerts>>>,
}

/// What routing a migration's events needs, as [`Routes::lookup`] finds it.
#[derive(Debug)]
pub enum Lookup {
    /// The rules are known.
    Known(Arc<Alerts>),
    /// The rules are not known, and none of the events can alert: nothing to route, nothing
    /// to load.
    Silent,
    /// The rules are not known and some event may alert: load the migration's runbook
    /// (`runbook_path, runbook_text, runbook_files`), [`parse`] it and [`Routes::learn`] it.
    Load,
}

impl Routes {
    /// Remembers a migration's rules, taken from the runbook it was created with.
    pub fn know(&self, id: &MigrationId, alerts: &Alerts) {
        self.keep(id, Arc::new(alerts.clone()));
    }

    /// The one rule of both backends: known rules are used at once; unknown ones are loaded
    /// only for events that can alert at all.
    pub fn lookup(&self, id: &MigrationId, events: &[NewEvent]) -> Lookup {
        match self.rules().get(id).cloned() {
            Some(alerts) => Lookup::Known(alerts),
            None if !events.iter().any(rules::may_alert) => Lookup::Silent,
            None => Lookup::Load,
        }
    }

    /// Keeps rules a backend loaded after [`Lookup::Load`], and gives them back.
    pub fn learn(&self, id: &MigrationId, alerts: Alerts) -> Arc<Alerts> {
        let alerts = Arc::new(alerts);
        self.keep(id, alerts.clone());
        alerts
    }

    /// The deliveries `events` cause; `state` is the migration's state before the first.
    pub fn deliveries(
        &self,
        conn: &Connection,
        id: &MigrationId,
        state: MigrationState,
        events: &[NewEvent],
    ) -> Result<Vec<NewDelivery>, StoreError> {
        let alerts = match self.lookup(id, events) {
            Lookup::Known(alerts) => alerts,
            Lookup::Silent => return Ok(Vec::new()),
            Lookup::Load => self.learn(id, load(conn, id)?),
        };
        // Without rules (most runbooks), `route` reads no event.
        Ok(rules::route(&alerts, state, events))
    }

    fn keep(&self, id: &MigrationId, alerts: Arc<Alerts>) {
        let mut rules = self.rules();
        if rules.len() >= KEPT {
            rules.clear();
        }
        rules.insert(id.clone(), alerts);
    }

    fn rules(&self) -> std::sync::MutexGuard<'_, HashMap<MigrationId, Arc<Alerts>>> {
        // The map holds no invariant a panic could break halfway.
        self.rules.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The alert rules of a migration's runbook, as it was when the migration was created.
fn load(conn: &Connection, id: &MigrationId) -> Result<Alerts, StoreError> {
    let source: Option<(String, String, String)> = conn
        .prepare_cached(
            "SELECT runbook_path, runbook_text, runbook_files FROM migrations WHERE id = ?1",
        )?
        .query_row([id.as_str()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let Some((path, text, files)) = source else {
        return Err(StoreError::NotFound(id.to_string()));
    };
    Ok(parse(&path, &text, &files))
}

/// The alert rules of a stored runbook (its path, text and SQL files as stored JSON); a
/// text that no longer loads has none.
pub fn parse(path: &str, text: &str, files_json: &str) -> Alerts {
    let files = serde_json::from_str(files_json).unwrap_or_default();
    let files = crate::runbook::Files::Stored(&files);
    crate::runbook::load_with(path, text.as_bytes(), files)
        .runbook
        .map(|r| r.alerts)
        .unwrap_or_default()
}
