//! One comparison, start to end, on two open sides: describe and match the columns, plan
//! the key ranges, merge each range's rows, report each range as it ends.
//!
//! Key ranges: when the first key column is an integer on both sides, its values from the
//! smallest to the largest (of both sides) are split into `ranges` ranges of equal width,
//! and each range is one query per side (`WHERE key BETWEEN a AND b ORDER BY key`): short
//! statements that an index on the key serves, and a `progress=` line after each. Rows with
//! a `NULL` first key column are one range more. Any other key is read in one ordered query
//! per side, and the merged keys are cut into `ranges` ranges of equal count (from both
//! sides' `count(*)`).

use super::child::Say;
use super::columns::{self, Columns};
use super::merge::{self, Reader, Samples, Stop, Tally};
use super::query::{self, Bounds};
use super::report::{self, Report};
use super::side::Side;
use super::spec::CompareSpec;
use std::time::Instant;

/// Why a comparison could not be made.
#[derive(Debug)]
pub enum Failure {
    /// A side's query failed.
    Sql(&'static str, sqlx::Error),
    /// The sides cannot be compared as asked (columns, key order); the text says why.
    Plan(String),
}

impl From<Stop> for Failure {
    fn from(stop: Stop) -> Failure {
        match stop {
            Stop::Sql(side, e) => Failure::Sql(side, e),
            Stop::Order(text) => Failure::Plan(text),
        }
    }
}

fn sql(side: &'static str) -> impl Fn(sqlx::Error) -> Failure {
    move |e| Failure::Sql(side, e)
}

/// Compares the sides; `say` logs and reports progress.
pub async fn compare(
    source: &mut Side,
    target: &mut Side,
    spec: &CompareSpec,
    say: &Say,
) -> Result<Report, Failure> {
    let started = Instant::now();
    let s_described = source.describe().await.map_err(sql("source"))?;
    let t_described = target.describe().await.map_err(sql("target"))?;
    let cols = columns::plan(
        &spec.key,
        &spec.columns,
        (source.engine(), &s_described),
        (target.engine(), &t_described),
    )
    .map_err(Failure::Plan)?;
    for line in &cols.lines {
        say.out(line);
    }
    let mut report = Report::new(&cols.names[..cols.keys()]);
    let mut samples = Samples {
        max: spec.samples as usize,
        list: Vec::new(),
    };
    if cols.integer_ranges {
        by_value(source, target, spec, &cols, &mut report, &mut samples, say).await?;
    } else {
        by_count(source, target, spec, &cols, &mut report, &mut samples, say).await?;
    }
    report.samples = samples.list;
    let (s, t) = report.totals();
    let seconds = started.elapsed().as_secs_f64();
    let rows = s.rows + t.rows;
    say.out(&format!(
        "compared {} source rows and {} target rows in {seconds:.2} s ({:.0} rows/s)",
        s.rows,
        t.rows,
        rows as f64 / seconds.max(1e-6)
    ));
    Ok(report)
}

/// Ranges of the first key column's values, one query per side each.
async fn by_value(
    source: &mut Side,
    target: &mut Side,
    spec: &CompareSpec,
    cols: &Columns,
    report: &mut Report,
    samples: &mut Samples,
    say: &Say,
) -> Result<(), Failure> {
    let mut lo: Option<i128> = None;
    let mut hi: Option<i128> = None;
    let mut nulls = false;
    for (side, key) in [
        (&mut *source, &cols.source[0]),
        (&mut *target, &cols.target[0]),
    ] {
        let name = side.name;
        let (engine, from) = (side.engine(), side.from.clone());
        let row = side
            .first_row(&query::bounds(engine, &from, key))
            .await
            .map_err(sql(name))?;
        let int = |v: Option<&Option<String>>| -> Result<Option<i128>, Failure> {
            match v.and_then(Option::as_deref) {
                None => Ok(None),
                Some(text) => text.parse().map(Some).map_err(|_| {
                    Failure::Plan(format!(
                        "the {name}'s key `{key}` has the value `{text}`, which is not an integer"
                    ))
                }),
            }
        };
        if let Some(min) = int(row.first())? {
            lo = Some(lo.map_or(min, |l| l.min(min)));
        }
        if let Some(max) = int(row.get(1))? {
            hi = Some(hi.map_or(max, |h| h.max(max)));
        }
        nulls |= !side
            .first_row(&query::has_null(engine, &from, key))
            .await
            .map_err(sql(name))?
            .is_empty();
    }
    let mut plan: Vec<Bounds> = Vec::new();
    if nulls {
        plan.push(Bounds::Null);
    }
    if let (Some(lo), Some(hi)) = (lo, hi) {
        plan.extend(
            report::split(lo, hi, spec.ranges)
                .into_iter()
                .map(|(a, b)| Bounds::Between(a, b)),
        );
        say.out(&format!(
            "{} key ranges of {} from {lo} to {hi}",
            plan.len(),
            report.key
        ));
    } else if !nulls {
        say.out("both sides are empty");
    }
    let planned = plan.len();
    for (i, bounds) in plan.into_iter().enumerate() {
        let s_sql = query::rows(
            source.engine(),
            &source.from,
            &cols.source,
            &cols.source_keys,
            bounds,
        );
        let t_sql = query::rows(
            target.engine(),
            &target.from,
            &cols.target,
            &cols.target_keys,
            bounds,
        );
        let mut tally = Tally::default();
        {
            let mut s = Reader::new(
                "source",
                source.rows(&s_sql),
                &cols.source_reads,
                &cols.key_order,
                &cols.names,
            );
            let mut t = Reader::new(
                "target",
                target.rows(&t_sql),
                &cols.target_reads,
                &cols.key_order,
                &cols.names,
            );
            merge::merge(&mut s, &mut t, &mut tally, samples, i, None).await?;
        }
        let label = match bounds {
            Bounds::Between(a, b) => report.between(a, b),
            Bounds::Null | Bounds::All => format!("{} NULL", report.key),
        };
        say.out(&report.push(label, tally, planned));
        say.progress(i + 1, planned);
    }
    Ok(())
}

/// One ordered query per side, cut into ranges of equal key counts.
async fn by_count(
    source: &mut Side,
    target: &mut Side,
    spec: &CompareSpec,
    cols: &Columns,
    report: &mut Report,
    samples: &mut Samples,
    say: &Say,
) -> Result<(), Failure> {
    let mut most = 0u64;
    for side in [&mut *source, &mut *target] {
        let name = side.name;
        let text = query::count(&side.from);
        let row = side.first_row(&text).await.map_err(sql(name))?;
        let n: u64 = row
            .first()
            .and_then(Option::as_deref)
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        most = most.max(n);
    }
    let per = most.div_ceil(u64::from(spec.ranges.max(1))).max(1);
    let planned = usize::try_from(most.div_ceil(per)).unwrap_or(usize::MAX);
    say.out(&format!(
        "{planned} key ranges of about {per} keys each (the key is not an integer on both sides: each side reads its rows in one ordered query)"
    ));
    let s_sql = query::rows(
        source.engine(),
        &source.from,
        &cols.source,
        &cols.source_keys,
        Bounds::All,
    );
    let t_sql = query::rows(
        target.engine(),
        &target.from,
        &cols.target,
        &cols.target_keys,
        Bounds::All,
    );
    let mut s = Reader::new(
        "source",
        source.rows(&s_sql),
        &cols.source_reads,
        &cols.key_order,
        &cols.names,
    );
    let mut t = Reader::new(
        "target",
        target.rows(&t_sql),
        &cols.target_reads,
        &cols.key_order,
        &cols.names,
    );
    loop {
        let mut tally = Tally::default();
        let i = report.ranges.len();
        let more = merge::merge(&mut s, &mut t, &mut tally, samples, i, Some(per)).await?;
        if tally.keys == 0 {
            break;
        }
        let label = report.spanned(&tally);
        // Rows written since the counts may make more ranges than planned.
        let total = planned.max(i + 1);
        say.out(&report.push(label, tally, total));
        say.progress(i + 1, total);
        if !more {
            break;
        }
    }
    Ok(())
}
