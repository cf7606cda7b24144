//! DPoP (RFC 9449) at the resource server: which schemes a request may use, and for a
//! DPoP-bound token, the proof that the client holds its key — checked on every request, after
//! the token itself passed (the verified-token cache spares the token's signature, never the
//! proof's).
//!
//! The checks of §4.3 and §7.1, cheapest first: one `DPoP` header of bounded size; `typ`
//! `dpop+jwt`; `alg` from `auth.dpop_algorithms`; a public `jwk` of a usable size, which
//! verifies the signature; `htm` and `htu` (normalised) equal to the request's; `iat` within
//! the window; `ath` the token's hash; the key's thumbprint the token's `cnf.jkt`; the nonce,
//! when the server hands them out; and last, that the proof was not seen before.

pub mod client;
pub mod htu;
pub mod nonce;
pub mod proof;
pub mod replay;

use actix_web::HttpRequest;
use serde_json::Value;

use crate::auth::claims::Claims;
use crate::error::{ApiError, ProofRejection, REALM, Rejection};
use crate::settings::{DpopMode, DpopSettings, ServerSettings};
use nonce::Nonces;
use proof::access_token_hash;
use replay::{ReplayStore, Seen};

pub use client::{ClientKey, ClientKeyError};

/// The `Authorization` scheme a request used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Bearer,
    Dpop,
}

/// What a DPoP-bound token's proof is checked against; in app data with the authenticator.
#[derive(Debug)]
pub struct Dpop {
    mode: DpopMode,
    proofs: proof::ProofVerifier,
    /// The proof algorithms, space-separated, for the challenge's `algs`.
    algs: String,
    max_age: i64,
    max_future: i64,
    replay: ReplayStore,
    nonces: Option<Nonces>,
    public_url: Option<String>,
    trust_forwarded: bool,
}

impl Dpop {
    pub fn new(settings: &DpopSettings, server: &ServerSettings) -> Self {
        let seconds = |d: std::time::Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        Self {
            mode: settings.mode,
            algs: settings
                .algorithms
                .iter()
                .map(|a| format!("{a:?}"))
                .collect::<Vec<_>>()
                .join(" "),
            proofs: proof::ProofVerifier::new(&settings.algorithms),
            max_age: seconds(settings.max_age),
            max_future: seconds(settings.max_future),
            replay: ReplayStore::new(settings.replay_capacity),
            nonces: settings.nonce.as_ref().map(Nonces::new),
            public_url: server.public_url.clone(),
            trust_forwarded: server.trust_forwarded_headers,
        }
    }

    pub fn mode(&self) -> DpopMode {
        self.mode
    }

    /// Proofs remembered against replay.
    pub fn remembered_proofs(&self) -> usize {
        self.replay.len()
    }

    /// Whether a request may use `scheme` at all, before its token is looked at.
    pub fn admit_scheme(&self, scheme: Scheme) -> Result<(), ApiError> {
        match (self.mode, scheme) {
            // With DPoP off, its scheme is one we do not take: no credentials for us.
            (DpopMode::Disabled, Scheme::Dpop) => Err(ApiError::MissingCredentials),
            (DpopMode::Required, Scheme::Bearer) => {
                Err(ApiError::InvalidToken(Rejection::BearerNotAccepted))
            }
            _ => Ok(()),
        }
    }

    /// A valid token's binding, and with the DPoP scheme, the request's proof (`now`: Unix
    /// seconds, read only when there is a proof to check).
    pub fn check(
        &self,
        req: &HttpRequest,
        scheme: Scheme,
        token: &str,
        claims: &Claims,
        now: impl FnOnce() -> u64,
    ) -> Result<(), ApiError> {
        let jkt = bound_to(claims)?;
        let jkt = match (scheme, jkt) {
            (Scheme::Bearer, None) => return Ok(()),
            // Whoever holds a bound token must also prove they hold its key.
            (Scheme::Bearer, Some(_)) => {
                return Err(ApiError::InvalidToken(Rejection::BoundTokenAsBearer));
            }
            (Scheme::Dpop, None) => return Err(ApiError::InvalidToken(Rejection::NotBound)),
            (Scheme::Dpop, Some(jkt)) => jkt,
        };
        let proof = self.header(req).map_err(ApiError::InvalidProof)?;
        let proof = self.proofs.verify(proof).map_err(ApiError::InvalidProof)?;
        let invalid = |reason| Err(ApiError::InvalidProof(reason));
        if proof.htm != req.method().as_str() {
            return invalid(ProofRejection::Method);
        }
        let expected = htu::request_url(req, self.public_url.as_deref(), self.trust_forwarded)
            .and_then(|url| htu::normalize(&url));
        if expected.is_none() || htu::normalize(&proof.htu) != expected {
            return invalid(ProofRejection::Url);
        }
        let now = now();
        let now_secs = i64::try_from(now).unwrap_or(i64::MAX);
        if proof.iat < now_secs.saturating_sub(self.max_age) {
            return invalid(ProofRejection::TooOld);
        }
        if proof.iat > now_secs.saturating_add(self.max_future) {
            return invalid(ProofRejection::FromTheFuture);
        }
        let hash = access_token_hash(token);
        if !proof.ath.as_deref().is_some_and(|ath| {
            aws_lc_rs::constant_time::verify_slices_are_equal(ath.as_bytes(), hash.as_bytes())
                .is_ok()
        }) {
            return invalid(ProofRejection::AccessTokenHash);
        }
        if proof.jkt != jkt {
            return Err(ApiError::InvalidToken(Rejection::WrongProofKey));
        }
        if let Some(nonces) = &self.nonces
            && !proof
                .nonce
                .as_deref()
                .is_some_and(|n| nonces.accepts(n, now))
        {
            return Err(ApiError::UseDpopNonce {
                nonce: nonces.current(now),
            });
        }
        // Last: only proofs that passed everything else take room in the store. It is kept
        // until the proof's iat leaves the window.
        let until = u64::try_from(proof.iat.saturating_add(self.max_age)).unwrap_or(0);
        match self.replay.check(&proof.jkt, &proof.jti, until, now) {
            Seen::First => Ok(()),
            Seen::Replayed => invalid(ProofRejection::Replayed),
            Seen::Full => Err(ApiError::ProofsUnchecked),
        }
    }

    /// The request's one `DPoP` header, bounded.
    fn header<'r>(&self, req: &'r HttpRequest) -> Result<&'r str, ProofRejection> {
        let mut values = req.headers().get_all("dpop");
        let Some(value) = values.next() else {
            return Err(ProofRejection::Missing);
        };
        if values.next().is_some() {
            return Err(ProofRejection::Several);
        }
        if value.len() > proof::MAX_PROOF_BYTES {
            return Err(ProofRejection::TooLarge);
        }
        value.to_str().map_err(|_| ProofRejection::Malformed)
    }

    /// `error` with the challenges RFC 9449 §7.1 asks for: with DPoP on, a 401 (or 403)
    /// names the `DPoP` scheme and its `algs`; in `allowed` mode beside `Bearer`. The error
    /// itself is stated in the challenge of the scheme the request used.
    pub fn challenge(&self, error: ApiError, scheme: Option<Scheme>) -> ApiError {
        if self.mode == DpopMode::Disabled {
            return error;
        }
        let Some(params) = error.challenge_params() else {
            return error;
        };
        let bare = format!(r#"realm="{REALM}""#);
        let algs = format!(r#"algs="{}""#, self.algs);
        let about_dpop = scheme == Some(Scheme::Dpop)
            || matches!(
                error,
                ApiError::InvalidProof(_) | ApiError::UseDpopNonce { .. }
            );
        let challenges = match self.mode {
            DpopMode::Required => vec![format!("DPoP {algs}, {params}")],
            _ if about_dpop => vec![format!("Bearer {bare}"), format!("DPoP {algs}, {params}")],
            _ => vec![format!("Bearer {params}"), format!("DPoP {algs}, {bare}")],
        };
        ApiError::Challenged {
            error: Box::new(error),
            challenges,
        }
    }
}

/// The key thumbprint a token is bound to: `cnf.jkt`. A `cnf` that is there but unreadable is
/// refused, not taken for an unbound token.
fn bound_to(claims: &Claims) -> Result<Option<&str>, ApiError> {
    match claims.member("cnf") {
        None => Ok(None),
        Some(Value::Object(cnf)) => match cnf.get("jkt") {
            None => Ok(None),
            Some(Value::String(jkt)) if !jkt.is_empty() => Ok(Some(jkt)),
            Some(_) => Err(ApiError::InvalidToken(Rejection::MalformedClaims)),
        },
        Some(_) => Err(ApiError::InvalidToken(Rejection::MalformedClaims)),
    }
}
