//! What the engine hands a `sql` step's process: the rendered step, as JSON on its stdin
//! (never in its arguments, which every user of the machine can read in `ps`).

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// A `sql` step with every template rendered.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct SqlSpec {
    /// The connection URL, password included.
    pub dsn: String,
    /// The SQL to run: the `query` rendered, or the `file` as written.
    pub query: String,
    /// Values for the query's placeholders (`$1`... or `?`), put in as literals.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<Json>,
    /// Run everything in one transaction.
    pub transaction: bool,
    /// The step's timeout in milliseconds. The engine stops the process at the timeout (and
    /// the process then cancels the statement on the server); the process also keeps this
    /// deadline itself, a little later, in case no signal comes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

impl std::fmt::Debug for SqlSpec {
    // The DSN holds a password, and params or the query may hold secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlSpec")
            .field("query_bytes", &self.query.len())
            .field("params", &self.params.len())
            .field("transaction", &self.transaction)
            .field("timeout_ms", &self.timeout_ms)
            .finish_non_exhaustive()
    }
}
