//! Handlebars templates in runbooks: parsing, and the values and helpers a template names.
//!
//! `check.rs` uses [`analyze`] to verify that every path starts at a root that exists where
//! the template is used (`params.x` a declared param, `steps.y` an upstream step, ...).

use handlebars::template::{HelperTemplate, Parameter, Template, TemplateElement};

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

/// True when a string contains template syntax at all (most commands do not: fast path).
pub fn is_template(text: &str) -> bool {
    text.contains("{{")
}

/// Parses a template and lists what it refers to; `Err` carries handlebars' reason.
pub fn analyze(text: &str) -> Result<Analysis, String> {
    let template = Template::compile(text).map_err(|e| e.reason().to_string())?;
    let mut analysis = Analysis::default();
    walk(&template, false, &mut analysis);
    Ok(analysis)
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
        Some("params" | "steps" | "item" | "migration" | "runbook" | "payload" | "event")
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
    fn splits_segments() {
        assert_eq!(
            segments("steps.a-b.outputs.rows"),
            ["steps", "a-b", "outputs", "rows"]
        );
        assert_eq!(segments("steps.[a b].status"), ["steps", "a b", "status"]);
    }
}
