//! A small builder for running the real `sensei` binary against a temporary state
//! directory and runbooks written inline, plus polling helpers with deadlines (no sleeps as
//! synchronisation).
#![allow(dead_code)]

pub mod http;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_sensei");

/// A scratch directory with a state dir and runbooks.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

/// The result of one command.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    /// The code, stdout and stderr of a finished command (code -1: killed by a signal, which
    /// every assertion on the code then shows with both streams).
    fn from(output: Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Run {
    /// The id printed on the first line by `sensei run`.
    pub fn id(&self) -> String {
        migration_id(&self.stdout).unwrap_or_else(|| panic!("no id in output:\n{self:?}"))
    }

    pub fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "command failed:\n{}\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

pub fn migration_id(stdout: &str) -> Option<String> {
    let first = stdout.lines().next()?;
    let id = first.strip_prefix("migration ")?.strip_suffix(" created")?;
    Some(id.to_owned())
}

impl Sandbox {
    pub fn new() -> Sandbox {
        Sandbox {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a file in the sandbox (a runbook, a script) and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).expect("write");
        path
    }

    /// The text of a file in the sandbox; fails naming the file when it cannot be read (a
    /// missing file is not an empty one).
    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name))
            .unwrap_or_else(|e| panic!("cannot read {name} in the sandbox: {e}"))
    }

    /// The lines of a file the steps write; none when they never wrote it.
    pub fn lines(&self, name: &str) -> Vec<String> {
        let path = self.path(name);
        if !path.exists() {
            return Vec::new();
        }
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
            .lines()
            .map(str::to_owned)
            .collect()
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .current_dir(self.dir.path())
            .env("SENSEI_STATE_DIR", self.path(".sensei"))
            .env("USER", "starter")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `sensei ARGS` to completion.
    pub fn sensei(&self, args: &[&str]) -> Run {
        Run::from(self.command(args).output().expect("run sensei"))
    }

    /// Starts `sensei ARGS` in the background, output captured to files.
    pub fn spawn(&self, args: &[&str]) -> Background {
        self.spawn_with_env(args, &[])
    }

    /// [`Sandbox::spawn`] with extra environment variables.
    pub fn spawn_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Background {
        let out = self.path(&format!("bg-{}.out", fastrand_suffix()));
        let err = out.with_extension("err");
        let child = self
            .command(args)
            .envs(env.iter().copied())
            .stdout(std::fs::File::create(&out).expect("out file"))
            .stderr(std::fs::File::create(&err).expect("err file"))
            .spawn()
            .expect("spawn sensei");
        Background { child, out, err }
    }

    /// `sensei status ID --format json`, parsed.
    pub fn status(&self, id: &str) -> serde_json::Value {
        let run = self.sensei(&["status", id, "--format", "json"]);
        assert_eq!(run.code, 0, "status failed: {run:?}");
        serde_json::from_str(&run.stdout).expect("status json")
    }

    pub fn state(&self, id: &str) -> String {
        let status = self.status(id);
        status["state"]
            .as_str()
            .unwrap_or_else(|| panic!("no state in the status of {id}: {status}"))
            .to_owned()
    }

    pub fn step(&self, id: &str, step: &str) -> serde_json::Value {
        let status = self.status(id);
        status["steps"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["step"] == step).cloned())
            .unwrap_or_else(|| panic!("no step {step} in {status}"))
    }

    pub fn events(&self, id: &str) -> Vec<serde_json::Value> {
        let run = self.sensei(&["events", id, "--format", "json"]);
        assert_eq!(run.code, 0, "events failed: {run:?}");
        serde_json::from_str(&run.stdout).expect("events json")
    }

    /// The `to` of every state change, in order.
    pub fn states(&self, id: &str) -> Vec<String> {
        self.events(id)
            .iter()
            .filter(|e| e["kind"] == "state_changed")
            .map(|e| {
                e["data"]["to"]
                    .as_str()
                    .unwrap_or_else(|| panic!("a state change without `to`: {e}"))
                    .to_owned()
            })
            .collect()
    }
}

/// Every text the SQLite state database in `state_dir` holds — each table, each column —
/// except `migrations.params`, the one place allowed to keep secret param values (a resumed
/// migration needs them). Each text is prefixed by its `table.column`, so a finding says
/// where it was.
pub fn stored_texts(state_dir: &Path) -> String {
    let db = state_dir.join("sensei.db");
    let conn =
        rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap_or_else(|e| panic!("open {}: {e}", db.display()));
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .and_then(|mut q| q.query_map([], |r| r.get(0))?.collect())
        .expect("list tables");
    assert!(
        tables.iter().any(|t| t == "events"),
        "no events table in {tables:?}"
    );
    let mut out = String::new();
    for table in tables {
        let mut query = conn
            .prepare(&format!("SELECT * FROM \"{table}\""))
            .expect("select");
        let columns: Vec<String> = query.column_names().map(str::to_owned).collect();
        let mut rows = query.query([]).expect("query");
        while let Some(row) = rows.next().expect("row") {
            for (i, column) in columns.iter().enumerate() {
                if table == "migrations" && column == "params" {
                    continue;
                }
                let text = match row.get::<_, rusqlite::types::Value>(i).expect("value") {
                    rusqlite::types::Value::Text(t) => t,
                    rusqlite::types::Value::Blob(b) => String::from_utf8_lossy(&b).into_owned(),
                    _ => continue,
                };
                out.push_str(&format!("{table}.{column}: {text}\n"));
            }
        }
    }
    out
}

/// The secret params as stored: proof that [`stored_texts`] looks where secrets are.
pub fn stored_params(state_dir: &Path) -> String {
    let db = state_dir.join("sensei.db");
    let conn =
        rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap_or_else(|e| panic!("open {}: {e}", db.display()));
    let params: Vec<String> = conn
        .prepare("SELECT params FROM migrations")
        .and_then(|mut q| q.query_map([], |r| r.get(0))?.collect())
        .expect("params");
    params.concat()
}

/// Asserts that no `needle` occurs in any of the named `texts`, naming where one does.
pub fn assert_hidden(texts: &[(&str, &str)], needles: &[&str]) {
    for (place, text) in texts {
        for needle in needles {
            if let Some(at) = text.find(needle) {
                let from = text[..at]
                    .char_indices()
                    .rev()
                    .nth(200)
                    .map_or(0, |(i, _)| i);
                let to = (at + needle.len() + 200).min(text.len());
                let to = (to..=text.len())
                    .find(|&i| text.is_char_boundary(i))
                    .unwrap_or(text.len());
                panic!("`{needle}` leaked into {place}: ...{}...", &text[from..to]);
            }
        }
    }
}

impl Sandbox {
    /// What the inspecting commands show of a migration, text and JSON: (what, output).
    pub fn shown(&self, id: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for args in [
            vec!["status", id],
            vec!["status", id, "--format", "json"],
            vec!["events", id],
            vec!["events", id, "--format", "json"],
            vec!["logs", id],
            vec!["logs", id, "--format", "json"],
        ] {
            let run = self.sensei(&args).ok();
            out.push((args.join(" "), format!("{}{}", run.stdout, run.stderr)));
        }
        out.push((
            "the state database".into(),
            stored_texts(&self.path(".sensei")),
        ));
        out
    }
}

fn fastrand_suffix() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("the clock is after 1970")
            .as_nanos()
    )
}

/// A `sensei` running in the background.
pub struct Background {
    pub child: Child,
    out: PathBuf,
    err: PathBuf,
}

impl Background {
    /// What the process printed so far (the file exists from the spawn on).
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.out)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", self.out.display()))
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", self.err.display()))
    }

    /// Waits (bounded) for the id line.
    pub fn id(&self) -> String {
        wait_for("migration id", || migration_id(&self.stdout()))
    }

    /// Waits for the process to exit and returns its exit code.
    pub fn finish(mut self) -> Run {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return Run {
                    // -1: killed by a signal (shown by any assertion on the code).
                    code: status.code().unwrap_or(-1),
                    stdout: self.stdout(),
                    stderr: self.stderr(),
                };
            }
            assert!(
                Instant::now() < deadline,
                "sensei did not exit:\n{}\n{}",
                self.stdout(),
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `kill -9`.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `probe` until it gives a value (deadline 30 s).
pub fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// True when a process with this pid exists (and is not a zombie).
pub fn alive(pid: i32) -> bool {
    // No /proc entry is what a process that is gone looks like: not alive.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .split(") ")
            .nth(1)
            .is_some_and(|rest| rest.starts_with('Z')),
        Err(_) => false,
    }
}

/// The pids a step wrote to `path`, one per line; fails naming the file when it cannot be
/// read or holds something else than pids.
pub fn pids_in(path: &Path) -> Vec<i32> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.split_whitespace()
        .map(|p| {
            p.parse()
                .unwrap_or_else(|e| panic!("not a pid in {}: {p:?} ({e})", path.display()))
        })
        .collect()
}
