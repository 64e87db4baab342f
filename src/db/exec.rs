//! Running a `sql` step's SQL on an open connection, and what it returns.
//!
//! - **Transactions.** With `transaction: true` (the default) everything runs between
//!   `BEGIN` and `COMMIT`, and any error rolls all of it back. With `transaction: false`
//!   each statement commits by itself and what ran before an error stays: on PostgreSQL the
//!   statements are sent one by one (its protocol would otherwise run a multi-statement
//!   query as one implicit transaction), on MySQL together, in autocommit.
//! - **Results.** The rows of the last statement that returned rows become the outputs:
//!   the first row's columns by name, and `rows` (every row, as objects), bounded by
//!   [`MAX_ROWS`] and [`MAX_ROWS_BYTES`] because outputs are values, not data. A result over
//!   the bound fails the step (inside a transaction, before anything is committed).

use super::connect::{Conn, Ended};
use super::dsn::Engine;
use super::sqltext;
use super::value;
use serde_json::{Map, Value as Json};

/// Most rows a step may return as outputs.
pub const MAX_ROWS: usize = 1000;
/// Most bytes of JSON those rows may take.
pub const MAX_ROWS_BYTES: usize = 256 * 1024;

/// Why running stopped.
#[derive(Debug)]
pub enum Stop {
    Sql(sqlx::Error),
    /// The result is over the bound; the text says which.
    TooManyRows(String),
}

/// The rows the step keeps, and what its statements did.
#[derive(Debug)]
pub struct Results {
    max_rows: usize,
    max_bytes: usize,
    /// Rows of the statement under way.
    current: Vec<Map<String, Json>>,
    current_bytes: usize,
    /// The first column's raw text of the first row of the statement under way.
    current_first: Option<String>,
    /// Rows of the last statement that returned any.
    last: Vec<Map<String, Json>>,
    last_first: Option<String>,
    /// Column names in order, of the statement that `last` came from.
    columns: Vec<String>,
    current_columns: Vec<String>,
    pub affected: u64,
    pub statements: usize,
}

impl Results {
    pub fn new(max_rows: usize, max_bytes: usize) -> Results {
        Results {
            max_rows,
            max_bytes,
            current: Vec::new(),
            current_bytes: 0,
            current_first: None,
            last: Vec::new(),
            last_first: None,
            columns: Vec::new(),
            current_columns: Vec::new(),
            affected: 0,
            statements: 0,
        }
    }

    /// Takes a row: `columns` are (name, type name), `text(i)` the i-th value as sent.
    pub(super) fn row(
        &mut self,
        columns: &[(String, String)],
        text: impl Fn(usize) -> Result<Option<Vec<u8>>, sqlx::Error>,
    ) -> Result<(), Stop> {
        if self.current.len() >= self.max_rows {
            return Err(Stop::TooManyRows(format!(
                "the query returned more than {} rows; a step's rows are outputs, not data: aggregate, add a LIMIT, or move data with a `run` step",
                self.max_rows
            )));
        }
        let mut row = Map::new();
        for (i, (name, type_name)) in columns.iter().enumerate() {
            let raw = text(i).map_err(Stop::Sql)?;
            if i == 0 && self.current.is_empty() {
                self.current_first = raw
                    .as_deref()
                    .map(|b| String::from_utf8_lossy(b).into_owned());
            }
            row.insert(name.clone(), value::to_json(type_name, raw.as_deref()));
        }
        self.current_bytes += Json::Object(row.clone()).to_string().len() + 1;
        if self.current_bytes > self.max_bytes {
            return Err(Stop::TooManyRows(format!(
                "the query's rows take more than {} KiB as JSON; a step's rows are outputs, not data: select fewer columns or rows",
                self.max_bytes / 1024
            )));
        }
        if self.current.is_empty() {
            self.current_columns = columns.iter().map(|(n, _)| n.clone()).collect();
        }
        self.current.push(row);
        Ok(())
    }

    /// A statement ended: its rows (if any) become the result.
    pub(super) fn end_statement(&mut self, affected: u64) -> Ended {
        self.statements += 1;
        let returned = self.current.len();
        if returned > 0 {
            self.last = std::mem::take(&mut self.current);
            self.last_first = self.current_first.take();
            self.columns = std::mem::take(&mut self.current_columns);
        }
        self.current_bytes = 0;
        Ended { affected, returned }
    }

    /// The first value of the result as the server wrote it.
    pub fn first_text(&self) -> Option<String> {
        self.last_first.clone()
    }

    pub fn rows(&self) -> &[Map<String, Json>] {
        &self.last
    }

    /// Column names of the result, in order.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }
}

/// What happened to the transaction when running stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Undone {
    /// Inside a transaction: nothing of the step remains.
    RolledBack,
    /// Without one: what ran before the error stays.
    Kept,
}

/// Runs the step's SQL; `log` hears a line per statement.
pub async fn execute(
    conn: &mut Conn,
    query: &str,
    transaction: bool,
    results: &mut Results,
    log: &mut (dyn FnMut(String) + Send),
) -> Result<(), (Stop, Undone)> {
    let engine = conn.engine();
    let pieces: Vec<&str> = if !transaction && engine == Engine::Postgres {
        sqltext::statements(engine, query)
    } else {
        vec![query]
    };
    // Statement kinds for the log, from the client's own split (the server reports ends).
    let kinds: Vec<String> = sqltext::statements(engine, query)
        .iter()
        .map(|s| sqltext::kind(engine, s))
        .collect();
    if transaction {
        log("BEGIN".into());
        conn.simple("BEGIN")
            .await
            .map_err(|e| (Stop::Sql(e), Undone::Kept))?;
    }
    let mut started = std::time::Instant::now();
    let mut number = 0usize;
    let mut affected = 0u64;
    let mut done = |ended: Ended| {
        let kind = kinds
            .get(number)
            .cloned()
            .unwrap_or_else(|| "statement".into());
        number += 1;
        let mut what = Vec::new();
        // PostgreSQL counts a query's rows as "affected"; they are not changes.
        let reads = matches!(
            kind.as_str(),
            "SELECT" | "VALUES" | "TABLE" | "SHOW" | "EXPLAIN"
        );
        if ended.returned > 0 || reads {
            what.push(plural(ended.returned as u64, "row", "rows"));
        }
        if !reads {
            affected += ended.affected;
        }
        if (ended.affected > 0 && !reads) || what.is_empty() {
            what.push(format!(
                "{} affected",
                plural(ended.affected, "row", "rows")
            ));
        }
        log(format!(
            "{kind}: {} ({} ms)",
            what.join(", "),
            started.elapsed().as_millis()
        ));
        started = std::time::Instant::now();
    };
    for piece in pieces {
        if let Err(stop) = conn.run(piece, results, &mut done).await {
            if transaction {
                // A broken connection rolls back on the server by itself.
                let _ = conn.simple("ROLLBACK").await;
                return Err((stop, Undone::RolledBack));
            }
            return Err((stop, Undone::Kept));
        }
    }
    results.affected = affected;
    if transaction {
        conn.simple("COMMIT")
            .await
            .map_err(|e| (Stop::Sql(e), Undone::RolledBack))?;
        log("COMMIT".into());
    }
    Ok(())
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Whether a failure may pass by itself (a retry can help): the connection failed, or the
/// server reports a lost connection, a serialization failure, a deadlock, a lock wait
/// timeout, too many connections or a shutdown.
pub fn transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            if let Some(my) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
                return matches!(my.number(), 1040 | 1205 | 1213 | 2006 | 2013);
            }
            code.starts_with("08")
                || matches!(
                    code.as_ref(),
                    "40001" | "40P01" | "53300" | "57P01" | "57P02" | "57P03"
                )
        }
        _ => false,
    }
}

/// The error as lines for the log: the server's message with its code, then PostgreSQL's
/// detail and hint when it gives them. Callers mask them.
pub fn describe(error: &sqlx::Error) -> (String, Vec<String>) {
    let sqlx::Error::Database(db) = error else {
        return (error.to_string(), Vec::new());
    };
    let mut more = Vec::new();
    let code = if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
        more.extend(pg.detail().map(|d| format!("detail: {d}")));
        more.extend(pg.hint().map(|h| format!("hint: {h}")));
        format!("SQLSTATE {}", pg.code())
    } else if let Some(my) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
        match my.code() {
            Some(state) => format!("MySQL error {}, SQLSTATE {state}", my.number()),
            None => format!("MySQL error {}", my.number()),
        }
    } else {
        db.code().map(|c| format!("code {c}")).unwrap_or_default()
    };
    (format!("{} ({code})", db.message()), more)
}
