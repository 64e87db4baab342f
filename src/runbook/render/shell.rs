//! Shell quoting that follows the quoting context a value lands in.
//!
//! A `run` template is a shell script with holes. Quoting every value as a single-quoted word
//! is only safe where the shell reads a word: inside `"..."` the quotes become part of the
//! text and `$(...)` in the value would run. So the template's own text is lexed (as the shell
//! will read it) and each value is escaped for its spot: a bare word, inside double quotes,
//! inside single quotes, in a here-document, in a comment, in arithmetic. Spots where no
//! escaping is safe are refused when the template is compiled: inside backticks, inside
//! `$'...'` (bash reads it as a string with escapes, `dash` as `$` and a plain single-quoted
//! string), right after a `$`, as a here-document delimiter.
//!
//! The lexer follows POSIX `sh` and what bash adds on top that changes quoting; scripts are
//! run with `sh -c`, which is `dash` on some systems and bash on others.

mod lexer;

pub(super) use lexer::{Lexer, State};
use serde_json::{Value, json};

/// Where a value lands in a shell script.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(super) struct Spot {
    pub kind: Kind,
    /// The innermost here-document body the value is in, even inside `$(...)` or quotes in
    /// it: the shell finds a body's end line by line before it reads anything else.
    pub heredoc: Option<Guard>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum Kind {
    /// A bare word (also inside `$(...)`, which starts a fresh command line).
    #[default]
    Word,
    Double,
    Single,
    Comment,
    /// Inside `$((...))` or `((...))`: arithmetic, where quotes do not protect anything.
    Arith,
    /// Directly in a here-document body; `quoted` (`<<'EOF'`): the body is not expanded.
    Heredoc {
        quoted: bool,
    },
}

/// What a value in a here-document must not contain: a line that ends the body early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Guard {
    pub delimiter: String,
    /// `<<-EOF`: leading tabs are stripped from body lines and the delimiter line.
    pub strip_tabs: bool,
    /// The text before and after the value on its line, when known (set by the lexer and
    /// by the compiler, which sees what follows).
    pub prefix: Option<String>,
    pub suffix: Option<String>,
}

impl Spot {
    pub fn word() -> Spot {
        Spot::default()
    }

    /// The spot as a literal the compiled template carries to the value helper.
    pub fn to_json(&self) -> Value {
        let (kind, quoted) = match self.kind {
            Kind::Word => ("word", false),
            Kind::Double => ("double", false),
            Kind::Single => ("single", false),
            Kind::Comment => ("comment", false),
            Kind::Arith => ("arithmetic", false),
            Kind::Heredoc { quoted } => ("heredoc", quoted),
        };
        let heredoc = self.heredoc.as_ref().map(|g| {
            json!({
                "delimiter": g.delimiter,
                "strip_tabs": g.strip_tabs,
                "prefix": g.prefix,
                "suffix": g.suffix,
            })
        });
        json!({ "spot": kind, "quoted": quoted, "heredoc": heredoc })
    }

    pub fn from_json(value: &Value) -> Spot {
        let kind = match value.get("spot").and_then(Value::as_str) {
            Some("double") => Kind::Double,
            Some("single") => Kind::Single,
            Some("comment") => Kind::Comment,
            Some("arithmetic") => Kind::Arith,
            Some("heredoc") => Kind::Heredoc {
                quoted: value.get("quoted").and_then(Value::as_bool) != Some(false),
            },
            _ => Kind::Word,
        };
        let heredoc = value
            .get("heredoc")
            .filter(|h| h.is_object())
            .map(|h| Guard {
                delimiter: h
                    .get("delimiter")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                strip_tabs: h.get("strip_tabs").and_then(Value::as_bool) == Some(true),
                prefix: h.get("prefix").and_then(Value::as_str).map(str::to_owned),
                suffix: h.get("suffix").and_then(Value::as_str).map(str::to_owned),
            });
        Spot { kind, heredoc }
    }
}

/// Characters a word may hold without quotes.
fn is_safe(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c)
}

/// `text` as exactly one POSIX shell word: as is when every character is safe, otherwise in
/// single quotes (a `'` inside becomes `'\''`). The empty string is `''`.
pub(super) fn word(text: &str) -> String {
    if !text.is_empty() && text.chars().all(is_safe) {
        return text.to_owned();
    }
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Escapes `text` for `spot`. `pre_quoted` marks the output of the `shell` helper, already a
/// word: in a word spot it goes in as it is, elsewhere it is text like any other.
pub(super) fn quote(text: &str, spot: &Spot, pre_quoted: bool) -> Result<String, String> {
    if text.contains('\0') {
        return Err("the value contains a NUL byte, which a shell command cannot hold".into());
    }
    if let Some(guard) = &spot.heredoc {
        guard.check(text)?;
    }
    Ok(match spot.kind {
        Kind::Word if pre_quoted => text.to_owned(),
        Kind::Word => word(text),
        Kind::Comment => {
            if text.contains('\n') {
                return Err(
                    "the value contains a line break, which would end the shell comment it is in"
                        .into(),
                );
            }
            word(text)
        }
        Kind::Arith => {
            if !is_number(text) {
                return Err(
                    "inside shell arithmetic only a number can be inserted, and the value is not one"
                        .into(),
                );
            }
            text.to_owned()
        }
        Kind::Double => backslashed(text, "\\$`\""),
        Kind::Single => text.replace('\'', r"'\''"),
        Kind::Heredoc { quoted: true } => text.to_owned(),
        Kind::Heredoc { quoted: false } => backslashed(text, "\\$`"),
    })
}

/// Every way [`quote`] can write `text` (for masking secrets in rendered commands).
pub(super) fn forms(text: &str) -> Vec<String> {
    vec![
        word(text),
        backslashed(text, "\\$`\""),
        backslashed(text, "\\$`"),
        text.replace('\'', r"'\''"),
    ]
}

/// A decimal number: `-12`, `3.5`.
fn is_number(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, "0"));
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    all_digits(whole) && all_digits(fraction)
}

fn backslashed(text: &str, special: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        if special.contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl Guard {
    /// A value in a here-document must not end it early: a line made of the value (with the
    /// text around it on its line) equal to the delimiter would end the body, and the shell
    /// would run the lines after it, the value's or the template's, as commands. Where the
    /// text around the value is not known (another value or a block on the line), any
    /// completion is assumed.
    fn check(&self, text: &str) -> Result<(), String> {
        let strip = |line: &str| -> String {
            if self.strip_tabs {
                line.trim_start_matches('\t').to_owned()
            } else {
                line.to_owned()
            }
        };
        let delimiter = self.delimiter.as_str();
        let lines: Vec<&str> = text.split('\n').collect();
        let last = lines.len() - 1;
        let ends = lines.iter().enumerate().any(|(i, line)| {
            let prefix = if i == 0 {
                self.prefix.as_deref()
            } else {
                Some("")
            };
            let suffix = if i == last {
                self.suffix.as_deref()
            } else {
                Some("")
            };
            match (prefix, suffix) {
                (Some(p), Some(s)) => strip(&format!("{p}{line}{s}")) == delimiter,
                (Some(p), None) => delimiter.starts_with(&strip(&format!("{p}{line}"))),
                (None, Some(s)) => delimiter.ends_with(&format!("{}{s}", strip(line))),
                (None, None) => delimiter.contains(&strip(line)),
            }
        });
        if ends {
            return Err(format!(
                "the value would make a line `{delimiter}`, which ends the here-document it is in"
            ));
        }
        Ok(())
    }
}
