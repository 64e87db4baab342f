//! Why a template did not render, in words: each error names the `{{...}}` at fault (or the
//! template) and what is wrong, whether handlebars, the compiler or a helper found it.

use super::compile::CompileError;
use super::helpers::Problem;
use crate::runbook::template;
use handlebars::{RenderError as HbError, RenderErrorReason};
use serde_json::Value;

/// Why a template did not render. Each message is one sentence naming the `{{...}}` at fault
/// (or the template) and what is wrong. Messages can contain rendered text (`NotBool`), so
/// mask them like any other output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("`{template}` is not a valid template: {reason}")]
    Invalid { template: String, reason: String },
    #[error("{}", no_value(expr, path, "is not set"))]
    Missing { expr: String, path: String },
    #[error("{}", no_value(expr, path, "is null"))]
    Null { expr: String, path: String },
    #[error("`{expr}` cannot be rendered safely: {reason}")]
    Unsafe { expr: String, reason: String },
    #[error("`{expr}` cannot be rendered: {reason}")]
    Failed { expr: String, reason: String },
    /// `got` is [`shown_value`]'s: the value quoted whole, or described.
    #[error("`{template}` must render true or false, got {got}")]
    NotBool { template: String, got: String },
}

fn no_value(expr: &str, path: &str, what: &str) -> String {
    let inner = expr.trim_start_matches('{').trim_end_matches('}').trim();
    if inner == path {
        format!("`{expr}` has no value: {path} {what}")
    } else {
        format!("`{expr}` cannot be rendered: {path} {what}")
    }
}

pub(super) fn compile_error(text: &str, e: CompileError) -> RenderError {
    match e {
        CompileError::Invalid(reason) => RenderError::Invalid {
            template: excerpt(text),
            reason,
        },
        CompileError::Unsafe { position, reason } => RenderError::Unsafe {
            expr: expression_at(text, position).unwrap_or_else(|| excerpt(text)),
            reason,
        },
        CompileError::Unsupported { position, reason } => RenderError::Failed {
            expr: expression_at(text, position).unwrap_or_else(|| excerpt(text)),
            reason,
        },
    }
}

/// A Handlebars error as one of ours, naming the `{{...}}` it happened in.
pub(super) fn explain(e: &HbError, template: &str, ctx: &Value) -> RenderError {
    let position = e.line_no.zip(e.column_no);
    let expr = expression_at(template, position).unwrap_or_else(|| excerpt(template));
    let missing = |expr: String| match first_missing(&expr, template, ctx) {
        Some(path) => RenderError::Missing { expr, path },
        None => RenderError::Failed {
            expr,
            reason: "a value it reads is not set".into(),
        },
    };
    match e.reason() {
        RenderErrorReason::NestedError(inner) => match inner.downcast_ref::<Problem>() {
            Some(Problem::Missing(path)) => RenderError::Missing {
                expr,
                path: path.clone(),
            },
            Some(Problem::Null(path)) => RenderError::Null {
                expr,
                path: path.clone(),
            },
            Some(Problem::Unsafe(reason)) => RenderError::Unsafe {
                expr,
                reason: reason.clone(),
            },
            Some(Problem::Failed(reason)) => RenderError::Failed {
                expr,
                reason: reason.clone(),
            },
            None => RenderError::Failed {
                expr,
                reason: inner.to_string(),
            },
        },
        RenderErrorReason::MissingVariable(Some(path)) => RenderError::Missing {
            expr,
            path: path.clone(),
        },
        RenderErrorReason::MissingVariable(None)
        | RenderErrorReason::ParamNotFoundForIndex(..)
        | RenderErrorReason::ParamNotFoundForName(..)
        | RenderErrorReason::InvalidJsonIndex(_) => missing(expr),
        RenderErrorReason::HelperNotFound(name) => RenderError::Failed {
            expr,
            reason: format!("there is no helper `{name}`"),
        },
        other => RenderError::Failed {
            expr,
            reason: other.to_string(),
        },
    }
}

/// The first path `expr` (or, failing that, the whole template) reads that `ctx` lacks.
fn first_missing(expr: &str, template: &str, ctx: &Value) -> Option<String> {
    let analysis = template::analyze(expr).or_else(|_| template::analyze(template));
    analysis.ok()?.paths.into_iter().find(|path| {
        let mut value = Some(ctx);
        for segment in template::segments(path) {
            value = value.and_then(|v| match v {
                Value::Object(map) => map.get(segment),
                Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
                _ => None,
            });
        }
        value.is_none_or(Value::is_null)
    })
}

/// The `{{...}}` that starts at a 1-based line and column of `template`.
pub(super) fn expression_at(template: &str, position: Option<(usize, usize)>) -> Option<String> {
    let (line, column) = position?;
    let line_start: usize = template
        .split_inclusive('\n')
        .take(line.checked_sub(1)?)
        .map(str::len)
        .sum();
    let rest = template.get(line_start..)?;
    let offset = line_start
        + rest
            .char_indices()
            .nth(column.checked_sub(1)?)
            .map_or(rest.len(), |(i, _)| i);
    let start = offset + template.get(offset..)?.find("{{")?;
    let open = &template[start..];
    let close = ["{{{{", "{{{", "{{"]
        .iter()
        .zip(["}}}}", "}}}", "}}"])
        .find(|(o, _)| open.starts_with(**o))
        .map_or("}}", |(_, c)| c);
    let end = start + open.find(close)? + close.len();
    Some(excerpt(&template[start..end]))
}

/// A rendered value for a message: quoted whole when it is one short line, else described.
/// Never cut short like a template ([`excerpt`]): messages are masked after they are made,
/// and a secret cut in two is not found by the mask.
pub(super) fn shown_value(text: &str) -> String {
    let chars = text.chars().count();
    let lines = text.lines().count();
    if lines > 1 || text.contains('\n') || chars > 80 {
        let on = if lines > 1 {
            format!(" on {lines} lines")
        } else {
            String::new()
        };
        return format!("a text of {chars} characters{on}");
    }
    format!("`{text}`")
}

/// A template shortened for a message: its first line, at most 80 characters.
pub(super) fn excerpt(text: &str) -> String {
    let text = text.trim();
    let first = text.lines().next().unwrap_or_default();
    let mut short: String = first.chars().take(80).collect();
    if short.len() < first.len() || first.len() < text.len() {
        short.push('…');
    }
    short
}
