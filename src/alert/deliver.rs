//! The delivery worker: claims due deliveries from the outbox, renders each on its first
//! attempt (and stores the message for retries), sends it, and records the attempt.
//!
//! Retries use exponential backoff with jitter (`alerts.backoff` doubling up to
//! `alerts.max_backoff`, each delay drawn between half and all of it), never sooner than a
//! receiver's `Retry-After`, for `alerts.retry_for` after the event (default 1 h; the last
//! attempt is made at that deadline). A permanent refusal is recorded as failed at once. The
//! worker runs beside a driver and never delays it: the driver only writes outbox rows.

use super::backoff::retry_at;
use super::email::{Email, Mailer};
use super::message::{self, Message, Source};
use super::send::{Attempted, Failure};
use super::summary::subject_step;
use super::webhook::{Request, Webhooks};
use crate::config::{AlertSettings, Config};
use crate::event::MigrationId;
use crate::runbook::Runbook;
use crate::runbook::render::{Masker, Renderer, secret_values};
use crate::store::{AttemptOutcome, AttemptRecord, Delivery, Migration, Store, StoreError};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinSet;

/// Deliveries claimed and attempted at once.
const CLAIM_BATCH: u32 = 32;
/// Log lines of the failed step an alert shows, and how long each may be.
const LOG_LINES: usize = 20;
const LOG_LINE_CHARS: usize = 300;
/// How often a running worker looks for due deliveries.
const POLL: Duration = Duration::from_millis(200);

/// What one attempt gave, for the caller to report (a warning for a failure).
#[derive(Debug, Clone)]
pub struct Attempt {
    pub delivery: Delivery,
    pub outcome: AttemptOutcome,
    pub error: Option<String>,
}

/// Sends the outbox's deliveries. Cheap to clone; clones share the HTTP client.
#[derive(Debug, Clone)]
pub struct Deliverer {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    settings: AlertSettings,
    config: Config,
    webhooks: Webhooks,
    mailer: Mailer,
    renderer: Renderer,
    loaded: Mutex<HashMap<MigrationId, Arc<Loaded>>>,
}

/// What rendering needs of a migration, loaded once.
#[derive(Debug)]
struct Loaded {
    migration: Migration,
    runbook: Runbook,
    masker: Masker,
}

impl Deliverer {
    pub fn new(store: Store, config: &Config) -> Result<Deliverer, String> {
        Ok(Deliverer {
            inner: Arc::new(Inner {
                store,
                settings: config.alerts.clone(),
                config: config.clone(),
                webhooks: Webhooks::new(&config.alerts)?,
                mailer: Mailer::new(config.smtp.as_ref(), &config.alerts),
                renderer: Renderer::new(),
                loaded: Mutex::new(HashMap::new()),
            }),
        })
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Whether this deliverer sends email (a mail server is configured).
    pub fn sends_email(&self) -> bool {
        self.inner.mailer.is_configured()
    }

    /// Claims what is due now and attempts it all; returns every attempt made.
    pub async fn pass(&self) -> Result<Vec<Attempt>, StoreError> {
        let now = Utc::now();
        let email = self.inner.mailer.is_configured();
        let (pending, first) = self.inner.store.pending_deliveries(None, email)?;
        if pending == 0 || first.is_none_or(|at| at > now) {
            return Ok(Vec::new());
        }
        let hold = self.inner.settings.timeout.as_std() * 6 + Duration::from_secs(60);
        let until = now + chrono::Duration::from_std(hold).unwrap_or_default();
        let claimed = self
            .inner
            .store
            .claim_deliveries_async(now, until, CLAIM_BATCH, email)
            .await?;
        let mut tasks = JoinSet::new();
        for delivery in claimed {
            let me = self.clone();
            tasks.spawn(async move { me.attempt(delivery).await });
        }
        let mut out = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(Ok(Some(attempt))) => out.push(attempt),
                Ok(Ok(None)) => {}
                Ok(Err(e)) => return Err(e),
                // A panic in one attempt: its claim lapses and it is tried again later.
                Err(_) => {}
            }
        }
        Ok(out)
    }

    /// Runs passes until `stop` turns true, reporting each attempt to `report`.
    pub async fn run(
        &self,
        mut stop: tokio::sync::watch::Receiver<bool>,
        mut report: impl FnMut(&Attempt) + Send,
    ) {
        loop {
            if let Ok(attempts) = self.pass().await {
                attempts.iter().for_each(&mut report);
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = stop.changed() => return,
            }
            if *stop.borrow() {
                return;
            }
        }
    }

    /// Delivers until no pending delivery (of `migration`, or of any) is due before
    /// `deadline`, or the deadline passes; returns every attempt made.
    pub async fn drain(
        &self,
        migration: Option<&MigrationId>,
        deadline: DateTime<Utc>,
        mut report: impl FnMut(&Attempt),
    ) -> Result<(), StoreError> {
        loop {
            for attempt in self.pass().await? {
                report(&attempt);
            }
            let email = self.inner.mailer.is_configured();
            let (pending, first) = self.inner.store.pending_deliveries(migration, email)?;
            let now = Utc::now();
            if pending == 0 || now >= deadline || first.is_none_or(|at| at > deadline) {
                return Ok(());
            }
            let until_due = first.map_or(POLL, |at| (at - now).to_std().unwrap_or_default());
            tokio::time::sleep(until_due.clamp(Duration::from_millis(20), POLL)).await;
        }
    }

    /// One attempt at a claimed delivery; `None` when another sender finished it first.
    async fn attempt(&self, delivery: Delivery) -> Result<Option<Attempt>, StoreError> {
        let fresh = delivery.message.is_none();
        let message = match &delivery.message {
            Some(stored) => serde_json::from_value::<Message>(stored.clone())
                .map_err(|e| Failure::permanent(format!("the stored message cannot be read: {e}"))),
            None => self.render(&delivery),
        };
        let result = match &message {
            Ok(message) => self.send(message).await,
            Err(failure) => Err(failure.clone()),
        };
        let now = Utc::now();
        let (outcome, retry_at, status, error) = match &result {
            Ok(sent) => (AttemptOutcome::Delivered, None, sent.status, None),
            Err(f) => match retry_at(&self.inner.settings, &delivery, f, now) {
                Some(at) if !f.permanent => (
                    AttemptOutcome::Retry,
                    Some(at),
                    f.status,
                    Some(f.error.clone()),
                ),
                _ if f.permanent => (
                    AttemptOutcome::Failed,
                    None,
                    f.status,
                    Some(f.error.clone()),
                ),
                _ => (
                    AttemptOutcome::Failed,
                    None,
                    f.status,
                    Some(format!(
                        "{} (gave up after {} attempts over {})",
                        f.error,
                        delivery.attempts + 1,
                        self.inner.settings.retry_for
                    )),
                ),
            },
        };
        let record = AttemptRecord {
            delivery: delivery.id,
            at: now,
            outcome,
            retry_at,
            status,
            error: error.clone(),
            message: match (&message, fresh) {
                (Ok(m), true) => serde_json::to_value(m).ok(),
                _ => None,
            },
        };
        if !self.inner.store.record_attempt_async(record).await? {
            return Ok(None);
        }
        Ok(Some(Attempt {
            delivery,
            outcome,
            error,
        }))
    }

    async fn send(&self, message: &Message) -> Attempted {
        match message {
            Message::Email {
                to,
                cc,
                subject,
                body,
                html,
                event_id,
            } => {
                self.inner
                    .mailer
                    .send(Email {
                        to,
                        cc,
                        subject,
                        body,
                        html: *html,
                        event_id,
                    })
                    .await
            }
            Message::Webhook {
                url,
                headers,
                body,
                secret_env,
                event_id,
            } => {
                self.inner
                    .webhooks
                    .send(Request {
                        url,
                        headers,
                        body,
                        secret_env: secret_env.as_deref(),
                        event_id,
                    })
                    .await
            }
        }
    }

    fn render(&self, delivery: &Delivery) -> Result<Message, Failure> {
        let loaded = self.load(&delivery.migration)?;
        let store = &self.inner.store;
        let io = |e: StoreError| Failure::transient(e.to_string());
        let event = store
            .event(&delivery.migration, delivery.event_seq)
            .map_err(io)?
            .ok_or_else(|| Failure::permanent("the event of this alert is not in the store"))?;
        let steps = store.steps(&delivery.migration).map_err(io)?;
        let step = subject_step(&event, &delivery.event, &steps);
        let logs = match (step.as_deref(), delivery.event.as_str()) {
            (Some(step), "failed" | "step_failed" | "step_retrying") => {
                self.last_lines(&delivery.migration, step, &loaded.masker)?
            }
            _ => Vec::new(),
        };
        let src = Source {
            runbook: &loaded.runbook,
            migration: &loaded.migration,
            event: &event,
            delivery,
            steps: &steps,
            logs,
            masker: &loaded.masker,
            link: self
                .inner
                .config
                .migration_link(delivery.migration.as_str()),
        };
        message::render(&src, &self.inner.renderer).map_err(|e| Failure::permanent(e.0))
    }

    /// The last output lines of a step's latest attempt, masked.
    fn last_lines(
        &self,
        id: &MigrationId,
        step: &str,
        masker: &Masker,
    ) -> Result<Vec<String>, Failure> {
        let lines = self
            .inner
            .store
            .logs(id, Some(step))
            .map_err(|e| Failure::transient(e.to_string()))?;
        let last_attempt = lines.iter().map(|l| l.attempt).max().unwrap_or(0);
        let lines: Vec<_> = lines
            .into_iter()
            .filter(|l| l.attempt == last_attempt)
            .collect();
        let skip = lines.len().saturating_sub(LOG_LINES);
        Ok(lines
            .into_iter()
            .skip(skip)
            // Masked before it is cut: a secret cut in two is found by no mask.
            .map(|l| masker.mask(&l.text).chars().take(LOG_LINE_CHARS).collect())
            .collect())
    }

    fn load(&self, id: &MigrationId) -> Result<Arc<Loaded>, Failure> {
        let mut cache = self
            .inner
            .loaded
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(loaded) = cache.get(id) {
            return Ok(loaded.clone());
        }
        let migration = self
            .inner
            .store
            .migration(id)
            .map_err(|e| Failure::transient(e.to_string()))?
            .ok_or_else(|| Failure::permanent(format!("migration {id} is not in the store")))?;
        let runbook = migration.load_runbook().runbook.ok_or_else(|| {
            Failure::permanent(format!(
                "the runbook stored with migration {id} no longer loads"
            ))
        })?;
        let params = migration.params.as_object().cloned().unwrap_or_default();
        let masker = Masker::new(secret_values(&runbook, &params));
        let loaded = Arc::new(Loaded {
            migration,
            runbook,
            masker,
        });
        if cache.len() >= 256 {
            cache.clear();
        }
        cache.insert(id.clone(), loaded.clone());
        Ok(loaded)
    }
}
