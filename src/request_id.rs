//! A request id for every request: the caller's `X-Request-Id` when it is sane, else a new one.
//! It is echoed in the answer and named in log lines about the request.

use std::cell::Cell;
use std::fmt;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::HttpMessage;
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

const HEX: &[u8; 16] = b"0123456789abcdef";

/// A prefix random per process, so ids from two instances do not collide: 8 hex digits.
static PREFIX: LazyLock<[u8; 8]> = LazyLock::new(|| {
    let mut bytes = [0u8; 4];
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        bytes = std::process::id().to_be_bytes();
    }
    let mut hex = [0u8; 8];
    for (i, b) in bytes.iter().enumerate() {
        hex[2 * i] = HEX[usize::from(b >> 4)];
        hex[2 * i + 1] = HEX[usize::from(b & 0xf)];
    }
    hex
});
static NEXT: AtomicU64 = AtomicU64::new(1);

/// Each worker thread takes numbers from [`NEXT`] in blocks, so two workers do not bounce its
/// cache line on every request. Ids stay unique within the process, not consecutive.
const BLOCK: u64 = 1024;

thread_local! {
    static RANGE: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

fn next_number() -> u64 {
    RANGE.with(|range| {
        let (mut next, mut end) = range.get();
        if next == end {
            next = NEXT.fetch_add(BLOCK, Ordering::Relaxed);
            end = next + BLOCK;
        }
        range.set((next + 1, end));
        next
    })
}

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

    /// `{prefix}-{n:x}`, written without a `format!` and its `String`.
    fn new() -> Self {
        let n = next_number();
        let mut text = [0u8; 8 + 1 + 16];
        text[..8].copy_from_slice(&*PREFIX);
        text[8] = b'-';
        let digits = ((u64::BITS - n.leading_zeros()).max(1)).div_ceil(4) as usize;
        for i in 0..digits {
            text[8 + digits - i] = HEX[((n >> (4 * i)) & 0xf) as usize];
        }
        RequestId(
            HeaderValue::from_bytes(&text[..9 + digits])
                .unwrap_or(HeaderValue::from_static("unknown")),
        )
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

    #[test]
    fn new_ids_are_the_prefix_and_a_hex_number() {
        let id = RequestId::for_headers(&HeaderMap::new()).to_string();
        let (prefix, number) = id.split_once('-').unwrap();
        assert_eq!(prefix.len(), 8, "{id}");
        assert!(prefix.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        assert!(u64::from_str_radix(number, 16).is_ok(), "{id}");
        let ids: std::collections::HashSet<String> = (0..3000)
            .map(|_| RequestId::for_headers(&HeaderMap::new()).to_string())
            .collect();
        assert_eq!(ids.len(), 3000, "unique across blocks");
    }
}
