//! A serde deserializer over the positioned [`Node`] tree that keeps going after errors.
//!
//! The runbook structs in `raw.rs` derive `Deserialize`; this deserializer fills them from the
//! node tree and, unlike a streaming parser, loses nothing when one part is wrong:
//! - an unknown key is recorded (with a "did you mean" hint) and skipped;
//! - any other error is recorded once, at the innermost node it concerns, and travels up to the
//!   nearest [`Recover`](super::wrappers::Recover), which turns it into a missing part so that
//!   the rest of the runbook is still loaded and checked.

use super::wrappers::{SPANNED, pack_span};
use super::yaml::{Key, Node, Value};
use crate::diag::{self, Diagnostic, Span};
use serde::de::{
    self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};
use std::cell::RefCell;
use std::fmt;

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
            return visitor.visit_seq(SpannedAccess { de: self, step: 0 });
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

/// The elements of a YAML list.
struct Items<'a> {
    de: NodeDe<'a>,
    items: std::slice::Iter<'a, Node>,
}

impl<'a> Items<'a> {
    fn new(de: NodeDe<'a>, items: &'a [Node]) -> Self {
        Items {
            de,
            items: items.iter(),
        }
    }
}

impl<'de> SeqAccess<'de> for Items<'de> {
    type Error = NodeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, NodeError> {
        match self.items.next() {
            Some(node) => {
                let de = self.de.child(node, None);
                seed.deserialize(de)
                    .map(Some)
                    .map_err(|e| de.report(e, "this value"))
            }
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

/// The entries of a YAML mapping; for a struct, only the keys it declares.
struct Entries<'a> {
    de: NodeDe<'a>,
    entries: std::slice::Iter<'a, (Key, Node)>,
    known: Option<&'static [&'static str]>,
    current: Option<&'a (Key, Node)>,
    key_node: Option<Node>,
}

impl<'a> Entries<'a> {
    fn new(
        de: NodeDe<'a>,
        entries: &'a [(Key, Node)],
        known: Option<&'static [&'static str]>,
    ) -> Self {
        Entries {
            de,
            entries: entries.iter(),
            known,
            current: None,
            key_node: None,
        }
    }
}

impl<'de> MapAccess<'de> for Entries<'de> {
    type Error = NodeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, NodeError> {
        loop {
            let Some(entry) = self.entries.next() else {
                return Ok(None);
            };
            if let Some(known) = self.known
                && !known.contains(&entry.0.name.as_str())
            {
                continue; // recorded as an unknown key already
            }
            self.current = Some(entry);
            let key = &entry.0;
            // Keys of free-form mappings may be `Spanned<String>`: give them a node to read.
            let node = Node {
                span: key.span,
                value: Value::Str(key.name.clone()),
            };
            let key_node: &Node = self.key_node.insert(node);
            // SAFETY-free lifetime juggling: the key node lives until the next key is read,
            // and serde reads a key fully before asking for the next one.
            let de = NodeDe {
                node: key_node,
                sink: self.de.sink,
                field: None,
            };
            return seed.deserialize(KeyDe(de)).map(Some);
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, NodeError> {
        let Some((key, node)) = self.current.take() else {
            return Err(NodeError::new(
                "a value was asked for before its key".into(),
            ));
        };
        let de = self.de.child(node, Some(key.name.as_str()));
        // Errors raised by a type's own `Deserialize` (a bad duration, cron or zone) are
        // reported here, at the value, rather than at the enclosing mapping.
        seed.deserialize(de).map_err(|e| de.report(e, "this value"))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// A key of a mapping: a string, possibly wanted with its position.
struct KeyDe<'a>(NodeDe<'a>);

impl<'de> Deserializer<'de> for KeyDe<'_> {
    type Error = NodeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
        match &self.0.node.value {
            Value::Str(s) => visitor.visit_str(s),
            _ => Err(NodeError::new("mapping keys must be strings".into())),
        }
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, NodeError> {
        if name == SPANNED {
            let packed = pack_span(self.0.node.span);
            let name = match &self.0.node.value {
                Value::Str(s) => s.clone(),
                _ => String::new(),
            };
            return visitor.visit_seq(de::value::SeqDeserializer::new(
                [KeyPart::Span(packed), KeyPart::Name(name)].into_iter(),
            ));
        }
        self.deserialize_any(visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        map struct enum identifier ignored_any
    }
}

/// The two parts of a spanned key, fed through serde's own value deserializers.
enum KeyPart {
    Span(u64),
    Name(String),
}

impl<'de> IntoDeserializer<'de, NodeError> for KeyPart {
    type Deserializer = KeyPartDe;
    fn into_deserializer(self) -> KeyPartDe {
        KeyPartDe(self)
    }
}

struct KeyPartDe(KeyPart);

impl<'de> Deserializer<'de> for KeyPartDe {
    type Error = NodeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
        match self.0 {
            KeyPart::Span(packed) => visitor.visit_u64(packed),
            KeyPart::Name(name) => visitor.visit_string(name),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

/// Feeds a `Spanned<T>`: first the packed position, then the value itself.
struct SpannedAccess<'a> {
    de: NodeDe<'a>,
    step: u8,
}

impl<'de> SeqAccess<'de> for SpannedAccess<'de> {
    type Error = NodeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, NodeError> {
        self.step += 1;
        match self.step {
            1 => {
                let packed = pack_span(value_span(self.de.node));
                seed.deserialize(packed.into_deserializer()).map(Some)
            }
            2 => seed
                .deserialize(self.de)
                .map(Some)
                .map_err(|e| self.de.report(e, "this value")),
            _ => Ok(None),
        }
    }
}

/// The span a diagnostic about a value should mark: a whole one-line string, else the start.
fn value_span(node: &Node) -> Span {
    match &node.value {
        Value::Str(s) if !s.contains('\n') => node.span.with_len(s.chars().count().max(1)),
        Value::Seq(_) | Value::Map(_) => node.span.with_len(1),
        _ => node.span,
    }
}
