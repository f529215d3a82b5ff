//! Upstream token APIs. Each provider turns the configured credentials into an [`UpstreamToken`]
//! for a [`TokenRequest`], and says through its [`CachePolicy`] who else may be handed that
//! token; the rest of the function (caching, CORS, responses) does not care which API it talks to.
//!
//! Adding a provider: one module here implementing [`TokenProvider`], and its line in
//! [`from_config`].

mod client_credentials;
mod livekit;
mod minted;
mod oauth2;
#[cfg(test)]
pub(crate) mod stand_in;
mod twilio;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

use crate::config::{Config, ProviderSettings};

pub use oauth2::{MAX_BODY_BYTES, MAX_TOKEN_BYTES, lifetime_seconds, parse_token};

/// Who asks for a token: what a provider mints a token for, and what the cache keys it by.
/// For minting providers the identity is always there, and established by `IDENTITY_MODE`
/// before the provider is asked; client-credentials providers get an empty request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenRequest {
    /// The user the token is for.
    pub identity: Option<String>,
    /// The room (or channel, session) the token admits to.
    pub room: Option<String>,
}

/// Who may be handed a token once the provider minted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CachePolicy {
    /// One token serves every caller while it is fresh: an app's client-credentials token.
    Shared,
    /// A token is for one identity in one room, and only ever handed to the same pair.
    PerIdentity,
    /// Every request gets a token of its own: nothing is kept.
    Never,
}

/// What the client receives: the only fields of the upstream's answer that pass through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamToken {
    pub access_token: String,
    pub refresh_token: Option<String>,
    /// Lifetime in seconds, as the upstream stated it.
    pub expires_in: Option<u64>,
}

/// Why no token came back. Carries no upstream body: it may echo credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamError {
    /// 401 or 403: the key or secret is wrong or revoked.
    Rejected { status: u16 },
    /// Any other non-success status.
    Failed { status: u16 },
    /// No complete answer within the configured timeout.
    Timeout,
    /// Could not connect or the connection broke.
    Unreachable,
    /// A success status, but not a token: what was wrong with it.
    InvalidResponse(&'static str),
}

impl fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rejected { status } => {
                write!(f, "the token API rejected the app's credentials (HTTP {status})")
            }
            Self::Failed { status } => write!(f, "the token API failed (HTTP {status})"),
            Self::Timeout => f.write_str("the token API did not answer in time"),
            Self::Unreachable => f.write_str("the token API could not be reached"),
            Self::InvalidResponse(what) => {
                write!(f, "the token API's answer was not a token: {what}")
            }
        }
    }
}

impl std::error::Error for UpstreamError {}

/// Why a provider could not be set up from a valid configuration. Unlike the environment,
/// what set-up depends on may recover, so the next request tries again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetupError {
    /// The HTTP client for the token API could not be built (its TLS set-up failed).
    HttpClient,
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::HttpClient => {
                f.write_str("the function could not set up its HTTP client for the token API")
            }
        }
    }
}

impl std::error::Error for SetupError {}

#[async_trait]
pub trait TokenProvider: Send + Sync {
    /// Who else may be handed the tokens this provider mints.
    fn cache_policy(&self) -> CachePolicy;

    /// Mints a token for `request`, or asks the upstream for one.
    async fn fetch_token(&self, request: &TokenRequest) -> Result<UpstreamToken, UpstreamError>;
}

/// Builds the provider `config` names.
pub fn from_config(config: &Config) -> Result<Box<dyn TokenProvider>, SetupError> {
    Ok(match &config.settings {
        ProviderSettings::ClientCredentials(settings) => {
            Box::new(client_credentials::ClientCredentials::new(settings, config.upstream_timeout)?)
        }
        ProviderSettings::Twilio(settings) => Box::new(twilio::Twilio::new(settings)),
        ProviderSettings::Livekit(settings) => Box::new(livekit::Livekit::new(settings)),
    })
}

/// An HTTP client that gives up on the token API after `timeout`.
fn http_client(timeout: Duration) -> Result<reqwest::Client, SetupError> {
    reqwest::Client::builder().timeout(timeout).build().map_err(|_| SetupError::HttpClient)
}
