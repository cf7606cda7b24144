//! When a key store fetches, and what a token with an unknown `kid` may conclude: the rules,
//! with no I/O and no clock of their own (every method is told `now`).
//!
//! - A scheduled refresh (start-up, period, backoff) or an explicit one runs whenever it is
//!   due; it never counts against the unknown-`kid` cooldown.
//! - A token whose `kid` is not in the set joins a fetch under way, or starts one unless
//!   another *unknown-`kid`* fetch started within the cooldown. A fetch it starts waits, if
//!   need be, until [`MIN_GAP`] after the previous attempt ended, so a burst right after any
//!   fetch costs one more fetch, not one per token.
//! - The set is *known current* for an unknown `kid` only when a fetch that token waited for
//!   succeeded, or when the cooldown's unknown-`kid` fetch succeeded and no fetch has failed
//!   since. Then the `kid` is unknown (401); otherwise it could not be checked (503), and its
//!   `Retry-After` is no later than the end of the cooldown, when the token may ask again.
//! - A failed unknown-`kid` fetch neither lengthens the backoff of the scheduled retries nor
//!   postpones the next one: random `kid`s during an outage cannot delay noticing recovery.

use std::time::{Duration, Instant};

/// The least time between the end of one fetch and the start of a fetch an unknown `kid`
/// asked for (capped by the cooldown itself, so a cooldown of 0 means no gap).
pub const MIN_GAP: Duration = Duration::from_secs(1);

/// What a token with an unknown `kid` should do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    /// A fetch is under way: wait for its outcome.
    Join,
    /// This token started a fetch: wait for its outcome.
    Fetch,
    /// No fetch, because of the cooldown; `current` says whether the set is known current.
    Suppressed { current: bool },
}

/// Everything the store remembers about its fetches. Guarded by the store's mutex.
#[derive(Debug, Default)]
pub struct RefreshState {
    pub in_flight: bool,
    /// When the last attempt ended, successful or not.
    last_end: Option<Instant>,
    pub last_success: Option<Instant>,
    pub next_attempt: Option<Instant>,
    pub last_error: Option<String>,
    pub discovery_failing: bool,
    pub consecutive_failures: u32,
    /// Failures of scheduled (not unknown-`kid`) attempts since the last success: the
    /// backoff's exponent.
    scheduled_failures: u32,
    /// The last fetch an unknown `kid` started: when, and its outcome once known (a later
    /// failure of any fetch turns a success into a failure: the set is no longer current).
    unknown_kid_fetch: Option<(Instant, Option<bool>)>,
    /// Whether the attempt in flight was started by an unknown `kid`.
    in_flight_for_unknown_kid: bool,
    /// Unknown-`kid` refetches the cooldown suppressed since the last one that ran.
    pub suppressed: u64,
    /// Tokens answered 503 because their `kid` could not be checked, and the last time.
    pub unchecked: u64,
    pub last_unchecked: Option<Instant>,
}

impl RefreshState {
    /// A token's `kid` is not in the set: join, start or skip a fetch (see the module docs).
    pub fn ask_for_unknown_kid(&mut self, now: Instant, cooldown: Duration) -> Ask {
        if self.in_flight {
            return Ask::Join;
        }
        if let Some((at, outcome)) = self.unknown_kid_fetch
            && now.saturating_duration_since(at) < cooldown
        {
            self.suppressed = self.suppressed.saturating_add(1);
            // `finished` turns the outcome to a failure when any fetch fails afterwards.
            return Ask::Suppressed {
                current: outcome == Some(true),
            };
        }
        self.suppressed = 0;
        self.unknown_kid_fetch = Some((now, None));
        self.in_flight_for_unknown_kid = true;
        self.in_flight = true;
        Ask::Fetch
    }

    /// An explicit refresh: joins the one under way, or starts one now.
    /// Also what the refresher's timer does when a scheduled attempt is due.
    pub fn ask_now(&mut self) {
        if !self.in_flight {
            self.in_flight_for_unknown_kid = false;
            self.in_flight = true;
        }
    }

    /// How long the attempt in flight must still wait before it starts: only an unknown-`kid`
    /// fetch waits, until `gap` after the previous attempt ended, and never past the time
    /// the next scheduled attempt was due (a retry after a failure is not postponed).
    pub fn wait_before_fetch(&self, now: Instant, gap: Duration) -> Duration {
        match self.last_end {
            Some(end) if self.in_flight_for_unknown_kid => {
                let until = self
                    .next_attempt
                    .map_or(end + gap, |next| next.min(end + gap));
                until.saturating_duration_since(now)
            }
            _ => Duration::ZERO,
        }
    }

    /// The attempt in flight ended; `delay` is when the next scheduled one would be due after
    /// it (the refresh period after a success, [`RefreshState::backoff`] after a failure).
    /// Returns the delay until the next scheduled attempt: a failed unknown-`kid` fetch keeps
    /// an earlier one.
    pub fn finished(&mut self, now: Instant, ok: bool, delay: Duration) -> Duration {
        let for_unknown_kid = std::mem::take(&mut self.in_flight_for_unknown_kid);
        if let Some((_, outcome)) = &mut self.unknown_kid_fetch
            && (for_unknown_kid || !ok)
        {
            *outcome = Some(ok && outcome.is_none_or(|earlier| earlier));
        }
        self.in_flight = false;
        self.last_end = Some(now);
        let mut next = now.checked_add(delay).unwrap_or(now);
        if ok {
            self.last_success = Some(now);
            self.last_error = None;
            self.consecutive_failures = 0;
            self.scheduled_failures = 0;
            self.unchecked = 0;
        } else {
            self.consecutive_failures = self.consecutive_failures.saturating_add(1);
            if for_unknown_kid {
                if let Some(due) = self.next_attempt.filter(|due| *due > now) {
                    next = next.min(due);
                }
            } else {
                self.scheduled_failures = self.scheduled_failures.saturating_add(1);
            }
        }
        self.next_attempt = Some(next);
        next.saturating_duration_since(now)
    }

    /// The delay before retrying after a failure, given the scheduled failures before it:
    /// `initial`, doubling, at most `max`. Called before [`RefreshState::finished`] records it.
    pub fn backoff(&self, initial: Duration, max: Duration) -> Duration {
        let exponent = self.scheduled_failures.min(16);
        initial.saturating_mul(1 << exponent).min(max)
    }

    /// Whole seconds until the next scheduled attempt, at least 1: a 503's `Retry-After`.
    pub fn retry_after_secs(&self, now: Instant) -> u64 {
        whole_secs(
            self.next_attempt
                .map_or(Duration::ZERO, |next| next.saturating_duration_since(now)),
        )
    }

    /// The `Retry-After` of a token whose `kid` could not be checked: the next scheduled
    /// attempt, or the end of the cooldown if sooner (the token may then ask for a refetch).
    pub fn retry_after_unchecked_secs(&self, now: Instant, cooldown: Duration) -> u64 {
        self.cooldown_left(now, cooldown)
            .map_or(1, |left| self.retry_after_secs(now).min(whole_secs(left)))
    }

    /// A token was answered 503 because its `kid` could not be checked.
    pub fn unchecked_kid(&mut self, now: Instant) {
        self.unchecked = self.unchecked.saturating_add(1);
        self.last_unchecked = Some(now);
    }

    /// How long unknown-`kid` refetches stay suppressed (`None`: one would run now).
    pub fn cooldown_left(&self, now: Instant, cooldown: Duration) -> Option<Duration> {
        let (at, _) = self.unknown_kid_fetch?;
        let left = (at + cooldown).saturating_duration_since(now);
        (!left.is_zero()).then_some(left)
    }
}

/// `Retry-After` seconds: rounded up, at least 1.
fn whole_secs(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOLDOWN: Duration = Duration::from_secs(30);
    const PERIOD: Duration = Duration::from_secs(600);

    fn secs(n: f64) -> Duration {
        Duration::from_secs_f64(n)
    }

    /// A state whose start-up fetch ran at `t0` and ended with `ok`.
    fn after_start(ok: bool) -> (RefreshState, Instant) {
        let t0 = Instant::now();
        let mut state = RefreshState::default();
        state.ask_now();
        state.finished(t0, ok, PERIOD);
        (state, t0)
    }

    #[test]
    fn the_start_up_fetch_does_not_start_the_cooldown() {
        for after in [1.0, 5.0, 29.0] {
            let (mut state, t0) = after_start(true);
            let now = t0 + secs(after);
            assert_eq!(
                state.ask_for_unknown_kid(now, COOLDOWN),
                Ask::Fetch,
                "{after}s"
            );
            assert_eq!(state.wait_before_fetch(now, MIN_GAP), Duration::ZERO);
        }
    }

    #[test]
    fn an_unknown_kid_right_after_a_fetch_waits_out_the_minimum_gap() {
        let (mut state, t0) = after_start(true);
        let now = t0 + secs(0.25);
        assert_eq!(state.ask_for_unknown_kid(now, COOLDOWN), Ask::Fetch);
        assert_eq!(state.wait_before_fetch(now, MIN_GAP), secs(0.75));
    }

    #[test]
    fn the_gap_never_postpones_a_retry_that_is_due_sooner() {
        let (mut state, t0) = after_start(false);
        state.next_attempt = Some(t0 + secs(0.1));
        assert_eq!(state.ask_for_unknown_kid(t0, COOLDOWN), Ask::Fetch);
        assert_eq!(state.wait_before_fetch(t0, MIN_GAP), secs(0.1));
    }

    #[test]
    fn scheduled_and_explicit_fetches_never_wait_for_the_gap() {
        let (mut state, t0) = after_start(true);
        state.ask_now();
        assert_eq!(state.wait_before_fetch(t0, MIN_GAP), Duration::ZERO);
    }

    #[test]
    fn askers_join_the_fetch_under_way_whatever_started_it() {
        let (mut state, t0) = after_start(true);
        state.ask_now();
        assert_eq!(
            state.ask_for_unknown_kid(t0 + secs(60.0), COOLDOWN),
            Ask::Join
        );
        state.finished(t0 + secs(60.5), true, PERIOD);
        // Joining a scheduled fetch did not start a cooldown.
        assert_eq!(state.cooldown_left(t0 + secs(61.0), COOLDOWN), None);
    }

    #[test]
    fn within_the_cooldown_of_a_successful_unknown_kid_fetch_the_set_is_current() {
        let (mut state, t0) = after_start(true);
        state.ask_for_unknown_kid(t0 + secs(5.0), COOLDOWN);
        state.finished(t0 + secs(5.1), true, PERIOD);
        assert_eq!(
            state.ask_for_unknown_kid(t0 + secs(34.9), COOLDOWN),
            Ask::Suppressed { current: true }
        );
        assert_eq!(state.suppressed, 1);
        assert_eq!(
            state.ask_for_unknown_kid(t0 + secs(35.0), COOLDOWN),
            Ask::Fetch
        );
        assert_eq!(state.suppressed, 0, "counted per cooldown");
    }

    #[test]
    fn within_the_cooldown_of_a_failed_unknown_kid_fetch_nothing_is_known() {
        let (mut state, t0) = after_start(true);
        state.ask_for_unknown_kid(t0 + secs(5.0), COOLDOWN);
        state.finished(t0 + secs(5.1), false, PERIOD);
        assert_eq!(
            state.ask_for_unknown_kid(t0 + secs(6.0), COOLDOWN),
            Ask::Suppressed { current: false }
        );
    }

    #[test]
    fn a_failure_after_the_unknown_kid_fetch_makes_the_set_unchecked_again() {
        let (mut state, t0) = after_start(true);
        state.ask_for_unknown_kid(t0 + secs(5.0), COOLDOWN);
        state.finished(t0 + secs(5.1), true, PERIOD);
        state.ask_now();
        state.finished(t0 + secs(10.1), false, PERIOD);
        assert_eq!(
            state.ask_for_unknown_kid(t0 + secs(11.0), COOLDOWN),
            Ask::Suppressed { current: false }
        );
    }

    #[test]
    fn a_failure_since_the_unknown_kid_fetch_is_remembered_past_a_later_success() {
        let (mut state, t0) = after_start(true);
        state.ask_for_unknown_kid(t0 + secs(5.0), COOLDOWN);
        state.finished(t0 + secs(5.1), true, PERIOD);
        state.ask_now();
        state.finished(t0 + secs(10.1), false, secs(5.0));
        state.ask_now();
        state.finished(t0 + secs(15.2), true, PERIOD);
        assert_eq!(
            state.ask_for_unknown_kid(t0 + secs(16.0), COOLDOWN),
            Ask::Suppressed { current: false },
            "a key may have been published while the issuer was unreachable"
        );
    }

    #[test]
    fn a_failed_unknown_kid_fetch_neither_lengthens_nor_postpones_the_scheduled_retries() {
        let (mut state, t0) = after_start(false);
        // The start-up failure scheduled a retry in 5 s, the next one would wait 10 s.
        state.next_attempt = Some(t0 + secs(5.0));
        state.ask_for_unknown_kid(t0 + secs(1.0), COOLDOWN);
        let backoff = state.backoff(secs(5.0), secs(300.0));
        let next = state.finished(t0 + secs(1.5), false, backoff);
        assert_eq!(next, secs(3.5), "the retry due at 5 s is kept");
        assert_eq!(state.backoff(secs(5.0), secs(300.0)), secs(10.0));
    }

    #[test]
    fn an_unchecked_kid_is_told_to_retry_no_later_than_the_cooldown_end() {
        let (mut state, t0) = after_start(true);
        state.ask_for_unknown_kid(t0 + secs(5.0), COOLDOWN);
        state.finished(t0 + secs(5.1), false, secs(600.0));
        assert_eq!(
            state.retry_after_unchecked_secs(t0 + secs(10.0), COOLDOWN),
            25,
            "the refetch may be asked for again at 35 s, before the retry at 605 s"
        );
        state.next_attempt = Some(t0 + secs(12.0));
        assert_eq!(
            state.retry_after_unchecked_secs(t0 + secs(10.0), COOLDOWN),
            2
        );
    }

    #[test]
    fn a_zero_cooldown_never_suppresses() {
        let (mut state, t0) = after_start(true);
        for i in 1..5 {
            let now = t0 + secs(f64::from(i));
            assert_eq!(state.ask_for_unknown_kid(now, Duration::ZERO), Ask::Fetch);
            state.finished(now, true, PERIOD);
        }
    }

    #[test]
    fn cooldown_left_counts_from_the_unknown_kid_fetch() {
        let (mut state, t0) = after_start(true);
        assert_eq!(state.cooldown_left(t0, COOLDOWN), None);
        state.ask_for_unknown_kid(t0 + secs(2.0), COOLDOWN);
        assert_eq!(
            state.cooldown_left(t0 + secs(12.0), COOLDOWN),
            Some(secs(20.0))
        );
        assert_eq!(state.cooldown_left(t0 + secs(32.0), COOLDOWN), None);
    }

    #[test]
    fn backoff_doubles_from_the_initial_delay_up_to_the_maximum() {
        let (mut state, t0) = after_start(true);
        let delays: Vec<Duration> = (0..5)
            .map(|_| {
                state.ask_now();
                let delay = state.backoff(secs(5.0), secs(30.0));
                state.finished(t0, false, delay)
            })
            .collect();
        assert_eq!(delays, [5.0, 10.0, 20.0, 30.0, 30.0].map(secs));
    }

    #[test]
    fn retry_after_is_the_whole_seconds_to_the_next_attempt_and_at_least_one() {
        let (mut state, t0) = after_start(true);
        state.next_attempt = Some(t0 + secs(2.2));
        assert_eq!(state.retry_after_secs(t0), 3);
        assert_eq!(state.retry_after_secs(t0 + secs(5.0)), 1);
    }

    #[test]
    fn a_success_clears_the_unchecked_count() {
        let (mut state, t0) = after_start(false);
        state.unchecked_kid(t0);
        state.unchecked_kid(t0);
        assert_eq!(state.unchecked, 2);
        state.ask_now();
        state.finished(t0 + secs(1.0), true, PERIOD);
        assert_eq!(state.unchecked, 0);
        assert_eq!(
            state.last_unchecked,
            Some(t0),
            "when it last happened stays"
        );
    }
}
