//! Rendering templates at run time: strict, typed, and escaped for where the output lands.
//! Runbook text reaches the renderer through [`Text`](super::text::Text) and
//! [`JsonText`](super::text::JsonText), which decided when
//! the runbook was loaded whether there is anything to render.
//!
//! - **Strict.** A path that resolves to nothing is an error naming it, never an empty string;
//!   so is printing a `null`. `default` is the way to accept a missing value.
//! - **Typed.** A template that is exactly one `{{...}}` yields the value with its type
//!   ([`Text::render_value`](super::text::Text::render_value)); that is how `for_each` gets a list and an HTTP body keeps
//!   numbers numbers. Anything else renders to text; lists and objects print as compact JSON.
//! - **Escaped per context** ([`Escape`]). In shell commands each value is quoted for the spot
//!   it lands in (a bare word, `"..."`, `'...'`, a here-document; see `render/shell.rs`), so a
//!   value can never become code. `{{{...}}}` inserts a value as it is, on purpose.
//!
//! Templates are compiled once per escape mode and cached: the same text renders again for
//! every fan-out element and every retry.

mod compile;
mod error;
mod helpers;
mod mask;
mod shell;
#[cfg(test)]
mod tests;

pub use error::RenderError;

use error::{compile_error, excerpt, explain, expression_at, shown_value};
pub use mask::{MASK, MIN_FRAGMENT, Masker, forms, secret_values};

use handlebars::template::Template;
use handlebars::{Context, Handlebars, RenderContext, Renderable, StringOutput};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// The helper every printing `{{...}}` is compiled into, and its argument naming the spot.
const VALUE_HELPER: &str = "sensei-value";
const SPOT_KEY: &str = "sensei-spot";
/// Compiled templates kept; past this the cache starts over (a runbook has far fewer).
const CACHE_LIMIT: usize = 4096;

/// How values are escaped, by where the rendered text goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Escape {
    /// `run` and `rollback`: each value quoted for the shell where it lands.
    Shell,
    /// JSON text: a value outside a string literal is written as JSON (`"text"`, `5`,
    /// `["a"]`, `null`); inside a string literal it is escaped as string content.
    Json,
    /// HTML email bodies: values HTML-escaped.
    Html,
    /// Everything else (`env`, URLs, headers, subjects): values as they are.
    None,
}

/// The values templates read (`params`, `steps`, ...), held the way handlebars reads them.
/// Build them once for the texts rendered together (a message, a request); a caller
/// rendering many templates against nearly the same values keeps one `Values` and changes it
/// in place.
#[derive(Debug)]
pub struct Values(Context);

impl Values {
    pub fn new(json: Value) -> Values {
        Values(Context::from(json))
    }

    pub fn json(&self) -> &Value {
        self.0.data()
    }

    pub fn json_mut(&mut self) -> &mut Value {
        self.0.data_mut()
    }
}

/// Renders runbook templates. Build one per engine and share it (it is `Send + Sync`).
pub struct Renderer {
    shell: Handlebars<'static>,
    json: Handlebars<'static>,
    html: Handlebars<'static>,
    none: Handlebars<'static>,
    cache: RwLock<HashMap<(Escape, String), Arc<Template>>>,
}

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cached = self.cache.read().map_or(0, |c| c.len());
        f.debug_struct("Renderer")
            .field("cached", &cached)
            .finish_non_exhaustive()
    }
}

impl Default for Renderer {
    fn default() -> Self {
        Renderer::new()
    }
}

impl Renderer {
    pub fn new() -> Renderer {
        Renderer {
            shell: registry(Escape::Shell),
            json: registry(Escape::Json),
            html: registry(Escape::Html),
            none: registry(Escape::None),
            cache: RwLock::new(HashMap::new()),
        }
    }

    /// Renders template source to text, escaping values for `escape`. Plain text never gets
    /// here: [`Text::render`](super::text::Text::render) is the way in.
    pub(super) fn template(
        &self,
        source: &str,
        values: &Values,
        escape: Escape,
    ) -> Result<String, RenderError> {
        let compiled = self.compiled(source, escape)?;
        let mut rc = RenderContext::new(None);
        let mut out = StringOutput::new();
        compiled
            .render(self.registry(escape), &values.0, &mut rc, &mut out)
            .map_err(|e| explain(&e, source, values.json()))?;
        out.into_string().map_err(|e| RenderError::Failed {
            expr: excerpt(source),
            reason: e.to_string(),
        })
    }

    /// A template that is exactly one `{{...}}` (whitespace around it allowed) yields that
    /// value with its type: a list stays a list, a number a number, `null` stays `null`.
    /// Any other template renders to a string (without escaping).
    pub(super) fn template_value(
        &self,
        source: &str,
        values: &Values,
    ) -> Result<Value, RenderError> {
        let compiled = self.compiled(source, Escape::None)?;
        let Some((index, expression)) = compile::single_expression(&compiled) else {
            return self
                .template(source, values, Escape::None)
                .map(Value::String);
        };
        let mut rc = RenderContext::new(None);
        let result = expression.expand(&self.none, &values.0, &mut rc);
        let at = compiled.mapping.get(index).map(|m| (m.0, m.1));
        let value = result.map_err(|mut e| {
            e.line_no = e.line_no.or(at.map(|p| p.0));
            e.column_no = e.column_no.or(at.map(|p| p.1));
            explain(&e, source, values.json())
        })?;
        if value.is_value_missing() {
            return Err(RenderError::Missing {
                expr: expression_at(source, at).unwrap_or_else(|| excerpt(source)),
                path: value
                    .relative_path()
                    .cloned()
                    .unwrap_or_else(|| "the value".into()),
            });
        }
        Ok(value.value().clone())
    }

    fn registry(&self, escape: Escape) -> &Handlebars<'static> {
        match escape {
            Escape::Shell => &self.shell,
            Escape::Json => &self.json,
            Escape::Html => &self.html,
            Escape::None => &self.none,
        }
    }

    fn compiled(&self, text: &str, escape: Escape) -> Result<Arc<Template>, RenderError> {
        let key = (escape, text.to_owned());
        if let Some(t) = self
            .cache
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&key)
        {
            return Ok(Arc::clone(t));
        }
        let compiled = compile::compile(text, escape).map_err(|e| compile_error(text, e))?;
        let compiled = Arc::new(compiled);
        let mut cache = self
            .cache
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(key, Arc::clone(&compiled));
        Ok(compiled)
    }
}

/// `text` quoted as one shell word (as a value in a `run` command is).
pub fn shell_word(text: &str) -> String {
    shell::word(text)
}

/// For `when` and `check`: the value rendered from `source` must be the boolean `true` or
/// `false`, or the text `true` or `false` (surrounding whitespace ignored). Anything else —
/// `yes`, `1`, an empty string — is an error, not a guess.
pub(super) fn boolean(source: &str, value: Value) -> Result<bool, RenderError> {
    match &value {
        Value::Bool(b) => return Ok(*b),
        Value::String(s) if s.trim() == "true" => return Ok(true),
        Value::String(s) if s.trim() == "false" => return Ok(false),
        _ => {}
    }
    let got = match &value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    Err(RenderError::NotBool {
        template: excerpt(source),
        got: shown_value(&got),
    })
}

/// Compiles template source for `escape` without rendering it
/// ([`Text::check`](super::text::Text::check)).
pub(super) fn check_template(source: &str, escape: Escape) -> Result<(), RenderError> {
    compile::compile(source, escape)
        .map(drop)
        .map_err(|e| compile_error(source, e))
}

fn registry(escape: Escape) -> Handlebars<'static> {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    // Every printed value goes through the value helper, which escapes it; the registry's
    // escape function is a second line that only a Handlebars path Sensei does not rewrite
    // would reach.
    match escape {
        Escape::Shell => hb.register_escape_fn(shell::word),
        Escape::Json => hb.register_escape_fn(|s| Value::String(s.to_owned()).to_string()),
        Escape::Html => hb.register_escape_fn(handlebars::html_escape),
        Escape::None => hb.register_escape_fn(handlebars::no_escape),
    }
    hb.register_helper(VALUE_HELPER, Box::new(helpers::ValueHelper { escape }));
    hb.register_helper("join", Box::new(helpers::Join));
    hb.register_helper("json", Box::new(helpers::Json));
    hb.register_helper("default", Box::new(helpers::Default));
    hb.register_helper("upper", Box::new(helpers::Case { upper: true }));
    hb.register_helper("lower", Box::new(helpers::Case { upper: false }));
    hb.register_helper("shell", Box::new(helpers::Shell));
    hb
}
