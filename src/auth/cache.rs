//! A bounded cache of tokens that passed full validation, so a token's RS256 signature is
//! checked once rather than on every request (as Envoy's jwt_authn does).
//!
//! What it does not change about security:
//! - only tokens that passed every check are cached, keyed by the whole token and found only
//!   by an exact match, so a different token (one changed byte) is a miss and gets full
//!   validation. The hash that picks the bucket (foldhash, seeded per process) needs no
//!   collision resistance: equality decides, and only issuer-signed tokens are ever inserted,
//!   so nobody can flood a bucket;
//! - `exp` and `nbf` are checked again on every hit, and an entry expires by itself at the
//!   token's `exp` (plus leeway) or after `cache.ttl_secs`, whichever comes first;
//! - an entry is tied to the generation of the key set that verified it: when the issuer's
//!   keys change (or go stale past `jwks.max_stale_secs`), no earlier entry is a hit any more;
//! - refused tokens are never cached, so a flood of invalid tokens cannot evict valid ones,
//!   and the cache holds at most `cache.max_entries` entries and at most `cache.max_bytes`
//!   bytes, each entry weighed by its token and claims size.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use foldhash::fast::RandomState;
use moka::Expiry;
use moka::sync::Cache;

use crate::auth::claims::Claims;
use crate::settings::CacheSettings;

/// A validated token's claims, and what its validity depends on.
#[derive(Debug)]
pub struct CachedToken {
    pub claims: Arc<Claims>,
    /// Which issuer's key set verified it (its index in the authenticator's issuers).
    pub issuer: usize,
    /// The key-set generation that verified it.
    pub generation: u64,
    exp: f64,
    nbf: Option<f64>,
    leeway: f64,
    /// What the entry counts against `cache.max_bytes`.
    weight: u32,
    /// When it was cached, and when `cache.ttl_secs` since then runs out (seconds since the
    /// epoch).
    cached_at: f64,
    until: f64,
}

/// What a cached token's time and key checks say now.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Valid,
    /// Its `exp` has passed: refuse it.
    Expired,
    /// Verified by a key set its issuer no longer uses (or while keys are stale), not valid
    /// yet (`nbf`), past `cache.ttl_secs`, or the clock reads earlier than when it was cached
    /// (stepped back: its age is unknown): validate it afresh.
    Recheck,
}

impl CachedToken {
    /// The checks a cached token passes again on every hit: the key set that verified it is
    /// still its issuer's usable one (`usable(i)`, see [`TokenCache::get`]), and its `exp`,
    /// `nbf` and `cache.ttl_secs` hold at `now` (seconds since the epoch).
    pub fn verdict(&self, now: f64, usable: impl Fn(usize) -> Option<u64>) -> Verdict {
        if usable(self.issuer) != Some(self.generation) {
            return Verdict::Recheck;
        }
        if self.exp + self.leeway < now {
            return Verdict::Expired;
        }
        if self.nbf.is_some_and(|nbf| nbf - self.leeway > now)
            || now > self.until
            || now < self.cached_at
        {
            return Verdict::Recheck;
        }
        Verdict::Valid
    }

    /// What it counts against `cache.max_bytes`.
    pub fn weight(&self) -> u32 {
        self.weight
    }

    /// A copy whose claims are its own, not shared with this entry.
    pub fn detached(&self) -> Self {
        Self {
            claims: Arc::new(Claims::clone(&self.claims)),
            ..*self
        }
    }
}

/// The outcome of a lookup.
#[derive(Debug)]
pub enum Hit {
    Valid(Arc<CachedToken>),
    /// Cached, but its `exp` has passed since: refuse it.
    Expired,
    Miss,
}

struct UntilExp {
    ttl: Duration,
}

impl Expiry<Arc<str>, Arc<CachedToken>> for UntilExp {
    fn expire_after_create(
        &self,
        _key: &Arc<str>,
        value: &Arc<CachedToken>,
        _created_at: Instant,
    ) -> Option<Duration> {
        let left = value.exp + value.leeway - unix_now();
        let until_exp = Duration::try_from_secs_f64(left.max(0.0)).unwrap_or(Duration::ZERO);
        Some(until_exp.min(self.ttl))
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The fixed cost of an entry: key, `Arc`s, the registered claims and moka's bookkeeping.
const ENTRY_OVERHEAD: usize = 512;

/// About the bytes a JSON value takes in memory once parsed, counted without serialising it.
fn json_size(value: &serde_json::Value) -> usize {
    use serde_json::Value;
    match value {
        Value::Null | Value::Bool(_) | Value::Number(_) => 8,
        Value::String(text) => 24 + text.len(),
        Value::Array(items) => 24 + items.iter().map(json_size).sum::<usize>(),
        Value::Object(members) => {
            48 + members
                .iter()
                .map(|(name, value)| 24 + name.len() + json_size(value))
                .sum::<usize>()
        }
    }
}

/// The verified-token cache. Shared by every worker.
pub struct TokenCache {
    entries: Cache<Arc<str>, Arc<CachedToken>, RandomState>,
    leeway: f64,
    /// `cache.ttl_secs`, in seconds.
    ttl: f64,
    /// Per issuer, the newest key-set generation seen; a newer one drops every entry.
    seen: Box<[AtomicU64]>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("entries", &self.entries.entry_count())
            .finish_non_exhaustive()
    }
}

impl TokenCache {
    /// A cache for tokens of `issuers` issuers.
    pub fn new(settings: &CacheSettings, leeway: Duration, issuers: usize) -> Self {
        // moka bounds one total weight. Weighing each entry at least max_bytes / max_entries
        // keeps both bounds: no more than max_entries entries, no more than max_bytes in all.
        let min_weight = settings.max_bytes.div_ceil(settings.max_entries.max(1));
        let min_weight = u32::try_from(min_weight).unwrap_or(u32::MAX);
        Self {
            entries: Cache::builder()
                .max_capacity(settings.max_bytes)
                .weigher(move |_key: &Arc<str>, entry: &Arc<CachedToken>| {
                    entry.weight.max(min_weight)
                })
                .expire_after(UntilExp { ttl: settings.ttl })
                .build_with_hasher(RandomState::default()),
            leeway: leeway.as_secs_f64(),
            ttl: settings.ttl.as_secs_f64(),
            seen: (0..issuers.max(1)).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// The cached claims of `token`, if they were verified by the key set its issuer uses now
    /// and their time claims still hold at `now` (seconds since the epoch). `generation(i)` is
    /// issuer `i`'s current key-set generation (0: none), `usable(i)` the same but `None`
    /// while its keys are missing or stale.
    pub fn get(
        &self,
        token: &str,
        now: f64,
        generation: impl Fn(usize) -> u64,
        usable: impl Fn(usize) -> Option<u64>,
    ) -> Hit {
        for (issuer, seen) in self.seen.iter().enumerate() {
            let current = generation(issuer);
            let last = seen.load(Ordering::Relaxed);
            if current > last
                && seen
                    .compare_exchange(last, current, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                // An issuer's keys changed: entries verified by an old set are dropped now.
                self.entries.invalidate_all();
            }
        }
        let Some(entry) = self.entries.get(token) else {
            return Hit::Miss;
        };
        match entry.verdict(now, &usable) {
            Verdict::Valid => Hit::Valid(entry),
            Verdict::Expired => {
                self.entries.invalidate(token);
                Hit::Expired
            }
            Verdict::Recheck => {
                if usable(entry.issuer) != Some(entry.generation) {
                    self.entries.invalidate(token);
                }
                Hit::Miss
            }
        }
    }

    /// What an entry for a token of `token_bytes` with `claims` costs in memory: a fixed
    /// overhead, the token itself (the key), and its custom claims three times over: the
    /// parsed form's maps, strings and allocator slack (make bench's large-token scenario
    /// measured about 1.5 times the twofold estimate).
    pub fn weigh(token_bytes: usize, claims: &Claims) -> u32 {
        let extra: usize = claims
            .extra
            .iter()
            .map(|(name, value)| name.len() + json_size(value))
            .sum();
        let weight = ENTRY_OVERHEAD + token_bytes + 3 * extra;
        u32::try_from(weight).unwrap_or(u32::MAX)
    }

    /// Remembers `token`, whose claims passed full validation with key-set `generation` of
    /// issuer `issuer`; `weight` is what [`TokenCache::weigh`] says of them.
    pub fn insert(
        &self,
        token: &str,
        claims: Arc<Claims>,
        (issuer, generation): (usize, u64),
        weight: u32,
    ) {
        let Some(exp) = claims.exp.as_ref().map(|e| e.as_f64()) else {
            return;
        };
        let nbf = claims.nbf.as_ref().map(|n| n.as_f64());
        let cached_at = unix_now();
        self.entries.insert(
            Arc::from(token),
            Arc::new(CachedToken {
                claims,
                issuer,
                generation,
                exp,
                nbf,
                leeway: self.leeway,
                weight,
                cached_at,
                until: cached_at + self.ttl,
            }),
        );
    }

    /// Entries held now (after pending evictions are applied).
    pub fn len(&self) -> u64 {
        self.entries.run_pending_tasks();
        self.entries.entry_count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings(max_entries: u64, max_bytes: u64) -> CacheSettings {
        CacheSettings {
            enabled: true,
            max_entries,
            max_bytes,
            ttl: Duration::from_secs(300),
        }
    }

    fn claims(padding: usize) -> Arc<Claims> {
        Arc::new(
            serde_json::from_value(json!({
                "iss": "https://issuer/", "aud": "api", "exp": unix_now() + 3600.0,
                "https://example.com/profile": "x".repeat(padding),
            }))
            .unwrap(),
        )
    }

    fn fill(cache: &TokenCache, count: u8, token_bytes: usize, padding: usize) {
        for n in 0..count {
            let claims = claims(padding);
            let weight = TokenCache::weigh(token_bytes, &claims);
            cache.insert(&n.to_string(), claims, (0, 1), weight);
        }
    }

    #[test]
    fn large_tokens_are_bounded_by_bytes_not_only_by_count() {
        // 8 KiB tokens with ~6 KiB of custom claims: about 20 KiB each.
        let cache = TokenCache::new(&settings(10_000, 200 << 10), Duration::ZERO, 1);
        fill(&cache, 100, 8 << 10, 6 << 10);
        let held = cache.len();
        assert!(
            (1..=10).contains(&held),
            "{held} entries of ~20 KiB in 200 KiB"
        );
    }

    #[test]
    fn small_tokens_are_still_bounded_by_count() {
        let cache = TokenCache::new(&settings(10, 1 << 30), Duration::ZERO, 1);
        fill(&cache, 100, 800, 0);
        let held = cache.len();
        assert!((1..=10).contains(&held), "{held} entries, max_entries 10");
    }

    #[test]
    fn an_entry_weighs_its_token_and_its_claims() {
        let small = TokenCache::weigh(800, &claims(0));
        let large = TokenCache::weigh(8 << 10, &claims(6 << 10));
        assert!(small < 2 << 10, "{small}");
        assert!(large > (8 << 10) + (6 << 10), "{large}");
    }
}
