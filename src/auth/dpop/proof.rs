//! One DPoP proof (RFC 9449 §4.2): a JWT whose header carries the client's public key and
//! whose signature that key verifies. Read strictly and bounded before any cryptography.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::auth::keys::strong_enough;
pub use crate::error::ProofRejection;

/// Longer `DPoP` headers are refused before any decoding (an RSA-4096 proof is under 2 KiB).
pub const MAX_PROOF_BYTES: usize = 8192;

/// A proof whose signature its own key verified. Nothing else is checked yet.
#[derive(Debug, Clone)]
pub struct Proof {
    /// The RFC 7638 SHA-256 thumbprint of its key (base64url).
    pub jkt: String,
    pub jti: String,
    pub iat: i64,
    pub htm: String,
    pub htu: String,
    pub ath: Option<String>,
    pub nonce: Option<String>,
}

#[derive(Deserialize)]
struct ProofHeader {
    typ: Option<Value>,
    alg: Option<Value>,
    jwk: Option<Map<String, Value>>,
    crit: Option<Value>,
}

#[derive(Deserialize)]
struct ProofClaims {
    jti: Option<Value>,
    htm: Option<Value>,
    htu: Option<Value>,
    iat: Option<Value>,
    ath: Option<Value>,
    nonce: Option<Value>,
}

/// Members a public JWK never has: any of them makes it a private (or symmetric) key.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Reads and verifies `proof` with the key in its header, signed with one of `algorithms`.
pub fn verify(proof: &str, algorithms: &[Algorithm]) -> Result<Proof, ProofRejection> {
    if proof.len() > MAX_PROOF_BYTES {
        return Err(ProofRejection::TooLarge);
    }
    let mut parts = proof.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ProofRejection::Malformed);
    };
    let header: ProofHeader = URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or(ProofRejection::Malformed)?;
    if header.crit.is_some() {
        return Err(ProofRejection::Malformed);
    }
    match &header.typ {
        Some(Value::String(typ)) if typ.eq_ignore_ascii_case("dpop+jwt") => {}
        _ => return Err(ProofRejection::WrongType),
    }
    let algorithm = match &header.alg {
        Some(Value::String(name)) => name
            .parse::<Algorithm>()
            .ok()
            .filter(|a| algorithms.contains(a))
            .ok_or(ProofRejection::Algorithm)?,
        _ => return Err(ProofRejection::Algorithm),
    };
    let members = header.jwk.ok_or(ProofRejection::UnusableKey)?;
    if PRIVATE_MEMBERS.iter().any(|m| members.contains_key(*m)) {
        return Err(ProofRejection::PrivateKey);
    }
    let jkt = thumbprint(&members).ok_or(ProofRejection::UnusableKey)?;
    let jwk: Jwk =
        serde_json::from_value(Value::Object(members)).map_err(|_| ProofRejection::UnusableKey)?;
    if !fits(&jwk.algorithm, algorithm) || strong_enough(&jwk.algorithm).is_err() {
        return Err(ProofRejection::UnusableKey);
    }
    let key = DecodingKey::from_jwk(&jwk).map_err(|_| ProofRejection::UnusableKey)?;
    let mut validation = Validation::new(algorithm);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<ProofClaims>(proof, &key, &validation)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => ProofRejection::Signature,
            jsonwebtoken::errors::ErrorKind::Json(_) => ProofRejection::Malformed,
            _ => ProofRejection::Signature,
        })?
        .claims;
    let text = |value: Option<Value>, name: &'static str| match value {
        Some(Value::String(text)) if !text.is_empty() && text.len() <= 1024 => Ok(text),
        _ => Err(ProofRejection::Claim(name)),
    };
    let optional = |value: Option<Value>, name: &'static str| match value {
        None => Ok(None),
        some => text(some, name).map(Some),
    };
    Ok(Proof {
        jkt,
        jti: text(claims.jti, "jti")?,
        htm: text(claims.htm, "htm")?,
        htu: text(claims.htu, "htu")?,
        iat: match claims.iat {
            Some(Value::Number(n)) => n.as_i64().ok_or(ProofRejection::Claim("iat"))?,
            _ => return Err(ProofRejection::Claim("iat")),
        },
        ath: optional(claims.ath, "ath")?,
        nonce: optional(claims.nonce, "nonce")?,
    })
}

/// Whether the key is of the kind `algorithm` signs with (ES256 on P-256, and so on).
fn fits(parameters: &AlgorithmParameters, algorithm: Algorithm) -> bool {
    match (parameters, algorithm) {
        (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES256) => {
            ec.curve == EllipticCurve::P256
        }
        (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES384) => {
            ec.curve == EllipticCurve::P384
        }
        (AlgorithmParameters::OctetKeyPair(okp), Algorithm::EdDSA) => {
            okp.curve == EllipticCurve::Ed25519
        }
        (AlgorithmParameters::RSA(_), algorithm) => algorithm.family() == AlgorithmFamily::Rsa,
        _ => false,
    }
}

/// The RFC 7638 thumbprint of a public JWK: SHA-256 over its required members, in
/// lexicographic order, without whitespace; base64url. `None` for a key it does not cover.
pub fn thumbprint(jwk: &Map<String, Value>) -> Option<String> {
    let member = |name: &str| match jwk.get(name) {
        Some(Value::String(text)) => serde_json::to_string(text).ok(),
        _ => None,
    };
    let canonical = match jwk.get("kty").and_then(Value::as_str)? {
        "RSA" => format!(
            r#"{{"e":{},"kty":"RSA","n":{}}}"#,
            member("e")?,
            member("n")?
        ),
        "EC" => format!(
            r#"{{"crv":{},"kty":"EC","x":{},"y":{}}}"#,
            member("crv")?,
            member("x")?,
            member("y")?
        ),
        "OKP" => format!(
            r#"{{"crv":{},"kty":"OKP","x":{}}}"#,
            member("crv")?,
            member("x")?
        ),
        _ => return None,
    };
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes());
    Some(URL_SAFE_NO_PAD.encode(digest.as_ref()))
}

/// base64url(SHA-256(access token)): a proof's `ath`.
pub fn access_token_hash(token: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_thumbprint_is_rfc_7638s_example() {
        // RFC 7638 §3.1.
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        assert_eq!(
            thumbprint(jwk.as_object().unwrap()).as_deref(),
            Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
        );
        assert_eq!(
            thumbprint(json!({"kty": "oct", "k": "x"}).as_object().unwrap()),
            None
        );
        assert_eq!(
            thumbprint(
                json!({"kty": "EC", "crv": "P-256", "x": "a"})
                    .as_object()
                    .unwrap()
            ),
            None
        );
    }

    #[test]
    fn the_access_token_hash_is_rfc_9449s_example() {
        // RFC 9449 §7.1, Figure 13: the token and its ath.
        assert_eq!(
            access_token_hash("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"),
            "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
        );
    }
}
