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
use crate::error::ApiError;
use crate::request_id::RequestId;

/// The future of [`authenticate`]: ready at once unless a key refresh must be awaited.
pub type AuthFuture<T> =
    Either<Ready<Result<T, ApiError>>, LocalBoxFuture<'static, Result<T, ApiError>>>;

/// Authenticates `req` and hands the claims to `decide`, which may still refuse them (a
/// missing permission). Every decision is counted, and a refusal logged with its reason.
pub fn authenticate<T: 'static>(
    req: &HttpRequest,
    decide: impl FnOnce(Arc<Claims>, &Authenticator) -> Result<T, ApiError> + 'static,
) -> AuthFuture<T> {
    let Some(auth) = req.app_data::<web::Data<Authenticator>>().cloned() else {
        log::error!("no Authenticator in app data: the app factory was not used");
        return Either::Left(ready(Err(ApiError::Internal)));
    };
    match auth.attempt(req.headers()) {
        Attempt::Done(result) => {
            let result = result.and_then(|claims| decide(claims, &auth));
            Either::Left(ready(record(&auth, req, result)))
        }
        Attempt::NeedsKeys(pending) => {
            let req = req.clone();
            Either::Right(Box::pin(async move {
                let result = auth
                    .after_refresh(pending)
                    .await
                    .and_then(|claims| decide(claims, &auth));
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
                log::warn!(
                    "refused {path} id={id}: no fresh signing keys (see the key fetch errors \
                     above and /readyz)"
                )
            }
            _ => {}
        }
    }
    result
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
