//! Answers as the tests read them: status, headers and JSON body in one value.

use actix_web::http::header::HeaderMap;
use awc::ClientRequest;
use serde_json::Value;

/// An answer, with its body parsed as JSON when it is JSON.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    /// The header `name`, when present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The error body's `message`, or "".
    pub fn message(&self) -> &str {
        self.body["message"].as_str().unwrap_or("")
    }

    /// The error body's `error_description`, or "".
    pub fn description(&self) -> &str {
        self.body["error_description"].as_str().unwrap_or("")
    }
}

/// Sends `request` without a body and reads its answer.
pub async fn send(request: ClientRequest) -> Reply {
    reply(request.send()).await
}

/// Awaits a sent request (`send`, `send_form`, `send_json`) and reads its answer.
pub async fn reply(
    sent: impl std::future::Future<Output = Result<awc::ClientResponse, awc::error::SendRequestError>>,
) -> Reply {
    let mut response = sent.await.expect("request");
    let raw = response.body().limit(1 << 20).await.expect("body").to_vec();
    Reply {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: serde_json::from_slice(&raw).unwrap_or(Value::Null),
    }
}

/// Asserts the RFC 6750 invalid-token answer with `reason` as its description.
pub fn assert_bad_credentials(reply: &Reply, reason: &str) {
    assert_eq!(reply.status, 401, "{reply:?}");
    assert_eq!(reply.message(), "Bad credentials", "{reply:?}");
    assert_eq!(reply.description(), reason, "{reply:?}");
    assert_eq!(
        reply.header("www-authenticate"),
        Some(
            format!(
                r#"Bearer realm="hello-world-api", error="invalid_token", error_description="{reason}""#
            )
            .as_str()
        ),
        "{reply:?}"
    );
}

/// A raw HTTP/1.1 GET to `127.0.0.1:port` naming `host` in its `Host` header (which a
/// client library would set from the URL): the status and the body.
pub fn raw_get(port: u16, path: &str, host: &str) -> (u16, Value) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}
