//! Proofs already seen (RFC 9449 §11.1): each `(key thumbprint, jti)` is accepted once while
//! the proof could still be accepted, in a store bounded by entry count.
//!
//! The store never evicts a live entry to make room: when it is full of proofs that could
//! still be replayed, a new proof is not accepted (the caller answers 503) rather than
//! forgetting one. Entries are only ever added for proofs that passed every other check, bound
//! to valid access tokens, so only holders of valid tokens can fill it.

use std::collections::HashMap;
use std::sync::Mutex;

/// Shards, so concurrent requests rarely wait for one another.
const SHARDS: usize = 64;

/// What the store says of a proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Not seen before: now remembered.
    First,
    Replayed,
    /// Full of live entries: the proof cannot be checked now.
    Full,
}

#[derive(Debug, Default)]
struct Shard {
    /// Entry key → the Unix second after which the proof can no longer be accepted.
    entries: HashMap<u128, u64>,
    /// The earliest such second in `entries`: before it, purging finds nothing.
    earliest: u64,
}

#[derive(Debug)]
pub struct ReplayStore {
    shards: Vec<Mutex<Shard>>,
    per_shard: usize,
}

impl ReplayStore {
    /// A store for `capacity` live proofs at most.
    pub fn new(capacity: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
        }
    }

    /// Remembers the proof `jti` made with the key `jkt` until `until`, unless it was seen.
    pub fn check(&self, jkt: &str, jti: &str, until: u64, now: u64) -> Seen {
        let key = entry_key(jkt, jti);
        let Some(shard) = self.shards.get((key % SHARDS as u128) as usize) else {
            return Seen::Full;
        };
        let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(expiry) = shard.entries.get(&key)
            && *expiry >= now
        {
            return Seen::Replayed;
        }
        if shard.entries.len() >= self.per_shard && !shard.entries.contains_key(&key) {
            if now <= shard.earliest {
                return Seen::Full;
            }
            shard.entries.retain(|_, expiry| *expiry >= now);
            shard.earliest = shard.entries.values().copied().min().unwrap_or(0);
            if shard.entries.len() >= self.per_shard {
                return Seen::Full;
            }
        }
        if shard.entries.is_empty() || until < shard.earliest {
            shard.earliest = until;
        }
        shard.entries.insert(key, until);
        Seen::First
    }

    /// Proofs remembered now, live or not yet purged.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).entries.len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// 128 bits of SHA-256 over the thumbprint and the `jti`: a client choosing `jti`s cannot make
/// two proofs collide, and the entry stays small whatever the `jti`'s length.
fn entry_key(jkt: &str, jti: &str) -> u128 {
    let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    context.update(jkt.as_bytes());
    context.update(&[0]);
    context.update(jti.as_bytes());
    let digest = context.finish();
    let mut first = [0_u8; 16];
    first.copy_from_slice(&digest.as_ref()[..16]);
    u128::from_be_bytes(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_is_accepted_once_per_key_while_it_lives() {
        let store = ReplayStore::new(1000);
        assert_eq!(store.check("key-a", "jti-1", 400, 100), Seen::First);
        assert_eq!(store.check("key-a", "jti-1", 400, 200), Seen::Replayed);
        // The same jti from another key is another proof.
        assert_eq!(store.check("key-b", "jti-1", 400, 200), Seen::First);
        // Once it could no longer be accepted anyway, it may be forgotten.
        assert_eq!(store.check("key-a", "jti-1", 800, 401), Seen::First);
    }

    #[test]
    fn a_flood_fills_the_store_but_never_evicts_a_live_proof() {
        let store = ReplayStore::new(SHARDS * 4);
        assert_eq!(store.check("victim", "jti", 1000, 0), Seen::First);
        let mut full = 0;
        for i in 0..10 * SHARDS * 4 {
            if store.check("flood", &i.to_string(), 1000, 0) == Seen::Full {
                full += 1;
            }
        }
        assert!(full > 0, "the bound holds");
        assert!(store.len() <= SHARDS * 4, "{}", store.len());
        assert_eq!(store.check("victim", "jti", 1000, 500), Seen::Replayed);
        // Past their lifetime, the flood's entries make room again.
        assert_eq!(store.check("late", "jti", 2000, 1001), Seen::First);
    }
}
