//! Step outputs written to the file named by `$SENSEI_OUTPUT` (SPEC §2): a fresh empty file per
//! run, read after the process exits and removed. Lines are `key=value`; blank lines and lines
//! starting with `#` are ignored; anything else is reported, never silently dropped.
//!
//! Lines with a reserved key (`progress`, `checkpoint`, see `live`) are live reports, not
//! outputs: the follower hands them on while the step runs, and this final read keeps the
//! last valid one of each kind (so the last report the engine hears is the file's) and
//! reports bad ones like any line it cannot read. Valid reports do not count towards the
//! outputs' size limit, so a step may report progress and checkpoints as often as it likes.

use super::ProcessError;
use super::live::{self, LiveReport};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

/// The environment variable that names the outputs file.
pub const OUTPUT_ENV: &str = "SENSEI_OUTPUT";

/// How much of the outputs file is read as outputs: outputs are small values, not data.
const MAX_OUTPUT_FILE: u64 = 1024 * 1024;

/// How much of the file is read at all, live reports included: a step that reports
/// progress in a tight loop for hours must not make the end of its run slow.
const MAX_READ: u64 = 64 * 1024 * 1024;

/// The outputs file of one run; removed when dropped.
#[derive(Debug)]
pub(super) struct OutputFile {
    path: tempfile::TempPath,
}

/// What the outputs file held.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Parsed {
    /// The `key=value` pairs in order.
    pub outputs: Vec<(String, String)>,
    /// A sentence per line that was neither an output nor a valid live report.
    pub errors: Vec<String>,
    /// The last valid live report of each kind.
    pub reports: Vec<LiveReport>,
}

impl OutputFile {
    pub(super) fn create() -> Result<Self, ProcessError> {
        let file = tempfile::Builder::new()
            .prefix("sensei-output-")
            .tempfile()
            .map_err(|source| ProcessError::OutputFile {
                dir: std::env::temp_dir(),
                source,
            })?;
        Ok(OutputFile {
            path: file.into_temp_path(),
        })
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Reads and parses the file, then removes it. A step that deleted the file has no outputs.
    pub(super) fn read(self) -> Parsed {
        let file = match std::fs::File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Parsed::default(),
            Err(e) => return Parsed::failed(e),
        };
        let mut reader = BufReader::new(file.take(MAX_READ + 1));
        let mut parser = Parser::default();
        let mut line = Vec::new();
        let mut read = 0u64;
        loop {
            line.clear();
            // A line longer than the outputs' limit cannot be kept whole: read no more of it
            // than that, and skip the rest.
            let taken = (&mut reader)
                .take(MAX_OUTPUT_FILE + 1)
                .read_until(b'\n', &mut line);
            let n = match taken {
                Ok(0) => break,
                Ok(n) => n as u64,
                Err(e) => return Parsed::failed(e),
            };
            read += n;
            if read > MAX_READ {
                break;
            }
            let whole = line.last() == Some(&b'\n');
            if !whole && n > MAX_OUTPUT_FILE {
                match skip_line(&mut reader) {
                    Ok(skipped) => read += skipped,
                    Err(e) => return Parsed::failed(e),
                }
                parser.too_long();
                continue;
            }
            let text = line.strip_suffix(b"\n").unwrap_or(&line);
            let text = text.strip_suffix(b"\r").unwrap_or(text);
            parser.line(&String::from_utf8_lossy(text), n);
        }
        if read > MAX_READ {
            parser.cut(format!(
                "${OUTPUT_ENV} is larger than {} MiB; only its first {} MiB were read",
                MAX_READ / (1024 * 1024),
                MAX_READ / (1024 * 1024)
            ));
        }
        parser.finish()
    }
}

impl Parsed {
    fn failed(e: std::io::Error) -> Parsed {
        Parsed {
            errors: vec![format!("could not read ${OUTPUT_ENV}: {e}")],
            ..Parsed::default()
        }
    }
}

/// Reads to the end of the current line; how many bytes that was.
fn skip_line(reader: &mut impl BufRead) -> std::io::Result<u64> {
    let mut skipped = 0;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(skipped);
        }
        match buf.iter().position(|&b| b == b'\n') {
            Some(i) => {
                reader.consume(i + 1);
                return Ok(skipped + i as u64 + 1);
            }
            None => {
                let len = buf.len();
                reader.consume(len);
                skipped += len as u64;
            }
        }
    }
}

/// Parses `key=value` lines one at a time. Keys are letters, digits, `_` and `-` (they are
/// used as template paths: `steps.<id>.outputs.<key>`); the value is everything after the
/// first `=`, kept as is.
#[derive(Default)]
struct Parser {
    parsed: Parsed,
    number: usize,
    /// Bytes of lines counted towards [`MAX_OUTPUT_FILE`].
    used: u64,
    /// The limit was reached: later lines are not outputs any more (live reports still are).
    full: bool,
    /// Why the read stopped early, reported last.
    cut: Option<String>,
}

impl Parser {
    /// One line without its ending; `len` is its length in the file, ending included.
    fn line(&mut self, line: &str, len: u64) {
        self.number += 1;
        let number = self.number;
        if let Some((key, value)) = line.split_once('=')
            && let Some(report) = live::reserved(key, value)
        {
            match report {
                Ok(report) => return self.report(report),
                // A bad report counts like any line that is not an output.
                Err(e) => {
                    if self.count(len) {
                        self.parsed
                            .errors
                            .push(format!("line {number} of ${OUTPUT_ENV}: {e}"));
                    }
                }
            }
            return;
        }
        if !self.count(len) {
            return;
        }
        if line.trim().is_empty() || line.starts_with('#') {
            return;
        }
        let errors = &mut self.parsed.errors;
        match line.split_once('=') {
            Some((key, value)) if valid_key(key) => {
                self.parsed.outputs.push((key.to_owned(), value.to_owned()));
            }
            Some((key, _)) => errors.push(format!(
                "line {number} of ${OUTPUT_ENV} has an invalid key `{key}`: use letters, digits, `_` and `-`"
            )),
            None => errors.push(format!(
                "line {number} of ${OUTPUT_ENV} is not key=value: {line}"
            )),
        }
    }

    /// Counts a line towards the outputs' limit; false once it is past the limit.
    fn count(&mut self, len: u64) -> bool {
        if self.full {
            return false;
        }
        if self.used + len > MAX_OUTPUT_FILE {
            self.full = true;
            return false;
        }
        self.used += len;
        true
    }

    /// A line longer than the outputs' limit: it cannot be an output.
    fn too_long(&mut self) {
        self.number += 1;
        self.full = true;
    }

    /// Keeps the last report of each kind.
    fn report(&mut self, report: LiveReport) {
        let reports = &mut self.parsed.reports;
        reports.retain(|r| std::mem::discriminant(r) != std::mem::discriminant(&report));
        reports.push(report);
    }

    fn cut(&mut self, why: String) {
        self.cut = Some(why);
    }

    fn finish(mut self) -> Parsed {
        if self.full {
            self.parsed.errors.push(format!(
                "${OUTPUT_ENV} is larger than {} KiB without its progress and checkpoint lines; only its first {} KiB of outputs were read",
                MAX_OUTPUT_FILE / 1024,
                MAX_OUTPUT_FILE / 1024
            ));
        }
        self.parsed.errors.extend(self.cut);
        self.parsed
    }
}

/// Parses a whole text, as the final read does line by line.
#[cfg(test)]
fn parse(text: &str) -> Parsed {
    let mut parser = Parser::default();
    for line in text.lines() {
        parser.line(line, line.len() as u64 + 1);
    }
    parser.finish()
}

fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Progress;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn progress(done: u64, total: u64) -> LiveReport {
        LiveReport::Progress(Progress { done, total })
    }

    #[test]
    fn key_value_lines_in_order_comments_and_blanks_ignored() {
        let parsed = parse("rows=5\n# a comment\n\n  \nurl=a=b\r\nempty=\nrows=6\n");
        assert_eq!(
            parsed.outputs,
            pairs(&[("rows", "5"), ("url", "a=b"), ("empty", ""), ("rows", "6")])
        );
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    }

    #[test]
    fn other_lines_are_reported_with_their_number() {
        let parsed = parse("a=1\nnot a pair\n=x\nbad key=1\nb-2_c=ok\n");
        assert_eq!(parsed.outputs, pairs(&[("a", "1"), ("b-2_c", "ok")]));
        assert_eq!(
            parsed.errors,
            vec![
                "line 2 of $SENSEI_OUTPUT is not key=value: not a pair",
                "line 3 of $SENSEI_OUTPUT has an invalid key ``: use letters, digits, `_` and `-`",
                "line 4 of $SENSEI_OUTPUT has an invalid key `bad key`: use letters, digits, `_` and `-`",
            ]
        );
    }

    #[test]
    fn progress_lines_are_reports_not_outputs_and_bad_ones_are_reported() {
        let parsed = parse("progress=1/10\nrows=5\nprogress=ten\nprogress=4/10\nprogress=11/10\n");
        assert_eq!(parsed.outputs, pairs(&[("rows", "5")]));
        assert_eq!(parsed.reports, vec![progress(4, 10)], "the last valid one");
        assert_eq!(
            parsed.errors,
            vec![
                "line 3 of $SENSEI_OUTPUT: `progress=ten` is not a progress report: `ten` is not DONE/TOTAL: write the total too, as in `progress=42/100` (a step that does not know its total reports no progress)",
                "line 5 of $SENSEI_OUTPUT: `progress=11/10` is not a progress report: DONE (11) is more than TOTAL (10): DONE counts up to TOTAL",
            ]
        );
    }

    #[test]
    fn checkpoint_lines_are_reports_and_a_bad_one_is_reported_not_kept() {
        let long = "z".repeat(crate::event::MAX_CHECKPOINT + 1);
        let parsed = parse(&format!(
            "checkpoint=a\nrows=5\ncheckpoint=b\ncheckpoint={long}\ncheckpoint=\n"
        ));
        assert_eq!(parsed.outputs, pairs(&[("rows", "5")]));
        assert_eq!(
            parsed.reports,
            vec![LiveReport::Checkpoint("b".into())],
            "the last valid one"
        );
        assert_eq!(parsed.errors.len(), 2, "{:?}", parsed.errors);
        assert!(
            parsed.errors[0].starts_with("line 4 of $SENSEI_OUTPUT: `checkpoint=zzz"),
            "{:?}",
            parsed.errors
        );
        assert!(parsed.errors[0].contains("it is 4097 bytes long, more than 4096"));
        assert!(
            parsed.errors[1]
                .starts_with("line 5 of $SENSEI_OUTPUT: `checkpoint=` is not a checkpoint"),
            "{:?}",
            parsed.errors
        );
    }

    #[test]
    fn the_file_is_read_then_removed_and_a_deleted_file_means_no_outputs() {
        let file = OutputFile::create().expect("create");
        let path = file.path().to_owned();
        std::fs::write(&path, "k=v\nprogress=2/3").expect("write");
        let parsed = file.read();
        assert_eq!(parsed.outputs, pairs(&[("k", "v")]));
        assert_eq!(parsed.reports, vec![progress(2, 3)]);
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        assert!(!path.exists());

        let file = OutputFile::create().expect("create");
        std::fs::remove_file(file.path()).expect("remove");
        assert_eq!(file.read(), Parsed::default());
    }

    #[test]
    fn a_huge_file_is_cut_at_a_line_and_reported() {
        let file = OutputFile::create().expect("create");
        let line = format!("k={}\n", "v".repeat(1000));
        std::fs::write(file.path(), line.repeat(2000)).expect("write");
        let parsed = file.read();
        assert_eq!(
            parsed.outputs.len(),
            (MAX_OUTPUT_FILE as usize) / line.len()
        );
        assert_eq!(parsed.errors.len(), 1);
        assert!(
            parsed.errors[0].contains("larger than 1024 KiB"),
            "{:?}",
            parsed.errors
        );
    }

    #[test]
    fn progress_lines_do_not_count_towards_the_limit() {
        let file = OutputFile::create().expect("create");
        let mut text: String = (0..=100_000)
            .map(|i| format!("progress={i}/100000\n"))
            .collect();
        assert!(text.len() as u64 > MAX_OUTPUT_FILE);
        text.push_str("rows=5\n");
        std::fs::write(file.path(), text).expect("write");
        let parsed = file.read();
        assert_eq!(parsed.outputs, pairs(&[("rows", "5")]));
        assert_eq!(parsed.reports, vec![progress(100_000, 100_000)]);
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    }

    #[test]
    fn a_line_longer_than_the_limit_is_skipped_and_reported() {
        let file = OutputFile::create().expect("create");
        let long = "x".repeat(MAX_OUTPUT_FILE as usize + 10);
        std::fs::write(file.path(), format!("a=1\nbig={long}\nprogress=1/2\nb=2\n"))
            .expect("write");
        let parsed = file.read();
        assert_eq!(parsed.outputs, pairs(&[("a", "1")]));
        assert_eq!(parsed.reports, vec![progress(1, 2)]);
        assert_eq!(parsed.errors.len(), 1, "{:?}", parsed.errors);
        assert!(parsed.errors[0].contains("larger than 1024 KiB"));
    }
}
