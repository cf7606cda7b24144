//! Which variables are ours, and saying so when one is not: a typo in `.env`
//! (`AUTH0_DOMIAN`) was ignored in silence, and a bad value named a key, not the variable.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use super::FLAT_NAMES;

/// Names the service reads besides `APP__SECTION__KEY` and the flat names.
const OTHER_NAMES: [&str; 3] = ["APP_ENV", "APP_CONFIG_DIR", "RUST_LOG"];

/// Every variable name the service reads: the flat names, the few others, and
/// `APP__SECTION__KEY` for each key of `default.toml`.
pub(super) fn known(default_file: &Path) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = FLAT_NAMES
        .iter()
        .map(|(name, _)| (*name).to_owned())
        .chain(OTHER_NAMES.map(str::to_owned))
        .collect();
    let sections = config::Config::builder()
        .add_source(config::File::from(default_file))
        .build()
        .ok()
        .and_then(|c| c.try_deserialize::<HashMap<String, config::Value>>().ok())
        .unwrap_or_default();
    for (section, value) in sections {
        if let Ok(table) = value.into_table() {
            for key in table.keys() {
                names.insert(format!("APP__{}__{}", section, key).to_uppercase());
            }
        }
    }
    names
}

/// The known name closest to `name` (a few edits away at most), if any.
pub(super) fn closest<'k>(name: &str, known: &'k BTreeSet<String>) -> Option<&'k str> {
    known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(name, k), k))
        .filter(|(distance, _)| *distance <= 3)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, k)| k.as_str())
}

/// Variables of `env` that look meant for us but are not ours: `AUTH0_*`, `APP__*` and `APP_*`
/// names we do not read, and names a couple of edits away from a flat name (`CLIENT_ORIGN_URL`),
/// each with the known name it most resembles.
pub(super) fn unknown<'e>(
    env: &'e HashMap<String, String>,
    known: &BTreeSet<String>,
) -> Vec<(&'e str, Option<String>)> {
    let mut unknown: Vec<(&str, Option<String>)> = env
        .keys()
        .filter(|name| !known.contains(name.as_str()))
        .filter(|name| {
            name.starts_with("AUTH0_")
                || name.starts_with("APP_")
                || FLAT_NAMES.iter().any(|(flat, _)| {
                    flat.len() >= 5 && strsim::damerau_levenshtein(name, flat) <= 2
                })
        })
        .map(|name| (name.as_str(), closest(name, known).map(str::to_owned)))
        .collect();
    unknown.sort_unstable();
    unknown
}

/// Which variable set `key` in `env`, for an error about its value: the flat name or the
/// `APP__` one, whichever is set.
pub(super) fn setter(key: &str, env: &HashMap<String, String>) -> Option<String> {
    let scoped = format!("APP__{}", key.replace('.', "__").to_uppercase());
    if env.get(&scoped).is_some_and(|v| !v.trim().is_empty()) {
        return Some(scoped);
    }
    FLAT_NAMES
        .iter()
        .filter(|(_, k)| *k == key)
        .find(|(name, _)| env.get(*name).is_some_and(|v| !v.trim().is_empty()))
        .map(|(name, _)| (*name).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known_names() -> BTreeSet<String> {
        known(&Path::new(env!("CARGO_MANIFEST_DIR")).join("config/default.toml"))
    }

    #[test]
    fn every_key_of_the_default_file_has_its_variable() {
        let known = known_names();
        for name in [
            "APP__AUTH__AUDIENCE",
            "APP__SERVER__PORT",
            "APP__AUTH__DPOP_NONCE_KEY",
            "APP__DEV_ISSUER__CLIENTS",
            "PORT",
            "AUTH0_DOMAIN",
            "APP_ENV",
        ] {
            assert!(known.contains(name), "{name}");
        }
    }

    #[test]
    fn a_typo_is_found_with_the_name_it_was_meant_for() {
        let known = known_names();
        let env: HashMap<String, String> = [
            "AUTH0_DOMIAN",
            "APP__AUTH__AUDEINCE",
            "CLIENT_ORIGN_URL",
            "AUTH0_DOMAIN",
            "PATH",
            "HOSTNAME",
            "PWD",
            "AUTH0_SOMETHING_ELSE_ENTIRELY",
        ]
        .iter()
        .map(|n| ((*n).to_owned(), "x".to_owned()))
        .collect();
        let found = unknown(&env, &known);
        assert_eq!(
            found,
            [
                (
                    "APP__AUTH__AUDEINCE",
                    Some("APP__AUTH__AUDIENCE".to_owned())
                ),
                ("AUTH0_DOMIAN", Some("AUTH0_DOMAIN".to_owned())),
                ("AUTH0_SOMETHING_ELSE_ENTIRELY", None),
                ("CLIENT_ORIGN_URL", Some("CLIENT_ORIGIN_URL".to_owned())),
            ]
        );
    }
}
