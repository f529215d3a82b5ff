//! The token cache: one upstream call per token lifetime, however many requests arrive.
//!
//! Tokens are reused until shortly before they expire ([`refresh_margin`]), so a client never
//! receives a token about to die. A token whose lifetime the upstream did not state is never
//! cached: we cannot know when it dies, and handing out a dead token is worse than one more
//! upstream call. However long the upstream says a token lives, it is cached at most
//! [`MAX_CACHE_LIFETIME`], and no time arithmetic here can overflow.
//!
//! Who may be handed a cached token is the provider's [`CachePolicy`]: one token for everyone,
//! one per identity and room, or none kept at all. At most [`MAX_ENTRIES`] tokens are kept.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::provider::{CachePolicy, TokenProvider, TokenRequest, UpstreamError, UpstreamToken};

/// Where the cache reads the time; tests drive their own.
pub trait Clock: Send + Sync {
    fn now(&self) -> Instant;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// The longest a token is kept, whatever lifetime the upstream states (even `u64::MAX` s).
pub const MAX_CACHE_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// How long before expiry a cached token stops being handed out: a minute, or half the
/// lifetime of a short-lived token.
pub fn refresh_margin(lifetime: Duration) -> Duration {
    Duration::from_secs(60).min(lifetime / 2)
}

/// A token as handed to one client: `expires_in` counts from now, not from when it was fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_in: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    Hit,
    Miss,
}

/// The most tokens kept at once, so a caller naming endless identities cannot grow the
/// function's memory without bound.
pub const MAX_ENTRIES: usize = 1024;

struct Cached {
    token: UpstreamToken,
    fetched_at: Instant,
    fresh_until: Instant,
}

/// Which requests may share a token.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum CacheKey {
    Shared,
    PerIdentity { identity: Option<String>, room: Option<String> },
}

impl CacheKey {
    /// `None` when the policy keeps nothing.
    fn of(policy: CachePolicy, request: &TokenRequest) -> Option<Self> {
        match policy {
            CachePolicy::Shared => Some(Self::Shared),
            CachePolicy::PerIdentity => {
                Some(Self::PerIdentity { identity: request.identity.clone(), room: request.room.clone() })
            }
            CachePolicy::Never => None,
        }
    }
}

/// One key's token, or its last failure. Its lock is held across the upstream call: concurrent
/// requests on a cold key queue behind the one fetch, and get its outcome, token or failure,
/// instead of each calling the upstream.
type Slot = Arc<SlotCell>;

#[derive(Default)]
struct SlotCell {
    kept: Mutex<Kept>,
    /// Fetches finished so far: a request that finds more once it holds the lock waited while
    /// one ran, and shares its outcome.
    fetches: AtomicU64,
}

#[derive(Default)]
struct Kept {
    token: Option<Cached>,
    failure: Option<Failure>,
}

/// The last failed fetch of a key, remembered while the upstream asked to be left alone.
struct Failure {
    error: UpstreamError,
    at: Instant,
    /// Until when every request gets it instead of asking again: the upstream's `Retry-After`
    /// (at most [`crate::provider::MAX_RETRY_AFTER`]); [`SLOW_FAILURE_MEMORY`] after a timeout
    /// or no connection (each request would wait for its own); otherwise `at` (only the
    /// requests that queued behind the fetch get it).
    until: Instant,
}

/// How long a timeout or a connection that could not be made is remembered.
pub const SLOW_FAILURE_MEMORY: Duration = Duration::from_secs(5);

/// Why no token came: the upstream's failure, and, when it is remembered, how long until the
/// upstream is asked again (the caller's `Retry-After`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub error: UpstreamError,
    pub retry_after: Option<Duration>,
}

impl Failure {
    fn new(error: UpstreamError, at: Instant) -> Self {
        let memory = match &error {
            UpstreamError::Busy { retry_after: Some(wait), .. } => *wait,
            UpstreamError::Timeout | UpstreamError::Unreachable => SLOW_FAILURE_MEMORY,
            _ => Duration::ZERO,
        };
        Self { until: at.checked_add(memory).unwrap_or(at), error, at }
    }

    /// The failure as told to a request at `now`.
    fn refusal(&self, now: Instant) -> Refusal {
        let left = self.until.saturating_duration_since(now);
        let mut error = self.error.clone();
        if let UpstreamError::Busy { retry_after: Some(wait), .. } = &mut error {
            *wait = left;
        }
        Refusal { error, retry_after: (!left.is_zero()).then_some(left) }
    }
}

pub struct TokenCache {
    slots: std::sync::Mutex<HashMap<CacheKey, Slot>>,
    clock: Arc<dyn Clock>,
}

impl TokenCache {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self { slots: Default::default(), clock }
    }

    /// A token for `request`: a cached one if still fresh and the provider's policy lets this
    /// request have it, else one from `provider` (cached when it states its lifetime and the
    /// policy keeps tokens). A failure is shared with the requests that waited on the same fetch,
    /// and remembered while the upstream asked for time ([`Failure`]); otherwise the next
    /// request tries again.
    pub async fn get_or_fetch(
        &self,
        provider: &dyn TokenProvider,
        request: &TokenRequest,
    ) -> Result<(IssuedToken, CacheOutcome), Refusal> {
        let refused = |error| Refusal { error, retry_after: None };
        let Some(key) = CacheKey::of(provider.cache_policy(), request) else {
            let token = provider.fetch_token(request).await.map_err(refused)?;
            let now = self.clock.now();
            return Ok((issue(&token, now, now), CacheOutcome::Miss));
        };
        let slot = self.slot(key);
        let seen = slot.fetches.load(Ordering::Acquire);
        let mut kept = slot.kept.lock().await;
        let waited_on_a_fetch = slot.fetches.load(Ordering::Acquire) != seen;
        let now = self.clock.now();
        if let Some(cached) = kept.token.as_ref().filter(|cached| now < cached.fresh_until) {
            return Ok((issue(&cached.token, cached.fetched_at, now), CacheOutcome::Hit));
        }
        if let Some(failure) = kept.failure.as_ref().filter(|f| now < f.until || waited_on_a_fetch) {
            return Err(failure.refusal(now));
        }
        let fetched = provider.fetch_token(request).await;
        slot.fetches.fetch_add(1, Ordering::Release);
        let token = match fetched {
            Ok(token) => token,
            Err(error) => {
                let failure = Failure::new(error, self.clock.now());
                let refusal = failure.refusal(failure.at);
                kept.failure = Some(failure);
                return Err(refusal);
            }
        };
        let fetched_at = self.clock.now();
        kept.failure = None;
        kept.token = token.expires_in.and_then(|seconds| {
            let keep = Duration::from_secs(seconds).min(MAX_CACHE_LIFETIME);
            // `keep - margin` cannot underflow (the margin is at most half); a clock so close to
            // its end that the addition overflows just means no caching.
            let fresh_until = fetched_at.checked_add(keep - refresh_margin(keep))?;
            Some(Cached { token: token.clone(), fetched_at, fresh_until })
        });
        Ok((issue(&token, fetched_at, fetched_at), CacheOutcome::Miss))
    }

    /// The slot for `key`, made (room made first, if need be) when there is none.
    fn slot(&self, key: CacheKey) -> Slot {
        // Nothing panics while this lock is held; should something have, the map is still whole.
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if !slots.contains_key(&key) && slots.len() >= MAX_ENTRIES {
            evict_one(&mut slots);
        }
        Arc::clone(slots.entry(key).or_default())
    }
}

/// Drops the slot whose token is worth least: one holding none (or an expired one) first, else
/// the one expiring soonest. A slot a request still holds (fetching, or queued behind a fetch)
/// goes last: dropping it only means its token is not kept.
fn evict_one(slots: &mut HashMap<CacheKey, Slot>) {
    let victim = slots
        .iter()
        .min_by_key(|(_, slot)| {
            let in_use = Arc::strong_count(slot) > 1;
            // `None` sorts first, and an expired token's instant before any fresh one's.
            let fresh_until =
                slot.kept.try_lock().ok().and_then(|kept| kept.token.as_ref().map(|c| c.fresh_until));
            (in_use, fresh_until)
        })
        .map(|(key, _)| key.clone());
    if let Some(victim) = victim {
        slots.remove(&victim);
    }
}

/// `expires_in` counts from `now`: the stated lifetime less the time since the fetch, never
/// below zero (nor above the stated lifetime, should the clock go back).
fn issue(token: &UpstreamToken, fetched_at: Instant, now: Instant) -> IssuedToken {
    let elapsed = now.saturating_duration_since(fetched_at);
    IssuedToken {
        access_token: token.access_token.clone(),
        refresh_token: token.refresh_token.clone(),
        expires_in: token
            .expires_in
            .map(|seconds| Duration::from_secs(seconds).saturating_sub(elapsed).as_secs()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::stand_in::StandIn;

    #[test]
    fn margin_is_a_minute_or_half_a_short_lifetime() {
        assert_eq!(refresh_margin(Duration::from_secs(3600)), Duration::from_secs(60));
        assert_eq!(refresh_margin(Duration::from_secs(30)), Duration::from_secs(15));
        assert_eq!(refresh_margin(Duration::ZERO), Duration::ZERO);
    }

    /// A clock the test sets; `Instant` has no constructor, so it counts from a real one.
    struct TestClock {
        start: Instant,
        offset: std::sync::Mutex<Duration>,
    }

    impl Clock for TestClock {
        fn now(&self) -> Instant {
            self.start + *self.offset.lock().unwrap()
        }
    }

    async fn get(cache: &TokenCache, expires_in: Option<u64>) -> (IssuedToken, CacheOutcome) {
        let provider = StandIn::new(CachePolicy::Shared, expires_in);
        cache.get_or_fetch(&provider, &TokenRequest::default()).await.unwrap()
    }

    #[tokio::test]
    async fn a_huge_lifetime_is_cached_a_day_and_counted_down_without_overflow() {
        let clock = Arc::new(TestClock { start: Instant::now(), offset: Default::default() });
        let cache = TokenCache::new(clock.clone());
        let (issued, outcome) = get(&cache, Some(u64::MAX)).await;
        assert_eq!((issued.expires_in, outcome), (Some(u64::MAX), CacheOutcome::Miss));

        *clock.offset.lock().unwrap() = Duration::from_secs(3600);
        let (issued, outcome) = get(&cache, Some(1)).await;
        assert_eq!((issued.expires_in, outcome), (Some(u64::MAX - 3600), CacheOutcome::Hit));

        // Past the day's cap (less the minute's margin): fetched again.
        *clock.offset.lock().unwrap() = MAX_CACHE_LIFETIME - Duration::from_secs(59);
        let (issued, outcome) = get(&cache, Some(u64::MAX)).await;
        assert_eq!((issued.expires_in, outcome), (Some(u64::MAX), CacheOutcome::Miss));
    }

    #[tokio::test]
    async fn a_clock_that_goes_back_never_raises_expires_in_above_the_lifetime() {
        let clock = Arc::new(TestClock { start: Instant::now(), offset: Default::default() });
        *clock.offset.lock().unwrap() = Duration::from_secs(100);
        let cache = TokenCache::new(clock.clone());
        get(&cache, Some(600)).await;
        *clock.offset.lock().unwrap() = Duration::ZERO;
        let (issued, outcome) = get(&cache, Some(1)).await;
        assert_eq!((issued.expires_in, outcome), (Some(600), CacheOutcome::Hit));
    }

    #[tokio::test]
    async fn a_zero_lifetime_is_never_served_from_the_cache() {
        let clock = Arc::new(TestClock { start: Instant::now(), offset: Default::default() });
        let cache = TokenCache::new(clock);
        for _ in 0..2 {
            let (issued, outcome) = get(&cache, Some(0)).await;
            assert_eq!((issued.expires_in, outcome), (Some(0), CacheOutcome::Miss));
        }
    }

    fn new_cache() -> (Arc<TestClock>, TokenCache) {
        let clock = Arc::new(TestClock { start: Instant::now(), offset: Default::default() });
        (clock.clone(), TokenCache::new(clock))
    }

    fn asking(identity: &str, room: &str) -> TokenRequest {
        TokenRequest { identity: Some(identity.into()), room: Some(room.into()), not_after: None }
    }

    /// The access token `provider` hands `request` through `cache`, and whether it was cached.
    async fn token_for(
        cache: &TokenCache,
        provider: &StandIn,
        request: &TokenRequest,
    ) -> (String, CacheOutcome) {
        let (issued, outcome) = cache.get_or_fetch(provider, request).await.unwrap();
        (issued.access_token, outcome)
    }

    fn holds(cache: &TokenCache, identity: &str, room: &str) -> bool {
        let key = CacheKey::of(CachePolicy::PerIdentity, &asking(identity, room)).unwrap();
        cache.slots.lock().unwrap().contains_key(&key)
    }

    #[tokio::test]
    async fn each_identity_and_room_has_a_token_of_its_own() {
        let (_, cache) = new_cache();
        let provider = StandIn::new(CachePolicy::PerIdentity, Some(3600));
        let (alice, bob) = (asking("alice", "r1"), asking("bob", "r1"));
        let elsewhere = asking("alice", "r2");
        let anonymous = TokenRequest::default();
        for (request, token) in
            [(&alice, "alice@r1#1"), (&bob, "bob@r1#2"), (&elsewhere, "alice@r2#3"), (&anonymous, "-@-#4")]
        {
            assert_eq!(token_for(&cache, &provider, request).await, (token.into(), CacheOutcome::Miss));
        }
        for (request, token) in [(&bob, "bob@r1#2"), (&alice, "alice@r1#1"), (&anonymous, "-@-#4")] {
            assert_eq!(token_for(&cache, &provider, request).await, (token.into(), CacheOutcome::Hit));
        }
        assert_eq!(provider.fetches(), 4);
    }

    #[tokio::test]
    async fn a_shared_token_serves_every_identity() {
        let (_, cache) = new_cache();
        let provider = StandIn::new(CachePolicy::Shared, Some(3600));
        let first = token_for(&cache, &provider, &asking("alice", "r1")).await;
        let second = token_for(&cache, &provider, &asking("bob", "r2")).await;
        assert_eq!((first.1, second.1), (CacheOutcome::Miss, CacheOutcome::Hit));
        assert_eq!((first.0, provider.fetches()), (second.0, 1));
    }

    #[tokio::test]
    async fn never_fetches_every_time_and_keeps_nothing() {
        let (_, cache) = new_cache();
        let provider = StandIn::new(CachePolicy::Never, Some(3600));
        for fetch in 1..=3 {
            let answer = token_for(&cache, &provider, &asking("alice", "r1")).await;
            assert_eq!(answer, (format!("alice@r1#{fetch}"), CacheOutcome::Miss));
        }
        assert_eq!(provider.fetches(), 3);
        assert!(cache.slots.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn endless_identities_keep_at_most_max_entries_tokens() {
        let (_, cache) = new_cache();
        let provider = StandIn::new(CachePolicy::PerIdentity, Some(3600));
        for n in 0..3 * MAX_ENTRIES {
            token_for(&cache, &provider, &asking(&format!("user-{n}"), "r")).await;
            assert!(cache.slots.lock().unwrap().len() <= MAX_ENTRIES, "after {n}");
        }
        assert_eq!(cache.slots.lock().unwrap().len(), MAX_ENTRIES);
        let latest = asking(&format!("user-{}", 3 * MAX_ENTRIES - 1), "r");
        assert_eq!(token_for(&cache, &provider, &latest).await.1, CacheOutcome::Hit);
    }

    #[tokio::test]
    async fn a_full_cache_drops_an_empty_or_expired_slot_first_then_the_token_expiring_soonest() {
        let (clock, cache) = new_cache();
        let unstated = StandIn::new(CachePolicy::PerIdentity, None);
        let short = StandIn::new(CachePolicy::PerIdentity, Some(600));
        let long = StandIn::new(CachePolicy::PerIdentity, Some(3600));
        token_for(&cache, &unstated, &asking("unstated", "r")).await;
        token_for(&cache, &short, &asking("short", "r")).await;
        for n in 2..MAX_ENTRIES {
            token_for(&cache, &long, &asking(&format!("user-{n}"), "r")).await;
        }
        // Fresh for 3600 - 60 s from now; "short" for 600 - 60 s.
        *clock.offset.lock().unwrap() = Duration::from_secs(100);
        token_for(&cache, &long, &asking("new-1", "r")).await;
        assert!(!holds(&cache, "unstated", "r") && holds(&cache, "short", "r"), "the empty slot went first");
        token_for(&cache, &long, &asking("new-2", "r")).await;
        assert!(!holds(&cache, "short", "r") && holds(&cache, "user-2", "r"), "then the soonest to expire");

        // Past every early token's freshness: any of them may go, but not the newer ones.
        *clock.offset.lock().unwrap() = Duration::from_secs(3600);
        token_for(&cache, &long, &asking("new-3", "r")).await;
        assert!(holds(&cache, "new-1", "r") && holds(&cache, "new-2", "r") && holds(&cache, "new-3", "r"));
        assert_eq!(cache.slots.lock().unwrap().len(), MAX_ENTRIES);
    }

    #[tokio::test]
    async fn concurrent_requests_for_one_identity_queue_behind_one_fetch() {
        let (_, cache) = new_cache();
        let cache = Arc::new(cache);
        let provider = Arc::new(StandIn::new(CachePolicy::PerIdentity, Some(3600)));
        let requests: Vec<_> = (0..16)
            .map(|n| {
                let (cache, provider) = (Arc::clone(&cache), Arc::clone(&provider));
                let request = asking(if n % 2 == 0 { "alice" } else { "bob" }, "r");
                tokio::spawn(async move { token_for(&cache, &provider, &request).await })
            })
            .collect();
        let mut misses = 0;
        for request in requests {
            misses += usize::from(request.await.unwrap().1 == CacheOutcome::Miss);
        }
        assert_eq!((misses, provider.fetches()), (2, 2));
    }
}
