//! A serde deserializer over the positioned [`Node`] tree that keeps going after errors.
//!
//! The runbook structs in `raw.rs` derive `Deserialize`; this deserializer fills them from the
//! node tree and, unlike a streaming parser, loses nothing when one part is wrong:
//! - an unknown key is recorded (with a "did you mean" hint) and skipped;
//! - any other error is recorded once, at the innermost node it concerns, and travels up to the
//!   nearest [`Recover`](super::wrappers::Recover), which turns it into a missing part so that
//!   the rest of the runbook is still loaded and checked.

use super::wrappers::SPANNED;
use super::yaml::{Key, Node, Value};
use crate::diag::{self, Diagnostic};
use serde::de::{self, Deserializer, IntoDeserializer, Visitor};
use std::cell::RefCell;
use std::fmt;

mod access;
use access::{Entries, Items, SpannedAccess};

/// Deserializes `T` from `node`, returning it (if it loaded) and every problem found.
pub fn from_node<T: de::DeserializeOwned>(node: &Node) -> (Option<T>, Vec<Diagnostic>) {
    let sink = RefCell::new(Vec::new());
    let value = T::deserialize(NodeDe {
        node,
        sink: &sink,
        field: None,
    })
    .ok();
    (value, sink.into_inner())
}

/// Separates a message from its hint in errors raised by `Deserialize` impls of runbook types
/// (serde lets them pass only a message).
pub const HINT: &str = "\u{1f}";

/// The error type of [`NodeDe`]; by the time one is returned it is usually already recorded.
#[derive(Debug)]
pub struct NodeError {
    message: String,
    hint: Option<String>,
    missing_key: Option<String>,
    reported: bool,
}

impl NodeError {
    fn new(message: String) -> Self {
        NodeError {
            message,
            hint: None,
            missing_key: None,
            reported: false,
        }
    }
}

impl fmt::Display for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for NodeError {}

impl de::Error for NodeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        let text = msg.to_string();
        match text.split_once(HINT) {
            Some((message, hint)) => {
                let mut error = NodeError::new(message.to_owned());
                error.hint = Some(hint.to_owned());
                error
            }
            None => NodeError::new(text),
        }
    }

    fn invalid_type(unexpected: de::Unexpected, expected: &dyn de::Expected) -> Self {
        NodeError::new(format!("expected {expected}, found {unexpected}"))
    }

    fn invalid_value(unexpected: de::Unexpected, expected: &dyn de::Expected) -> Self {
        NodeError::new(format!("expected {expected}, found {unexpected}"))
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        let mut error = NodeError::new(format!(
            "`{variant}` is not one of {}",
            expected
                .iter()
                .map(|v| format!("`{v}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        error.hint = diag::suggest(variant, expected.iter().copied());
        error
    }

    fn missing_field(field: &'static str) -> Self {
        let mut error = NodeError::new(format!("missing required key `{field}`"));
        error.missing_key = Some(field.to_owned());
        error
    }
}

#[derive(Clone, Copy)]
struct NodeDe<'a> {
    node: &'a Node,
    sink: &'a RefCell<Vec<Diagnostic>>,
    /// The mapping key this node is the value of, for messages ("`needs` must be a list").
    field: Option<&'a str>,
}

impl<'a> NodeDe<'a> {
    fn child(&self, node: &'a Node, field: Option<&'a str>) -> NodeDe<'a> {
        NodeDe {
            node,
            sink: self.sink,
            field,
        }
    }

    /// Records an error at this node unless a deeper node already did.
    fn report(&self, mut error: NodeError, what: &str) -> NodeError {
        if !error.reported {
            let message = match (&error.missing_key, self.field) {
                (Some(key), _) => format!("{what} is missing the required key `{key}`"),
                (None, Some(field)) => format!("invalid `{field}`: {}", error.message),
                (None, None) => error.message.clone(),
            };
            // A scalar is marked whole (the bad duration, cron or zone); a mapping or list at
            // its first character.
            let span = match self.node.value {
                Value::Map(_) | Value::Seq(_) | Value::Null => self.node.span.with_len(1),
                _ => self.node.span.with_len(self.node.span.len.max(1) as usize),
            };
            self.sink
                .borrow_mut()
                .push(Diagnostic::error(span, message).with_hint_opt(error.hint.take()));
            error.reported = true;
        }
        error
    }

    fn guard<T>(&self, result: Result<T, NodeError>) -> Result<T, NodeError> {
        result.map_err(|e| self.report(e, "this value"))
    }

    /// A type error for this node, phrased with the key it belongs to.
    fn wrong_type(&self, expected: &str) -> NodeError {
        let found = match &self.node.value {
            Value::Str(s) if s.chars().count() <= 40 => format!("the string \"{s}\""),
            Value::Int(i) => format!("the integer {i}"),
            Value::Bool(b) => format!("`{b}`"),
            _ => self.node.kind().to_owned(),
        };
        let message = match self.field {
            Some(field) => format!("`{field}` must be {expected}, found {found}"),
            None => format!("expected {expected}, found {found}"),
        };
        let mut error = NodeError::new(message);
        let span = self.node.span;
        self.sink.borrow_mut().push(Diagnostic::error(
            span.with_len(span.len.max(1) as usize),
            error.message.clone(),
        ));
        error.reported = true;
        error
    }

    fn record_unknown_key(&self, key: &Key, noun: &str, fields: &'static [&'static str]) {
        let hint = diag::suggest(&key.name, fields.iter().copied()).unwrap_or_else(|| {
            format!(
                "allowed keys here: {}",
                fields
                    .iter()
                    .map(|f| format!("`{f}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        });
        self.sink.borrow_mut().push(
            Diagnostic::error(key.span, format!("unknown key `{}` in {noun}", key.name))
                .with_hint(hint),
        );
    }
}

/// "this step", "the runbook": how messages name a struct being loaded.
fn noun(struct_name: &str) -> String {
    let base = struct_name.trim_start_matches("Raw");
    match base {
        "Runbook" => "the runbook".to_owned(),
        _ => {
            let mut words = String::new();
            for (i, c) in base.chars().enumerate() {
                if c.is_uppercase() && i > 0 {
                    words.push(' ');
                }
                words.push(c.to_ascii_lowercase());
            }
            format!("this {words}")
        }
    }
}

macro_rules! unsigned {
    ($($method:ident),*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
            match self.node.value {
                Value::Int(i) if i >= 0 => self.guard(visitor.visit_u64(i as u64)),
                _ => Err(self.wrong_type("a whole number, 0 or more")),
            }
        }
    )*};
}

macro_rules! signed {
    ($($method:ident),*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
            match self.node.value {
                Value::Int(i) => self.guard(visitor.visit_i64(i)),
                _ => Err(self.wrong_type("a whole number")),
            }
        }
    )*};
}

impl<'de> Deserializer<'de> for NodeDe<'de> {
    type Error = NodeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
        let result = match &self.node.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Int(i) => visitor.visit_i64(*i),
            Value::Float(f) => visitor.visit_f64(*f),
            Value::Str(s) => visitor.visit_str(s),
            Value::Seq(items) => visitor.visit_seq(Items::new(self, items)),
            Value::Map(entries) => visitor.visit_map(Entries::new(self, entries, None)),
        };
        self.guard(result)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
        match self.node.value {
            Value::Bool(b) => self.guard(visitor.visit_bool(b)),
            _ => Err(self.wrong_type("`true` or `false`")),
        }
    }

    unsigned!(
        deserialize_u8,
        deserialize_u16,
        deserialize_u32,
        deserialize_u64
    );
    signed!(
        deserialize_i8,
        deserialize_i16,
        deserialize_i32,
        deserialize_i64
    );

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
        match self.node.value {
            Value::Int(i) => self.guard(visitor.visit_i64(i)),
            Value::Float(f) => self.guard(visitor.visit_f64(f)),
            _ => Err(self.wrong_type("a number")),
        }
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
        match &self.node.value {
            Value::Str(s) => self.guard(visitor.visit_str(s)),
            _ => Err(self.wrong_type("a string")),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, NodeError> {
        Err(self.wrong_type("text"))
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
        match self.node.value {
            Value::Null => self.guard(visitor.visit_none()),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
        match self.node.value {
            Value::Null => self.guard(visitor.visit_unit()),
            _ => Err(self.wrong_type("empty")),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, NodeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, NodeError> {
        // `Recover` swallows the error; it has been recorded by then.
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
        match &self.node.value {
            Value::Seq(items) => self.guard(visitor.visit_seq(Items::new(self, items))),
            _ => Err(self.wrong_type("a list")),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, NodeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, NodeError> {
        if name == SPANNED {
            return visitor.visit_seq(SpannedAccess::new(self));
        }
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
        match &self.node.value {
            Value::Map(entries) => self.guard(visitor.visit_map(Entries::new(self, entries, None))),
            _ => Err(self.wrong_type("a mapping")),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, NodeError> {
        let noun = noun(name);
        let Value::Map(entries) = &self.node.value else {
            return Err(self.wrong_type("a mapping"));
        };
        for (key, _) in entries {
            if !fields.contains(&key.name.as_str()) {
                self.record_unknown_key(key, &noun, fields);
            }
        }
        let result = visitor.visit_map(Entries::new(self, entries, Some(fields)));
        result.map_err(|e| self.report(e, &noun))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, NodeError> {
        match &self.node.value {
            Value::Str(s) => {
                let access: de::value::StrDeserializer<'_, NodeError> =
                    s.as_str().into_deserializer();
                self.guard(visitor.visit_enum(access))
            }
            _ => Err(self.wrong_type(&format!(
                "one of {}",
                variants
                    .iter()
                    .map(|v| format!("`{v}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
        visitor.visit_unit()
    }
}
