//! Durations as runbooks write them: `500ms`, `30s`, `10m`, `4h`, `2d`, or sums like `1h30m`.

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, Deserialize, Deserializer};
use std::borrow::Cow;
use std::fmt;
use std::time::Duration as StdDuration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(pub StdDuration);

const UNITS: [(&str, u64); 5] = [
    ("ms", 1),
    ("s", 1_000),
    ("m", 60_000),
    ("h", 3_600_000),
    ("d", 86_400_000),
];

/// Why a text is not a duration; the message names the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a duration: {reason}")]
pub struct DurationError {
    text: String,
    reason: &'static str,
}

impl Duration {
    pub fn from_secs(secs: u64) -> Self {
        Duration(StdDuration::from_secs(secs))
    }

    pub fn as_std(self) -> StdDuration {
        self.0
    }

    pub fn parse(text: &str) -> Result<Duration, DurationError> {
        let fail = |reason| DurationError {
            text: text.to_owned(),
            reason,
        };
        let mut rest = text.trim();
        if rest.is_empty() {
            return Err(fail("it is empty"));
        }
        let mut total_ms: u64 = 0;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(fail("expected a number followed by ms, s, m, h or d"));
            }
            let number: u64 = rest[..digits]
                .parse()
                .map_err(|_| fail("the number is too large"))?;
            rest = &rest[digits..];
            let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
            let unit = &rest[..unit_len];
            let is_unit = |word: &str| UNITS.iter().any(|(name, _)| *name == word);
            let Some((_, ms)) = UNITS.iter().find(|(name, _)| *name == unit) else {
                // `30 m` or `30 minutes`: say what is wrong with the word after the space.
                let spaced: String = rest
                    .trim_start()
                    .chars()
                    .take_while(char::is_ascii_alphabetic)
                    .collect();
                return Err(fail(match (unit.is_empty(), spaced.as_str()) {
                    (true, "") => "the number has no unit (ms, s, m, h or d)",
                    (true, word) if is_unit(word) => {
                        "write the unit right after the number, without a space"
                    }
                    _ => "units are ms, s, m, h and d",
                }));
            };
            rest = &rest[unit_len..];
            total_ms = number
                .checked_mul(*ms)
                .and_then(|v| v.checked_add(total_ms))
                .ok_or_else(|| fail("it is too long"))?;
        }
        Ok(Duration(StdDuration::from_millis(total_ms)))
    }

    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }

    pub fn as_millis(self) -> u64 {
        u64::try_from(self.0.as_millis()).unwrap_or(u64::MAX)
    }
}

impl fmt::Display for Duration {
    /// The shortest exact form: `1h30m`, `45s`, `500ms`, `0s`.
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let mut ms = self.as_millis();
        if ms == 0 {
            return f.write_str("0s");
        }
        for (name, unit) in UNITS.iter().rev() {
            if ms >= *unit {
                write!(f, "{}{name}", ms / unit)?;
                ms %= unit;
            }
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Duration::parse(&text).map_err(|e| {
            de::Error::custom(format!(
                "{e}{}write it like 500ms, 30s, 10m, 4h, 2d or 1h30m",
                super::node_de::HINT
            ))
        })
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": r"^\s*([0-9]+(ms|s|m|h|d))+\s*$",
            "description": "A duration: 500ms, 30s, 10m, 4h, 2d, or a sum such as 1h30m",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit_and_sums() {
        let ms = |t: &str| Duration::parse(t).map(Duration::as_millis);
        assert_eq!(ms("500ms"), Ok(500));
        assert_eq!(ms("30s"), Ok(30_000));
        assert_eq!(ms("10m"), Ok(600_000));
        assert_eq!(ms("4h"), Ok(14_400_000));
        assert_eq!(ms("2d"), Ok(172_800_000));
        assert_eq!(ms("1h30m"), Ok(5_400_000));
        assert_eq!(ms("0s"), Ok(0));
    }

    #[test]
    fn refuses_what_is_not_a_duration_and_says_why() {
        let err = |t: &str| Duration::parse(t).expect_err(t).to_string();
        assert_eq!(
            err("30"),
            "`30` is not a duration: the number has no unit (ms, s, m, h or d)"
        );
        assert_eq!(
            err("5min"),
            "`5min` is not a duration: units are ms, s, m, h and d"
        );
        assert_eq!(
            err("h"),
            "`h` is not a duration: expected a number followed by ms, s, m, h or d"
        );
        assert_eq!(
            err("30 m"),
            "`30 m` is not a duration: write the unit right after the number, without a space"
        );
        assert_eq!(
            err("30 minutes"),
            "`30 minutes` is not a duration: units are ms, s, m, h and d"
        );
        assert_eq!(err(""), "`` is not a duration: it is empty");
        assert!(err("99999999999999999999d").contains("too"));
    }

    #[test]
    fn displays_the_shortest_exact_form() {
        let show = |t: &str| Duration::parse(t).expect(t).to_string();
        assert_eq!(show("90m"), "1h30m");
        assert_eq!(show("1500ms"), "1s500ms");
        assert_eq!(show("0ms"), "0s");
    }
}
