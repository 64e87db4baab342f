//! Live reports: lines of `$SENSEI_OUTPUT` with a reserved key, which a step writes while it
//! runs and the engine commits as they arrive (SPEC §7), unlike ordinary outputs, which are
//! read once the process has exited.
//!
//! The reserved keys and how their values read are in [`reserved`], the one place both the
//! [`Follower`] (while the step runs) and the final read (`outputs`) consult: `progress` and
//! `checkpoint`; a key added there becomes a [`LiveReport`] variant and is kept out of the
//! outputs in both places.
//!
//! The follower never slows the step: the step writes its file as it likes, and the engine
//! looks at it on a timer ([`FOLLOW_EVERY`]), reading only bytes it has not read, only
//! complete lines, and at most [`MAX_LOOK`] bytes per look. When a step writes faster than
//! that, the follower skips to the newest bytes: only the latest value of each kind matters.
//! It reports a kind only when its value changed, so at most one report per kind per look.

use crate::event::{Checkpoint, Progress};
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::Duration;

/// How often the engine looks at a running step's `$SENSEI_OUTPUT` for live reports.
pub const FOLLOW_EVERY: Duration = Duration::from_millis(250);

/// The most the follower reads per look; older unread bytes are skipped.
const MAX_LOOK: u64 = 256 * 1024;

/// What a running step reported through a reserved key of `$SENSEI_OUTPUT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveReport {
    /// `progress=DONE/TOTAL`.
    Progress(Progress),
    /// `checkpoint=VALUE`, a valid value ([`Checkpoint::parse`]).
    Checkpoint(String),
}

impl LiveReport {
    /// Which kind of report this is: a later report of the same kind replaces it.
    fn kind(&self) -> usize {
        match self {
            LiveReport::Progress(_) => 0,
            LiveReport::Checkpoint(_) => 1,
        }
    }
}

/// How many kinds of [`LiveReport`] there are.
const KINDS: usize = 2;

/// A `key=value` line whose key is reserved: the report it makes, or why its value is not
/// one (a sentence naming the key). `None` for an ordinary output key.
pub(super) fn reserved(key: &str, value: &str) -> Option<Result<LiveReport, String>> {
    match key {
        "progress" => Some(
            Progress::parse(value)
                .map(LiveReport::Progress)
                .map_err(|e| format!("`progress={}` is not a progress report: {e}", value.trim())),
        ),
        "checkpoint" => Some(
            Checkpoint::parse(value)
                .map(|v| LiveReport::Checkpoint(v.to_owned()))
                .map_err(|e| {
                    format!(
                        "`checkpoint={}` is not a checkpoint (it was not recorded): {e}",
                        Checkpoint::shown(&value.escape_debug().to_string(), 40)
                    )
                }),
        ),
        _ => None,
    }
}

/// The valid report of one line of `$SENSEI_OUTPUT`, if it has a reserved key.
fn report_of(line: &[u8]) -> Option<LiveReport> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let at = line.iter().position(|&b| b == b'=')?;
    let key = std::str::from_utf8(&line[..at]).ok()?;
    let value = std::str::from_utf8(&line[at + 1..]).ok()?;
    reserved(key, value)?.ok()
}

/// Follows one run's `$SENSEI_OUTPUT` while the step runs (see the module documentation).
#[derive(Debug)]
pub(super) struct Follower {
    path: PathBuf,
    /// Bytes before this offset were looked at.
    offset: u64,
    /// The bytes at `offset` continue a line whose start was skipped: drop up to its end.
    in_skipped_line: bool,
    /// The last report of each kind handed on.
    last: [Option<LiveReport>; KINDS],
}

impl Follower {
    pub(super) fn new(path: PathBuf) -> Follower {
        Follower {
            path,
            offset: 0,
            in_skipped_line: false,
            last: Default::default(),
        }
    }

    /// Looks at what was written since the last look: the newest valid report of each kind
    /// in the complete lines, where it differs from what was handed on before. A file that
    /// cannot be read (the step removed it) has nothing new.
    pub(super) fn look(&mut self) -> Vec<LiveReport> {
        let bytes = match self.read_new() {
            Ok(bytes) => bytes,
            Err(_) => return Vec::new(),
        };
        let mut newest: [Option<LiveReport>; KINDS] = Default::default();
        for line in bytes.split(|&b| b == b'\n') {
            if let Some(report) = report_of(line) {
                let kind = report.kind();
                newest[kind] = Some(report);
            }
        }
        self.changed(newest)
    }

    /// What the final read of the file found (the last valid report of each kind), where it
    /// differs from what was handed on: so that the last report handed on is the file's.
    pub(super) fn settle(&mut self, last: Vec<LiveReport>) -> Vec<LiveReport> {
        let mut newest: [Option<LiveReport>; KINDS] = Default::default();
        for report in last {
            let kind = report.kind();
            newest[kind] = Some(report);
        }
        self.changed(newest)
    }

    /// The reports of `newest` that differ from the last ones handed on (which they become).
    fn changed(&mut self, newest: [Option<LiveReport>; KINDS]) -> Vec<LiveReport> {
        let mut out = Vec::new();
        for (kind, report) in newest.into_iter().enumerate() {
            if let Some(report) = report
                && self.last[kind].as_ref() != Some(&report)
            {
                self.last[kind] = Some(report.clone());
                out.push(report);
            }
        }
        out
    }

    /// The complete lines written since the last look (at most [`MAX_LOOK`] bytes, the
    /// newest), and moves past them. A partial last line stays for the next look.
    fn read_new(&mut self) -> std::io::Result<Vec<u8>> {
        let mut file = std::fs::File::open(&self.path)?;
        let len = file.metadata()?.len();
        if len < self.offset {
            // Truncated and written again (`>` rather than `>>`): start over.
            self.offset = 0;
            self.in_skipped_line = false;
        }
        if len == self.offset {
            return Ok(Vec::new());
        }
        let mut start = self.offset;
        if len - start > MAX_LOOK {
            start = len - MAX_LOOK;
            self.in_skipped_line = true;
        }
        file.seek(SeekFrom::Start(start))?;
        let mut bytes = Vec::with_capacity((len - start) as usize);
        file.take(len - start).read_to_end(&mut bytes)?;
        let mut from = 0;
        if self.in_skipped_line {
            match bytes.iter().position(|&b| b == b'\n') {
                Some(end) => {
                    from = end + 1;
                    self.in_skipped_line = false;
                }
                None => {
                    // Still inside one long line: skip it all.
                    self.offset = start + bytes.len() as u64;
                    return Ok(Vec::new());
                }
            }
        }
        let Some(last_newline) = bytes[from..].iter().rposition(|&b| b == b'\n') else {
            self.offset = start + from as u64;
            return Ok(Vec::new());
        };
        let end = from + last_newline;
        self.offset = start + end as u64 + 1;
        bytes.truncate(end);
        bytes.drain(..from);
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn progress(done: u64, total: u64) -> LiveReport {
        LiveReport::Progress(Progress { done, total })
    }

    fn append(path: &std::path::Path, text: &str) {
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .expect("open");
        file.write_all(text.as_bytes()).expect("write");
    }

    #[test]
    fn reserved_keys_read_their_values_and_others_are_outputs() {
        assert_eq!(reserved("progress", "1/2"), Some(Ok(progress(1, 2))));
        assert_eq!(reserved("rows", "5"), None);
        assert_eq!(reserved("Progress", "1/2"), None, "keys are case-sensitive");
        let err = reserved("progress", "3/2").and_then(Result::err);
        assert_eq!(
            err.as_deref(),
            Some(
                "`progress=3/2` is not a progress report: DONE (3) is more than TOTAL (2): DONE counts up to TOTAL"
            )
        );
    }

    #[test]
    fn only_new_complete_lines_are_read_and_the_newest_valid_value_is_reported_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out");
        let mut follower = Follower::new(path.clone());
        assert!(follower.look().is_empty(), "no file yet");
        append(
            &path,
            "rows=5\nprogress=1/10\nprogress=2/10\nprogress=bad\nprogress=3/1",
        );
        assert_eq!(
            follower.look(),
            vec![progress(2, 10)],
            "the partial line waits"
        );
        assert!(follower.look().is_empty(), "nothing new");
        append(&path, "0\n");
        assert_eq!(follower.look(), vec![progress(3, 10)]);
        append(&path, "progress=3/10\n");
        assert!(
            follower.look().is_empty(),
            "the same value is not reported again"
        );
        append(&path, "progress=4/10\r\n");
        assert_eq!(follower.look(), vec![progress(4, 10)]);
    }

    #[test]
    fn checkpoints_are_reports_of_their_own_kind_and_bad_ones_are_not() {
        let checkpoint = |v: &str| LiveReport::Checkpoint(v.to_owned());
        assert_eq!(
            reserved("checkpoint", "orders:42"),
            Some(Ok(checkpoint("orders:42")))
        );
        let long = "y".repeat(crate::event::MAX_CHECKPOINT + 1);
        let err = reserved("checkpoint", &long).and_then(Result::err);
        assert!(
            err.as_deref().is_some_and(|e| e.starts_with(&format!(
                "`checkpoint={}…` is not a checkpoint (it was not recorded): it is 4097 bytes long",
                "y".repeat(40)
            ))),
            "{err:?}"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out");
        let mut follower = Follower::new(path.clone());
        append(
            &path,
            &format!("checkpoint=a\nprogress=1/10\ncheckpoint=b\ncheckpoint=\ncheckpoint={long}\n"),
        );
        // The newest valid value of each kind; a bad line does not hide the one before it.
        assert_eq!(follower.look(), vec![progress(1, 10), checkpoint("b")]);
        append(&path, "progress=2/10\ncheckpoint=b\n");
        assert_eq!(follower.look(), vec![progress(2, 10)], "b was handed on");
        assert_eq!(
            follower.settle(vec![progress(2, 10), checkpoint("c")]),
            vec![checkpoint("c")]
        );
    }

    #[test]
    fn a_rewritten_file_is_read_from_its_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out");
        let mut follower = Follower::new(path.clone());
        append(&path, "progress=1/10\nprogress=2/10\n");
        assert_eq!(follower.look(), vec![progress(2, 10)]);
        std::fs::write(&path, "progress=5/10\n").expect("rewrite");
        assert_eq!(follower.look(), vec![progress(5, 10)]);
    }

    #[test]
    fn a_flood_is_read_from_its_newest_bytes_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out");
        let mut follower = Follower::new(path.clone());
        let flood: String = (0..=100_000)
            .map(|i| format!("progress={i}/100000\n"))
            .collect();
        assert!(flood.len() as u64 > 4 * MAX_LOOK);
        append(&path, &flood);
        assert_eq!(follower.look(), vec![progress(100_000, 100_000)]);
        assert_eq!(follower.offset, flood.len() as u64);
        // A line longer than a look is skipped whole, and what follows it is read.
        append(&path, &"x".repeat(3 * MAX_LOOK as usize));
        assert!(follower.look().is_empty());
        append(&path, "tail\nprogress=7/9\n");
        assert_eq!(follower.look(), vec![progress(7, 9)]);
    }
}
