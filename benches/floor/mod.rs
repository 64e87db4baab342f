//! The floor under the engine benchmark: what the durability rule alone costs on this machine.
//!
//! The rule (issue #3, SPEC §4): a step's start is committed with fsync before its process is
//! spawned. This loop does that and nothing else Sensei does (no runbook, plan, events,
//! templates, masking, reaper or logs): a writer thread commits one SQLite row per start and
//! per end in WAL mode with `synchronous=FULL`, grouping what is queued into one transaction,
//! exactly as the store does; a one-thread tokio runtime spawns `sh -c true` with piped
//! output in its own process group, as `process::run` does, and waits for it.
//!
//! Sensei cannot be faster than this on the same machine, so `sensei / floor` is the
//! engine's own overhead, and `floor / make` is the price of the rule itself. The same loop
//! with `synchronous=NORMAL` (commits without fsync) shows how much of that price is the
//! fsync.

use rusqlite::Connection;
use std::path::Path;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::sync::oneshot;
use tokio::task::JoinSet;

/// Rows to commit (step, what happened) and who waits for the COMMIT.
type Job = (Vec<(usize, &'static str)>, oneshot::Sender<()>);

/// Runs `steps` independent `true` steps at `concurrency`, each start committed (at
/// `synchronous`, `FULL` or `NORMAL`) before its spawn; returns the wall time.
pub fn wide(dir: &Path, steps: usize, concurrency: usize, synchronous: &str) -> Duration {
    let db = dir.join(format!("floor-{}.db", fastrand::u64(..)));
    let jobs = writer(&db, synchronous);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let start = Instant::now();
    runtime.block_on(async move {
        let mut running = JoinSet::new();
        let mut next = 0;
        let first: Vec<_> = (0..concurrency.min(steps))
            .map(|s| (s, "started"))
            .collect();
        commit(&jobs, first).await;
        while next < concurrency.min(steps) {
            running.spawn(run_true(next));
            next += 1;
        }
        while let Some(done) = running.join_next().await {
            let mut rows = vec![(done.expect("step task"), "succeeded")];
            if next < steps {
                rows.push((next, "started"));
            }
            commit(&jobs, rows).await;
            if next < steps {
                running.spawn(run_true(next));
                next += 1;
            }
        }
    });
    start.elapsed()
}

async fn commit(jobs: &mpsc::Sender<Job>, rows: Vec<(usize, &'static str)>) {
    let (tx, rx) = oneshot::channel();
    jobs.send((rows, tx)).expect("writer");
    rx.await.expect("commit");
}

/// `sh -c true` the way `process::run` starts a step; returns `step` once it is reaped.
async fn run_true(step: usize) -> usize {
    let mut child = tokio::process::Command::new("/bin/sh")
        .args(["-c", "true"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("spawn sh");
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let _ = tokio::join!(stdout.read_to_end(&mut out), stderr.read_to_end(&mut err));
    let status = child.wait().await.expect("wait");
    assert!(status.success(), "sh -c true failed");
    step
}

/// The group-commit writer thread; it ends when the sender is dropped.
fn writer(db: &Path, synchronous: &str) -> mpsc::Sender<Job> {
    let conn = Connection::open(db).expect("open floor db");
    conn.pragma_update(None, "journal_mode", "WAL")
        .expect("wal");
    conn.pragma_update(None, "synchronous", synchronous)
        .expect("sync");
    conn.pragma_update(None, "wal_autocheckpoint", 200)
        .expect("checkpoint");
    conn.execute_batch(
        "CREATE TABLE events (seq INTEGER PRIMARY KEY, step INTEGER NOT NULL, kind TEXT NOT NULL)",
    )
    .expect("schema");
    let (tx, rx) = mpsc::channel::<Job>();
    std::thread::spawn(move || {
        while let Ok(first) = rx.recv() {
            let mut group = vec![first];
            group.extend(rx.try_iter());
            conn.execute_batch("BEGIN IMMEDIATE").expect("begin");
            for (rows, _) in &group {
                for (step, kind) in rows {
                    conn.prepare_cached("INSERT INTO events (step, kind) VALUES (?1, ?2)")
                        .and_then(|mut insert| insert.execute((*step as i64, *kind)))
                        .expect("insert");
                }
            }
            conn.execute_batch("COMMIT").expect("commit");
            for (_, done) in group {
                let _ = done.send(());
            }
        }
    });
    tx
}
