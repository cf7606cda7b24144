//! The request extractor [`Authenticated`]: the verified claims of the request's bearer token.
//!
//! On a route whose [`Policy`](crate::auth::policy::Policy) demands a token, the policy's
//! middleware has already authenticated the request and the extractor only hands the claims
//! over. Anywhere else it validates the token itself, so a handler that asks for claims
//! never gets unverified ones.

use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use futures_util::future::{Either, LocalBoxFuture, Ready, ready};

use crate::auth::authenticator::{Attempt, Authenticator};
use crate::auth::claims::Claims;
use crate::auth::dpop::Scheme;
use crate::auth::front::FrontCache;
use crate::error::ApiError;
use crate::request_id::RequestId;

/// The future of [`authenticate`]: ready at once unless a key refresh must be awaited.
pub type AuthFuture<T> =
    Either<Ready<Result<T, ApiError>>, LocalBoxFuture<'static, Result<T, ApiError>>>;

/// Authenticates `req` and hands the claims to `decide`, which may still refuse them (a
/// missing permission). A DPoP-bound token's proof is checked on every request, after the
/// token. Every decision is counted, and a refusal logged with its reason.
pub fn authenticate<T: 'static>(
    req: &HttpRequest,
    decide: impl FnOnce(Arc<Claims>, &Authenticator) -> Result<T, ApiError> + 'static,
) -> AuthFuture<T> {
    // Borrowed, not cloned, unless the request must wait: a clone is a write to the count
    // every worker shares, on every request.
    let Some(auth) = req.app_data::<web::Data<Authenticator>>() else {
        log::error!("no Authenticator in app data: the app factory was not used");
        return Either::Left(ready(Err(ApiError::Internal)));
    };
    let (scheme, token) = match auth.credentials(req.headers()) {
        Ok(found) => found,
        Err(error) => {
            let scheme = None;
            return Either::Left(ready(record(auth, req, Err(error), scheme)));
        }
    };
    match auth.attempt(token, req.app_data::<FrontCache>()) {
        Attempt::Done(result) => {
            let result = result
                .and_then(|claims| bound(auth, req, scheme, token, claims))
                .and_then(|claims| decide(claims, auth));
            Either::Left(ready(record(auth, req, result, Some(scheme))))
        }
        Attempt::NeedsKeys(pending) => {
            let auth = web::Data::clone(auth);
            let req = req.clone();
            let token = token.to_owned();
            Either::Right(Box::pin(async move {
                let result = auth
                    .after_refresh(pending)
                    .await
                    .and_then(|claims| bound(&auth, &req, scheme, &token, claims))
                    .and_then(|claims| decide(claims, &auth));
                record(&auth, &req, result, Some(scheme))
            }))
        }
    }
}

/// The claims, once the token's DPoP binding (if any) is proven.
fn bound(
    auth: &Authenticator,
    req: &HttpRequest,
    scheme: Scheme,
    token: &str,
    claims: Arc<Claims>,
) -> Result<Arc<Claims>, ApiError> {
    auth.dpop().check(req, scheme, token, &claims, || {
        auth.keys().unix_now().max(0.0) as u64
    })?;
    Ok(claims)
}

/// Counts the decision and logs a refusal: one line with the reason and the request id,
/// never the token.
fn record<T>(
    auth: &Authenticator,
    req: &HttpRequest,
    result: Result<T, ApiError>,
    scheme: Option<Scheme>,
) -> Result<T, ApiError> {
    auth.observe(result.as_ref().map(|_| ()));
    if let Err(error) = &result {
        let path = req.path();
        let id = RequestId::of(req);
        match error {
            ApiError::InvalidToken(reason) => {
                log::info!("refused {path} id={id}: bad credentials: {reason}")
            }
            ApiError::MissingCredentials => log::debug!("refused {path} id={id}: no bearer token"),
            ApiError::InsufficientPermission { required } => {
                log::info!(
                    "refused {path} id={id}: token lacks permission {}",
                    required.join(" ")
                )
            }
            ApiError::KeysUnavailable { .. } => {
                if let Some(unlogged) = KEYS_WARNING.allow() {
                    log::warn!(
                        "refused {path} id={id}: no fresh signing keys; /readyz names the issuer, \
                         and the fetch error is the \"fetching signing keys from … failed\" line \
                         of hello_world_api::auth::store ({unlogged} more such refusals since the \
                         last of these lines)"
                    )
                }
            }
            ApiError::UncheckedKey { .. } => {
                if let Some(unlogged) = UNCHECKED_WARNING.allow() {
                    log::warn!(
                        "refused {path} id={id}: the token's signing key is not among the \
                         issuer's last keys and the issuer could not be asked for new ones \
                         (503, not 401: the token may be good); /readyz counts these ({unlogged} \
                         more such refusals since the last of these lines)"
                    )
                }
            }
            ApiError::InvalidProof(reason) => {
                log::info!("refused {path} id={id}: bad DPoP proof: {reason}")
            }
            ApiError::UseDpopNonce { .. } => {
                log::debug!("refused {path} id={id}: DPoP proof without a current nonce")
            }
            ApiError::ProofsUnchecked => {
                log::warn!(
                    "refused {path} id={id}: the DPoP replay store is full of live proofs \
                     (raise auth.dpop_replay_capacity)"
                )
            }
            _ => {}
        }
    }
    result.map_err(|error| auth.dpop().challenge(error, scheme))
}

/// At most one "no fresh signing keys" line every 10 s: during an outage every protected
/// request is refused for the same reason, and the fetch error is logged by the key store.
static KEYS_WARNING: RateLimit = RateLimit::new(10);

/// Likewise for tokens whose new `kid` could not be checked during an outage.
static UNCHECKED_WARNING: RateLimit = RateLimit::new(10);

/// Lets a log line through at most once every `every` seconds, counting the others.
struct RateLimit {
    every: u64,
    /// Seconds since `START` of the last line let through, plus one (0: none yet).
    last: std::sync::atomic::AtomicU64,
    unlogged: std::sync::atomic::AtomicU64,
}

static START: std::sync::LazyLock<std::time::Instant> =
    std::sync::LazyLock::new(std::time::Instant::now);

impl RateLimit {
    const fn new(every: u64) -> Self {
        Self {
            every,
            last: std::sync::atomic::AtomicU64::new(0),
            unlogged: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// `Some(lines held back since the last one)` when a line may be logged now.
    fn allow(&self) -> Option<u64> {
        use std::sync::atomic::Ordering::Relaxed;
        let now = START.elapsed().as_secs() + 1;
        let last = self.last.load(Relaxed);
        if last != 0 && now < last + self.every
            || self
                .last
                .compare_exchange(last, now, Relaxed, Relaxed)
                .is_err()
        {
            self.unlogged.fetch_add(1, Relaxed);
            return None;
        }
        Some(self.unlogged.swap(0, Relaxed))
    }
}

/// A request carrying a valid access token: the handler's typed view of its claims.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Arc<Claims>);

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = AuthFuture<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        // Put there by the route's policy, which authenticated this very request.
        if let Some(claims) = req.extensions().get::<Authenticated>() {
            return Either::Left(ready(Ok(claims.clone())));
        }
        authenticate(req, |claims, _| Ok(Authenticated(claims)))
    }
}
