//! Fan-out: the expansions of a `for_each` known when planning (a literal list, or a list
//! param), and how expansions are named — by element, or by position when an element is
//! secret ([`item_labels`]). Expansions over step outputs happen at run time (the engine's
//! graph), with the same names.

use super::{PlanError, PlanStep};
use crate::runbook::model::{ForEach, Runbook, Text};
use crate::runbook::params::Params;
use crate::runbook::render::{MASK, Masker};
use crate::runbook::template;
use serde_json::Value as Json;

/// The runbook step a plan step id comes from: the id without its fan-out element
/// (`copy[orders]` → `copy`).
pub fn base_step(id: &str) -> &str {
    id.split('[').next().unwrap_or(id)
}

/// One plan step per step, or per element of a fan-out known now.
pub(super) fn expand(
    runbook: &Runbook,
    params: &Params,
    masker: &Masker,
) -> Result<Vec<PlanStep>, PlanError> {
    let mut out = Vec::with_capacity(runbook.steps.len());
    for step in &runbook.steps {
        let base = PlanStep {
            id: step.id.clone(),
            step: step.id.clone(),
            item: None,
            shown_item: None,
            phase: step.phase,
            action: step.action.kind(),
            needs: Vec::new(),
            wave: 0,
            window: step.window.clone(),
            pool: step.pool.clone(),
            estimate: step.estimate.map(|e| e.to_string()),
            dynamic: false,
            point_of_no_return: step.point_of_no_return,
        };
        let (items, secret) = match &step.for_each {
            None => {
                out.push(base);
                continue;
            }
            Some(ForEach::List(items)) => (items.clone(), false),
            Some(ForEach::Template(text)) => match static_items(runbook, &step.id, text, params)? {
                Some(found) => found,
                None => {
                    out.push(PlanStep {
                        id: format!("{}[*]", step.id),
                        dynamic: true,
                        ..base
                    });
                    continue;
                }
            },
        };
        let labels = item_labels(&items, masker, secret);
        distinct(&step.id, &items, &labels)?;
        for (item, label) in items.into_iter().zip(labels) {
            // An element of a secret list is shown as `***` whatever it is (the mask leaves
            // booleans alone, so it would not hide `true`).
            let shown = if secret {
                Json::String(MASK.to_owned())
            } else {
                masker.mask_json(&item)
            };
            out.push(PlanStep {
                id: format!("{}[{label}]", step.id),
                shown_item: Some(shown),
                item: Some(item),
                ..base.clone()
            });
        }
    }
    Ok(out)
}

/// Refuses a fan-out with the same element twice: two expansions could not be told apart.
/// Elements labelled by position are compared by value, and named by position.
fn distinct(step: &str, items: &[Json], labels: &[String]) -> Result<(), PlanError> {
    let mut seen = std::collections::HashMap::new();
    for (i, item) in items.iter().enumerate() {
        let key = item_label(item);
        if let Some(first) = seen.insert(key.clone(), i) {
            return Err(if labels[i] == key {
                PlanError::DuplicateItem {
                    step: step.to_owned(),
                    item: key,
                }
            } else {
                PlanError::DuplicateSecretItem {
                    step: step.to_owned(),
                    first: first + 1,
                    second: i + 1,
                }
            });
        }
    }
    Ok(())
}

/// The list a `for_each` template names, when it is known before running (params), and
/// whether it is (part of) a secret param.
fn static_items(
    runbook: &Runbook,
    step: &str,
    text: &Text,
    params: &Params,
) -> Result<Option<(Vec<Json>, bool)>, PlanError> {
    let Some(path) = text.paths().into_iter().next() else {
        return Ok(None);
    };
    let segments = template::segments(&path);
    if segments.first() != Some(&"params") {
        return Ok(None); // step outputs: known at run time
    }
    let secret = segments
        .get(1)
        .and_then(|name| runbook.param(name))
        .is_some_and(|p| p.secret);
    let mut value = Json::Object(params.clone());
    for segment in &segments[1..] {
        value = value.get(segment).cloned().unwrap_or(Json::Null);
    }
    match value {
        Json::Array(items) => Ok(Some((items, secret))),
        other => Err(PlanError::NotAList {
            step: step.to_owned(),
            path,
            found: json_kind(&other),
        }),
    }
}

/// How the elements of one fan-out name their expansions. By value ([`item_label`]), unless
/// that would put a secret into step ids, which every view, event and log line shows: when
/// the list is a secret param (`secret`), or any element shows a secret or a value already
/// masked as `***` (a step output holding a secret), every element is named by its position
/// instead, `#1`, `#2`, ... The test is on what an element shows after masking, so a
/// fan-out expanded again from its masked `step_expanded` event (a resumed migration) gets
/// the same names.
pub fn item_labels(items: &[Json], masker: &Masker, secret: bool) -> Vec<String> {
    let by_position = secret
        || items
            .iter()
            .any(|item| masker.mask(&item_label(item)).contains(MASK));
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            if by_position {
                format!("#{}", i + 1)
            } else {
                item_label(item)
            }
        })
        .collect()
}

/// How an element names its expansion: strings as they are, other values as JSON.
pub fn item_label(item: &Json) -> String {
    match item {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn json_kind(value: &Json) -> &'static str {
    match value {
        Json::Null => "not set",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "a list",
        Json::Object(_) => "an object",
    }
}
