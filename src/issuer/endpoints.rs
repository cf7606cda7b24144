//! The issuer's HTTP endpoints: the JWKS, its metadata (OpenID Connect discovery or RFC 8414),
//! and the OAuth error shape.

use std::sync::atomic::Ordering;

use actix_web::http::header;
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use super::{Issuer, JwksBehaviour, Layout, lock, read};

/// What a path names under the current layout.
enum Target {
    Jwks,
    Metadata,
    Nothing,
}

/// The default service: serves metadata and keys where the current [`Layout`] puts them, so a
/// layout change takes effect on the next request. Only `GET` is answered (405 otherwise);
/// anything else is 404.
pub(super) async fn dispatch(req: HttpRequest, issuer: web::Data<Issuer>) -> HttpResponse {
    let path = req.path();
    if is_metadata_request(path) {
        issuer
            .state
            .discovery_fetches
            .fetch_add(1, Ordering::SeqCst);
    }
    let layout = read(&issuer.state.layout).clone();
    let target = if path == layout.jwks_path {
        Target::Jwks
    } else if (layout.oidc && path == layout.oidc_path())
        || (layout.rfc8414 && path == layout.rfc8414_path())
    {
        Target::Metadata
    } else {
        Target::Nothing
    };
    match target {
        Target::Nothing => oauth_error(StatusCode::NOT_FOUND, "not_found", "no such endpoint"),
        _ if req.method() != Method::GET => oauth_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request",
            "method not allowed",
        ),
        Target::Jwks => jwks_endpoint(&issuer).await,
        Target::Metadata => HttpResponse::Ok().json(metadata(&issuer, &layout, &req)),
    }
}

/// Whether `path` asks for metadata of either kind, wherever the layout puts it.
fn is_metadata_request(path: &str) -> bool {
    path.ends_with("/.well-known/openid-configuration")
        || path.starts_with("/.well-known/oauth-authorization-server")
}

async fn jwks_endpoint(issuer: &Issuer) -> HttpResponse {
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

/// The metadata document, the same for OpenID Connect discovery and RFC 8414.
///
/// The development issuer (with a token policy) states its configured issuer URL and keys
/// beside it, as always; any other issuer states the URL the request reached it at, shaped by
/// the layout.
fn metadata(issuer: &Issuer, layout: &Layout, req: &HttpRequest) -> Value {
    let mut document = match &issuer.state.tokens {
        Some(policy) => {
            let base = &policy.issuer_url;
            json!({
                "issuer": base,
                "jwks_uri": format!("{base}.well-known/jwks.json"),
                "token_endpoint": format!("{base}oauth/token"),
                "grant_types_supported": ["client_credentials"],
                "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
                "response_types_supported": ["token"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
            })
        }
        None => {
            let host = request_host(req);
            json!({
                "issuer": layout.issuer_url(&host),
                "jwks_uri": format!("http://{host}{}", layout.jwks_path),
                "token_endpoint": format!("http://{host}/oauth/token"),
                "response_types_supported": ["token"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
            })
        }
    };
    if let Some(advertised) = &layout.advertised_issuer {
        document["issuer"] = json!(advertised);
    }
    document
}

/// The `Host` header as the client sent it (`127.0.0.1:PORT`), else what actix makes of the
/// request.
fn request_host(req: &HttpRequest) -> String {
    req.headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_else(|| req.connection_info().host().to_owned())
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
