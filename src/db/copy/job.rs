//! One attempt of a copy, batch after batch: count the range (for `progress=`), then read a
//! batch, write it in one transaction, and only after its commit report `checkpoint=<last
//! key>`. While one batch is written the next is read, on the other connection.
//!
//! The rule that keeps every row once: the first transaction of an attempt deletes the
//! target's rows in the step's range after the checkpoint the attempt was given (the whole
//! range without one) before it writes, so whatever an earlier attempt committed but never
//! got recorded is written again exactly once. Rows at or before the checkpoint were
//! committed before it was written, so they stay.

use super::batch::{Shape, conditions};
use super::names::quote;
use super::source::Reader;
use super::target::Writer;
use super::{CopyError, KeyRange};
use std::time::{Duration, Instant};

/// How often the log says how far the copy got (besides its first and last batch).
const LOG_EVERY: Duration = Duration::from_secs(2);

/// Who hears of the copy's progress: the log, and `$SENSEI_OUTPUT` once a batch committed.
pub trait Hear {
    fn log(&mut self, line: String);
    fn committed(&mut self, last_key: i64, done: u64, total: u64);
}

/// What an attempt did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Rows of the range on the target: copied before the checkpoint and by this attempt.
    pub rows: u64,
    /// Rows this attempt wrote.
    pub copied: u64,
    pub batches: u64,
    /// Target rows deleted before writing (after the checkpoint).
    pub deleted: u64,
    /// The last key on the target (the checkpoint's, when this attempt wrote nothing).
    pub last_key: Option<i64>,
}

/// An attempt's settings.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub range: KeyRange,
    pub batch: u32,
    /// The last key a previous attempt recorded.
    pub checkpoint: Option<i64>,
}

/// Runs the attempt to its end.
pub async fn run(
    reader: &mut Reader,
    writer: &mut Writer,
    shape: &mut Shape,
    plan: Plan,
    hear: &mut dyn Hear,
) -> Result<Summary, CopyError> {
    let started = Instant::now();
    let target_key = shape
        .target_columns
        .iter()
        .find(|c| c.name == shape.key)
        .or_else(|| {
            shape
                .target_columns
                .iter()
                .find(|c| c.name.eq_ignore_ascii_case(&shape.key))
        })
        .map(|c| c.name.clone())
        .ok_or_else(|| {
            CopyError::Data(format!(
                "the target table `{}` has no column `{}`: the key must be a column of both tables",
                shape.table_shown, shape.key
            ))
        })?;
    let (total, before) = reader.count(plan.checkpoint).await?;
    hear.log(format!(
        "{}: {total} rows in the source{}",
        plan.range.shown(&shape.key),
        match plan.checkpoint {
            Some(c) => format!(", {before} of them up to the checkpoint {c}"),
            None => String::new(),
        }
    ));
    let delete = writer.delete_sql(&conditions(
        &quote(&target_key, shape.target),
        plan.range,
        plan.checkpoint,
    ));
    let mut delete = Some(delete);
    let mut summary = Summary {
        rows: before,
        last_key: plan.checkpoint,
        ..Summary::default()
    };
    let mut pending = reader.read(plan.checkpoint, shape).await?;
    let mut logged = Instant::now();
    loop {
        let columns = shape.column_list();
        let full = pending.rows >= u64::from(plan.batch);
        let write = writer.write(&pending, &columns, delete.as_deref());
        let (written, next) = if full {
            let (written, next) = tokio::join!(write, reader.read(pending.last(), shape));
            (written, Some(next))
        } else {
            (write.await, None)
        };
        let written = written?;
        if delete.take().is_some() && written.deleted > 0 {
            hear.log(format!(
                "deleted {} rows of the target after {} before writing them again",
                written.deleted,
                plan.checkpoint
                    .map_or("the range's start".into(), |c| format!(
                        "the checkpoint {c}"
                    ))
            ));
        }
        summary.deleted += written.deleted;
        if let Some(last) = pending.last() {
            summary.rows += written.rows;
            summary.copied += written.rows;
            summary.batches += 1;
            summary.last_key = Some(last);
            hear.committed(last, summary.rows, total.max(summary.rows));
            let final_batch = next.is_none();
            if summary.batches == 1 || final_batch || logged.elapsed() >= LOG_EVERY {
                logged = Instant::now();
                hear.log(format!(
                    "batch {}: {} up to {} {last}; {}/{} rows",
                    summary.batches,
                    if written.rows == 1 {
                        "1 row".to_owned()
                    } else {
                        format!("{} rows", written.rows)
                    },
                    shape.key,
                    summary.rows,
                    total.max(summary.rows)
                ));
            }
        }
        match next {
            Some(next) => pending = next?,
            None => break,
        }
        if pending.rows == 0 {
            break;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    hear.log(format!(
        "copied {} rows in {} batches in {seconds:.1}s ({:.0} rows/s); the range holds {} rows",
        summary.copied,
        summary.batches,
        summary.copied as f64 / seconds.max(0.001),
        summary.rows
    ));
    Ok(summary)
}
