//! Oversized and hostile requests get a quick 4xx, never a 500, a panic or unbounded memory.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use test_support::{TestApp, spawn_app};

/// Sends raw bytes and returns (status, headers and body as text). Blocking, bounded by timeouts.
fn raw(app: &TestApp, request: &[u8]) -> (u16, String) {
    let address = app.address.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    // The server may answer and close before it has read everything we send.
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    let _ = stream.take(1 << 20).read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

fn get(path: &str, headers: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{headers}\r\n")
        .into_bytes()
}

#[actix_web::test]
async fn a_64_kib_token_gets_a_quick_431_in_json() {
    let app = spawn_app().await;
    let token = "a".repeat(64 * 1024);
    let (status, text) = raw(
        &app,
        &get(
            "/api/messages/protected",
            &format!("Authorization: Bearer {token}\r\n"),
        ),
    );
    assert_eq!(status, 431, "{}", &text[..text.len().min(300)]);
    assert!(
        text.contains(r#"{"message":"Request Header Fields Too Large"}"#),
        "{text}"
    );
    assert!(
        text.to_ascii_lowercase()
            .contains("x-content-type-options: nosniff"),
        "{text}"
    );
}

#[actix_web::test]
async fn a_token_just_over_the_limit_is_refused_as_too_large_in_json() {
    let app = spawn_app().await;
    let token = format!(
        "{}.{}.{}",
        "a".repeat(4000),
        "b".repeat(4000),
        "c".repeat(400)
    );
    let (status, text) = raw(
        &app,
        &get(
            "/api/messages/protected",
            &format!("Authorization: Bearer {token}\r\n"),
        ),
    );
    assert_eq!(status, 401, "{text}");
    assert!(
        text.contains(r#""error_description":"token too large""#),
        "{text}"
    );
}

#[actix_web::test]
async fn huge_headers_get_a_quick_4xx() {
    let app = spawn_app().await;
    let (status, text) = raw(
        &app,
        &get(
            "/api/messages/public",
            &format!("X-Filler: {}\r\n", "x".repeat(40 * 1024)),
        ),
    );
    assert_eq!(status, 431, "{text}");
    assert!(text.contains(r#""message""#), "{text}");
    // Past what the HTTP layer parses at all (96 headers, 128 KiB), it answers by itself.
    let many: String = (0..200).map(|i| format!("X-H{i}: v\r\n")).collect();
    let (status, _) = raw(&app, &get("/api/messages/public", &many));
    assert!((400..500).contains(&status), "{status}");
    let (status, _) = raw(
        &app,
        &get(
            "/api/messages/public",
            &format!("X-Filler: {}\r\n", "x".repeat(200 * 1024)),
        ),
    );
    assert!((400..500).contains(&status), "{status}");
    // The server is still fine afterwards.
    assert_eq!(app.get("/api/messages/public").await.status, 200);
}

#[actix_web::test]
async fn many_authorization_headers_are_bad_credentials_in_json() {
    let app = spawn_app().await;
    let token = app.token();
    let headers: String = (0..10)
        .map(|_| format!("Authorization: Bearer {token}\r\n"))
        .collect();
    let (status, text) = raw(&app, &get("/api/messages/protected", &headers));
    assert_eq!(status, 401, "{text}");
    assert!(
        text.contains(r#""error_description":"malformed authorization header""#),
        "{text}"
    );
    let headers: String = (0..50)
        .map(|_| format!("Authorization: Bearer {token}\r\n"))
        .collect();
    let (status, text) = raw(&app, &get("/api/messages/protected", &headers));
    assert_eq!(status, 431, "{text}");
}

#[actix_web::test]
async fn odd_bytes_in_the_authorization_header_are_bad_credentials_in_json() {
    let app = spawn_app().await;
    for value in [
        &b"Bearer \xff\xfe\xfd"[..],
        b"Bearer a.b.c\x01",
        b"Bearer \x7f",
        b"\xc3\xa9",
    ] {
        let mut request = b"GET /api/messages/protected HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: ".to_vec();
        request.extend_from_slice(value);
        request.extend_from_slice(b"\r\n\r\n");
        let (status, text) = raw(&app, &request);
        assert!(status == 401 || status == 400, "{value:?}: {text}");
        assert_ne!(status, 500);
        if status == 401 {
            assert!(text.contains(r#""message":"#), "{text}");
        }
    }
}

#[actix_web::test]
async fn garbage_request_lines_get_a_4xx() {
    let app = spawn_app().await;
    for request in [
        &b"\x00\x01\x02\r\n\r\n"[..],
        b"GET /%ff%fe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"BREW /api HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ] {
        let (status, text) = raw(&app, request);
        assert!(
            status == 0 || (400..500).contains(&status),
            "{request:?}: {text}"
        );
    }
    assert_eq!(app.get("/api/messages/public").await.status, 200);
}
