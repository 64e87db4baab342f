//! Key ranges and what a comparison reports: a log line per range, the outputs of a step
//! whose sides match, and the one sentence a step whose sides differ fails with (the
//! differing ranges and sample keys, bounded so the error stays readable).

use super::hash::Checksum;
use super::merge::{Count, Sample, Tally, What, show_key};
use serde_json::{Value as Json, json};

/// Ranges named in the failure message; the log and the outputs have more.
const RANGES_IN_MESSAGE: usize = 5;
/// Differing ranges listed in the outputs.
const RANGES_IN_OUTPUTS: usize = 100;

/// Splits `lo..=hi` into at most `n` ranges of equal width (the last may be shorter).
pub fn split(lo: i128, hi: i128, n: u32) -> Vec<(i128, i128)> {
    if hi < lo {
        return Vec::new();
    }
    let span = hi - lo + 1;
    let n = i128::from(n.max(1)).min(span);
    let width = (span + n - 1) / n;
    let mut out = Vec::new();
    let mut from = lo;
    while from <= hi {
        let to = from.saturating_add(width - 1).min(hi);
        out.push((from, to));
        if to == hi {
            break;
        }
        from = to + 1;
    }
    out
}

/// A finished range.
#[derive(Debug, Clone)]
pub struct Range {
    pub label: String,
    pub tally: Tally,
}

/// What the comparison found.
#[derive(Debug, Default)]
pub struct Report {
    /// The key columns as messages name them: `id`, `(order_id, line)`.
    pub key: String,
    pub ranges: Vec<Range>,
    pub samples: Vec<Sample>,
}

impl Report {
    pub fn new(key_names: &[String]) -> Report {
        let key = if key_names.len() == 1 {
            key_names[0].clone()
        } else {
            format!("({})", key_names.join(", "))
        };
        Report {
            key,
            ..Report::default()
        }
    }

    /// The label of the range of key values `from..=to`.
    pub fn between(&self, from: i128, to: i128) -> String {
        format!("{} {from}..{to}", self.key)
    }

    /// The label of a range whose first and last keys are those of `tally`.
    pub fn spanned(&self, tally: &Tally) -> String {
        let show = |k: &Option<super::hash::Values>| k.as_deref().map(show_key).unwrap_or_default();
        format!("{} {}..{}", self.key, show(&tally.first), show(&tally.last))
    }

    /// Adds a finished range; its log line.
    pub fn push(&mut self, label: String, tally: Tally, planned: usize) -> String {
        let n = self.ranges.len() + 1;
        let mut line = format!(
            "range {n}/{planned} {label}: source {}, target {}: ",
            rows(tally.source.rows),
            rows(tally.target.rows)
        );
        if tally.matched() {
            line.push_str("match");
        } else {
            line.push_str(&format!(
                "differ: {}; checksums {} and {}",
                findings(&tally),
                short(&tally.source.checksum),
                short(&tally.target.checksum)
            ));
        }
        self.ranges.push(Range { label, tally });
        line
    }

    pub fn totals(&self) -> (Count, Count) {
        let mut source = Count::default();
        let mut target = Count::default();
        for r in &self.ranges {
            source.rows += r.tally.source.rows;
            source.checksum.merge(&r.tally.source.checksum);
            target.rows += r.tally.target.rows;
            target.checksum.merge(&r.tally.target.checksum);
        }
        (source, target)
    }

    pub fn matched(&self) -> bool {
        self.ranges.iter().all(|r| r.tally.matched())
    }

    fn differing(&self) -> impl Iterator<Item = &Range> {
        self.ranges.iter().filter(|r| !r.tally.matched())
    }

    /// The step's outputs.
    pub fn outputs(&self) -> Vec<(String, Json)> {
        let (source, target) = self.totals();
        let differing: Vec<Json> = self
            .differing()
            .take(RANGES_IN_OUTPUTS)
            .map(|r| {
                json!({
                    "range": r.label,
                    "rows_source": r.tally.source.rows,
                    "rows_target": r.tally.target.rows,
                    "missing": r.tally.missing,
                    "extra": r.tally.extra,
                    "changed": r.tally.changed,
                    "checksum_source": r.tally.source.checksum.hex(),
                    "checksum_target": r.tally.target.checksum.hex(),
                })
            })
            .collect();
        let samples: Vec<Json> = self
            .samples
            .iter()
            .map(|s| {
                let (issue, columns) = match &s.what {
                    What::Missing => ("missing", Vec::new()),
                    What::Extra => ("extra", Vec::new()),
                    What::Changed(columns) => ("changed", columns.clone()),
                };
                json!({
                    "key": s.key,
                    "issue": issue,
                    "columns": columns,
                    "range": self.ranges.get(s.range).map(|r| r.label.as_str()),
                })
            })
            .collect();
        vec![
            ("matched".into(), Json::Bool(self.matched())),
            ("ranges".into(), json!(self.ranges.len())),
            ("rows_source".into(), json!(source.rows)),
            ("rows_target".into(), json!(target.rows)),
            ("checksum_source".into(), json!(source.checksum.hex())),
            ("checksum_target".into(), json!(target.checksum.hex())),
            ("differing_ranges".into(), Json::Array(differing)),
            ("samples".into(), Json::Array(samples)),
        ]
    }

    /// The sentence a step whose sides differ fails with.
    pub fn message(&self) -> String {
        let differing: Vec<&Range> = self.differing().collect();
        let mut ranges: Vec<String> = differing
            .iter()
            .take(RANGES_IN_MESSAGE)
            .map(|r| format!("{} ({})", r.label, findings(&r.tally)))
            .collect();
        if differing.len() > RANGES_IN_MESSAGE {
            ranges.push(format!("and {} more", differing.len() - RANGES_IN_MESSAGE));
        }
        let (source, target) = self.totals();
        let mut text = format!(
            "source and target differ in {} of {} key ranges (source {} rows, target {}): {}",
            differing.len(),
            self.ranges.len(),
            source.rows,
            target.rows,
            ranges.join(", ")
        );
        if !self.samples.is_empty() {
            let samples: Vec<String> = self
                .samples
                .iter()
                .map(|s| format!("{} {} {}", self.key, s.key, what(&s.what)))
                .collect();
            text.push_str(&format!("; sample keys: {}", samples.join(", ")));
        }
        text
    }
}

fn what(what: &What) -> String {
    match what {
        What::Missing => "missing in target".into(),
        What::Extra => "extra in target".into(),
        What::Changed(columns) if columns.is_empty() => "different".into(),
        What::Changed(columns) => format!("different ({})", columns.join(", ")),
    }
}

/// What differs in a range: `1 missing in target, 2 different`.
fn findings(t: &Tally) -> String {
    let mut parts = Vec::new();
    if t.missing > 0 {
        parts.push(format!("{} missing in target", t.missing));
    }
    if t.extra > 0 {
        parts.push(format!("{} extra in target", t.extra));
    }
    if t.changed > 0 {
        parts.push(format!("{} different", t.changed));
    }
    if parts.is_empty() {
        // Only the sums differ: rows whose key repeats, paired differently.
        parts.push("checksums differ".into());
    }
    parts.join(", ")
}

fn rows(n: u64) -> String {
    format!("{n} {}", if n == 1 { "row" } else { "rows" })
}

fn short(c: &Checksum) -> String {
    c.hex()[..16].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_split_evenly_and_never_past_the_keys() {
        assert_eq!(split(1, 10, 3), [(1, 4), (5, 8), (9, 10)]);
        assert_eq!(split(5, 6, 16), [(5, 5), (6, 6)]);
        assert_eq!(split(7, 7, 4), [(7, 7)]);
        assert_eq!(split(-5, 4, 2), [(-5, -1), (0, 4)]);
        assert!(split(2, 1, 4).is_empty());
        let wide = split(i128::from(i64::MIN), i128::from(i64::MAX), 16);
        assert_eq!(wide.len(), 16);
        assert_eq!(wide[15].1, i128::from(i64::MAX));
    }

    #[test]
    fn the_message_names_differing_ranges_and_samples() {
        let mut report = Report::new(&["id".into()]);
        let same = Tally {
            source: Count {
                rows: 5,
                ..Count::default()
            },
            target: Count {
                rows: 5,
                ..Count::default()
            },
            ..Tally::default()
        };
        report.push(report.between(1, 5), same.clone(), 2);
        let mut off = same;
        off.target.rows = 4;
        off.missing = 1;
        let line = report.push(report.between(6, 10), off, 2);
        assert!(line.starts_with("range 2/2 id 6..10: source 5 rows, target 4 rows: differ: 1 missing in target; checksums "), "{line}");
        report.samples.push(Sample {
            key: "7".into(),
            what: What::Missing,
            range: 1,
        });
        assert!(!report.matched());
        assert_eq!(
            report.message(),
            "source and target differ in 1 of 2 key ranges (source 10 rows, target 9): id 6..10 (1 missing in target); sample keys: id 7 missing in target"
        );
        let outputs = report.outputs();
        assert_eq!(outputs[0], ("matched".into(), json!(false)));
        assert_eq!(outputs[7].1[0]["range"], json!("id 6..10"));
    }
}
