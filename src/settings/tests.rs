//! The loader, from files and variables to settings or a one-line error.

use super::*;
use jsonwebtoken::Algorithm;

fn config_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config")
}

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn minimal() -> Vec<(&'static str, &'static str)> {
    vec![
        ("AUTH0_DOMAIN", "example.us.auth0.com"),
        ("AUTH0_AUDIENCE", "https://hello-world.example.com"),
    ]
}

fn load_with(extra: &[(&'static str, &'static str)]) -> Result<Settings, SettingsError> {
    let mut pairs = minimal();
    pairs.extend_from_slice(extra);
    load(&config_dir(), &env(&pairs))
}

#[test]
fn defaults_follow_the_auth0_samples() {
    let s = load_with(&[]).unwrap();
    assert_eq!(s.environment, Environment::Local);
    assert_eq!(s.server.port, 6060);
    assert_eq!(s.cors.allowed_origin, "http://localhost:4040");
    assert_eq!(s.auth.issuer(), "https://example.us.auth0.com/");
    assert_eq!(
        s.auth.jwks_uri(),
        "https://example.us.auth0.com/.well-known/jwks.json"
    );
    assert_eq!(s.auth.algorithms, vec![Algorithm::RS256]);
    assert!(s.auth.leeway <= Duration::from_secs(60));
    assert_eq!(s.auth.max_token_bytes, 8192);
    assert_eq!(s.jwks.refresh_interval, Duration::from_secs(600));
    assert_eq!(s.jwks.fetch_timeout, Duration::from_secs(5));
    assert_eq!(s.jwks.max_response_bytes, 1024 * 1024);
    assert_eq!(s.jwks.unknown_kid_cooldown, Duration::from_secs(30));
    assert!(s.jwks.retry_initial <= Duration::from_secs(10));
}

#[test]
fn flat_names_set_their_keys() {
    let s = load_with(&[
        ("PORT", "7070"),
        ("HOST", "0.0.0.0"),
        ("CLIENT_ORIGIN_URL", "https://App.Example.com/"),
        ("AUTH0_ISSUER", "http://127.0.0.1:9000/"),
        ("AUTH0_JWKS_URI", "http://127.0.0.1:9000/keys"),
    ])
    .unwrap();
    assert_eq!(s.server.port, 7070);
    assert_eq!(s.server.host, "0.0.0.0");
    assert_eq!(s.cors.allowed_origin, "https://app.example.com");
    assert_eq!(s.auth.issuer(), "http://127.0.0.1:9000/");
    assert_eq!(s.auth.jwks_uri(), "http://127.0.0.1:9000/keys");
}

#[test]
fn issuer_overrides_domain_and_finds_its_keys_by_discovery() {
    let s = load_with(&[("AUTH0_ISSUER", "http://127.0.0.1:9000/")]).unwrap();
    assert_eq!(s.auth.issuer(), "http://127.0.0.1:9000/");
    assert_eq!(s.auth.issuers[0].keys, KeySource::Discovery);
}

#[test]
fn an_auth0_domain_keeps_its_known_jwks_url() {
    let s = load_with(&[("AUTH0_DOMAIN", "tenant.eu.auth0.com")]).unwrap();
    assert_eq!(s.auth.issuer(), "https://tenant.eu.auth0.com/");
    assert_eq!(
        s.auth.jwks_uri(),
        "https://tenant.eu.auth0.com/.well-known/jwks.json"
    );
}

#[test]
fn the_node_sdk_names_work_below_the_auth0_sample_names() {
    let s = load(
        &config_dir(),
        &env(&[
            ("ISSUER_BASE_URL", "https://kc.example.com/realms/demo"),
            ("AUDIENCE", "account"),
        ]),
    )
    .unwrap();
    assert_eq!(s.auth.issuer(), "https://kc.example.com/realms/demo");
    assert_eq!(s.auth.audiences, ["account"]);
    let s = load(
        &config_dir(),
        &env(&[
            ("ISSUER_BASE_URL", "https://kc.example.com/realms/demo"),
            ("AUTH0_ISSUER", "https://tenant.auth0.com/"),
            ("AUDIENCE", "account"),
            ("AUTH0_AUDIENCE", "https://api"),
        ]),
    )
    .unwrap();
    assert_eq!(s.auth.issuer(), "https://tenant.auth0.com/");
    assert_eq!(s.auth.audiences, ["https://api"]);
}

#[test]
fn several_issuers_and_audiences_are_comma_separated() {
    let s = load(
        &config_dir(),
        &env(&[
            (
                "APP__AUTH__ISSUERS",
                "https://login.example.com/, https://tenant.auth0.com/",
            ),
            ("AUTH0_AUDIENCE", "https://api, account"),
        ]),
    )
    .unwrap();
    let issuers: Vec<&str> = s.auth.issuers.iter().map(|i| i.issuer.as_str()).collect();
    assert_eq!(
        issuers,
        ["https://login.example.com/", "https://tenant.auth0.com/"]
    );
    assert!(
        s.auth
            .issuers
            .iter()
            .all(|i| i.keys == KeySource::Discovery)
    );
    assert_eq!(s.auth.audiences, ["https://api", "account"]);
    assert!(s.dev_issuer.is_none());
}

#[test]
fn several_issuers_exclude_the_one_issuer_forms() {
    let e = error_of(&[
        (
            "APP__AUTH__ISSUERS",
            "https://a.example/,https://b.example/",
        ),
        ("AUTH0_ISSUER", "https://a.example/"),
        ("AUTH0_AUDIENCE", "x"),
    ]);
    assert!(e.starts_with("auth.issuers (APP__AUTH__ISSUERS)"), "{e}");
    assert!(e.contains("AUTH0_ISSUER"), "{e}");
    for twice in [
        "https://a.example/,https://a.example/",
        "https://a.example/,https://a.example",
    ] {
        let e = error_of(&[("APP__AUTH__ISSUERS", twice), ("AUTH0_AUDIENCE", "x")]);
        assert!(e.contains("appears twice"), "{e}");
    }
    for (var, with_query) in [
        ("AUTH0_ISSUER", "https://a.example/?tenant=1"),
        ("APP__AUTH__ISSUERS", "https://a.example/#x"),
    ] {
        let e = error_of(&[(var, with_query), ("AUTH0_AUDIENCE", "x")]);
        assert!(e.contains("no query or fragment"), "{e}");
    }
}

#[test]
fn provider_settings_are_checked_and_name_their_keys() {
    let s = load_with(&[
        ("APP__AUTH__AUDIENCE_CLAIM", "client_id"),
        ("APP__AUTH__REQUIRED_CLAIMS", "token_use=access,tenant=t1"),
        ("APP__AUTH__PERMISSIONS_CLAIM", "/realm_access/roles"),
        ("APP__AUTH__ADMIN_PERMISSION", "admin-messages-reader"),
        ("APP__AUTH__PROFILE", "rfc9068"),
    ])
    .unwrap();
    assert_eq!(s.auth.audience_claim, "client_id");
    assert_eq!(
        s.auth.required_claims,
        [
            ("token_use".to_owned(), "access".to_owned()),
            ("tenant".to_owned(), "t1".to_owned())
        ]
    );
    assert_eq!(s.auth.permissions_claim, "/realm_access/roles");
    assert_eq!(s.auth.admin_permission, "admin-messages-reader");
    assert_eq!(s.auth.profile, Profile::Rfc9068);
    for (var, value, key) in [
        (
            "APP__AUTH__REQUIRED_CLAIMS",
            "token_use",
            "auth.required_claims",
        ),
        (
            "APP__AUTH__PERMISSIONS_CLAIM",
            "permissions",
            "auth.permissions_claim",
        ),
        (
            "APP__AUTH__PERMISSIONS_CLAIM",
            "/a~2b",
            "auth.permissions_claim",
        ),
        ("APP__AUTH__PROFILE", "strict", "auth.profile"),
    ] {
        let mut pairs = minimal();
        pairs.push((var, value));
        let e = error_of(&pairs);
        assert!(
            e.starts_with(&format!("{key} ({var})")),
            "{var}={value}: {e}"
        );
    }
}

#[test]
fn scoped_variables_beat_flat_names_which_beat_files() {
    let s = load_with(&[("PORT", "7070")]).unwrap();
    assert_eq!(s.server.port, 7070, "flat name beats default.toml");
    let s = load_with(&[("PORT", "7070"), ("APP__SERVER__PORT", "8080")]).unwrap();
    assert_eq!(s.server.port, 8080, "APP__ beats the flat name");
    let s = load_with(&[("APP_ENV", "production")]).unwrap();
    assert_eq!(s.environment, Environment::Production);
    assert_eq!(
        s.server.host, "0.0.0.0",
        "production.toml beats default.toml"
    );
    let s = load_with(&[("APP_ENV", "production"), ("HOST", "127.0.0.2")]).unwrap();
    assert_eq!(
        s.server.host, "127.0.0.2",
        "a flat name beats production.toml"
    );
}

#[test]
fn empty_variables_count_as_unset() {
    let s = load_with(&[("PORT", ""), ("AUTH0_ISSUER", "")]).unwrap();
    assert_eq!(s.server.port, 6060);
    assert_eq!(s.auth.issuer(), "https://example.us.auth0.com/");
}

#[test]
fn scoped_lists_and_durations_parse() {
    let s = load_with(&[
        ("APP__AUTH__ALGORITHMS", "RS256,PS256"),
        ("APP__JWKS__REFRESH_INTERVAL_SECS", "0.25"),
        ("APP__JWKS__UNKNOWN_KID_COOLDOWN_SECS", "0"),
    ])
    .unwrap();
    assert_eq!(s.auth.algorithms, vec![Algorithm::RS256, Algorithm::PS256]);
    assert_eq!(s.jwks.refresh_interval, Duration::from_millis(250));
    assert_eq!(s.jwks.unknown_kid_cooldown, Duration::ZERO);
}

fn error_of(pairs: &[(&str, &str)]) -> String {
    load(&config_dir(), &env(pairs)).unwrap_err().to_string()
}

#[test]
fn a_local_run_without_an_issuer_uses_the_development_issuer() {
    let s = load(&config_dir(), &env(&[])).unwrap();
    let dev = s.dev_issuer.expect("dev issuer in the local profile");
    assert_eq!(dev.port, 6061);
    assert_eq!(s.auth.issuer(), "http://localhost:6061/");
    assert_eq!(
        s.auth.jwks_uri(),
        "http://127.0.0.1:6061/.well-known/jwks.json"
    );
    assert_eq!(s.auth.audience(), "https://hello-world.example.com");
    assert_eq!(dev.audience, s.auth.audience());
    assert!(
        dev.clients
            .iter()
            .any(|c| c.permissions.iter().any(|p| p == "read:admin-messages"))
    );
    assert!(dev.clients.iter().any(|c| c.permissions.is_empty()));
}

#[test]
fn the_development_issuer_follows_its_port_and_the_audience() {
    let s = load(
        &config_dir(),
        &env(&[
            ("APP__DEV_ISSUER__PORT", "7001"),
            ("AUTH0_AUDIENCE", "https://api.local"),
        ]),
    )
    .unwrap();
    assert_eq!(s.auth.issuer(), "http://localhost:7001/");
    assert_eq!(s.dev_issuer.unwrap().audience, "https://api.local");
}

#[test]
fn a_configured_tenant_switches_the_development_issuer_off() {
    let s = load_with(&[]).unwrap();
    assert!(s.dev_issuer.is_none());
    let s = load(
        &config_dir(),
        &env(&[
            ("AUTH0_ISSUER", "http://127.0.0.1:9000/"),
            ("AUTH0_AUDIENCE", "x"),
        ]),
    )
    .unwrap();
    assert!(s.dev_issuer.is_none());
    assert_eq!(s.auth.issuer(), "http://127.0.0.1:9000/");
}

#[test]
fn production_never_starts_the_development_issuer() {
    let e = error_of(&[
        ("APP_ENV", "production"),
        ("APP__DEV_ISSUER__ENABLED", "true"),
    ]);
    assert!(
        e.starts_with("auth.audience") || e.starts_with("auth.domain"),
        "{e}"
    );
    let s = load(
        &config_dir(),
        &env(&[
            ("APP_ENV", "production"),
            ("APP__DEV_ISSUER__ENABLED", "true"),
            ("AUTH0_AUDIENCE", "x"),
            ("AUTH0_ISSUER", "https://issuer.example.com/"),
        ]),
    )
    .unwrap();
    assert!(s.dev_issuer.is_none());
}

#[test]
fn the_development_issuer_can_be_switched_off() {
    let e = error_of(&[
        ("APP__DEV_ISSUER__ENABLED", "false"),
        ("AUTH0_AUDIENCE", "x"),
    ]);
    assert!(e.starts_with("auth.domain"), "{e}");
}

#[test]
fn missing_audience_names_the_key() {
    let e = error_of(&[("AUTH0_DOMAIN", "example.us.auth0.com")]);
    assert!(
        e.starts_with("auth.audience (AUTH0_AUDIENCE or APP__AUTH__AUDIENCE): is required"),
        "{e}"
    );
}

#[test]
fn missing_domain_and_issuer_names_the_key() {
    let e = error_of(&[("AUTH0_AUDIENCE", "x"), ("APP_ENV", "production")]);
    assert!(e.starts_with("auth.domain (AUTH0_DOMAIN"), "{e}");
}

#[test]
fn domain_given_as_a_url_is_refused() {
    let e = load_with(&[("AUTH0_DOMAIN", "https://example.us.auth0.com/")])
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("auth.domain"), "{e}");
}

#[test]
fn unparseable_urls_and_origins_name_their_keys() {
    for (var, value, key) in [
        ("AUTH0_ISSUER", "not a url", "auth.issuer"),
        ("AUTH0_ISSUER", "ftp://example.com/", "auth.issuer"),
        ("AUTH0_JWKS_URI", "/relative/jwks.json", "auth.jwks_uri"),
        (
            "CLIENT_ORIGIN_URL",
            "localhost:4040",
            "cors.client_origin_url",
        ),
        (
            "CLIENT_ORIGIN_URL",
            "http://localhost:4040/app",
            "cors.client_origin_url",
        ),
        (
            "CLIENT_ORIGIN_URL",
            "http://user@localhost:4040",
            "cors.client_origin_url",
        ),
    ] {
        let e = load_with(&[(var, value)]).unwrap_err().to_string();
        assert!(e.starts_with(key), "{var}={value}: {e}");
    }
}

#[test]
fn port_out_of_range_names_the_key() {
    let e = load_with(&[("PORT", "70000")]).unwrap_err().to_string();
    assert_eq!(
        e,
        "server.port (PORT or APP__SERVER__PORT): 70000 is out of range (0 to 65535)"
    );
    let e = load_with(&[("PORT", "-1")]).unwrap_err().to_string();
    assert!(e.starts_with("server.port"), "{e}");
}

#[test]
fn non_numeric_port_names_the_key_on_one_line() {
    let e = load_with(&[("PORT", "http")]).unwrap_err().to_string();
    assert!(e.contains("server.port"), "{e}");
    assert!(!e.contains('\n'));
}

#[test]
fn hmac_and_unknown_algorithms_are_refused() {
    for algs in ["HS256", "none", "RS256,HS512", ""] {
        let e = load_with(&[("APP__AUTH__ALGORITHMS", algs)]);
        if algs.is_empty() {
            // An empty variable is unset: the default list stays.
            assert!(e.is_ok());
            continue;
        }
        let e = e.unwrap_err().to_string();
        assert!(e.starts_with("auth.algorithms"), "{algs}: {e}");
    }
}

#[test]
fn unknown_environment_and_unknown_keys_are_refused() {
    let e = load_with(&[("APP_ENV", "staging")])
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("APP_ENV: unknown environment"), "{e}");
    let e = load_with(&[("APP__SERVER__PROT", "1")])
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "APP__SERVER__PROT: not a setting; did you mean APP__SERVER__PORT?"
    );
}

#[test]
fn a_value_of_the_wrong_type_names_the_variable_that_set_it() {
    let e = load_with(&[("PORT", "abc")]).unwrap_err().to_string();
    assert_eq!(e, r#"PORT (server.port): string "abc" is not an integer"#);
    let e = load_with(&[("APP__SERVER__WORKERS", "many")])
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        r#"APP__SERVER__WORKERS (server.workers): string "many" is not an integer"#
    );
}

#[test]
fn a_misspelt_variable_is_a_warning_naming_the_one_meant() {
    let settings = load_with(&[
        ("AUTH0_DOMIAN", "example.auth0.com"),
        ("CLIENT_ORIGN_URL", "http://localhost:3000"),
    ])
    .unwrap();
    assert_eq!(
        settings.warnings,
        [
            "AUTH0_DOMIAN is not a variable this service reads, and is ignored; did you mean \
             AUTH0_DOMAIN?",
            "CLIENT_ORIGN_URL is not a variable this service reads, and is ignored; did you mean \
             CLIENT_ORIGIN_URL?",
        ]
    );
    assert!(load_with(&[]).unwrap().warnings.is_empty());
}

#[test]
fn durations_and_sizes_are_bounded() {
    for (name, value, key) in [
        (
            "APP__JWKS__REFRESH_INTERVAL_SECS",
            "1e19",
            "jwks.refresh_interval_secs",
        ),
        ("APP__JWKS__RETRY_MAX_SECS", "700000", "jwks.retry_max_secs"),
        (
            "APP__JWKS__FETCH_TIMEOUT_SECS",
            "-1",
            "jwks.fetch_timeout_secs",
        ),
        (
            "APP__JWKS__FETCH_TIMEOUT_SECS",
            "NaN",
            "jwks.fetch_timeout_secs",
        ),
        (
            "APP__JWKS__UNKNOWN_KID_COOLDOWN_SECS",
            "inf",
            "jwks.unknown_kid_cooldown_secs",
        ),
        (
            "APP__JWKS__MAX_RESPONSE_BYTES",
            "1000000000",
            "jwks.max_response_bytes",
        ),
        ("APP__AUTH__MAX_TOKEN_BYTES", "0", "auth.max_token_bytes"),
    ] {
        let e = load_with(&[(name, value)]).unwrap_err().to_string();
        assert!(e.starts_with(key), "{name}={value}: {e}");
    }
}

#[test]
fn metrics_listen_on_loopback_by_default_and_can_be_switched_off() {
    let s = load_with(&[]).unwrap();
    assert_eq!(s.metrics.address, Some("127.0.0.1:9464".parse().unwrap()));
    let s = load_with(&[("APP__METRICS__ENABLED", "false")]).unwrap();
    assert_eq!(s.metrics.address, None);
    let e = load_with(&[("APP__METRICS__ADDRESS", "localhost")])
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("metrics.address"), "{e}");
}

#[test]
fn outage_and_refresh_bounds_have_safe_defaults() {
    let s = load_with(&[]).unwrap();
    assert_eq!(s.jwks.max_stale, Duration::from_secs(86_400));
    assert_eq!(s.jwks.min_refresh_interval, Duration::from_secs(60));
    assert_eq!(s.jwks.max_refresh_interval, Duration::from_secs(43_200));
    assert_eq!(s.server.shutdown_timeout, Duration::from_secs(30));
    let e = load_with(&[("APP__JWKS__MIN_REFRESH_INTERVAL_SECS", "100000")])
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("jwks.max_refresh_interval_secs"), "{e}");
    let e = load_with(&[("APP__JWKS__MAX_STALE_SECS", "600")])
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("jwks.refresh_interval_secs"), "{e}");
    let e = load_with(&[("APP__JWKS__MAX_REFRESH_INTERVAL_SECS", "86400")])
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("jwks.max_refresh_interval_secs"), "{e}");
    assert!(
        e.contains("must be at most half of jwks.max_stale_secs"),
        "{e}"
    );
}

#[test]
fn leeway_is_bounded() {
    let e = load_with(&[("APP__AUTH__LEEWAY_SECS", "3600")])
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("auth.leeway_secs"), "{e}");
}

#[test]
fn missing_config_directory_names_it() {
    let e = load(Path::new("/nonexistent"), &env(&minimal()))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("config: /nonexistent/default.toml not found"),
        "{e}"
    );
}

#[test]
fn the_development_issuer_refuses_a_server_listening_beyond_loopback() {
    let e = error_of(&[("HOST", "0.0.0.0")]);
    assert!(
        e.starts_with("server.host (HOST or APP__SERVER__HOST):"),
        "{e}"
    );
    assert!(
        e.contains("AUTH0_DOMAIN") && e.contains("AUTH0_ISSUER"),
        "{e}"
    );
    assert!(!e.contains('\n'));
    for host in ["127.0.0.1", "localhost", "::1", "127.0.0.2"] {
        let s = load(&config_dir(), &env(&[("HOST", host)])).unwrap();
        assert!(s.dev_issuer.is_some(), "{host}");
    }
    // With a real issuer the server may listen anywhere.
    let s = load_with(&[("HOST", "0.0.0.0")]).unwrap();
    assert!(s.dev_issuer.is_none());
}

#[test]
fn production_refuses_plain_http_issuer_and_jwks_urls_except_on_loopback() {
    let production = |extra: &[(&'static str, &'static str)]| {
        let mut pairs = vec![("APP_ENV", "production"), ("AUTH0_AUDIENCE", "x")];
        pairs.extend_from_slice(extra);
        load(&config_dir(), &env(&pairs))
    };
    let e = production(&[("AUTH0_ISSUER", "http://issuer.example.com/")])
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("auth.issuer (AUTH0_ISSUER"), "{e}");
    assert!(e.contains("not https"), "{e}");
    let e = production(&[
        ("AUTH0_ISSUER", "https://issuer.example.com/"),
        ("AUTH0_JWKS_URI", "http://keys.example.com/jwks.json"),
    ])
    .unwrap_err()
    .to_string();
    assert!(e.starts_with("auth.jwks_uri (AUTH0_JWKS_URI"), "{e}");
    for loopback in [
        "http://127.0.0.1:9000/",
        "http://localhost:9000/",
        "http://[::1]:9000/",
    ] {
        let s = production(&[("AUTH0_ISSUER", loopback)]).unwrap();
        assert_eq!(s.auth.issuer(), loopback);
    }
    // The local profile keeps accepting http, for issuers on a developer's network.
    let s = load_with(&[("AUTH0_ISSUER", "http://issuer.example.com/")]).unwrap();
    assert_eq!(s.auth.issuer(), "http://issuer.example.com/");
}

#[test]
fn the_cache_is_bounded_in_bytes_with_a_default() {
    let s = load_with(&[]).unwrap();
    assert_eq!(s.cache.max_bytes, 16 << 20);
    let s = load_with(&[("APP__CACHE__MAX_BYTES", "1048576")]).unwrap();
    assert_eq!(s.cache.max_bytes, 1 << 20);
    let e = load_with(&[("APP__CACHE__MAX_BYTES", "0")])
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("cache.max_bytes (APP__CACHE__MAX_BYTES)"),
        "{e}"
    );
}

#[test]
fn the_description_is_served_locally_not_in_production_unless_asked() {
    assert!(load_with(&[]).unwrap().docs.enabled);
    assert!(
        !load_with(&[("APP__DOCS__ENABLED", "false")])
            .unwrap()
            .docs
            .enabled
    );
    let production = [
        ("APP_ENV", "production"),
        ("AUTH0_ISSUER", "https://issuer.example.com/"),
        ("AUTH0_AUDIENCE", "x"),
    ];
    assert!(!load(&config_dir(), &env(&production)).unwrap().docs.enabled);
    let mut asked = production.to_vec();
    asked.push(("APP__DOCS__ENABLED", "true"));
    assert!(load(&config_dir(), &env(&asked)).unwrap().docs.enabled);
    let e = load_with(&[("APP__DOCS__ENABLED", "maybe")])
        .unwrap_err()
        .to_string();
    assert!(e.contains("enabled"), "{e}");
}

#[test]
fn the_token_endpoint_is_known_for_a_tenant_and_the_development_issuer_else_assumed() {
    let tenant = load_with(&[]).unwrap();
    assert_eq!(
        tenant.docs.token_endpoint,
        TokenEndpoint::Known("https://example.us.auth0.com/oauth/token".to_owned())
    );
    let dev = load(&config_dir(), &env(&[("APP__DEV_ISSUER__PORT", "7071")])).unwrap();
    assert_eq!(
        dev.docs.token_endpoint,
        TokenEndpoint::Known("http://localhost:7071/oauth/token".to_owned())
    );
    for issuer in [
        "https://id.example.com/realms/x",
        "https://id.example.com/realms/x/",
    ] {
        let other = load_with(&[("AUTH0_ISSUER", issuer)]).unwrap();
        assert_eq!(
            other.docs.token_endpoint,
            TokenEndpoint::Assumed("https://id.example.com/realms/x/oauth/token".to_owned())
        );
    }
}
