//! The API's description: `GET /openapi.json`, and Swagger UI showing it at `GET /docs`.
//!
//! Swagger UI's files are compiled in (the `vendored` build of `utoipa-swagger-ui`), so the
//! page loads nothing from elsewhere; its own Content-Security-Policy allows exactly that, plus
//! calls to the issuer's token endpoint for the Authorize dialog.

use actix_web::http::Uri;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, web};

use crate::auth::authenticator::Authenticator;
use crate::error::{ApiError, mime_json};
use crate::openapi::ApiDocument;
use crate::openapi::schemas::document;
use crate::route::Body;

/// An OpenAPI 3.1 document.
pub const DOCUMENT: Body = Body {
    name: "OpenApiDocument",
    schema: document,
};

/// Where the page is; `/docs` redirects there (its files load relative to it).
pub const PAGE: &str = "/docs/";

/// The document, or 404 when `docs.enabled` is off (then it was never built).
pub async fn openapi(
    document: Option<web::Data<ApiDocument>>,
    authenticator: web::Data<Authenticator>,
) -> Result<HttpResponse, ApiError> {
    let document = document.ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, mime_json()))
        .body(document.json(authenticator.keys().token_endpoint())))
}

/// `/docs` to `/docs/`, where the page's relative links resolve.
pub async fn redirect() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, PAGE))
        .finish()
}

/// A file of the page (`/docs/` is its `index.html`), with the page's policy.
pub async fn page(
    file: web::Path<String>,
    document: Option<web::Data<ApiDocument>>,
    authenticator: web::Data<Authenticator>,
) -> Result<HttpResponse, ApiError> {
    let document = document.ok_or(ApiError::NotFound)?;
    let asset = match utoipa_swagger_ui::serve(&file, document.swagger_ui()) {
        Ok(Some(asset)) => asset,
        Ok(None) => return Err(ApiError::NotFound),
        Err(error) => {
            log::error!("docs: cannot serve {file:?}: {error}");
            return Err(ApiError::Internal);
        }
    };
    let token_endpoint = document.token_endpoint(authenticator.keys().token_endpoint());
    Ok(HttpResponse::Ok()
        .content_type(asset.content_type)
        .insert_header((header::CONTENT_SECURITY_POLICY, policy(&token_endpoint)))
        .body(asset.bytes.into_owned()))
}

/// The narrowest policy Swagger UI works under: its scripts, styles and images from here (its
/// icons are `data:` images), and calls to here and to the token endpoint's origin.
fn policy(token_endpoint: &str) -> HeaderValue {
    let origin = token_endpoint
        .parse::<Uri>()
        .ok()
        .and_then(|uri| Some(format!(" {}://{}", uri.scheme_str()?, uri.authority()?)))
        .unwrap_or_default();
    HeaderValue::from_str(&format!(
        "default-src 'none'; script-src 'self'; style-src 'self' 'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='; img-src 'self' data:; \
         connect-src 'self'{origin}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ))
    .unwrap_or_else(|_| {
        HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_may_call_only_itself_and_the_token_endpoints_origin() {
        let csp = policy("https://id.example.com:8443/realms/x/protocol/openid-connect/token");
        let csp = csp.to_str().unwrap();
        assert!(csp.starts_with("default-src 'none'; "), "{csp}");
        assert!(
            csp.contains("connect-src 'self' https://id.example.com:8443;"),
            "{csp}"
        );
        // A URL that does not parse adds nothing.
        let csp = policy("not a url\n");
        assert!(
            csp.to_str().unwrap().contains("connect-src 'self';"),
            "{csp:?}"
        );
    }
}
