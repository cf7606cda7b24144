//! The issuer's HTTP endpoints: the JWKS, OIDC discovery, and the OAuth error shape.

use std::sync::atomic::Ordering;

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpResponse, web};
use serde_json::json;

use super::{Issuer, JwksBehaviour, lock};

pub(super) async fn jwks_endpoint(issuer: web::Data<Issuer>) -> HttpResponse {
    issuer.state.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    let delay = *lock(&issuer.state.delay);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let behaviour = *lock(&issuer.state.behaviour);
    match behaviour {
        JwksBehaviour::Serve => {
            let mut response = HttpResponse::Ok();
            if let Some(value) = lock(&issuer.state.cache_control).clone() {
                response.insert_header((header::CACHE_CONTROL, value));
            }
            response.json(issuer.jwks())
        }
        JwksBehaviour::Fail(status) => {
            HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY))
                .json(json!({"error": "temporarily_unavailable"}))
        }
        JwksBehaviour::Garbage => HttpResponse::Ok()
            .content_type("text/html")
            .body("<html>maintenance</html>"),
    }
}

/// A resource with one route; other methods get a 405 in the OAuth error shape.
pub(super) fn endpoint(path: &str, route: actix_web::Route) -> actix_web::Resource {
    web::resource(path)
        .route(route)
        .default_service(web::to(|| async {
            oauth_error(
                StatusCode::METHOD_NOT_ALLOWED,
                "invalid_request",
                "method not allowed",
            )
        }))
}

pub(super) async fn discovery_endpoint(issuer: web::Data<Issuer>) -> HttpResponse {
    let Some(policy) = &issuer.state.tokens else {
        return oauth_error(StatusCode::NOT_FOUND, "not_found", "no discovery document");
    };
    let base = &policy.issuer_url;
    HttpResponse::Ok().json(json!({
        "issuer": base,
        "jwks_uri": format!("{base}.well-known/jwks.json"),
        "token_endpoint": format!("{base}oauth/token"),
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "response_types_supported": ["token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }))
}

/// An RFC 6749 §5.2 error answer.
pub(super) fn oauth_error(status: StatusCode, error: &str, description: &str) -> HttpResponse {
    let mut response = HttpResponse::build(status);
    response.insert_header((header::CACHE_CONTROL, "no-store"));
    if status == StatusCode::UNAUTHORIZED {
        response.insert_header((header::WWW_AUTHENTICATE, r#"Basic realm="dev-issuer""#));
    }
    response.json(json!({ "error": error, "error_description": description }))
}

/// Refuses with 421 a request addressed to a host other than loopback: a name an attacker's
/// DNS points at 127.0.0.1 must not get tokens.
pub(super) async fn loopback_only(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    if !crate::host::addressed_to_loopback(req.uri(), req.headers()) {
        log::info!("development issuer: refused a request for a non-loopback host");
        return Ok(req.into_response(oauth_error(
            StatusCode::MISDIRECTED_REQUEST,
            "invalid_request",
            "this development issuer answers only requests to localhost, 127.0.0.1 or [::1]",
        )));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}
