//! The one error type handlers and extractors return, and how it becomes an HTTP answer.
//!
//! Which variant to use where:
//! - no usable credentials at all (no `Authorization` header, another scheme): [`ApiError::MissingCredentials`];
//! - a bearer token that was refused for any reason: [`ApiError::InvalidToken`] with the [`Rejection`];
//! - a valid token that lacks a permission: [`ApiError::InsufficientPermission`];
//! - no signing key could be obtained from the issuer: [`ApiError::KeysUnavailable`] (never blame the client);
//! - a `kid` the key set lacks while the issuer cannot be asked: [`ApiError::UncheckedKey`] (likewise);
//! - a request refused before routing: [`ApiError::HeadersTooLarge`], [`ApiError::MisdirectedRequest`];
//! - a framework answer (unknown path, wrong method): [`ApiError::for_status`];
//! - anything that is our own fault: [`ApiError::Internal`] (log the cause where it happens).
//!
//! Every answer is `{"message": …}` JSON. Authentication errors add the RFC 6750 `error` and
//! `error_description` fields and a matching `WWW-Authenticate` header.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use derive_more::{Display, Error};
use serde::Serialize;

/// The `realm` announced in every `WWW-Authenticate` challenge.
pub const REALM: &str = "hello-world-api";

/// Why a bearer token was refused. The text is the RFC 6750 `error_description`:
/// short, stable, free of quotes and backslashes, and never a copy of client input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Display)]
pub enum Rejection {
    #[display("malformed authorization header")]
    MalformedHeader,
    #[display("token too large")]
    TooLarge,
    #[display("malformed token")]
    Malformed,
    #[display("malformed claims")]
    MalformedClaims,
    #[display("algorithm not allowed")]
    AlgorithmNotAllowed,
    #[display("algorithm does not match key")]
    AlgorithmMismatch,
    #[display("unsupported critical header")]
    UnsupportedCritical,
    #[display("unexpected token type")]
    UnexpectedType,
    #[display("missing key id")]
    MissingKeyId,
    #[display("unknown signing key")]
    UnknownKey,
    #[display("invalid signature")]
    BadSignature,
    #[display("token expired")]
    Expired,
    #[display("token not yet valid")]
    NotYetValid,
    #[display("wrong audience")]
    WrongAudience,
    #[display("wrong issuer")]
    WrongIssuer,
    #[display("missing exp claim")]
    MissingExp,
    #[display("missing iss claim")]
    MissingIss,
    #[display("missing aud claim")]
    MissingAud,
    #[display("missing sub claim")]
    MissingSub,
    #[display("missing iat claim")]
    MissingIat,
    #[display("missing client_id claim")]
    MissingClientId,
    #[display("missing jti claim")]
    MissingJti,
    /// A DPoP-bound token (`cnf.jkt`) sent with the `Bearer` scheme.
    #[display("DPoP-bound token used as a bearer token")]
    BoundTokenAsBearer,
    /// The `DPoP` scheme with a token bound to no key.
    #[display("token is not DPoP-bound")]
    NotBound,
    /// The proof's key is not the one the token is bound to.
    #[display("token bound to another key")]
    WrongProofKey,
    /// `auth.dpop` is `required` and the request used `Bearer`.
    #[display("bearer tokens are not accepted: use DPoP")]
    BearerNotAccepted,
    /// A claim of `auth.required_claims` is absent or has another value.
    #[display("required claim missing or different")]
    RequiredClaim,
}

impl Rejection {
    /// The reason as a metric label value: the description with underscores.
    pub fn code(self) -> &'static str {
        match self {
            Rejection::MalformedHeader => "malformed_authorization_header",
            Rejection::TooLarge => "token_too_large",
            Rejection::Malformed => "malformed_token",
            Rejection::MalformedClaims => "malformed_claims",
            Rejection::AlgorithmNotAllowed => "algorithm_not_allowed",
            Rejection::AlgorithmMismatch => "algorithm_does_not_match_key",
            Rejection::UnsupportedCritical => "unsupported_critical_header",
            Rejection::UnexpectedType => "unexpected_token_type",
            Rejection::MissingKeyId => "missing_key_id",
            Rejection::UnknownKey => "unknown_signing_key",
            Rejection::BadSignature => "invalid_signature",
            Rejection::Expired => "token_expired",
            Rejection::NotYetValid => "token_not_yet_valid",
            Rejection::WrongAudience => "wrong_audience",
            Rejection::WrongIssuer => "wrong_issuer",
            Rejection::MissingExp => "missing_exp_claim",
            Rejection::MissingIss => "missing_iss_claim",
            Rejection::MissingAud => "missing_aud_claim",
            Rejection::MissingSub => "missing_sub_claim",
            Rejection::MissingIat => "missing_iat_claim",
            Rejection::MissingClientId => "missing_client_id_claim",
            Rejection::MissingJti => "missing_jti_claim",
            Rejection::BoundTokenAsBearer => "bound_token_as_bearer",
            Rejection::NotBound => "token_not_bound",
            Rejection::WrongProofKey => "wrong_proof_key",
            Rejection::BearerNotAccepted => "bearer_not_accepted",
            Rejection::RequiredClaim => "required_claim_missing_or_different",
        }
    }
}

/// Why a proof was refused: the `error_description` of `invalid_dpop_proof`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Display)]
pub enum ProofRejection {
    #[display("missing DPoP proof")]
    Missing,
    #[display("more than one DPoP proof")]
    Several,
    #[display("DPoP proof too large")]
    TooLarge,
    #[display("malformed DPoP proof")]
    Malformed,
    #[display("DPoP proof type is not dpop+jwt")]
    WrongType,
    #[display("DPoP proof algorithm not allowed")]
    Algorithm,
    #[display("DPoP proof key is not a public key")]
    PrivateKey,
    #[display("DPoP proof key unusable")]
    UnusableKey,
    #[display("DPoP proof signature invalid")]
    Signature,
    #[display("DPoP proof without a valid {_0} claim")]
    Claim(#[display(ignore)] &'static str),
    #[display("DPoP proof method mismatch")]
    Method,
    #[display("DPoP proof URL mismatch")]
    Url,
    #[display("DPoP proof too old")]
    TooOld,
    #[display("DPoP proof issued in the future")]
    FromTheFuture,
    #[display("DPoP proof access token hash mismatch")]
    AccessTokenHash,
    #[display("DPoP proof replayed")]
    Replayed,
}

impl ProofRejection {
    /// A stable label for metrics.
    pub fn code(self) -> &'static str {
        match self {
            ProofRejection::Missing => "missing_proof",
            ProofRejection::Several => "several_proofs",
            ProofRejection::TooLarge => "proof_too_large",
            ProofRejection::Malformed => "malformed_proof",
            ProofRejection::WrongType => "wrong_type",
            ProofRejection::Algorithm => "algorithm_not_allowed",
            ProofRejection::PrivateKey => "private_key",
            ProofRejection::UnusableKey => "unusable_key",
            ProofRejection::Signature => "bad_signature",
            ProofRejection::Claim(_) => "bad_claim",
            ProofRejection::Method => "method_mismatch",
            ProofRejection::Url => "url_mismatch",
            ProofRejection::TooOld => "too_old",
            ProofRejection::FromTheFuture => "from_the_future",
            ProofRejection::AccessTokenHash => "ath_mismatch",
            ProofRejection::Replayed => "replayed",
        }
    }
}

/// Every error the HTTP layer can answer with. Its `Display` is the answer's `message`.
#[derive(Debug, Error)]
pub enum ApiError {
    MissingCredentials,
    InvalidToken(#[error(not(source))] Rejection),
    InsufficientPermission {
        /// The permissions the route requires, announced as the challenge's `scope`.
        #[error(not(source))]
        required: &'static [&'static str],
    },
    KeysUnavailable {
        /// Seconds until the next attempt to fetch keys, for `Retry-After`.
        retry_after_secs: u64,
    },
    /// The token's `kid` is not in the key set, and the issuer could not be asked whether it
    /// has a new one: as unknowable as no keys at all, and answered the same way.
    UncheckedKey {
        /// Seconds until the next attempt to fetch keys, for `Retry-After`.
        retry_after_secs: u64,
    },
    NotFound,
    MethodNotAllowed,
    HeadersTooLarge,
    /// The request named a host other than loopback while the development issuer runs.
    MisdirectedRequest,
    Internal,
    /// A DPoP proof was refused (RFC 9449 §7.1, `invalid_dpop_proof`).
    InvalidProof(#[error(not(source))] ProofRejection),
    /// Proofs must carry the server's current nonce (RFC 9449 §9), sent in `DPoP-Nonce`.
    UseDpopNonce {
        #[error(not(source))]
        nonce: String,
    },
    /// The replay store is full of live proofs: this proof cannot be checked now.
    ProofsUnchecked,
    /// An authentication error with the challenges DPoP adds (see
    /// [`crate::auth::dpop::Dpop::challenge`]).
    Challenged {
        #[error(not(source))]
        error: Box<ApiError>,
        #[error(not(source))]
        challenges: Vec<String>,
    },
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

/// The JSON body of every error.
#[derive(Debug, Serialize)]
pub struct ErrorBody<'a> {
    pub message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

impl ErrorBody<'_> {
    /// The body's schema in the API's description (`#/components/schemas/Error`).
    pub fn schema() -> utoipa::openapi::schema::Schema {
        use crate::openapi::schemas::{object, one_of, string};
        object(
            [
                ("message", string("What went wrong, for people")),
                (
                    "error",
                    one_of([
                        "invalid_token",
                        "insufficient_scope",
                        "invalid_dpop_proof",
                        "use_dpop_nonce",
                    ]),
                ),
                (
                    "error_description",
                    string("Why the token was refused, or the permission it lacks"),
                ),
            ],
            &["message"],
        )
    }

    /// The body as JSON bytes. Serialising a struct of strings cannot fail; the fallback keeps
    /// that promise without a panic path.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self)
            .unwrap_or_else(|_| r#"{"message":"Internal server error"}"#.to_owned())
    }
}

impl ApiError {
    /// The `message` of the answer: the one place each text is written.
    pub fn message(&self) -> &'static str {
        match self {
            ApiError::MissingCredentials => "Requires authentication",
            ApiError::InvalidToken(_) => "Bad credentials",
            ApiError::InsufficientPermission { .. } => "Permission denied",
            ApiError::KeysUnavailable { .. } | ApiError::UncheckedKey { .. } => {
                "Unable to verify credentials"
            }
            ApiError::NotFound => "Not Found",
            ApiError::MethodNotAllowed => "Method Not Allowed",
            ApiError::HeadersTooLarge => "Request Header Fields Too Large",
            ApiError::MisdirectedRequest => {
                "Misdirected Request: while the development issuer runs, this server answers \
                 only requests to localhost, 127.0.0.1 or [::1]"
            }
            ApiError::Internal => "Internal server error",
            ApiError::InvalidProof(_) | ApiError::UseDpopNonce { .. } => "Bad credentials",
            ApiError::ProofsUnchecked => "Unable to verify credentials",
            ApiError::Challenged { error, .. } => error.message(),
        }
    }

    /// The variant for a status the framework answered by itself (unknown path, wrong method).
    pub fn for_status(status: StatusCode) -> Option<Self> {
        match status {
            StatusCode::NOT_FOUND => Some(ApiError::NotFound),
            StatusCode::METHOD_NOT_ALLOWED => Some(ApiError::MethodNotAllowed),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => Some(ApiError::HeadersTooLarge),
            StatusCode::INTERNAL_SERVER_ERROR => Some(ApiError::Internal),
            _ => None,
        }
    }

    fn oauth_error(&self) -> Option<&'static str> {
        match self {
            ApiError::InvalidToken(_) => Some("invalid_token"),
            ApiError::InsufficientPermission { .. } => Some("insufficient_scope"),
            ApiError::InvalidProof(_) => Some("invalid_dpop_proof"),
            ApiError::UseDpopNonce { .. } => Some("use_dpop_nonce"),
            ApiError::Challenged { error, .. } => error.oauth_error(),
            _ => None,
        }
    }

    /// The parameters of the challenge for authentication errors (`realm`, and `error` with
    /// its description or scope), `None` for the rest.
    pub fn challenge_params(&self) -> Option<String> {
        let error = |code: &str, description: &dyn std::fmt::Display| {
            Some(format!(
                r#"realm="{REALM}", error="{code}", error_description="{description}""#
            ))
        };
        match self {
            ApiError::MissingCredentials => Some(format!(r#"realm="{REALM}""#)),
            ApiError::InvalidToken(reason) => error("invalid_token", reason),
            ApiError::InsufficientPermission { required } => Some(format!(
                r#"realm="{REALM}", error="insufficient_scope", scope="{}""#,
                required.join(" ")
            )),
            ApiError::InvalidProof(reason) => error("invalid_dpop_proof", reason),
            ApiError::UseDpopNonce { .. } => error("use_dpop_nonce", &NONCE_REQUIRED),
            ApiError::Challenged { error, .. } => error.challenge_params(),
            _ => None,
        }
    }

    /// The RFC 6750 §3 challenge for authentication errors (RFC 9449's `DPoP` for a refused
    /// proof), `None` for the rest.
    pub fn www_authenticate(&self) -> Option<String> {
        let params = self.challenge_params()?;
        Some(match self {
            ApiError::InvalidProof(_) | ApiError::UseDpopNonce { .. } => format!("DPoP {params}"),
            _ => format!("Bearer {params}"),
        })
    }

    fn body(&self) -> ErrorBody<'static> {
        if let ApiError::Challenged { error, .. } = self {
            return error.body();
        }
        let error_description = match self {
            ApiError::InvalidToken(reason) => Some(reason.to_string()),
            ApiError::InvalidProof(reason) => Some(reason.to_string()),
            ApiError::UseDpopNonce { .. } => Some(NONCE_REQUIRED.to_owned()),
            ApiError::InsufficientPermission { required } => Some(match required {
                [one] => format!("requires the {one} permission"),
                all => format!("requires the {} permissions", all.join(", ")),
            }),
            _ => None,
        };
        ErrorBody {
            message: self.message(),
            error: self.oauth_error(),
            error_description,
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::MissingCredentials | ApiError::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            ApiError::InsufficientPermission { .. } => StatusCode::FORBIDDEN,
            ApiError::KeysUnavailable { .. } | ApiError::UncheckedKey { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ApiError::MisdirectedRequest => StatusCode::MISDIRECTED_REQUEST,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::InvalidProof(_) | ApiError::UseDpopNonce { .. } => StatusCode::UNAUTHORIZED,
            ApiError::ProofsUnchecked => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Challenged { error, .. } => error.status_code(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Challenged { error, challenges } = self {
            let mut response = error.error_response();
            let headers = response.headers_mut();
            headers.remove(header::WWW_AUTHENTICATE);
            for challenge in challenges {
                if let Ok(value) = HeaderValue::from_str(challenge) {
                    headers.append(header::WWW_AUTHENTICATE, value);
                }
            }
            return response;
        }
        let mut response = HttpResponse::build(self.status_code());
        response.content_type(mime_json());
        if let Some(challenge) = self.www_authenticate()
            && let Ok(value) = HeaderValue::from_str(&challenge)
        {
            response.insert_header((header::WWW_AUTHENTICATE, value));
        }
        if let ApiError::KeysUnavailable { retry_after_secs }
        | ApiError::UncheckedKey { retry_after_secs } = self
        {
            response.insert_header((header::RETRY_AFTER, retry_after_secs.max(&1).to_string()));
        }
        if let ApiError::ProofsUnchecked = self {
            response.insert_header((header::RETRY_AFTER, "1"));
        }
        if let ApiError::UseDpopNonce { nonce } = self
            && let Ok(value) = HeaderValue::from_str(nonce)
        {
            response.insert_header((DPOP_NONCE, value));
        }
        response.body(self.body().to_json())
    }
}

/// The description of `use_dpop_nonce`.
const NONCE_REQUIRED: &str = "a current DPoP nonce is required: use the one in DPoP-Nonce";

/// The header carrying the server's DPoP nonce (RFC 9449 §8.1).
pub const DPOP_NONCE: header::HeaderName = header::HeaderName::from_static("dpop-nonce");

/// `application/json`, the content type of every answer.
pub fn mime_json() -> HeaderValue {
    HeaderValue::from_static("application/json")
}

/// The `message` used when a framework-generated error (404, 405, 400, …) is rewritten as
/// JSON: our own text where we have a variant for the status, else its reason phrase.
pub fn message_for_status(status: StatusCode) -> &'static str {
    ApiError::for_status(status).map_or_else(
        || status.canonical_reason().unwrap_or("Error"),
        |error| error.message(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::to_bytes;

    async fn parts(error: ApiError) -> (StatusCode, Option<String>, serde_json::Value) {
        let response = error.error_response();
        let status = response.status();
        let challenge = response
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = to_bytes(response.into_body()).await.unwrap_or_default();
        let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        (status, challenge, body)
    }

    #[actix_web::test]
    async fn missing_credentials_is_401_with_a_bare_challenge() {
        let (status, challenge, body) = parts(ApiError::MissingCredentials).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            challenge.as_deref(),
            Some(r#"Bearer realm="hello-world-api""#)
        );
        assert_eq!(
            body,
            serde_json::json!({"message": "Requires authentication"})
        );
    }

    #[actix_web::test]
    async fn invalid_token_is_401_naming_the_reason() {
        let (status, challenge, body) = parts(ApiError::InvalidToken(Rejection::Expired)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            challenge.as_deref(),
            Some(
                r#"Bearer realm="hello-world-api", error="invalid_token", error_description="token expired""#
            )
        );
        assert_eq!(body["message"], "Bad credentials");
        assert_eq!(body["error"], "invalid_token");
        assert_eq!(body["error_description"], "token expired");
    }

    #[actix_web::test]
    async fn insufficient_permission_is_403_announcing_the_scope() {
        let error = ApiError::InsufficientPermission {
            required: &["read:admin-messages"],
        };
        let (status, challenge, body) = parts(error).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(
            challenge.as_deref(),
            Some(
                r#"Bearer realm="hello-world-api", error="insufficient_scope", scope="read:admin-messages""#
            )
        );
        assert_eq!(body["message"], "Permission denied");
    }

    #[actix_web::test]
    async fn keys_unavailable_is_503_with_retry_after_and_no_challenge() {
        let response = ApiError::KeysUnavailable {
            retry_after_secs: 0,
        }
        .error_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            response
                .headers()
                .get(header::RETRY_AFTER)
                .map(|v| v.as_bytes()),
            Some(&b"1"[..])
        );
        assert!(response.headers().get(header::WWW_AUTHENTICATE).is_none());
    }

    #[actix_web::test]
    async fn not_found_method_not_allowed_and_internal_have_their_messages() {
        for (error, status, message) in [
            (ApiError::NotFound, StatusCode::NOT_FOUND, "Not Found"),
            (
                ApiError::MethodNotAllowed,
                StatusCode::METHOD_NOT_ALLOWED,
                "Method Not Allowed",
            ),
            (
                ApiError::Internal,
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal server error",
            ),
        ] {
            let (got_status, challenge, body) = parts(error).await;
            assert_eq!(got_status, status);
            assert_eq!(challenge, None);
            assert_eq!(body, serde_json::json!({ "message": message }));
        }
    }

    #[test]
    fn every_rejection_reason_is_safe_inside_a_quoted_string() {
        use Rejection::*;
        for reason in [
            MalformedHeader,
            TooLarge,
            Malformed,
            MalformedClaims,
            AlgorithmNotAllowed,
            AlgorithmMismatch,
            UnsupportedCritical,
            UnexpectedType,
            MissingKeyId,
            UnknownKey,
            BadSignature,
            Expired,
            NotYetValid,
            WrongAudience,
            WrongIssuer,
            MissingExp,
            MissingIss,
            MissingAud,
        ] {
            let text = reason.to_string();
            assert_eq!(reason.code(), text.replace(' ', "_"));
            assert!(
                text.bytes()
                    .all(|b| (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\'),
                "{text}"
            );
        }
    }
}
