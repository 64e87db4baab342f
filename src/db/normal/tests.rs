//! Normalisation, value by value: what a user would see compare equal or not.

use super::*;

/// The canonical text of `raw` in a column of `type_name` on `engine`, compared against
/// a column of class `other` on the other side.
fn canon(engine: Engine, type_name: &str, other: Class, raw: &str) -> String {
    let t = column_type(engine, type_name);
    let (class, _) = resolve(t.class, other);
    let bytes = canonical(t.decode, class, Some(raw.as_bytes())).expect("a value");
    String::from_utf8(bytes).expect("utf-8")
}

fn pg(type_name: &str, raw: &str) -> String {
    let t = column_type(Engine::Postgres, type_name);
    canon(Engine::Postgres, type_name, t.class, raw)
}

fn my(type_name: &str, raw: &str) -> String {
    let t = column_type(Engine::Mysql, type_name);
    canon(Engine::Mysql, type_name, t.class, raw)
}

#[test]
fn null_is_apart_from_every_value_and_the_empty_string() {
    let t = column_type(Engine::Mysql, "VARCHAR");
    assert_eq!(canonical(t.decode, t.class, None), None);
    assert_eq!(canonical(t.decode, t.class, Some(b"")), Some(Vec::new()));
}

#[test]
fn decimals_of_any_scale_and_integers_read_the_same() {
    assert_eq!(pg("NUMERIC", "10.500"), "10.5");
    assert_eq!(my("DECIMAL", "10.50"), "10.5");
    assert_eq!(my("DECIMAL", "10.00"), "10");
    assert_eq!(pg("INT8", "10"), "10");
    assert_eq!(pg("NUMERIC", "-0.00"), "0");
    assert_eq!(pg("NUMERIC", "0.0500"), "0.05");
    assert_eq!(my("DECIMAL", "-007.10"), "-7.1");
    assert_eq!(pg("NUMERIC", "NaN"), "NaN");
    assert_eq!(
        my("BIGINT UNSIGNED", "18446744073709551615"),
        "18446744073709551615"
    );
}

#[test]
fn booleans_and_tinyint_1_read_as_one_and_zero() {
    assert_eq!(pg("BOOL", "t"), "1");
    assert_eq!(pg("BOOL", "f"), "0");
    assert_eq!(my("BOOLEAN", "1"), "1");
    // A TINYINT(1) holding 2 is not `true`: the difference shows.
    assert_eq!(my("BOOLEAN", "2"), "2");
    assert_eq!(pg("BIT", "101"), "5");
    let bits = column_type(Engine::Mysql, "BIT");
    assert_eq!(
        canonical(bits.decode, bits.class, Some(&[0x05])),
        Some(b"5".to_vec())
    );
}

#[test]
fn floats_compare_at_the_precision_of_the_less_precise_side() {
    assert_eq!(pg("FLOAT8", "0.30000000000000004"), "0.30000000000000004");
    assert_eq!(my("DOUBLE", "1e20"), pg("FLOAT8", "1e+20"));
    assert_eq!(pg("FLOAT8", "-0"), "0");
    assert_eq!(pg("FLOAT8", "Infinity"), "inf");
    // MariaDB shows a FLOAT with 6 significant digits; PostgreSQL a real with all.
    assert_eq!(my("FLOAT", "1.23457"), pg("FLOAT4", "1.2345678"));
    assert_eq!(my("FLOAT", "16777200"), pg("FLOAT4", "1.6777216e+07"));
    // A FLOAT copied into a double precision column is compared as a FLOAT.
    assert_eq!(
        canon(Engine::Postgres, "FLOAT8", Class::Single, "1.2345678"),
        "1.23457"
    );
    // A double against a decimal: as doubles.
    assert_eq!(
        canon(Engine::Mysql, "DECIMAL", Class::Double, "0.10"),
        "0.1"
    );
    assert_eq!(pg("FLOAT8", "0.1"), "0.1");
}

#[test]
fn timestamps_are_utc_with_microseconds() {
    assert_eq!(
        my("DATETIME", "2026-01-02 03:04:05.500"),
        "2026-01-02T03:04:05.500000Z"
    );
    assert_eq!(
        pg("TIMESTAMP", "2026-01-02 03:04:05.5"),
        "2026-01-02T03:04:05.500000Z"
    );
    assert_eq!(
        pg("TIMESTAMPTZ", "2026-01-02 05:04:05.5+02"),
        "2026-01-02T03:04:05.500000Z"
    );
    assert_eq!(
        pg("TIMESTAMPTZ", "2026-01-01 22:34:05-04:30"),
        "2026-01-02T03:04:05.000000Z"
    );
    // What no timestamp reads keeps its text.
    assert_eq!(my("DATETIME", "0000-00-00 00:00:00"), "0000-00-00 00:00:00");
    assert_eq!(pg("TIMESTAMPTZ", "infinity"), "infinity");
    assert_eq!(pg("DATE", "2026-01-02"), my("DATE", "2026-01-02"));
    assert_eq!(my("DATE", "0000-00-00"), "0000-00-00");
    assert_eq!(
        canon(
            Engine::Mysql,
            "VARCHAR",
            Class::Timestamp,
            "2026-02-30 00:00:00"
        ),
        "2026-02-30 00:00:00",
        "no such day: kept as text"
    );
    assert_eq!(
        canon(
            Engine::Mysql,
            "VARCHAR",
            Class::Timestamp,
            "2026-01-02T03:04:05.123456789Z"
        ),
        "2026-01-02T03:04:05.123456Z"
    );
    assert_eq!(
        pg("TIMESTAMPTZ", "2026-01-01 00:30:00+01"),
        "2025-12-31T23:30:00.000000Z"
    );
    assert_eq!(my("TIME", "-12:00:01"), "-12:00:01.000000");
    assert_eq!(pg("TIME", "12:00:01.25"), "12:00:01.250000");
}

#[test]
fn text_is_bytes_and_fixed_width_char_loses_its_padding() {
    assert_eq!(pg("TEXT", "héllo ✓"), "héllo ✓");
    assert_eq!(pg("VARCHAR", "xy "), "xy ", "varchar keeps trailing spaces");
    assert_eq!(pg("CHAR", "ab   "), my("CHAR", "ab"));
    assert_eq!(canon(Engine::Mysql, "VARCHAR", Class::Char, "ab  "), "ab");
    let bytea = column_type(Engine::Postgres, "BYTEA");
    let blob = column_type(Engine::Mysql, "BLOB");
    assert_eq!(
        canonical(bytea.decode, bytea.class, Some(b"\\x00ff")),
        canonical(blob.decode, blob.class, Some(&[0x00, 0xff]))
    );
    assert_ne!(pg("TEXT", "Abc"), pg("TEXT", "abc"));
}

#[test]
fn uuids_and_json_are_read_as_such_when_either_side_says_so() {
    let upper = "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11";
    assert_eq!(
        canon(Engine::Mysql, "CHAR", Class::Uuid, upper),
        pg("UUID", &upper.to_lowercase())
    );
    assert_eq!(
        canon(
            Engine::Mysql,
            "BINARY",
            Class::Uuid,
            "a0eebc999c0b4ef8bb6d6bb9bd380a11"
        ),
        upper.to_lowercase()
    );
    // MariaDB's JSON is text to the driver; PostgreSQL's jsonb rewrites what it stores.
    let mariadb = r#"{"b": 1,  "a": [1, 2.50]}"#;
    assert_eq!(
        canon(Engine::Mysql, "BLOB", Class::Json, mariadb),
        pg("JSONB", r#"{"a": [1, 2.50], "b": 1}"#)
    );
    assert_eq!(
        pg("JSONB", r#"{"a": [1, 2.50], "b": 1}"#),
        r#"{"a":[1,2.5],"b":1}"#
    );
    assert_eq!(
        canon(Engine::Mysql, "BLOB", Class::Json, "not json"),
        "not json"
    );
}

#[test]
fn classes_resolve_to_the_typed_side_or_the_least_precise_number() {
    assert_eq!(
        resolve(Class::Text, Class::Timestamp),
        (Class::Timestamp, Class::Timestamp)
    );
    assert_eq!(
        resolve(Class::Number, Class::Single),
        (Class::Single, Class::Single)
    );
    assert_eq!(
        resolve(Class::Double, Class::Number),
        (Class::Double, Class::Double)
    );
    assert_eq!(
        resolve(Class::Date, Class::Timestamp),
        (Class::Date, Class::Timestamp)
    );
    assert!(column_type(Engine::Mysql, "BIGINT UNSIGNED").integer);
    assert!(!column_type(Engine::Postgres, "NUMERIC").integer);
}

#[test]
fn keys_order_by_value_for_numbers_and_by_bytes_otherwise() {
    let o = |class, a: &str, b: &str| order(class, Some(a.as_bytes()), Some(b.as_bytes()));
    assert_eq!(o(Class::Number, "9", "10"), Ordering::Less);
    assert_eq!(o(Class::Number, "-10", "-9"), Ordering::Less);
    assert_eq!(o(Class::Number, "1.5", "1.25"), Ordering::Greater);
    assert_eq!(o(Class::Number, "-1", "0"), Ordering::Less);
    assert_eq!(o(Class::Text, "9", "10"), Ordering::Greater);
    assert_eq!(o(Class::Text, "B", "a"), Ordering::Less);
    assert_eq!(o(Class::Double, "1e3", "999.5"), Ordering::Greater);
    assert_eq!(order(Class::Text, None, Some(b"")), Ordering::Less);
}
