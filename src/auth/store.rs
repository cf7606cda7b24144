//! One issuer's signing keys, held in app data and kept fresh by one background task.
//!
//! - Readers ([`JwksStore::lookup`]) take a read lock just long enough to clone an `Arc`; no
//!   lock is ever held across network I/O.
//! - One refresher task owns the HTTP client and performs every fetch: on start, every
//!   `refresh_interval`, with exponential backoff after a failure, and when asked.
//! - A token with an unknown `kid` asks for a refresh ([`JwksStore::refresh_for_unknown_kid`]).
//!   Concurrent askers share one fetch (single flight), and such refreshes happen at most once
//!   per `unknown_kid_cooldown`, counted from the last refresh an unknown `kid` started: the
//!   start-up fetch and scheduled refreshes do not count. The rules are in
//!   [`crate::auth::refresh`]; the store tells the asker whether the set is known current, so an
//!   unknown `kid` is refused (401) only then and is otherwise "could not check" (503).
//! - A failed fetch, or a key set with no usable key, keeps the last good keys, for at most
//!   `max_stale` after the last successful fetch: past that the store answers [`Lookup::Stale`]
//!   and protected routes answer 503 until a fetch succeeds again.
//! - The issuer steers the refresh period with `Cache-Control: max-age`, within configured bounds.
//! - An issuer configured without a JWKS URL has its metadata fetched before each key fetch
//!   ([`crate::auth::discovery`]): a changed `jwks_uri` is followed, and a failure counts as a
//!   failed fetch.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::Algorithm;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::auth::discovery::{Metadata, conventional_jwks_uri, discover, metadata_missing};
use crate::auth::fetch::{self, FetchError, Fetched, fetch};
use crate::auth::keys::{KeySet, VerificationKey};
use crate::auth::refresh::{Ask, MIN_GAP, RefreshState};
use crate::clock::Clock;
use crate::metrics::{FetchResult, Metrics, UnknownKid};
use crate::settings::{IssuerSettings, JwksSettings, KeySource};

/// What the store knows about a `kid`.
#[derive(Debug)]
pub enum Lookup {
    /// The key, and the generation of the key set it belongs to.
    Found(Arc<VerificationKey>, u64),
    /// Keys are loaded, but not this one.
    Unknown,
    /// No key set was ever obtained.
    NoKeys,
    /// The keys are older than `max_stale`: the issuer has been unreachable for too long.
    Stale,
}

/// A snapshot of the store, for readiness, metrics, logs and tests.
#[derive(Debug, Clone)]
pub struct KeyStatus {
    pub kids: Vec<String>,
    /// Time since the last successful fetch, by the store's clock.
    pub since_last_success: Option<Duration>,
    /// Whether keys are loaded and younger than `max_stale`.
    pub fresh: bool,
    pub last_error: Option<String>,
    /// Whether the last failure was the issuer's metadata (discovery) rather than its keys.
    pub discovery_failing: bool,
    /// Time until the next scheduled fetch.
    pub next_attempt_in: Option<Duration>,
    /// Completed fetch attempts, successful or not.
    pub attempts: u64,
    /// How long unknown-`kid` refetches stay suppressed by the cooldown, when any was
    /// suppressed in the current one.
    pub refetch_suppressed_for: Option<Duration>,
    /// Unknown-`kid` refetches the current cooldown suppressed.
    pub suppressed_refetches: u64,
    /// Tokens answered 503 since the last successful fetch because their `kid` is not in the
    /// set and the issuer could not be asked.
    pub unchecked_kids: u64,
    /// Time since the last such token.
    pub since_unchecked_kid: Option<Duration>,
}

/// Finished fetch attempts, and how the last one ended.
#[derive(Debug, Clone, Copy, Default)]
struct Attempts {
    count: u64,
    last_ok: bool,
}

/// The keys of the last successful fetch, and when it was.
#[derive(Debug)]
struct Snapshot {
    set: KeySet,
    fetched_at: Instant,
    /// Changes whenever a fetch brings different keys; same keys, same generation.
    generation: u64,
}

/// The current key set's generation (0: none yet) and fetch time, as atomics.
#[derive(Debug, Default)]
struct Current {
    generation: AtomicU64,
    fetched_at_nanos: AtomicU64,
}

/// The key store. Shared by every worker through `Arc`.
#[derive(Debug)]
pub struct JwksStore {
    issuer: IssuerSettings,
    /// The JWKS URL: configured, or the last one discovery found.
    uri: Mutex<Option<String>>,
    /// The token endpoint the issuer's metadata last named (with discovery only).
    token_endpoint: Mutex<Option<String>>,
    /// The URL of the last fetch attempt, for its log line.
    tried: Mutex<String>,
    algorithms: Vec<Algorithm>,
    settings: JwksSettings,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    keys: RwLock<Option<Arc<Snapshot>>>,
    /// The generation and fetch time of `keys`, for readers that need nothing else.
    current: Current,
    /// What `Current::fetched_at_nanos` counts from.
    epoch: Instant,
    state: Mutex<RefreshState>,
    wake: Notify,
    attempts: watch::Sender<Attempts>,
}

impl JwksStore {
    pub fn new(
        issuer: &IssuerSettings,
        algorithms: &[Algorithm],
        settings: &JwksSettings,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
        let epoch = clock.now();
        let uri = match &issuer.keys {
            KeySource::Jwks(uri) => Some(uri.clone()),
            KeySource::Discovery => None,
        };
        // The start-up fetch is under way from the start: a token that comes before it
        // finishes waits for it rather than starting an unknown-`kid` fetch of its own.
        let mut state = RefreshState::default();
        state.ask_now();
        Arc::new(Self {
            issuer: issuer.clone(),
            tried: Mutex::new(uri.clone().unwrap_or_default()),
            uri: Mutex::new(uri),
            token_endpoint: Mutex::new(None),
            algorithms: algorithms.to_vec(),
            settings: settings.clone(),
            clock,
            metrics,
            keys: RwLock::new(None),
            current: Current::default(),
            epoch,
            state: Mutex::new(state),
            wake: Notify::new(),
            attempts: watch::Sender::new(Attempts::default()),
        })
    }

    /// The issuer whose keys these are: the exact `iss` of its tokens.
    pub fn issuer(&self) -> &str {
        &self.issuer.issuer
    }

    /// Where the keys come from: the JWKS URL, or the issuer's metadata before discovery
    /// found one.
    pub fn uri(&self) -> String {
        lock(&self.uri)
            .clone()
            .unwrap_or_else(|| format!("{} (by discovery)", self.issuer.issuer))
    }

    /// The token endpoint the issuer's metadata names, once discovery has read it.
    pub fn token_endpoint(&self) -> Option<String> {
        lock(&self.token_endpoint).clone()
    }

    /// The key for `kid`, without waiting for anything.
    pub fn lookup(&self, kid: &str) -> Lookup {
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        match keys.as_ref() {
            None => Lookup::NoKeys,
            Some(snapshot) if self.is_stale(snapshot) => Lookup::Stale,
            Some(snapshot) => snapshot.set.get(kid).map_or(Lookup::Unknown, |k| {
                Lookup::Found(Arc::clone(k), snapshot.generation)
            }),
        }
    }

    /// The generation of the current key set, fresh or not (0: none yet).
    pub fn generation(&self) -> u64 {
        self.current.generation.load(Ordering::Acquire)
    }

    /// The generation of the current key set, `None` when no usable (fresh) set is loaded.
    ///
    /// Read on every cache hit, so it takes no lock: two atomics mirror the current snapshot.
    pub fn usable_generation(&self) -> Option<u64> {
        let generation = self.current.generation.load(Ordering::Acquire);
        if generation == 0 {
            return None;
        }
        let fetched_at = self.epoch
            + Duration::from_nanos(self.current.fetched_at_nanos.load(Ordering::Acquire));
        let age = self.clock.now().saturating_duration_since(fetched_at);
        (age <= self.settings.max_stale).then_some(generation)
    }

    /// Wall-clock seconds by the store's clock.
    pub fn unix_now(&self) -> f64 {
        self.clock.unix_now()
    }

    fn is_stale(&self, snapshot: &Snapshot) -> bool {
        self.clock
            .now()
            .saturating_duration_since(snapshot.fetched_at)
            > self.settings.max_stale
    }

    /// Asks for a refresh because a token named a `kid` we do not have, and waits for it.
    ///
    /// Joins a fetch already under way; otherwise starts one unless another unknown-`kid`
    /// fetch started less than `unknown_kid_cooldown` ago. Returns whether the key set is
    /// known current: the fetch waited for succeeded, or (suppressed) the cooldown's
    /// unknown-`kid` fetch succeeded and none has failed since.
    pub async fn refresh_for_unknown_kid(&self) -> bool {
        let (ask, done) = {
            let mut state = self.state();
            // Subscribed under the lock: the attempt we join cannot finish before we listen.
            let done = self.attempts.subscribe();
            let ask =
                state.ask_for_unknown_kid(self.clock.now(), self.settings.unknown_kid_cooldown);
            (ask, done)
        };
        match ask {
            Ask::Join => self.metrics.observe_unknown_kid(UnknownKid::joined),
            Ask::Fetch => {
                self.metrics.observe_unknown_kid(UnknownKid::fetched);
                self.wake.notify_one();
            }
            Ask::Suppressed { current } => {
                self.metrics.observe_unknown_kid(UnknownKid::suppressed);
                return current;
            }
        }
        self.wait_for(done).await
    }

    /// Counts a token refused because its `kid` could not be checked, for `/readyz`.
    pub fn note_unchecked_kid(&self) {
        self.state().unchecked_kid(self.clock.now());
    }

    /// Refreshes whatever the cooldown (joining an attempt under way) and waits for the
    /// attempt to finish.
    pub async fn refresh_now(&self) {
        let done = {
            let mut state = self.state();
            let done = self.attempts.subscribe();
            state.ask_now();
            done
        };
        self.wake.notify_one();
        self.wait_for(done).await;
    }

    /// Waits until at least `count` fetch attempts have finished (e.g. the first one at start).
    pub async fn wait_for_attempts(&self, count: u64) {
        let mut done = self.attempts.subscribe();
        let _ = done.wait_for(|a| a.count >= count).await;
    }

    /// Seconds until the next scheduled fetch, at least 1: the `Retry-After` of a 503.
    pub fn retry_after_secs(&self) -> u64 {
        self.state().retry_after_secs(self.clock.now())
    }

    /// The `Retry-After` for a token whose `kid` could not be checked: no later than the end
    /// of the unknown-`kid` cooldown, when it may ask for a refetch again.
    pub fn retry_after_unchecked_secs(&self) -> u64 {
        self.state()
            .retry_after_unchecked_secs(self.clock.now(), self.settings.unknown_kid_cooldown)
    }

    pub fn status(&self) -> KeyStatus {
        let now = self.clock.now();
        let snapshot = self.keys.read().unwrap_or_else(|p| p.into_inner()).clone();
        let state = self.state();
        let cooling = state.cooldown_left(now, self.settings.unknown_kid_cooldown);
        KeyStatus {
            kids: snapshot
                .as_ref()
                .map(|s| s.set.kids().into_iter().map(str::to_owned).collect())
                .unwrap_or_default(),
            since_last_success: state
                .last_success
                .map(|at| now.saturating_duration_since(at)),
            fresh: snapshot.as_ref().is_some_and(|s| !self.is_stale(s)),
            last_error: state.last_error.clone(),
            discovery_failing: state.last_error.is_some() && state.discovery_failing,
            next_attempt_in: state
                .next_attempt
                .map(|at| at.saturating_duration_since(now)),
            attempts: self.attempts.borrow().count,
            refetch_suppressed_for: cooling.filter(|_| state.suppressed > 0),
            suppressed_refetches: cooling.map_or(0, |_| state.suppressed),
            unchecked_kids: state.unchecked,
            since_unchecked_kid: state
                .last_unchecked
                .map(|at| now.saturating_duration_since(at)),
        }
    }

    /// Starts the background refresher on the current (actix) runtime. It fetches at once.
    pub fn spawn_refresher(self: &Arc<Self>) -> JoinHandle<()> {
        let store = Arc::clone(self);
        actix_web::rt::spawn(async move { store.run().await })
    }

    fn state(&self) -> MutexGuard<'_, RefreshState> {
        lock(&self.state)
    }

    /// Waits for the attempt under way to finish; whether it succeeded (false if the
    /// refresher did not answer in time).
    async fn wait_for(&self, mut done: watch::Receiver<Attempts>) -> bool {
        // Discovery may ask two metadata URLs and then the key set, each with the fetch
        // timeout, and an unknown-`kid` fetch may first wait out the minimum gap; the margin
        // only guards against a refresher that died.
        let limit = self
            .settings
            .fetch_timeout
            .saturating_mul(3)
            .saturating_add(self.min_gap())
            .saturating_add(Duration::from_secs(1));
        match tokio::time::timeout(limit, done.changed()).await {
            Ok(Ok(())) => done.borrow().last_ok,
            _ => false,
        }
    }

    /// The least time between the end of a fetch and an unknown-`kid` fetch.
    fn min_gap(&self) -> Duration {
        MIN_GAP.min(self.settings.unknown_kid_cooldown)
    }

    async fn run(self: Arc<Self>) {
        let client = fetch::client(&self.settings);
        let mut deadline = tokio::time::Instant::now();
        loop {
            let asked = tokio::select! {
                _ = tokio::time::sleep_until(deadline) => false,
                _ = self.wake.notified() => true,
            };
            let gap = {
                let mut state = self.state();
                if asked && !state.in_flight {
                    // A leftover wake-up for an attempt that already ran.
                    continue;
                }
                state.ask_now();
                state.wait_before_fetch(self.clock.now(), self.min_gap())
            };
            if !gap.is_zero() {
                tokio::time::sleep(gap).await;
            }
            let outcome = self.fetch(&client).await;
            let delay = self.complete(outcome);
            let now = tokio::time::Instant::now();
            deadline = now
                .checked_add(delay)
                .unwrap_or(now + Duration::from_secs(86_400));
        }
    }

    async fn fetch(&self, client: &awc::Client) -> Result<Fetched, FetchError> {
        let uri = match &self.issuer.keys {
            KeySource::Jwks(uri) => uri.clone(),
            KeySource::Discovery => match discover(client, &self.issuer, &self.settings).await {
                Ok(Metadata {
                    jwks_uri: uri,
                    token_endpoint,
                }) => {
                    *lock(&self.token_endpoint) = token_endpoint;
                    let previous = lock(&self.uri).replace(uri.clone());
                    if previous.as_ref().is_some_and(|p| *p != uri) {
                        log::info!(
                            "issuer {} now publishes its keys at {uri}",
                            self.issuer.issuer
                        );
                    }
                    uri
                }
                // No metadata (or no answer): the keys are still where discovery last found
                // them, or, never discovered, where Auth0 (and this service before discovery)
                // has them. A document that is wrong never gets here.
                Err(error) if metadata_missing(&error) => {
                    let known = lock(&self.uri).clone();
                    log::debug!("{error}; fetching the keys from where they were");
                    known.unwrap_or_else(|| conventional_jwks_uri(&self.issuer.issuer))
                }
                Err(error) => {
                    *lock(&self.tried) = self.uri();
                    return Err(error);
                }
            },
        };
        *lock(&self.tried) = uri.clone();
        fetch(client, &uri, &self.settings, &self.algorithms).await
    }

    /// Records an attempt's outcome and returns the delay until the next scheduled one.
    fn complete(&self, outcome: Result<Fetched, FetchError>) -> Duration {
        let now = self.clock.now();
        let ok = outcome.is_ok();
        let mut state = self.state();
        // Logged after the lock is released: a slow stderr must not stall readers of the state.
        let (delay, report) = match outcome {
            Ok((set, max_age)) => self.loaded(now, set, max_age),
            Err(error) => self.failed(&mut state, now, &error),
        };
        let delay = state.finished(now, ok, delay);
        // Counted before the lock is released: a request that starts the next attempt after
        // this point subscribes to the new count and so waits for its own attempt.
        self.attempts.send_modify(|a| {
            a.count += 1;
            a.last_ok = ok;
        });
        drop(state);
        log::log!(report.0, "{}", report.1);
        delay
    }

    /// Installs a fetched set (same keys, same generation) and returns the next refresh delay
    /// and the line to log.
    fn loaded(
        &self,
        now: Instant,
        set: KeySet,
        max_age: Option<Duration>,
    ) -> (Duration, (log::Level, String)) {
        self.metrics.observe_fetch(FetchResult::success);
        let kids = set.kids().join(", ");
        let mut keys = self.keys.write().unwrap_or_else(|p| p.into_inner());
        let generation = match keys.as_ref() {
            Some(p) if p.set.fingerprint() == set.fingerprint() => p.generation,
            Some(p) => p.generation + 1,
            None => 1,
        };
        let snapshot = Snapshot {
            set,
            fetched_at: now,
            generation,
        };
        let previous = keys.replace(Arc::new(snapshot));
        // Updated under the write lock: the pair never mixes two fetches. The time is stored
        // first, so a reader that sees the new generation sees its fetch time too.
        let since_epoch = now.saturating_duration_since(self.epoch).as_nanos();
        self.current.fetched_at_nanos.store(
            u64::try_from(since_epoch).unwrap_or(u64::MAX),
            Ordering::Release,
        );
        self.current.generation.store(generation, Ordering::Release);
        drop(keys);
        let changed = previous.is_none_or(|p| p.set.kids().join(", ") != kids);
        let report = if changed {
            (
                log::Level::Info,
                format!(
                    "signing keys loaded from {}: kids [{kids}]",
                    lock(&self.tried)
                ),
            )
        } else {
            (
                log::Level::Debug,
                format!(
                    "signing keys refreshed from {}, unchanged",
                    lock(&self.tried)
                ),
            )
        };
        // The issuer may steer the period, within our bounds.
        let delay = max_age.map_or(self.settings.refresh_interval, |age| {
            age.clamp(
                self.settings.min_refresh_interval,
                self.settings.max_refresh_interval,
            )
        });
        (delay, report)
    }

    /// Keeps the last good keys after a failed fetch and returns the backoff delay and the
    /// line to log.
    fn failed(
        &self,
        state: &mut RefreshState,
        now: Instant,
        error: &FetchError,
    ) -> (Duration, (log::Level, String)) {
        self.metrics.observe_fetch(FetchResult::error);
        let delay = state.backoff(self.settings.retry_initial, self.settings.retry_max);
        let kept = match self.keys.read().unwrap_or_else(|p| p.into_inner()).as_ref() {
            Some(snapshot) => format!(
                "keeping the {} keys loaded {:.0}s ago (usable up to {:.0}s)",
                snapshot.set.len(),
                now.saturating_duration_since(snapshot.fetched_at)
                    .as_secs_f64(),
                self.settings.max_stale.as_secs_f64()
            ),
            None => "no keys loaded yet, protected routes answer 503".to_owned(),
        };
        let report = (
            log::Level::Error,
            format!(
                "fetching signing keys from {} failed: {error}; {kept}; retrying in {:.1}s",
                lock(&self.tried),
                delay.as_secs_f64()
            ),
        );
        state.last_error = Some(error.to_string());
        state.discovery_failing = error.is_discovery();
        (delay, report)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}
