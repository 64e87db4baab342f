//! Writing the target: its table's columns read from the catalog (what each takes, for
//! [`super::layout`]), and each batch written in one transaction: `BEGIN`, the rows of the
//! range after the checkpoint deleted (the first batch of an attempt only), the rows
//! (PostgreSQL: `COPY table (columns) FROM STDIN`; MySQL: `INSERT`s), `COMMIT`. A batch is
//! on the target entirely or not at all.

use super::batch::Batch;
use super::encode::Encoded;
use super::layout::TargetColumn;
use super::names::{Name, literal};
use super::types::{mysql_target, pg_target};
use super::{CopyError, session};
use crate::db::connect::Conn;
use crate::db::dsn::Engine;

/// The target connection and its table.
#[derive(Debug)]
pub struct Writer {
    conn: Conn,
    pub table: Name,
    /// The key's name, to name a row the server refused.
    key: String,
}

/// What one batch's transaction did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub deleted: u64,
    pub rows: u64,
}

impl Writer {
    pub fn new(conn: Conn, table: Name, key: &str) -> Writer {
        Writer {
            conn,
            table,
            key: key.to_owned(),
        }
    }

    pub fn into_conn(self) -> Conn {
        self.conn
    }

    /// Whether the session reads `\` in strings as itself (MySQL's `NO_BACKSLASH_ESCAPES`).
    pub async fn no_backslash_escapes(&mut self) -> Result<bool, CopyError> {
        if self.conn.engine() != Engine::Mysql {
            return Ok(false);
        }
        let mode = session::texts(&mut self.conn, "SELECT @@SESSION.sql_mode")
            .await
            .map_err(CopyError::target)?;
        Ok(mode
            .first()
            .and_then(|r| r.first().cloned().flatten())
            .is_some_and(|m| m.contains("NO_BACKSLASH_ESCAPES")))
    }

    /// The table's columns that take values (not generated ones), in order.
    pub async fn columns(&mut self, shown: &str) -> Result<Vec<TargetColumn>, CopyError> {
        let engine = self.conn.engine();
        let sql = match engine {
            Engine::Postgres => format!(
                "SELECT a.attname, format_type(a.atttypid, a.atttypmod), CASE WHEN t.typtype = 'e' THEN 'text' ELSE b.typname END \
                 FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
                 JOIN pg_type b ON b.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END \
                 WHERE a.attrelid = to_regclass({}) AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '' \
                 ORDER BY a.attnum",
                literal(&self.table.quoted(engine), engine)
            ),
            Engine::Mysql => format!(
                "SELECT COLUMN_NAME, COLUMN_TYPE, DATA_TYPE FROM information_schema.COLUMNS \
                 WHERE TABLE_SCHEMA = {} AND TABLE_NAME = {} AND EXTRA NOT LIKE '%GENERATED%' \
                 ORDER BY ORDINAL_POSITION",
                self.table
                    .schema()
                    .map_or("DATABASE()".into(), |s| literal(s, engine)),
                literal(self.table.table(), engine)
            ),
        };
        let rows = session::texts(&mut self.conn, &sql)
            .await
            .map_err(CopyError::target)?;
        if rows.is_empty() {
            return Err(CopyError::Data(format!(
                "the target has no table `{shown}`{}: create it first (a `sql` step before the copy), or name it as the target's catalog does",
                match engine {
                    Engine::Postgres => " on its search_path",
                    Engine::Mysql => " in the DSN's database",
                }
            )));
        }
        let text =
            |row: &[Option<String>], i: usize| row.get(i).cloned().flatten().unwrap_or_default();
        Ok(rows
            .iter()
            .map(|row| {
                let kind = text(row, 2);
                TargetColumn {
                    name: text(row, 0),
                    declared: text(row, 1),
                    kind: match engine {
                        Engine::Postgres => pg_target(&kind),
                        Engine::Mysql => mysql_target(&kind),
                    },
                }
            })
            .collect())
    }

    /// Writes `batch` in one transaction, after `delete` (a `DELETE` of the range after the
    /// checkpoint) when given; `columns` is the quoted column list.
    pub async fn write(
        &mut self,
        batch: &Batch,
        columns: &str,
        delete: Option<&str>,
    ) -> Result<Written, CopyError> {
        session::execute(&mut self.conn, "BEGIN")
            .await
            .map_err(CopyError::target)?;
        let written = self.write_in_transaction(batch, columns, delete).await;
        match written {
            Ok(written) => {
                session::execute(&mut self.conn, "COMMIT")
                    .await
                    .map_err(CopyError::target)?;
                Ok(written)
            }
            Err(e) => {
                // A broken connection rolls back on the server by itself.
                let _ = session::execute(&mut self.conn, "ROLLBACK").await;
                Err(e)
            }
        }
    }

    async fn write_in_transaction(
        &mut self,
        batch: &Batch,
        columns: &str,
        delete: Option<&str>,
    ) -> Result<Written, CopyError> {
        let deleted = match delete {
            Some(sql) => session::execute(&mut self.conn, sql)
                .await
                .map_err(CopyError::target)?,
            None => 0,
        };
        let rows = match (&mut self.conn, &batch.data) {
            (_, _) if batch.rows == 0 => 0,
            (Conn::Pg(c), Encoded::Copy(data)) => {
                let statement = format!(
                    "COPY {} {columns} FROM STDIN",
                    self.table.quoted(Engine::Postgres)
                );
                let sent = async {
                    let mut copy = c.copy_in_raw(&statement).await?;
                    copy.send(data.as_slice()).await?;
                    copy.finish().await
                };
                sent.await.map_err(|error| CopyError::Target {
                    at: row_of(&error, batch, &self.key),
                    error,
                })?
            }
            (conn, Encoded::Inserts(statements)) => {
                let mut rows = 0;
                for statement in statements {
                    rows += session::execute(conn, statement)
                        .await
                        .map_err(CopyError::target)?;
                }
                rows
            }
            (_, Encoded::Copy(_)) => {
                return Err(CopyError::Data(
                    "a batch encoded for PostgreSQL cannot go to MySQL".into(),
                ));
            }
        };
        if rows != batch.rows {
            return Err(CopyError::Data(format!(
                "the target took {rows} of the batch's {} rows (a trigger or rule on the table?); nothing of the batch was kept",
                batch.rows
            )));
        }
        Ok(Written { deleted, rows })
    }

    /// The `DELETE` of the target's rows that match `conditions` (every row without any).
    pub fn delete_sql(&self, conditions: &str) -> String {
        let table = self.table.quoted(self.conn.engine());
        if conditions.is_empty() {
            format!("DELETE FROM {table}")
        } else {
            format!("DELETE FROM {table} WHERE {conditions}")
        }
    }
}

/// The row a PostgreSQL COPY error names (`COPY orders, line 3, column note: ...`), by key.
fn row_of(error: &sqlx::Error, batch: &Batch, key_name: &str) -> Option<String> {
    let sqlx::Error::Database(db) = error else {
        return None;
    };
    let pg = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>()?;
    let context = pg.r#where()?;
    let line: usize = context
        .split(", line ")
        .nth(1)?
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()?;
    let key = batch.keys.get(line.checked_sub(1)?)?;
    let column = context
        .split(", column ")
        .nth(1)
        .and_then(|c| c.split(':').next())
        .map(|c| format!(", column `{c}`"))
        .unwrap_or_default();
    Some(format!("row with {key_name} {key}{column}"))
}
