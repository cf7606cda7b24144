//! An RS256 signing key with its public JWK and a stable, thumbprint-derived `kid`.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use jsonwebtoken::jwk::{Jwk, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

use super::IssuerError;

/// An RS256 signing key with its public JWK.
#[derive(Clone)]
pub struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    jwk: Jwk,
    pkcs8_pem: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A fresh 2048-bit RSA key.
    pub fn generate(kid: impl Into<String>) -> Result<Self, IssuerError> {
        let pair = KeyPair::generate(KeySize::Rsa2048).map_err(|_| IssuerError::KeyGeneration)?;
        let der = pair.as_der().map_err(|_| IssuerError::KeyGeneration)?;
        let pem = pem::encode(&pem::Pem::new("PRIVATE KEY", der.as_ref().to_vec()));
        Self::from_pkcs8_pem(kid, &pem)
    }

    /// A key from its PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub fn from_pkcs8_pem(kid: impl Into<String>, pem: &str) -> Result<Self, IssuerError> {
        let kid = kid.into();
        let encoding = EncodingKey::from_rsa_pem(pem.as_bytes())
            .map_err(|e| IssuerError::InvalidKey(e.to_string()))?;
        let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::RS256)
            .map_err(|e| IssuerError::InvalidKey(e.to_string()))?;
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        Ok(Self {
            kid,
            encoding,
            jwk,
            pkcs8_pem: pem.to_owned(),
        })
    }

    /// A key from its PKCS#8 PEM, identified by its RFC 7638 thumbprint: the same key always
    /// gets the same `kid`.
    pub fn from_pkcs8_pem_with_thumbprint(pem: &str) -> Result<Self, IssuerError> {
        let key = Self::from_pkcs8_pem("", pem)?;
        let kid = key
            .jwk
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|e| IssuerError::InvalidKey(e.to_string()))?;
        Self::from_pkcs8_pem(kid, pem)
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public half, as published in the JWKS.
    pub fn public_jwk(&self) -> &Jwk {
        &self.jwk
    }

    pub fn encoding_key(&self) -> &EncodingKey {
        &self.encoding
    }

    /// The private key as PKCS#8 PEM, for keeping it on disk.
    pub fn private_pem(&self) -> &str {
        &self.pkcs8_pem
    }

    /// Signs `claims` as an RS256 JWT with this key's `kid`.
    pub fn sign<T: Serialize>(&self, claims: &T) -> Result<String, IssuerError> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        self.sign_with_header(&header, claims)
    }

    /// Signs `claims` under a header of the caller's choosing.
    pub fn sign_with_header<T: Serialize>(
        &self,
        header: &Header,
        claims: &T,
    ) -> Result<String, IssuerError> {
        jsonwebtoken::encode(header, claims, &self.encoding)
            .map_err(|e| IssuerError::Signing(e.to_string()))
    }
}
