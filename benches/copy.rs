//! Copy throughput of a `copy` step beside `pgloader`, on the same data in the same run: the
//! shop's big table (id, customer_id, amount decimal, status, a unicode note, created_at
//! timestamp, NULLs in every nullable column), 1,000,000 rows generated in MariaDB, copied
//! into the same PostgreSQL table (primary key included) by
//!
//! - `pgloader` (Debian's package; `data only, truncate`, its defaults otherwise: several
//!   readers and writers at once),
//! - `sensei run` of a runbook with one `copy` step (batches of 10,000: 100 transactions and
//!   100 checkpoints, each committed by the engine),
//! - `sensei __step copy`, the step's process run by hand without `$SENSEI_OUTPUT`: the same
//!   copy with no engine and no checkpoint,
//! - both again with batches of 1,000 (1,000 checkpoints), which gives the cost of one
//!   checkpoint: the difference between the two differences, per extra checkpoint.
//!
//! Target: sensei within 1.5x of pgloader's time while checkpointing. Each figure is the
//! best of [`ROUNDS`] rounds, interleaved (the machine is shared); the target table is
//! truncated before each copy, outside the timing.
//!
//! Needs the servers the tests use (`SENSEI_TEST_MYSQL`, `SENSEI_TEST_PG`, e.g.
//! `mysql://root@127.0.0.1:3306/test` and `postgres://postgres@127.0.0.1:5432/test`) and
//! `pgloader` on the PATH (`apt-get install pgloader`); without them it says why and skips.
//! Run with `cargo bench --bench copy`; `SENSEI_BENCH_COPY_ROWS=100000` for a shorter run.

#[path = "../tests/support/db.rs"]
mod db;

use db::{Kind, TestDb};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ROUNDS: usize = 2;
const BIN: &str = env!("CARGO_BIN_EXE_sensei");

fn main() {
    let Ok(found) = Command::new("pgloader").arg("--version").output() else {
        println!("skipped: pgloader is not installed (`apt-get install pgloader`)");
        return;
    };
    let pgloader_version = String::from_utf8_lossy(&found.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    let (Some(my), Some(pg)) = (TestDb::new(Kind::Mysql), TestDb::new(Kind::Postgres)) else {
        println!("skipped: the copy bench needs SENSEI_TEST_MYSQL and SENSEI_TEST_PG");
        return;
    };
    let rows: u64 = std::env::var("SENSEI_BENCH_COPY_ROWS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(1_000_000);
    let started = Instant::now();
    generate(&my, rows);
    pg.query(
        "CREATE TABLE orders (id bigint PRIMARY KEY, customer_id integer, amount numeric(12,2), status text, note text, created_at timestamptz)",
    );
    println!(
        "{rows} rows generated in MariaDB in {:.1}s; {pgloader_version}",
        started.elapsed().as_secs_f64()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let load = dir.path().join("load.pgl");
    std::fs::write(
        &load,
        format!(
            "LOAD DATABASE\n  FROM {}\n  INTO {}\n WITH data only, truncate\n INCLUDING ONLY TABLE NAMES MATCHING 'orders'\n ALTER SCHEMA '{}' RENAME TO 'public';\n",
            my.dsn(),
            pg.dsn(),
            my.name
        ),
    )
    .expect("load file");

    let expected = my.query("SELECT count(*), sum(amount), sum(customer_id) FROM orders");
    let check = |what: &str| {
        let found = pg.query("SELECT count(*), sum(amount), sum(customer_id) FROM orders");
        assert_eq!(found, expected, "{what} copied other rows");
    };
    let mut best = [Duration::MAX; 5];
    for _ in 0..ROUNDS {
        let times = [
            timed(&pg, || pgloader(&load), &check, "pgloader"),
            timed(
                &pg,
                || sensei_run(dir.path(), &my, &pg, 10_000),
                &check,
                "sensei run",
            ),
            timed(&pg, || direct(&my, &pg, 10_000), &check, "__step copy"),
            timed(
                &pg,
                || sensei_run(dir.path(), &my, &pg, 1_000),
                &check,
                "sensei run",
            ),
            timed(&pg, || direct(&my, &pg, 1_000), &check, "__step copy"),
        ];
        for (slot, time) in best.iter_mut().zip(times) {
            *slot = (*slot).min(time);
        }
    }
    let [loader, run_10k, direct_10k, run_1k, direct_1k] = best;
    let rate = |d: Duration| rows as f64 / d.as_secs_f64();
    println!("copy of {rows} rows, MariaDB -> PostgreSQL (best of {ROUNDS} rounds):");
    let line = |what: &str, d: Duration| {
        println!(
            "  {what:<58} {:>7.2} s  {:>9.0} rows/s  {:.2}x pgloader's time",
            d.as_secs_f64(),
            rate(d),
            d.as_secs_f64() / loader.as_secs_f64()
        );
    };
    line("pgloader (data only, truncate)", loader);
    let checkpoints = |batch: u64| rows.div_ceil(batch);
    line(
        &format!(
            "sensei run, batch 10000 ({} checkpoints)",
            checkpoints(10_000)
        ),
        run_10k,
    );
    line(
        "sensei __step copy, batch 10000 (no engine, no checkpoint)",
        direct_10k,
    );
    line(
        &format!(
            "sensei run, batch 1000 ({} checkpoints)",
            checkpoints(1_000)
        ),
        run_1k,
    );
    line(
        "sensei __step copy, batch 1000 (no engine, no checkpoint)",
        direct_1k,
    );
    let ratio = run_10k.as_secs_f64() / loader.as_secs_f64();
    println!(
        "  sensei/pgloader: {ratio:.2} (target: at most 1.5) {}",
        if ratio <= 1.5 { "met" } else { "NOT met" }
    );
    // What the engine and checkpoints add, at each batch size; the difference between the
    // two, per extra checkpoint, is what one checkpoint costs the copy.
    let added = |run: Duration, direct: Duration| run.as_secs_f64() - direct.as_secs_f64();
    let extra = checkpoints(1_000) - checkpoints(10_000);
    let per = (added(run_1k, direct_1k) - added(run_10k, direct_10k)) / extra as f64;
    println!(
        "  engine and checkpoints add {:.2} s at batch 10000, {:.2} s at batch 1000: {:.3} ms per checkpoint",
        added(run_10k, direct_10k),
        added(run_1k, direct_1k),
        per * 1e3
    );
    println!(
        "  a batch of 1000 instead of 10000 costs {:.3} ms per extra batch (transaction, statement, checkpoint)",
        (run_1k.as_secs_f64() - run_10k.as_secs_f64()) / extra as f64 * 1e3
    );
}

/// Fills MariaDB's `orders` with `rows` rows, 100,000 per statement.
fn generate(my: &TestDb, rows: u64) {
    my.query(
        "CREATE TABLE orders (id BIGINT PRIMARY KEY, customer_id INT NULL, amount DECIMAL(12,2) NOT NULL, status VARCHAR(16) NOT NULL, note TEXT NULL, created_at TIMESTAMP NULL) CHARACTER SET utf8mb4;
         CREATE TABLE digits (d INT); INSERT INTO digits VALUES (0),(1),(2),(3),(4),(5),(6),(7),(8),(9)",
    );
    let chunk = 100_000u64;
    let mut base = 0;
    while base < rows {
        let count = chunk.min(rows - base);
        my.query(&format!(
            "SET time_zone = '+00:00'; INSERT INTO orders
             SELECT {base} + n, IF(n % 10 = 0, NULL, n % 50000), (n % 100000) / 100 + 0.99,
                    ELT(1 + n % 4, 'new', 'paid', 'shipped', 'cancelled'),
                    IF(n % 7 = 0, NULL, CONCAT('Bestellung ', {base} + n, ' – café ☕ für Zoë, 東京, «rush»')),
                    IF(n % 13 = 0, NULL, TIMESTAMP('2024-01-01') + INTERVAL ({base} + n) SECOND)
             FROM (SELECT 1 + a.d + 10 * b.d + 100 * c.d + 1000 * e.d + 10000 * f.d AS n
                   FROM digits a, digits b, digits c, digits e, digits f) s
             WHERE n <= {count}"
        ));
        base += count;
    }
}

/// The time of `copy`, the target emptied before it and checked after it.
fn timed(pg: &TestDb, copy: impl FnOnce(), check: &impl Fn(&str), what: &str) -> Duration {
    pg.query("TRUNCATE orders");
    let start = Instant::now();
    copy();
    let time = start.elapsed();
    check(what);
    time
}

fn pgloader(load: &std::path::Path) {
    let out = Command::new("pgloader")
        .arg(load)
        .output()
        .expect("pgloader runs");
    assert!(
        out.status.success(),
        "pgloader failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sensei_run(dir: &std::path::Path, my: &TestDb, pg: &TestDb, batch: u32) {
    let file = dir.join(format!("copy-{batch}.yaml"));
    std::fs::write(
        &file,
        format!(
            "version: 1\nname: bench-copy\nparams:\n  src: {{ type: string }}\n  dst: {{ type: string }}\nsteps:\n  - id: copy\n    copy:\n      from: {{ dsn: \"{{{{params.src}}}}\", table: orders, key: id }}\n      to: {{ dsn: \"{{{{params.dst}}}}\" }}\n      batch: {batch}\n"
        ),
    )
    .expect("runbook");
    let state = tempfile::tempdir().expect("state dir");
    let out = Command::new(BIN)
        .arg("run")
        .arg(&file)
        .args(["-p", &format!("src={}", my.dsn())])
        .args(["-p", &format!("dst={}", pg.dsn())])
        .env("SENSEI_STATE_DIR", state.path())
        .stdin(Stdio::null())
        .output()
        .expect("sensei runs");
    assert!(
        out.status.success(),
        "sensei run failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The step's process by hand: its spec on stdin, no `$SENSEI_OUTPUT`.
fn direct(my: &TestDb, pg: &TestDb, batch: u32) {
    let spec = serde_json::json!({
        "from": { "dsn": my.dsn(), "table": "orders", "key": "id" },
        "to": { "dsn": pg.dsn(), "table": "orders" },
        "batch": batch,
    });
    let mut child = Command::new(BIN)
        .args(["__step", "copy"])
        .env_remove("SENSEI_OUTPUT")
        .env_remove("SENSEI_CHECKPOINT")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sensei __step copy runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(spec.to_string().as_bytes())
        .expect("spec written");
    let out = child.wait_with_output().expect("waited");
    assert!(
        out.status.success(),
        "sensei __step copy failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
