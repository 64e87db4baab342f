//! The helpers Sensei adds to Handlebars: the value helper every printing `{{...}}` is compiled
//! into (see `compile.rs`), and `join`, `json`, `default`, `upper`, `lower`, `shell`.
//!
//! Sensei's helpers return typed values (`call_inner`), so they compose as subexpressions and
//! a single-expression template keeps their type; only the value helper writes text.

use super::shell::{self, Spot};
use super::{Escape, SPOT_KEY};
use handlebars::{
    Context, Handlebars, Helper, HelperDef, HelperResult, Output, PathAndJson, RenderContext,
    RenderError as HbError, RenderErrorReason, ScopedJson,
};
use serde_json::Value;
use std::borrow::Cow;

/// What went wrong inside a helper; carried out of Handlebars as a nested error.
#[derive(Debug, thiserror::Error)]
pub(super) enum Problem {
    #[error("{0} is not set")]
    Missing(String),
    #[error("{0} is null")]
    Null(String),
    #[error("{0}")]
    Unsafe(String),
    #[error("{0}")]
    Failed(String),
}

impl From<Problem> for HbError {
    fn from(problem: Problem) -> HbError {
        RenderErrorReason::NestedError(Box::new(problem)).into()
    }
}

/// A value as text: strings as they are, numbers and booleans as JSON writes them, lists and
/// objects as compact JSON. `null` has no text.
pub(super) fn text(value: &Value) -> Option<Cow<'_, str>> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(Cow::Borrowed(s)),
        other => Some(Cow::Owned(other.to_string())),
    }
}

/// The inside of a JSON string literal holding `text` (no surrounding quotes).
pub(super) fn json_inner(text: &str) -> String {
    let quoted = Value::String(text.to_owned()).to_string();
    quoted
        .strip_prefix('"')
        .and_then(|q| q.strip_suffix('"'))
        .unwrap_or_default()
        .to_owned()
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn label(param: &PathAndJson<'_>) -> String {
    param
        .relative_path()
        .cloned()
        .unwrap_or_else(|| "the value".to_owned())
}

/// The value of a helper argument; a path that resolves to nothing is an error naming it.
fn present<'a>(param: &'a PathAndJson<'_>) -> Result<&'a Value, Problem> {
    if param.is_value_missing() {
        return Err(Problem::Missing(label(param)));
    }
    Ok(param.value())
}

fn arg<'a>(h: &'a Helper<'_>, index: usize, helper: &str) -> Result<&'a PathAndJson<'a>, Problem> {
    h.param(index).ok_or_else(|| {
        Problem::Failed(format!(
            "`{helper}` needs {} argument{}",
            index + 1,
            if index == 0 { "" } else { "s" }
        ))
    })
}

fn text_arg<'a>(param: &'a PathAndJson<'_>, helper: &str) -> Result<Cow<'a, str>, Problem> {
    let value = present(param)?;
    match value {
        Value::Array(_) | Value::Object(_) => Err(Problem::Failed(format!(
            "`{helper}` needs text, got {}",
            kind(value)
        ))),
        _ => text(value).ok_or_else(|| Problem::Null(label(param))),
    }
}

/// Prints one value, escaped for the template's mode and the spot it lands in.
pub(super) struct ValueHelper {
    pub escape: Escape,
}

impl HelperDef for ValueHelper {
    fn call<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        rc: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> HelperResult {
        let param = arg(h, 0, "sensei-value")?;
        let value = present(param)?;
        let spot = h.hash_get(SPOT_KEY).map(|p| p.value());
        let field = |key: &str| spot.and_then(|s| s.get(key));
        let pre = field("pre").and_then(Value::as_str);
        // Triple braces: the value goes in as it is.
        let raw = rc.is_disable_escape();
        let in_json_string = field("in_string").and_then(Value::as_bool) == Some(true);
        if self.escape == Escape::Json && !raw && !in_json_string {
            let json = match (pre, value) {
                (Some("json"), Value::String(s)) => s.clone(),
                _ => value.to_string(),
            };
            return write(out, &json);
        }
        let text = text(value).ok_or_else(|| Problem::Null(label(param)))?;
        let escaped = match self.escape {
            _ if raw => text.into_owned(),
            Escape::Shell => {
                let spot = spot.map(Spot::from_json).unwrap_or_default();
                shell::quote(&text, &spot, pre == Some("shell")).map_err(Problem::Unsafe)?
            }
            Escape::Json => json_inner(&text),
            Escape::Html => handlebars::html_escape(&text),
            Escape::None => text.into_owned(),
        };
        write(out, &escaped)
    }
}

fn write(out: &mut dyn Output, text: &str) -> HelperResult {
    out.write(text)
        .map_err(|e| HbError::from(RenderErrorReason::from(e)))
}

/// `{{join list sep}}`: the elements as text, separated by `sep` (default `,`).
pub(super) struct Join;

impl HelperDef for Join {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, HbError> {
        let list = arg(h, 0, "join")?;
        let separator = match h.param(1) {
            Some(sep) => text_arg(sep, "join")?.into_owned(),
            None => ",".to_owned(),
        };
        let Value::Array(items) = present(list)? else {
            return Err(Problem::Failed(format!(
                "`join` needs a list, but {} is {}",
                label(list),
                kind(list.value())
            ))
            .into());
        };
        let parts = items
            .iter()
            .map(|item| {
                text(item).ok_or_else(|| Problem::Null(format!("an element of {}", label(list))))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ScopedJson::Derived(Value::String(parts.join(&separator))))
    }
}

/// `{{json value}}`: the value as compact JSON text.
pub(super) struct Json;

impl HelperDef for Json {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, HbError> {
        let value = present(arg(h, 0, "json")?)?;
        Ok(ScopedJson::Derived(Value::String(value.to_string())))
    }
}

/// `{{default value fallback}}`: the value, or the fallback when the value is unset or null.
pub(super) struct Default;

impl HelperDef for Default {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, HbError> {
        let value = arg(h, 0, "default")?;
        let fallback = arg(h, 1, "default")?;
        let chosen = if value.is_value_missing() || value.value().is_null() {
            present(fallback)?
        } else {
            value.value()
        };
        Ok(ScopedJson::Derived(chosen.clone()))
    }
}

/// `{{upper text}}` and `{{lower text}}`.
pub(super) struct Case {
    pub upper: bool,
}

impl HelperDef for Case {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, HbError> {
        let name = if self.upper { "upper" } else { "lower" };
        let text = text_arg(arg(h, 0, name)?, name)?;
        let changed = if self.upper {
            text.to_uppercase()
        } else {
            text.to_lowercase()
        };
        Ok(ScopedJson::Derived(Value::String(changed)))
    }
}

/// `{{shell value}}`: the value as one POSIX shell word, wherever the template is rendered.
pub(super) struct Shell;

impl HelperDef for Shell {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, HbError> {
        let param = arg(h, 0, "shell")?;
        let value = present(param)?;
        let text = text(value).ok_or_else(|| Problem::Null(label(param)))?;
        let word = shell::quote(&text, &Spot::word(), false).map_err(Problem::Unsafe)?;
        Ok(ScopedJson::Derived(Value::String(word)))
    }
}
