//! The id of a scheduled migration, derived from (runbook name, schedule index, fire time):
//! the `m-` + 12 base-32 characters of [`MigrationId`], whose 60 bits are the 35 bits of the
//! fire time's Unix seconds (so ids still sort by time, like generated ones) followed by 25
//! bits of an FNV-1a hash of the runbook name and the schedule index (in place of the random
//! bits of [`MigrationId::generate`]).
//!
//! The store refuses a second migration with the same id, so creating the migration of a
//! fire time twice — two passes, or a restart — fails the second time: that is how a fire
//! time never creates two migrations, with no schema change. The fire time can be read back
//! from the id ([`fire_time`]), which is how the scheduler learns, at startup, the last fire
//! time it handled.

use crate::event::MigrationId;
use chrono::{DateTime, Utc};

const ALPHABET: &[u8] = b"0123456789abcdefghjkmnpqrstvwxyz";
const SECONDS_MASK: u64 = (1 << 35) - 1;
const HASH_BITS: u32 = 25;

/// 25 bits that name a schedule: FNV-1a over the runbook name, a 0 byte and the index.
fn schedule_bits(runbook: &str, index: usize) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let bytes = runbook
        .as_bytes()
        .iter()
        .copied()
        .chain(std::iter::once(0))
        .chain((index as u64).to_le_bytes());
    for byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    // Fold the 64 bits so every input bit reaches the 25 kept.
    (hash ^ (hash >> 25) ^ (hash >> 50)) & ((1 << HASH_BITS) - 1)
}

/// The id of the migration that fire time `fire` of schedule `index` of `runbook` creates.
pub fn scheduled_id(runbook: &str, index: usize, fire: DateTime<Utc>) -> MigrationId {
    let secs = fire.timestamp().max(0) as u64 & SECONDS_MASK;
    encode((secs << HASH_BITS) | schedule_bits(runbook, index))
}

/// The id of the migration a webhook call to `hook` with `Idempotency-Key: key` creates: 60
/// bits of FNV-1a over both. Every server derives the same id, so when two servers get the
/// same key at once, the store's refusal of a second migration with one id makes exactly one
/// of them create it (the same rule as fire times).
pub fn keyed_id(hook: &str, key: &str) -> MigrationId {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in hook.bytes().chain(std::iter::once(0)).chain(key.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    encode((hash ^ (hash >> 60)) & ((1 << 60) - 1))
}

/// 60 bits as `m-` and 12 base-32 characters.
fn encode(bits: u64) -> MigrationId {
    let mut id = String::with_capacity(14);
    id.push_str("m-");
    for i in (0..12).rev() {
        id.push(ALPHABET[((bits >> (i * 5)) & 31) as usize] as char);
    }
    MigrationId::from(id)
}

/// The fire time encoded in `id`, when it is the id [`scheduled_id`] gives for that
/// schedule (so an id generated for another migration is never mistaken for one).
pub fn fire_time(id: &MigrationId, runbook: &str, index: usize) -> Option<DateTime<Utc>> {
    let text = id.as_str().strip_prefix("m-")?;
    if text.len() != 12 {
        return None;
    }
    let mut bits: u64 = 0;
    for c in text.bytes() {
        let digit = ALPHABET.iter().position(|&a| a == c)? as u64;
        bits = (bits << 5) | digit;
    }
    let fire = DateTime::from_timestamp((bits >> HASH_BITS) as i64, 0)?;
    (scheduled_id(runbook, index, fire) == *id).then_some(fire)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    #[test]
    fn the_same_fire_time_gives_the_same_id_and_it_reads_back() {
        let a = scheduled_id("orders", 0, at(1_800_000_000));
        assert_eq!(a, scheduled_id("orders", 0, at(1_800_000_000)));
        assert_eq!(a.as_str().len(), 14);
        assert!(a.as_str().starts_with("m-"));
        assert_eq!(fire_time(&a, "orders", 0), Some(at(1_800_000_000)));
        // Another schedule, runbook or fire time: another id, not read as this schedule's.
        assert_ne!(a, scheduled_id("orders", 1, at(1_800_000_000)));
        assert_ne!(a, scheduled_id("billing", 0, at(1_800_000_000)));
        assert_ne!(a, scheduled_id("orders", 0, at(1_800_000_060)));
        assert_eq!(fire_time(&a, "orders", 1), None);
        assert_eq!(
            fire_time(&MigrationId::generate(at(1_800_000_000)), "orders", 0),
            None
        );
    }

    #[test]
    fn scheduled_ids_sort_by_fire_time() {
        let a = scheduled_id("orders", 3, at(1_800_000_000));
        let b = scheduled_id("orders", 0, at(1_800_000_060));
        assert!(a < b, "{a} < {b}");
    }
}
