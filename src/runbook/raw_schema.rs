//! The rules of `schemas/runbook.schema.json` that the schemas derived from `raw.rs` cannot
//! carry by themselves: keys that exclude or need each other, a param's default of the param's
//! type, and constraints on map values and names.
//!
//! Each rule restates a check of `check*.rs` so that an editor refuses the mistake while it is
//! typed; `sensei validate` stays the judge, and `tests/schema.rs` runs every wrong runbook of
//! the test corpus through both. A rule here must never refuse a runbook the checks accept,
//! so "a key is given" means present and not null: the loader reads `key: ~` as an absent key.

use super::check_alerts::ALERT_EVENTS;
use super::raw::ParamType;
use schemars::Schema;
use serde_json::{Value, json};

/// Runbook and trigger webhook names: 1 to 63 lowercase letters, digits, `-` and `_`.
pub const NAME_PATTERN: &str = r"^[a-z0-9][a-z0-9_-]{0,62}$";

/// Step ids: like names, of any length.
pub const STEP_ID_PATTERN: &str = r"^[a-z0-9][a-z0-9_-]*$";

/// A `for_each` template: one `{{expression}}` and nothing around it (`check_steps.rs`
/// `is_single_expression`; what the expression names is left to the checks).
pub const SINGLE_EXPRESSION_PATTERN: &str = r"^\s*\{\{(\{?[^{])*\{?\}\}\s*$";

/// A `sql` DSN: a scheme of a database Sensei speaks to (any letter case), or a template
/// (whose value is checked when it is rendered: `check_sql.rs`).
pub const DSN_PATTERN: &str = r"^\s*([Pp][Oo][Ss][Tt][Gg][Rr][Ee][Ss]([Qq][Ll])?|[Mm][Yy][Ss][Qq][Ll]|[Mm][Aa][Rr][Ii][Aa][Dd][Bb])://|\{\{";

/// Param and environment variable names (so templates can name them).
pub const IDENTIFIER_PATTERN: &str = r"^[A-Za-z_][A-Za-z0-9_]*$";

/// A step's actions: it takes exactly one.
const ACTIONS: [&str; 8] = [
    "run", "http", "gate", "wait", "check", "sql", "copy", "compare",
];

/// `key` is written with a value (`key: ~` counts as not written).
fn given(key: &str) -> Value {
    json!({ "required": [key], "properties": { key: { "not": { "type": "null" } } } })
}

/// Exactly one of `keys` is given.
fn exactly_one_of(keys: &[&str]) -> Value {
    json!({ "oneOf": keys.iter().map(|k| given(k)).collect::<Vec<_>>() })
}

/// When `key` is given, one of `others` is too.
fn needs(key: &str, others: &[&str]) -> Value {
    let then = match others {
        [one] => given(one),
        many => json!({ "anyOf": many.iter().map(|k| given(k)).collect::<Vec<_>>() }),
    };
    json!({ "if": given(key), "then": then })
}

/// Appends `rules` to the schema's `allOf`.
fn add_rules(schema: &mut Schema, rules: impl IntoIterator<Item = Value>) {
    let all_of = schema
        .ensure_object()
        .entry("allOf")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(list) = all_of {
        list.extend(rules);
    }
}

/// A step: exactly one action; the polling keys only on a `check`, and `stable_for` and
/// `probe` only with `every` (`check_poll.rs`); `outputs` only on a `run` step and `rollback`
/// only on a `run`, `http`, `sql` or `copy` step (`check_steps.rs`).
pub fn step(schema: &mut Schema) {
    let mut rules = vec![exactly_one_of(&ACTIONS)];
    for key in ["every", "stable_for", "probe"] {
        rules.push(needs(key, &["check"]));
    }
    for key in ["stable_for", "probe"] {
        rules.push(needs(key, &["every"]));
    }
    rules.push(needs("outputs", &["run"]));
    rules.push(needs("rollback", &["run", "http", "sql", "copy"]));
    add_rules(schema, rules);
}

/// A probe: exactly one of `run`, `http` or `sql`; `outputs: json` only for `run`.
pub fn probe(schema: &mut Schema) {
    add_rules(
        schema,
        [
            exactly_one_of(&["run", "http", "sql"]),
            needs("outputs", &["run"]),
        ],
    );
}

/// SQL: exactly one of `query` or `file` (`check_sql.rs`).
pub fn sql(schema: &mut Schema) {
    add_rules(schema, [exactly_one_of(&["query", "file"])]);
}

/// A copy's source, and a side of a comparison: exactly one of `table` or `query`
/// (`check_copy.rs`, `check_compare.rs`).
pub fn copy_from(schema: &mut Schema) {
    add_rules(schema, [exactly_one_of(&["table", "query"])]);
}

/// A side of a comparison: as a copy's source.
pub fn compare_side(schema: &mut Schema) {
    add_rules(schema, [exactly_one_of(&["table", "query"])]);
}

/// An alert channel: exactly one of `email` or `webhook`.
pub fn channel(schema: &mut Schema) {
    add_rules(schema, [exactly_one_of(&["email", "webhook"])]);
}

/// A param's default has the param's type (JSON Schema's `integer` also takes `1.0`, which
/// the checks refuse).
pub fn param(schema: &mut Schema) {
    let kinds = [
        (ParamType::String, "string"),
        (ParamType::Integer, "integer"),
        (ParamType::Number, "number"),
        (ParamType::Boolean, "boolean"),
        (ParamType::List, "array"),
        (ParamType::Object, "object"),
    ];
    add_rules(
        schema,
        kinds.map(|(kind, json_type)| {
            json!({
                "if": { "required": ["type"], "properties": { "type": { "const": kind } } },
                "then": { "properties": { "default": { "type": [json_type, "null"] } } },
            })
        }),
    );
}

/// `params`: names are identifiers.
pub fn param_names(schema: &mut Schema) {
    schema.insert(
        "propertyNames".into(),
        json!({ "pattern": IDENTIFIER_PATTERN }),
    );
}

/// `pools`: each has at least one slot.
pub fn pool_sizes(schema: &mut Schema) {
    if let Some(size) = schema
        .get_mut("additionalProperties")
        .and_then(Value::as_object_mut)
    {
        size.insert("minimum".into(), json!(1));
    }
}

/// An alert rule's `on`: known event names.
pub fn alert_events(schema: &mut Schema) {
    if let Some(item) = schema.get_mut("items").and_then(Value::as_object_mut) {
        item.insert("enum".into(), json!(ALERT_EVENTS));
    }
}

/// `every`: a duration longer than 0s (the field's schema is `anyOf: [Duration, null]`).
pub fn polling_interval(schema: &mut Schema) {
    let branches = schema.get_mut("anyOf").and_then(Value::as_array_mut);
    for branch in branches.into_iter().flatten() {
        if let Some(duration) = branch.as_object_mut().filter(|b| b.contains_key("$ref")) {
            duration.insert(
                "not".into(),
                json!({ "pattern": r"^\s*(0+(ms|s|m|h|d))+\s*$" }),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_given_as_null_is_not_given() {
        assert_eq!(
            given("run"),
            json!({"required": ["run"], "properties": {"run": {"not": {"type": "null"}}}})
        );
    }

    #[test]
    fn needing_one_of_several_keys_is_an_any_of() {
        let rule = needs("rollback", &["run", "http"]);
        assert_eq!(rule["then"]["anyOf"][1], given("http"));
        assert_eq!(needs("outputs", &["run"])["then"], given("run"));
    }
}
