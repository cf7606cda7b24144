//! The answers and security schemes the description repeats: JSON and error responses,
//! the challenges of 401 and 403, the 503 of missing keys, and the bearer and OAuth 2.0
//! schemes.

use std::collections::BTreeMap;

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::Ref;
use utoipa::openapi::security::{
    ClientCredentials, Flow, HttpAuthScheme, HttpBuilder, OAuth2, Scopes, SecurityScheme,
};
use utoipa::openapi::{ContentBuilder, RefOr};

use super::{Context, ERROR, listed};
use crate::error::REALM;
use crate::settings::TokenEndpoint;

pub(super) fn json_response(description: &str, schema: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(schema)))
                .build(),
        )
        .build()
}

pub(super) fn error_response(description: &str) -> Response {
    json_response(description, ERROR)
}

pub(super) fn challenge(
    description: &str,
    pattern: &str,
) -> RefOr<utoipa::openapi::header::Header> {
    HeaderBuilder::new()
        .description(Some(description))
        .schema(Some(
            utoipa::openapi::ObjectBuilder::new()
                .schema_type(utoipa::openapi::Type::String)
                .pattern(Some(pattern)),
        ))
        .build()
        .into()
}

pub(super) fn unauthorized(dpop: bool) -> Response {
    let (description, pattern) = if dpop {
        (
            "Unauthorized: no token (`Requires authentication`), a token that failed \
             validation (`Bad credentials`, `error` `invalid_token`, the reason in \
             `error_description`), a refused DPoP proof (`error` `invalid_dpop_proof`), or a \
             proof without the server's current nonce (`error` `use_dpop_nonce`, the nonce to \
             use in `DPoP-Nonce`)",
            format!(
                r#"^(Bearer realm="{REALM}"(, error="invalid_token", error_description="[^"\\]*")?|DPoP algs="[A-Za-z0-9 ]+", realm="{REALM}"(, error="(invalid_token|invalid_dpop_proof|use_dpop_nonce)", error_description="[^"\\]*")?)$"#
            ),
        )
    } else {
        (
            "Unauthorized: no bearer token (`Requires authentication`), or a token that failed \
             validation (`Bad credentials`, `error` `invalid_token`, the reason in \
             `error_description`)",
            format!(
                r#"^Bearer realm="{REALM}"(, error="invalid_token", error_description="[^"\\]*")?$"#
            ),
        )
    };
    let mut response = error_response(description);
    response.headers.insert(
        "WWW-Authenticate".to_owned(),
        challenge(
            "The RFC 6750 challenge (and RFC 9449's for DPoP, in a header of its own): the \
             realm, and for a refused token the error and its reason",
            &pattern,
        ),
    );
    response
}

pub(super) fn forbidden(required: &[&str], dpop: bool) -> Response {
    let scope = required.join(" ");
    let mut response = error_response(&format!(
        "Forbidden: a valid token that does not grant {} (`Permission denied`, `error` \
         `insufficient_scope`)",
        listed(required)
    ));
    response.headers.insert(
        "WWW-Authenticate".to_owned(),
        challenge(
            "The RFC 6750 challenge naming the scope required",
            &if dpop {
                format!(
                    r#"^(Bearer|DPoP algs="[A-Za-z0-9 ]+",) realm="{REALM}"(, error="insufficient_scope", scope="{0}")?$"#,
                    escape_regex(&scope)
                )
            } else {
                format!(
                    r#"^Bearer realm="{REALM}", error="insufficient_scope", scope="{}"$"#,
                    escape_regex(&scope)
                )
            },
        ),
    );
    response
}

pub(super) fn escape_regex(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if r"\.+*?()|[]{}^$".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

pub(super) fn keys_unavailable() -> Response {
    let mut response = error_response(
        "Service Unavailable: the token could not be checked. No usable signing key (the \
         issuer has been unreachable since start-up, or for longer than \
         jwks.max_stale_secs), or the token names a key the service does not have and the \
         issuer could not be asked for it: `Unable to verify credentials`",
    );
    response.headers.insert(
        "Retry-After".to_owned(),
        HeaderBuilder::new()
            .description(Some("Seconds until the next attempt to fetch the keys"))
            .schema(Some(
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::Type::Integer)
                    .minimum(Some(1)),
            ))
            .build()
            .into(),
    );
    response
}

pub(super) fn bearer() -> SecurityScheme {
    SecurityScheme::Http(
        HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("JWT")
            .description(Some(
                "An access token (a signed JWT) from the configured issuer, in \
                 `Authorization: Bearer <token>`",
            ))
            .build(),
    )
}

pub(super) fn oauth2(context: &Context, scopes: &BTreeMap<&str, Vec<String>>) -> SecurityScheme {
    let scopes: Scopes = scopes
        .iter()
        .map(|(permission, routes)| {
            (
                permission.to_string(),
                format!("Required by {}", routes.join(", ")),
            )
        })
        .collect();
    let (url, whose) = match &context.token_endpoint {
        TokenEndpoint::Known(url) => (url.as_str(), "the issuer's token endpoint"),
        TokenEndpoint::Discovered(url) => (
            url.as_str(),
            "the token endpoint the issuer's discovery document names",
        ),
        TokenEndpoint::Assumed(url) => (
            url.as_str(),
            "a placeholder: `{issuer}/oauth/token`, where Auth0 has it; your provider's \
             discovery document (`token_endpoint`) names the real one",
        ),
    };
    let audience = context.audiences.first().map(String::as_str).unwrap_or("");
    SecurityScheme::OAuth2(OAuth2::with_description(
        [Flow::ClientCredentials(ClientCredentials::new(url, scopes))],
        format!(
            "Client credentials at the issuer: tokenUrl is {whose}. Auth0 needs the API's \
             audience in the request (`audience={audience}`); permissions are granted to the \
             client at the issuer, and carried in the token."
        ),
    ))
}
