//! Reading a shell template's literal text to know where each value lands (see `shell.rs`).

use super::{Guard, Kind, Spot};
use std::collections::VecDeque;

/// A here-document announced by `<<` on the current line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::runbook::render) struct Heredoc {
    delimiter: String,
    quoted: bool,
    strip_tabs: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::runbook::render) enum State {
    Word,
    /// `$(...)`, with the depth of plain parentheses and of `case` inside it (a `case`
    /// pattern ends with a `)` that does not close the substitution).
    Subst {
        parens: usize,
        cases: usize,
    },
    /// `$((...))` or `((...))`.
    Arith {
        parens: usize,
    },
    Double,
    Single,
    AnsiC,
    Backtick,
    Comment,
    Heredoc(Heredoc),
}

/// Reads the literal text of a template the way `sh` will, to know the spot of each value.
///
/// It follows quotes, escapes, `$(...)`, `$((...))`, backticks, comments and here-documents;
/// it does not know every corner of the shell grammar, so where it is unsure it refuses
/// rather than guesses (see [`Lexer::spot`]).
#[derive(Debug, Clone)]
pub(in crate::runbook::render) struct Lexer {
    stack: Vec<State>,
    /// Here-documents whose bodies start at the next unquoted newline.
    pending: VecDeque<Heredoc>,
    /// The current line so far, and whether a value was inserted in it.
    line: String,
    line_has_value: bool,
    /// The last character read separates words (so `#` starts a comment).
    word_start: bool,
    /// The text read so far ends with a `$` that starts nothing yet.
    dollar: bool,
    /// The text read so far ends with a backslash: the next character is escaped.
    escaped: bool,
    /// The text read so far ends with `<<` or a here-document delimiter a value would extend.
    delimiter_open: bool,
    /// A `$'...'` held `\'`: bash and `dash` disagree on where it ends, so on all that follows.
    ambiguous: bool,
}

impl Default for Lexer {
    fn default() -> Self {
        Lexer {
            stack: vec![State::Word],
            pending: VecDeque::new(),
            line: String::new(),
            line_has_value: false,
            word_start: true,
            dollar: false,
            escaped: false,
            delimiter_open: false,
            ambiguous: false,
        }
    }
}

impl Lexer {
    fn top(&self) -> &State {
        self.stack.last().unwrap_or(&State::Word)
    }

    /// The quoting state, to check that a block leaves it as it found it.
    pub fn state(&self) -> (Vec<State>, usize, bool) {
        (self.stack.clone(), self.pending.len(), self.escaped)
    }

    /// The spot a value inserted now lands in, or why no value may go here.
    pub fn spot(&self) -> Result<Spot, String> {
        if self.ambiguous {
            return Err(
                "an earlier `$'...'` holds `\\'`, which bash and sh read differently, so where the value lands is unclear"
                    .into(),
            );
        }
        if self.delimiter_open {
            return Err("a here-document delimiter must be written literally".into());
        }
        if self.dollar {
            return Err(
                "it follows a `$`, so the value would become part of a shell expansion".into(),
            );
        }
        if self.escaped {
            return Err(
                "it follows a backslash, which would change how the value is quoted".into(),
            );
        }
        let kind = match self.top() {
            State::Word | State::Subst { .. } => Kind::Word,
            State::Arith { .. } => Kind::Arith,
            State::Double => Kind::Double,
            State::Single => Kind::Single,
            State::AnsiC => {
                return Err(
                    "it is inside `$'...'`, which bash and sh read differently; use '...' or no quotes"
                        .into(),
                );
            }
            State::Comment => Kind::Comment,
            State::Backtick => {
                return Err(
                    "it is inside backticks, where a value cannot be quoted safely; use $(...) instead"
                        .into(),
                );
            }
            State::Heredoc(h) => Kind::Heredoc { quoted: h.quoted },
        };
        let heredoc = self.innermost_heredoc().map(|(_, h)| Guard {
            delimiter: h.delimiter.clone(),
            strip_tabs: h.strip_tabs,
            prefix: (!self.line_has_value).then(|| self.line.clone()),
            suffix: None,
        });
        Ok(Spot { kind, heredoc })
    }

    fn innermost_heredoc(&self) -> Option<(usize, &Heredoc)> {
        self.stack
            .iter()
            .enumerate()
            .rev()
            .find_map(|(i, s)| match s {
                State::Heredoc(h) => Some((i, h)),
                _ => None,
            })
    }

    /// A value was inserted here: it is part of a word and of the current line.
    pub fn value(&mut self) {
        self.line_has_value = true;
        self.word_start = false;
        self.dollar = false;
    }

    /// A block starts: its body may repeat or not render, so what its lines hold is unknown.
    pub fn block(&mut self) {
        self.line_has_value = true;
    }

    /// Reads literal template text.
    pub fn feed(&mut self, text: &str) -> Result<(), String> {
        let chars: Vec<char> = text.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            i = self.step(&chars, i)?;
        }
        Ok(())
    }

    /// Reads the character at `i` (and those it needs after it); returns the next index.
    fn step(&mut self, chars: &[char], i: usize) -> Result<usize, String> {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        self.delimiter_open = false;
        self.dollar = false;
        if std::mem::take(&mut self.escaped) {
            self.take(c);
            self.word_start = false;
            return Ok(i + 1);
        }
        if c == '\n' && self.end_heredoc_line() {
            return Ok(i + 1);
        }
        let state = self.top().clone();
        if let State::Heredoc(h) = &state {
            self.take(c);
            return Ok(if h.quoted {
                i + 1
            } else {
                self.expanding(chars, i)
            });
        }
        self.take(c);
        Ok(match state {
            State::Single => {
                if c == '\'' {
                    self.stack.pop();
                }
                i + 1
            }
            State::AnsiC | State::Backtick => {
                let close = if state == State::AnsiC { '\'' } else { '`' };
                if c == '\\' {
                    self.ambiguous |= state == State::AnsiC && next == Some('\'');
                    return Ok(self.backslash(next, i));
                }
                if c == close {
                    self.stack.pop();
                }
                i + 1
            }
            State::Comment => {
                if c == '\n' {
                    self.stack.pop();
                    self.word_start = true;
                    self.start_heredoc();
                }
                i + 1
            }
            State::Double if c == '"' => {
                self.stack.pop();
                i + 1
            }
            State::Double => self.expanding(chars, i),
            State::Arith { .. } => self.arith(chars, i),
            State::Word | State::Subst { .. } | State::Heredoc(_) => return self.word(chars, i),
        })
    }

    fn take(&mut self, c: char) {
        if c == '\n' {
            self.line.clear();
            self.line_has_value = false;
        } else {
            self.line.push(c);
        }
    }

    /// A backslash at `i` escapes the next character, which may be in the next text.
    fn backslash(&mut self, next: Option<char>, i: usize) -> usize {
        match next {
            Some(n) => {
                self.take(n);
                i + 2
            }
            None => {
                self.escaped = true;
                i + 1
            }
        }
    }

    /// A `$` at `i`: `$((`, `$(` or a plain `$` (a value right after it is refused).
    fn dollar(&mut self, chars: &[char], i: usize) -> usize {
        match (chars.get(i + 1), chars.get(i + 2)) {
            (Some('('), Some('(')) => {
                self.take('(');
                self.take('(');
                self.stack.push(State::Arith { parens: 0 });
                i + 3
            }
            (Some('('), _) => {
                self.take('(');
                self.stack.push(State::Subst {
                    parens: 0,
                    cases: 0,
                });
                self.word_start = true;
                i + 2
            }
            (None, _) => {
                self.dollar = true;
                i + 1
            }
            _ => i + 1,
        }
    }

    /// Inside double quotes or an unquoted here-document: `\`, backticks and `$`.
    fn expanding(&mut self, chars: &[char], i: usize) -> usize {
        match chars[i] {
            '\\' => self.backslash(chars.get(i + 1).copied(), i),
            '`' => {
                self.stack.push(State::Backtick);
                i + 1
            }
            '$' => self.dollar(chars, i),
            _ => i + 1,
        }
    }

    fn arith(&mut self, chars: &[char], i: usize) -> usize {
        match (chars[i], self.stack.last_mut()) {
            ('(', Some(State::Arith { parens })) => *parens += 1,
            (')', Some(State::Arith { parens: 0 })) => {
                self.stack.pop();
                if chars.get(i + 1) == Some(&')') {
                    self.take(')');
                    return i + 2;
                }
            }
            (')', Some(State::Arith { parens })) => *parens -= 1,
            ('`', _) => self.stack.push(State::Backtick),
            ('$', _) => return self.dollar(chars, i),
            _ => {}
        }
        i + 1
    }

    /// Unquoted text, at the top or inside `$(...)`.
    fn word(&mut self, chars: &[char], i: usize) -> Result<usize, String> {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let at_word_start = std::mem::replace(
            &mut self.word_start,
            c.is_whitespace() || ";&|()<>".contains(c),
        );
        match c {
            '\\' => {
                self.word_start = false;
                return Ok(self.backslash(next, i));
            }
            '\'' => self.stack.push(State::Single),
            '"' => self.stack.push(State::Double),
            '`' => self.stack.push(State::Backtick),
            '$' if next == Some('\'') => {
                self.take('\'');
                self.stack.push(State::AnsiC);
                return Ok(i + 2);
            }
            '$' => return Ok(self.dollar(chars, i)),
            '#' if at_word_start => self.stack.push(State::Comment),
            // Bash's arithmetic command `(( ... ))`.
            '(' if at_word_start && next == Some('(') => {
                self.take('(');
                self.stack.push(State::Arith { parens: 0 });
                return Ok(i + 2);
            }
            '(' => {
                if let Some(State::Subst { parens, .. }) = self.stack.last_mut() {
                    *parens += 1;
                }
            }
            ')' => match self.stack.last_mut() {
                Some(State::Subst {
                    parens: 0,
                    cases: 0,
                }) => {
                    self.stack.pop();
                }
                Some(State::Subst { parens, cases: 0 }) => *parens -= 1,
                _ => {}
            },
            '<' if next == Some('<') => return self.heredoc_operator(chars, i),
            '\n' => self.start_heredoc(),
            _ if at_word_start && keyword(chars, i, "case") => {
                if let Some(State::Subst { cases, .. }) = self.stack.last_mut() {
                    *cases += 1;
                }
            }
            _ if at_word_start && keyword(chars, i, "esac") => {
                if let Some(State::Subst { cases, .. }) = self.stack.last_mut() {
                    *cases = cases.saturating_sub(1);
                }
            }
            _ => {}
        }
        Ok(i + 1)
    }

    /// `<<`, `<<-` or `<<<` at `i`: records a here-document and reads its delimiter.
    fn heredoc_operator(&mut self, chars: &[char], i: usize) -> Result<usize, String> {
        let mut j = i + 2;
        if chars.get(j) == Some(&'<') {
            // A here-string: an ordinary word follows.
            chars[i + 1..=j].iter().for_each(|&c| self.take(c));
            return Ok(j + 1);
        }
        let strip_tabs = chars.get(j) == Some(&'-');
        if strip_tabs {
            j += 1;
        }
        while matches!(chars.get(j), Some(' ' | '\t')) {
            j += 1;
        }
        let mut delimiter = String::new();
        let mut quoted = false;
        let mut quote: Option<char> = None;
        while let Some(&c) = chars.get(j) {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), c) => delimiter.push(c),
                (None, '\'' | '"') => {
                    quoted = true;
                    quote = Some(c);
                }
                (None, '\\') => {
                    quoted = true;
                    if let Some(&n) = chars.get(j + 1) {
                        delimiter.push(n);
                        j += 1;
                    }
                }
                (None, c) if c.is_whitespace() || ";&|<>()".contains(c) => break,
                (None, c) => delimiter.push(c),
            }
            j += 1;
        }
        chars[i + 1..j].iter().for_each(|&c| self.take(c));
        // A value right after `<<` or the delimiter would become (part of) the delimiter.
        self.delimiter_open = j >= chars.len();
        if quote.is_some() {
            return Err("a here-document delimiter must be written literally".into());
        }
        if delimiter.is_empty() && !quoted {
            if j >= chars.len() {
                return Ok(j);
            }
            return Err("`<<` must be followed by a here-document delimiter".into());
        }
        self.pending.push_back(Heredoc {
            delimiter,
            quoted,
            strip_tabs,
        });
        self.word_start = false;
        Ok(j)
    }

    /// An unquoted newline: the first pending here-document's body starts.
    fn start_heredoc(&mut self) {
        if let Some(h) = self.pending.pop_front() {
            self.stack.push(State::Heredoc(h));
        }
    }

    /// A newline while in a here-document body (however deep in `$(...)` or quotes): the
    /// shell splits the body into lines before reading it, so a line equal to the delimiter
    /// ends the body, and whatever was open inside it. True when the newline is handled.
    fn end_heredoc_line(&mut self) -> bool {
        let Some((depth, h)) = self.innermost_heredoc() else {
            return false;
        };
        let line = if h.strip_tabs {
            self.line.trim_start_matches('\t')
        } else {
            self.line.as_str()
        };
        let ends = !self.line_has_value && line == h.delimiter;
        let at_top = depth + 1 == self.stack.len();
        if ends {
            self.stack.truncate(depth);
        }
        self.take('\n');
        if ends {
            // The next here-document of the same command line follows at once.
            self.start_heredoc();
        }
        ends || at_top
    }
}

/// `chars[i..]` starts with the shell keyword `word` (followed by a separator).
fn keyword(chars: &[char], i: usize, word: &str) -> bool {
    let n = word.chars().count();
    chars.len() >= i + n
        && chars[i..i + n].iter().copied().eq(word.chars())
        && chars
            .get(i + n)
            .is_none_or(|c| c.is_whitespace() || ";&|()".contains(*c))
}
