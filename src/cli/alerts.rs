//! Alerts from the command line: `sensei alerts [ID] [--deliver]` lists the outbox (and
//! delivers what is due first; with `--server`, the server's outbox through the API), and the
//! delivery worker every driving command runs beside its driver, then gives a bounded time to
//! finish before the command exits (SPEC §4). Both listings render the API's documents.

use super::client::Client;
use super::local::{self, Local};
use super::{Format, error, exit};
use crate::alert::{Attempt, Deliverer};
use crate::config::Config;
use crate::event::MigrationId;
use crate::store::{AttemptOutcome, DeliveryState, Store};
use chrono::{DateTime, Utc};
use serde_json::Value as Json;

#[derive(Debug, clap::Args)]
pub struct AlertsArgs {
    /// Only this migration's alerts (an id, a unique prefix, or `latest`).
    id: Option<String>,
    /// First deliver what is due (waiting up to `alerts.wait_on_exit` for retries).
    #[arg(long)]
    deliver: bool,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    #[command(flatten)]
    local: Local,
}

/// `sensei alerts [ID] [--deliver] [--format json]`.
pub fn run(args: &AlertsArgs) -> u8 {
    let items = match Client::from_local(&args.local) {
        Some(client) => client.and_then(|client| remote(&client, args)),
        None => local(args),
    };
    match items {
        Ok(items) => {
            show(&items, args.format);
            exit::OK
        }
        Err(code) => code,
    }
}

/// The deliveries of the local store (`--deliver`: after sending what is due), as the
/// documents the API answers.
fn local(args: &AlertsArgs) -> Result<Vec<Json>, u8> {
    let config = args.local.config()?;
    let store = args.local.open_existing()?;
    let id = match &args.id {
        Some(id) => Some(local::find(&store, id)?.id),
        None => None,
    };
    if args.deliver {
        let runtime = runtime().ok_or(exit::FAILED)?;
        let worker = Worker::start(&runtime, &store, &config).ok_or(exit::FAILED)?;
        worker.finish(&runtime, id.as_ref());
    }
    let deliveries = store.deliveries(id.as_ref()).map_err(|e| exit::fail(&e))?;
    Ok(deliveries
        .iter()
        .map(|d| crate::view::delivery(d, &store.delivery_attempts(d.id).unwrap_or_default()))
        .collect())
}

/// `GET /v1/alerts`, or `GET /v1/migrations/{id}/alerts` with an ID. A server sends its own
/// alerts: `--deliver` is for a local store's outbox.
fn remote(client: &Client, args: &AlertsArgs) -> Result<Vec<Json>, u8> {
    if args.deliver {
        error(format!(
            "`sensei alerts --deliver` sends the local store's alerts; the server at {} delivers its own (drop --deliver, or --server)",
            client.base()
        ));
        return Err(exit::USAGE);
    }
    let doc = match &args.id {
        Some(id) => {
            let id = super::client::resolve(client, Some(id))?;
            client.get(&["v1", "migrations", &id, "alerts"])?
        }
        None => client.get(&["v1", "alerts"])?,
    };
    Ok(doc.as_array().cloned().unwrap_or_default())
}

fn show(items: &[Json], format: Format) {
    match format {
        Format::Json => outln!(
            "{}",
            serde_json::to_string_pretty(items).unwrap_or_default()
        ),
        Format::Text => {
            if items.is_empty() {
                outln!("no alerts");
            }
            for d in items {
                outln!("{}", line(d));
            }
        }
    }
}

/// The text line of a delivery document.
fn line(d: &Json) -> String {
    let text = |key: &str| d[key].as_str().unwrap_or_default();
    let step = d["step"]
        .as_str()
        .map(|s| format!(" ({s})"))
        .unwrap_or_default();
    let mut line = format!(
        "{}  {:<9} event {} {}{step} -> {} ({}), {} attempt(s)",
        text("migration"),
        text("state"),
        d["event_seq"],
        text("event"),
        text("channel"),
        text("kind"),
        d["attempts"]
    );
    let next = d["next_attempt_at"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok());
    if text("state") == DeliveryState::Pending.as_str()
        && let Some(at) = next
    {
        let at = at.with_timezone(&Utc);
        line.push_str(&format!(", next {}", at.format("%Y-%m-%d %H:%M:%S UTC")));
    }
    if let Some(e) = d["last_error"].as_str() {
        line.push_str(&format!(": {e}"));
    }
    line
}

/// A runtime for commands that only deliver.
fn runtime() -> Option<tokio::runtime::Runtime> {
    super::multi_thread_runtime().ok()
}

/// A warning line for an attempt that did not deliver: the migration goes on regardless.
fn report(attempt: &Attempt) {
    let d = &attempt.delivery;
    let error = attempt.error.as_deref().unwrap_or("unknown error");
    match attempt.outcome {
        AttemptOutcome::Delivered => {}
        AttemptOutcome::Failed => eprintln!(
            "warning: alert `{}` of {} to channel `{}` could not be delivered: {error}",
            d.event, d.migration, d.channel
        ),
        // Said once, at the first failure; later retries are quiet (`sensei alerts` shows them).
        AttemptOutcome::Retry if d.attempts == 0 => eprintln!(
            "warning: alert `{}` of {} to channel `{}` not delivered yet, retrying: {error}",
            d.event, d.migration, d.channel
        ),
        AttemptOutcome::Retry => {}
    }
}

/// The delivery worker of one command, running on its runtime beside the driver.
#[derive(Debug)]
pub struct Worker {
    deliverer: Deliverer,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    wait: crate::runbook::duration::Duration,
}

impl Worker {
    /// Starts delivering whatever is due in the store, this command's alerts and those that
    /// earlier commands left behind.
    pub fn start(
        runtime: &tokio::runtime::Runtime,
        store: &Store,
        config: &Config,
    ) -> Option<Worker> {
        let _guard = runtime.enter();
        let deliverer = match Deliverer::new(store.clone(), config) {
            Ok(d) => d,
            Err(e) => {
                error(e);
                return None;
            }
        };
        let (stop, rx) = tokio::sync::watch::channel(false);
        let task = runtime.spawn({
            let deliverer = deliverer.clone();
            async move { deliverer.run(rx, report).await }
        });
        Some(Worker {
            deliverer,
            stop,
            task,
            wait: config.alerts.wait_on_exit,
        })
    }

    /// Stops the background loop, then delivers what is still pending (of `migration`, or of
    /// all) for at most `alerts.wait_on_exit`, saying so; what remains stays in the outbox.
    pub fn finish(self, runtime: &tokio::runtime::Runtime, migration: Option<&MigrationId>) {
        let _ = self.stop.send(true);
        let store = self.deliverer.store().clone();
        let email = self.deliverer.sends_email();
        let pending = |store: &Store| {
            store
                .pending_deliveries(migration, email)
                .map_or(0, |p| p.0)
        };
        runtime.block_on(async {
            let _ = self.task.await;
            let count = pending(&store);
            if count > 0 {
                sayln!("delivering {count} alert(s) (waiting up to {})", self.wait);
            }
            // At least one pass, which also sends what earlier commands left due; the wait
            // itself is only for `migration`'s alerts.
            let deadline =
                Utc::now() + chrono::Duration::from_std(self.wait.as_std()).unwrap_or_default();
            // The deadline also cuts an attempt in flight (a slow DNS lookup, an endpoint
            // that does not answer): its delivery stays in the outbox for a later sender.
            let drain = self.deliverer.drain(migration, deadline, report);
            let bound = self.wait.as_std().max(std::time::Duration::from_secs(1));
            if let Ok(Err(e)) = tokio::time::timeout(bound, drain).await {
                error(format!("alert delivery stopped: {e}"));
            }
        });
        let left = pending(&store);
        if left > 0 {
            sayln!(
                "{left} alert(s) not delivered yet: they stay in the outbox; `sensei alerts --deliver` (or `sensei serve`) sends them"
            );
        }
        let waiting_mail = store
            .pending_deliveries(migration, true)
            .map_or(0, |p| p.0)
            .saturating_sub(left);
        if !email && waiting_mail > 0 {
            eprintln!(
                "warning: {waiting_mail} email alert(s) wait in the outbox: no mail server is configured (`smtp` in sensei.yaml or --config)"
            );
        }
    }
}
