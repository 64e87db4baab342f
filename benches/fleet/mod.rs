//! A fleet for the servers bench: `sensei serve` processes (this build's binary, through the
//! tests' harness) on one store, either the SQLite of a state directory or a PostgreSQL
//! database of the bench's own (`sensei_bench_<random>`, dropped with the fleet); and what
//! the bench does with them: create and start migrations round-robin from several client
//! threads, wait for them with a deadline, read the servers' memory and the store's counts.

use crate::db::{Kind, TestDb};
use crate::harness::{Dir, Server};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

/// Servers, then their database, then their directory: dropped in that order, so every
/// server is killed before its database is dropped.
pub struct Fleet {
    pub servers: Vec<Server>,
    pub db: Option<TestDb>,
    /// Holds the runbooks, the state directory and the logs until the servers are gone.
    _dir: Dir,
}

/// How a wait ended well: when the store says the last migration changed (its clock), and
/// the servers' largest resident memory seen while polling, in KiB.
#[derive(Debug)]
pub struct Finished {
    pub last_update: DateTime<Utc>,
    pub sampled_rss_kib: u64,
}

impl Fleet {
    /// `n` servers on a fresh store of `backend`, offering `runbooks` (file name, text).
    /// `None` when PostgreSQL is wanted and `SENSEI_TEST_PG` is not set.
    pub fn start(backend: Backend, n: usize, runbooks: &[(&str, &str)]) -> Option<Fleet> {
        let dir = Dir::new();
        for (file, text) in runbooks {
            dir.runbook(file, text);
        }
        let db = match backend {
            Backend::Postgres => Some(TestDb::with_prefix(Kind::Postgres, "sensei_bench")?),
            Backend::Sqlite => None,
        };
        let dsn = db.as_ref().map(TestDb::dsn);
        let args: Vec<&str> = dsn.as_deref().map_or(Vec::new(), |d| vec!["--store", d]);
        // The server's default log level: debug lines would cost the figures a log write
        // per step.
        let servers = (0..n)
            .map(|_| dir.serve_with_tokens(&args, &[("SENSEI_LOG", "info")]))
            .collect();
        Some(Fleet {
            servers,
            db,
            _dir: dir,
        })
    }

    /// Creates `n` migrations of `runbook` from `threads` client threads, round-robin across
    /// the servers; their ids, in creation order.
    pub fn create(&self, runbook: &str, n: usize, threads: usize) -> Vec<String> {
        let made = self.each(n, threads, |server, _| {
            server.create(Some("ops-token"), runbook, "{}")
        });
        made.into_iter().map(|(_, id)| id).collect()
    }

    /// Starts every migration of `ids` from `threads` client threads, migration `i` on
    /// server `i % servers`: that server drives it.
    pub fn start_all(&self, ids: &[String], threads: usize) {
        self.each(ids.len(), threads, |server, i| {
            server
                .post(&format!("/v1/migrations/{}/start", ids[i]), "")
                .expect(200);
        });
    }

    /// Runs `call(server i % servers, i)` for `i` in `0..n` on `threads` threads; the
    /// results by `i`.
    fn each<T: Send>(
        &self,
        n: usize,
        threads: usize,
        call: impl Fn(&Server, usize) -> T + Sync,
    ) -> Vec<(usize, T)> {
        let next = AtomicUsize::new(0);
        let mut all: Vec<(usize, T)> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads.clamp(1, n.max(1)))
                .map(|_| {
                    scope.spawn(|| {
                        let mut mine = Vec::new();
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            if i >= n {
                                return mine;
                            }
                            mine.push((i, call(&self.servers[i % self.servers.len()], i)));
                        }
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        });
        all.sort_by_key(|(i, _)| *i);
        all
    }

    /// Polls the first server's list every `every` until every migration of `runbook` is
    /// certified; an error naming the states seen (and the servers' last log lines) when
    /// one fails, pauses or is cancelled, or at the deadline.
    pub fn wait_certified(
        &self,
        runbook: &str,
        n: usize,
        every: Duration,
        deadline: Duration,
    ) -> Result<Finished, String> {
        let until = Instant::now() + deadline;
        let mut rss = 0;
        loop {
            rss = rss.max(self.rss_kib("VmRSS:"));
            let list = self.servers[0]
                .get(&format!("/v1/migrations?runbook={runbook}"))
                .expect(200)
                .json;
            let items = list.as_array().cloned().unwrap_or_default();
            let mut states: BTreeMap<String, usize> = BTreeMap::new();
            for m in &items {
                *states
                    .entry(m["state"].as_str().unwrap_or("?").to_owned())
                    .or_default() += 1;
            }
            let certified = states.get("certified").copied().unwrap_or(0);
            let stuck = ["failed", "paused", "cancelled"]
                .iter()
                .any(|s| states.contains_key(*s));
            if certified == n && items.len() == n {
                let last_update = items
                    .iter()
                    .filter_map(|m| m["updated_at"].as_str())
                    .filter_map(|t| DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.to_utc())
                    .max()
                    .ok_or("no updated_at in the list")?;
                return Ok(Finished {
                    last_update,
                    sampled_rss_kib: rss,
                });
            }
            if stuck || Instant::now() >= until {
                let why = if stuck {
                    "a migration stopped short of certified".to_owned()
                } else {
                    format!("TIMED OUT after {} s", deadline.as_secs())
                };
                return Err(format!(
                    "{why}: {n} migrations of `{runbook}` by state {states:?}\n{}",
                    self.log_tails(15)
                ));
            }
            std::thread::sleep(every);
        }
    }

    /// The sum over the servers of a `/proc/PID/status` figure in KiB (`VmRSS:`, `VmHWM:`).
    pub fn rss_kib(&self, field: &str) -> u64 {
        self.servers
            .iter()
            .map(|s| proc_status_kib(s.child.id(), field))
            .sum()
    }

    /// Events committed for `ids`, read through the API.
    pub fn events(&self, ids: &[String]) -> usize {
        ids.iter().map(|id| self.servers[0].events(id).len()).sum()
    }

    /// Migrations the servers took over from another (0 unless a lease was lost).
    pub fn takeovers(&self) -> u64 {
        self.servers
            .iter()
            .map(|s| s.get("/v1/ready").expect(200).json["takeovers"].as_u64())
            .map(|t| t.unwrap_or(0))
            .sum()
    }

    /// Transactions PostgreSQL counts as committed in the fleet's database so far (reads
    /// included; each backend reports its counts within about a second, or when it exits).
    pub fn pg_commits(&self) -> Option<u64> {
        let db = self.db.as_ref()?;
        let rows = db.admin_query(&format!(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = '{}'",
            db.name
        ));
        rows.first()?.first()?.as_ref()?.parse().ok()
    }

    /// [`Fleet::pg_commits`] once two readings 300 ms apart agree (at most 5 s): after
    /// [`Fleet::stop`], when the last sessions' counts have arrived.
    pub fn pg_commits_settled(&self) -> Option<u64> {
        let mut last = self.pg_commits()?;
        for _ in 0..16 {
            std::thread::sleep(Duration::from_millis(300));
            let now = self.pg_commits()?;
            if now == last {
                break;
            }
            last = now;
        }
        Some(last)
    }

    /// Stops every server with SIGTERM (so each PostgreSQL session ends and reports its
    /// counts); the servers that did not exit 0.
    pub fn stop(&mut self) -> Vec<String> {
        self.servers
            .drain(..)
            .enumerate()
            .filter_map(|(i, s)| {
                let code = s.terminate();
                (code != 0).then(|| format!("server {i} exited {code}"))
            })
            .collect()
    }

    fn log_tails(&self, lines: usize) -> String {
        self.servers
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let log = s.log();
                let all: Vec<&str> = log.lines().collect();
                let tail = all[all.len().saturating_sub(lines)..].join("\n");
                format!("--- server {i}'s log, last {lines} lines:\n{tail}")
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A figure of `/proc/PID/status` in KiB; 0 when the process is gone.
pub fn proc_status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Milliseconds from `start` to `end` on the wall clock (both read on this machine).
pub fn span(start: DateTime<Utc>, end: DateTime<Utc>) -> Duration {
    (end - start).to_std().unwrap_or_default()
}
