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
use jsonwebtoken::{Algorithm, AlgorithmFamily, Header, Validation};
use serde::Deserialize;
use serde_json::Value;

use crate::auth::claims::Claims;
use crate::auth::json::StrictObject;
use crate::auth::keys::VerificationKey;
use crate::error::Rejection;
use crate::settings::AuthSettings;

/// The `typ` header values of an access token: plain JWT, and RFC 9068's `at+jwt` in its short
/// and media-type forms. Compared case-insensitively (RFC 7515 §4.1.9).
const ACCEPTED_TYPES: [&str; 3] = ["JWT", "at+jwt", "application/at+jwt"];

/// What the header says, once it passed the checks that need no key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenHeader {
    pub alg: Algorithm,
    pub kid: String,
}

/// Checks tokens against one issuer, audience and algorithm list. Built once at start-up.
#[derive(Debug, Clone)]
pub struct TokenValidator {
    algorithms: Vec<Algorithm>,
    /// One `Validation` per key family in the allow-list: jsonwebtoken refuses a key unless
    /// every algorithm of the `Validation` belongs to the key's family.
    validations: Vec<(AlgorithmFamily, Validation)>,
    max_token_bytes: usize,
}

impl TokenValidator {
    pub fn new(settings: &AuthSettings) -> Self {
        let mut validations: Vec<(AlgorithmFamily, Validation)> = Vec::new();
        for algorithm in &settings.algorithms {
            let family = algorithm.family();
            if let Some((_, validation)) = validations.iter_mut().find(|(f, _)| *f == family) {
                validation.algorithms.push(*algorithm);
                continue;
            }
            let mut validation = Validation::new(*algorithm);
            validation.set_required_spec_claims(&["exp", "iss", "aud"]);
            validation.set_issuer(&[&settings.issuer]);
            validation.set_audience(&[&settings.audience]);
            validation.leeway = settings.leeway.as_secs();
            validation.validate_exp = true;
            validation.validate_nbf = true;
            validation.validate_aud = true;
            validations.push((family, validation));
        }
        Self {
            algorithms: settings.algorithms.clone(),
            validations,
            max_token_bytes: settings.max_token_bytes,
        }
    }

    /// Longer bearer tokens are refused before any other work.
    pub fn max_token_bytes(&self) -> usize {
        self.max_token_bytes
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
        // Only `alg`, `typ`, `kid` and `crit` are acted on. The key-carrying `jku`, `jwk`, `x5u` and
        // `x5c` are never read: keys come only from the configured JWKS.
        let StrictObject(members) =
            serde_json::from_slice(&header).map_err(|_| Rejection::Malformed)?;
        let alg = match members.get("alg") {
            Some(Value::String(name)) => {
                Algorithm::from_str(name).map_err(|_| Rejection::AlgorithmNotAllowed)?
            }
            _ => return Err(Rejection::Malformed),
        };
        if !self.algorithms.contains(&alg) {
            return Err(Rejection::AlgorithmNotAllowed);
        }
        // Explicit typing (RFC 8725 §3.11, RFC 9068 §4): a JWT of another kind (an ID token
        // says `JWT` or nothing, but a logout token or a DPoP proof names itself) signed by
        // the same issuer for the same audience must not pass as an access token.
        match members.get("typ") {
            None => {}
            Some(Value::String(typ))
                if ACCEPTED_TYPES.iter().any(|t| t.eq_ignore_ascii_case(typ)) => {}
            Some(Value::String(_)) => return Err(Rejection::UnexpectedType),
            // A standard member of the wrong JSON type is a malformed header, like any other.
            Some(_) => return Err(Rejection::Malformed),
        }
        // We understand no JWS extension, so any `crit`, even `null`, is refused (RFC 7515 §4.1.11).
        if members.contains_key("crit") {
            return Err(Rejection::UnsupportedCritical);
        }
        let kid = match members.get("kid") {
            Some(Value::String(kid)) if !kid.is_empty() => kid.clone(),
            None | Some(Value::String(_)) => return Err(Rejection::MissingKeyId),
            Some(_) => return Err(Rejection::Malformed),
        };
        // jsonwebtoken parses the header again; make sure it can, so that a parse error it
        // reports later can only be about the claims.
        Header::deserialize(&Value::Object(members)).map_err(|_| Rejection::Malformed)?;
        Ok(TokenHeader { alg, kid })
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
        let Some((_, validation)) = self.validations.iter().find(|(f, _)| *f == key.family) else {
            return Err(Rejection::AlgorithmMismatch);
        };
        jsonwebtoken::decode::<Claims>(token, &key.decoding, validation)
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn validator() -> TokenValidator {
        TokenValidator::new(&AuthSettings {
            issuer: "https://issuer/".to_owned(),
            audience: "api".to_owned(),
            jwks_uri: "https://issuer/.well-known/jwks.json".to_owned(),
            algorithms: vec![Algorithm::RS256],
            leeway: std::time::Duration::ZERO,
            max_token_bytes: 8192,
        })
    }

    fn token_with_header(header: serde_json::Value) -> String {
        let encode = |v: &serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string());
        format!("{}.{}.c2ln", encode(&header), encode(&json!({"iss": "x"})))
    }

    #[test]
    fn access_token_types_are_accepted_in_any_case() {
        let validator = validator();
        for typ in [
            None,
            Some("JWT"),
            Some("jwt"),
            Some("at+jwt"),
            Some("AT+JWT"),
            Some("application/at+jwt"),
            Some("Application/AT+JWT"),
        ] {
            let mut header = json!({"alg": "RS256", "kid": "k"});
            if let Some(typ) = typ {
                header["typ"] = json!(typ);
            }
            assert!(
                validator.inspect(&token_with_header(header)).is_ok(),
                "{typ:?}"
            );
        }
    }

    #[test]
    fn other_token_types_are_refused_as_unexpected_and_non_strings_as_malformed() {
        let validator = validator();
        for typ in [
            json!("dpop+jwt"),
            json!("logout+jwt"),
            json!("JOSE"),
            json!("application/jwt"),
            json!(""),
        ] {
            let header = json!({"alg": "RS256", "kid": "k", "typ": typ});
            assert_eq!(
                validator.inspect(&token_with_header(header)),
                Err(Rejection::UnexpectedType),
                "{typ}"
            );
        }
        for typ in [json!(null), json!(["JWT"]), json!(1)] {
            let header = json!({"alg": "RS256", "kid": "k", "typ": typ});
            assert_eq!(
                validator.inspect(&token_with_header(header)),
                Err(Rejection::Malformed),
                "{typ}"
            );
        }
    }
}
