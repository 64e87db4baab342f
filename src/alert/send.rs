//! What one attempt to send gives, for both channels: sent (with the reply code), a failure
//! worth retrying (with the receiver's `Retry-After`), or a permanent refusal (SPEC §6: SMTP
//! 5xx, HTTP 4xx other than 408 and 429, or a message that can never be sent).

use std::time::Duration;

/// A successful attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// The HTTP status or SMTP reply code.
    pub status: Option<i64>,
}

/// A failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub permanent: bool,
    pub status: Option<i64>,
    /// One line an operator can act on.
    pub error: String,
    /// The receiver asked to wait this long before trying again.
    pub retry_after: Option<Duration>,
}

impl Failure {
    pub fn permanent(error: impl Into<String>) -> Failure {
        Failure {
            permanent: true,
            status: None,
            error: error.into(),
            retry_after: None,
        }
    }

    pub fn transient(error: impl Into<String>) -> Failure {
        Failure {
            permanent: false,
            status: None,
            error: error.into(),
            retry_after: None,
        }
    }
}

pub type Attempted = Result<Sent, Failure>;
