//! SQL text as a client sees it: where the code is (outside strings, quoted names and
//! comments), so that statements can be split at their `;`, `params` placeholders found, and
//! values written as literals the server reads back exactly.
//!
//! Lexing follows each engine's rules for what hides a `;` or a placeholder: PostgreSQL's
//! `'...'`, `E'...'`, `"..."`, `$tag$...$tag$`, `--` and nested `/* */` comments, and SQL
//! function bodies `BEGIN ATOMIC ... END`; MySQL's `'...'` and `"..."` with backslash
//! escapes, `` `...` ``, `-- `, `#` and `/* */` comments. It never parses SQL beyond that.

use super::dsn::Engine;
use serde_json::Value as Json;
use std::ops::Range;

/// The byte ranges of `text` that are code, in order.
fn code_spans(engine: Engine, text: &str) -> Vec<Range<usize>> {
    let bytes = text.as_bytes();
    let mut spans = Vec::new();
    let mut start = 0;
    let mut i = 0;
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80;
    while i < bytes.len() {
        let b = bytes[i];
        let next = bytes.get(i + 1).copied();
        let skip_to = match (engine, b) {
            (_, b'\'') => {
                let backslashes = engine == Engine::Mysql
                    || (i > 0
                        && matches!(bytes[i - 1], b'E' | b'e')
                        && (i < 2 || !ident(bytes[i - 2])));
                Some(quoted(bytes, i, b'\'', backslashes))
            }
            (Engine::Postgres, b'"') => Some(quoted(bytes, i, b'"', false)),
            (Engine::Mysql, b'"') => Some(quoted(bytes, i, b'"', true)),
            (Engine::Mysql, b'`') => Some(quoted(bytes, i, b'`', false)),
            (_, b'-') if next == Some(b'-') => {
                // MySQL needs a space (or the end) after `--` for a comment.
                let after = bytes.get(i + 2).copied();
                if engine == Engine::Postgres || after.is_none_or(|c| c.is_ascii_whitespace()) {
                    Some(line_end(bytes, i))
                } else {
                    None
                }
            }
            (Engine::Mysql, b'#') => Some(line_end(bytes, i)),
            (_, b'/') if next == Some(b'*') => Some(block_comment(bytes, i, engine)),
            (Engine::Postgres, b'$') if i == 0 || !ident(bytes[i - 1]) => {
                dollar_tag(bytes, i).map(|tag| dollar_quoted(bytes, i, tag))
            }
            _ => None,
        };
        match skip_to {
            Some(end) => {
                if start < i {
                    spans.push(start..i);
                }
                i = end.max(i + 1);
                start = i;
            }
            None => i += 1,
        }
    }
    if start < bytes.len() {
        spans.push(start..bytes.len());
    }
    spans
}

/// The end (exclusive) of a quoted run starting at `at`, doubled quotes inside; with
/// `backslashes`, a backslash escapes the next byte.
fn quoted(bytes: &[u8], at: usize, quote: u8, backslashes: bool) -> usize {
    let mut i = at + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if backslashes => i += 2,
            b if b == quote && bytes.get(i + 1) == Some(&quote) => i += 2,
            b if b == quote => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

fn line_end(bytes: &[u8], at: usize) -> usize {
    bytes[at..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(bytes.len(), |p| at + p + 1)
}

/// PostgreSQL nests block comments; MySQL does not.
fn block_comment(bytes: &[u8], at: usize, engine: Engine) -> usize {
    let mut depth = 0;
    let mut i = at;
    while i + 1 < bytes.len() {
        match (bytes[i], bytes[i + 1]) {
            (b'/', b'*') if depth == 0 || engine == Engine::Postgres => {
                depth += 1;
                i += 2;
            }
            (b'*', b'/') => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return i;
                }
            }
            _ => i += 1,
        }
    }
    bytes.len()
}

/// The tag of a dollar quote starting at `at` (`$$` or `$name$`), with both dollars.
fn dollar_tag(bytes: &[u8], at: usize) -> Option<&[u8]> {
    let rest = &bytes[at + 1..];
    let len = rest
        .iter()
        .position(|&b| !(b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80))?;
    if rest[len] != b'$' || rest.first().is_some_and(u8::is_ascii_digit) {
        return None;
    }
    Some(&bytes[at..at + len + 2])
}

fn dollar_quoted(bytes: &[u8], at: usize, tag: &[u8]) -> usize {
    let body = at + tag.len();
    bytes[body..]
        .windows(tag.len())
        .position(|w| w == tag)
        .map_or(bytes.len(), |p| body + p + tag.len())
}

/// Words of the code spans, with their byte offsets.
fn words<'a>(text: &'a str, spans: &[Range<usize>]) -> Vec<(usize, &'a str)> {
    let mut out = Vec::new();
    for span in spans {
        let code = &text[span.clone()];
        let mut start = None;
        for (i, c) in code
            .char_indices()
            .chain(std::iter::once((code.len(), ' ')))
        {
            let word_char = c.is_alphanumeric() || c == '_';
            match (start, word_char) {
                (None, true) => start = Some(i),
                (Some(s), false) => {
                    out.push((span.start + s, &code[s..i]));
                    start = None;
                }
                _ => {}
            }
        }
    }
    out
}

/// The statements of `text`, split at each `;` outside strings, names, comments and SQL
/// function bodies; blank statements (and comment-only ones) are left out.
pub fn statements(engine: Engine, text: &str) -> Vec<&str> {
    let spans = code_spans(engine, text);
    // `BEGIN ATOMIC ... END` (PostgreSQL's SQL-standard function bodies) holds `;`.
    let mut atomic: Vec<Range<usize>> = Vec::new();
    let words = words(text, &spans);
    let mut depth = 0usize;
    let mut opened = 0;
    for (n, (at, word)) in words.iter().enumerate() {
        let upper = word.to_ascii_uppercase();
        let next_atomic = words
            .get(n + 1)
            .is_some_and(|(_, w)| w.eq_ignore_ascii_case("ATOMIC"));
        match upper.as_str() {
            "BEGIN" if depth == 0 && next_atomic => {
                depth = 1;
                opened = *at;
            }
            "BEGIN" | "CASE" if depth > 0 => depth += 1,
            "END" if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    atomic.push(opened..at + word.len());
                }
            }
            _ => {}
        }
    }
    if depth > 0 {
        atomic.push(opened..text.len());
    }
    let mut out = Vec::new();
    let mut start = 0;
    for span in &spans {
        for (i, b) in text[span.clone()].bytes().enumerate() {
            let at = span.start + i;
            if b == b';' && !atomic.iter().any(|r| r.contains(&at)) {
                out.push(&text[start..at]);
                start = at + 1;
            }
        }
    }
    out.push(&text[start..]);
    out.into_iter()
        .filter(|s| {
            !code_spans(engine, s)
                .iter()
                .all(|r| s[r.clone()].trim().is_empty())
        })
        .map(str::trim)
        .collect()
}

/// The first keyword of a statement, upper case (`SELECT`, `CREATE`, ...), for logs.
pub fn kind(engine: Engine, statement: &str) -> String {
    let spans = code_spans(engine, statement);
    words(statement, &spans)
        .first()
        .map_or_else(|| "statement".to_owned(), |(_, w)| w.to_ascii_uppercase())
}

/// Why `params` could not be put into a query.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindError {
    #[error("the query reads ${0}, but `params` has {1} value{s}", s = if *.1 == 1 { "" } else { "s" })]
    MissingParam(usize, usize),
    #[error("the query has {0} `?` placeholder{s0}, but `params` has {1} value{s1}", s0 = if *.0 == 1 { "" } else { "s" }, s1 = if *.1 == 1 { "" } else { "s" })]
    PlaceholderCount(usize, usize),
    #[error("`params` has {0} value{s}, but the query reads none of them ($1 and up for PostgreSQL, `?` for MySQL)", s = if *.0 == 1 { "" } else { "s" })]
    Unused(usize),
    #[error("param {0} holds a NUL character, which a database string cannot hold")]
    Nul(usize),
}

/// The query with each placeholder of `params` replaced by that value as a literal: `$1`,
/// `$2`, ... on PostgreSQL, each `?` in turn on MySQL (outside strings and comments).
/// `no_backslash_escapes`: the MySQL session's `sql_mode` has `NO_BACKSLASH_ESCAPES`.
pub fn bind(
    engine: Engine,
    text: &str,
    params: &[Json],
    no_backslash_escapes: bool,
) -> Result<String, BindError> {
    if params.is_empty() {
        return Ok(text.to_owned());
    }
    let literals = params
        .iter()
        .enumerate()
        .map(|(i, v)| literal(engine, v, no_backslash_escapes).ok_or(BindError::Nul(i + 1)))
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = String::with_capacity(text.len());
    let mut done = 0;
    let mut question_marks = 0;
    let mut used = vec![false; params.len()];
    let bytes = text.as_bytes();
    for span in code_spans(engine, text) {
        let mut i = span.start;
        while i < span.end {
            match (engine, bytes[i]) {
                (Engine::Postgres, b'$')
                    if bytes.get(i + 1).is_some_and(u8::is_ascii_digit)
                        && (i == 0
                            || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_')) =>
                {
                    let digits = bytes[i + 1..span.end]
                        .iter()
                        .take_while(|b| b.is_ascii_digit())
                        .count();
                    let n: usize = text[i + 1..i + 1 + digits].parse().unwrap_or(usize::MAX);
                    let Some(literal) = n.checked_sub(1).and_then(|k| literals.get(k)) else {
                        return Err(BindError::MissingParam(n, params.len()));
                    };
                    used[n - 1] = true;
                    out.push_str(&text[done..i]);
                    out.push_str(literal);
                    i += 1 + digits;
                    done = i;
                }
                (Engine::Mysql, b'?') => {
                    if let Some(literal) = literals.get(question_marks) {
                        used[question_marks] = true;
                        out.push_str(&text[done..i]);
                        out.push_str(literal);
                        done = i + 1;
                    }
                    question_marks += 1;
                    i += 1;
                }
                _ => i += 1,
            }
        }
    }
    out.push_str(&text[done..]);
    if engine == Engine::Mysql && question_marks != params.len() {
        return Err(BindError::PlaceholderCount(question_marks, params.len()));
    }
    if !used.iter().any(|&u| u) {
        return Err(BindError::Unused(params.len()));
    }
    Ok(out)
}

/// A value as an SQL literal; `None` for a string with a NUL character.
fn literal(engine: Engine, value: &Json, no_backslash_escapes: bool) -> Option<String> {
    let text = match value {
        Json::Null => return Some("NULL".into()),
        Json::Bool(b) => return Some(if *b { "TRUE" } else { "FALSE" }.into()),
        Json::Number(n) => return Some(n.to_string()),
        Json::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.contains('\0') {
        return None;
    }
    Some(match engine {
        // libpq's PQescapeLiteral: quotes doubled; with a backslash, an E'' string with
        // backslashes doubled, read the same whatever `standard_conforming_strings` says.
        Engine::Postgres if text.contains('\\') => {
            format!("E'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
        }
        Engine::Postgres => format!("'{}'", text.replace('\'', "''")),
        Engine::Mysql if no_backslash_escapes => format!("'{}'", text.replace('\'', "''")),
        // mysql_real_escape_string's escapes.
        Engine::Mysql => {
            let mut out = String::with_capacity(text.len() + 2);
            out.push('\'');
            for c in text.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '\'' => out.push_str("\\'"),
                    '"' => out.push_str("\\\""),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\u{1a}' => out.push_str("\\Z"),
                    c => out.push(c),
                }
            }
            out.push('\'');
            out
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn postgres_statements_split_outside_strings_comments_and_bodies() {
        let text = "CREATE TABLE t (a text default 'x;y');\n-- a comment; here\nINSERT INTO t VALUES (E'it\\'s; ok'), ($$a;b$$), ($q$;$q$);\n/* outer /* inner; */ still; */ SELECT \"odd;name\" FROM t;\nCREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 2 END; END;\n  ;\n";
        let found = statements(Engine::Postgres, text);
        assert_eq!(found.len(), 4, "{found:#?}");
        assert_eq!(found[0], "CREATE TABLE t (a text default 'x;y')");
        assert!(found[1].starts_with("-- a comment; here\nINSERT"));
        assert!(found[2].ends_with("SELECT \"odd;name\" FROM t"));
        assert!(found[3].starts_with("CREATE FUNCTION") && found[3].ends_with("END"));
        assert_eq!(kind(Engine::Postgres, found[1]), "INSERT");
        assert_eq!(kind(Engine::Postgres, found[2]), "SELECT");
    }

    #[test]
    fn mysql_comments_and_quotes_follow_mysql() {
        let text = "SELECT 'a\\';b', `x;y` FROM t # c;\n; SELECT 1--2;\nSELECT 3";
        let found = statements(Engine::Mysql, text);
        assert_eq!(
            found,
            [
                "SELECT 'a\\';b', `x;y` FROM t # c;",
                "SELECT 1--2",
                "SELECT 3"
            ]
        );
    }

    #[test]
    fn params_become_literals_at_their_placeholders_only() {
        let params = [
            json!("O'Reilly"),
            json!(42),
            json!(null),
            json!("a\\b"),
            json!(true),
        ];
        let bound = bind(
            Engine::Postgres,
            "SELECT $1, '$2', $2, $3, $4 /* $5 */, $5, $$ $1 $$ -- $1",
            &params,
            false,
        )
        .expect("binds");
        assert_eq!(
            bound,
            "SELECT 'O''Reilly', '$2', 42, NULL, E'a\\\\b' /* $5 */, TRUE, $$ $1 $$ -- $1"
        );
        let bound =
            bind(Engine::Mysql, "SELECT ?, '?', ? # ?", &params[..2], false).expect("binds");
        assert_eq!(bound, "SELECT 'O\\'Reilly', '?', 42 # ?");
        let bound = bind(Engine::Mysql, "SELECT ?", &[json!("a\\'b")], true).expect("binds");
        assert_eq!(bound, "SELECT 'a\\''b'");
    }

    #[test]
    fn a_placeholder_without_a_value_or_a_value_without_a_placeholder_is_refused() {
        assert_eq!(
            bind(Engine::Postgres, "SELECT $2", &[json!(1)], false),
            Err(BindError::MissingParam(2, 1))
        );
        assert_eq!(
            bind(Engine::Mysql, "SELECT ?, ?", &[json!(1)], false),
            Err(BindError::PlaceholderCount(2, 1))
        );
        assert_eq!(
            bind(Engine::Postgres, "SELECT '$1'", &[json!(1)], false),
            Err(BindError::Unused(1))
        );
        assert_eq!(
            bind(Engine::Postgres, "SELECT $1", &[json!("a\0b")], false),
            Err(BindError::Nul(1))
        );
        // Without params, a query is left as written (a `?` may be a jsonb operator).
        assert_eq!(
            bind(Engine::Postgres, "SELECT '{}'::jsonb ? 'a'", &[], false),
            Ok("SELECT '{}'::jsonb ? 'a'".into())
        );
    }
}
