//! Compiling a template for one escape mode.
//!
//! Handlebars prints a plain `{{path}}` itself, as text, so its escape function never sees the
//! value's type (a list, `null`) nor where in the output the value lands. Compiling therefore
//! rewrites every printing `{{...}}` into a call of Sensei's value helper: `{{params.dir}}`
//! becomes `{{sensei-value params.dir}}` and `{{join a ","}}` becomes
//! `{{sensei-value (join a ",")}}`, with a literal hash argument that records the spot the
//! value lands in (for the shell: a bare word, inside double quotes, a here-document, ...).

use super::shell::{self, Lexer};
use super::{Escape, SPOT_KEY, VALUE_HELPER};
use crate::runbook::template::{self, HELPERS};
use handlebars::Path;
use handlebars::template::{HelperTemplate, Parameter, Subexpression, Template, TemplateElement};
use serde_json::{Map, Value};

/// Why a template cannot be compiled; the position is that of the `{{...}}` at fault.
#[derive(Debug)]
pub(super) enum CompileError {
    Invalid(String),
    Unsafe {
        position: Option<(usize, usize)>,
        reason: String,
    },
    Unsupported {
        position: Option<(usize, usize)>,
        reason: String,
    },
}

pub(super) fn compile(text: &str, escape: Escape) -> Result<Template, CompileError> {
    let mut template = template::compile(text).map_err(|e| CompileError::Invalid(e.reason))?;
    let mut tracker = match escape {
        Escape::Shell => Tracker::Shell(Lexer::default()),
        Escape::Json => Tracker::Json(JsonLexer::default()),
        Escape::Html | Escape::None => Tracker::Plain,
    };
    rewrite(&mut template, &mut tracker, true)?;
    Ok(template)
}

/// Follows the quoting context through a template's literal text.
#[derive(Debug, Clone)]
enum Tracker {
    Shell(Lexer),
    Json(JsonLexer),
    Plain,
}

type State = (Vec<shell::State>, usize, bool);

impl Tracker {
    fn feed(&mut self, text: &str) -> Result<(), String> {
        match self {
            Tracker::Shell(lexer) => lexer.feed(text),
            Tracker::Json(lexer) => {
                lexer.feed(text);
                Ok(())
            }
            Tracker::Plain => Ok(()),
        }
    }

    /// Where a value printed now lands, as the literal the value helper reads.
    fn spot(&self) -> Result<Map<String, Value>, String> {
        let spot = match self {
            Tracker::Shell(lexer) => lexer.spot()?.to_json(),
            Tracker::Json(lexer) => serde_json::json!({ "in_string": lexer.in_string()? }),
            Tracker::Plain => Value::Null,
        };
        Ok(match spot {
            Value::Object(map) => map,
            _ => Map::new(),
        })
    }

    fn value(&mut self) {
        match self {
            Tracker::Shell(lexer) => lexer.value(),
            Tracker::Json(lexer) => lexer.escaped = false,
            Tracker::Plain => {}
        }
    }

    fn block(&mut self) {
        if let Tracker::Shell(lexer) = self {
            lexer.block();
        }
    }

    /// What must be the same before and after a block's body.
    fn state(&self) -> State {
        match self {
            Tracker::Shell(lexer) => lexer.state(),
            Tracker::Json(lexer) => (Vec::new(), usize::from(lexer.in_string), lexer.escaped),
            Tracker::Plain => (Vec::new(), 0, false),
        }
    }
}

/// Whether JSON text is inside a string literal.
#[derive(Debug, Clone, Default)]
struct JsonLexer {
    in_string: bool,
    escaped: bool,
}

impl JsonLexer {
    fn feed(&mut self, text: &str) {
        for c in text.chars() {
            if std::mem::take(&mut self.escaped) {
                continue;
            }
            match (self.in_string, c) {
                (true, '\\') => self.escaped = true,
                (_, '"') => self.in_string = !self.in_string,
                _ => {}
            }
        }
    }

    fn in_string(&self) -> Result<bool, String> {
        if self.escaped {
            return Err("it follows a backslash inside a JSON string".into());
        }
        Ok(self.in_string)
    }
}

/// Rewrites the printing elements of `template` (`root`: the whole template, not a block body).
fn rewrite(template: &mut Template, tracker: &mut Tracker, root: bool) -> Result<(), CompileError> {
    let mapping: Vec<Option<(usize, usize)>> = (0..template.elements.len())
        .map(|i| template.mapping.get(i).map(|m| (m.0, m.1)))
        .collect();
    for (element, position) in template.elements.iter_mut().zip(mapping) {
        let unsafe_here = |reason: String| CompileError::Unsafe { position, reason };
        match element {
            TemplateElement::RawString(text) => tracker.feed(text).map_err(unsafe_here)?,
            TemplateElement::Expression(ht) => {
                let spot = tracker.spot().map_err(unsafe_here)?;
                wrap(ht, spot).map_err(|reason| CompileError::Unsupported { position, reason })?;
                tracker.value();
            }
            // `{{{...}}}`: the value goes in as it is, wherever it lands.
            TemplateElement::HtmlExpression(ht) => {
                wrap(ht, Map::new())
                    .map_err(|reason| CompileError::Unsupported { position, reason })?;
                tracker.value();
            }
            TemplateElement::HelperBlock(ht) => {
                tracker.block();
                let before = tracker.clone();
                let name = ht.name.as_name().unwrap_or("block").to_owned();
                let unbalanced = || {
                    unsafe_here(format!(
                        "the body of `{{{{#{name}}}}}` opens a quote it does not close (or closes one it did not open)"
                    ))
                };
                if let Some(body) = ht.template.as_mut() {
                    rewrite(body, tracker, false)?;
                    if tracker.state() != before.state() {
                        return Err(unbalanced());
                    }
                }
                if let Some(inverse) = ht.inverse.as_mut() {
                    let mut other = before.clone();
                    rewrite(inverse, &mut other, false)?;
                    if other.state() != before.state() {
                        return Err(unbalanced());
                    }
                }
            }
            TemplateElement::Comment(_) => {}
            TemplateElement::DecoratorExpression(_)
            | TemplateElement::DecoratorBlock(_)
            | TemplateElement::PartialExpression(_)
            | TemplateElement::PartialBlock(_) => {
                return Err(CompileError::Unsupported {
                    position,
                    reason: "partials and decorators are not available in runbook templates".into(),
                });
            }
            // A kind of element a later Handlebars adds: refuse rather than print unescaped.
            _ => {
                return Err(CompileError::Unsupported {
                    position,
                    reason: "this kind of template element is not supported".into(),
                });
            }
        }
    }
    for i in 0..template.elements.len() {
        let suffix = suffix_after(&template.elements, i, root);
        if let TemplateElement::Expression(ht) = &mut template.elements[i]
            && let Some(Parameter::Literal(Value::Object(spot))) = ht.hash.get_mut(SPOT_KEY)
            && let Some(Value::Object(heredoc)) = spot.get_mut("heredoc")
        {
            heredoc.insert("suffix".into(), suffix.map_or(Value::Null, Value::String));
        }
    }
    Ok(())
}

/// The literal text after element `i` up to the end of its line, when it is known.
fn suffix_after(elements: &[TemplateElement], i: usize, root: bool) -> Option<String> {
    match elements.get(i + 1) {
        None => root.then(String::new),
        Some(TemplateElement::RawString(text)) => match text.split_once('\n') {
            Some((line, _)) => Some(line.to_owned()),
            None if root && i + 2 == elements.len() => Some(text.clone()),
            None => None,
        },
        Some(_) => None,
    }
}

/// Turns `{{x}}` into `{{sensei-value x}}` and `{{h a b}}` into `{{sensei-value (h a b)}}`.
fn wrap(ht: &mut HelperTemplate, mut spot: Map<String, Value>) -> Result<(), String> {
    let name = std::mem::replace(&mut ht.name, Parameter::Name(VALUE_HELPER.to_owned()));
    let params = std::mem::take(&mut ht.params);
    let hash = std::mem::take(&mut ht.hash);
    let name_text = name.as_name().map(str::to_owned);
    let is_call = !params.is_empty()
        || !hash.is_empty()
        || matches!(&name, Parameter::Name(_))
        || name_text.as_deref().is_some_and(|n| HELPERS.contains(&n));
    let inner = match (is_call, name) {
        (true, _) => {
            let helper = name_text.unwrap_or_default();
            if helper == "shell" || helper == "json" {
                // Their output is already quoted for the shell, or already JSON.
                spot.insert("pre".into(), Value::String(helper.clone()));
            }
            Parameter::Subexpression(Subexpression::new(Parameter::Name(helper), params, hash))
        }
        (false, Parameter::Name(n)) => {
            Parameter::Path(Path::parse(&n).map_err(|e| e.reason().to_string())?)
        }
        (false, other) => other,
    };
    ht.params = vec![inner];
    ht.hash
        .insert(SPOT_KEY.to_owned(), Parameter::Literal(Value::Object(spot)));
    Ok(())
}

/// The one `{{...}}` of a template that is nothing else (whitespace and comments aside): its
/// index and the value expression inside the value helper.
pub(super) fn single_expression(template: &Template) -> Option<(usize, &Parameter)> {
    let mut found = None;
    for (i, element) in template.elements.iter().enumerate() {
        match element {
            TemplateElement::RawString(text) if text.trim().is_empty() => {}
            TemplateElement::Comment(_) => {}
            TemplateElement::Expression(ht) | TemplateElement::HtmlExpression(ht)
                if found.is_none() =>
            {
                found = Some((i, ht.params.first()?));
            }
            _ => return None,
        }
    }
    found
}
