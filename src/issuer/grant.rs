//! The token endpoint: the `client_credentials` grant as an Auth0 tenant answers it.

use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::endpoints::oauth_error;
use super::{Issuer, TokenPolicy};
use crate::auth::dpop::{htu, proof};
use crate::settings::{DevClient, DpopSettings};

/// The token request's parameters, as a form or as JSON (Auth0 takes both).
#[derive(Debug, Default, Deserialize)]
struct TokenRequest {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    audience: Option<String>,
}

struct OAuthError(StatusCode, &'static str, String);

impl OAuthError {
    fn bad_request(error: &'static str, description: impl Into<String>) -> Self {
        Self(StatusCode::BAD_REQUEST, error, description.into())
    }

    fn invalid_client() -> Self {
        Self(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "unknown client or wrong client secret".to_owned(),
        )
    }
}

/// The token response, exactly the three members Auth0 returns for this grant.
#[derive(Debug, Serialize, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub expires_in: u64,
    pub token_type: String,
}

/// Pages served from this machine may ask for tokens from a browser, as the API's `/docs`
/// page does (its Authorize dialog); pages from anywhere else may not read the answer.
pub(super) fn token_cors() -> actix_cors::Cors {
    actix_cors::Cors::default()
        .allowed_origin_fn(|origin, _| crate::host::is_loopback_origin(origin.as_bytes()))
        .allowed_methods(["POST"])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            header::HeaderName::from_static("x-requested-with"),
        ])
        .max_age(600)
}

pub(super) async fn token_endpoint(
    req: HttpRequest,
    body: web::Bytes,
    issuer: web::Data<Issuer>,
) -> HttpResponse {
    let Some(policy) = &issuer.state.tokens else {
        return oauth_error(StatusCode::NOT_FOUND, "not_found", "no token endpoint");
    };
    match issue_token(&issuer, policy, &req, &body) {
        Ok(token) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::PRAGMA, "no-cache"))
            .json(token),
        Err(OAuthError(status, error, description)) => {
            // The reason only: never the request's secret, token or proof.
            log::info!(
                "development issuer: token request refused, {} {error}: {description}",
                status.as_u16()
            );
            oauth_error(status, error, &description)
        }
    }
}

fn issue_token(
    issuer: &Issuer,
    policy: &TokenPolicy,
    req: &HttpRequest,
    body: &[u8],
) -> Result<TokenResponse, OAuthError> {
    let request = parse_request(req, body)?;
    match request.grant_type.as_deref() {
        Some("client_credentials") => {}
        None => {
            return Err(OAuthError::bad_request(
                "invalid_request",
                "grant_type is required",
            ));
        }
        Some(_) => {
            return Err(OAuthError::bad_request(
                "unsupported_grant_type",
                "only client_credentials is supported",
            ));
        }
    }
    let client = authenticate_client(policy, req, &request)?;
    check_audience(policy, request.audience.as_deref())?;
    let jkt = proven_key(req)?;
    sign_for(issuer, policy, client, jkt.as_deref())
}

/// With a `DPoP` header (RFC 9449 §5), the thumbprint of the key its proof proves the client
/// holds: the token will be bound to it. The proof is checked as the API checks one, except
/// that this issuer does not remember `jti`s.
fn proven_key(req: &HttpRequest) -> Result<Option<String>, OAuthError> {
    let mut values = req.headers().get_all("dpop");
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let invalid =
        |description: String| Err(OAuthError::bad_request("invalid_dpop_proof", description));
    if values.next().is_some() {
        return invalid("more than one DPoP proof".to_owned());
    }
    let text = value.to_str().unwrap_or("");
    let proof = match proof::verify(text, &DpopSettings::default().algorithms) {
        Ok(proof) => proof,
        Err(reason) => return invalid(reason.to_string()),
    };
    if proof.htm != "POST" {
        return invalid("DPoP proof method mismatch".to_owned());
    }
    let here = htu::request_url(req, None, false).and_then(|url| htu::normalize(&url));
    if here.is_none() || htu::normalize(&proof.htu) != here {
        return invalid("DPoP proof URL mismatch".to_owned());
    }
    let now = i64::try_from(unix_now()).unwrap_or(i64::MAX);
    if proof.iat < now - 300 || proof.iat > now + 30 {
        return invalid("DPoP proof too old or from the future".to_owned());
    }
    Ok(Some(proof.jkt))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The body's parameters, and the `audience` of the URL's query when the body has none (Swagger
/// UI's Authorize dialog sends it there: see `additionalQueryStringParams` in src/openapi/).
fn parse_request(req: &HttpRequest, body: &[u8]) -> Result<TokenRequest, OAuthError> {
    #[derive(Deserialize)]
    struct Query {
        audience: Option<String>,
    }
    let mut request = parse_body(req, body)?;
    let query: Query = serde_urlencoded::from_str(req.query_string())
        .map_err(|e| OAuthError::bad_request("invalid_request", format!("bad query: {e}")))?;
    match (&request.audience, query.audience) {
        (None, audience) => request.audience = audience,
        (Some(body), Some(query)) if *body != query => {
            return Err(OAuthError::bad_request(
                "invalid_request",
                "two different audiences, in the body and in the query",
            ));
        }
        _ => {}
    }
    Ok(request)
}

fn parse_body(req: &HttpRequest, body: &[u8]) -> Result<TokenRequest, OAuthError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.starts_with("application/x-www-form-urlencoded") {
        serde_urlencoded::from_bytes(body)
            .map_err(|e| OAuthError::bad_request("invalid_request", format!("bad form: {e}")))
    } else if content_type.starts_with("application/json") {
        serde_json::from_slice(body)
            .map_err(|e| OAuthError::bad_request("invalid_request", format!("bad JSON: {e}")))
    } else {
        Err(OAuthError::bad_request(
            "invalid_request",
            "send application/x-www-form-urlencoded or application/json",
        ))
    }
}

/// The registered client whose id and secret (compared in constant time) the request carries.
fn authenticate_client<'a>(
    policy: &'a TokenPolicy,
    req: &HttpRequest,
    request: &TokenRequest,
) -> Result<&'a DevClient, OAuthError> {
    let (client_id, client_secret) = client_credentials(req, request)?;
    policy
        .clients
        .iter()
        .find(|c| c.client_id == client_id)
        .filter(|c| {
            aws_lc_rs::constant_time::verify_slices_are_equal(
                c.client_secret.as_bytes(),
                client_secret.as_bytes(),
            )
            .is_ok()
        })
        .ok_or_else(OAuthError::invalid_client)
}

/// Tokens are issued for the one audience this issuer serves.
fn check_audience(policy: &TokenPolicy, audience: Option<&str>) -> Result<(), OAuthError> {
    match audience {
        Some(audience) if audience == policy.audience => Ok(()),
        None | Some("") => Err(OAuthError::bad_request(
            "invalid_request",
            "audience is required",
        )),
        Some(other) => Err(OAuthError::bad_request(
            "invalid_target",
            format!(
                "unknown audience {other:?}; this issuer serves {:?}",
                policy.audience
            ),
        )),
    }
}

/// An access token for `client`, shaped as Auth0 shapes client-credentials tokens.
fn sign_for(
    issuer: &Issuer,
    policy: &TokenPolicy,
    client: &DevClient,
    jkt: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let now = unix_now();
    let mut claims = json!({
        "iss": policy.issuer_url,
        "sub": format!("{}@clients", client.client_id),
        "aud": policy.audience,
        "iat": now,
        "exp": now + policy.lifetime.as_secs(),
        "gty": "client-credentials",
        "azp": client.client_id,
        "permissions": client.permissions,
    });
    if let Some(jkt) = jkt {
        claims["cnf"] = json!({ "jkt": jkt });
    }
    let access_token = issuer.sign(&claims).map_err(|e| {
        log::error!("development issuer could not sign a token: {e}");
        OAuthError(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "could not sign".to_owned(),
        )
    })?;
    log::info!(
        "development issuer: {} token issued to {}",
        if jkt.is_some() {
            "DPoP-bound"
        } else {
            "bearer"
        },
        client.client_id
    );
    Ok(TokenResponse {
        access_token,
        expires_in: policy.lifetime.as_secs(),
        token_type: if jkt.is_some() { "DPoP" } else { "Bearer" }.to_owned(),
    })
}

/// The client's credentials, from HTTP Basic or the body, but not both (RFC 6749 §2.3.1).
fn client_credentials(
    req: &HttpRequest,
    request: &TokenRequest,
) -> Result<(String, String), OAuthError> {
    let basic = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|value| {
            let value = value.to_str().unwrap_or("");
            let encoded = value
                .strip_prefix("Basic ")
                .or_else(|| value.strip_prefix("basic "))
                .ok_or_else(OAuthError::invalid_client)?;
            let decoded = STANDARD
                .decode(encoded.trim())
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(OAuthError::invalid_client)?;
            let (id, secret) = decoded
                .split_once(':')
                .ok_or_else(OAuthError::invalid_client)?;
            Ok((id.to_owned(), secret.to_owned()))
        })
        .transpose()?;
    match (basic, &request.client_id, &request.client_secret) {
        (Some(_), _, Some(_)) => Err(OAuthError::bad_request(
            "invalid_request",
            "use one client authentication method, not two",
        )),
        (Some((id, secret)), _, None) => Ok((id, secret)),
        (None, Some(id), Some(secret)) => Ok((id.clone(), secret.clone())),
        (None, _, _) => Err(OAuthError::invalid_client()),
    }
}
