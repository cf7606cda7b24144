//! [`Authenticator`]: a bearer token in, verified claims (or the reason for a refusal) out.
//!
//! The common case (the token's key is loaded, or the token was verified before) completes
//! without awaiting anything. Only a token whose `kid` is unknown, or a request while no keys
//! are loaded, waits for a (shared, rate-limited) key refresh.

use std::sync::Arc;

use actix_web::http::header::HeaderMap;

use crate::auth::bearer::{BearerError, bearer_token};
use crate::auth::cache::{Hit, TokenCache};
use crate::auth::claims::Claims;
use crate::auth::keys::VerificationKey;
use crate::auth::store::{JwksStore, Lookup};
use crate::auth::validator::{TokenHeader, TokenValidator};
use crate::error::{ApiError, Rejection};
use crate::metrics::{AuthOutcome, CacheResult, Metrics};

/// Validates bearer tokens against the key store, remembering the ones that passed. Lives in
/// app data, built once at start-up.
#[derive(Debug)]
pub struct Authenticator {
    validator: TokenValidator,
    keys: Arc<JwksStore>,
    cache: Option<TokenCache>,
    metrics: Arc<Metrics>,
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
}

impl Authenticator {
    pub fn new(
        validator: TokenValidator,
        keys: Arc<JwksStore>,
        cache: Option<TokenCache>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            validator,
            keys,
            cache,
            metrics,
        }
    }

    pub fn keys(&self) -> &Arc<JwksStore> {
        &self.keys
    }

    /// Tokens held by the verified-token cache (0 when it is off).
    pub fn cached_tokens(&self) -> u64 {
        self.cache.as_ref().map_or(0, TokenCache::len)
    }

    /// Everything that needs no waiting: header parsing, the cache, and the signature check
    /// when the key is loaded.
    pub(crate) fn attempt(&self, headers: &HeaderMap) -> Attempt {
        let token = match bearer_token(headers) {
            Ok(token) => token,
            Err(BearerError::Missing) => return Attempt::Done(Err(ApiError::MissingCredentials)),
            Err(BearerError::Malformed) => {
                return Attempt::Done(Err(ApiError::InvalidToken(Rejection::MalformedHeader)));
            }
        };
        // The size bound comes before anything else, hashing included.
        if token.len() > self.validator.max_token_bytes() {
            return Attempt::Done(Err(ApiError::InvalidToken(Rejection::TooLarge)));
        }
        if let Some(cache) = &self.cache
            && let Some(generation) = self.keys.usable_generation()
        {
            match cache.get(token, generation, self.keys.unix_now()) {
                Hit::Valid(claims) => {
                    self.metrics.observe_cache(CacheResult::hit);
                    return Attempt::Done(Ok(claims));
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
        match self.keys.lookup(&header.kid) {
            Lookup::Found(key, generation) => {
                Attempt::Done(self.verify(token, &header, &key, generation))
            }
            Lookup::Unknown | Lookup::NoKeys => Attempt::NeedsKeys(PendingToken {
                token: token.to_owned(),
                header,
            }),
            // The refresher is already retrying; waiting on it would only delay the 503.
            Lookup::Stale => Attempt::Done(Err(self.keys_unavailable())),
        }
    }

    /// Waits for a key refresh, then finishes what [`Authenticator::attempt`] began.
    pub(crate) async fn after_refresh(
        &self,
        pending: PendingToken,
    ) -> Result<Arc<Claims>, ApiError> {
        let PendingToken { token, header } = pending;
        self.keys.refresh_for_unknown_kid().await;
        match self.keys.lookup(&header.kid) {
            Lookup::Found(key, generation) => self.verify(&token, &header, &key, generation),
            Lookup::Unknown => {
                log::debug!(
                    "unknown kid {:?} (not in {})",
                    truncate(&header.kid),
                    self.keys.uri()
                );
                Err(ApiError::InvalidToken(Rejection::UnknownKey))
            }
            Lookup::NoKeys | Lookup::Stale => Err(self.keys_unavailable()),
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
            Err(_) => (AuthOutcome::error, ""),
        };
        self.metrics.observe_auth(outcome, reason);
    }

    fn keys_unavailable(&self) -> ApiError {
        ApiError::KeysUnavailable {
            retry_after_secs: self.keys.retry_after_secs(),
        }
    }

    /// The signature check and claims validation; a success is remembered.
    fn verify(
        &self,
        token: &str,
        header: &TokenHeader,
        key: &VerificationKey,
        generation: u64,
    ) -> Result<Arc<Claims>, ApiError> {
        self.metrics.observe_verification();
        let claims = Arc::new(
            self.validator
                .verify(token, header, key)
                .map_err(ApiError::InvalidToken)?,
        );
        if let Some(cache) = &self.cache {
            let weight = TokenCache::weigh(token.len(), &claims);
            cache.insert(token, Arc::clone(&claims), generation, weight);
        }
        Ok(claims)
    }
}

fn truncate(text: &str) -> &str {
    let mut end = text.len().min(64);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
