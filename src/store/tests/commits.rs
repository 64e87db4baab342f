//! Commits: a refused batch writes nothing and burns no seq, the state check and seqs hold
//! under concurrency, a dropped future keeps its commit (on each backend, `pg::each`); and
//! SQLite's group commit: a refused batch leaves its group alone, and the throughput figure.

use super::*;
use crate::event::MigrationState;
use std::time::{Duration, Instant};

/// SQLite's own: its group commit (a lock held on its file from outside).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_batch_writes_nothing_and_its_group_still_commits() {
    let (dir, store) = store();
    let m = create(&store, "m-aaaa00000001");
    let other = create(&store, "m-aaaa00000002");

    // Hold the write lock from outside so that the batches below queue up and are committed
    // by the writer as one group once the lock is released.
    let blocker = raw(&dir);
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let first = store.commit_async(&other, Batch::default()); // takes the writer into BEGIN
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (tx0, jobs0) = store.write_stats();

    let good = |step: &str| Batch {
        expect_state: Some(MigrationState::Created),
        events: vec![event(EventKind::StepStarted, step)],
        steps: vec![super::step(step, StepState::Running)],
        ..Batch::default()
    };
    let before = store.commit_async(&m, good("a"));
    let refused = store.commit_async(
        &m,
        Batch {
            expect_state: Some(MigrationState::Running),
            state: Some(MigrationState::Paused),
            events: vec![event(EventKind::StepFailed, "b")],
            steps: vec![super::step("b", StepState::Failed)],
            ..Batch::default()
        },
    );
    let after = store.commit_async(&m, good("c"));
    tokio::time::sleep(Duration::from_millis(50)).await;
    blocker.execute_batch("COMMIT").unwrap();

    first.await.unwrap();
    assert_eq!(before.await.unwrap().seqs, [2]);
    assert_eq!(
        refused.await.unwrap_err(),
        StoreError::StateChanged {
            expected: MigrationState::Running,
            found: MigrationState::Created
        }
    );
    assert_eq!(after.await.unwrap().seqs, [3], "no seq was burnt");
    let (tx1, jobs1) = store.write_stats();
    assert_eq!(
        (tx1 - tx0, jobs1 - jobs0),
        (1, 3),
        "the three were one group"
    );

    let events = store.events(&m, 0).unwrap();
    let kinds: Vec<_> = events.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            EventKind::MigrationCreated,
            EventKind::StepStarted,
            EventKind::StepStarted
        ]
    );
    let steps = store.steps(&m).unwrap();
    let states: Vec<_> = steps.iter().map(|s| s.state).collect();
    assert_eq!(
        states,
        [StepState::Running, StepState::Pending, StepState::Running]
    );
    assert_eq!(
        store.migration(&m).unwrap().unwrap().state,
        MigrationState::Created
    );
}

#[test]
fn a_refused_batch_writes_nothing_and_burns_no_seq() {
    for (store, fresh) in pg::each() {
        let m = create(&store, "m-aaaa00000001");
        let good = |step: &str| Batch {
            expect_state: Some(MigrationState::Created),
            events: vec![event(EventKind::StepStarted, step)],
            steps: vec![super::step(step, StepState::Running)],
            ..Batch::default()
        };
        assert_eq!(store.commit(&m, good("a")).unwrap().seqs, [2]);
        let refused = store.commit(
            &m,
            Batch {
                expect_state: Some(MigrationState::Running),
                state: Some(MigrationState::Paused),
                events: vec![event(EventKind::StepFailed, "b")],
                steps: vec![super::step("b", StepState::Failed)],
                ..Batch::default()
            },
        );
        assert_eq!(
            refused.unwrap_err(),
            StoreError::StateChanged {
                expected: MigrationState::Running,
                found: MigrationState::Created
            },
            "{fresh}"
        );
        assert_eq!(store.commit(&m, good("c")).unwrap().seqs, [3], "{fresh}");
        let kinds: Vec<_> = store
            .events(&m, 0)
            .unwrap()
            .iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(
            kinds,
            [
                EventKind::MigrationCreated,
                EventKind::StepStarted,
                EventKind::StepStarted
            ]
        );
        let states: Vec<_> = store.steps(&m).unwrap().iter().map(|s| s.state).collect();
        assert_eq!(
            states,
            [StepState::Running, StepState::Pending, StepState::Running]
        );
        let read = store.migration(&m).unwrap().unwrap();
        assert_eq!((read.state, read.last_seq), (MigrationState::Created, 3));
    }
}

#[test]
fn the_state_check_sees_earlier_batches_of_the_same_group() {
    // Two writers both move the migration out of `created`: exactly one wins (SQLite: in
    // one group; PostgreSQL: on two connections, one waiting for the other's row lock).
    for (store, _fresh) in pg::each() {
        let m = create(&store, "m-aaaa00000001");
        let to = |from, to| Batch {
            expect_state: Some(from),
            state: Some(to),
            ..Batch::default()
        };
        let threads: Vec<_> = [MigrationState::Analyzing, MigrationState::Cancelled]
            .into_iter()
            .map(|target| {
                let (store, m) = (store.clone(), m.clone());
                std::thread::spawn(move || store.commit(&m, to(MigrationState::Created, target)))
            })
            .collect();
        let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(
            results.iter().filter(|r| r.is_ok()).count(),
            1,
            "{results:?}"
        );
        assert!(
            results
                .iter()
                .any(|r| matches!(r, Err(StoreError::StateChanged { .. })))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn seqs_stay_consecutive_under_concurrent_commits() {
    for (store, fresh) in pg::each() {
        let m = create(&store, "m-aaaa00000001");
        let mut tasks = tokio::task::JoinSet::new();
        for task in 0..32 {
            let (store, m) = (store.clone(), m.clone());
            tasks.spawn(async move {
                let mut seqs = Vec::new();
                for i in 0..20 {
                    let n = 1 + (task + i) % 3;
                    let events = (0..n)
                        .map(|k| event(EventKind::StepStarted, &format!("t{task}-{i}-{k}")))
                        .collect();
                    let committed = store
                        .commit_async(
                            &m,
                            Batch {
                                events,
                                ..Batch::default()
                            },
                        )
                        .await
                        .unwrap();
                    assert_eq!(committed.seqs.len(), n);
                    assert!(
                        committed.seqs.windows(2).all(|w| w[1] == w[0] + 1),
                        "a batch's seqs are consecutive: {:?}",
                        committed.seqs
                    );
                    seqs.extend(committed.seqs);
                }
                seqs
            });
        }
        let mut all = Vec::new();
        while let Some(seqs) = tasks.join_next().await {
            all.extend(seqs.unwrap());
        }
        all.sort_unstable();
        let expected: Vec<i64> = (2..2 + all.len() as i64).collect();
        assert_eq!(all, expected, "no gap, no duplicate");

        let events = store.events(&m, 0).unwrap();
        assert_eq!(events.len(), all.len() + 1);
        assert!(events.windows(2).all(|w| w[1].seq == w[0].seq + 1));
        assert!(
            events.windows(2).all(|w| w[1].at >= w[0].at),
            "commit times never go back"
        );
        let last = store.migration(&m).unwrap().unwrap().last_seq;
        assert_eq!(last, all.len() as i64 + 1);
        // SQLite's own: its writer groups commits.
        if !fresh.is_postgres() {
            let (transactions, jobs) = store.write_stats();
            assert!(
                transactions < jobs,
                "commits were grouped: {jobs} in {transactions}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_future_does_not_lose_its_commit() {
    for (store, fresh) in pg::each() {
        let m = create(&store, "m-aaaa00000001");
        // The batch is sent when the future is made; dropping it only drops the answer.
        drop(store.commit_async(
            &m,
            Batch {
                events: vec![event(EventKind::StepStarted, "a")],
                ..Batch::default()
            },
        ));
        store.flush_async().await.unwrap();
        if !fresh.is_postgres() {
            // SQLite's flush follows the commit through its one writer.
            assert_eq!(store.events(&m, 0).unwrap().len(), 2, "{fresh}");
        }
        // PostgreSQL's flush covers only its queue (log lines...): the commit runs on a
        // task of its own, which ends soon.
        let deadline = Instant::now() + Duration::from_secs(10);
        while store.events(&m, 0).unwrap().len() < 2 {
            assert!(Instant::now() < deadline, "{fresh}: the commit was lost");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// The figure for the report: `cargo test --release -- --ignored --nocapture group_commit`
/// (SQLite's group commit).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: run on demand"]
async fn group_commit_throughput() {
    for durability in [Durability::Full, Durability::Normal] {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_with(dir.path(), durability).unwrap();
        let migrations: Vec<_> = (0..64)
            .map(|i| create(&store, &format!("m-bench{i:04}")))
            .collect();
        let (tx0, jobs0) = store.write_stats();
        let start = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for (task, m) in migrations.into_iter().enumerate() {
            let store = store.clone();
            tasks.spawn(async move {
                // 10,000 over 64 tasks: the first 16 do one more.
                let n = 10_000 / 64 + usize::from(task < 10_000 % 64);
                for i in 0..n {
                    let mut row = super::step("a", StepState::Running);
                    row.attempts = i as u32;
                    store
                        .commit_async(
                            &m,
                            Batch {
                                events: vec![event(EventKind::StepStarted, "a")],
                                steps: vec![row],
                                ..Batch::default()
                            },
                        )
                        .await
                        .unwrap();
                }
            });
        }
        while let Some(r) = tasks.join_next().await {
            r.unwrap();
        }
        let elapsed = start.elapsed();
        let (tx1, jobs1) = store.write_stats();
        let (transactions, jobs) = (tx1 - tx0, jobs1 - jobs0);
        assert_eq!(jobs, 10_000);
        println!(
            "{durability:?}: 10000 commits from 64 tasks in {:.2} s = {:.0} commits/s; \
             {transactions} transactions, {:.1} commits per transaction",
            elapsed.as_secs_f64(),
            10_000.0 / elapsed.as_secs_f64(),
            jobs as f64 / transactions as f64
        );

        // One caller alone: the latency of a single commit (one fsync at Full).
        let m = id("m-bench0000");
        let start = Instant::now();
        for _ in 0..200 {
            store.commit_async(&m, Batch::default()).await.unwrap();
        }
        println!(
            "{durability:?}: one caller alone: {:.2} ms per commit",
            start.elapsed().as_secs_f64() * 1000.0 / 200.0
        );
    }
}
