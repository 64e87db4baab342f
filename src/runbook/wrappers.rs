//! Small wrapper types used inside the raw runbook structs.
//!
//! - [`Spanned<T>`]: a value with the position it was written at, for semantic diagnostics.
//! - [`Recover<T>`]: a value that may have failed to load; its errors were already reported,
//!   and the rest of the runbook keeps being checked.
//! - [`Entries<T>`]: a YAML mapping of user-chosen names, kept in source order with positions.
//!
//! Each has a transparent JSON Schema, so `schemas/runbook.schema.json` describes the YAML a
//! user writes, not these wrappers.

use crate::diag::Span;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

/// The magic names through which `node_de` recognises these wrappers.
pub(crate) const SPANNED: &str = "$sensei::Spanned";
pub(crate) const RECOVER: &str = "$sensei::Recover";

/// A value with the position of the YAML node it came from.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

impl<T> Spanned<T> {
    pub fn new(value: T, span: Span) -> Self {
        Spanned { value, span }
    }
}

impl<T> std::ops::Deref for Spanned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Spanned<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SpannedVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for SpannedVisitor<T> {
            type Value = Spanned<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a value with its position")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Spanned<T>, A::Error> {
                let packed: u64 = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::custom("missing position"))?;
                let value = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::custom("missing value"))?;
                Ok(Spanned::new(value, unpack_span(packed)))
            }
        }
        deserializer.deserialize_tuple_struct(SPANNED, 2, SpannedVisitor(PhantomData))
    }
}

/// Positions travel through serde as one u64: line, column and length, 21 bits each.
pub(crate) fn pack_span(span: Span) -> u64 {
    let clamp = |v: u32| u64::from(v.min(0x1f_ffff));
    (clamp(span.line) << 42) | (clamp(span.column) << 21) | clamp(span.len)
}

fn unpack_span(packed: u64) -> Span {
    let part = |shift: u32| ((packed >> shift) & 0x1f_ffff) as u32;
    Span::new(part(42), part(21), part(0))
}

impl<T: JsonSchema> JsonSchema for Spanned<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}

/// A part of the runbook that loads on its own: if it is malformed, its errors are reported
/// and it becomes `None`, and the other parts are still loaded and checked.
#[derive(Clone, Debug, PartialEq)]
pub struct Recover<T>(pub Option<T>);

impl<T> Default for Recover<T> {
    fn default() -> Self {
        Recover(None)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Recover<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RecoverVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for RecoverVisitor<T> {
            type Value = Recover<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a runbook part")
            }
            fn visit_newtype_struct<D: Deserializer<'de>>(
                self,
                deserializer: D,
            ) -> Result<Recover<T>, D::Error> {
                // The node deserializer has already recorded any error as a diagnostic.
                Ok(Recover(T::deserialize(deserializer).ok()))
            }
        }
        deserializer.deserialize_newtype_struct(RECOVER, RecoverVisitor(PhantomData))
    }
}

impl<T: JsonSchema> JsonSchema for Recover<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}

/// A mapping from user-chosen names (windows, pools, params, channels) to values, in the order
/// written, each name with its position.
#[derive(Clone, Debug, PartialEq)]
pub struct Entries<T>(pub Vec<(Spanned<String>, T)>);

impl<T> Default for Entries<T> {
    fn default() -> Self {
        Entries(Vec::new())
    }
}

impl<T> Entries<T> {
    pub fn iter(&self) -> impl Iterator<Item = &(Spanned<String>, T)> {
        self.0.iter()
    }
    pub fn get(&self, name: &str) -> Option<&T> {
        self.0.iter().find(|(k, _)| k.value == name).map(|(_, v)| v)
    }
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.value.as_str())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Entries<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for EntriesVisitor<T> {
            type Value = Entries<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries<T>, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(Entries(entries))
            }
        }
        deserializer.deserialize_map(EntriesVisitor(PhantomData))
    }
}

impl<T: JsonSchema> JsonSchema for Entries<T> {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        format!("Map_of_{}", T::schema_name()).into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        schemars::json_schema!({
            "type": "object",
            "additionalProperties": generator.subschema_for::<T>(),
        })
    }
}
