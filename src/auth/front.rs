//! Each worker's own copies of the few verified tokens it sees most often, in front of the
//! shared [`TokenCache`](crate::auth::cache::TokenCache).
//!
//! A hit in the shared cache writes to memory every worker shares: the entry's and the claims'
//! reference counts, the entry's access time. When one token carries the traffic (a service
//! calling with its client-credentials token, a load test) two cores write the same cache lines
//! on every request, and each write waits for the line to come back from the other core:
//! `make bench` measured a protected request with one token at 1.5 µs more CPU than one with
//! 1000 distinct tokens. A front hit touches only this worker's memory.
//!
//! What it does not change about security: a front entry is a copy of a shared-cache entry
//! (only tokens that passed every check), found only by the whole token, and it passes the
//! same checks on every hit ([`CachedToken::verdict`]: the key set that verified it is still
//! its issuer's usable one, `exp`, `nbf`, `cache.ttl_secs`); anything else goes to the shared
//! cache, which decides. (When one issuer's keys change, the shared cache also drops the
//! other issuers' entries; their front copies stay, and would only be verified again by the
//! same unchanged keys.)
//!
//! Bounds: [`SLOTS`] entries per worker, each at most [`MAX_WEIGHT`] bytes as the shared cache
//! weighs it (larger tokens are not copied), so at most 64 KiB per worker. A token is copied
//! in only when it is the last one to have missed its slot, so a stream of distinct tokens
//! costs a hash and a comparison per request and no copies.

use std::cell::RefCell;
use std::hash::BuildHasher;
use std::sync::Arc;

use foldhash::fast::RandomState;

use crate::auth::cache::{CachedToken, Verdict};
use crate::auth::claims::Claims;

/// Entries per worker.
pub const SLOTS: usize = 16;
/// The largest entry copied in, by [`TokenCache::weigh`](crate::auth::cache::TokenCache::weigh).
pub const MAX_WEIGHT: u32 = 4096;

/// One worker's front: put in each worker's app data, never shared between threads.
#[derive(Debug)]
pub struct FrontCache {
    hasher: RandomState,
    slots: RefCell<Vec<Slot>>,
}

#[derive(Debug, Default)]
struct Slot {
    /// The hash of the last token that missed here.
    missed: u64,
    entry: Option<(u64, Box<str>, CachedToken)>,
}

/// A token not found in the front, and where it would go.
#[derive(Debug, Clone, Copy)]
pub struct Missed {
    hash: u64,
}

impl Default for FrontCache {
    fn default() -> Self {
        Self::new()
    }
}

impl FrontCache {
    pub fn new() -> Self {
        Self {
            hasher: RandomState::default(),
            slots: RefCell::new((0..SLOTS).map(|_| Slot::default()).collect()),
        }
    }

    /// The claims of `token` if this worker holds a copy that passes every check at `now`
    /// (see [`CachedToken::verdict`]); a copy that does not is dropped.
    pub fn get(
        &self,
        token: &str,
        now: f64,
        usable: impl Fn(usize) -> Option<u64>,
    ) -> Result<Arc<Claims>, Missed> {
        let hash = self.hasher.hash_one(token);
        let missed = Missed { hash };
        let Ok(mut slots) = self.slots.try_borrow_mut() else {
            return Err(missed);
        };
        let Some(slot) = slots.get_mut(index(hash)) else {
            return Err(missed);
        };
        let found = match &slot.entry {
            Some((h, held, entry)) if *h == hash && **held == *token => entry.verdict(now, usable),
            _ => return Err(missed),
        };
        match (found, &slot.entry) {
            (Verdict::Valid, Some((_, _, entry))) => Ok(Arc::clone(&entry.claims)),
            _ => {
                slot.entry = None;
                Err(missed)
            }
        }
    }

    /// After a miss here and a valid hit in the shared cache: copies `entry` in if `token`
    /// was also the last token to miss its slot and is small enough, else remembers it as
    /// that last miss.
    pub fn offer(&self, missed: Missed, token: &str, entry: &CachedToken) {
        let Ok(mut slots) = self.slots.try_borrow_mut() else {
            return;
        };
        let Some(slot) = slots.get_mut(index(missed.hash)) else {
            return;
        };
        if slot.missed != missed.hash {
            slot.missed = missed.hash;
            return;
        }
        if entry.weight() <= MAX_WEIGHT {
            slot.entry = Some((missed.hash, Box::from(token), entry.detached()));
        }
    }

    /// Tokens held now.
    pub fn len(&self) -> usize {
        self.slots.try_borrow().map_or(0, |slots| {
            slots.iter().filter(|s| s.entry.is_some()).count()
        })
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn index(hash: u64) -> usize {
    (hash % SLOTS as u64) as usize
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use serde_json::json;

    use super::*;
    use crate::auth::cache::{Hit, TokenCache};
    use crate::settings::CacheSettings;

    const TTL: f64 = 300.0;

    fn now() -> f64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
    }

    /// A shared cache holding `token` (claims with `padding` bytes of custom claims, `exp` in
    /// an hour), verified by key-set generation 1 of issuer 0.
    fn shared(token: &str, padding: usize) -> TokenCache {
        let cache = empty(100, 1 << 20);
        let claims: Claims = serde_json::from_value(json!({
            "iss": "https://issuer/", "aud": "api", "exp": now() + 3600.0,
            "https://example.com/profile": "x".repeat(padding),
        }))
        .unwrap();
        let weight = TokenCache::weigh(token.len(), &claims);
        cache.insert(token, Arc::new(claims), (0, 1), weight);
        cache
    }

    /// An empty shared cache for one issuer, which has seen its key-set generation 1 (a cache
    /// learns of a generation at its first lookup, and drops what came before).
    fn empty(max_entries: u64, max_bytes: u64) -> TokenCache {
        let cache = TokenCache::new(
            &CacheSettings {
                enabled: true,
                max_entries,
                max_bytes,
                ttl: Duration::from_secs_f64(TTL),
            },
            Duration::ZERO,
            1,
        );
        let _ = cache.get("", now(), |_| 1, current);
        cache
    }

    fn current(_: usize) -> Option<u64> {
        Some(1)
    }

    /// What a request does: the front, then on a miss the shared cache and an offer.
    fn lookup(front: &FrontCache, cache: &TokenCache, token: &str, at: f64) -> Option<Arc<Claims>> {
        match front.get(token, at, current) {
            Ok(claims) => Some(claims),
            Err(missed) => match cache.get(token, at, |_| 1, current) {
                Hit::Valid(entry) => {
                    front.offer(missed, token, &entry);
                    Some(Arc::clone(&entry.claims))
                }
                _ => None,
            },
        }
    }

    /// Two lookups of `token`: the second copies it into the front.
    fn copy_in(front: &FrontCache, cache: &TokenCache, token: &str) {
        lookup(front, cache, token, now());
        lookup(front, cache, token, now());
        assert!(
            front.get(token, now(), current).is_ok(),
            "{token} not copied in"
        );
    }

    #[test]
    fn a_token_is_copied_in_at_its_second_shared_hit_and_then_served_from_the_front() {
        let cache = shared("token", 0);
        let front = FrontCache::new();
        assert!(lookup(&front, &cache, "token", now()).is_some());
        assert!(front.is_empty(), "copied at the first hit");
        assert!(lookup(&front, &cache, "token", now()).is_some());
        assert_eq!(front.len(), 1);
        assert!(front.get("token", now(), current).is_ok());
    }

    #[test]
    fn the_front_hands_out_its_own_claims_not_the_shared_entrys() {
        let cache = shared("token", 0);
        let front = FrontCache::new();
        lookup(&front, &cache, "token", now());
        let from_shared = lookup(&front, &cache, "token", now()).unwrap();
        let from_front = front.get("token", now(), current).unwrap();
        assert_eq!(from_front, from_shared);
        assert!(!Arc::ptr_eq(&from_front, &from_shared));
    }

    #[test]
    fn only_the_whole_token_finds_a_copy() {
        let cache = shared("token", 0);
        let front = FrontCache::new();
        copy_in(&front, &cache, "token");
        for other in ["tokeN", "token ", "toke", ""] {
            assert!(front.get(other, now(), current).is_err(), "{other:?}");
        }
    }

    #[test]
    fn a_copy_verified_by_keys_its_issuer_no_longer_uses_misses_and_is_dropped() {
        let cache = shared("token", 0);
        let front = FrontCache::new();
        copy_in(&front, &cache, "token");
        assert!(front.get("token", now(), |_| Some(2)).is_err(), "rotated");
        assert!(front.is_empty());
        copy_in(&front, &cache, "token");
        assert!(front.get("token", now(), |_| None).is_err(), "stale keys");
        assert!(front.is_empty());
    }

    #[test]
    fn a_copy_past_its_exp_or_its_ttl_misses() {
        let cache = shared("token", 0);
        let front = FrontCache::new();
        copy_in(&front, &cache, "token");
        assert!(front.get("token", now() + 3601.0, current).is_err(), "exp");
        copy_in(&front, &cache, "token");
        assert!(
            front.get("token", now() + TTL + 1.0, current).is_err(),
            "ttl"
        );
        assert!(front.is_empty());
    }

    #[test]
    fn a_copy_is_rechecked_when_the_clock_reads_earlier_than_when_it_was_cached() {
        let cache = shared("token", 0);
        let front = FrontCache::new();
        copy_in(&front, &cache, "token");
        // A wall clock stepped back could otherwise stretch the copy's TTL.
        assert!(front.get("token", now() - 60.0, current).is_err());
        assert!(front.is_empty());
    }

    #[test]
    fn a_token_heavier_than_the_bound_is_never_copied() {
        let cache = shared("token", MAX_WEIGHT as usize);
        let front = FrontCache::new();
        for _ in 0..3 {
            assert!(lookup(&front, &cache, "token", now()).is_some());
        }
        assert!(front.is_empty());
    }

    #[test]
    fn a_stream_of_distinct_tokens_copies_nothing() {
        let tokens: Vec<String> = (0..1000).map(|n| format!("token-{n}")).collect();
        let cache = empty(2000, 16 << 20);
        let front = FrontCache::new();
        for token in &tokens {
            let claims: Claims = serde_json::from_value(json!({
                "iss": "https://issuer/", "aud": "api", "exp": now() + 3600.0,
            }))
            .unwrap();
            let weight = TokenCache::weigh(token.len(), &claims);
            cache.insert(token, Arc::new(claims), (0, 1), weight);
        }
        for _ in 0..3 {
            for token in &tokens {
                assert!(lookup(&front, &cache, token, now()).is_some());
            }
        }
        // 1000 tokens over 16 slots: a token comes back to its slot after ~60 others.
        assert!(front.len() <= 1, "{} copies", front.len());
    }
}
