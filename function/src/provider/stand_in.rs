//! A provider for unit tests: its tokens name who asked and which fetch minted them, so a test
//! tells a cached answer from a fresh one.

use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;

use super::{CachePolicy, TokenProvider, TokenRequest, UpstreamError, UpstreamToken};

pub struct StandIn {
    policy: CachePolicy,
    /// The lifetime every token states.
    expires_in: Option<u64>,
    fetches: AtomicUsize,
}

impl StandIn {
    pub fn new(policy: CachePolicy, expires_in: Option<u64>) -> Self {
        Self { policy, expires_in, fetches: AtomicUsize::new(0) }
    }

    /// How many tokens it minted so far.
    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl TokenProvider for StandIn {
    fn cache_policy(&self) -> CachePolicy {
        self.policy
    }

    /// `identity@room#n`, `-` for a name not given, `n` counting fetches from 1.
    async fn fetch_token(&self, request: &TokenRequest) -> Result<UpstreamToken, UpstreamError> {
        let fetch = self.fetches.fetch_add(1, Ordering::SeqCst) + 1;
        // Lets other requests run meanwhile, as they would during an upstream call.
        tokio::task::yield_now().await;
        let name = |part: &Option<String>| part.clone().unwrap_or_else(|| "-".into());
        Ok(UpstreamToken {
            access_token: format!("{}@{}#{fetch}", name(&request.identity), name(&request.room)),
            refresh_token: None,
            expires_in: self.expires_in,
        })
    }
}
