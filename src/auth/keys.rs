//! A parsed JSON Web Key Set: the verification keys by `kid`.
//!
//! Parsing is forgiving per entry and strict per set: an entry that is not a usable signature
//! key (no `kid`, `use` other than `sig`, a symmetric key, an algorithm we do not accept, bad
//! numbers) is skipped with a warning, and a set with no usable key at all is an error, so it
//! can never replace a good one.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;

use derive_more::{Display, Error};
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, KeyOperations, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use serde::Deserialize;

/// One key a token may be verified with.
pub struct VerificationKey {
    pub kid: String,
    pub decoding: DecodingKey,
    /// The JWK's own `alg`, when it names one: tokens must then use exactly it.
    pub algorithm: Option<Algorithm>,
    pub family: AlgorithmFamily,
}

impl std::fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerificationKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// Why a JWKS document gave no keys.
#[derive(Debug, Display, Error, Clone, PartialEq, Eq)]
pub enum KeySetError {
    #[display("response is not a JWKS document: {_0}")]
    NotJwks(#[error(not(source))] String),
    #[display("JWKS has no usable signing key")]
    NoUsableKeys,
}

/// The verification keys of one JWKS document.
#[derive(Debug, Default)]
pub struct KeySet {
    keys: HashMap<String, Arc<VerificationKey>>,
    /// SHA-256 over the usable entries, sorted by `kid`: equal for the same keys.
    fingerprint: [u8; 32],
}

#[derive(Deserialize)]
struct Document {
    keys: Vec<serde_json::Value>,
}

impl KeySet {
    /// Parses a JWKS document, keeping the keys usable with one of `allowed`.
    pub fn parse(body: &[u8], allowed: &[Algorithm]) -> Result<Self, KeySetError> {
        let document: Document =
            serde_json::from_slice(body).map_err(|e| KeySetError::NotJwks(e.to_string()))?;
        let mut keys = HashMap::with_capacity(document.keys.len());
        let mut kept: Vec<(String, String)> = Vec::with_capacity(document.keys.len());
        for (index, entry) in document.keys.into_iter().enumerate() {
            let text = entry.to_string();
            match usable_key(entry, allowed) {
                Ok(key) if keys.contains_key(&key.kid) => {
                    log::warn!(
                        "JWKS entry {index}: duplicate kid {:?}, keeping the first",
                        key.kid
                    );
                }
                Ok(key) => {
                    kept.push((key.kid.clone(), text));
                    keys.insert(key.kid.clone(), Arc::new(key));
                }
                Err(reason) => log::warn!("JWKS entry {index} skipped: {reason}"),
            }
        }
        if keys.is_empty() {
            return Err(KeySetError::NoUsableKeys);
        }
        kept.sort_unstable();
        let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        for (_, text) in &kept {
            context.update(text.as_bytes());
            context.update(b"\n");
        }
        let mut fingerprint = [0u8; 32];
        fingerprint.copy_from_slice(context.finish().as_ref());
        Ok(Self { keys, fingerprint })
    }

    /// Equal for two sets of the same usable keys.
    pub fn fingerprint(&self) -> [u8; 32] {
        self.fingerprint
    }

    pub fn get(&self, kid: &str) -> Option<&Arc<VerificationKey>> {
        self.keys.get(kid)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key ids, sorted (for logs and tests).
    pub fn kids(&self) -> Vec<&str> {
        let mut kids: Vec<&str> = self.keys.keys().map(String::as_str).collect();
        kids.sort_unstable();
        kids
    }
}

fn usable_key(entry: serde_json::Value, allowed: &[Algorithm]) -> Result<VerificationKey, String> {
    let jwk: Jwk = serde_json::from_value(entry).map_err(|e| format!("unparseable JWK: {e}"))?;
    let kid = match jwk.common.key_id.as_deref() {
        Some(kid) if !kid.is_empty() => kid.to_owned(),
        _ => return Err("no kid".to_owned()),
    };
    match &jwk.common.public_key_use {
        None | Some(PublicKeyUse::Signature) => {}
        Some(other) => return Err(format!("kid {kid:?} has use {other:?}, not sig")),
    }
    if let Some(ops) = &jwk.common.key_operations
        && !ops.contains(&KeyOperations::Verify)
    {
        return Err(format!("kid {kid:?} has key_ops without verify"));
    }
    let family = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => AlgorithmFamily::Rsa,
        AlgorithmParameters::EllipticCurve(_) => AlgorithmFamily::Ec,
        AlgorithmParameters::OctetKeyPair(_) => AlgorithmFamily::Ed,
        _ => return Err(format!("kid {kid:?} is not an asymmetric public key")),
    };
    let algorithm = match &jwk.common.key_algorithm {
        None => None,
        Some(declared) => {
            let algorithm = Algorithm::from_str(&declared.to_string())
                .map_err(|_| format!("kid {kid:?} declares non-signature alg {declared}"))?;
            if !allowed.contains(&algorithm) {
                return Err(format!(
                    "kid {kid:?} declares alg {declared}, which is not accepted"
                ));
            }
            if algorithm.family() != family {
                return Err(format!(
                    "kid {kid:?} declares alg {declared} for another key type"
                ));
            }
            Some(algorithm)
        }
    };
    if !allowed.iter().any(|a| a.family() == family) {
        return Err(format!(
            "kid {kid:?} is a {family:?} key; no accepted algorithm uses it"
        ));
    }
    let decoding = DecodingKey::from_jwk(&jwk).map_err(|e| format!("kid {kid:?}: {e}"))?;
    Ok(VerificationKey {
        kid,
        decoding,
        algorithm,
        family,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::issuer::SigningKey;
    use serde_json::json;

    fn rsa_jwk(kid: &str) -> serde_json::Value {
        let key = SigningKey::generate(kid).unwrap();
        serde_json::to_value(key.public_jwk()).unwrap()
    }

    fn parse(keys: Vec<serde_json::Value>) -> Result<KeySet, KeySetError> {
        let body = serde_json::to_vec(&json!({ "keys": keys })).unwrap();
        KeySet::parse(&body, &[Algorithm::RS256])
    }

    #[test]
    fn keeps_rsa_signature_keys_by_kid() {
        let set = parse(vec![rsa_jwk("a"), rsa_jwk("b")]).unwrap();
        assert_eq!(set.kids(), vec!["a", "b"]);
        assert_eq!(set.get("a").unwrap().algorithm, Some(Algorithm::RS256));
    }

    #[test]
    fn skips_unusable_entries_and_keeps_the_rest() {
        let good = rsa_jwk("good");
        let mut enc = rsa_jwk("enc");
        enc["use"] = json!("enc");
        let mut no_kid = rsa_jwk("x");
        no_kid.as_object_mut().unwrap().remove("kid");
        let mut other_alg = rsa_jwk("rs512");
        other_alg["alg"] = json!("RS512");
        let mut sign_only = rsa_jwk("ops");
        sign_only.as_object_mut().unwrap().remove("use");
        sign_only["key_ops"] = json!(["sign"]);
        let mut bad_numbers = rsa_jwk("bad");
        bad_numbers["n"] = json!("!!!not base64!!!");
        let set = parse(vec![
            good,
            enc,
            no_kid,
            other_alg,
            sign_only,
            json!({"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"}),
            json!({"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AA", "y": "AA"}),
            json!({"kty": "weird", "kid": "w"}),
            json!("not an object"),
            bad_numbers,
        ])
        .unwrap();
        assert_eq!(set.kids(), vec!["good"]);
    }

    #[test]
    fn duplicate_kids_keep_the_first() {
        let first = rsa_jwk("same");
        let second = rsa_jwk("same");
        let n = first["n"].clone();
        let set = parse(vec![first, second]).unwrap();
        assert_eq!(set.len(), 1);
        let expected = DecodingKey::from_jwk(
            &serde_json::from_value(json!({
                "kty": "RSA", "n": n, "e": "AQAB"
            }))
            .unwrap(),
        )
        .unwrap();
        assert_eq!(
            format!("{:?}", set.get("same").unwrap().decoding.kind()),
            format!("{:?}", expected.kind())
        );
    }

    #[test]
    fn a_set_without_usable_keys_is_an_error() {
        assert_eq!(parse(vec![]).unwrap_err(), KeySetError::NoUsableKeys);
        let mut enc = rsa_jwk("enc");
        enc["use"] = json!("enc");
        assert_eq!(parse(vec![enc]).unwrap_err(), KeySetError::NoUsableKeys);
    }

    #[test]
    fn a_document_that_is_not_a_jwks_is_an_error() {
        for body in [&b"<html>"[..], b"{}", b"{\"keys\": {}}", b"[]", b""] {
            assert!(
                matches!(
                    KeySet::parse(body, &[Algorithm::RS256]),
                    Err(KeySetError::NotJwks(_))
                ),
                "{body:?}"
            );
        }
    }
}
