//! One DPoP proof (RFC 9449 §4.2): a JWT whose header carries the client's public key and
//! whose signature that key verifies. Read strictly and bounded before any cryptography.

use std::sync::Arc;

use aws_lc_rs::signature::{self, ParsedPublicKey, VerificationAlgorithm};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
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

/// Verifies proofs, remembering the headers it has checked: a client signs every proof with
/// one key, so the header (`typ`, `alg`, `jwk`) repeats byte for byte, and its checks, the
/// key's thumbprint and the parsed key are worth keeping (bounded in bytes). What is kept is a
/// function of the header's exact text alone, so a hit decides exactly as a miss would.
pub struct ProofVerifier {
    algorithms: Vec<Algorithm>,
    headers: Option<moka::sync::Cache<String, Arc<CheckedHeader>>>,
}

impl std::fmt::Debug for ProofVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProofVerifier")
            .field("algorithms", &self.algorithms)
            .finish_non_exhaustive()
    }
}

/// A header that passed every check: its key's thumbprint, and the key ready to verify.
struct CheckedHeader {
    jkt: String,
    key: ProofKey,
}

enum ProofKey {
    /// EC and Ed25519 keys, parsed once by aws-lc-rs.
    Parsed(ParsedPublicKey),
    /// RSA keys, through jsonwebtoken.
    Jwt(DecodingKey, Algorithm),
}

/// What the remembered headers may take in memory, their text counted.
const HEADER_CACHE_BYTES: u64 = 1 << 20;

impl ProofVerifier {
    /// A verifier for proofs signed with one of `algorithms`.
    pub fn new(algorithms: &[Algorithm]) -> Self {
        Self {
            algorithms: algorithms.to_vec(),
            headers: Some(
                moka::sync::Cache::builder()
                    .max_capacity(HEADER_CACHE_BYTES)
                    .weigher(|header: &String, _| {
                        u32::try_from(header.len() + 256).unwrap_or(u32::MAX)
                    })
                    .build(),
            ),
        }
    }

    /// Reads and verifies `proof` with the key in its header.
    pub fn verify(&self, proof: &str) -> Result<Proof, ProofRejection> {
        if proof.len() > MAX_PROOF_BYTES {
            return Err(ProofRejection::TooLarge);
        }
        let mut parts = proof.split('.');
        let (Some(head), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(ProofRejection::Malformed);
        };
        let header = match self.headers.as_ref().and_then(|c| c.get(head)) {
            Some(checked) => checked,
            None => {
                let checked = Arc::new(check_header(head, &self.algorithms)?);
                if let Some(cache) = &self.headers {
                    cache.insert(head.to_owned(), Arc::clone(&checked));
                }
                checked
            }
        };
        let message = &proof[..head.len() + 1 + payload.len()];
        let verified = match &header.key {
            ProofKey::Parsed(key) => URL_SAFE_NO_PAD
                .decode(signature)
                .ok()
                .is_some_and(|bytes| key.verify_sig(message.as_bytes(), &bytes).is_ok()),
            ProofKey::Jwt(key, algorithm) => {
                jsonwebtoken::crypto::verify(signature, message.as_bytes(), key, *algorithm)
                    .unwrap_or(false)
            }
        };
        if !verified {
            return Err(ProofRejection::Signature);
        }
        let claims: ProofClaims = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or(ProofRejection::Malformed)?;
        let text = |value: Option<Value>, name: &'static str| match value {
            Some(Value::String(text)) if !text.is_empty() && text.len() <= 1024 => Ok(text),
            _ => Err(ProofRejection::Claim(name)),
        };
        let optional = |value: Option<Value>, name: &'static str| match value {
            None => Ok(None),
            some => text(some, name).map(Some),
        };
        Ok(Proof {
            jkt: header.jkt.clone(),
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
}

/// Reads and verifies `proof` with the key in its header, signed with one of `algorithms`,
/// remembering nothing (for the development issuer's rare token requests).
pub fn verify(proof: &str, algorithms: &[Algorithm]) -> Result<Proof, ProofRejection> {
    ProofVerifier {
        algorithms: algorithms.to_vec(),
        headers: None,
    }
    .verify(proof)
}

/// The checks of a proof's header (`head`, base64url): `typ`, `alg`, no `crit`, a public
/// `jwk` of the alg's kind and a usable size; its thumbprint and the key parsed.
fn check_header(head: &str, algorithms: &[Algorithm]) -> Result<CheckedHeader, ProofRejection> {
    let header: ProofHeader = URL_SAFE_NO_PAD
        .decode(head)
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
    let decode = |text: &str| {
        URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| ProofRejection::UnusableKey)
    };
    let parsed = |verification: &'static dyn VerificationAlgorithm, bytes: Vec<u8>| {
        ParsedPublicKey::new(verification, bytes)
            .map(ProofKey::Parsed)
            .map_err(|_| ProofRejection::UnusableKey)
    };
    let key = match (&jwk.algorithm, algorithm) {
        (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES256 | Algorithm::ES384) => {
            let mut point = vec![4_u8];
            point.extend(decode(&ec.x)?);
            point.extend(decode(&ec.y)?);
            let verification: &'static dyn VerificationAlgorithm = if algorithm == Algorithm::ES256
            {
                &signature::ECDSA_P256_SHA256_FIXED
            } else {
                &signature::ECDSA_P384_SHA384_FIXED
            };
            parsed(verification, point)?
        }
        (AlgorithmParameters::OctetKeyPair(okp), Algorithm::EdDSA) => {
            parsed(&signature::ED25519, decode(&okp.x)?)?
        }
        _ => ProofKey::Jwt(
            DecodingKey::from_jwk(&jwk).map_err(|_| ProofRejection::UnusableKey)?,
            algorithm,
        ),
    };
    Ok(CheckedHeader { jkt, key })
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
    fn an_rsa_proof_verifies_and_a_remembered_header_decides_as_a_fresh_one() {
        let key = crate::issuer::SigningKey::generate("").unwrap();
        let mut header = jsonwebtoken::Header::new(Algorithm::RS256);
        header.typ = Some("dpop+jwt".to_owned());
        header.jwk = Some(key.public_jwk().clone());
        header.kid = None;
        let claims = json!({"jti": "a", "htm": "GET", "htu": "http://x.example/", "iat": 1});
        let proof = key.sign_with_header(&header, &claims).unwrap();
        let verifier = ProofVerifier::new(&[Algorithm::RS256, Algorithm::ES256]);
        let first = verifier.verify(&proof).unwrap();
        assert_eq!(first.htm, "GET");
        // The same header again, from the cache: a good proof passes, a changed one does not.
        assert_eq!(verifier.verify(&proof).unwrap().jkt, first.jkt);
        let (signed, _) = proof.rsplit_once('.').unwrap();
        let forged = format!("{signed}.{}", URL_SAFE_NO_PAD.encode([0_u8; 256]));
        assert_eq!(
            verifier.verify(&forged).unwrap_err(),
            ProofRejection::Signature
        );
        assert_eq!(
            verify(&forged, &[Algorithm::RS256]).unwrap_err(),
            ProofRejection::Signature
        );
        assert_eq!(
            ProofVerifier::new(&[Algorithm::ES256])
                .verify(&proof)
                .unwrap_err(),
            ProofRejection::Algorithm
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
