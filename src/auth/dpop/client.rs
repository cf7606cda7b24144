//! The client side of DPoP: an ES256 key pair and the proofs it signs. Used by
//! `hello-world-api dpop`, the tests and the benchmark; the API itself only verifies.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use derive_more::{Display, Error};
use serde_json::{Map, Value, json};

use super::proof::{access_token_hash, thumbprint};

/// Why a client key could not be made, read or used.
#[derive(Debug, Display, Error)]
pub enum ClientKeyError {
    #[display("cannot generate an EC P-256 key")]
    Generate,
    #[display("not an EC P-256 private key in PKCS#8 PEM")]
    Invalid,
    #[display("signing failed")]
    Sign,
}

/// An EC P-256 key pair whose public half goes in every proof's `jwk`.
pub struct ClientKey {
    pkcs8: Vec<u8>,
    pair: EcdsaKeyPair,
    jwk: Map<String, Value>,
    jkt: String,
}

impl std::fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientKey")
            .field("jkt", &self.jkt)
            .finish_non_exhaustive()
    }
}

impl ClientKey {
    pub fn generate() -> Result<Self, ClientKeyError> {
        let document =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .map_err(|_| ClientKeyError::Generate)?;
        Self::from_pkcs8(document.as_ref())
    }

    /// The key of a PKCS#8 PEM file, as [`ClientKey::to_pem`] writes it.
    pub fn from_pem(text: &str) -> Result<Self, ClientKeyError> {
        let block = pem::parse(text).map_err(|_| ClientKeyError::Invalid)?;
        if block.tag() != "PRIVATE KEY" {
            return Err(ClientKeyError::Invalid);
        }
        Self::from_pkcs8(block.contents())
    }

    fn from_pkcs8(der: &[u8]) -> Result<Self, ClientKeyError> {
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
            .map_err(|_| ClientKeyError::Invalid)?;
        // The uncompressed point: 0x04, then x and y of 32 bytes each.
        let point = pair.public_key().as_ref();
        if point.len() != 65 {
            return Err(ClientKeyError::Invalid);
        }
        let mut jwk = Map::new();
        jwk.insert("kty".into(), json!("EC"));
        jwk.insert("crv".into(), json!("P-256"));
        jwk.insert("x".into(), json!(URL_SAFE_NO_PAD.encode(&point[1..33])));
        jwk.insert("y".into(), json!(URL_SAFE_NO_PAD.encode(&point[33..])));
        let jkt = thumbprint(&jwk).ok_or(ClientKeyError::Invalid)?;
        Ok(Self {
            pkcs8: der.to_vec(),
            pair,
            jwk,
            jkt,
        })
    }

    pub fn to_pem(&self) -> String {
        pem::encode(&pem::Pem::new("PRIVATE KEY", self.pkcs8.clone()))
    }

    /// The public key as a JWK.
    pub fn jwk(&self) -> &Map<String, Value> {
        &self.jwk
    }

    /// Its RFC 7638 thumbprint: what a bound token carries in `cnf.jkt`.
    pub fn thumbprint(&self) -> &str {
        &self.jkt
    }

    /// A fresh proof for `method` on `url`, for `token` (`ath`) and with the server's `nonce`
    /// when given, issued `now` (Unix seconds).
    pub fn proof(
        &self,
        method: &str,
        url: &str,
        token: Option<&str>,
        nonce: Option<&str>,
        now: u64,
    ) -> Result<String, ClientKeyError> {
        let mut jti = [0_u8; 16];
        aws_lc_rs::rand::fill(&mut jti).map_err(|_| ClientKeyError::Sign)?;
        let mut claims = json!({
            "jti": URL_SAFE_NO_PAD.encode(jti),
            "htm": method,
            "htu": url,
            "iat": now,
        });
        if let Some(token) = token {
            claims["ath"] = json!(access_token_hash(token));
        }
        if let Some(nonce) = nonce {
            claims["nonce"] = json!(nonce);
        }
        self.sign(&self.header(), &claims)
    }

    /// The header of its proofs: `typ` `dpop+jwt`, `alg` ES256 and the public key.
    pub fn header(&self) -> Value {
        json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk})
    }

    /// Any header and claims, signed with this key (ES256): the tests' way to make bad proofs.
    pub fn sign(&self, header: &Value, claims: &Value) -> Result<String, ClientKeyError> {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self
            .pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .map_err(|_| ClientKeyError::Sign)?;
        Ok(format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::super::proof::verify;
    use super::*;
    use jsonwebtoken::Algorithm;

    #[test]
    fn its_proofs_verify_with_the_key_they_carry_and_survive_a_pem_round_trip() {
        let key = ClientKey::generate().unwrap();
        let again = ClientKey::from_pem(&key.to_pem()).unwrap();
        assert_eq!(key.thumbprint(), again.thumbprint());
        let proof = again
            .proof(
                "GET",
                "http://localhost:6060/x",
                Some("token"),
                Some("n"),
                1000,
            )
            .unwrap();
        let verified = verify(&proof, &[Algorithm::ES256]).unwrap();
        assert_eq!(verified.jkt, key.thumbprint());
        assert_eq!((verified.htm.as_str(), verified.iat), ("GET", 1000));
        assert_eq!(
            verified.ath.as_deref(),
            Some(access_token_hash("token").as_str())
        );
        assert_eq!(verified.nonce.as_deref(), Some("n"));
        assert!(
            verify(&proof, &[Algorithm::RS256]).is_err(),
            "ES256 not allowed"
        );
        assert!(ClientKey::from_pem("junk").is_err());
    }
}
