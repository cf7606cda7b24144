//! The API's settings, loaded from the repository's `config/` as production loads them.

use std::collections::HashMap;
use std::path::PathBuf;

use hello_world_api::settings::{self, Settings};

/// The repository's `config/` directory.
pub(crate) fn config_dir() -> PathBuf {
    // This crate lives in tests/support/ of the repository.
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../config")
}

/// Settings from `config/` and `env` as the process environment; a name given twice takes its
/// last value.
pub fn settings<K: Into<String>, V: Into<String>>(
    env: impl IntoIterator<Item = (K, V)>,
) -> Settings {
    let env: HashMap<String, String> = env.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
    settings::load(&config_dir(), &env).expect("test settings")
}
