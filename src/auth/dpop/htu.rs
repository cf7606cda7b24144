//! A proof's `htu` against the request's URL, both normalised as RFC 3986 §6.2.2 and §6.2.3
//! say (scheme and host case, default port, dot segments, percent-encoding), without query
//! and fragment (RFC 9449 §4.3 step 9).

use actix_web::HttpRequest;
use actix_web::http::header::{HOST, HeaderMap};

/// `url` in normal form, `scheme://host[:port]/path`, or `None` when it is no http(s) URL.
pub fn normalize(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    if !matches!(parsed.scheme(), "http" | "https")
        || !parsed.username().is_empty()
        || parsed.password().is_some()
    {
        return None;
    }
    // The url crate lowercases the scheme and host, drops a default port and resolves dot
    // segments; percent-encodings are left to us.
    let host = parsed.host_str()?;
    let port = parsed.port().map(|p| format!(":{p}")).unwrap_or_default();
    Some(format!(
        "{}://{host}{port}{}",
        parsed.scheme(),
        percent_normalized(parsed.path())
    ))
}

/// Percent-encodings with upper-case hex digits, and unreserved characters decoded.
fn percent_normalized(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let (Some(high), Some(low)) = (hex(bytes.get(i + 1)), hex(bytes.get(i + 2)))
        {
            let decoded = high * 16 + low;
            if decoded.is_ascii_alphanumeric() || matches!(decoded, b'-' | b'.' | b'_' | b'~') {
                out.push(char::from(decoded));
            } else {
                out.push('%');
                out.push_str(&format!("{decoded:02X}"));
            }
            i += 3;
            continue;
        }
        out.push(char::from(bytes[i]));
        i += 1;
    }
    out
}

fn hex(byte: Option<&u8>) -> Option<u8> {
    char::from(*byte?)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// Where the request says it was sent: the configured public URL, or the forwarded scheme and
/// host when trusted, or `http://` and the `Host` header.
pub fn request_url(
    req: &HttpRequest,
    public_url: Option<&str>,
    trust_forwarded: bool,
) -> Option<String> {
    let path = req.uri().path();
    if let Some(base) = public_url {
        return Some(format!("{base}{path}"));
    }
    let headers = req.headers();
    let (mut scheme, mut host) = ("http".to_owned(), single(headers, HOST.as_str()));
    if host.is_none() {
        host = req.uri().authority().map(|a| a.as_str().to_owned());
    }
    if trust_forwarded {
        match single_or_absent(headers, "x-forwarded-proto")? {
            Some(proto) if proto == "http" || proto == "https" => scheme = proto,
            Some(_) => return None,
            None => {}
        }
        if let Some(forwarded) = single_or_absent(headers, "x-forwarded-host")? {
            host = Some(forwarded);
        }
    }
    let host = host?;
    // One authority, nothing else: a value like "a.example/x?" must not shape the URL.
    host.parse::<actix_web::http::uri::Authority>().ok()?;
    if host.contains('@') {
        return None;
    }
    Some(format!("{scheme}://{host}{path}"))
}

/// The header's one value, trimmed; `None` when absent, several, or not text.
fn single(headers: &HeaderMap, name: &str) -> Option<String> {
    single_or_absent(headers, name).flatten()
}

/// `Some(None)` when absent, `Some(Some(value))` for one plain value, `None` for several
/// headers, a comma-separated list or bytes that are not text.
fn single_or_absent(headers: &HeaderMap, name: &str) -> Option<Option<String>> {
    let mut values = headers.get_all(name);
    let Some(first) = values.next() else {
        return Some(None);
    };
    if values.next().is_some() {
        return None;
    }
    let text = first.to_str().ok()?.trim();
    if text.is_empty() || text.contains(',') {
        return None;
    }
    Some(Some(text.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equivalent_urls_normalise_alike() {
        let normal = normalize("http://localhost:6060/api/messages/admin").unwrap();
        assert_eq!(normal, "http://localhost:6060/api/messages/admin");
        for same in [
            "HTTP://LocalHost:6060/api/messages/admin",
            "http://localhost:6060/api/messages/admin?x=1",
            "http://localhost:6060/api/messages/admin#f",
            "http://localhost:6060/api/./messages/x/../admin",
            "http://localhost:6060/api/messages/%61dmin",
            "http://localhost:6060/api/%6D%65ssages/admin",
        ] {
            assert_eq!(normalize(same).as_deref(), Some(normal.as_str()), "{same}");
        }
        assert_eq!(
            normalize("https://api.example.com:443/x").as_deref(),
            Some("https://api.example.com/x")
        );
        assert_eq!(
            normalize("http://a.example/%7e%2f").as_deref(),
            Some("http://a.example/~%2F")
        );
        for other in [
            "http://localhost:6061/api/messages/admin",
            "https://localhost:6060/api/messages/admin",
            "http://127.0.0.1:6060/api/messages/admin",
            "http://localhost:6060/api/messages/admin/",
            "http://localhost:6060/api/messages/%2561dmin",
        ] {
            assert_ne!(
                normalize(other).as_deref(),
                Some(normal.as_str()),
                "{other}"
            );
        }
        for not_http in [
            "ftp://a.example/",
            "a.example/x",
            "",
            "http://u:p@a.example/",
        ] {
            assert_eq!(normalize(not_http), None, "{not_http}");
        }
    }
}
