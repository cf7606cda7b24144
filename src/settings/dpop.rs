//! The `auth.dpop*` keys: DPoP (RFC 9449) mode, what a proof may be, the replay store and the
//! server's nonces.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, AlgorithmFamily};

use super::raw::RawAuth;
use super::values::{at_most, positive, seconds, seconds_or_zero};
use super::{DpopMode, DpopSettings, NonceSettings, SettingsError};

pub(super) fn dpop(raw: &RawAuth) -> Result<DpopSettings, SettingsError> {
    let mode = match raw.dpop.trim() {
        "allowed" => DpopMode::Allowed,
        "required" => DpopMode::Required,
        "disabled" => DpopMode::Disabled,
        other => {
            return Err(SettingsError::new(
                "auth.dpop",
                format!("{other:?} is not a mode; use \"allowed\", \"required\" or \"disabled\""),
            ));
        }
    };
    let max_age = seconds("auth.dpop_proof_max_age_secs", raw.dpop_proof_max_age_secs)?;
    if max_age.as_secs() > 3600 {
        return Err(SettingsError::new(
            "auth.dpop_proof_max_age_secs",
            "must be at most 3600 seconds: a proof is meant for one request",
        ));
    }
    let max_future = seconds_or_zero(
        "auth.dpop_proof_max_future_secs",
        raw.dpop_proof_max_future_secs,
    )?;
    if max_future.as_secs() > 300 {
        return Err(SettingsError::new(
            "auth.dpop_proof_max_future_secs",
            "must be at most 300 seconds",
        ));
    }
    let nonce = if raw.dpop_nonce {
        Some(NonceSettings {
            key: nonce_key(raw)?,
            rotation: seconds(
                "auth.dpop_nonce_rotation_secs",
                raw.dpop_nonce_rotation_secs,
            )?,
        })
    } else {
        None
    };
    Ok(DpopSettings {
        mode,
        algorithms: proof_algorithms(&raw.dpop_algorithms)?,
        max_age,
        max_future,
        replay_capacity: at_most(
            "auth.dpop_replay_capacity",
            positive("auth.dpop_replay_capacity", raw.dpop_replay_capacity)?,
            100_000_000,
        )?,
        nonce,
    })
}

/// At least one, each once, asymmetric only.
fn proof_algorithms(names: &[String]) -> Result<Vec<Algorithm>, SettingsError> {
    const KEY: &str = "auth.dpop_algorithms";
    let mut algorithms = Vec::new();
    for name in names.iter().map(|n| n.trim()) {
        let algorithm: Algorithm = name
            .parse()
            .map_err(|_| SettingsError::new(KEY, format!("{name:?} is not an algorithm")))?;
        if algorithm.family() == AlgorithmFamily::Hmac {
            return Err(SettingsError::new(
                KEY,
                format!("{name}: a proof is signed with the client's private key, never HMAC"),
            ));
        }
        if algorithms.contains(&algorithm) {
            return Err(SettingsError::new(KEY, format!("{name} is listed twice")));
        }
        algorithms.push(algorithm);
    }
    if algorithms.is_empty() {
        return Err(SettingsError::new(KEY, "lists no algorithm"));
    }
    Ok(algorithms)
}

/// `auth.dpop_nonce_key`, or the key in `auth.dpop_nonce_key_file`, or a random one.
fn nonce_key(raw: &RawAuth) -> Result<[u8; 32], SettingsError> {
    let (key, text) = match (raw.dpop_nonce_key.trim(), raw.dpop_nonce_key_file.trim()) {
        ("", "") => {
            let mut key = [0_u8; 32];
            aws_lc_rs::rand::fill(&mut key).map_err(|_| {
                SettingsError::new("auth.dpop_nonce_key", "no randomness for a nonce key")
            })?;
            return Ok(key);
        }
        (text, "") => ("auth.dpop_nonce_key", text.to_owned()),
        ("", path) => {
            const KEY: &str = "auth.dpop_nonce_key_file";
            let text = std::fs::read_to_string(path)
                .map_err(|e| SettingsError::new(KEY, format!("{path}: {e}")))?;
            (KEY, text.trim().to_owned())
        }
        _ => {
            return Err(SettingsError::new(
                "auth.dpop_nonce_key",
                "set auth.dpop_nonce_key or auth.dpop_nonce_key_file, not both",
            ));
        }
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|_| SettingsError::new(key, "is not base64url"))?;
    if bytes.len() < 32 {
        return Err(SettingsError::new(
            key,
            format!("holds {} bytes; a nonce key needs at least 32", bytes.len()),
        ));
    }
    // Longer keys are folded into 32 bytes: the nonce's HMAC takes any length anyway.
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bytes);
    let mut folded = [0_u8; 32];
    folded.copy_from_slice(digest.as_ref());
    Ok(folded)
}
