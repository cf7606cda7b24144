//! [`Authenticator`]: a bearer token in, verified claims (or the reason for a refusal) out.
//!
//! A token's `iss`, read before anything else is done with it, must be exactly one of the
//! configured issuers: only then are that issuer's keys looked up (or fetched). A token naming
//! any other issuer causes no request anywhere.
//!
//! The common case (the token's key is loaded, or the token was verified before) completes
//! without awaiting anything. Only a token whose `kid` is unknown, or a request while no keys
//! are loaded, waits for a (shared, rate-limited) key refresh.

use std::sync::Arc;

use actix_web::http::header::HeaderMap;

use crate::auth::bearer::{BearerError, credentials};
use crate::auth::cache::{Hit, TokenCache};
use crate::auth::claims::{Claims, PermissionsClaim};
use crate::auth::dpop::{Dpop, Scheme};
use crate::auth::front::FrontCache;
use crate::auth::keys::VerificationKey;
use crate::auth::store::{JwksStore, Lookup};
use crate::auth::validator::{TokenHeader, TokenValidator};
use crate::error::{ApiError, Rejection};
use crate::metrics::{AuthOutcome, CacheResult, KeyGauges, Metrics};

/// Validates bearer tokens against the key store, remembering the ones that passed. Lives in
/// app data, built once at start-up.
#[derive(Debug)]
pub struct Authenticator {
    validator: TokenValidator,
    /// One key store per trusted issuer; never empty.
    issuers: Vec<Arc<JwksStore>>,
    cache: Option<TokenCache>,
    metrics: Arc<Metrics>,
    permissions: PermissionsClaim,
    admin_permission: String,
    dpop: Dpop,
}

/// The outcome of the synchronous part of authentication.
pub(crate) enum Attempt {
    Done(Result<Arc<Claims>, ApiError>),
    /// The key is not loaded: wait for a refresh ([`Authenticator::after_refresh`]), then look again.
    NeedsKeys(PendingToken),
}

/// A token that waits for its signing key.
pub(crate) struct PendingToken {
    token: String,
    header: TokenHeader,
    /// Its issuer's index in [`Authenticator::issuers`].
    issuer: usize,
}

impl Authenticator {
    /// Takes `issuers` (at least one key store, by issuer) and where permissions are.
    ///
    /// # Panics
    /// When `issuers` is empty: settings never produce that, so it is a programming error.
    pub fn new(
        validator: TokenValidator,
        issuers: Vec<Arc<JwksStore>>,
        cache: Option<TokenCache>,
        metrics: Arc<Metrics>,
        (permissions, admin_permission): (PermissionsClaim, String),
        dpop: Dpop,
    ) -> Self {
        assert!(!issuers.is_empty(), "an Authenticator needs an issuer");
        Self {
            validator,
            issuers,
            cache,
            metrics,
            permissions,
            admin_permission,
            dpop,
        }
    }

    /// DPoP: the schemes accepted, and the proofs of bound tokens.
    pub fn dpop(&self) -> &Dpop {
        &self.dpop
    }

    /// The scheme and token of the request's `Authorization` header, if the scheme is one
    /// `auth.dpop` accepts.
    pub(crate) fn credentials<'h>(
        &self,
        headers: &'h HeaderMap,
    ) -> Result<(Scheme, &'h str), ApiError> {
        let (scheme, token) = match credentials(headers) {
            Ok(found) => found,
            Err(BearerError::Missing) => return Err(ApiError::MissingCredentials),
            Err(BearerError::Malformed) => {
                return Err(ApiError::InvalidToken(Rejection::MalformedHeader));
            }
        };
        self.dpop.admit_scheme(scheme)?;
        Ok((scheme, token))
    }

    /// The first issuer's key store (the only one, unless several issuers are configured).
    pub fn keys(&self) -> &Arc<JwksStore> {
        &self.issuers[0]
    }

    /// Every issuer's key store, in configuration order.
    pub fn key_stores(&self) -> &[Arc<JwksStore>] {
        &self.issuers
    }

    /// The Prometheus exposition, with the key gauges read now: the keys of every issuer, and
    /// the time since the oldest of their last successful fetches.
    pub fn render_metrics(&self) -> String {
        let statuses: Vec<_> = self.issuers.iter().map(|store| store.status()).collect();
        let keys = statuses.iter().map(|s| s.kids.len()).sum();
        let since = if statuses.iter().any(|s| s.since_last_success.is_none()) {
            None
        } else {
            statuses
                .iter()
                .filter_map(|s| s.since_last_success)
                .max()
                .map(|d| d.as_secs_f64())
        };
        let suppressed = statuses
            .iter()
            .filter_map(|s| s.refetch_suppressed_for)
            .max()
            .map_or(0.0, |d| d.as_secs_f64());
        self.metrics.render(KeyGauges {
            keys_loaded: keys,
            seconds_since_success: since,
            refetch_suppressed_secs: suppressed,
        })
    }

    /// Where a token's permissions are read (`auth.permissions_claim`).
    pub fn permissions(&self) -> &PermissionsClaim {
        &self.permissions
    }

    /// What `/api/messages/admin` requires (`auth.admin_permission`).
    pub fn admin_permission(&self) -> &str {
        &self.admin_permission
    }

    /// Whether verified tokens are cached (`cache.enabled`).
    pub fn caches_tokens(&self) -> bool {
        self.cache.is_some()
    }

    /// Tokens held by the verified-token cache (0 when it is off).
    pub fn cached_tokens(&self) -> u64 {
        self.cache.as_ref().map_or(0, TokenCache::len)
    }

    /// Everything that needs no waiting for `token` (see [`Authenticator::credentials`]): the
    /// cache, and the signature check when the key is loaded.
    ///
    /// `front` is the calling worker's [`FrontCache`], looked in before the shared cache.
    pub(crate) fn attempt(&self, token: &str, front: Option<&FrontCache>) -> Attempt {
        // The size bound comes before anything else, hashing included.
        if token.len() > self.validator.max_token_bytes() {
            return Attempt::Done(Err(ApiError::InvalidToken(Rejection::TooLarge)));
        }
        if let Some(cache) = &self.cache {
            let issuers = &self.issuers;
            let now = self.keys().unix_now();
            let usable = |i: usize| issuers.get(i).and_then(|s| s.usable_generation());
            let missed = match front.map(|f| f.get(token, now, usable)) {
                Some(Ok(claims)) => {
                    self.metrics.observe_cache(CacheResult::hit);
                    return Attempt::Done(Ok(claims));
                }
                Some(Err(missed)) => Some(missed),
                None => None,
            };
            let hit = cache.get(
                token,
                now,
                |i| issuers.get(i).map_or(0, |s| s.generation()),
                usable,
            );
            match hit {
                Hit::Valid(entry) => {
                    self.metrics.observe_cache(CacheResult::hit);
                    if let (Some(front), Some(missed)) = (front, missed) {
                        front.offer(missed, token, &entry);
                    }
                    return Attempt::Done(Ok(Arc::clone(&entry.claims)));
                }
                Hit::Expired => {
                    self.metrics.observe_cache(CacheResult::expired);
                    return Attempt::Done(Err(ApiError::InvalidToken(Rejection::Expired)));
                }
                Hit::Miss => self.metrics.observe_cache(CacheResult::miss),
            }
        }
        let header = match self.validator.inspect(token) {
            Ok(header) => header,
            Err(rejection) => return Attempt::Done(Err(ApiError::InvalidToken(rejection))),
        };
        let issuer = match self.issuer_of(token) {
            Ok(issuer) => issuer,
            Err(rejection) => return Attempt::Done(Err(ApiError::InvalidToken(rejection))),
        };
        let keys = &self.issuers[issuer];
        match keys.lookup(&header.kid) {
            Lookup::Found(key, generation) => {
                Attempt::Done(self.verify(token, &header, &key, (issuer, generation)))
            }
            Lookup::Unknown | Lookup::NoKeys => Attempt::NeedsKeys(PendingToken {
                token: token.to_owned(),
                header,
                issuer,
            }),
            // The refresher is already retrying; waiting on it would only delay the 503.
            Lookup::Stale => Attempt::Done(Err(keys_unavailable(keys))),
        }
    }

    /// The index of the token's issuer, if its `iss` is exactly one of the configured issuers.
    fn issuer_of(&self, token: &str) -> Result<usize, Rejection> {
        let iss = self.validator.issuer_of(token)?;
        self.issuers
            .iter()
            .position(|store| store.issuer() == iss)
            .ok_or(Rejection::WrongIssuer)
    }

    /// Waits for a key refresh, then finishes what [`Authenticator::attempt`] began.
    pub(crate) async fn after_refresh(
        &self,
        pending: PendingToken,
    ) -> Result<Arc<Claims>, ApiError> {
        let PendingToken {
            token,
            header,
            issuer,
        } = pending;
        let keys = &self.issuers[issuer];
        let current = keys.refresh_for_unknown_kid().await;
        match keys.lookup(&header.kid) {
            Lookup::Found(key, generation) => {
                self.verify(&token, &header, &key, (issuer, generation))
            }
            Lookup::Unknown if current => {
                log::debug!(
                    "unknown kid {:?} (not in {})",
                    truncate(&header.kid),
                    keys.uri()
                );
                Err(ApiError::InvalidToken(Rejection::UnknownKey))
            }
            // The issuer could not be asked whether it has this key: not the client's fault.
            Lookup::Unknown => {
                keys.note_unchecked_kid();
                log::debug!(
                    "kid {:?} is not in the keys of {} and the issuer could not be asked",
                    truncate(&header.kid),
                    keys.issuer()
                );
                Err(ApiError::UncheckedKey {
                    retry_after_secs: keys.retry_after_unchecked_secs(),
                })
            }
            Lookup::NoKeys | Lookup::Stale => Err(keys_unavailable(keys)),
        }
    }

    /// Counts a decision: `Ok` for allowed, else the error answered.
    pub(crate) fn observe(&self, decision: Result<(), &ApiError>) {
        let (outcome, reason) = match decision {
            Ok(()) => (AuthOutcome::allowed, ""),
            Err(ApiError::MissingCredentials) => (AuthOutcome::missing_token, ""),
            Err(ApiError::InvalidToken(reason)) => (AuthOutcome::invalid_token, reason.code()),
            Err(ApiError::InsufficientPermission { .. }) => {
                (AuthOutcome::insufficient_permission, "")
            }
            Err(ApiError::KeysUnavailable { .. }) => (AuthOutcome::keys_unavailable, ""),
            Err(ApiError::UncheckedKey { .. }) => {
                (AuthOutcome::keys_unavailable, "unknown_kid_unchecked")
            }
            Err(ApiError::InvalidProof(reason)) => (AuthOutcome::invalid_dpop_proof, reason.code()),
            Err(ApiError::UseDpopNonce { .. }) => (AuthOutcome::use_dpop_nonce, ""),
            Err(ApiError::ProofsUnchecked) => (AuthOutcome::proofs_unchecked, ""),
            Err(ApiError::Challenged { error, .. }) => return self.observe(Err(error)),
            Err(_) => (AuthOutcome::error, ""),
        };
        self.metrics.observe_auth(outcome, reason);
    }

    /// The signature check and claims validation; a success is remembered.
    fn verify(
        &self,
        token: &str,
        header: &TokenHeader,
        key: &VerificationKey,
        verified_by: (usize, u64),
    ) -> Result<Arc<Claims>, ApiError> {
        self.metrics.observe_verification();
        let claims = Arc::new(
            self.validator
                .verify(token, header, key)
                .map_err(ApiError::InvalidToken)?,
        );
        // The verified `iss` is the one whose keys were used (jsonwebtoken accepts any of the
        // configured issuers): belt and braces against a parser that read it differently.
        let issuer = self.issuers.get(verified_by.0).map(|s| s.issuer());
        if claims.iss.as_deref() != issuer {
            return Err(ApiError::InvalidToken(Rejection::WrongIssuer));
        }
        if let Some(cache) = &self.cache {
            let weight = TokenCache::weigh(token.len(), &claims);
            cache.insert(token, Arc::clone(&claims), verified_by, weight);
        }
        Ok(claims)
    }
}

/// The 503 of an issuer without fresh keys, with its `Retry-After`.
fn keys_unavailable(keys: &JwksStore) -> ApiError {
    ApiError::KeysUnavailable {
        retry_after_secs: keys.retry_after_secs(),
    }
}

fn truncate(text: &str) -> &str {
    let mut end = text.len().min(64);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
