//! Values on their way from the source to the target: what a source column holds (by the
//! type its server names in the result), what the target column takes (by its declared
//! type), the conversion between the two, chosen once per column before any row is written
//! ([`conversion`]), and the conversion of each value ([`Conv::apply`]).
//!
//! Queries run with the text protocol, so every value arrives as the server's text (bytes
//! for MySQL's binary strings and `BIT`), and most values go on as that text: the target
//! server parses it by the column's type. A conversion does more only where the two
//! engines write a value differently: booleans (`1`/`0` against `t`/`f`), binary data
//! (PostgreSQL's `\x` hex), MySQL's `BIT` (bytes, copied as its number), zero dates (which
//! PostgreSQL has no value for), and PostgreSQL's `timestamptz` going into a column without
//! a zone. Both sessions run in UTC (`source.rs`, `target.rs`), so a timestamp's text names
//! the same instant on both sides.

use std::borrow::Cow;

/// What a source column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A column of `NULL`s (`SELECT NULL AS x`).
    Null,
    /// PostgreSQL `boolean` (`t`/`f`).
    Bool,
    /// Integers, MySQL's `BOOLEAN` (`TINYINT(1)`) and `YEAR` among them.
    Int,
    Decimal,
    Float,
    /// MySQL `BIT(n)`: big-endian bytes.
    Bit,
    Text,
    /// MySQL's binary strings (`BINARY`, `VARBINARY`, `BLOB`s), and text columns with a
    /// binary collation, which the protocol cannot tell apart from them.
    Binary,
    /// PostgreSQL `bytea`, sent as `\x` and hex.
    Bytea,
    Date,
    /// A date and time without a zone (MySQL `DATETIME`, PostgreSQL `timestamp`); MySQL's
    /// `TIMESTAMP` too, read in the session's zone, UTC.
    DateTime,
    /// PostgreSQL `timestamptz`, with its offset (`+00`: the session's zone is UTC).
    DateTimeTz,
    /// Times of day and durations (MySQL `TIME`, PostgreSQL `time`, `interval`).
    Time,
    Json,
    /// A PostgreSQL type without a conversion of its own (`uuid`, arrays, enums, ...): its
    /// text.
    Other,
    /// A type Sensei does not copy; the text says what to do instead.
    Unsupported(&'static str),
}

/// What a target column takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Bool,
    Int,
    Numeric,
    Float,
    Text,
    Bytes,
    Date,
    DateTime,
    DateTimeTz,
    Time,
    Json,
    /// Any other type: given the value's text (`uuid`, `inet`, enums, arrays, ...).
    Other,
}

/// How a value of one column is converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conv {
    /// The text as sent (it must be UTF-8).
    Text,
    /// `0`/`1`/any integer, `t`/`f`, `true`/`false` as a boolean.
    Bool,
    /// PostgreSQL's `t`/`f` as `1`/`0`.
    BoolAsInt,
    /// MySQL `BIT` bytes as their number.
    BitAsInt,
    /// MySQL `BIT` bytes as a boolean (not 0).
    BitAsBool,
    /// The bytes as they are, into a binary column.
    Bytes,
    /// PostgreSQL's `\x...` as the bytes it stands for.
    Bytea,
    /// `...+00` without its offset, for a column without a zone.
    WithoutZone,
}

/// A converted value, ready for an encoder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell<'a> {
    Null,
    Text(Cow<'a, str>),
    Bytes(Cow<'a, [u8]>),
    Bool(bool),
}

/// What a source column holds, by the type name the driver gives (`BIGINT UNSIGNED`,
/// `TIMESTAMPTZ`, ...). MySQL's and PostgreSQL's names differ where it matters.
pub fn source(engine: crate::db::dsn::Engine, type_name: &str) -> Source {
    use crate::db::dsn::Engine;
    let upper = type_name.to_ascii_uppercase();
    let name = upper.trim_end_matches(" UNSIGNED");
    match (engine, name) {
        (_, "NULL" | "VOID" | "UNKNOWN") => Source::Null,
        (Engine::Postgres, "BOOL") => Source::Bool,
        (
            _,
            "BOOLEAN" | "TINYINT" | "SMALLINT" | "MEDIUMINT" | "INT" | "BIGINT" | "YEAR" | "INT2"
            | "INT4" | "INT8" | "OID",
        ) => Source::Int,
        (_, "DECIMAL" | "NUMERIC") => Source::Decimal,
        (_, "FLOAT" | "DOUBLE" | "FLOAT4" | "FLOAT8") => Source::Float,
        (Engine::Mysql, "BIT") => Source::Bit,
        (
            _,
            "CHAR" | "VARCHAR" | "TINYTEXT" | "TEXT" | "MEDIUMTEXT" | "LONGTEXT" | "ENUM" | "SET"
            | "NAME" | "BPCHAR" | "CITEXT",
        ) => Source::Text,
        (
            Engine::Mysql,
            "BINARY" | "VARBINARY" | "TINYBLOB" | "BLOB" | "MEDIUMBLOB" | "LONGBLOB",
        ) => Source::Binary,
        (Engine::Postgres, "BYTEA") => Source::Bytea,
        (_, "DATE") => Source::Date,
        (_, "DATETIME" | "TIMESTAMP") => Source::DateTime,
        (Engine::Postgres, "TIMESTAMPTZ") => Source::DateTimeTz,
        (_, "TIME" | "TIMETZ" | "INTERVAL") => Source::Time,
        (_, "JSON" | "JSONB") => Source::Json,
        (Engine::Mysql, "GEOMETRY") => Source::Unsupported(
            "select it as text in `query` (`ST_AsText(col) AS col`: WKT, which PostGIS's `geometry` and any text column read) or as bytes (`ST_AsBinary(col) AS col` into `bytea`)",
        ),
        (Engine::Mysql, _) => Source::Unsupported(
            "convert it in `query` to a type listed under \"Types\" of the `copy` documentation",
        ),
        (Engine::Postgres, _) => Source::Other,
    }
}

/// What a PostgreSQL column takes, by its type's name in `pg_type` (a domain's base type;
/// `typtype` `e` marks an enum).
pub fn pg_target(typname: &str) -> Target {
    match typname {
        "bool" => Target::Bool,
        "int2" | "int4" | "int8" | "oid" => Target::Int,
        "numeric" => Target::Numeric,
        "float4" | "float8" => Target::Float,
        "text" | "varchar" | "bpchar" | "name" | "citext" => Target::Text,
        "bytea" => Target::Bytes,
        "date" => Target::Date,
        "timestamp" => Target::DateTime,
        "timestamptz" => Target::DateTimeTz,
        "time" | "timetz" | "interval" => Target::Time,
        "json" | "jsonb" => Target::Json,
        _ => Target::Other,
    }
}

/// What a MySQL column takes, by `information_schema.COLUMNS.DATA_TYPE`.
pub fn mysql_target(data_type: &str) -> Target {
    match data_type.to_ascii_lowercase().as_str() {
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" | "year" | "bit" => {
            Target::Int
        }
        "decimal" | "numeric" => Target::Numeric,
        "float" | "double" | "real" => Target::Float,
        "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" | "enum" | "set" => {
            Target::Text
        }
        "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => Target::Bytes,
        "date" => Target::Date,
        "datetime" | "timestamp" => Target::DateTime,
        "time" => Target::Time,
        "json" => Target::Json,
        _ => Target::Other,
    }
}

/// The conversion from `source` into `target`, or `None` when the value cannot go there
/// (the caller names both types and says what to do).
pub fn conversion(source: Source, target: Target) -> Option<Conv> {
    use Source as S;
    use Target as T;
    let conv = match (source, target) {
        (S::Unsupported(_), _) => return None,
        (S::Null, _) => Conv::Text,
        (S::Bit, T::Bool) => Conv::BitAsBool,
        (S::Bit, T::Int | T::Numeric | T::Float | T::Text | T::Other) => Conv::BitAsInt,
        (S::Bit, _) => return None,
        (S::Int | S::Bool, T::Bool) => Conv::Bool,
        (S::Bool, T::Int | T::Numeric | T::Float) => Conv::BoolAsInt,
        (S::Int | S::Decimal | S::Float, T::Int | T::Numeric | T::Float | T::Json) => Conv::Text,
        (S::Binary | S::Bytea, T::Bytes) => Conv::Bytes.for_source(source),
        (S::Text | S::Json | S::Other, T::Bytes) => Conv::Bytes,
        (S::Date | S::DateTime, T::Date | T::DateTime | T::DateTimeTz) => Conv::Text,
        (S::DateTimeTz, T::Date | T::DateTime) => Conv::WithoutZone,
        (S::DateTimeTz, T::DateTimeTz) => Conv::Text,
        (S::Time, T::Time) => Conv::Text,
        (S::Json, T::Json) => Conv::Text,
        // Text goes anywhere the target server can read it from text.
        (S::Text | S::Other, _) => Conv::Text,
        // Anything has a text form.
        (_, T::Text | T::Other) => Conv::Text,
        // A binary string with a binary collation may be text: it must be UTF-8.
        (S::Binary, _) => Conv::Text,
        _ => return None,
    };
    Some(conv)
}

impl Conv {
    /// `Bytes` from PostgreSQL's `bytea` reads its hex form.
    fn for_source(self, source: Source) -> Conv {
        match (self, source) {
            (Conv::Bytes, Source::Bytea) => Conv::Bytea,
            _ => self,
        }
    }

    /// The value `raw` (`None`: `NULL`) converted, or why it cannot be.
    pub fn apply(self, raw: Option<&[u8]>) -> Result<Cell<'_>, String> {
        let Some(raw) = raw else {
            return Ok(Cell::Null);
        };
        Ok(match self {
            Conv::Text => Cell::Text(Cow::Borrowed(utf8(raw)?)),
            Conv::Bool => Cell::Bool(boolean(raw)?),
            Conv::BoolAsInt => Cell::Text(Cow::Borrowed(if boolean(raw)? { "1" } else { "0" })),
            Conv::BitAsInt => Cell::Text(Cow::Owned(bits(raw)?.to_string())),
            Conv::BitAsBool => Cell::Bool(bits(raw)? != 0),
            Conv::Bytes => Cell::Bytes(Cow::Borrowed(raw)),
            Conv::Bytea => Cell::Bytes(Cow::Owned(bytea(raw)?)),
            Conv::WithoutZone => {
                let text = utf8(raw)?;
                let naive = text
                    .strip_suffix("+00")
                    .or_else(|| text.strip_suffix("+00:00"))
                    .ok_or_else(|| format!("`{text}` is not a UTC timestamp"))?;
                Cell::Text(Cow::Borrowed(naive))
            }
        })
    }
}

fn utf8(raw: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(raw).map_err(|e| {
        format!(
            "the value is not UTF-8 text (byte {} of {}); copy binary data into a binary column (`bytea`, `BLOB`)",
            e.valid_up_to() + 1,
            raw.len()
        )
    })
}

fn boolean(raw: &[u8]) -> Result<bool, String> {
    match raw {
        b"t" | b"true" | b"TRUE" | b"1" => Ok(true),
        b"f" | b"false" | b"FALSE" | b"0" => Ok(false),
        other => {
            let text = String::from_utf8_lossy(other);
            // MySQL's booleans are integers: anything but 0 is true.
            text.parse::<i64>()
                .map(|n| n != 0)
                .map_err(|_| format!("`{text}` is not a boolean"))
        }
    }
}

fn bits(raw: &[u8]) -> Result<u64, String> {
    raw.iter()
        .try_fold(0u64, |n, &b| n.checked_mul(256).map(|n| n | u64::from(b)))
        .ok_or_else(|| format!("a BIT value of {} bytes does not fit in 64 bits", raw.len()))
}

fn bytea(raw: &[u8]) -> Result<Vec<u8>, String> {
    let hex = raw
        .strip_prefix(b"\\x")
        .ok_or("a bytea value is not in hex form (`\\x...`)")?;
    base16ct::mixed::decode_vec(hex).map_err(|e| format!("a bytea value is not valid hex: {e}"))
}

/// A zero date or a date with a zero part (`0000-00-00`, `2024-00-00 10:00:00`,
/// `0000-01-01`): MySQL keeps them, PostgreSQL has no value for them.
pub fn is_zero_date(raw: &[u8]) -> bool {
    raw.len() >= 10 && (&raw[0..4] == b"0000" || &raw[5..7] == b"00" || &raw[8..10] == b"00")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::dsn::Engine;

    fn conv(source_type: &str, target: Target) -> Option<Conv> {
        conversion(source(Engine::Mysql, source_type), target)
    }

    #[test]
    fn mysql_types_map_to_what_postgres_columns_take() {
        assert_eq!(conv("BOOLEAN", Target::Bool), Some(Conv::Bool));
        assert_eq!(conv("BIGINT UNSIGNED", Target::Numeric), Some(Conv::Text));
        assert_eq!(conv("DECIMAL", Target::Numeric), Some(Conv::Text));
        assert_eq!(conv("LONGBLOB", Target::Bytes), Some(Conv::Bytes));
        assert_eq!(conv("VARBINARY", Target::Text), Some(Conv::Text));
        assert_eq!(conv("TIMESTAMP", Target::DateTimeTz), Some(Conv::Text));
        assert_eq!(conv("ENUM", Target::Other), Some(Conv::Text));
        assert_eq!(conv("BIT", Target::Bool), Some(Conv::BitAsBool));
        assert_eq!(conv("BIT", Target::Int), Some(Conv::BitAsInt));
        assert_eq!(conv("DATETIME", Target::Int), None);
        assert_eq!(conv("TIME", Target::Date), None);
        assert_eq!(conv("GEOMETRY", Target::Text), None);
        assert!(matches!(
            source(Engine::Mysql, "GEOMETRY"),
            Source::Unsupported(hint) if hint.contains("ST_AsText")
        ));
        let pg = |t: &str, target| conversion(source(Engine::Postgres, t), target);
        assert_eq!(pg("BYTEA", Target::Bytes), Some(Conv::Bytea));
        assert_eq!(pg("BOOL", Target::Int), Some(Conv::BoolAsInt));
        assert_eq!(pg("TIMESTAMPTZ", Target::DateTime), Some(Conv::WithoutZone));
        assert_eq!(pg("UUID", Target::Other), Some(Conv::Text));
    }

    #[test]
    fn values_convert_where_the_engines_write_them_differently() {
        assert_eq!(Conv::Bool.apply(Some(b"1")), Ok(Cell::Bool(true)));
        assert_eq!(Conv::Bool.apply(Some(b"2")), Ok(Cell::Bool(true)));
        assert_eq!(Conv::Bool.apply(Some(b"f")), Ok(Cell::Bool(false)));
        assert!(Conv::Bool.apply(Some(b"maybe")).is_err());
        assert_eq!(
            Conv::BoolAsInt.apply(Some(b"t")),
            Ok(Cell::Text("1".into()))
        );
        assert_eq!(
            Conv::BitAsInt.apply(Some(&[1, 2])),
            Ok(Cell::Text("258".into()))
        );
        assert_eq!(
            Conv::Bytea.apply(Some(b"\\xdeAD")),
            Ok(Cell::Bytes(vec![0xde, 0xad].into()))
        );
        assert_eq!(
            Conv::WithoutZone.apply(Some(b"2024-05-01 10:00:00+00")),
            Ok(Cell::Text("2024-05-01 10:00:00".into()))
        );
        assert_eq!(Conv::Text.apply(None), Ok(Cell::Null));
        let err = Conv::Text
            .apply(Some(&[b'a', 0xff]))
            .expect_err("not UTF-8");
        assert!(err.contains("byte 2 of 2"), "{err}");
    }

    #[test]
    fn zero_dates_are_found_by_any_zero_part() {
        assert!(is_zero_date(b"0000-00-00"));
        assert!(is_zero_date(b"0000-00-00 00:00:00"));
        assert!(is_zero_date(b"2024-00-10"));
        assert!(is_zero_date(b"2024-03-00 10:00:00.5"));
        assert!(!is_zero_date(b"2024-03-01 00:00:00"));
        assert!(!is_zero_date(b"10:00:00"));
    }
}
