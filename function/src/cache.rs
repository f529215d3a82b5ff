//! The token cache: one upstream call per token lifetime, however many requests arrive.
//!
//! Tokens are reused until shortly before they expire ([`refresh_margin`]), so a client never
//! receives a token about to die. A token whose lifetime the upstream did not state is never
//! cached: we cannot know when it dies, and handing out a dead token is worse than one more
//! upstream call.

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
    expires_at: Instant,
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
            return Ok((issue(&cached.token, Some(cached.expires_at), now), CacheOutcome::Hit));
        }
        let token = fetch.await?;
        let now = self.clock.now();
        *slot = token.expires_in.map(|seconds| {
            let lifetime = Duration::from_secs(seconds);
            Cached {
                token: token.clone(),
                expires_at: now + lifetime,
                fresh_until: now + lifetime - refresh_margin(lifetime),
            }
        });
        let expires_at = token.expires_in.map(|seconds| now + Duration::from_secs(seconds));
        Ok((issue(&token, expires_at, now), CacheOutcome::Miss))
    }
}

fn issue(token: &UpstreamToken, expires_at: Option<Instant>, now: Instant) -> IssuedToken {
    IssuedToken {
        access_token: token.access_token.clone(),
        refresh_token: token.refresh_token.clone(),
        expires_in: expires_at.map(|at| at.saturating_duration_since(now).as_secs()),
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
}
