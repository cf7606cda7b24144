//! A request id for every request: the caller's `X-Request-Id` when it is sane, else a new one.
//! It is echoed in the answer and named in log lines about the request.

use std::fmt;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::HttpMessage;
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A prefix random per process, so ids from two instances do not collide.
static PREFIX: LazyLock<String> = LazyLock::new(|| {
    let mut bytes = [0u8; 4];
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        bytes = std::process::id().to_be_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
});
static NEXT: AtomicU64 = AtomicU64::new(1);

/// The id of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(HeaderValue);

impl RequestId {
    /// The incoming `X-Request-Id` if it is 1 to 64 characters of `[A-Za-z0-9._-]`, else a new id.
    pub fn for_headers(headers: &HeaderMap) -> Self {
        headers
            .get(&X_REQUEST_ID)
            .filter(|v| {
                let bytes = v.as_bytes();
                (1..=64).contains(&bytes.len())
                    && bytes
                        .iter()
                        .all(|b| b.is_ascii_alphanumeric() || b".-_".contains(b))
            })
            .map(|v| RequestId(v.clone()))
            .unwrap_or_else(Self::new)
    }

    fn new() -> Self {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let text = format!("{}-{n:x}", *PREFIX);
        RequestId(HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static("unknown")))
    }

    pub fn header_value(&self) -> HeaderValue {
        self.0.clone()
    }

    /// The id of `req`, or `-` when the middleware did not run.
    pub fn of(req: &impl HttpMessage) -> String {
        req.extensions()
            .get::<RequestId>()
            .map_or_else(|| "-".to_owned(), ToString::to_string)
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.to_str().unwrap_or("-"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(X_REQUEST_ID.clone(), HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn a_sane_incoming_id_is_kept() {
        assert_eq!(
            RequestId::for_headers(&with("abc-123_x.y")).to_string(),
            "abc-123_x.y"
        );
    }

    #[test]
    fn an_odd_or_long_incoming_id_is_replaced() {
        let long = "x".repeat(65);
        for value in ["a b", "a\"b", long.as_str(), "a/b", "a:b"] {
            let Ok(header) = HeaderValue::from_str(value) else {
                continue;
            };
            let mut headers = HeaderMap::new();
            headers.insert(X_REQUEST_ID.clone(), header);
            assert_ne!(RequestId::for_headers(&headers).to_string(), value);
        }
    }

    #[test]
    fn new_ids_are_distinct() {
        let a = RequestId::for_headers(&HeaderMap::new());
        let b = RequestId::for_headers(&HeaderMap::new());
        assert_ne!(a, b);
    }
}
