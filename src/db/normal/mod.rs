//! Values of two engines made comparable: each value a `compare` step reads (as text, the
//! protocol Sensei speaks) becomes a canonical byte string, so that the same datum stored
//! in MariaDB and in PostgreSQL, under the types a migration maps between, gives the same
//! bytes, and a datum that changed gives other bytes. `NULL` stays apart from every value
//! (the empty string included). The row hashes of `compare` are taken over these bytes.
//!
//! Three steps, each in one function:
//! 1. [`column_type`]: what a column's type (the driver's name) is on its engine: how its
//!    text is decoded, and its [`Class`].
//! 2. [`resolve`]: the class both sides of a column are compared as. Equal classes stay;
//!    text (or binary, or fixed-width text) on one side takes the other side's class, so
//!    its text is read as that type; among numbers the least precise wins (single-precision
//!    float, then double, then exact numbers); other pairs keep their own classes (and
//!    their values differ).
//! 3. [`canonical`]: the value's bytes under that class.
//!
//! | class | types | canonical form |
//! |---|---|---|
//! | number | integers, `numeric`/`DECIMAL`, `boolean` and `TINYINT(1)` (`1`/`0`), `BIT` (its unsigned value), `YEAR` | decimal digits, no `+`, no leading zeros, no trailing fractional zeros (`10.50` and `10.5` are `10.5`, `-0.0` is `0`); `NaN`, `inf`, `-inf` |
//! | double | `double precision`, `DOUBLE` | the shortest decimal that reads back as the same 64-bit float (`0.30000000000000004`, `1e20` as `100000000000000000000`) |
//! | single | `real`, `FLOAT` | rounded to 6 significant digits, as MariaDB shows a `FLOAT` |
//! | timestamp | `timestamp`, `timestamptz`, `DATETIME`, `TIMESTAMP` | UTC, `2026-01-02T03:04:05.500000Z`: a value with an offset is moved to UTC; one without is read as UTC (sessions run in UTC) |
//! | date | `date`, `DATE` | `2026-01-02` |
//! | time | `time`, `TIME` | `03:04:05.000000` (MariaDB's negative and 838-hour times kept) |
//! | uuid | `uuid`, MariaDB `UUID` | lower-case with dashes; 16 raw bytes or 32 hex digits on the other side are written so too |
//! | json | `json`, `jsonb`, MySQL `JSON` | compact JSON, object keys sorted, numbers as JSON reads them (`1.50` is `1.5`) |
//! | char | `char(n)`, `CHAR(n)` | trailing spaces dropped (PostgreSQL pads them, MariaDB strips them) |
//! | text | everything else: text, `bytea` and `BLOB` (their bytes), enums, intervals, arrays, ... | the bytes as the server sends them; no Unicode normalisation, letter case kept |
//!
//! A value its class cannot read (a MariaDB zero date, PostgreSQL's `infinity`, text that
//! is no number) keeps its text: it compares equal only to the same text.

mod forms;

use super::dsn::Engine;
use forms::{date, float, json, number, time, timestamp, uuid};
use std::borrow::Cow;
use std::cmp::Ordering;

/// What values of a column are compared as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Number,
    Double,
    Single,
    Timestamp,
    Date,
    Time,
    Uuid,
    Json,
    Char,
    Text,
}

impl Class {
    /// How logs name it.
    pub fn name(self) -> &'static str {
        match self {
            Class::Number => "number",
            Class::Double => "double",
            Class::Single => "single",
            Class::Timestamp => "timestamp",
            Class::Date => "date",
            Class::Time => "time",
            Class::Uuid => "uuid",
            Class::Json => "json",
            Class::Char => "char",
            Class::Text => "text",
        }
    }

    fn precision(self) -> Option<u8> {
        match self {
            Class::Number => Some(0),
            Class::Double => Some(1),
            Class::Single => Some(2),
            _ => None,
        }
    }
}

/// How a value's text, as its engine sends it, is read before its class applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decode {
    /// As sent.
    Plain,
    /// PostgreSQL's `t`/`f`.
    PgBool,
    /// PostgreSQL's `\x` and hex.
    PgBytea,
    /// PostgreSQL's `0101`.
    PgBits,
    /// MySQL's raw big-endian bytes.
    MyBits,
}

/// A column's type on one side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnType {
    pub decode: Decode,
    pub class: Class,
    /// An integer type: key ranges can be split by value.
    pub integer: bool,
    /// Ordered by its bytes only with an explicit collation (`COLLATE "C"`, `BINARY`).
    pub collated: bool,
}

/// The column type of `type_name` (the driver's name, as sqlx gives it) on `engine`.
pub fn column_type(engine: Engine, type_name: &str) -> ColumnType {
    let upper = type_name.to_ascii_uppercase();
    let name = upper.trim_end_matches(" UNSIGNED");
    let of = |decode, class| ColumnType {
        decode,
        class,
        integer: false,
        collated: false,
    };
    let integer = ColumnType {
        integer: true,
        ..of(Decode::Plain, Class::Number)
    };
    let text = |collated| ColumnType {
        collated,
        ..of(Decode::Plain, Class::Text)
    };
    match engine {
        Engine::Postgres => match name {
            "INT2" | "INT4" | "INT8" | "OID" => integer,
            "BOOL" => of(Decode::PgBool, Class::Number),
            "NUMERIC" => of(Decode::Plain, Class::Number),
            "FLOAT4" => of(Decode::Plain, Class::Single),
            "FLOAT8" => of(Decode::Plain, Class::Double),
            "TIMESTAMP" | "TIMESTAMPTZ" => of(Decode::Plain, Class::Timestamp),
            "DATE" => of(Decode::Plain, Class::Date),
            "TIME" => of(Decode::Plain, Class::Time),
            "UUID" => of(Decode::Plain, Class::Uuid),
            "JSON" | "JSONB" => of(Decode::Plain, Class::Json),
            "CHAR" => ColumnType {
                collated: true,
                ..of(Decode::Plain, Class::Char)
            },
            "BYTEA" => of(Decode::PgBytea, Class::Text),
            "BIT" | "VARBIT" => of(Decode::PgBits, Class::Number),
            "TEXT" | "VARCHAR" | "NAME" => text(true),
            _ => text(false),
        },
        Engine::Mysql => match name {
            "TINYINT" | "SMALLINT" | "MEDIUMINT" | "INT" | "BIGINT" => integer,
            "BOOLEAN" | "YEAR" | "DECIMAL" => of(Decode::Plain, Class::Number),
            "FLOAT" => of(Decode::Plain, Class::Single),
            "DOUBLE" => of(Decode::Plain, Class::Double),
            "DATETIME" | "TIMESTAMP" => of(Decode::Plain, Class::Timestamp),
            "DATE" => of(Decode::Plain, Class::Date),
            "TIME" => of(Decode::Plain, Class::Time),
            "JSON" => ColumnType {
                collated: true,
                ..of(Decode::Plain, Class::Json)
            },
            "CHAR" => ColumnType {
                collated: true,
                ..of(Decode::Plain, Class::Char)
            },
            "BIT" => of(Decode::MyBits, Class::Number),
            // MariaDB sends `UUID` as `BINARY`; a `_bin` collation makes text `BINARY` too.
            "VARCHAR" | "TEXT" | "TINYTEXT" | "MEDIUMTEXT" | "LONGTEXT" | "BLOB" | "TINYBLOB"
            | "MEDIUMBLOB" | "LONGBLOB" | "BINARY" | "VARBINARY" | "ENUM" | "SET" => text(true),
            _ => text(false),
        },
    }
}

/// The classes the two sides of a column are compared as (source's, target's).
pub fn resolve(source: Class, target: Class) -> (Class, Class) {
    if source == target {
        return (source, target);
    }
    // Fixed-width text is text whose trailing spaces do not count.
    let texty = |c| matches!(c, Class::Text | Class::Char);
    match (texty(source), texty(target)) {
        (true, true) => return (Class::Char, Class::Char),
        (true, false) => return (target, target),
        (false, true) => return (source, source),
        (false, false) => {}
    }
    match (source.precision(), target.precision()) {
        (Some(a), Some(b)) => {
            let least = if a >= b { source } else { target };
            (least, least)
        }
        _ => (source, target),
    }
}

/// The canonical bytes of a value (`None` is SQL `NULL`), sent as `raw`.
pub fn canonical(decode: Decode, class: Class, raw: Option<&[u8]>) -> Option<Vec<u8>> {
    let raw = raw?;
    let decoded = self::decode(decode, raw);
    let text = || std::str::from_utf8(&decoded).ok().map(str::trim);
    let made: Option<String> = match class {
        Class::Text => None,
        Class::Char => {
            let end = decoded
                .iter()
                .rposition(|&b| b != b' ')
                .map_or(0, |p| p + 1);
            return Some(decoded[..end].to_vec());
        }
        Class::Number => text().and_then(number),
        Class::Double => text().and_then(|t| float(t, false)),
        Class::Single => text().and_then(|t| float(t, true)),
        Class::Timestamp => text().and_then(timestamp),
        Class::Date => text().and_then(date),
        Class::Time => text().and_then(time),
        Class::Uuid => uuid(&decoded),
        Class::Json => serde_json::from_slice::<serde_json::Value>(&decoded)
            .ok()
            .map(|v| {
                let mut out = String::new();
                json(&v, &mut out);
                out
            }),
    };
    Some(made.map_or_else(|| decoded.into_owned(), String::into_bytes))
}

fn decode(decode: Decode, raw: &[u8]) -> Cow<'_, [u8]> {
    match decode {
        Decode::Plain => Cow::Borrowed(raw),
        Decode::PgBool => match raw {
            b"t" => Cow::Borrowed(b"1"),
            b"f" => Cow::Borrowed(b"0"),
            _ => Cow::Borrowed(raw),
        },
        Decode::PgBytea => raw
            .strip_prefix(b"\\x")
            .and_then(|hex| base16ct::mixed::decode_vec(hex).ok())
            .map_or(Cow::Borrowed(raw), Cow::Owned),
        Decode::PgBits => raw
            .iter()
            .try_fold(0u128, |n, &b| match b {
                b'0' | b'1' => n.checked_mul(2).map(|n| n + u128::from(b - b'0')),
                _ => None,
            })
            .map_or(Cow::Borrowed(raw), |n| {
                Cow::Owned(n.to_string().into_bytes())
            }),
        Decode::MyBits => raw
            .iter()
            .try_fold(0u128, |n, &b| n.checked_mul(256).map(|n| n + u128::from(b)))
            .map_or(Cow::Borrowed(raw), |n| {
                Cow::Owned(n.to_string().into_bytes())
            }),
    }
}

/// How two canonical key values of `class` order (`NULL` first), as the servers order
/// them when asked to (see `compare::query`): numbers by value, everything else by bytes.
pub fn order(class: Class, a: Option<&[u8]>, b: Option<&[u8]>) -> Ordering {
    let (a, b) = match (a, b) {
        (None, None) => return Ordering::Equal,
        (None, Some(_)) => return Ordering::Less,
        (Some(_), None) => return Ordering::Greater,
        (Some(a), Some(b)) => (a, b),
    };
    let numeric = match class {
        Class::Number => decimal_order(a, b),
        Class::Double | Class::Single => {
            let parse = |v: &[u8]| std::str::from_utf8(v).ok()?.parse::<f64>().ok();
            match (parse(a), parse(b)) {
                (Some(x), Some(y)) => Some(x.total_cmp(&y)),
                _ => None,
            }
        }
        _ => None,
    };
    numeric.unwrap_or_else(|| a.cmp(b))
}

/// Byte order of two short slices, without a call to `memcmp` (keys are compared several
/// times per row: that call was a tenth of a comparison's time).
fn short_cmp(a: &[u8], b: &[u8]) -> Ordering {
    a.iter()
        .zip(b)
        .find(|(x, y)| x != y)
        .map_or_else(|| a.len().cmp(&b.len()), |(x, y)| x.cmp(y))
}

/// Orders two canonical decimals by value; `None` when either is not one.
fn decimal_order(a: &[u8], b: &[u8]) -> Option<Ordering> {
    fn parts(v: &[u8]) -> Option<(bool, &[u8], &[u8])> {
        let (negative, rest) = match v.strip_prefix(b"-") {
            Some(rest) => (true, rest),
            None => (false, v),
        };
        let dot = rest.iter().position(|&b| b == b'.');
        let (int, frac) = match dot {
            Some(at) => (&rest[..at], &rest[at + 1..]),
            None => (rest, &b""[..]),
        };
        let digits = |s: &[u8]| !s.is_empty() && s.iter().all(u8::is_ascii_digit);
        (digits(int) && (dot.is_none() || digits(frac))).then_some((negative, int, frac))
    }
    let (an, ai, af) = parts(a)?;
    let (bn, bi, bf) = parts(b)?;
    let magnitude = ai
        .len()
        .cmp(&bi.len())
        .then_with(|| short_cmp(ai, bi))
        .then_with(|| short_cmp(af, bf));
    Some(match (an, bn) {
        (false, false) => magnitude,
        (true, true) => magnitude.reverse(),
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
    })
}

#[cfg(test)]
mod tests;
