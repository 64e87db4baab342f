//! The canonical text of each class (see the table in [`super`]): exact numbers, floats,
//! timestamps, times, uuids and JSON. Each returns `None` for text it cannot read, which
//! then keeps its own bytes.

/// An exact number's canonical text.
pub(super) fn number(text: &str) -> Option<String> {
    match text {
        "NaN" => return Some("NaN".into()),
        "Infinity" | "inf" => return Some("inf".into()),
        "-Infinity" | "-inf" => return Some("-inf".into()),
        _ => {}
    }
    let (negative, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let int = int.trim_start_matches('0');
    let frac = frac.trim_end_matches('0');
    let mut out = String::with_capacity(text.len());
    if negative && !(int.is_empty() && frac.is_empty()) {
        out.push('-');
    }
    out.push_str(if int.is_empty() { "0" } else { int });
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
    Some(out)
}

/// A float's canonical text; `single`: at the 6 significant digits of a single-precision
/// float as MariaDB shows it.
pub(super) fn float(text: &str, single: bool) -> Option<String> {
    let value: f64 = match text {
        "NaN" | "nan" => f64::NAN,
        "Infinity" | "inf" => f64::INFINITY,
        "-Infinity" | "-inf" => f64::NEG_INFINITY,
        // The single-precision value itself, rounded once below (rounding its shortest text
        // again could land on another digit).
        _ if single => f64::from(text.parse::<f32>().ok()?),
        _ => text.parse().ok()?,
    };
    if value.is_nan() {
        return Some("NaN".into());
    }
    if value.is_infinite() {
        return Some(if value > 0.0 { "inf" } else { "-inf" }.into());
    }
    let value = if single {
        format!("{value:.5e}").parse().ok()?
    } else {
        value
    };
    // `-0` and `0` are equal in SQL.
    Some(if value == 0.0 {
        "0".into()
    } else {
        value.to_string()
    })
}

/// A timestamp in UTC with microseconds; a value without an offset is read as UTC.
// Read and written by hand: chrono's format strings cost a quarter of a comparison's time.
pub(super) fn timestamp(text: &str) -> Option<String> {
    use chrono::{Datelike, Timelike};
    let (local, offset) = split_offset(text)?;
    let b = local.as_bytes();
    if b.len() < 19 || !matches!(b[10], b' ' | b'T') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, m, d) = (digits(&b[..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
    let date = chrono::NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, m, d)?;
    let micros = match &b[19..] {
        [] => 0,
        [b'.', frac @ ..] if (1..=9).contains(&frac.len()) => {
            let digits: String = std::str::from_utf8(frac).ok()?.chars().take(6).collect();
            format!("{digits:0<6}").parse().ok()?
        }
        _ => return None,
    };
    let time = chrono::NaiveTime::from_hms_micro_opt(
        digits(&b[11..13])?,
        digits(&b[14..16])?,
        digits(&b[17..19])?,
        micros,
    )?;
    let utc = chrono::NaiveDateTime::new(date, time)
        .checked_sub_signed(chrono::Duration::seconds(offset))?;
    Some(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        utc.year(),
        utc.month(),
        utc.day(),
        utc.hour(),
        utc.minute(),
        utc.second(),
        utc.nanosecond() / 1000
    ))
}

/// A date, `2026-01-02`.
pub(super) fn date(text: &str) -> Option<String> {
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, m, d) = (digits(&b[..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
    chrono::NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, m, d)?;
    Some(text.to_owned())
}

/// The number written with these ASCII digits (and nothing else).
fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// The text before a trailing offset (`Z`, `+02`, `+05:30`, `-0800`), and the offset in
/// seconds east of UTC.
fn split_offset(text: &str) -> Option<(&str, i64)> {
    if let Some(local) = text.strip_suffix('Z') {
        return Some((local, 0));
    }
    // The offset's sign comes after the time (the date's dashes come before it).
    let time_at = text.find([' ', 'T']).unwrap_or(text.len());
    let Some(sign_at) = text[time_at..].rfind(['+', '-']).map(|p| time_at + p) else {
        return Some((text, 0));
    };
    let sign = if text.as_bytes()[sign_at] == b'-' {
        -1
    } else {
        1
    };
    let digits: String = text[sign_at + 1..].chars().filter(|c| *c != ':').collect();
    if !digits.len().is_multiple_of(2)
        || digits.len() > 6
        || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let mut seconds = 0i64;
    for (i, unit) in [3600, 60, 1].into_iter().enumerate() {
        if let Some(pair) = digits.get(i * 2..i * 2 + 2) {
            seconds += pair.parse::<i64>().ok()? * unit;
        }
    }
    Some((&text[..sign_at], sign * seconds))
}

/// A time of day (or MariaDB's interval-like `TIME`) with microseconds.
pub(super) fn time(text: &str) -> Option<String> {
    let (sign, rest) = match text.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", text),
    };
    let (whole, frac) = rest.split_once('.').unwrap_or((rest, ""));
    let mut parts = whole.split(':');
    let (h, m, s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || frac.len() > 6 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m, s): (u32, u32, u32) = (h.parse().ok()?, m.parse().ok()?, s.parse().ok()?);
    Some(format!("{sign}{h:02}:{m:02}:{s:02}.{frac:0<6}"))
}

pub(super) fn uuid(bytes: &[u8]) -> Option<String> {
    let hex = match bytes.len() {
        16 => base16ct::lower::encode_string(bytes),
        _ => {
            let text = std::str::from_utf8(bytes).ok()?.trim();
            let hex: String = text.chars().filter(|c| *c != '-').collect();
            if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            hex.to_ascii_lowercase()
        }
    };
    Some(format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    ))
}

/// Compact JSON with object keys sorted.
pub(super) fn json(value: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                json(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}
