//! A batch written for the target: PostgreSQL's `COPY ... FROM STDIN` text format, or
//! MySQL multi-row `INSERT`s.
//!
//! COPY's text format: columns separated by a tab, rows ended by a newline, `\N` for `NULL`;
//! a backslash, tab, newline and carriage return inside a value are written `\\`, `\t`,
//! `\n`, `\r`, and bytes for a `bytea` column as `\\x` and hex (the backslash of `\x`
//! escaped in turn). PostgreSQL text cannot hold a NUL character: such a value is an error.
//!
//! MySQL: strings quoted as `mysql_real_escape_string` writes them (quotes doubled under
//! `NO_BACKSLASH_ESCAPES`), bytes as `X'...'`, each statement at most about
//! [`MAX_STATEMENT`] bytes, well under the server's default `max_allowed_packet`.

use super::types::Cell;

/// Bytes of one `INSERT` before the next one starts.
pub const MAX_STATEMENT: usize = 1024 * 1024;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// A batch as the target takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Encoded {
    /// COPY data.
    Copy(Vec<u8>),
    /// `INSERT` statements.
    Inserts(Vec<String>),
}

/// Writes rows cell by cell.
#[derive(Debug)]
pub enum Encoder {
    Copy {
        data: Vec<u8>,
        first_cell: bool,
    },
    Insert {
        /// `INSERT INTO t (a, b) VALUES `.
        prefix: String,
        no_backslash_escapes: bool,
        done: Vec<String>,
        current: String,
        first_cell: bool,
    },
}

impl Encoder {
    pub fn copy() -> Encoder {
        Encoder::Copy {
            data: Vec::with_capacity(1 << 20),
            first_cell: true,
        }
    }

    pub fn insert(prefix: String, no_backslash_escapes: bool) -> Encoder {
        Encoder::Insert {
            prefix,
            no_backslash_escapes,
            done: Vec::new(),
            current: String::new(),
            first_cell: true,
        }
    }

    pub fn begin_row(&mut self) {
        match self {
            Encoder::Copy { first_cell, .. } => *first_cell = true,
            Encoder::Insert {
                prefix,
                done,
                current,
                first_cell,
                ..
            } => {
                if current.len() >= MAX_STATEMENT {
                    done.push(std::mem::take(current));
                }
                if current.is_empty() {
                    current.push_str(prefix);
                    current.push('(');
                } else {
                    current.push_str(",(");
                }
                *first_cell = true;
            }
        }
    }

    /// One value of the row; the error says why it cannot be written. `bare`: a number for a
    /// MySQL number column, written without quotes when it is one.
    pub fn cell(&mut self, cell: &Cell<'_>, bare: bool) -> Result<(), String> {
        match self {
            Encoder::Copy { data, first_cell } => {
                if !std::mem::take(first_cell) {
                    data.push(b'\t');
                }
                copy_cell(data, cell)
            }
            Encoder::Insert {
                current,
                first_cell,
                no_backslash_escapes,
                ..
            } => {
                if !std::mem::take(first_cell) {
                    current.push(',');
                }
                match cell {
                    Cell::Text(text) if bare && is_number(text) => current.push_str(text),
                    _ => mysql_cell(current, cell, *no_backslash_escapes),
                }
                Ok(())
            }
        }
    }

    pub fn end_row(&mut self) {
        match self {
            Encoder::Copy { data, .. } => data.push(b'\n'),
            Encoder::Insert { current, .. } => current.push(')'),
        }
    }

    pub fn finish(self) -> Encoded {
        match self {
            Encoder::Copy { data, .. } => Encoded::Copy(data),
            Encoder::Insert {
                mut done, current, ..
            } => {
                if !current.is_empty() {
                    done.push(current);
                }
                Encoded::Inserts(done)
            }
        }
    }
}

/// Text that is a number and nothing else: digits, a sign, a point, an exponent.
fn is_number(text: &str) -> bool {
    text.bytes().any(|b| b.is_ascii_digit())
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'))
}

fn copy_cell(out: &mut Vec<u8>, cell: &Cell<'_>) -> Result<(), String> {
    match cell {
        Cell::Null => out.extend_from_slice(b"\\N"),
        Cell::Bool(b) => out.push(if *b { b't' } else { b'f' }),
        Cell::Text(text) => {
            for &b in text.as_bytes() {
                match b {
                    b'\\' => out.extend_from_slice(b"\\\\"),
                    b'\t' => out.extend_from_slice(b"\\t"),
                    b'\n' => out.extend_from_slice(b"\\n"),
                    b'\r' => out.extend_from_slice(b"\\r"),
                    0 => {
                        return Err(
                            "the value holds a NUL character, which PostgreSQL text cannot hold; remove it in `query` (`REPLACE(col, CHAR(0), '')`) or copy the column into `bytea`"
                                .into(),
                        );
                    }
                    _ => out.push(b),
                }
            }
        }
        Cell::Bytes(bytes) => {
            out.extend_from_slice(b"\\\\x");
            hex(out, bytes);
        }
    }
    Ok(())
}

fn hex(out: &mut Vec<u8>, bytes: &[u8]) {
    out.reserve(bytes.len() * 2);
    for &b in bytes {
        out.push(HEX[usize::from(b >> 4)]);
        out.push(HEX[usize::from(b & 15)]);
    }
}

fn mysql_cell(out: &mut String, cell: &Cell<'_>, no_backslash_escapes: bool) {
    match cell {
        Cell::Null => out.push_str("NULL"),
        Cell::Bool(b) => out.push(if *b { '1' } else { '0' }),
        Cell::Bytes(bytes) => {
            out.push_str("X'");
            let mut digits = Vec::with_capacity(bytes.len() * 2);
            hex(&mut digits, bytes);
            // Hex digits are ASCII.
            out.push_str(&String::from_utf8_lossy(&digits));
            out.push('\'');
        }
        Cell::Text(text) => {
            out.push('\'');
            if no_backslash_escapes {
                out.push_str(&text.replace('\'', "''"));
            } else {
                for c in text.chars() {
                    match c {
                        '\\' => out.push_str("\\\\"),
                        '\'' => out.push_str("\\'"),
                        '"' => out.push_str("\\\""),
                        '\n' => out.push_str("\\n"),
                        '\r' => out.push_str("\\r"),
                        '\0' => out.push_str("\\0"),
                        '\u{1a}' => out.push_str("\\Z"),
                        c => out.push(c),
                    }
                }
            }
            out.push('\'');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(encoder: &mut Encoder, cells: &[Cell<'_>]) -> Result<(), String> {
        encoder.begin_row();
        for cell in cells {
            encoder.cell(cell, false)?;
        }
        encoder.end_row();
        Ok(())
    }

    #[test]
    fn copy_text_escapes_what_copy_reads_as_syntax() {
        let mut e = Encoder::copy();
        row(
            &mut e,
            &[
                Cell::Text("a\tb\nc\\d\re".into()),
                Cell::Null,
                Cell::Bytes(vec![0, 0xff].into()),
                Cell::Bool(true),
            ],
        )
        .expect("ok");
        row(&mut e, &[Cell::Text("\\N".into())]).expect("ok");
        assert_eq!(
            e.finish(),
            Encoded::Copy(b"a\\tb\\nc\\\\d\\re\t\\N\t\\\\x00ff\tt\n\\\\N\n".to_vec())
        );
        let mut e = Encoder::copy();
        let err = row(&mut e, &[Cell::Text("a\0b".into())]).expect_err("NUL");
        assert!(err.contains("NUL character"), "{err}");
    }

    #[test]
    fn inserts_quote_values_for_the_session_and_split_long_batches() {
        let mut e = Encoder::insert("INSERT INTO `t` (`a`,`b`) VALUES ".into(), false);
        row(&mut e, &[Cell::Text("it's \\ \"x\"\n".into()), Cell::Null]).expect("ok");
        row(
            &mut e,
            &[Cell::Bytes(vec![1, 0xab].into()), Cell::Bool(false)],
        )
        .expect("ok");
        assert_eq!(
            e.finish(),
            Encoded::Inserts(vec![
                "INSERT INTO `t` (`a`,`b`) VALUES ('it\\'s \\\\ \\\"x\\\"\\n',NULL),(X'01ab',0)"
                    .into()
            ])
        );
        let mut e = Encoder::insert("INSERT INTO t VALUES ".into(), true);
        row(&mut e, &[Cell::Text("it's \\".into())]).expect("ok");
        assert_eq!(
            e.finish(),
            Encoded::Inserts(vec!["INSERT INTO t VALUES ('it''s \\')".into()])
        );
        let mut e = Encoder::insert("INSERT INTO t VALUES ".into(), false);
        let big = "x".repeat(MAX_STATEMENT / 2 + 1);
        for _ in 0..3 {
            row(&mut e, &[Cell::Text(big.as_str().into())]).expect("ok");
        }
        let Encoded::Inserts(statements) = e.finish() else {
            panic!("inserts");
        };
        assert_eq!(statements.len(), 2);
        assert!(
            statements
                .iter()
                .all(|s| s.starts_with("INSERT INTO t VALUES ("))
        );
        let mut e = Encoder::insert("INSERT INTO t VALUES ".into(), false);
        e.begin_row();
        for (text, bare) in [("-1.5e3", true), ("5", false), ("1;DROP", true)] {
            e.cell(&Cell::Text(text.into()), bare).expect("ok");
        }
        e.end_row();
        assert_eq!(
            e.finish(),
            Encoded::Inserts(vec!["INSERT INTO t VALUES (-1.5e3,'5','1;DROP')".into()])
        );
    }
}
