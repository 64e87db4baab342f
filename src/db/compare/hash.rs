//! Row hashes and the order-independent checksum of a key range.
//!
//! A row's hash is SHA-256 over its canonical values ([`crate::db::normal`]), key columns
//! first, each written as a tag and a length (`NULL` is its own tag), so no two rows hash
//! alike by running values together. A range's checksum is the sum of its rows' hashes as
//! 256-bit numbers (mod 2^256): any order of the same rows gives the same sum, and unlike
//! XOR a row present twice does not cancel out.

use sha2::{Digest, Sha256};

/// One row's canonical values, key columns first; `None` is `NULL`.
pub type Values = Vec<Option<Vec<u8>>>;

/// The hash of a row's canonical values.
pub fn row(values: &Values) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for value in values {
        match value {
            None => hasher.update([0u8]),
            Some(bytes) => {
                hasher.update([1u8]);
                hasher.update((bytes.len() as u64).to_le_bytes());
                hasher.update(bytes);
            }
        }
    }
    hasher.finalize().into()
}

/// The sum of row hashes, as four 64-bit limbs, least significant first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checksum([u64; 4]);

impl Checksum {
    pub fn add(&mut self, hash: &[u8; 32]) {
        let mut carry = false;
        for (i, limb) in self.0.iter_mut().enumerate() {
            let mut word = [0u8; 8];
            word.copy_from_slice(&hash[i * 8..i * 8 + 8]);
            let (sum, c1) = limb.overflowing_add(u64::from_le_bytes(word));
            let (sum, c2) = sum.overflowing_add(u64::from(carry));
            *limb = sum;
            carry = c1 || c2;
        }
    }

    pub fn merge(&mut self, other: &Checksum) {
        let mut bytes = [0u8; 32];
        for (i, limb) in other.0.iter().enumerate() {
            bytes[i * 8..i * 8 + 8].copy_from_slice(&limb.to_le_bytes());
        }
        self.add(&bytes);
    }

    /// The checksum as 64 hex digits, most significant first.
    pub fn hex(&self) -> String {
        self.0.iter().rev().map(|l| format!("{l:016x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(items: &[Option<&str>]) -> Values {
        items
            .iter()
            .map(|v| v.map(|s| s.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn the_checksum_ignores_order_and_counts_duplicates() {
        let rows = [
            values(&[Some("1"), Some("a")]),
            values(&[Some("2"), None]),
            values(&[Some("3"), Some("")]),
        ];
        let mut forward = Checksum::default();
        rows.iter().for_each(|r| forward.add(&row(r)));
        let mut backward = Checksum::default();
        rows.iter().rev().for_each(|r| backward.add(&row(r)));
        assert_eq!(forward, backward);
        let mut twice = forward;
        twice.add(&row(&rows[0]));
        assert_ne!(twice, forward, "a duplicate row changes the sum");
        let mut merged = Checksum::default();
        merged.merge(&forward);
        assert_eq!(merged, forward);
    }

    #[test]
    fn values_never_run_together_and_null_is_not_empty() {
        assert_ne!(
            row(&values(&[Some("ab"), Some("c")])),
            row(&values(&[Some("a"), Some("bc")]))
        );
        assert_ne!(row(&values(&[None])), row(&values(&[Some("")])));
    }
}
