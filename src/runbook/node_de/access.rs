//! How the node deserializer walks into lists, mappings, keys and `Spanned` values: serde's
//! `SeqAccess` and `MapAccess` over [`Node`]s, each error still recorded at its node.

use super::{NodeDe, NodeError};
use crate::diag::Span;
use crate::runbook::wrappers::{SPANNED, pack_span};
use crate::runbook::yaml::{Key, Node, Value};
use serde::de::{
    self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};

/// The elements of a YAML list.
pub(super) struct Items<'a> {
    de: NodeDe<'a>,
    items: std::slice::Iter<'a, Node>,
}

impl<'a> Items<'a> {
    pub(super) fn new(de: NodeDe<'a>, items: &'a [Node]) -> Self {
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
pub(super) struct Entries<'a> {
    de: NodeDe<'a>,
    entries: std::slice::Iter<'a, (Key, Node)>,
    known: Option<&'static [&'static str]>,
    current: Option<&'a (Key, Node)>,
    key_node: Option<Node>,
}

impl<'a> Entries<'a> {
    pub(super) fn new(
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
pub(super) struct KeyDe<'a>(NodeDe<'a>);

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

pub(super) struct KeyPartDe(KeyPart);

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
pub(super) struct SpannedAccess<'a> {
    de: NodeDe<'a>,
    step: u8,
}

impl<'a> SpannedAccess<'a> {
    pub(super) fn new(de: NodeDe<'a>) -> Self {
        SpannedAccess { de, step: 0 }
    }
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
pub(super) fn value_span(node: &Node) -> Span {
    match &node.value {
        Value::Str(s) if !s.contains('\n') => node.span.with_len(s.chars().count().max(1)),
        Value::Seq(_) | Value::Map(_) => node.span.with_len(1),
        _ => node.span,
    }
}
