//! Concrete param values for a runbook: from `-p k=v` text or JSON, checked against the
//! declared types, with defaults filled in.

use super::check::{type_name, value_has_type};
use super::model::{ParamType, Runbook};
use crate::diag;
use serde_json::{Map, Value};

/// Resolved params: every declared param with a value, in declaration order.
pub type Params = Map<String, Value>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    #[error("`{0}` is not a param assignment; write `-p name=value`")]
    Malformed(String),
    #[error("unknown param `{name}`{}", hint.as_deref().map(|h| format!(" ({h})")).unwrap_or_default())]
    Unknown { name: String, hint: Option<String> },
    #[error("param `{0}` is required; give it with `-p {0}=...`")]
    Missing(String),
    #[error("param `{name}` must be {expected}, got `{given}`")]
    WrongType {
        name: String,
        expected: &'static str,
        given: String,
    },
}

/// Splits `name=value`.
pub fn parse_assignment(text: &str) -> Result<(String, String), ParamError> {
    match text.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_owned(), value.to_owned()))
        }
        _ => Err(ParamError::Malformed(text.to_owned())),
    }
}

/// Resolves `-p` assignments: values are parsed by the param's type (lists as JSON
/// `[a, b]` or comma-separated `a,b`; objects as JSON).
pub fn resolve_text(
    runbook: &Runbook,
    given: &[(String, String)],
) -> Result<Params, Vec<ParamError>> {
    let mut errors = Vec::new();
    let mut values = Vec::new();
    for (name, text) in given {
        let Some(param) = runbook.param(name) else {
            errors.push(unknown(runbook, name));
            continue;
        };
        match coerce(param.kind, text) {
            Some(value) => values.push((name.clone(), value)),
            None => errors.push(ParamError::WrongType {
                name: name.clone(),
                expected: article(param.kind),
                given: shown(param.secret, text),
            }),
        }
    }
    finish(runbook, values, errors)
}

/// Resolves params given as JSON (API bodies, schedules, triggers).
pub fn resolve_json(
    runbook: &Runbook,
    given: &Map<String, Value>,
) -> Result<Params, Vec<ParamError>> {
    let mut errors = Vec::new();
    let mut values = Vec::new();
    for (name, value) in given {
        let Some(param) = runbook.param(name) else {
            errors.push(unknown(runbook, name));
            continue;
        };
        // A number written as a string is fine for typed params given as text elsewhere.
        let value = match (value, value_has_type(value, param.kind)) {
            (_, Ok(())) => Some(value.clone()),
            (Value::String(s), Err(_)) => coerce(param.kind, s),
            _ => None,
        };
        match value {
            Some(v) => values.push((name.clone(), v)),
            None => errors.push(ParamError::WrongType {
                name: name.clone(),
                expected: article(param.kind),
                given: shown(param.secret, &given[name].to_string()),
            }),
        }
    }
    finish(runbook, values, errors)
}

fn finish(
    runbook: &Runbook,
    given: Vec<(String, Value)>,
    mut errors: Vec<ParamError>,
) -> Result<Params, Vec<ParamError>> {
    let mut out = Map::new();
    for param in &runbook.params {
        let value = given
            .iter()
            .rev()
            .find(|(n, _)| *n == param.name)
            .map(|(_, v)| v.clone())
            .or_else(|| param.default.clone());
        match value {
            Some(v) => {
                out.insert(param.name.clone(), v);
            }
            None if param.required => errors.push(ParamError::Missing(param.name.clone())),
            None => {}
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// A given value as an error message quotes it: a secret one as `***` (the message may reach
/// a CI log, or the answer of an API call).
fn shown(secret: bool, text: &str) -> String {
    if secret {
        "***".to_owned()
    } else {
        text.to_owned()
    }
}

/// The params as they may be shown anywhere: secret values replaced by `***`, and the
/// password of any DSN a value holds.
pub fn masked(runbook: &Runbook, params: &Params) -> Params {
    // A DSN's password is a secret in any param (`runbook::sql::dsn_passwords`).
    let passwords = super::render::Masker::new(
        super::sql::dsn_passwords(runbook, params)
            .iter()
            .flat_map(|p| super::render::forms(p)),
    );
    params
        .iter()
        .map(|(name, value)| {
            let secret = runbook.param(name).is_some_and(|p| p.secret);
            let shown = if secret {
                Value::String("***".into())
            } else {
                passwords.mask_json(value)
            };
            (name.clone(), shown)
        })
        .collect()
}

fn unknown(runbook: &Runbook, name: &str) -> ParamError {
    ParamError::Unknown {
        name: name.to_owned(),
        hint: diag::suggest(name, runbook.params.iter().map(|p| p.name.as_str())).or_else(|| {
            let declared: Vec<&str> = runbook.params.iter().map(|p| p.name.as_str()).collect();
            Some(if declared.is_empty() {
                "the runbook declares no params".to_owned()
            } else {
                format!("declared: {}", declared.join(", "))
            })
        }),
    }
}

fn coerce(kind: ParamType, text: &str) -> Option<Value> {
    let json = || serde_json::from_str::<Value>(text).ok();
    match kind {
        ParamType::String => Some(Value::String(text.to_owned())),
        ParamType::Integer => text.trim().parse::<i64>().ok().map(Value::from),
        ParamType::Number => text
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number),
        ParamType::Boolean => match text.trim() {
            "true" => Some(Value::Bool(true)),
            "false" => Some(Value::Bool(false)),
            _ => None,
        },
        ParamType::List if text.trim_start().starts_with('[') => {
            json().filter(Value::is_array).or_else(|| {
                // `[a, b]` written without JSON quotes: bare words.
                let inner = text.trim().strip_prefix('[')?.strip_suffix(']')?;
                Some(Value::Array(
                    inner
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| Value::String(s.to_owned()))
                        .collect(),
                ))
            })
        }
        ParamType::List => Some(Value::Array(
            text.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_owned()))
                .collect(),
        )),
        ParamType::Object => json().filter(Value::is_object),
    }
}

fn article(kind: ParamType) -> &'static str {
    match type_name(kind) {
        "integer" => "an integer",
        "object" => "an object (JSON)",
        "list" => "a list (JSON or comma-separated)",
        "string" => "a string",
        "number" => "a number",
        _ => "a boolean (true or false)",
    }
}
