//! Step outputs written to the file named by `$SENSEI_OUTPUT` (SPEC §2): a fresh empty file per
//! run, read after the process exits and removed. Lines are `key=value`; blank lines and lines
//! starting with `#` are ignored; anything else is reported, never silently dropped.

use super::ProcessError;
use std::io::Read;
use std::path::Path;

/// The environment variable that names the outputs file.
pub const OUTPUT_ENV: &str = "SENSEI_OUTPUT";

/// How much of the outputs file is read: outputs are small values, not data.
const MAX_OUTPUT_FILE: u64 = 1024 * 1024;

/// The outputs file of one run; removed when dropped.
#[derive(Debug)]
pub(super) struct OutputFile {
    path: tempfile::TempPath,
}

/// What the outputs file held: the pairs in order, and a sentence per line that was not one.
pub(super) type Parsed = (Vec<(String, String)>, Vec<String>);

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
        let mut bytes = Vec::new();
        let read = std::fs::File::open(&self.path)
            .and_then(|file| file.take(MAX_OUTPUT_FILE + 1).read_to_end(&mut bytes));
        match read {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Default::default(),
            Err(e) => {
                return (
                    Vec::new(),
                    vec![format!("could not read ${OUTPUT_ENV}: {e}")],
                );
            }
        }
        let mut truncated = None;
        if bytes.len() as u64 > MAX_OUTPUT_FILE {
            // Keep whole lines only.
            let end = bytes.iter().rposition(|&b| b == b'\n').unwrap_or(0);
            bytes.truncate(end);
            truncated = Some(format!(
                "${OUTPUT_ENV} is larger than {} KiB; only its first {} KiB were read",
                MAX_OUTPUT_FILE / 1024,
                MAX_OUTPUT_FILE / 1024
            ));
        }
        let (outputs, mut errors) = parse(&String::from_utf8_lossy(&bytes));
        errors.extend(truncated);
        (outputs, errors)
    }
}

/// Parses `key=value` lines. Keys are letters, digits, `_` and `-` (they are used as template
/// paths: `steps.<id>.outputs.<key>`); the value is everything after the first `=`, kept as is.
pub(super) fn parse(text: &str) -> Parsed {
    let mut outputs = Vec::new();
    let mut errors = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        match line.split_once('=') {
            Some((key, value)) if valid_key(key) => {
                outputs.push((key.to_owned(), value.to_owned()));
            }
            Some((key, _)) => errors.push(format!(
                "line {number} of ${OUTPUT_ENV} has an invalid key `{key}`: use letters, digits, `_` and `-`"
            )),
            None => errors.push(format!(
                "line {number} of ${OUTPUT_ENV} is not key=value: {line}"
            )),
        }
    }
    (outputs, errors)
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

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn key_value_lines_in_order_comments_and_blanks_ignored() {
        let (outputs, errors) = parse("rows=5\n# a comment\n\n  \nurl=a=b\r\nempty=\nrows=6\n");
        assert_eq!(
            outputs,
            pairs(&[("rows", "5"), ("url", "a=b"), ("empty", ""), ("rows", "6")])
        );
        assert!(errors.is_empty(), "{errors:?}");
    }

    #[test]
    fn other_lines_are_reported_with_their_number() {
        let (outputs, errors) = parse("a=1\nnot a pair\n=x\nbad key=1\nb-2_c=ok\n");
        assert_eq!(outputs, pairs(&[("a", "1"), ("b-2_c", "ok")]));
        assert_eq!(
            errors,
            vec![
                "line 2 of $SENSEI_OUTPUT is not key=value: not a pair",
                "line 3 of $SENSEI_OUTPUT has an invalid key ``: use letters, digits, `_` and `-`",
                "line 4 of $SENSEI_OUTPUT has an invalid key `bad key`: use letters, digits, `_` and `-`",
            ]
        );
    }

    #[test]
    fn the_file_is_read_then_removed_and_a_deleted_file_means_no_outputs() {
        let file = OutputFile::create().expect("create");
        let path = file.path().to_owned();
        std::fs::write(&path, "k=v\n").expect("write");
        assert_eq!(file.read(), (pairs(&[("k", "v")]), Vec::new()));
        assert!(!path.exists());

        let file = OutputFile::create().expect("create");
        std::fs::remove_file(file.path()).expect("remove");
        assert_eq!(file.read(), Default::default());
    }

    #[test]
    fn a_huge_file_is_cut_at_a_line_and_reported() {
        let file = OutputFile::create().expect("create");
        let line = format!("k={}\n", "v".repeat(1000));
        std::fs::write(file.path(), line.repeat(2000)).expect("write");
        let (outputs, errors) = file.read();
        assert_eq!(outputs.len(), (MAX_OUTPUT_FILE as usize) / line.len());
        assert_eq!(errors.len(), 1);
        assert!(errors[0].contains("larger than 1024 KiB"), "{errors:?}");
    }
}
