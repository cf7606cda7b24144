//! Wall-clock time in the unit of JWT claims.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, as `exp`, `iat` and `nbf` count them.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
