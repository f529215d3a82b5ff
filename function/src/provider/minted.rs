//! What the providers that mint tokens here share: a token for one identity, signed HS256,
//! minted anew for every request (never cached, never handed to another caller).

use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::Value;

use super::{CachePolicy, TokenProvider, TokenRequest, UpstreamError, UpstreamToken};
use crate::config::Secret;

/// A provider that mints its tokens itself.
pub(super) trait Minter: Send + Sync {
    /// The header (HS256, with any fields of its own) and claims of the token for `identity`,
    /// valid from `now` (unix seconds) for `ttl` seconds.
    fn token(&self, identity: &str, room: Option<&str>, now: u64, ttl: u64) -> (Header, Value);
    fn secret(&self) -> &Secret;
    fn ttl(&self) -> u64;

    /// The signed token for `request` as of `now`.
    fn mint(&self, request: &TokenRequest, now: u64) -> Result<UpstreamToken, UpstreamError> {
        // The service establishes the identity first; a token for no one is worthless anyway.
        let Some(identity) = request.identity.as_deref().filter(|identity| !identity.is_empty()) else {
            return Err(UpstreamError::InvalidResponse("no identity to mint a token for"));
        };
        let room = request.room.as_deref().filter(|room| !room.is_empty());
        // No longer than the caller's sign-in, when it bounds the token.
        let ttl = match request.not_after {
            Some(end) if end <= now => {
                return Err(UpstreamError::InvalidResponse("the caller's sign-in has expired"));
            }
            Some(end) => self.ttl().min(end - now),
            None => self.ttl(),
        };
        let (header, claims) = self.token(identity, room, now, ttl);
        debug_assert_eq!(header.alg, Algorithm::HS256);
        let key = EncodingKey::from_secret(self.secret().expose().as_bytes());
        // HS256 over a JSON value cannot fail; the error is not echoed either way.
        let access_token = encode(&header, &claims, &key)
            .map_err(|_| UpstreamError::InvalidResponse("the token could not be signed"))?;
        Ok(UpstreamToken { access_token, refresh_token: None, expires_in: Some(ttl) })
    }
}

#[async_trait]
impl<M: Minter> TokenProvider for M {
    /// A token names its identity: it is never handed to another caller, and minting is cheap.
    fn cache_policy(&self) -> CachePolicy {
        CachePolicy::Never
    }

    async fn fetch_token(&self, request: &TokenRequest) -> Result<UpstreamToken, UpstreamError> {
        // A clock before 1970 is no reason to die: the token then simply is not valid yet.
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|since| since.as_secs()).unwrap_or(0);
        self.mint(request, now)
    }
}
