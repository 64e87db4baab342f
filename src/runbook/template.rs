//! Handlebars templates in runbooks: parsing, and the values and helpers a template names.
//!
//! `check.rs` uses [`analyze`] to verify that every path starts at a root that exists where
//! the template is used (`params.x` a declared param, `steps.y` an upstream step, ...).

use handlebars::template::{HelperTemplate, Parameter, Template, TemplateElement};

mod nesting;
pub use nesting::MAX_NESTING;

/// Helpers a runbook template may call: handlebars' built-ins plus Sensei's own.
pub const HELPERS: &[&str] = &[
    "if", "unless", "each", "with", "lookup", "raw", "log", "eq", "ne", "gt", "gte", "lt", "lte",
    "and", "or", "not", "len", // handlebars built-ins
    "join", "json", "default", "upper", "lower", "shell", // Sensei's
];

/// Block helpers whose body sees another context (so plain names inside refer to it).
const CONTEXT_BLOCKS: &[&str] = &["each", "with"];

/// What a template refers to.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Analysis {
    /// Paths read from the runbook's context, as written (`params.tables`, `item`).
    pub paths: Vec<String>,
    /// Helpers called that Sensei does not know.
    pub unknown_helpers: Vec<String>,
}

/// Why a template does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// One clause, e.g. "`{{params.x` is missing its closing `}}`".
    pub reason: String,
    /// The piece of the template the problem is in, as written, so a diagnostic can point at it.
    pub near: Option<String>,
    /// How many times `near` occurs in the template before the problem (`{{a}} {{a`: once).
    pub earlier: usize,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

/// Parses a template and lists what it refers to.
pub fn analyze(text: &str) -> Result<Analysis, ParseError> {
    // The common mistakes get a plain explanation first: handlebars reports them in terms of
    // its grammar ("expected trailing_tilde_to_omit_whitespace").
    braces(text)?;
    let template = compile(text)?;
    let mut analysis = Analysis::default();
    walk(&template, false, &mut analysis);
    Ok(analysis)
}

/// Compiles a template. Every compilation goes through here, so none reaches Handlebars'
/// recursive compiler (or Sensei's recursive walks over its result) nested deeper than
/// [`MAX_NESTING`].
pub fn compile(text: &str) -> Result<Template, ParseError> {
    nesting::check(text).map_err(|deep| too_deep(text, deep.offset))?;
    Template::compile(text).map_err(|e| compile_error(text, &e))
}

/// The error for a template that nests too deeply at byte `offset`, naming the start of the
/// `{{...}}` it happens in.
fn too_deep(text: &str, offset: usize) -> ParseError {
    let start = text[..offset].rfind("{{").unwrap_or(offset);
    let near = excerpt(&text[start..]);
    ParseError {
        reason: format!(
            "`{}` nests blocks, `(...)` or lists more than {MAX_NESTING} levels deep",
            shown(near, &text[start..])
        ),
        earlier: text[..start].matches(near).count(),
        near: Some(near.to_owned()),
    }
}

/// The first characters of a piece of template, enough to find it again and to show it.
fn excerpt(piece: &str) -> &str {
    const SHOWN: usize = 48;
    match piece.char_indices().nth(SHOWN) {
        Some((end, _)) => &piece[..end],
        None => piece,
    }
}

/// `excerpt` as shown in a message: marked `…` where the piece goes on.
fn shown(excerpt: &str, piece: &str) -> String {
    if excerpt.len() < piece.len() {
        format!("{excerpt}…")
    } else {
        excerpt.to_owned()
    }
}

/// Finds an unclosed `{{`, an unclosed `{{#block}}` and a `{{/block}}` that closes nothing.
fn braces(text: &str) -> Result<(), ParseError> {
    // Open blocks: name, tag as written, and where the tag starts.
    let mut blocks: Vec<(&str, &str, usize)> = Vec::new();
    let mut at = 0;
    while let Some(found) = text[at..].find("{{") {
        let start = at + found;
        let rest = &text[start + 2..];
        if rest.starts_with("{{") || text[..start].ends_with('\\') {
            return Ok(()); // raw blocks and escaped braces: leave them to handlebars
        }
        let comment = rest.starts_with("!--");
        let end = if comment { "--}}" } else { "}}" };
        let close = rest.find(end);
        // A comment may hold braces; anything else must close before the next `{{`.
        let next_open = rest.find("{{").filter(|_| !comment);
        let Some(close) = close.filter(|c| next_open.is_none_or(|n| n > *c)) else {
            // The rest of the expression as written: up to a lone `}` (a brace short), else
            // to the next `{{` or the end of the line.
            let line = rest.split("{{").next().unwrap_or_default();
            let line = line.lines().next().unwrap_or_default();
            let piece = match line.find('}') {
                Some(brace) => &line[..=brace],
                None => line.trim_end(),
            };
            let piece = format!("{{{{{piece}");
            let near = excerpt(&piece);
            return Err(ParseError {
                reason: format!("`{}` is missing its closing `}}}}`", shown(near, &piece)),
                earlier: text[..start].matches(near).count(),
                near: Some(near.to_owned()),
            });
        };
        let tag = &text[start..start + 2 + close + end.len()];
        let inner = rest[..close].trim_start_matches('~').trim_start();
        // `{{#name}}` opens a block, and so does `{{^name}}` (an inverted one; a bare `{{^}}`
        // is `{{else}}`).
        let opened = inner.strip_prefix('#').or_else(|| {
            inner
                .strip_prefix('^')
                .filter(|n| !n.trim_end_matches('~').trim().is_empty())
        });
        if let Some(opened) = opened {
            let name = opened
                .trim_start_matches(['>', '*'])
                .split_whitespace()
                .next();
            blocks.push((name.unwrap_or_default(), tag, start));
        } else if let Some(closed) = inner.strip_prefix('/') {
            let name = closed.trim_end_matches('~').trim();
            if blocks.pop().is_none() {
                return Err(located(
                    text,
                    start,
                    tag,
                    format!(
                        "closes a `{{{{#{}}}}}` block that was never opened",
                        excerpt(name)
                    ),
                ));
            }
        }
        at = start + 2 + close + end.len();
    }
    match blocks.pop() {
        Some((name, tag, start)) => Err(located(
            text,
            start,
            tag,
            format!("is never closed with `{{{{/{}}}}}`", excerpt(name)),
        )),
        None => Ok(()),
    }
}

/// An error about `piece`, written at byte `start` of the template: "`piece` `what`".
fn located(text: &str, start: usize, piece: &str, what: String) -> ParseError {
    let near = excerpt(piece);
    ParseError {
        reason: format!("`{}` {what}", shown(near, piece)),
        earlier: text[..start].matches(near).count(),
        near: Some(near.to_owned()),
    }
}

/// Handlebars' error, with the expression it occurred in instead of its grammar's terms.
fn compile_error(text: &str, error: &handlebars::TemplateError) -> ParseError {
    use handlebars::TemplateErrorReason as R;
    let expression = error.pos().and_then(|(line, column)| {
        let line_start: usize = text
            .split_inclusive('\n')
            .take(line.saturating_sub(1))
            .map(str::len)
            .sum();
        let offset = text[line_start..]
            .char_indices()
            .nth(column.saturating_sub(1))
            .map_or(text.len(), |(i, _)| line_start + i);
        let start = text[..offset.min(text.len())].rfind("{{")?;
        let end = text[start..]
            .find("}}")
            .map_or(text.len(), |e| start + e + 2);
        Some((start, &text[start..end]))
    });
    match (error.reason(), expression) {
        (R::InvalidSyntax(_), Some((start, expression))) => located(
            text,
            start,
            expression,
            "is not a valid expression".to_owned(),
        ),
        (reason, _) => ParseError {
            reason: match reason {
                R::InvalidSyntax(_) => "invalid Handlebars syntax".to_owned(),
                reason => reason.to_string(),
            },
            near: None,
            earlier: 0,
        },
    }
}

/// The segments of a path: `steps.count-source.outputs.rows` -> [steps, count-source, ...].
pub fn segments(path: &str) -> Vec<&str> {
    path.split(['.', '/'])
        .map(|s| s.trim_start_matches('[').trim_end_matches(']'))
        .filter(|s| !s.is_empty())
        .collect()
}

fn walk(template: &Template, in_context_block: bool, out: &mut Analysis) {
    for element in &template.elements {
        match element {
            TemplateElement::Expression(h)
            | TemplateElement::HtmlExpression(h)
            | TemplateElement::HelperBlock(h) => helper(h, in_context_block, out),
            _ => {}
        }
    }
}

fn helper(h: &HelperTemplate, in_context_block: bool, out: &mut Analysis) {
    let name = h.name.as_name().unwrap_or_default().to_owned();
    let is_call = h.block || !h.params.is_empty() || !h.hash.is_empty();
    if !is_call && !HELPERS.contains(&name.as_str()) {
        // `{{params.x}}`: a plain value.
        path(&name, in_context_block, out);
        return;
    }
    if !HELPERS.contains(&name.as_str()) {
        out.unknown_helpers.push(name.clone());
    }
    for param in h.params.iter().chain(h.hash.values()) {
        parameter(param, in_context_block, out);
    }
    let inner = in_context_block || CONTEXT_BLOCKS.contains(&name.as_str());
    if let Some(t) = &h.template {
        walk(t, inner, out);
    }
    if let Some(t) = &h.inverse {
        walk(t, in_context_block, out);
    }
}

fn parameter(param: &Parameter, in_context_block: bool, out: &mut Analysis) {
    match param {
        Parameter::Name(name) => path(name, in_context_block, out),
        Parameter::Path(_) => path(param.as_name().unwrap_or_default(), in_context_block, out),
        Parameter::Subexpression(sub) => {
            if let TemplateElement::Expression(h) = sub.as_element() {
                helper(h, in_context_block, out);
            }
        }
        _ => {}
    }
}

fn path(raw: &str, in_context_block: bool, out: &mut Analysis) {
    let relative = raw.starts_with('@') || raw.starts_with("this") || raw.starts_with("../");
    // Inside `each`/`with`, a bare name refers to the block's element; it cannot be checked.
    if relative || (in_context_block && !is_root(segments(raw).first().copied())) {
        return;
    }
    if !raw.is_empty() {
        out.paths.push(raw.to_owned());
    }
}

fn is_root(first: Option<&str>) -> bool {
    matches!(
        first,
        Some(
            "params"
                | "steps"
                | "item"
                | "migration"
                | "runbook"
                | "payload"
                | "event"
                | "checkpoint"
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(text: &str) -> Vec<String> {
        analyze(text).expect("parses").paths
    }

    #[test]
    fn finds_paths_in_values_helpers_and_blocks() {
        assert_eq!(
            paths("copy {{item}} --batch {{params.batch_size}}"),
            ["item", "params.batch_size"]
        );
        assert_eq!(paths("{{join params.tables \",\"}}"), ["params.tables"]);
        assert_eq!(
            paths("{{eq steps.count-source.outputs.rows steps.count-target.outputs.rows}}"),
            [
                "steps.count-source.outputs.rows",
                "steps.count-target.outputs.rows"
            ]
        );
        assert_eq!(
            paths("{{#if params.dry_run}}x{{else}}{{params.y}}{{/if}}"),
            ["params.dry_run", "params.y"]
        );
        assert_eq!(
            paths("{{#each params.tables}}{{this}} {{name}} {{params.z}}{{/each}}"),
            ["params.tables", "params.z"]
        );
        assert_eq!(paths("{{not (eq params.a 1)}}"), ["params.a"]);
    }

    #[test]
    fn reports_unknown_helpers_and_parse_errors() {
        let a = analyze("{{jion params.tables \",\"}}").expect("parses");
        assert_eq!(a.unknown_helpers, ["jion"]);
        assert!(analyze("{{params.x").is_err());
        assert!(analyze("{{#if a}}x").is_err());
    }

    #[test]
    fn explains_parse_errors_in_plain_words_and_names_the_piece() {
        let err = |t: &str| analyze(t).expect_err(t);
        let e = err("copy {{params.table} --fast");
        assert_eq!(e.reason, "`{{params.table}` is missing its closing `}}`");
        assert_eq!(e.near.as_deref(), Some("{{params.table}"));
        let e = err("{{params.a}} {{params.b {{params.c}}");
        assert_eq!(e.reason, "`{{params.b` is missing its closing `}}`");
        let e = err("{{params.a}} {{params.a");
        assert_eq!((e.near.as_deref(), e.earlier), (Some("{{params.a"), 1));
        let e = err("{{#if params.x}}yes");
        assert_eq!(
            e.reason,
            "`{{#if params.x}}` is never closed with `{{/if}}`"
        );
        let e = err("echo {{/if}}");
        assert_eq!(
            e.reason,
            "`{{/if}}` closes a `{{#if}}` block that was never opened"
        );
        let e = err("echo {{params..x}}");
        assert_eq!(e.reason, "`{{params..x}}` is not a valid expression");
        assert_eq!(e.near.as_deref(), Some("{{params..x}}"));
        // Comments, escapes and raw output are not mistaken for unclosed braces.
        assert!(analyze("{{!-- {{x}} --}} {{params.a}}").is_ok());
        assert!(analyze("{{{raw params.a}}} \\{{literal").is_ok());
        assert!(analyze("{{#each params.t}}{{this}}{{else}}none{{/each}}").is_ok());
        assert_eq!(
            analyze("{{#if params.b}}x{{^}}y{{~/if~}}").map(|_| ()),
            Ok(())
        );
    }

    #[test]
    fn compiled_elements_keep_their_lines_and_columns() {
        // The patched compiler counts positions on from pair to pair (vendor/handlebars); these
        // are the numbers the original, scanning from the start for every pair, gives: in
        // characters (`é` is one), `\r\n` one line break, text before a tag placed at the tag.
        let text = "é {{params.a}}\r\n  {{#if x}}\n{{y}}{{/if}} z";
        let template = compile(text).expect("compiles");
        let at: Vec<(usize, usize)> = template.mapping.iter().map(|m| (m.0, m.1)).collect();
        assert_eq!(at, [(1, 1), (1, 3), (2, 3), (2, 3), (3, 14)]);
    }

    #[test]
    fn splits_segments() {
        assert_eq!(
            segments("steps.a-b.outputs.rows"),
            ["steps", "a-b", "outputs", "rows"]
        );
        assert_eq!(segments("steps.[a b].status"), ["steps", "a b", "status"]);
    }
}
