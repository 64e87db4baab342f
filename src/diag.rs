//! Diagnostics: a position in a runbook, a message and a hint, rendered like a compiler's.
//!
//! Every problem Sensei finds in a runbook becomes a [`Diagnostic`]. They are collected, never
//! thrown, so a file's problems are all reported in one pass. Rendering happens in one place
//! ([`render`]) so the CLI, the server and the tests all show the same text.

use serde::Serialize;
use std::fmt::Write as _;

/// A position in a source text: 1-based line and column (in characters), and the length of
/// the marked text in characters (at least 1 when rendered).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
pub struct Span {
    pub line: u32,
    pub column: u32,
    pub len: u32,
}

impl Span {
    pub fn new(line: u32, column: u32, len: u32) -> Self {
        Span { line, column, len }
    }

    /// The same position with another marked length.
    pub fn with_len(self, len: usize) -> Self {
        Span {
            len: u32::try_from(len).unwrap_or(u32::MAX),
            ..self
        }
    }

    /// A position `chars` characters to the right, on the same line.
    pub fn shifted(self, chars: usize) -> Self {
        Span {
            column: self
                .column
                .saturating_add(u32::try_from(chars).unwrap_or(u32::MAX)),
            ..self
        }
    }

    /// True for positions the parser could not tell.
    pub fn is_unknown(&self) -> bool {
        self.line == 0
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One problem found in a runbook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub span: Option<Span>,
    pub message: String,
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn error(span: impl Into<Option<Span>>, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            span: span.into().filter(|s| !s.is_unknown()),
            message: message.into(),
            hint: None,
        }
    }

    pub fn warning(span: impl Into<Option<Span>>, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(span, message)
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn with_hint_opt(mut self, hint: Option<String>) -> Self {
        self.hint = hint;
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// True when any diagnostic is an error (warnings alone do not fail a runbook).
pub fn has_errors(diagnostics: &[Diagnostic]) -> bool {
    diagnostics.iter().any(Diagnostic::is_error)
}

/// Sorts diagnostics by position so a file reads top to bottom; those without a position first.
pub fn sort(diagnostics: &mut [Diagnostic]) {
    diagnostics.sort_by(|a, b| {
        let key = |d: &Diagnostic| d.span.map(|s| (s.line, s.column));
        key(a).cmp(&key(b))
    });
}

/// The most characters of a source line shown under a diagnostic.
const SHOWN_CHARS: usize = 200;

/// Renders one diagnostic as `file:line:col: error: message`, the source line, a caret line
/// under the marked text, and the hint.
pub fn render(file: &str, source: &str, diagnostic: &Diagnostic) -> String {
    let mut out = String::new();
    let severity = diagnostic.severity.as_str();
    let Some(span) = diagnostic.span else {
        let _ = writeln!(out, "{file}: {severity}: {}", diagnostic.message);
        append_hint(&mut out, diagnostic, 0);
        return out;
    };
    let _ = writeln!(
        out,
        "{file}:{}:{}: {severity}: {}",
        span.line, span.column, diagnostic.message
    );
    let gutter = span.line.to_string().len();
    if let Some(line) = source_line(source, span.line) {
        // Long lines are cut to a window that holds the marked column, `…` where cut.
        let column = span.column.saturating_sub(1) as usize;
        let skip = if column < SHOWN_CHARS {
            0
        } else {
            column - SHOWN_CHARS / 2
        };
        let mut shown: String = line.chars().skip(skip).take(SHOWN_CHARS).collect();
        let mut indent = column - skip;
        if skip > 0 {
            shown.insert(0, '…');
            indent += 1;
        }
        if line.chars().count() > skip + SHOWN_CHARS {
            shown.push('…');
        }
        let _ = writeln!(out, "{:gutter$} |", "");
        let _ = writeln!(out, "{} | {}", span.line, shown.replace('\t', " "));
        let indent = indent.min(shown.chars().count());
        let available = shown.chars().count().saturating_sub(indent).max(1);
        let carets = (span.len.max(1) as usize).min(available);
        let _ = writeln!(
            out,
            "{:gutter$} | {}{}",
            "",
            " ".repeat(indent),
            "^".repeat(carets)
        );
    }
    append_hint(&mut out, diagnostic, gutter);
    out
}

fn append_hint(out: &mut String, diagnostic: &Diagnostic, gutter: usize) {
    if let Some(hint) = &diagnostic.hint {
        let _ = writeln!(out, "{:gutter$} = hint: {hint}", "");
    }
}

/// The source line to show under a diagnostic; none for a line that is not text (a NUL, a
/// byte that was not UTF-8): printing it would send binary to the terminal.
fn source_line(source: &str, line: u32) -> Option<&str> {
    let index = usize::try_from(line).ok()?.checked_sub(1)?;
    source.lines().nth(index).filter(|l| {
        !l.chars()
            .any(|c| c == '\u{fffd}' || (c.is_control() && c != '\t'))
    })
}

/// The machine-readable form of a diagnostic (`--format json`), made for CI annotations.
#[derive(Debug, Serialize)]
pub struct JsonDiagnostic<'a> {
    pub file: &'a str,
    pub line: Option<u32>,
    pub column: Option<u32>,
    pub end_column: Option<u32>,
    pub severity: Severity,
    pub message: &'a str,
    pub hint: Option<&'a str>,
}

impl<'a> JsonDiagnostic<'a> {
    pub fn new(file: &'a str, diagnostic: &'a Diagnostic) -> Self {
        JsonDiagnostic {
            file,
            line: diagnostic.span.map(|s| s.line),
            column: diagnostic.span.map(|s| s.column),
            end_column: diagnostic.span.map(|s| s.column + s.len.max(1)),
            severity: diagnostic.severity,
            message: &diagnostic.message,
            hint: diagnostic.hint.as_deref(),
        }
    }
}

/// "did you mean `x`?" for a misspelt name among the known ones, when one is close enough.
pub fn suggest<'a>(wrong: &str, known: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let best = known
        .into_iter()
        .map(|candidate| (strsim::jaro_winkler(wrong, candidate), candidate))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))?;
    Some(format!("did you mean `{}`?", best.1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_position_line_caret_and_hint() {
        let source = "steps:\n  - id: a\n    neds: [b]\n";
        let d = Diagnostic::error(Span::new(3, 5, 4), "unknown key `neds`")
            .with_hint("did you mean `needs`?");
        let text = render("r.yaml", source, &d);
        assert_eq!(
            text,
            "r.yaml:3:5: error: unknown key `neds`\n  |\n3 |     neds: [b]\n  |     ^^^^\n  = hint: did you mean `needs`?\n"
        );
    }

    #[test]
    fn long_lines_are_cut_around_the_marked_column() {
        let source = format!("{}X{}\n", "[".repeat(300), "]".repeat(300));
        let d = Diagnostic::error(Span::new(1, 301, 1), "here");
        let text = render("r.yaml", &source, &d);
        let lines: Vec<&str> = text.lines().collect();
        let code = lines[2].strip_prefix("1 | ").expect("source line");
        let caret = lines[3].strip_prefix("  | ").expect("caret line");
        assert!(code.starts_with('…') && code.ends_with('…'), "{code}");
        assert_eq!(code.chars().count(), 202);
        let at = caret.chars().count() - 1;
        assert_eq!(code.chars().nth(at), Some('X'), "{text}");
    }

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(
            suggest("neds", ["needs", "when", "run"]).as_deref(),
            Some("did you mean `needs`?")
        );
        assert_eq!(suggest("zzz", ["needs", "when"]), None);
    }
}
