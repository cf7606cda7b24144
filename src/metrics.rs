//! Prometheus metrics: what the server counts, and the text it serves on the management listener.
//!
//! Label values come from small closed sets (route patterns, status codes, fixed reasons), so a
//! client cannot grow the number of series.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use actix_web::http::{Method, StatusCode};
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    method: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AuthLabels {
    outcome: AuthOutcome,
    reason: &'static str,
}

/// How an authorization decision ended.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum AuthOutcome {
    allowed,
    missing_token,
    invalid_token,
    insufficient_permission,
    keys_unavailable,
    invalid_dpop_proof,
    use_dpop_nonce,
    proofs_unchecked,
    error,
}

/// What a CORS refusal refused.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum CorsRefusal {
    origin,
    method,
    headers,
    malformed,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CorsLabels {
    reason: CorsRefusal,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FetchLabels {
    result: FetchResult,
}

/// How a JWKS fetch ended.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum FetchResult {
    success,
    error,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UnknownKidLabels {
    result: UnknownKid,
}

/// What a token with an unknown `kid` did about the key set.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum UnknownKid {
    /// Started a refetch.
    fetched,
    /// Waited for a fetch already under way.
    joined,
    /// The unknown-`kid` cooldown allowed no refetch.
    suppressed,
}

/// The key gauges, read by the caller when the metrics are scraped.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeyGauges {
    pub keys_loaded: usize,
    /// Seconds since the last successful fetch (the oldest, with several issuers).
    pub seconds_since_success: Option<f64>,
    /// Seconds until unknown-`kid` refetches resume, while the cooldown suppresses some.
    pub refetch_suppressed_secs: f64,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    result: CacheResult,
}

/// How a verified-token cache lookup ended.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum CacheResult {
    hit,
    miss,
    expired,
}

/// Every metric the server keeps. Cheap to share: families are `Arc`s inside.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<RouteLabels, Histogram>,
    auth: Family<AuthLabels, Counter>,
    fetches: Family<FetchLabels, Counter>,
    keys_loaded: Gauge,
    since_refresh: Gauge<f64, AtomicU64>,
    unknown_kids: Family<UnknownKidLabels, Counter>,
    refetch_suppressed: Gauge<f64, AtomicU64>,
    cache: Family<CacheLabels, Counter>,
    cors_refusals: Family<CorsLabels, Counter>,
    verifications: Counter,
    cached_tokens: Gauge,
    /// The series nearly every protected request lands in, resolved on first use so the
    /// families' lock and hash are skipped afterwards (and /metrics shows no series early).
    allowed: OnceLock<Counter>,
    cache_hits: OnceLock<Counter>,
}

fn latency_histogram() -> Histogram {
    // 100 µs to ~3.3 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route pattern, method and status",
            requests.clone(),
        );
        let durations =
            Family::<RouteLabels, Histogram>::new_with_constructor(latency_histogram as fn() -> _);
        registry.register_with_unit(
            "http_request_duration",
            "Time from request to response head, by route pattern",
            Unit::Seconds,
            durations.clone(),
        );
        let auth = Family::<AuthLabels, Counter>::default();
        registry.register(
            "auth_decisions",
            "Authorization outcomes, with the reason a token was refused",
            auth.clone(),
        );
        let fetches = Family::<FetchLabels, Counter>::default();
        registry.register(
            "jwks_fetches",
            "JWKS fetch attempts by result",
            fetches.clone(),
        );
        let keys_loaded = Gauge::default();
        registry.register(
            "jwks_keys_loaded",
            "Signing keys currently loaded",
            keys_loaded.clone(),
        );
        let since_refresh = Gauge::<f64, AtomicU64>::default();
        registry.register_with_unit(
            "jwks_since_last_success",
            "Seconds since the last successful JWKS fetch (-1 before the first)",
            Unit::Seconds,
            since_refresh.clone(),
        );
        let unknown_kids = Family::<UnknownKidLabels, Counter>::default();
        registry.register(
            "jwks_unknown_kid_refetches",
            "Tokens with a kid not in the key set, by what they did: fetched, joined a fetch, \
             or suppressed by the cooldown",
            unknown_kids.clone(),
        );
        let refetch_suppressed = Gauge::<f64, AtomicU64>::default();
        registry.register_with_unit(
            "jwks_unknown_kid_refetch_suppressed",
            "Seconds until unknown-kid refetches resume, while the cooldown suppresses some \
             (0 otherwise)",
            Unit::Seconds,
            refetch_suppressed.clone(),
        );
        let cache = Family::<CacheLabels, Counter>::default();
        registry.register(
            "token_cache_lookups",
            "Verified-token cache lookups by result",
            cache.clone(),
        );
        let verifications = Counter::default();
        registry.register(
            "token_verifications",
            "Full token validations (signature checks)",
            verifications.clone(),
        );
        let cors_refusals = Family::<CorsLabels, Counter>::default();
        registry.register(
            "cors_refusals",
            "Browser requests refused by CORS, by what was refused",
            cors_refusals.clone(),
        );
        let cached_tokens = Gauge::default();
        registry.register(
            "token_cache_entries",
            "Tokens held by the verified-token cache",
            cached_tokens.clone(),
        );
        Self {
            registry,
            cors_refusals,
            cache,
            verifications,
            cached_tokens,
            requests,
            durations,
            auth,
            fetches,
            keys_loaded,
            since_refresh,
            unknown_kids,
            refetch_suppressed,
            allowed: OnceLock::new(),
            cache_hits: OnceLock::new(),
        }
    }

    /// One answered request. `route` is a declared route's path or `unmatched`.
    /// Labels are static strings: counting a request allocates nothing.
    pub fn observe_request(
        &self,
        route: &'static str,
        method: &Method,
        status: StatusCode,
        elapsed: Duration,
    ) {
        self.count_request(route, method, status);
        self.durations
            .get_or_create(&RouteLabels { route })
            .observe(elapsed.as_secs_f64());
    }

    fn count_request(&self, route: &'static str, method: &Method, status: StatusCode) {
        let method = match *method {
            Method::GET => "GET",
            Method::HEAD => "HEAD",
            Method::OPTIONS => "OPTIONS",
            Method::POST => "POST",
            Method::PUT => "PUT",
            Method::DELETE => "DELETE",
            Method::PATCH => "PATCH",
            _ => "other",
        };
        self.requests
            .get_or_create(&RequestLabels {
                route,
                method,
                status: status.as_u16(),
            })
            .inc();
    }

    /// One authorization decision, with the reason a token was refused (empty otherwise).
    /// Counts a browser request refused by CORS.
    pub fn observe_cors_refusal(&self, reason: CorsRefusal) {
        self.cors_refusals
            .get_or_create(&CorsLabels { reason })
            .inc();
    }

    pub fn observe_auth(&self, outcome: AuthOutcome, reason: &'static str) {
        if outcome == AuthOutcome::allowed {
            let allowed = self.allowed.get_or_init(|| {
                self.auth
                    .get_or_create(&AuthLabels {
                        outcome,
                        reason: "",
                    })
                    .clone()
            });
            allowed.inc();
            return;
        }
        self.auth
            .get_or_create(&AuthLabels { outcome, reason })
            .inc();
    }

    pub fn observe_cache(&self, result: CacheResult) {
        if result == CacheResult::hit {
            let hits = self
                .cache_hits
                .get_or_init(|| self.cache.get_or_create(&CacheLabels { result }).clone());
            hits.inc();
            return;
        }
        self.cache.get_or_create(&CacheLabels { result }).inc();
    }

    pub fn observe_verification(&self) {
        self.verifications.inc();
    }

    pub fn set_cached_tokens(&self, count: u64) {
        self.cached_tokens
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    pub fn observe_fetch(&self, result: FetchResult) {
        self.fetches.get_or_create(&FetchLabels { result }).inc();
    }

    pub fn observe_unknown_kid(&self, result: UnknownKid) {
        self.unknown_kids
            .get_or_create(&UnknownKidLabels { result })
            .inc();
    }

    /// The exposition text, with the key gauges set from what the caller read now.
    pub fn render(&self, keys: KeyGauges) -> String {
        self.keys_loaded
            .set(i64::try_from(keys.keys_loaded).unwrap_or(i64::MAX));
        self.since_refresh
            .set(keys.seconds_since_success.unwrap_or(-1.0));
        self.refetch_suppressed.set(keys.refetch_suppressed_secs);
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            log::error!("metrics could not be encoded");
        }
        text
    }
}

/// One route's series, resolved on first use, so counting its usual answer (GET 200) takes no
/// family lookup. `routes::register` keeps one in each route's resource: the label comes from
/// the route that matched, and there is nothing else to register.
#[derive(Debug)]
pub struct RouteMetrics {
    route: &'static str,
    metrics: Arc<Metrics>,
    ok: OnceLock<Counter>,
    duration: OnceLock<Histogram>,
}

impl RouteMetrics {
    pub fn new(metrics: Arc<Metrics>, route: &'static str) -> Self {
        Self {
            route,
            metrics,
            ok: OnceLock::new(),
            duration: OnceLock::new(),
        }
    }

    /// The `route` label.
    pub fn route(&self) -> &'static str {
        self.route
    }

    /// One answered request to this route.
    pub fn observe(&self, method: &Method, status: StatusCode, elapsed: Duration) {
        let duration = self.duration.get_or_init(|| {
            self.metrics
                .durations
                .get_or_create(&RouteLabels { route: self.route })
                .clone()
        });
        duration.observe(elapsed.as_secs_f64());
        if *method == Method::GET && status == StatusCode::OK {
            let ok = self.ok.get_or_init(|| {
                self.metrics
                    .requests
                    .get_or_create(&RequestLabels {
                        route: self.route,
                        method: "GET",
                        status: 200,
                    })
                    .clone()
            });
            ok.inc();
        } else {
            self.metrics.count_request(self.route, method, status);
        }
    }
}
