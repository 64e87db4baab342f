//! How far a step says it is: `progress=DONE/TOTAL` in its `$SENSEI_OUTPUT` (SPEC §7). The
//! value is shared by the process layer (which reads it), the engine (which commits it), the
//! store (which keeps the latest per step) and the views (which show it with an ETA), so it
//! lives in this leaf module; its one parser is [`Progress::parse`].

use serde::{Deserialize, Serialize};

/// DONE of TOTAL units of work; `done <= total`, both at most `i64::MAX` (the store keeps
/// them as SQLite integers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Progress {
    pub done: u64,
    pub total: u64,
}

impl Progress {
    /// Reads the value of a `progress=` line: `DONE/TOTAL`, two non-negative integers in
    /// decimal with `DONE <= TOTAL`; spaces around either number are allowed. The error is a
    /// sentence saying what is wrong and what to write instead.
    pub fn parse(value: &str) -> Result<Progress, String> {
        let Some((done, total)) = value.split_once('/') else {
            return Err(format!(
                "`{}` is not DONE/TOTAL: write the total too, as in `progress=42/100` (a step that does not know its total reports no progress)",
                value.trim()
            ));
        };
        let number = |text: &str, what: &str| -> Result<u64, String> {
            let text = text.trim();
            if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!(
                    "{what} `{text}` is not a whole number of 0 or more, as in `progress=42/100`"
                ));
            }
            text.parse::<u64>()
                .ok()
                .filter(|n| i64::try_from(*n).is_ok())
                .ok_or_else(|| format!("{what} `{text}` is too large (at most {})", i64::MAX))
        };
        let progress = Progress {
            done: number(done, "DONE")?,
            total: number(total, "TOTAL")?,
        };
        if progress.done > progress.total {
            return Err(format!(
                "DONE ({}) is more than TOTAL ({}): DONE counts up to TOTAL",
                progress.done, progress.total
            ));
        }
        Ok(progress)
    }

    /// The share done, from 0 to 1. Nothing to do (`0/0`) is all done.
    pub fn ratio(self) -> f64 {
        if self.total == 0 {
            1.0
        } else {
            self.done as f64 / self.total as f64
        }
    }

    /// The whole percent done, rounded down (so 100 only when all is done).
    pub fn percent(self) -> u8 {
        if self.total == 0 || self.done >= self.total {
            return 100;
        }
        // u128: done * 100 cannot overflow.
        (u128::from(self.done) * 100 / u128::from(self.total)) as u8
    }

    /// Every unit is done.
    pub fn complete(self) -> bool {
        self.done == self.total
    }
}

impl std::fmt::Display for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{} ({}%)", self.done, self.total, self.percent())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(done: u64, total: u64) -> Result<Progress, String> {
        Ok(Progress { done, total })
    }

    #[test]
    fn done_of_total_with_optional_spaces() {
        assert_eq!(Progress::parse("42/100"), ok(42, 100));
        assert_eq!(Progress::parse(" 0 / 10 "), ok(0, 10));
        assert_eq!(Progress::parse("10/10"), ok(10, 10));
        assert_eq!(Progress::parse("0/0"), ok(0, 0));
        assert_eq!(
            Progress::parse(&format!("{}/{}", i64::MAX, i64::MAX)),
            ok(i64::MAX as u64, i64::MAX as u64)
        );
    }

    #[test]
    fn anything_else_is_refused_with_what_to_write() {
        let err = |v: &str| Progress::parse(v).expect_err(v);
        assert!(err("42").contains("write the total too"), "{}", err("42"));
        assert!(err("").contains("is not DONE/TOTAL"));
        assert!(err("-1/10").contains("DONE `-1` is not a whole number"));
        assert!(err("1.5/10").contains("DONE `1.5`"));
        assert!(err("+1/10").contains("DONE `+1`"));
        assert!(err("1/ten").contains("TOTAL `ten`"));
        assert!(err("1/2/3").contains("TOTAL `2/3`"));
        assert!(err("/10").contains("DONE ``"));
        assert_eq!(
            err("11/10"),
            "DONE (11) is more than TOTAL (10): DONE counts up to TOTAL"
        );
        assert!(err("1/9223372036854775808").contains("too large"));
        assert!(err("1/99999999999999999999999").contains("too large"));
    }

    #[test]
    fn ratio_and_percent() {
        let p = |done, total| Progress { done, total };
        assert_eq!(p(1, 4).ratio(), 0.25);
        assert_eq!(p(0, 0).ratio(), 1.0);
        assert_eq!(p(0, 0).percent(), 100);
        assert_eq!(p(999, 1000).percent(), 99);
        assert_eq!(p(1000, 1000).percent(), 100);
        assert_eq!(p(1, 3).percent(), 33);
        assert_eq!(p(u64::MAX / 2, u64::MAX / 2 + 1).percent(), 99);
        assert_eq!(p(42, 100).to_string(), "42/100 (42%)");
        assert!(p(5, 5).complete() && !p(4, 5).complete());
    }
}
