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
    /// The latest a minted token may expire (unix seconds): the caller's own sign-in token's
    /// expiry, when minted tokens follow it (`TOKEN_LIFETIME=sign-in`).
    pub not_after: Option<u64>,
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
    /// A redirect: followed nowhere, as the client's credentials would go with it (to another
    /// host, or over plain http). Only the status is kept, never where it pointed.
    Redirected { status: u16 },
    /// 429 or 503: busy. `retry_after`: how long it asked to be left alone (`Retry-After`), at
    /// most [`MAX_RETRY_AFTER`]; asked again only after that.
    Busy { status: u16, retry_after: Option<Duration> },
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
            Self::Redirected { status } => write!(
                f,
                "the token API answered HTTP {status}, a redirect, which the function follows nowhere (the app's credentials would go with it): set TOKEN_URL to the endpoint itself"
            ),
            Self::Busy { status, .. } => write!(f, "the token API is busy (HTTP {status})"),
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

/// The longest a busy upstream's `Retry-After` is honoured: past that, it is asked again.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// An HTTP client that gives up on the token API after `timeout`, and follows no redirect: a
/// client's credentials (`Authorization`, or `client_secret` in the form) must reach the
/// configured endpoint and nothing else.
fn http_client(timeout: Duration) -> Result<reqwest::Client, SetupError> {
    let client = reqwest::Client::builder().timeout(timeout).redirect(reqwest::redirect::Policy::none());
    client.build().map_err(|_| SetupError::HttpClient)
}

/// The `Retry-After` of an answer (seconds, or an HTTP date), at most [`MAX_RETRY_AFTER`];
/// `None` when absent or unreadable.
pub fn retry_after(headers: &reqwest::header::HeaderMap, now: std::time::SystemTime) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    let wait = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => httpdate(value)?.duration_since(now).unwrap_or(Duration::ZERO),
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`, RFC 9110 section 5.6.7), the form
/// `Retry-After` dates take.
fn httpdate(text: &str) -> Option<std::time::SystemTime> {
    let parts: Vec<&str> = text.split([' ', ':']).filter(|part| !part.is_empty()).collect();
    let [_, day, month, year, hour, minute, second, "GMT"] = parts[..] else { return None };
    let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        .iter()
        .position(|name| *name == month)? as i64
        + 1;
    let (day, year): (i64, i64) = (day.parse().ok()?, year.parse().ok()?);
    let (hour, minute, second): (i64, i64, i64) =
        (hour.parse().ok()?, minute.parse().ok()?, second.parse().ok()?);
    if !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second;
    u64::try_from(seconds).ok().map(|s| std::time::UNIX_EPOCH + Duration::from_secs(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{SystemTime, UNIX_EPOCH};

    fn headers(value: &str) -> reqwest::header::HeaderMap {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::RETRY_AFTER, value.parse().unwrap());
        headers
    }

    #[test]
    fn retry_after_is_read_in_seconds_or_as_a_date_and_bounded() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(retry_after(&headers("3"), now), Some(Duration::from_secs(3)));
        assert_eq!(retry_after(&headers("3600"), now), Some(MAX_RETRY_AFTER));
        assert_eq!(
            retry_after(&headers("Sun, 06 Nov 1994 08:49:47 GMT"), now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(retry_after(&headers("Sun, 06 Nov 1994 08:00:00 GMT"), now), Some(Duration::ZERO));
        for garbage in ["soon", "-5", "Sun, 32 Nov 1994 08:49:47 GMT", "Sun, 06 Foo 1994 08:49:47 GMT"] {
            assert_eq!(retry_after(&headers(garbage), now), None, "{garbage}");
        }
        assert_eq!(retry_after(&reqwest::header::HeaderMap::new(), SystemTime::now()), None);
    }
}
