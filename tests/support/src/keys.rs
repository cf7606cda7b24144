//! The suite's RSA keys, generated once per test process.

use std::sync::LazyLock;

use hello_world_api::issuer::SigningKey;

/// RSA keys are slow to generate: the whole suite shares a few.
static KEYS: LazyLock<Vec<SigningKey>> = LazyLock::new(|| {
    (0..4)
        .map(|i| SigningKey::generate(format!("test-key-{i}")).expect("RSA key generation"))
        .collect()
});

/// The `n`th shared test key (0 to 3), with `kid` `test-key-{n}`.
pub fn key(n: usize) -> SigningKey {
    KEYS[n].clone()
}

/// A key with another `kid` but the same key material as `key(n)`.
pub fn key_as(n: usize, kid: &str) -> SigningKey {
    SigningKey::from_pkcs8_pem(kid, KEYS[n].private_pem()).expect("re-read key")
}
