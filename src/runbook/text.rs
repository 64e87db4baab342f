//! Text written in a runbook that may be a template: a command, an `env` value, a URL, a
//! header, an alert subject, a `when` or `check`, strings inside an HTTP body or params.
//!
//! Whether a piece of text is a template is decided once, when the runbook is loaded
//! ([`Text::new`], the one place that looks for `{{`); later stages match on the variant and
//! never search the text again. Plain text is used exactly as written, a template goes
//! through the [`Renderer`].

use super::render::{self, Escape, RenderError, Renderer, Values};
use super::template;
use serde_json::{Map, Value as Json};
use std::fmt;

/// Runbook text, plain or a template; its source is kept as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Text {
    /// Holds no template syntax: used as it is.
    Plain(String),
    /// Holds `{{`: rendered before use.
    Template(String),
}

/// True when runbook text holds template syntax at all (most commands do not). The loader
/// decides with this, once: on the model through [`Text::new`], and the checker on the text
/// it checks as written.
pub(super) fn is_template(source: &str) -> bool {
    source.contains("{{")
}

impl Text {
    /// Types text as written in a runbook.
    pub fn new(source: impl Into<String>) -> Text {
        let source = source.into();
        if is_template(&source) {
            Text::Template(source)
        } else {
            Text::Plain(source)
        }
    }

    /// The text as written (for messages, plans and views).
    pub fn source(&self) -> &str {
        match self {
            Text::Plain(s) | Text::Template(s) => s,
        }
    }

    pub fn is_template(&self) -> bool {
        matches!(self, Text::Template(_))
    }

    /// The paths the template reads, as written (`params.tables`, `steps.a.outputs.n`); none
    /// for plain text or a template that does not parse.
    pub fn paths(&self) -> Vec<String> {
        match self {
            Text::Plain(_) => Vec::new(),
            Text::Template(source) => template::analyze(source.trim())
                .map(|a| a.paths)
                .unwrap_or_default(),
        }
    }

    /// The text with its template rendered, values escaped for `escape`.
    pub fn render(
        &self,
        renderer: &Renderer,
        values: &Values,
        escape: Escape,
    ) -> Result<String, RenderError> {
        match self {
            Text::Plain(text) => Ok(text.clone()),
            Text::Template(source) => renderer.template(source, values, escape),
        }
    }

    /// The text as a value: a template that is exactly one `{{...}}` yields the value with its
    /// type ([`Renderer`]'s typed rendering); anything else is a string.
    pub fn render_value(&self, renderer: &Renderer, values: &Values) -> Result<Json, RenderError> {
        match self {
            Text::Plain(text) => Ok(Json::String(text.clone())),
            Text::Template(source) => renderer.template_value(source, values),
        }
    }

    /// For `when` and `check`: the text must yield `true` or `false` (see
    /// [`render::boolean`]).
    pub fn render_bool(&self, renderer: &Renderer, values: &Values) -> Result<bool, RenderError> {
        let value = self.render_value(renderer, values)?;
        render::boolean(self.source(), value)
    }

    /// Checks what can be checked before any value is known: the template parses, and no
    /// `{{...}}` sits where `escape` cannot make a value safe (for the shell: inside
    /// backticks, right after `$`, ...). Plain text always passes.
    pub fn check(&self, escape: Escape) -> Result<(), RenderError> {
        match self {
            Text::Plain(_) => Ok(()),
            Text::Template(source) => render::check_template(source, escape),
        }
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.source())
    }
}

impl From<&str> for Text {
    fn from(source: &str) -> Text {
        Text::new(source)
    }
}

impl From<String> for Text {
    fn from(source: String) -> Text {
        Text::new(source)
    }
}

/// A JSON value written in a runbook whose strings may be templates: an `http` body, the
/// params of a schedule or a trigger. Rendering gives a JSON value: each template string is
/// rendered to a value of its own type (`"{{params.tables}}"` stays a list), so values enter
/// as JSON values, never as text spliced into JSON.
#[derive(Debug, Clone, PartialEq)]
pub enum JsonText {
    /// Holds no template: used as written.
    Plain(Json),
    /// A string that is a template.
    Template(String),
    List(Vec<JsonText>),
    /// Entries in the order the value lists them; keys are rendered as text.
    Map(Vec<(Text, JsonText)>),
}

impl JsonText {
    /// Types a value as written, its keys rendered as text too (an `http` body, a
    /// schedule's params).
    pub fn new(value: &Json) -> JsonText {
        JsonText::typed(value, true)
    }

    /// Types a value whose keys are used as written, never rendered (a trigger's params).
    pub fn with_keys_as_written(value: &Json) -> JsonText {
        JsonText::typed(value, false)
    }

    fn typed(value: &Json, keys: bool) -> JsonText {
        if !holds_template(value, keys) {
            return JsonText::Plain(value.clone());
        }
        match value {
            Json::String(s) => JsonText::Template(s.clone()),
            Json::Array(items) => {
                JsonText::List(items.iter().map(|i| JsonText::typed(i, keys)).collect())
            }
            Json::Object(map) => JsonText::Map(
                map.iter()
                    .map(|(k, v)| {
                        let key = if keys {
                            Text::new(k.as_str())
                        } else {
                            Text::Plain(k.clone())
                        };
                        (key, JsonText::typed(v, keys))
                    })
                    .collect(),
            ),
            other => JsonText::Plain(other.clone()),
        }
    }

    /// True when the value, as written, is a single string that is a template (its type is
    /// known only once rendered).
    pub fn is_template(&self) -> bool {
        matches!(self, JsonText::Template(_))
    }

    /// The value with every template in it rendered (keys without escaping).
    pub fn render(&self, renderer: &Renderer, values: &Values) -> Result<Json, RenderError> {
        Ok(match self {
            JsonText::Plain(value) => value.clone(),
            JsonText::Template(source) => renderer.template_value(source, values)?,
            JsonText::List(items) => Json::Array(
                items
                    .iter()
                    .map(|i| i.render(renderer, values))
                    .collect::<Result<_, _>>()?,
            ),
            JsonText::Map(entries) => {
                let mut out = Map::new();
                for (key, value) in entries {
                    out.insert(
                        key.render(renderer, values, Escape::None)?,
                        value.render(renderer, values)?,
                    );
                }
                Json::Object(out)
            }
        })
    }
}

/// Whether a string anywhere in `value` (in a key too, when `keys`) is a template.
fn holds_template(value: &Json, keys: bool) -> bool {
    match value {
        Json::String(s) => is_template(s),
        Json::Array(items) => items.iter().any(|i| holds_template(i, keys)),
        Json::Object(map) => map
            .iter()
            .any(|(k, v)| (keys && is_template(k)) || holds_template(v, keys)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn values() -> Values {
        Values::new(json!({ "params": { "n": 3, "dir": "a b" }, "payload": { "k": "x" } }))
    }

    #[test]
    fn text_is_typed_once_and_keeps_its_source() {
        let plain = Text::new("echo hi");
        let template = Text::new("echo {{params.dir}}");
        assert_eq!(plain, Text::Plain("echo hi".into()));
        assert!(template.is_template());
        assert_eq!(template.source(), "echo {{params.dir}}");
        assert_eq!(template.to_string(), "echo {{params.dir}}");
        assert_eq!(template.paths(), ["params.dir"]);
        assert!(plain.paths().is_empty());
    }

    #[test]
    fn plain_text_is_used_as_written_even_where_a_template_would_fail() {
        let r = Renderer::new();
        // An unbalanced quote is fine in a plain command; it is never compiled.
        let plain = Text::new("echo 'unclosed");
        assert_eq!(
            plain.render(&r, &values(), Escape::Shell).as_deref(),
            Ok("echo 'unclosed")
        );
        assert_eq!(plain.check(Escape::Shell), Ok(()));
        assert!(format!("{r:?}").contains("cached: 0"));
        let template = Text::new("echo {{params.dir}}");
        assert_eq!(
            template.render(&r, &values(), Escape::Shell).as_deref(),
            Ok("echo 'a b'")
        );
        assert_eq!(template.render_value(&r, &values()), Ok(json!("echo a b")));
        assert_eq!(
            Text::new("{{params.n}}").render_value(&r, &values()),
            Ok(json!(3))
        );
        assert_eq!(Text::new(" true ").render_bool(&r, &values()), Ok(true));
    }

    #[test]
    fn json_text_renders_only_what_holds_a_template() {
        let r = Renderer::new();
        let value = json!({ "n": "{{params.n}}", "plain": [1, "x"], "{{payload.k}}": "y" });
        let typed = JsonText::new(&value);
        let JsonText::Map(entries) = &typed else {
            panic!("expected a map, got {typed:?}");
        };
        assert!(
            entries
                .iter()
                .any(|(k, v)| k.source() == "plain" && *v == JsonText::Plain(json!([1, "x"])))
        );
        assert_eq!(
            typed.render(&r, &values()),
            Ok(json!({ "n": 3, "plain": [1, "x"], "x": "y" }))
        );
        let as_written = JsonText::with_keys_as_written(&value);
        assert_eq!(
            as_written.render(&r, &values()),
            Ok(json!({ "n": 3, "plain": [1, "x"], "{{payload.k}}": "y" }))
        );
        let plain = json!({ "a": [1, { "b": "c" }] });
        assert_eq!(JsonText::new(&plain), JsonText::Plain(plain.clone()));
        assert!(JsonText::new(&json!("{{params.n}}")).is_template());
    }
}
