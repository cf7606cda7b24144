//! Loopback names and addresses, and whether a request was addressed to one (the defence
//! against DNS rebinding while the development issuer runs).

use actix_web::http::Uri;
use actix_web::http::header::{HOST, HeaderMap};

/// Whether `host` (a name, an IPv4 address, or an IPv6 address with or without brackets) is
/// this machine's loopback: `localhost`, `127.0.0.0/8` or `::1`.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim();
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Whether a browser `Origin` is a page served from this machine: `http(s)://` a loopback host.
pub fn is_loopback_origin(origin: &[u8]) -> bool {
    std::str::from_utf8(origin)
        .ok()
        .and_then(|text| text.parse::<Uri>().ok())
        .is_some_and(|uri| {
            matches!(uri.scheme_str(), Some("http" | "https"))
                && uri.path() == "/"
                && uri.host().is_some_and(is_loopback_host)
        })
}

/// Whether a request names only loopback hosts: its `Host` header (exactly one) and, for an
/// absolute-form target or HTTP/2, the URI's authority. A request naming no host is refused
/// too: a page that rebinds a name to 127.0.0.1 always sends that name.
pub fn addressed_to_loopback(uri: &Uri, headers: &HeaderMap) -> bool {
    let mut named = false;
    if let Some(authority) = uri.authority() {
        if !is_loopback_host(authority.host()) {
            return false;
        }
        named = true;
    }
    let mut hosts = headers.get_all(HOST);
    match (hosts.next(), hosts.next()) {
        (None, _) => named,
        (Some(value), None) => value
            .to_str()
            .ok()
            .and_then(|text| text.parse::<actix_web::http::uri::Authority>().ok())
            .is_some_and(|authority| is_loopback_host(authority.host())),
        (Some(_), Some(_)) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;

    fn with_host(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn loopback_origins_are_pages_served_from_this_machine() {
        for origin in [
            "http://localhost:6060",
            "http://127.0.0.1:6060",
            "http://[::1]:6060",
            "https://localhost",
        ] {
            assert!(is_loopback_origin(origin.as_bytes()), "{origin}");
        }
        for origin in [
            "null",
            "http://localhost.example.com",
            "http://127.0.0.1.nip.io:6060",
            "http://evil.example:6060",
            "file://localhost",
            "http://localhost:6060/path",
            "",
        ] {
            assert!(!is_loopback_origin(origin.as_bytes()), "{origin}");
        }
    }

    #[test]
    fn loopback_names_and_addresses_are_recognised() {
        for host in [
            "localhost",
            "LOCALHOST",
            "127.0.0.1",
            "127.1.2.3",
            "::1",
            "[::1]",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "0.0.0.0",
            "10.0.0.1",
            "example.com",
            "localhost.evil.com",
            "[::]",
            "",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn a_request_to_a_loopback_host_on_any_port_is_let_through() {
        let uri = Uri::from_static("/api/messages/public");
        for host in ["localhost:6060", "127.0.0.1", "[::1]:6061", "localhost"] {
            assert!(addressed_to_loopback(&uri, &with_host(host)), "{host}");
        }
    }

    #[test]
    fn a_request_naming_another_host_is_refused() {
        let uri = Uri::from_static("/api/messages/public");
        for host in [
            "evil.example:6060",
            "attacker.com",
            "localhost.attacker.com",
            "0.0.0.0",
        ] {
            assert!(!addressed_to_loopback(&uri, &with_host(host)), "{host}");
        }
        assert!(!addressed_to_loopback(&uri, &HeaderMap::new()), "no Host");
        let absolute = Uri::from_static("http://evil.example/api/messages/public");
        assert!(!addressed_to_loopback(&absolute, &with_host("localhost")));
        let mut two = with_host("localhost");
        two.append(HOST, HeaderValue::from_static("evil.example"));
        assert!(!addressed_to_loopback(&uri, &two), "two Host headers");
    }
}
