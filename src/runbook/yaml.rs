//! YAML text to a positioned [`Node`] tree.
//!
//! serde-saphyr parses the text (with a [`Budget`](serde_saphyr::Budget) against alias bombs,
//! deep nesting and huge inputs) and its `Spanned<T>` gives every node and key its line and
//! column. We keep that as a plain tree rather than deserializing straight into the runbook
//! types, because a streaming deserializer stops at the first error, while runbook checks must
//! report every problem in a file in one pass (see `node_de`).

use crate::diag::{Diagnostic, Span};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;
use std::fmt;

/// Runbooks larger than this are refused before parsing: a real runbook is kilobytes, and the
/// 10,000-step benchmark runbook is about 1.2 MB.
pub const MAX_RUNBOOK_BYTES: usize = 8 * 1024 * 1024;
/// Nesting deeper than this is refused by the parser's budget (runbooks need about 8 levels).
pub const MAX_DEPTH: usize = 64;

/// A YAML value with the position where it appears.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub span: Span,
    pub value: Value,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
}

/// A mapping key with its position (unknown-key errors point at it).
#[derive(Clone, Debug, PartialEq)]
pub struct Key {
    pub name: String,
    pub span: Span,
}

impl Node {
    /// The entry `key` of a mapping node.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|(k, _)| k.name == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// What kind of YAML value this is, for error messages.
    pub fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

/// Parses runbook bytes into a node tree, or explains in one diagnostic why it cannot.
pub fn parse(bytes: &[u8]) -> Result<Node, Diagnostic> {
    if bytes.len() > MAX_RUNBOOK_BYTES {
        return Err(Diagnostic::error(
            super::file_start(),
            format!(
                "the file is {:.1} MiB; runbooks are limited to {} MiB",
                bytes.len() as f64 / (1024.0 * 1024.0),
                MAX_RUNBOOK_BYTES / (1024 * 1024)
            ),
        )
        .with_hint("split the runbook, or generate its repetitive parts with `for_each`"));
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|e| not_text(bytes, e.valid_up_to(), "is not UTF-8 text: invalid byte"))?;
    if let Some(at) = text.find('\0') {
        return Err(not_text(bytes, at, "holds a NUL byte"));
    }
    if text.trim().is_empty() || only_comments(text) {
        return Err(
            Diagnostic::error(super::file_start(), "the runbook is empty").with_hint(
                "a runbook is a YAML mapping with at least `version: 1`, `name` and `steps`",
            ),
        );
    }
    let mut alias_limits = serde_saphyr::options::AliasLimits::default();
    alias_limits.max_total_replayed_events = 100_000;
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_depth: MAX_DEPTH,
            max_nodes: 2_000_000,
            max_events: 4_000_000,
            max_aliases: 1_000,
            max_anchors: 1_000,
            max_documents: 1,
            max_total_scalar_bytes: MAX_RUNBOOK_BYTES,
            // Aliases are replayed events: a few anchors can expand exponentially.
            max_recorded_anchor_events: 100_000,
        },
        alias_limits: alias_limits,
        strict_booleans: true,
        with_snippet: false,
    };
    let raw: Spanned<RawValue> =
        serde_saphyr::from_str_with_options(text, options).map_err(|e| yaml_error(&e))?;
    Ok(into_node(raw))
}

fn only_comments(text: &str) -> bool {
    text.lines().all(|l| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#') || t == "---" || t == "..."
    })
}

fn not_text(bytes: &[u8], valid_up_to: usize, what: &str) -> Diagnostic {
    let prefix = &bytes[..valid_up_to];
    let line = prefix.iter().filter(|b| **b == b'\n').count() + 1;
    let column = prefix.iter().rev().take_while(|b| **b != b'\n').count() + 1;
    // Located like any diagnostic; its line is not shown (`diag::render` shows only text).
    Diagnostic::error(
        Span::new(line as u32, column as u32, 1),
        format!("the file {what} (a binary or differently encoded file?)"),
    )
    .with_hint("runbooks are UTF-8 YAML files")
}

fn yaml_error(error: &serde_saphyr::Error) -> Diagnostic {
    let span = error
        .location()
        .map(|l| Span::new(l.line() as u32, l.column() as u32, 1));
    let (message, hint) = match error.without_snippet() {
        serde_saphyr::Error::Budget { breach, .. } => budget_message(breach),
        other if other.to_string().contains("duplicate mapping key") => {
            let text = other.to_string();
            let key = text
                .split("duplicate mapping key: ")
                .nth(1)
                .and_then(|rest| rest.split(',').next())
                .unwrap_or("?")
                .to_owned();
            (
                format!("key `{key}` appears twice in the same mapping"),
                Some("remove one of them; YAML keeps only one value per key".to_owned()),
            )
        }
        other if is_alias_bomb(&other.to_string()) => (
            "the YAML expands too many aliases (an alias bomb?)".to_owned(),
            Some("runbooks rarely need YAML anchors; write the values out".to_owned()),
        ),
        other if other.to_string().contains("recursion limit") => (
            format!("the YAML nests deeper than {MAX_DEPTH} levels"),
            Some("runbooks are small, shallow YAML mappings; is this the right file?".to_owned()),
        ),
        other => (
            format!("invalid YAML: {}", strip_location(&other.to_string())),
            Some("check the indentation and quoting around this position".to_owned()),
        ),
    };
    Diagnostic::error(span, message).with_hint_opt(hint)
}

fn budget_message(breach: &serde_saphyr::budget::BudgetBreach) -> (String, Option<String>) {
    use serde_saphyr::budget::BudgetBreach as B;
    let message = match breach {
        B::Depth { .. } => format!("the YAML nests deeper than {MAX_DEPTH} levels"),
        B::Aliases { .. } | B::AliasAnchorRatio { .. } | B::Anchors { .. } => {
            "the YAML uses too many aliases (an alias bomb?)".to_owned()
        }
        B::Documents { .. } => "a runbook file holds exactly one YAML document".to_owned(),
        other => format!("the YAML is too large to be a runbook ({other:?})"),
    };
    (
        message,
        Some("runbooks are small, shallow YAML mappings; is this the right file?".to_owned()),
    )
}

fn is_alias_bomb(message: &str) -> bool {
    message.contains("budget breached") || message.contains("alias") || message.contains("Alias")
}

/// serde-saphyr appends " at line L column C" to some messages; we show the position ourselves.
fn strip_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

fn span_of<T>(spanned: &Spanned<T>) -> Span {
    let l = spanned.referenced;
    Span::new(l.line() as u32, l.column() as u32, l.span().len() as u32)
}

fn into_node(raw: Spanned<RawValue>) -> Node {
    let span = span_of(&raw);
    let value = match raw.value {
        RawValue::Null => Value::Null,
        RawValue::Bool(b) => Value::Bool(b),
        RawValue::Int(i) => Value::Int(i),
        RawValue::Float(f) => Value::Float(f),
        RawValue::Str(s) => Value::Str(s),
        RawValue::Seq(items) => Value::Seq(items.into_iter().map(into_node).collect()),
        RawValue::Map(entries) => Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| {
                    let key_span = span_of(&k);
                    let key = Key {
                        span: key_span.with_len(k.value.chars().count()),
                        name: k.value,
                    };
                    (key, into_node(v))
                })
                .collect(),
        ),
    };
    Node { span, value }
}

/// The shape serde-saphyr fills; converted to [`Node`] right after parsing.
enum RawValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<RawValue>>),
    Map(Vec<(Spanned<String>, Spanned<RawValue>)>),
}

impl<'de> Deserialize<'de> for RawValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = RawValue;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<RawValue, E> {
        Ok(RawValue::Null)
    }
    fn visit_none<E>(self) -> Result<RawValue, E> {
        Ok(RawValue::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<RawValue, D::Error> {
        RawValue::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<RawValue, E> {
        Ok(RawValue::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<RawValue, E> {
        Ok(RawValue::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawValue, E> {
        i64::try_from(v)
            .map(RawValue::Int)
            .map_err(|_| E::custom(format!("the integer {v} is too large")))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<RawValue, E> {
        i64::try_from(v)
            .map(RawValue::Int)
            .map_err(|_| E::custom(format!("the integer {v} is too large")))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<RawValue, E> {
        i64::try_from(v)
            .map(RawValue::Int)
            .map_err(|_| E::custom(format!("the integer {v} is too large")))
    }
    fn visit_f64<E>(self, v: f64) -> Result<RawValue, E> {
        Ok(RawValue::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<RawValue, E> {
        Ok(RawValue::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<RawValue, E> {
        Ok(RawValue::Str(v))
    }
    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<RawValue, E> {
        Err(E::custom("binary values are not allowed in runbooks"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawValue, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(RawValue::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawValue, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0));
        while let Some(entry) = map.next_entry()? {
            entries.push(entry);
        }
        Ok(RawValue::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_positions_of_keys_and_values() {
        let node = parse(b"name: x\nsteps:\n  - id: a\n").expect("parses");
        let steps = node.get("steps").expect("steps");
        let Value::Seq(items) = &steps.value else {
            panic!("a list")
        };
        let id = items[0].get("id").expect("id");
        assert_eq!((id.span.line, id.span.column), (3, 9));
        assert_eq!(id.as_str(), Some("a"));
    }

    #[test]
    fn refuses_hostile_input_with_one_clear_error() {
        let deep = "[".repeat(100_000);
        let err = parse(deep.as_bytes()).expect_err("too deep");
        assert!(err.message.contains("nests deeper"), "{}", err.message);
        let err = parse(b"\x00\x01\x02\xff").expect_err("binary");
        assert!(err.message.contains("not UTF-8"), "{}", err.message);
        let err = parse(b"version: 1\nname: a\x00\n").expect_err("NUL");
        assert_eq!(
            err.message,
            "the file holds a NUL byte (a binary or differently encoded file?)"
        );
        let at = err.span.expect("located");
        assert_eq!((at.line, at.column), (2, 8));
        let err = parse(b"  \n# only a comment\n").expect_err("empty");
        assert_eq!(err.message, "the runbook is empty");
    }
}
