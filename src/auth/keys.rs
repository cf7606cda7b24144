//! A parsed JSON Web Key Set: the verification keys by `kid`.
//!
//! Parsing is forgiving per entry and strict per set: an entry that is not a usable signature
//! key (no `kid`, `use` other than `sig`, a symmetric key, an algorithm we do not accept, bad
//! numbers) is skipped with a warning, and a set with no usable key at all is an error, so it
//! can never replace a good one.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use derive_more::{Display, Error};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyOperations, PublicKeyUse};
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
    strong_enough(&jwk.algorithm).map_err(|reason| format!("kid {kid:?}: {reason}"))?;
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

/// The smallest RSA modulus accepted (NIST SP 800-57, RFC 7518 §3.3).
const MIN_RSA_BITS: usize = 2048;

/// Whether the key material itself is usable: an RSA modulus of at least 2048 bits with a
/// sane exponent, an EC point of the right length for its curve, an Ed25519 key of 32 bytes.
/// Checked at load, so a set of junk keys cannot replace a good one.
pub(crate) fn strong_enough(parameters: &AlgorithmParameters) -> Result<(), String> {
    let decode = |name: &str, text: &str| {
        URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| format!("{name} is not base64url"))
    };
    match parameters {
        AlgorithmParameters::RSA(rsa) => {
            let n = decode("n", &rsa.n)?;
            let e = decode("e", &rsa.e)?;
            let bits = significant_bits(&n);
            if bits < MIN_RSA_BITS {
                return Err(format!(
                    "RSA modulus of {bits} bits, fewer than {MIN_RSA_BITS}"
                ));
            }
            let e_bits = significant_bits(&e);
            if !(2..=64).contains(&e_bits) || e.last().is_none_or(|b| b % 2 == 0) {
                return Err("RSA exponent is not an odd number of at most 64 bits".to_owned());
            }
            Ok(())
        }
        AlgorithmParameters::EllipticCurve(ec) => {
            let size = match ec.curve {
                EllipticCurve::P256 => 32,
                EllipticCurve::P384 => 48,
                EllipticCurve::P521 => 66,
                _ => return Err("EC key on an unknown curve".to_owned()),
            };
            let (x, y) = (decode("x", &ec.x)?, decode("y", &ec.y)?);
            if x.len() != size || y.len() != size {
                return Err(format!(
                    "EC point coordinates of {} and {} bytes, not {size}",
                    x.len(),
                    y.len()
                ));
            }
            Ok(())
        }
        AlgorithmParameters::OctetKeyPair(okp) => {
            if okp.curve != EllipticCurve::Ed25519 {
                return Err("OKP key on a curve other than Ed25519".to_owned());
            }
            let x = decode("x", &okp.x)?;
            if x.len() != 32 {
                return Err(format!("Ed25519 key of {} bytes, not 32", x.len()));
            }
            Ok(())
        }
        _ => Err("not an asymmetric public key".to_owned()),
    }
}

/// The bit length of a big-endian unsigned integer, leading zeros aside.
fn significant_bits(bytes: &[u8]) -> usize {
    match bytes.iter().position(|b| *b != 0) {
        Some(first) => (bytes.len() - first) * 8 - bytes[first].leading_zeros() as usize,
        None => 0,
    }
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

    fn kept(entry: serde_json::Value, algorithms: &[Algorithm]) -> bool {
        let body = serde_json::to_vec(&json!({ "keys": [entry] })).unwrap();
        KeySet::parse(&body, algorithms).is_ok()
    }

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    #[test]
    fn a_set_of_only_a_toy_rsa_key_is_refused() {
        let toy = json!({"kty": "RSA", "kid": "x", "n": "AQAB", "e": "AQAB"});
        assert!(!kept(toy, &[Algorithm::RS256]));
    }

    #[test]
    fn rsa_keys_under_2048_bits_or_with_odd_exponents_are_skipped() {
        let good = rsa_jwk("good");
        assert!(kept(good.clone(), &[Algorithm::RS256]));
        let n = URL_SAFE_NO_PAD.decode(good["n"].as_str().unwrap()).unwrap();
        assert_eq!(significant_bits(&n), 2048);
        let mut short = good.clone();
        short["n"] = json!(b64(&n[1..]));
        assert!(!kept(short, &[Algorithm::RS256]), "2040-bit modulus");
        let mut padded = good.clone();
        let mut with_zeros = vec![0u8, 0u8];
        with_zeros.extend_from_slice(&n);
        padded["n"] = json!(b64(&with_zeros));
        assert!(
            kept(padded, &[Algorithm::RS256]),
            "leading zeros do not count"
        );
        for e in [b64(&[2]), b64(&[1]), b64(&[]), b64(&[1; 9])] {
            let mut bad = good.clone();
            bad["e"] = json!(e);
            assert!(!kept(bad, &[Algorithm::RS256]), "e = {e}");
        }
    }

    #[test]
    fn ec_points_must_have_their_curves_length() {
        let point = |crv: &str, len: usize| json!({"kty": "EC", "kid": "ec", "crv": crv, "x": b64(&vec![7; len]), "y": b64(&vec![9; len])});
        let es = [Algorithm::ES256, Algorithm::ES384];
        assert!(kept(point("P-256", 32), &es));
        assert!(kept(point("P-384", 48), &es));
        assert!(!kept(point("P-256", 31), &es));
        assert!(!kept(point("P-256", 48), &es));
        assert!(!kept(point("P-384", 32), &es));
    }

    #[test]
    fn ed25519_keys_must_be_32_bytes() {
        let okp = |len: usize| json!({"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": b64(&vec![5; len])});
        assert!(kept(okp(32), &[Algorithm::EdDSA]));
        assert!(!kept(okp(31), &[Algorithm::EdDSA]));
        assert!(!kept(okp(33), &[Algorithm::EdDSA]));
    }
}
