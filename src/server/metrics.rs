//! `GET /metrics` in the Prometheus text format: migrations by state (read from the store at
//! scrape time), drivers running in this server, runbook files valid and invalid, lost log
//! lines, the progress and estimated time to finish of running steps and of migrations being
//! driven (labelled by migration and step, so only those: a series ends when its step does,
//! which bounds how many there are), and HTTP requests by method, route and status with a
//! latency histogram per route (counted by [`track`], a layer on the matched routes).

use super::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Instant;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 9] = [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0];
/// Upper bounds for step durations and gate waits: a second to a day.
const LONG_BUCKETS: [f64; 9] = [
    1.0,
    10.0,
    60.0,
    300.0,
    900.0,
    3600.0,
    4.0 * 3600.0,
    12.0 * 3600.0,
    86400.0,
];

#[derive(Debug, Default)]
struct Histogram {
    /// Cumulative counts are computed when rendering; these are per bucket, plus +Inf.
    counts: [u64; BUCKETS.len() + 1],
    sum: f64,
}

#[derive(Debug, Default)]
struct Http {
    requests: BTreeMap<(String, String, u16), u64>,
    latency: BTreeMap<String, Histogram>,
}

/// Counters kept by this process since it started.
#[derive(Debug, Default)]
pub struct Metrics {
    http: Mutex<Http>,
}

impl Metrics {
    pub fn record(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let mut http = self.http.lock().unwrap_or_else(|p| p.into_inner());
        *http
            .requests
            .entry((method.to_owned(), route.to_owned(), status))
            .or_default() += 1;
        let histogram = http.latency.entry(route.to_owned()).or_default();
        let bucket = BUCKETS
            .iter()
            .position(|&b| seconds <= b)
            .unwrap_or(BUCKETS.len());
        histogram.counts[bucket] += 1;
        histogram.sum += seconds;
    }

    fn render_http(&self, out: &mut String) {
        let http = self.http.lock().unwrap_or_else(|p| p.into_inner());
        out.push_str("# HELP sensei_http_requests_total HTTP requests answered, by method, route and status.\n");
        out.push_str("# TYPE sensei_http_requests_total counter\n");
        for ((method, route, status), n) in &http.requests {
            let _ = writeln!(
                out,
                "sensei_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {n}",
                escape(route)
            );
        }
        out.push_str("# HELP sensei_http_request_duration_seconds Time to answer a request (to the response head), by route.\n");
        out.push_str("# TYPE sensei_http_request_duration_seconds histogram\n");
        for (route, h) in &http.latency {
            let labels = format!("route=\"{}\"", escape(route));
            h.render(
                out,
                "sensei_http_request_duration_seconds",
                &labels,
                &BUCKETS,
            );
        }
    }
}

impl Histogram {
    fn of(values: &[f64], bounds: &[f64]) -> Histogram {
        let mut h = Histogram::default();
        for &v in values {
            let bucket = bounds.iter().position(|&b| v <= b).unwrap_or(bounds.len());
            if let Some(count) = h.counts.get_mut(bucket) {
                *count += 1;
            }
            h.sum += v;
        }
        h
    }

    /// The `_bucket`, `_sum` and `_count` lines; `bounds` are those the counts were made with.
    fn render(&self, out: &mut String, name: &str, labels: &str, bounds: &[f64]) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (i, bound) in bounds.iter().enumerate() {
            cumulative += self.counts[i];
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}"
            );
        }
        cumulative += self.counts[bounds.len()];
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {cumulative}"
        );
        let braces = |l: &str| {
            if l.is_empty() {
                String::new()
            } else {
                format!("{{{l}}}")
            }
        };
        let _ = writeln!(out, "{name}_sum{} {}", braces(labels), self.sum);
        let _ = writeln!(out, "{name}_count{} {cumulative}", braces(labels));
    }
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Counts a request on a matched route.
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    state.metrics.record(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// The whole exposition.
pub fn render(state: &AppState) -> String {
    let mut out = String::new();
    out.push_str("# HELP sensei_migrations Migrations in the store, by state.\n");
    out.push_str("# TYPE sensei_migrations gauge\n");
    let counts: BTreeMap<_, _> = state
        .store
        .count_by_state()
        .unwrap_or_default()
        .into_iter()
        .collect();
    for s in crate::event::MigrationState::ALL {
        let n = counts.get(s).copied().unwrap_or(0);
        let _ = writeln!(out, "sensei_migrations{{state=\"{s}\"}} {n}");
    }
    out.push_str("# HELP sensei_drivers Migrations this server is driving now.\n");
    out.push_str("# TYPE sensei_drivers gauge\n");
    let _ = writeln!(out, "sensei_drivers {}", state.drivers.active());
    out.push_str(
        "# HELP sensei_leases_held Migration leases this server holds now (one per migration it drives).\n",
    );
    out.push_str("# TYPE sensei_leases_held gauge\n");
    let _ = writeln!(out, "sensei_leases_held {}", state.drivers.active());
    out.push_str("# HELP sensei_lease_takeovers_total Migrations this server took over from a driver that died or lost its lease.\n");
    out.push_str("# TYPE sensei_lease_takeovers_total counter\n");
    let _ = writeln!(
        out,
        "sensei_lease_takeovers_total {}",
        state.drivers.takeovers()
    );
    let (valid, invalid) = state.runbooks.counts();
    out.push_str("# HELP sensei_runbook_files Runbook files in the runbooks directory, by whether their latest version validates.\n");
    out.push_str("# TYPE sensei_runbook_files gauge\n");
    let _ = writeln!(out, "sensei_runbook_files{{valid=\"true\"}} {valid}");
    let _ = writeln!(out, "sensei_runbook_files{{valid=\"false\"}} {invalid}");
    out.push_str(
        "# HELP sensei_lost_log_lines_total Step output lines that could not be stored.\n",
    );
    out.push_str("# TYPE sensei_lost_log_lines_total counter\n");
    let _ = writeln!(
        out,
        "sensei_lost_log_lines_total {}",
        state.store.lost_log_lines()
    );
    out.push_str(
        "# HELP sensei_alert_deliveries Alert deliveries in the outbox, by kind and state.\n",
    );
    out.push_str("# TYPE sensei_alert_deliveries gauge\n");
    for (kind, delivery_state, n) in state.store.delivery_counts().unwrap_or_default() {
        let _ = writeln!(
            out,
            "sensei_alert_deliveries{{kind=\"{kind}\",state=\"{delivery_state}\"}} {n}"
        );
    }
    let (steps, gates) = state.store.durations().unwrap_or_default();
    out.push_str("# HELP sensei_step_duration_seconds How long finished steps ran (their last attempt), from the store.\n");
    out.push_str("# TYPE sensei_step_duration_seconds histogram\n");
    Histogram::of(&steps, &LONG_BUCKETS).render(
        &mut out,
        "sensei_step_duration_seconds",
        "",
        &LONG_BUCKETS,
    );
    out.push_str("# HELP sensei_gate_wait_seconds How long closed gates waited for their decision, from the store.\n");
    out.push_str("# TYPE sensei_gate_wait_seconds histogram\n");
    Histogram::of(&gates, &LONG_BUCKETS).render(
        &mut out,
        "sensei_gate_wait_seconds",
        "",
        &LONG_BUCKETS,
    );
    render_progress(state, &mut out);
    state.metrics.render_http(&mut out);
    out
}

/// Progress and estimates of what runs now: migrations being driven and their running steps.
fn render_progress(state: &AppState, out: &mut String) {
    use crate::event::{MigrationState as M, StepState};
    let mut ratios = String::new();
    let mut step_etas = String::new();
    let mut etas = String::new();
    let now = chrono::Utc::now();
    let driven = state
        .store
        .list(None)
        .unwrap_or_default()
        .into_iter()
        .filter(|m| !m.state.is_at_rest() && !matches!(m.state, M::Created | M::AwaitingApproval));
    for head in driven {
        let (Ok(Some(m)), Ok(rows)) =
            (state.store.migration(&head.id), state.store.steps(&head.id))
        else {
            continue;
        };
        let estimate = crate::eta::Estimate::of(&state.store, &m, &rows, now);
        let id = escape(m.id.as_str());
        if let Some(left) = estimate.migration.remaining() {
            let seconds = left.num_milliseconds() as f64 / 1000.0;
            let _ = writeln!(
                etas,
                "sensei_migration_eta_seconds{{migration=\"{id}\"}} {seconds}"
            );
        }
        for row in rows.iter().filter(|r| r.state == StepState::Running) {
            let labels = format!("migration=\"{id}\",step=\"{}\"", escape(&row.step));
            if let Some(reported) = row.progress {
                let ratio = reported.progress.ratio();
                let _ = writeln!(ratios, "sensei_step_progress_ratio{{{labels}}} {ratio}");
            }
            if let Some(left) = estimate
                .step(&row.step)
                .and_then(crate::eta::Eta::remaining)
            {
                let seconds = left.num_milliseconds() as f64 / 1000.0;
                let _ = writeln!(step_etas, "sensei_step_eta_seconds{{{labels}}} {seconds}");
            }
        }
    }
    out.push_str("# HELP sensei_step_progress_ratio Share done (0 to 1) of each running step that reports progress=DONE/TOTAL.\n");
    out.push_str("# TYPE sensei_step_progress_ratio gauge\n");
    out.push_str(&ratios);
    out.push_str("# HELP sensei_step_eta_seconds Estimated seconds until each running step finishes, where it can be estimated.\n");
    out.push_str("# TYPE sensei_step_eta_seconds gauge\n");
    out.push_str(&step_etas);
    out.push_str("# HELP sensei_migration_eta_seconds Estimated seconds until each migration being driven finishes, where it can be estimated.\n");
    out.push_str("# TYPE sensei_migration_eta_seconds gauge\n");
    out.push_str(&etas);
}
