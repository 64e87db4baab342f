//! Reading a step's stdout or stderr line by line, with a bound on memory: a line longer than
//! [`MAX_LINE`] bytes is split into pieces of at most that size (never inside a UTF-8 character),
//! so a process that prints megabytes without a newline cannot make the engine's memory grow.
//! Each piece says whether it ends its line, so a reader that must see lines whole (masking
//! secrets) can join the pieces up again.

use super::Line;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

/// The longest line handed on; longer lines arrive as several pieces.
pub(super) const MAX_LINE: usize = 64 * 1024;

/// The lines of one pipe. `next_line` is cancel safe (the `select!` loop in `run` relies on it):
/// a partial line stays in `pending` until the rest arrives.
#[derive(Debug)]
pub(super) struct Lines<R> {
    reader: Option<BufReader<R>>,
    pending: Vec<u8>,
}

impl<R: AsyncRead + Unpin> Lines<R> {
    pub(super) fn new(pipe: Option<R>) -> Self {
        Lines {
            reader: pipe.map(BufReader::new),
            pending: Vec::new(),
        }
    }

    /// True once the pipe reached its end (or was abandoned).
    pub(super) fn done(&self) -> bool {
        self.reader.is_none()
    }

    /// Stops reading: used when a process outside the step's group still holds the pipe open.
    pub(super) fn abandon(&mut self) {
        self.reader = None;
    }

    /// The next line without its line ending (lossy UTF-8), or `None` at the end of the pipe.
    /// A read error ends the pipe like an end of file: there is nobody to report it to but the
    /// step's own output, and the exit status still tells how the step ended.
    pub(super) async fn next_line(&mut self) -> Option<Line> {
        loop {
            let reader = self.reader.as_mut()?;
            let available = match reader.fill_buf().await {
                Ok(bytes) => bytes,
                Err(_) => &[],
            };
            if available.is_empty() {
                self.reader = None;
                return (!self.pending.is_empty()).then(|| self.take(self.pending.len(), true));
            }
            let room = MAX_LINE - self.pending.len();
            let window = &available[..available.len().min(room)];
            if let Some(newline) = window.iter().position(|&b| b == b'\n') {
                self.pending.extend_from_slice(&window[..newline]);
                reader.consume(newline + 1);
                if self.pending.last() == Some(&b'\r') {
                    self.pending.pop();
                }
                return Some(self.take(self.pending.len(), true));
            }
            let taken = window.len();
            self.pending.extend_from_slice(window);
            reader.consume(taken);
            if self.pending.len() >= MAX_LINE {
                return Some(self.take(char_boundary(&self.pending), false));
            }
        }
    }

    /// Removes the first `len` pending bytes as a line (or a piece of one); the rest stays
    /// pending.
    fn take(&mut self, len: usize, ends_line: bool) -> Line {
        let rest = self.pending.split_off(len);
        let line = std::mem::replace(&mut self.pending, rest);
        let text = String::from_utf8(line)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        Line { text, ends_line }
    }
}

/// Where to cut `bytes` so that a UTF-8 character begun in its last three bytes is not split:
/// before that character if it is incomplete, else at the end.
fn char_boundary(bytes: &[u8]) -> usize {
    let len = bytes.len();
    for back in 1..=len.min(3) {
        let byte = bytes[len - back];
        if byte & 0xC0 == 0x80 {
            continue; // a continuation byte: the character starts further back
        }
        let width = match byte {
            0xF0.. => 4,
            0xE0.. => 3,
            0xC0.. => 2,
            _ => 1,
        };
        return if width > back { len - back } else { len };
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn all_pieces(input: &[u8]) -> Vec<Line> {
        let mut lines = Lines::new(Some(input));
        let mut out = Vec::new();
        while let Some(line) = lines.next_line().await {
            out.push(line);
        }
        assert!(lines.done());
        out
    }

    async fn all_lines(input: &[u8]) -> Vec<String> {
        let pieces = all_pieces(input).await;
        pieces.into_iter().map(|l| l.text).collect()
    }

    #[tokio::test]
    async fn splits_on_newlines_and_keeps_a_last_line_without_one() {
        assert_eq!(
            all_lines(b"a\r\n\nb\nlast").await,
            vec!["a", "", "b", "last"]
        );
        assert!(all_lines(b"").await.is_empty());
    }

    #[tokio::test]
    async fn a_long_line_is_cut_into_pieces_of_at_most_max_line() {
        let mut input = vec![b'x'; MAX_LINE * 2 + 10];
        input.extend_from_slice(b"\nnext");
        let lines = all_pieces(&input).await;
        let pieces: Vec<(usize, bool)> =
            lines.iter().map(|l| (l.text.len(), l.ends_line)).collect();
        assert_eq!(
            pieces,
            vec![(MAX_LINE, false), (MAX_LINE, false), (10, true), (4, true)]
        );
    }

    #[tokio::test]
    async fn a_cut_never_splits_a_character() {
        // "é" is two bytes; place one across the MAX_LINE boundary.
        let mut input = vec![b'x'; MAX_LINE - 1];
        input.extend_from_slice("é tail\n".as_bytes());
        let lines = all_lines(&input).await;
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].len(), MAX_LINE - 1);
        assert_eq!(lines[1], "é tail");
    }

    #[tokio::test]
    async fn invalid_utf8_is_replaced() {
        assert_eq!(all_lines(b"a\xffb\n").await, vec!["a\u{fffd}b"]);
    }

    #[test]
    fn char_boundary_backs_off_only_from_incomplete_characters() {
        assert_eq!(char_boundary(b"abc"), 3);
        assert_eq!(char_boundary("aé".as_bytes()), 3);
        assert_eq!(char_boundary(&"aé".as_bytes()[..2]), 1);
        assert_eq!(char_boundary(&"a€".as_bytes()[..3]), 1);
        assert_eq!(char_boundary(&"a😀".as_bytes()[..4]), 1);
        assert_eq!(char_boundary("a😀".as_bytes()), 5);
        assert_eq!(char_boundary(b""), 0);
    }
}
