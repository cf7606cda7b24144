//! Server-provided DPoP nonces (RFC 9449 §9), stateless: a nonce is its time window and an
//! HMAC of it, so every replica with the same key makes and accepts the same nonces.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::settings::NonceSettings;

#[derive(Debug)]
pub struct Nonces {
    key: aws_lc_rs::hmac::Key,
    rotation: u64,
}

/// The MAC's length kept in a nonce: 128 bits.
const TAG_BYTES: usize = 16;

impl Nonces {
    pub fn new(settings: &NonceSettings) -> Self {
        Self {
            key: aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &settings.key),
            rotation: settings.rotation.as_secs().max(1),
        }
    }

    /// The nonce of the window holding `now` (Unix seconds).
    pub fn current(&self, now: u64) -> String {
        self.nonce(now / self.rotation)
    }

    /// Whether `nonce` is the current window's or the previous one's.
    pub fn accepts(&self, nonce: &str, now: u64) -> bool {
        let window = now / self.rotation;
        let Ok(bytes) = URL_SAFE_NO_PAD.decode(nonce) else {
            return false;
        };
        let Some((window_bytes, tag)) = bytes.split_first_chunk::<8>() else {
            return false;
        };
        let claimed = u64::from_be_bytes(*window_bytes);
        (claimed == window || claimed.checked_add(1) == Some(window))
            && aws_lc_rs::constant_time::verify_slices_are_equal(tag, &self.tag(claimed)).is_ok()
    }

    fn nonce(&self, window: u64) -> String {
        let mut bytes = window.to_be_bytes().to_vec();
        bytes.extend_from_slice(&self.tag(window));
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn tag(&self, window: u64) -> [u8; TAG_BYTES] {
        let mut message = b"dpop-nonce".to_vec();
        message.extend_from_slice(&window.to_be_bytes());
        let full = aws_lc_rs::hmac::sign(&self.key, &message);
        let mut tag = [0_u8; TAG_BYTES];
        tag.copy_from_slice(&full.as_ref()[..TAG_BYTES]);
        tag
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn nonces(key: u8) -> Nonces {
        Nonces::new(&NonceSettings {
            key: [key; 32],
            rotation: Duration::from_secs(60),
        })
    }

    #[test]
    fn a_nonce_lives_for_its_window_and_the_next_and_only_with_its_key() {
        let (ours, theirs) = (nonces(1), nonces(2));
        let nonce = ours.current(6000);
        assert!(ours.accepts(&nonce, 6000));
        assert!(ours.accepts(&nonce, 6119), "one more period");
        assert!(!ours.accepts(&nonce, 6120), "then stale");
        assert!(!ours.accepts(&nonce, 5999), "not before its window");
        assert!(
            !theirs.accepts(&nonce, 6000),
            "another key's replicas refuse it"
        );
        assert!(
            nonces(1).accepts(&nonce, 6000),
            "the same key's replicas accept it"
        );
        assert_ne!(ours.current(6060), nonce, "rotated");
        for junk in ["", "x", "AAAAAAAAAAA", &nonce[..nonce.len() - 2]] {
            assert!(!ours.accepts(junk, 6000), "{junk}");
        }
    }
}
