//! Token validation as RFC 8725 asks: a pinned algorithm allow-list, no key taken from the
//! token, required `exp`/`iss`/`aud`, strict claim types, and a size bound before decoding.
//!
//! Validation is split in two so the extractor can look the key up in between:
//! [`TokenValidator::inspect`] checks shape and header without any key, and
//! [`TokenValidator::verify`] checks signature and claims with the key the header's `kid` names.

use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;

use crate::auth::claims::Claims;
use crate::auth::keys::VerificationKey;
use crate::error::Rejection;
use crate::settings::AuthSettings;

/// What the header says, once it passed the checks that need no key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenHeader {
    pub alg: Algorithm,
    pub kid: String,
}

/// The header members we act on. Other members, including the key-carrying `jku`, `jwk`,
/// `x5u` and `x5c`, are never read: keys come only from the configured JWKS.
#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<serde::de::IgnoredAny>,
}

/// Checks tokens against one issuer, audience and algorithm list. Built once at start-up.
#[derive(Debug, Clone)]
pub struct TokenValidator {
    validation: Validation,
    max_token_bytes: usize,
}

impl TokenValidator {
    pub fn new(settings: &AuthSettings) -> Self {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.algorithms = settings.algorithms.clone();
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.set_issuer(&[&settings.issuer]);
        validation.set_audience(&[&settings.audience]);
        validation.leeway = settings.leeway.as_secs();
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = true;
        Self {
            validation,
            max_token_bytes: settings.max_token_bytes,
        }
    }

    /// Shape and header checks, before any key is looked up.
    pub fn inspect(&self, token: &str) -> Result<TokenHeader, Rejection> {
        if token.len() > self.max_token_bytes {
            return Err(Rejection::TooLarge);
        }
        let mut segments = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) = (
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
        ) else {
            return Err(Rejection::Malformed);
        };
        if [header, payload, signature]
            .iter()
            .any(|s| s.is_empty() || !s.bytes().all(is_base64url))
        {
            return Err(Rejection::Malformed);
        }
        let header = URL_SAFE_NO_PAD
            .decode(header)
            .map_err(|_| Rejection::Malformed)?;
        let header: RawHeader =
            serde_json::from_slice(&header).map_err(|_| Rejection::Malformed)?;
        let alg = Algorithm::from_str(&header.alg).map_err(|_| Rejection::AlgorithmNotAllowed)?;
        if !self.validation.algorithms.contains(&alg) {
            return Err(Rejection::AlgorithmNotAllowed);
        }
        // We understand no JWS extension, so any `crit` is one we must refuse (RFC 7515 §4.1.11).
        if header.crit.is_some() {
            return Err(Rejection::UnsupportedCritical);
        }
        match header.kid {
            Some(kid) if !kid.is_empty() => Ok(TokenHeader { alg, kid }),
            _ => Err(Rejection::MissingKeyId),
        }
    }

    /// Signature and claims, with the key the header's `kid` selected.
    pub fn verify(
        &self,
        token: &str,
        header: &TokenHeader,
        key: &VerificationKey,
    ) -> Result<Claims, Rejection> {
        if key.algorithm.is_some_and(|a| a != header.alg) || key.family != header.alg.family() {
            return Err(Rejection::AlgorithmMismatch);
        }
        jsonwebtoken::decode::<Claims>(token, &key.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| rejection(e.kind()))
    }
}

fn is_base64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

fn rejection(kind: &ErrorKind) -> Rejection {
    match kind {
        ErrorKind::InvalidSignature => Rejection::BadSignature,
        ErrorKind::ExpiredSignature => Rejection::Expired,
        ErrorKind::ImmatureSignature => Rejection::NotYetValid,
        ErrorKind::InvalidAudience => Rejection::WrongAudience,
        ErrorKind::InvalidIssuer => Rejection::WrongIssuer,
        ErrorKind::MissingRequiredClaim(claim) => match claim.as_str() {
            "exp" => Rejection::MissingExp,
            "iss" => Rejection::MissingIss,
            "aud" => Rejection::MissingAud,
            _ => Rejection::MalformedClaims,
        },
        ErrorKind::InvalidClaimFormat(_) | ErrorKind::Json(_) => Rejection::MalformedClaims,
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            Rejection::AlgorithmNotAllowed
        }
        ErrorKind::InvalidKeyFormat
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidEddsaKey => Rejection::AlgorithmMismatch,
        _ => Rejection::Malformed,
    }
}
