//! Parsers of single values (URLs, origins, durations, sizes), each naming its key on error.

use std::time::Duration;

use actix_web::http::Uri;

use super::SettingsError;

pub(super) fn non_empty<'a>(key: &str, value: &'a str) -> Result<&'a str, SettingsError> {
    match value.trim() {
        "" => Err(SettingsError::new(key, "must not be empty")),
        v => Ok(v),
    }
}

pub(super) fn positive(key: &str, value: i64) -> Result<usize, SettingsError> {
    usize::try_from(value)
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| SettingsError::new(key, format!("{value} must be a positive number")))
}

pub(super) fn at_most(key: &str, value: usize, max: usize) -> Result<usize, SettingsError> {
    if value > max {
        return Err(SettingsError::new(
            key,
            format!("{value} is more than {max}"),
        ));
    }
    Ok(value)
}

pub(super) fn seconds(key: &str, value: f64) -> Result<Duration, SettingsError> {
    seconds_or_zero(key, value).and_then(|d| {
        if d.is_zero() {
            Err(SettingsError::new(key, "must be more than 0 seconds"))
        } else {
            Ok(d)
        }
    })
}

/// Every duration is bounded, so no deadline computed from one can overflow.
pub(super) const MAX_SECONDS: f64 = 7.0 * 24.0 * 3600.0;

pub(super) fn seconds_or_zero(key: &str, value: f64) -> Result<Duration, SettingsError> {
    if !(0.0..=MAX_SECONDS).contains(&value) {
        return Err(SettingsError::new(
            key,
            format!("{value} is not a number of seconds between 0 and {MAX_SECONDS}"),
        ));
    }
    Duration::try_from_secs_f64(value)
        .map_err(|_| SettingsError::new(key, format!("{value} is not a number of seconds")))
}

/// An absolute `http` or `https` URL with a host and no credentials.
pub(super) fn http_url(key: &str, value: &str) -> Result<Uri, SettingsError> {
    let invalid = || SettingsError::new(key, format!("{value:?} is not an http(s) URL"));
    let uri = value.parse::<Uri>().map_err(|_| invalid())?;
    let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
    let host_ok = uri
        .authority()
        .is_some_and(|a| !a.host().is_empty() && !a.as_str().contains('@'));
    if scheme_ok && host_ok {
        Ok(uri)
    } else {
        Err(invalid())
    }
}

/// A browser origin (`scheme://host[:port]`), accepting one trailing slash.
pub(super) fn origin(key: &str, value: &str) -> Result<String, SettingsError> {
    let uri = http_url(key, value.trim())?;
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(SettingsError::new(
            key,
            format!("{value:?} is not an origin: use scheme://host[:port] without a path"),
        ));
    }
    let scheme = uri.scheme_str().unwrap_or("http");
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
    Ok(format!("{scheme}://{authority}").to_ascii_lowercase())
}
