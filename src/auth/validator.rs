//! Token validation as RFC 8725 asks: a pinned algorithm allow-list, no key taken from the
//! token, required `exp`/`iss` and an audience (`aud`, or `auth.audience_claim`), strict
//! claim types, and a size bound before decoding.
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
use crate::settings::{AuthSettings, Profile};

/// The `typ` header values of an access token: plain JWT, and RFC 9068's `at+jwt` in its short
/// and media-type forms. Compared case-insensitively (RFC 7515 §4.1.9).
const ACCEPTED_TYPES: [&str; 3] = ["JWT", "at+jwt", "application/at+jwt"];

/// The `typ` values of the RFC 9068 profile, which requires one.
const RFC9068_TYPES: [&str; 2] = ["at+jwt", "application/at+jwt"];

/// What the header says, once it passed the checks that need no key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenHeader {
    pub alg: Algorithm,
    pub kid: String,
}

/// Checks tokens against the issuers, audiences and algorithm list. Built once at start-up.
#[derive(Debug, Clone)]
pub struct TokenValidator {
    algorithms: Vec<Algorithm>,
    /// The audience claim when it is not `aud` (which jsonwebtoken checks), with the audiences.
    audience_claim: Option<(String, Vec<String>)>,
    required_claims: Vec<(String, String)>,
    profile: Profile,
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
            let issuers: Vec<&str> = settings.issuers.iter().map(|i| i.issuer.as_str()).collect();
            validation.set_issuer(&issuers);
            // RFC 9068 (§4) wants `aud` checked, whichever other claim names the audience.
            let by_aud = settings.audience_claim == "aud" || settings.profile == Profile::Rfc9068;
            if by_aud {
                validation.set_audience(&settings.audiences);
            }
            if by_aud {
                validation.set_required_spec_claims(&["exp", "iss", "aud"]);
            } else {
                validation.set_required_spec_claims(&["exp", "iss"]);
            }
            validation.leeway = settings.leeway.as_secs();
            validation.validate_exp = true;
            validation.validate_nbf = true;
            validation.validate_aud = by_aud;
            validations.push((family, validation));
        }
        Self {
            algorithms: settings.algorithms.clone(),
            audience_claim: (settings.audience_claim != "aud")
                .then(|| (settings.audience_claim.clone(), settings.audiences.clone())),
            required_claims: settings.required_claims.clone(),
            profile: settings.profile,
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
        let accepted: &[&str] = match self.profile {
            Profile::Auth0 => &ACCEPTED_TYPES,
            Profile::Rfc9068 => &RFC9068_TYPES,
        };
        match members.get("typ") {
            None if self.profile == Profile::Rfc9068 => return Err(Rejection::UnexpectedType),
            None => {}
            Some(Value::String(typ)) if accepted.iter().any(|t| t.eq_ignore_ascii_case(typ)) => {}
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
        let claims = jsonwebtoken::decode::<Claims>(token, &key.decoding, validation)
            .map(|data| data.claims)
            .map_err(|e| rejection(e.kind()))?;
        self.check_claims(&claims)?;
        Ok(claims)
    }

    /// The `iss` of a token whose shape [`TokenValidator::inspect`] accepted, read before its
    /// signature is checked, only to pick the issuer whose keys may verify it.
    pub fn issuer_of(&self, token: &str) -> Result<String, Rejection> {
        let payload = token.split('.').nth(1).ok_or(Rejection::Malformed)?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| Rejection::Malformed)?;
        // Parsed as strictly as the claims will be: an object, no member twice.
        let StrictObject(mut members) =
            serde_json::from_slice(&payload).map_err(|_| Rejection::MalformedClaims)?;
        match members.remove("iss") {
            Some(Value::String(iss)) => Ok(iss),
            // A null claim is an absent one, as for the other registered claims.
            None | Some(Value::Null) => Err(Rejection::MissingIss),
            Some(_) => Err(Rejection::MalformedClaims),
        }
    }

    /// What jsonwebtoken does not check: an audience in another claim, the configured
    /// required claims, and the profile's claims.
    fn check_claims(&self, claims: &Claims) -> Result<(), Rejection> {
        if let Some((name, audiences)) = &self.audience_claim {
            let found = match claims.member(name) {
                None => return Err(Rejection::MissingAud),
                Some(Value::String(one)) => audiences.contains(one),
                Some(Value::Array(many)) => many
                    .iter()
                    .any(|a| a.as_str().is_some_and(|a| audiences.iter().any(|b| b == a))),
                Some(_) => return Err(Rejection::MalformedClaims),
            };
            if !found {
                return Err(Rejection::WrongAudience);
            }
        }
        for (name, value) in &self.required_claims {
            let present = match name.as_str() {
                "sub" => claims.sub.as_deref() == Some(value.as_str()),
                "iss" => claims.iss.as_deref() == Some(value.as_str()),
                other => claims.member(other).and_then(Value::as_str) == Some(value.as_str()),
            };
            if !present {
                return Err(Rejection::RequiredClaim);
            }
        }
        if self.profile == Profile::Rfc9068 {
            let string = |name: &str| claims.member(name).map(Value::is_string);
            if claims.sub.is_none() {
                return Err(Rejection::MissingSub);
            }
            if claims.iat.is_none() {
                return Err(Rejection::MissingIat);
            }
            match string("client_id") {
                None => return Err(Rejection::MissingClientId),
                Some(false) => return Err(Rejection::MalformedClaims),
                Some(true) => {}
            }
            match string("jti") {
                None => return Err(Rejection::MissingJti),
                Some(false) => return Err(Rejection::MalformedClaims),
                Some(true) => {}
            }
        }
        Ok(())
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
        TokenValidator::new(&settings())
    }

    fn settings() -> AuthSettings {
        AuthSettings {
            issuers: vec![crate::settings::IssuerSettings {
                issuer: "https://issuer/".to_owned(),
                keys: crate::settings::KeySource::Jwks(
                    "https://issuer/.well-known/jwks.json".to_owned(),
                ),
                require_https: true,
            }],
            audiences: vec!["api".to_owned()],
            audience_claim: "aud".to_owned(),
            required_claims: Vec::new(),
            permissions_claim: "/permissions".to_owned(),
            admin_permission: "read:admin-messages".to_owned(),
            profile: Profile::Auth0,
            algorithms: vec![Algorithm::RS256],
            leeway: std::time::Duration::ZERO,
            max_token_bytes: 8192,
            dpop: crate::settings::DpopSettings::default(),
        }
    }

    fn claims(value: serde_json::Value) -> Claims {
        serde_json::from_value(value).unwrap()
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

    #[test]
    fn the_issuer_is_read_before_any_key_is_looked_up() {
        let validator = validator();
        let encode = |v: &serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let with_payload = |payload: &serde_json::Value| {
            format!(
                "{}.{}.c2ln",
                encode(&json!({"alg": "RS256"})),
                encode(payload)
            )
        };
        assert_eq!(
            validator.issuer_of(&with_payload(&json!({"iss": "https://a/"}))),
            Ok("https://a/".to_owned())
        );
        for absent in [json!({"sub": "x"}), json!({"iss": null})] {
            assert_eq!(
                validator.issuer_of(&with_payload(&absent)),
                Err(Rejection::MissingIss)
            );
        }
        for bad in [
            json!({"iss": ["https://a/"]}),
            json!({"iss": 7}),
            json!([1]),
        ] {
            assert_eq!(
                validator.issuer_of(&with_payload(&bad)),
                Err(Rejection::MalformedClaims),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_rfc_9068_profile_wants_at_jwt_and_its_claims() {
        let validator = TokenValidator::new(&AuthSettings {
            profile: Profile::Rfc9068,
            ..settings()
        });
        for typ in ["at+jwt", "application/at+jwt"] {
            let header = json!({"alg": "RS256", "kid": "k", "typ": typ});
            assert!(validator.inspect(&token_with_header(header)).is_ok());
        }
        for header in [
            json!({"alg": "RS256", "kid": "k"}),
            json!({"alg": "RS256", "kid": "k", "typ": "JWT"}),
        ] {
            assert_eq!(
                validator.inspect(&token_with_header(header)),
                Err(Rejection::UnexpectedType)
            );
        }
        let full = json!({"iss": "https://issuer/", "aud": "api", "exp": 2_000_000_000u64,
            "sub": "s", "client_id": "c", "iat": 1, "jti": "j"});
        assert_eq!(validator.check_claims(&claims(full.clone())), Ok(()));
        for (name, reason) in [
            ("sub", Rejection::MissingSub),
            ("client_id", Rejection::MissingClientId),
            ("iat", Rejection::MissingIat),
            ("jti", Rejection::MissingJti),
        ] {
            let mut without = full.clone();
            without.as_object_mut().unwrap().remove(name);
            assert_eq!(validator.check_claims(&claims(without)), Err(reason));
        }
        let mut numeric = full.clone();
        numeric["jti"] = json!(7);
        assert_eq!(
            validator.check_claims(&claims(numeric)),
            Err(Rejection::MalformedClaims)
        );
    }

    #[test]
    fn another_audience_claim_and_required_claims_are_checked_exactly() {
        let validator = TokenValidator::new(&AuthSettings {
            audiences: vec!["client-1".to_owned(), "client-2".to_owned()],
            audience_claim: "client_id".to_owned(),
            required_claims: vec![("token_use".to_owned(), "access".to_owned())],
            ..settings()
        });
        let base = json!({"iss": "https://issuer/", "exp": 2_000_000_000u64,
            "client_id": "client-2", "token_use": "access"});
        assert_eq!(validator.check_claims(&claims(base.clone())), Ok(()));
        for (name, value, reason) in [
            ("client_id", json!("client-3"), Rejection::WrongAudience),
            ("client_id", json!(7), Rejection::MalformedClaims),
            ("token_use", json!("id"), Rejection::RequiredClaim),
            ("token_use", json!("Access"), Rejection::RequiredClaim),
            ("token_use", json!(["access"]), Rejection::RequiredClaim),
        ] {
            let mut c = base.clone();
            c[name] = value.clone();
            assert_eq!(
                validator.check_claims(&claims(c)),
                Err(reason),
                "{name}={value}"
            );
        }
        let mut several = base.clone();
        several["client_id"] = json!(["client-3", "client-1"]);
        assert_eq!(validator.check_claims(&claims(several)), Ok(()));
        let mut missing = base.clone();
        missing.as_object_mut().unwrap().remove("client_id");
        assert_eq!(
            validator.check_claims(&claims(missing)),
            Err(Rejection::MissingAud)
        );
    }
}
