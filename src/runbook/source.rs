//! A runbook's text with its name, and position arithmetic on it.

use crate::diag::Span;
use std::sync::OnceLock;

#[derive(Debug, Clone)]
pub struct Source {
    /// How the file is named in diagnostics (the path as the user gave it).
    pub name: String,
    pub text: String,
    line_starts: OnceLock<Vec<usize>>,
}

impl Source {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        Source {
            name: name.into(),
            text: text.into(),
            line_starts: OnceLock::new(),
        }
    }

    fn line_starts(&self) -> &[usize] {
        self.line_starts.get_or_init(|| {
            std::iter::once(0)
                .chain(self.text.match_indices('\n').map(|(i, _)| i + 1))
                .collect()
        })
    }

    /// Byte offset of a 1-based line and character column.
    fn offset(&self, span: Span) -> Option<usize> {
        let start = *self.line_starts().get(span.line.checked_sub(1)? as usize)?;
        let line = &self.text[start..];
        let column = span.column.saturating_sub(1) as usize;
        Some(
            start
                + line
                    .char_indices()
                    .nth(column)
                    .map_or(line.len(), |(i, _)| i),
        )
    }

    fn span_at(&self, offset: usize, len_chars: usize) -> Span {
        let starts = self.line_starts();
        let line = starts.partition_point(|s| *s <= offset);
        let line_start = starts[line.saturating_sub(1)];
        let column = self.text[line_start..offset].chars().count() + 1;
        Span::new(line as u32, column as u32, 1).with_len(len_chars)
    }

    /// The position of `needle` in the text written at or after `near` (a template's start),
    /// so a diagnostic can point inside a template; `near` itself when it is not found.
    pub fn locate(&self, near: Span, needle: &str) -> Span {
        const SEARCH_BYTES: usize = 16 * 1024;
        let Some(start) = self.offset(near) else {
            return near;
        };
        let mut end = (start + SEARCH_BYTES).min(self.text.len());
        while !self.text.is_char_boundary(end) {
            end -= 1;
        }
        match self.text[start..end].find(needle) {
            Some(found) => self.span_at(start + found, needle.chars().count()),
            None => near,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_text_inside_a_template() {
        let source = Source::new("r.yaml", "steps:\n  - run: echo {{params.tabels}}\n");
        let span = source.locate(Span::new(2, 10, 1), "params.tabels");
        assert_eq!((span.line, span.column, span.len), (2, 17, 13));
        let missing = source.locate(Span::new(2, 10, 1), "nothing");
        assert_eq!((missing.line, missing.column), (2, 10));
    }
}
