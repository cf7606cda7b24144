//! Request extractors: [`Authenticated`] for any valid token, [`RequirePermission`] for a valid
//! token that also grants a permission named in the extractor's type.
//!
//! The common case (the token's key is already loaded) completes without awaiting anything.
//! Only a token whose `kid` is unknown, or a request while no keys are loaded, waits for a
//! (shared, rate-limited) key refresh.

use std::marker::PhantomData;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::{Either, LocalBoxFuture, Ready, ready};

use crate::auth::bearer::{BearerError, bearer_token};
use crate::auth::cache::{Hit, TokenCache, TokenKey};
use crate::auth::claims::Claims;
use crate::auth::keys::VerificationKey;
use crate::auth::store::{JwksStore, Lookup};
use crate::auth::validator::{TokenHeader, TokenValidator};
use crate::error::{ApiError, Rejection};
use crate::metrics::{CacheResult, Metrics};
use crate::request_id::RequestId;

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
enum Attempt {
    Done(Result<Arc<Claims>, ApiError>),
    /// The key is not loaded: wait for a refresh, then look again.
    NeedsKeys {
        token: String,
        header: TokenHeader,
        cache_key: Option<TokenKey>,
    },
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

    fn attempt(&self, req: &HttpRequest) -> Attempt {
        let token = match bearer_token(req.headers()) {
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
        let cache_key = self.cache.as_ref().map(|_| TokenCache::key(token));
        if let (Some(cache), Some(key)) = (&self.cache, &cache_key)
            && let Some(generation) = self.keys.usable_generation()
        {
            match cache.get(key, generation, self.keys.unix_now()) {
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
                Attempt::Done(self.verify(token, &header, &key, generation, cache_key))
            }
            Lookup::Unknown | Lookup::NoKeys => Attempt::NeedsKeys {
                token: token.to_owned(),
                header,
                cache_key,
            },
            // The refresher is already retrying; waiting on it would only delay the 503.
            Lookup::Stale => Attempt::Done(Err(ApiError::KeysUnavailable {
                retry_after_secs: self.keys.retry_after_secs(),
            })),
        }
    }

    /// The signature check and claims validation; a success is remembered.
    fn verify(
        &self,
        token: &str,
        header: &TokenHeader,
        key: &VerificationKey,
        generation: u64,
        cache_key: Option<TokenKey>,
    ) -> Result<Arc<Claims>, ApiError> {
        self.metrics.observe_verification();
        let claims = Arc::new(
            self.validator
                .verify(token, header, key)
                .map_err(ApiError::InvalidToken)?,
        );
        if let (Some(cache), Some(cache_key)) = (&self.cache, cache_key) {
            cache.insert(cache_key, Arc::clone(&claims), generation);
        }
        Ok(claims)
    }

    async fn after_refresh(
        &self,
        token: &str,
        header: &TokenHeader,
        cache_key: Option<TokenKey>,
    ) -> Result<Arc<Claims>, ApiError> {
        self.keys.refresh_for_unknown_kid().await;
        match self.keys.lookup(&header.kid) {
            Lookup::Found(key, generation) => {
                self.verify(token, header, &key, generation, cache_key)
            }
            Lookup::Unknown => {
                log::debug!(
                    "unknown kid {:?} (not in {})",
                    truncate(&header.kid),
                    self.keys.uri()
                );
                Err(ApiError::InvalidToken(Rejection::UnknownKey))
            }
            Lookup::NoKeys | Lookup::Stale => Err(ApiError::KeysUnavailable {
                retry_after_secs: self.keys.retry_after_secs(),
            }),
        }
    }
}

fn truncate(text: &str) -> &str {
    let mut end = text.len().min(64);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The future every extractor here returns: ready at once in the common case.
pub type AuthFuture<T> =
    Either<Ready<Result<T, ApiError>>, LocalBoxFuture<'static, Result<T, ApiError>>>;

/// Runs authentication for `req` and hands the claims to `finish`.
fn extract<T: 'static>(
    req: &HttpRequest,
    finish: fn(Arc<Claims>) -> Result<T, ApiError>,
) -> AuthFuture<T> {
    let Some(auth) = req.app_data::<web::Data<Authenticator>>().cloned() else {
        log::error!("no Authenticator in app data: the app factory was not used");
        return Either::Left(ready(Err(ApiError::Internal)));
    };
    match auth.attempt(req) {
        Attempt::Done(result) => Either::Left(ready(record(&auth, req, result.and_then(finish)))),
        Attempt::NeedsKeys {
            token,
            header,
            cache_key,
        } => {
            let req = req.clone();
            Either::Right(Box::pin(async move {
                let result = auth
                    .after_refresh(&token, &header, cache_key)
                    .await
                    .and_then(finish);
                record(&auth, &req, result)
            }))
        }
    }
}

/// Counts the decision and logs a refusal: one line with the reason and the request id,
/// never the token.
fn record<T>(
    auth: &Authenticator,
    req: &HttpRequest,
    result: Result<T, ApiError>,
) -> Result<T, ApiError> {
    auth.metrics.observe_auth(result.as_ref().map(|_| ()));
    if let Err(error) = &result {
        let path = req.path();
        let id = RequestId::of(req);
        match error {
            ApiError::InvalidToken(reason) => {
                log::info!("refused {path} id={id}: bad credentials: {reason}")
            }
            ApiError::MissingCredentials => log::debug!("refused {path} id={id}: no bearer token"),
            ApiError::InsufficientPermission { required } => {
                log::info!("refused {path} id={id}: token lacks permission {required}")
            }
            ApiError::KeysUnavailable { .. } => {
                log::warn!("refused {path} id={id}: no fresh signing keys")
            }
            _ => {}
        }
    }
    result
}

/// A request carrying a valid access token.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Arc<Claims>);

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = AuthFuture<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        extract(req, |claims| Ok(Authenticated(claims)))
    }
}

/// A permission a route can demand in its extractor's type.
pub trait Permission: 'static {
    const NAME: &'static str;
}

/// `read:admin-messages`, required by `/api/messages/admin`.
#[derive(Debug)]
pub struct ReadAdminMessages;

impl Permission for ReadAdminMessages {
    const NAME: &'static str = "read:admin-messages";
}

/// A request carrying a valid access token whose `permissions` array holds `P::NAME`.
/// A valid token without it is answered 403 before the handler runs.
#[derive(Debug)]
pub struct RequirePermission<P: Permission> {
    claims: Arc<Claims>,
    permission: PhantomData<P>,
}

impl<P: Permission> RequirePermission<P> {
    pub fn claims(&self) -> &Claims {
        &self.claims
    }
}

impl<P: Permission> FromRequest for RequirePermission<P> {
    type Error = ApiError;
    type Future = AuthFuture<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        extract(req, |claims| {
            if claims.has_permission(P::NAME) {
                Ok(RequirePermission {
                    claims,
                    permission: PhantomData,
                })
            } else {
                Err(ApiError::InsufficientPermission { required: P::NAME })
            }
        })
    }
}
