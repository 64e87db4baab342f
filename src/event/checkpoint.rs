//! Where a step says it got to: `checkpoint=VALUE` in its `$SENSEI_OUTPUT` (SPEC §7). The
//! engine commits the latest value on the step's row as it arrives and gives it back to the
//! step's next attempt (`$SENSEI_CHECKPOINT`, `{{checkpoint}}`), so a retried or resumed step
//! goes on from there instead of starting over.
//!
//! The value is shared by the process layer (which reads it), the engine (which commits and
//! hands it back), the store (which keeps the latest per step) and the views (which show
//! it), so it lives in this leaf module; its one check is [`Checkpoint::parse`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The longest value a checkpoint may have, in bytes: a checkpoint names a place in the
/// work (a key, an offset, a batch number), it does not hold data.
pub const MAX_CHECKPOINT: usize = 4096;

/// A step's latest checkpoint as the engine committed it: the value (masked: a secret the
/// step wrote into it shows as `***`, and the next attempt gets it so), the attempt that
/// wrote it and when the engine heard it (on the engine's clock, as `started_at`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub value: String,
    pub attempt: u32,
    pub at: DateTime<Utc>,
}

impl Checkpoint {
    /// Checks the value of a `checkpoint=` line: one line of text, not empty, at most
    /// [`MAX_CHECKPOINT`] bytes, without control characters (a tab aside), since it is given
    /// back as an environment variable. Kept as written (no trimming). The error is a
    /// sentence saying what is wrong and what to write instead.
    pub fn parse(value: &str) -> Result<&str, String> {
        if value.is_empty() {
            return Err(
                "a checkpoint is not empty: write where the work got to, as in `checkpoint=orders:42000`"
                    .into(),
            );
        }
        if value.len() > MAX_CHECKPOINT {
            return Err(format!(
                "it is {} bytes long, more than {MAX_CHECKPOINT}: a checkpoint names a place in the work (a key, an offset, a batch), not the data itself",
                value.len()
            ));
        }
        if let Some(c) = value.chars().find(|&c| c.is_control() && c != '\t') {
            return Err(format!(
                "it holds the control character U+{:04X}: a checkpoint is printable text on one line",
                u32::from(c)
            ));
        }
        Ok(value)
    }

    /// The value cut to about `max` characters for a line of text (`…` marks a cut).
    pub fn shown(value: &str, max: usize) -> String {
        match value.char_indices().nth(max) {
            Some((end, _)) => format!("{}…", &value[..end]),
            None => value.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_of_text_up_to_the_limit_is_kept_as_written() {
        assert_eq!(Checkpoint::parse("orders:42000"), Ok("orders:42000"));
        assert_eq!(Checkpoint::parse(" a b\t"), Ok(" a b\t"), "kept as written");
        assert_eq!(Checkpoint::parse("€ 1"), Ok("€ 1"));
        let longest = "x".repeat(MAX_CHECKPOINT);
        assert_eq!(Checkpoint::parse(&longest), Ok(longest.as_str()));
    }

    #[test]
    fn empty_oversized_and_control_characters_are_refused_with_what_to_write() {
        let err = |v: &str| Checkpoint::parse(v).expect_err(v);
        assert!(err("").contains("a checkpoint is not empty"), "{}", err(""));
        assert_eq!(
            err(&"x".repeat(MAX_CHECKPOINT + 1)),
            "it is 4097 bytes long, more than 4096: a checkpoint names a place in the work (a key, an offset, a batch), not the data itself"
        );
        assert!(err("a\u{0}b").contains("U+0000"), "{}", err("a\u{0}b"));
        assert!(err("a\u{1b}[31m").contains("U+001B"));
    }

    #[test]
    fn a_long_value_is_cut_for_a_line_of_text() {
        assert_eq!(Checkpoint::shown("abcdef", 3), "abc…");
        assert_eq!(Checkpoint::shown("abc", 3), "abc");
        assert_eq!(Checkpoint::shown("ééé", 2), "éé…");
    }
}
