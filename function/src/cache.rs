//! The token cache: one upstream call per token lifetime, however many requests arrive.
//!
//! Tokens are reused until shortly before they expire ([`refresh_margin`]), so a client never
//! receives a token about to die. A token whose lifetime the upstream did not state is never
//! cached: we cannot know when it dies, and handing out a dead token is worse than one more
//! upstream call. However long the upstream says a token lives, it is cached at most
//! [`MAX_CACHE_LIFETIME`], and no time arithmetic here can overflow.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::provider::UpstreamToken;

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

struct Cached {
    token: UpstreamToken,
    fetched_at: Instant,
    fresh_until: Instant,
}

pub struct TokenCache {
    // Held across the upstream call: concurrent requests on a cold cache queue behind the
    // one fetch instead of each calling the upstream.
    slot: Mutex<Option<Cached>>,
    clock: Arc<dyn Clock>,
}

impl TokenCache {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self { slot: Mutex::new(None), clock }
    }

    /// The cached token if still fresh, else the result of `fetch` (cached when it succeeds
    /// and states its lifetime). Failures are not cached: the next request tries again.
    pub async fn get_or_fetch<E>(
        &self,
        fetch: impl Future<Output = Result<UpstreamToken, E>>,
    ) -> Result<(IssuedToken, CacheOutcome), E> {
        let mut slot = self.slot.lock().await;
        let now = self.clock.now();
        if let Some(cached) = slot.as_ref().filter(|cached| now < cached.fresh_until) {
            return Ok((issue(&cached.token, cached.fetched_at, now), CacheOutcome::Hit));
        }
        let token = fetch.await?;
        let fetched_at = self.clock.now();
        *slot = token.expires_in.and_then(|seconds| {
            let keep = Duration::from_secs(seconds).min(MAX_CACHE_LIFETIME);
            // `keep - margin` cannot underflow (the margin is at most half); a clock so close to
            // its end that the addition overflows just means no caching.
            let fresh_until = fetched_at.checked_add(keep - refresh_margin(keep))?;
            Some(Cached { token: token.clone(), fetched_at, fresh_until })
        });
        Ok((issue(&token, fetched_at, fetched_at), CacheOutcome::Miss))
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

    fn token(expires_in: Option<u64>) -> UpstreamToken {
        UpstreamToken { access_token: "at".into(), refresh_token: None, expires_in }
    }

    async fn get(cache: &TokenCache, expires_in: Option<u64>) -> (IssuedToken, CacheOutcome) {
        cache.get_or_fetch(async { Ok::<_, ()>(token(expires_in)) }).await.unwrap()
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
}
