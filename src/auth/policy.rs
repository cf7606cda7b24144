//! Who may call a route: [`Policy`], declared beside each route, and the middleware that
//! enforces it before the handler runs, whatever the handler's signature.

use std::future::{Ready, ready};
use std::rc::Rc;
use std::sync::Mutex;

use actix_web::body::EitherBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::{Error, HttpMessage};
use futures_util::future::{Either, LocalBoxFuture, MapOk, TryFutureExt};

use crate::auth::claims::{Claims, PermissionsClaim};
use crate::auth::extractor::{Authenticated, authenticate};
use crate::error::ApiError;

/// What a request needs to be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Anyone.
    Public,
    /// Any valid access token.
    Authenticated,
    /// A valid access token granting every one of these permissions.
    Permissions(&'static [&'static str]),
}

impl Policy {
    /// The claims, if they satisfy this policy, with the permissions read where
    /// `permissions` points.
    pub fn admit(
        self,
        claims: std::sync::Arc<Claims>,
        permissions: &PermissionsClaim,
    ) -> Result<Authenticated, ApiError> {
        match self {
            Policy::Permissions(required)
                if !required.iter().all(|p| permissions.grants(&claims, p)) =>
            {
                Err(ApiError::InsufficientPermission { required })
            }
            _ => Ok(Authenticated(claims)),
        }
    }

    /// This policy with `read:admin-messages` replaced by `admin` (`auth.admin_permission`).
    pub fn with_admin_permission(self, admin: &str) -> Policy {
        match self {
            Policy::Permissions(required)
                if admin != READ_ADMIN_MESSAGES && required.contains(&READ_ADMIN_MESSAGES) =>
            {
                let renamed: Vec<&str> = required
                    .iter()
                    .map(|p| if *p == READ_ADMIN_MESSAGES { admin } else { p })
                    .collect();
                Policy::Permissions(intern(&renamed))
            }
            other => other,
        }
    }
}

/// The permission `/api/messages/admin` requires unless `auth.admin_permission` says otherwise.
pub const READ_ADMIN_MESSAGES: &str = "read:admin-messages";

/// A permission list made `'static`, once per distinct list in the process (policies are built
/// from configuration at start-up, so there are only a few).
fn intern(list: &[&str]) -> &'static [&'static str] {
    static LISTS: Mutex<Vec<&'static [&'static str]>> = Mutex::new(Vec::new());
    let mut lists = LISTS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(found) = lists.iter().find(|l| **l == list) {
        return found;
    }
    let owned: Vec<&'static str> = list
        .iter()
        .map(|p| &*Box::leak(p.to_string().into_boxed_str()))
        .collect();
    let interned: &'static [&'static str] = Box::leak(owned.into_boxed_slice());
    lists.push(interned);
    interned
}

/// Enforces a [`Policy`] that demands a token: refuses the request, or puts the
/// [`Authenticated`] claims in its extensions for the handler.
#[derive(Debug, Clone, Copy)]
pub struct Authorize(pub Policy);

impl<S, B> Transform<S, ServiceRequest> for Authorize
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = AuthorizeService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(AuthorizeService {
            service: Rc::new(service),
            policy: self.0,
        }))
    }
}

pub struct AuthorizeService<S> {
    service: Rc<S>,
    policy: Policy,
}

/// The answer of a request refused before the handler.
type Refused<B> = futures_util::future::Ready<Result<ServiceResponse<EitherBody<B>>, Error>>;

type Admitted<S, B> = MapOk<
    <S as Service<ServiceRequest>>::Future,
    fn(ServiceResponse<B>) -> ServiceResponse<EitherBody<B>>,
>;

impl<S, B> Service<ServiceRequest> for AuthorizeService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = Either<
        Either<Admitted<S, B>, Refused<B>>,
        LocalBoxFuture<'static, Result<Self::Response, Error>>,
    >;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let policy = self.policy;
        match authenticate(req.request(), move |claims, auth| {
            policy.admit(claims, auth.permissions())
        }) {
            Either::Left(decided) => Either::Left(finish(&self.service, req, decided.into_inner())),
            Either::Right(waiting) => {
                let service = Rc::clone(&self.service);
                Either::Right(Box::pin(async move {
                    let decision = waiting.await;
                    finish(&service, req, decision).await
                }))
            }
        }
    }
}

fn finish<S, B>(
    service: &S,
    req: ServiceRequest,
    decision: Result<Authenticated, ApiError>,
) -> Either<Admitted<S, B>, Refused<B>>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
{
    match decision {
        Ok(claims) => {
            req.extensions_mut().insert(claims);
            Either::Left(
                service
                    .call(req)
                    .map_ok(ServiceResponse::map_into_left_body as fn(_) -> _),
            )
        }
        Err(error) => Either::Right(futures_util::future::ready(Ok(req
            .error_response(error)
            .map_into_right_body()))),
    }
}
