//! A column value as a step output: the text the server sent (queries run with the text
//! protocol, so every type arrives as its text form) turned into JSON by the column's type.
//!
//! | column type | output |
//! |---|---|
//! | PostgreSQL `bool`, MySQL `BOOLEAN` (`TINYINT(1)`) | `true` / `false` |
//! | integer types | a number |
//! | `real`, `double precision`, `FLOAT`, `DOUBLE` | a number (`NaN` and infinities: a string) |
//! | `numeric`, `DECIMAL` | a number when it is an integer that fits in 64 bits or has at most 15 significant digits; otherwise a string, so no digit is lost |
//! | `json`, `jsonb`, MySQL `JSON` | the JSON value |
//! | binary (`bytea`, `BLOB`, `BINARY`) | PostgreSQL's `\x...` text; MySQL's as text when it is UTF-8, else `\x` and hex |
//! | MySQL `BIT` | a number |
//! | `NULL` | `null` |
//! | anything else (text, dates, times, uuids, arrays, ...) | the server's text |

use serde_json::{Number, Value as Json};

/// The output of a value of type `type_name` (the driver's name, upper case) sent as
/// `text`; `None` is SQL `NULL`.
pub fn to_json(type_name: &str, text: Option<&[u8]>) -> Json {
    let Some(bytes) = text else {
        return Json::Null;
    };
    let name = type_name.to_ascii_uppercase();
    let name = name.trim_end_matches(" UNSIGNED");
    if name == "BIT" {
        return bytes
            .iter()
            .try_fold(0u64, |n, &b| n.checked_mul(256).map(|n| n + u64::from(b)))
            .map_or_else(|| hex(bytes), |n| Json::Number(n.into()));
    }
    if is_binary(name) {
        return match std::str::from_utf8(bytes) {
            Ok(text) if !name.ends_with("BYTEA") => Json::String(text.to_owned()),
            _ if bytes.starts_with(b"\\x") => Json::String(String::from_utf8_lossy(bytes).into()),
            _ => hex(bytes),
        };
    }
    let text = String::from_utf8_lossy(bytes);
    let parsed = match name {
        "BOOL" => match text.as_ref() {
            "t" => Some(Json::Bool(true)),
            "f" => Some(Json::Bool(false)),
            _ => None,
        },
        "BOOLEAN" => text.parse::<i64>().ok().map(|n| Json::Bool(n != 0)),
        "INT2" | "INT4" | "INT8" | "OID" | "TINYINT" | "SMALLINT" | "MEDIUMINT" | "INT"
        | "BIGINT" | "YEAR" => integer(&text),
        "FLOAT4" | "FLOAT8" | "FLOAT" | "DOUBLE" => text
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map(Json::Number),
        "NUMERIC" | "DECIMAL" => decimal(&text),
        "JSON" | "JSONB" => serde_json::from_str(&text).ok(),
        _ => None,
    };
    parsed.unwrap_or_else(|| Json::String(text.into_owned()))
}

fn is_binary(name: &str) -> bool {
    name == "BYTEA" || name.ends_with("BLOB") || name.ends_with("BINARY")
}

fn hex(bytes: &[u8]) -> Json {
    Json::String(format!("\\x{}", base16ct::lower::encode_string(bytes)))
}

fn integer(text: &str) -> Option<Json> {
    if let Ok(n) = text.parse::<i64>() {
        return Some(Json::Number(n.into()));
    }
    text.parse::<u64>().ok().map(|n| Json::Number(n.into()))
}

/// An exact decimal as a number only when a JSON reader gets the same value back.
fn decimal(text: &str) -> Option<Json> {
    if let Some(n) = integer(text) {
        return Some(n);
    }
    let digits = text
        .trim_start_matches(['-', '+'])
        .trim_start_matches(['0', '.'])
        .chars()
        .filter(char::is_ascii_digit)
        .count();
    if digits > 15 || text.contains(['e', 'E']) {
        return None;
    }
    text.parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .map(Json::Number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn out(type_name: &str, text: &str) -> Json {
        to_json(type_name, Some(text.as_bytes()))
    }

    #[test]
    fn values_keep_their_type_where_json_has_it() {
        assert_eq!(out("BOOL", "t"), json!(true));
        assert_eq!(out("BOOLEAN", "0"), json!(false));
        assert_eq!(out("INT8", "-9000000000"), json!(-9_000_000_000i64));
        assert_eq!(
            out("BIGINT UNSIGNED", "18446744073709551615"),
            json!(u64::MAX)
        );
        assert_eq!(out("FLOAT8", "1.5"), json!(1.5));
        assert_eq!(out("FLOAT8", "NaN"), json!("NaN"));
        assert_eq!(out("JSONB", r#"{"a": [1, 2]}"#), json!({"a": [1, 2]}));
        assert_eq!(
            out("TIMESTAMPTZ", "2026-12-05 22:00:00+00"),
            json!("2026-12-05 22:00:00+00")
        );
        assert_eq!(to_json("TEXT", None), Json::Null);
    }

    #[test]
    fn decimals_are_numbers_only_when_no_digit_is_lost() {
        assert_eq!(out("NUMERIC", "12"), json!(12));
        assert_eq!(out("DECIMAL", "19.99"), json!(19.99));
        assert_eq!(out("NUMERIC", "-0.000123"), json!(-0.000123));
        assert_eq!(
            out("NUMERIC", "12345678901234567.89"),
            json!("12345678901234567.89")
        );
    }

    #[test]
    fn binary_values_are_text_or_hex() {
        assert_eq!(out("BYTEA", "\\xdead"), json!("\\xdead"));
        assert_eq!(to_json("BLOB", Some(&[0xff, 0x00])), json!("\\xff00"));
        assert_eq!(out("VARBINARY", "abc"), json!("abc"));
        assert_eq!(to_json("BIT", Some(&[0x01, 0x02])), json!(258));
    }
}
