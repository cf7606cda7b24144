//! Claims and tokens: the ones a well-behaved issuer signs, and forged ones.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hello_world_api::issuer::SigningKey;
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

use crate::constants::{ADMIN_PERMISSION, AUDIENCE};
use crate::time::now;

/// Valid claims from `issuer_url` for a user without permissions, shaped like Auth0's: two
/// audiences, `iat`, an hour to live, OpenID scopes.
pub fn user_claims(issuer_url: &str) -> Value {
    let now = now();
    json!({
        "iss": issuer_url,
        "sub": "auth0|user-1",
        "aud": [AUDIENCE, format!("{issuer_url}userinfo")],
        "iat": now,
        "exp": now + 3600,
        "scope": "openid profile",
    })
}

/// [`user_claims`] that also grant the admin permission.
pub fn admin_claims(issuer_url: &str) -> Value {
    let mut claims = user_claims(issuer_url);
    claims["permissions"] = json!([ADMIN_PERMISSION]);
    claims
}

/// The fewest claims a valid token needs, for subject `sub`, with the admin permission when
/// `admin`.
pub fn subject_claims(issuer_url: &str, sub: &str, admin: bool) -> Value {
    let mut c = json!({"iss": issuer_url, "aud": AUDIENCE, "sub": sub, "exp": now() + 3600});
    if admin {
        c["permissions"] = json!([ADMIN_PERMISSION]);
    }
    c
}

/// `count` tokens signed by `key`, each for another subject (`{prefix}-{i}`), so that no two
/// share a cache entry.
pub fn tokens(
    key: &SigningKey,
    issuer_url: &str,
    prefix: &str,
    count: usize,
    admin: bool,
) -> Vec<String> {
    (0..count)
        .map(|i| {
            key.sign(&subject_claims(issuer_url, &format!("{prefix}-{i}"), admin))
                .unwrap()
        })
        .collect()
}

/// Builds a JWS from raw header and payload JSON text, signed by `key` with `alg`: for tokens
/// no well-behaved library would produce.
pub fn forge(header: &str, payload: &str, key: &SigningKey, alg: Algorithm) -> String {
    let message = format!("{}.{}", b64(header), b64(payload));
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), key.encoding_key(), alg)
        .expect("sign forged token");
    format!("{message}.{signature}")
}

/// `text` in unpadded base64url, as a JWS encodes its parts.
pub fn b64(text: &str) -> String {
    URL_SAFE_NO_PAD.encode(text)
}

/// The JSON text of a header naming `alg` and `kid`.
pub fn header_json(alg: &str, kid: &str) -> String {
    json!({"alg": alg, "typ": "JWT", "kid": kid}).to_string()
}
