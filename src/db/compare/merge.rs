//! The two sides' rows merged by key: both arrive in key order, so one pass pairs each
//! source row with its target row and finds every row missing on one side or different,
//! holding only the rows of one key at a time. Each side's rows are also counted and summed
//! into the range's checksum ([`super::hash::Checksum`]).
//!
//! A server that returns keys out of the order [`crate::db::normal::order`] gives them (a
//! collation the query could not override, a key whose text does not sort like its value)
//! stops the comparison with an error: a merge of misordered rows would report differences
//! that are not there, or miss some that are.

use super::hash::{self, Checksum, Values};
use super::side::{Read, Rows};
use crate::db::normal::{self, Class};
use std::cmp::Ordering;

/// Why a merge stopped before its end.
#[derive(Debug)]
pub enum Stop {
    /// A side's query failed.
    Sql(&'static str, sqlx::Error),
    /// A side's keys came out of order; the text says where.
    Order(String),
}

/// A side's rows as the merge reads them.
#[derive(Debug)]
pub struct Reader<'c> {
    side: &'static str,
    rows: Rows<'c>,
    reads: &'c [Read],
    order: &'c [Class],
    names: &'c [String],
    next: Option<Row>,
    ended: bool,
}

/// A row's canonical values and its hash.
type Row = (Values, [u8; 32]);

impl<'c> Reader<'c> {
    pub fn new(
        side: &'static str,
        rows: Rows<'c>,
        reads: &'c [Read],
        order: &'c [Class],
        names: &'c [String],
    ) -> Reader<'c> {
        Reader {
            side,
            rows,
            reads,
            order,
            names,
            next: None,
            ended: false,
        }
    }

    /// Reads the next row unless one waits; false at the end.
    async fn fill(&mut self) -> Result<bool, Stop> {
        if self.next.is_some() {
            return Ok(true);
        }
        if self.ended {
            return Ok(false);
        }
        let Some(values) = self
            .rows
            .next(self.reads)
            .await
            .map_err(|e| Stop::Sql(self.side, e))?
        else {
            self.ended = true;
            return Ok(false);
        };
        let hash = hash::row(&values);
        self.next = Some((values, hash));
        Ok(true)
    }

    /// Adds the rows whose key is `key` to `out`. Every row is compared with the key merged
    /// before it, so a row that comes before it is caught here: this is the order check.
    async fn group(&mut self, key: &[Option<Vec<u8>>], out: &mut Vec<Row>) -> Result<(), Stop> {
        while self.fill().await? {
            let Some((values, _)) = &self.next else { break };
            match compare_keys(self.order, &values[..key.len()], key) {
                Ordering::Equal => out.extend(self.next.take()),
                Ordering::Greater => break,
                Ordering::Less => {
                    return Err(Stop::Order(format!(
                        "the {} returned key {} after {}: its server does not order this key as sensei compares it (numbers by value, text by its bytes)",
                        self.side,
                        show_key(&values[..key.len()]),
                        show_key(key)
                    )));
                }
            }
        }
        Ok(())
    }
}

/// Rows and checksum of one side of a range.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Count {
    pub rows: u64,
    pub checksum: Checksum,
}

/// What a merge found in a key range.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    pub source: Count,
    pub target: Count,
    /// Rows of the source the target lacks.
    pub missing: u64,
    /// Rows of the target the source lacks.
    pub extra: u64,
    /// Keys on both sides whose rows differ.
    pub changed: u64,
    /// Distinct keys merged.
    pub keys: u64,
    /// The first and last key merged, when the merge keeps them.
    pub first: Option<Values>,
    pub last: Option<Values>,
}

impl Tally {
    pub fn matched(&self) -> bool {
        self.source == self.target && self.missing == 0 && self.extra == 0 && self.changed == 0
    }
}

/// A differing key, named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    pub key: String,
    pub what: What,
    /// The range it is in (0-based).
    pub range: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum What {
    /// In the source, not in the target.
    Missing,
    /// In the target, not in the source.
    Extra,
    /// On both sides, with these columns differing.
    Changed(Vec<String>),
}

/// The first `max` differing keys.
#[derive(Debug, Default)]
pub struct Samples {
    pub max: usize,
    pub list: Vec<Sample>,
}

impl Samples {
    fn add(&mut self, key: &[Option<Vec<u8>>], what: What, range: usize) {
        if self.list.len() < self.max {
            self.list.push(Sample {
                key: show_key(key),
                what,
                range,
            });
        }
    }
}

/// Merges the two readers into `tally` until both end, or, with `cut`, until `cut` keys
/// are merged (true: stopped at the cut, more may follow; the tally then keeps its first
/// and last key).
pub async fn merge(
    source: &mut Reader<'_>,
    target: &mut Reader<'_>,
    tally: &mut Tally,
    samples: &mut Samples,
    range: usize,
    cut: Option<u64>,
) -> Result<bool, Stop> {
    let order = source.order;
    let keys = order.len();
    loop {
        if cut.is_some_and(|cut| tally.keys >= cut) {
            return Ok(true);
        }
        source.fill().await?;
        target.fill().await?;
        // The smaller key leads; its row is taken, and each side adds the rows equal to it.
        let lead = match (&source.next, &target.next) {
            (None, None) => return Ok(false),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some((s, _)), Some((t, _))) => compare_keys(order, &s[..keys], &t[..keys]),
        };
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        let first = if lead == Ordering::Greater {
            target.next.take()
        } else {
            source.next.take()
        };
        let Some(first) = first else {
            return Ok(false);
        };
        let key = &first.0[..keys];
        source.group(key, &mut ours).await?;
        target.group(key, &mut theirs).await?;
        if lead == Ordering::Greater {
            theirs.push(first);
        } else {
            ours.push(first);
        }
        let led = if lead == Ordering::Greater {
            &theirs
        } else {
            &ours
        };
        let key: &[Option<Vec<u8>>] = match led.last() {
            Some((values, _)) => &values[..keys],
            None => &[],
        };
        tally.keys += 1;
        for (_, hash) in &ours {
            tally.source.rows += 1;
            tally.source.checksum.add(hash);
        }
        for (_, hash) in &theirs {
            tally.target.rows += 1;
            tally.target.checksum.add(hash);
        }
        match (ours.as_slice(), theirs.as_slice()) {
            ([(s, sh)], [(t, th)]) => {
                if sh != th {
                    tally.changed += 1;
                    let columns = (keys..s.len())
                        .filter(|&i| s[i] != t[i])
                        .map(|i| source.names[i].clone())
                        .collect();
                    samples.add(key, What::Changed(columns), range);
                }
            }
            _ => {
                // A key held by several rows: the rows that have no equal on the other side.
                let mut a: Vec<&[u8; 32]> = ours.iter().map(|(_, h)| h).collect();
                let mut b: Vec<&[u8; 32]> = theirs.iter().map(|(_, h)| h).collect();
                a.sort();
                b.sort();
                let (mut i, mut j, mut only_ours, mut only_theirs) = (0, 0, 0u64, 0u64);
                while i < a.len() || j < b.len() {
                    match (a.get(i), b.get(j)) {
                        (Some(x), Some(y)) if x == y => (i, j) = (i + 1, j + 1),
                        (Some(x), Some(y)) if x < y => (i, only_ours) = (i + 1, only_ours + 1),
                        (Some(_), None) => (i, only_ours) = (i + 1, only_ours + 1),
                        _ => (j, only_theirs) = (j + 1, only_theirs + 1),
                    }
                }
                tally.missing += only_ours;
                tally.extra += only_theirs;
                if only_ours > 0 {
                    samples.add(key, What::Missing, range);
                }
                if only_theirs > 0 {
                    samples.add(key, What::Extra, range);
                }
            }
        }
        if cut.is_some() {
            if tally.first.is_none() {
                tally.first = Some(key.to_vec());
            }
            tally.last = Some(key.to_vec());
        }
    }
}

fn compare_keys(order: &[Class], a: &[Option<Vec<u8>>], b: &[Option<Vec<u8>>]) -> Ordering {
    order
        .iter()
        .zip(a.iter().zip(b))
        .map(|(class, (x, y))| normal::order(*class, x.as_deref(), y.as_deref()))
        .find(|o| *o != Ordering::Equal)
        .unwrap_or(Ordering::Equal)
}

/// A key as messages show it: `17`, `(17, 2)`; text as text, other bytes in hex, long
/// values cut.
pub fn show_key(key: &[Option<Vec<u8>>]) -> String {
    let shown: Vec<String> = key.iter().map(|v| show_value(v.as_deref())).collect();
    if shown.len() == 1 {
        shown.into_iter().next().unwrap_or_default()
    } else {
        format!("({})", shown.join(", "))
    }
}

fn show_value(value: Option<&[u8]>) -> String {
    const MAX: usize = 60;
    let Some(bytes) = value else {
        return "NULL".into();
    };
    let text = match std::str::from_utf8(bytes) {
        Ok(t) if !t.chars().any(char::is_control) => t.to_owned(),
        _ => format!("\\x{}", base16ct::lower::encode_string(bytes)),
    };
    if text.chars().count() > MAX {
        let cut: String = text.chars().take(MAX).collect();
        format!("{cut}…")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_show_as_text_hex_or_null() {
        let key =
            |v: &[Option<&[u8]>]| -> Values { v.iter().map(|b| b.map(<[u8]>::to_vec)).collect() };
        assert_eq!(show_key(&key(&[Some(b"17")])), "17");
        assert_eq!(show_key(&key(&[Some(b"a"), None])), "(a, NULL)");
        assert_eq!(show_key(&key(&[Some(&[0xff, 0x01])])), "\\xff01");
        let long = "x".repeat(100);
        assert_eq!(show_key(&key(&[Some(long.as_bytes())])).chars().count(), 61);
    }
}
