//! Servers and stores (issue 16): `sensei serve` (this build's binary) on the SQLite store of
//! a state directory, and on PostgreSQL shared by one or three servers, all driven through
//! the REST API from this process, all in one run:
//!
//! 1. **Throughput**: 20 migrations of a runbook whose one step fans out to 100 `true`
//!    steps (2,000 step processes), created, then started round-robin across the servers
//!    (each drives the ones it started). Wall time from the first start call to the last
//!    migration's `certified`, taken from the store's `updated_at` (the database's clock on
//!    this machine), so the polling interval does not enter it. SQLite on one server is the
//!    baseline; PostgreSQL on one server and on three sharing the database. Best of
//!    [`ROUNDS`] rounds, interleaved (the machine is shared).
//! 2. **Per event**: the same runs divided by the events they committed (every state change
//!    of a step or a migration is an event; the store commits each batch of them in one
//!    transaction before the engine acts). The 20 migrations commit concurrently, so this is
//!    the inverse of throughput, not a commit's latency; for that, one migration of 100
//!    chained `wait: 0s` steps, where each step waits for the previous one's commits.
//!    PostgreSQL also counts its committed transactions (`pg_stat_database.xact_commit`,
//!    reads included, over the servers' whole life).
//! 3. **Scale**: 1,000 migrations of 10 chained `wait: 100ms` steps (about 1 s each when
//!    nothing waits for the engine), created, then started at once (16 client threads) on
//!    one server, on each store: time to finish all, and the server's peak resident memory
//!    (VmHWM at the end; VmRSS sampled while waiting). Target: under 300 MB.
//!
//! Each run has a fresh store: a state directory, or a PostgreSQL database of its own
//! (`sensei_bench_<random>`, dropped when the run ends, also when it fails). A run that does
//! not finish within [`DEADLINE`] is reported as such, with the servers' last log lines, and
//! the bench goes on (and exits non-zero at the end).
//!
//! Needs `SENSEI_TEST_PG` (e.g. `postgres://postgres@127.0.0.1:5432/test`); without it the
//! PostgreSQL runs are skipped, saying so. `SENSEI_BENCH_SCALE=N` runs part 3 with N
//! migrations. Run with `cargo bench --bench servers`.

mod common;
#[path = "../tests/support/db.rs"]
mod db;
mod fleet;
#[path = "../tests/harness/mod.rs"]
mod harness;

use chrono::Utc;
use common::ratio;
use fleet::{Backend, Fleet, span};
use std::fmt::Write as _;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

const ROUNDS: usize = 2;
/// Migrations and fan-out of part 1.
const MIGRATIONS: usize = 20;
const FANOUT: usize = 100;
/// Steps of one migration running at once in part 1.
const CONCURRENCY: usize = 4;
const CHAIN: usize = 100;
const SCALE: usize = 1_000;
const SCALE_STEPS: usize = 10;
/// Client threads creating and starting migrations.
const CLIENTS: usize = 16;
/// Longest any one run may take to finish its migrations.
const DEADLINE: Duration = Duration::from_secs(300);

/// What one run measured.
#[derive(Debug, Clone)]
struct Run {
    /// Creating the migrations (not in `wall`).
    created_in: Duration,
    /// Until every start call was answered.
    started_in: Duration,
    /// From the first start call to the last `certified`.
    wall: Duration,
    events: usize,
    /// PostgreSQL transactions committed in the run's database over the servers' life.
    xacts: Option<u64>,
    takeovers: u64,
    /// The servers' peak resident memory (sum of VmHWM) and the largest sum of VmRSS seen.
    hwm_kib: u64,
    sampled_kib: u64,
}

/// A run's outcome: measured, skipped (no PostgreSQL), or failed with a message.
type Outcome = Result<Option<Run>, String>;

fn fanout_runbook() -> String {
    let items: Vec<String> = (1..=FANOUT).map(|i| i.to_string()).collect();
    format!(
        "version: 1\nname: fan\nconcurrency: {CONCURRENCY}\nsteps:\n  - id: t\n    for_each: [{}]\n    run: \"true\"\n",
        items.join(", ")
    )
}

/// `steps` steps of `action`, each needing the one before.
fn chain_runbook(name: &str, steps: usize, action: &str) -> String {
    let mut y = format!("version: 1\nname: {name}\nsteps:\n");
    for i in 0..steps {
        let _ = writeln!(y, "  - id: s{i}\n    {action}");
        if i > 0 {
            let _ = writeln!(y, "    needs: [s{}]", i - 1);
        }
    }
    y
}

/// Creates `n` migrations of `name` on `servers` servers of `backend`, starts them all, and
/// waits until every one is certified.
fn run(
    backend: Backend,
    servers: usize,
    name: &str,
    text: &str,
    n: usize,
    poll: Duration,
) -> Outcome {
    let measured = std::panic::catch_unwind(AssertUnwindSafe(|| -> Outcome {
        let file = format!("{name}.yaml");
        let Some(mut fleet) = Fleet::start(backend, servers, &[(&file, text)]) else {
            return Ok(None);
        };
        let t = Instant::now();
        let ids = fleet.create(name, n, CLIENTS);
        let created_in = t.elapsed();
        let (t0, i0) = (Utc::now(), Instant::now());
        fleet.start_all(&ids, CLIENTS);
        let started_in = i0.elapsed();
        let done = fleet.wait_certified(name, n, poll, DEADLINE)?;
        let wall = span(t0, done.last_update);
        let hwm_kib = fleet.rss_kib("VmHWM:");
        let takeovers = fleet.takeovers();
        let events = fleet.events(&ids);
        let stopped = fleet.stop();
        if !stopped.is_empty() {
            return Err(stopped.join("; "));
        }
        Ok(Some(Run {
            created_in,
            started_in,
            wall,
            events,
            xacts: fleet.pg_commits_settled(),
            takeovers,
            hwm_kib,
            sampled_kib: done.sampled_rss_kib,
        }))
    }));
    measured.unwrap_or_else(|panic| {
        let text = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "a panic without a message".to_owned());
        Err(format!("FAILED: {text}"))
    })
}

/// The faster of two outcomes (a failure wins: it must be seen).
fn best(a: Outcome, b: Outcome) -> Outcome {
    match (a, b) {
        (Err(e), _) | (_, Err(e)) => Err(e),
        (Ok(Some(a)), Ok(Some(b))) => Ok(Some(if b.wall < a.wall { b } else { a })),
        (Ok(None), b) => b,
        (a, Ok(None)) => a,
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn mb(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// One table line per outcome; failures are printed in full below the table.
fn row(label: &str, outcome: &Outcome, steps: usize, failures: &mut Vec<String>) -> Option<Run> {
    match outcome {
        Ok(Some(r)) => {
            let xacts = r.xacts.map_or("-".to_owned(), |x| x.to_string());
            println!(
                "  {label:<22} {:>8.2} {:>9.0} {:>7} {:>9.3} {:>9} {:>9} {:>9.1}",
                secs(r.wall),
                steps as f64 / secs(r.wall),
                r.events,
                secs(r.wall) * 1e3 / r.events as f64,
                xacts,
                r.takeovers,
                mb(r.hwm_kib),
            );
            Some(r.clone())
        }
        Ok(None) => {
            println!("  {label:<22} skipped: SENSEI_TEST_PG is not set");
            None
        }
        Err(e) => {
            println!("  {label:<22} FAILED (see below)");
            failures.push(format!("{label}: {e}"));
            None
        }
    }
}

/// The machine's load (shared with other work), to read the figures by.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

fn main() {
    println!(
        "sensei serve, this build, on {} CPUs; load average {}",
        std::thread::available_parallelism().map_or(0, usize::from),
        load()
    );
    let mut failures = Vec::new();
    let fan = fanout_runbook();
    let steps = MIGRATIONS * FANOUT;
    let poll = Duration::from_millis(50);
    let mut outcomes: [Outcome; 3] = [Ok(None), Ok(None), Ok(None)];
    for _ in 0..ROUNDS {
        let fresh = [
            run(Backend::Sqlite, 1, "fan", &fan, MIGRATIONS, poll),
            run(Backend::Postgres, 1, "fan", &fan, MIGRATIONS, poll),
            run(Backend::Postgres, 3, "fan", &fan, MIGRATIONS, poll),
        ];
        for (slot, new) in outcomes.iter_mut().zip(fresh) {
            let old = std::mem::replace(slot, Ok(None));
            *slot = best(old, new);
        }
    }
    let [sqlite, pg1, pg3] = outcomes;
    println!(
        "1-2. {MIGRATIONS} migrations x fan-out of {FANOUT} `true` steps ({steps} steps), concurrency {CONCURRENCY} each, started round-robin; best of {ROUNDS}"
    );
    println!(
        "  {:<22} {:>8} {:>9} {:>7} {:>9} {:>9} {:>9} {:>9}",
        "store, servers",
        "wall s",
        "steps/s",
        "events",
        "ms/event",
        "pg xacts",
        "takeovers",
        "peak MB"
    );
    let s = row("SQLite, 1 server", &sqlite, steps, &mut failures);
    let p1 = row("PostgreSQL, 1 server", &pg1, steps, &mut failures);
    let p3 = row("PostgreSQL, 3 servers", &pg3, steps, &mut failures);
    if let (Some(p1), Some(p3)) = (&p1, &p3) {
        println!(
            "  steps/s, 3 servers / 1 server on PostgreSQL: {:.2} (3 processes on this machine's 2 cores: what is shared is the CPU)",
            ratio(p1.wall, p3.wall)
        );
    }
    if let (Some(s), Some(p1)) = (&s, &p1) {
        println!(
            "  time, PostgreSQL / SQLite (1 server): {:.2}; per step {:.2} ms vs {:.2} ms; per event {:.3} ms vs {:.3} ms",
            ratio(p1.wall, s.wall),
            secs(p1.wall) * 1e3 / steps as f64,
            secs(s.wall) * 1e3 / steps as f64,
            secs(p1.wall) * 1e3 / p1.events as f64,
            secs(s.wall) * 1e3 / s.events as f64,
        );
    }
    if let Some(p1) = &p1 {
        println!(
            "  PostgreSQL, 1 server: {} transactions committed over the server's life (creates, starts, polls and background work included) for {} events",
            p1.xacts.unwrap_or(0),
            p1.events
        );
    }

    // A commit's latency: one migration whose steps run one after another.
    let chain = chain_runbook("chain", CHAIN, "wait: 0s");
    let latency = |backend| {
        (0..ROUNDS)
            .map(|_| run(backend, 1, "chain", &chain, 1, Duration::from_millis(20)))
            .reduce(best)
            .unwrap_or(Ok(None))
    };
    println!(
        "2. one migration, a chain of {CHAIN} `wait: 0s` steps (each starts after the previous one's commits); best of {ROUNDS}"
    );
    let cs = row(
        "SQLite, 1 server",
        &latency(Backend::Sqlite),
        CHAIN,
        &mut failures,
    );
    let cp = row(
        "PostgreSQL, 1 server",
        &latency(Backend::Postgres),
        CHAIN,
        &mut failures,
    );
    if let (Some(cs), Some(cp)) = (&cs, &cp) {
        println!(
            "  per step {:.2} ms (SQLite) vs {:.2} ms (PostgreSQL): ratio {:.2}",
            secs(cs.wall) * 1e3 / CHAIN as f64,
            secs(cp.wall) * 1e3 / CHAIN as f64,
            ratio(cp.wall, cs.wall)
        );
    }

    let scale: usize = std::env::var("SENSEI_BENCH_SCALE")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(SCALE);
    if scale != SCALE {
        println!("NOTE: part 3 runs {scale} migrations, not {SCALE} (SENSEI_BENCH_SCALE)");
    }
    let waits = chain_runbook("waits", SCALE_STEPS, "wait: 100ms");
    println!(
        "3. {scale} migrations x {SCALE_STEPS} chained `wait: 100ms` steps ({} steps; about 1 s each if nothing waits) on one server, started at once by {CLIENTS} clients",
        scale * SCALE_STEPS
    );
    println!(
        "  {:<22} {:>8} {:>9} {:>7} {:>9} {:>9} {:>9} {:>9}",
        "store", "wall s", "steps/s", "events", "ms/event", "pg xacts", "takeovers", "peak MB"
    );
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let outcome = run(
            backend,
            1,
            "waits",
            &waits,
            scale,
            Duration::from_millis(500),
        );
        if let Some(r) = row(backend.name(), &outcome, scale * SCALE_STEPS, &mut failures) {
            println!(
                "    created in {:.1} s, start calls answered in {:.1} s; peak memory {:.1} MB (VmHWM), largest VmRSS seen {:.1} MB (target < 300 MB)",
                secs(r.created_in),
                secs(r.started_in),
                mb(r.hwm_kib),
                mb(r.sampled_kib)
            );
        }
    }
    println!("load average at the end: {}", load());
    if !failures.is_empty() {
        println!("\nFAILURES:");
        for f in &failures {
            println!("{f}\n");
        }
        std::process::exit(1);
    }
}
