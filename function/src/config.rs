//! Configuration, read only from environment variables (see README: "The token function").

use std::fmt;
use std::time::Duration;

use crate::cors::AllowedOrigins;

/// Dolby.io Communications' token endpoint, the one the original tutorial used.
pub const DEFAULT_TOKEN_URL: &str = "https://session.voxeet.com/v1/oauth2/token";
/// Well under API Gateway's 29 s integration limit, and under the function timeout
/// `tokendeploy up` sets, so a slow upstream becomes our 504 rather than API Gateway's.
pub const DEFAULT_UPSTREAM_TIMEOUT: Duration = Duration::from_secs(5);

/// Which upstream token API the function talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// Dolby.io (Communications `session.voxeet.com` or `api.dolby.io`): OAuth2 client credentials.
    Dolby,
}

impl ProviderKind {
    fn parse(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "dolby" => Some(Self::Dolby),
            _ => None,
        }
    }
}

/// A value that must never be printed: `Debug` shows a placeholder.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone)]
pub struct Credentials {
    pub key: String,
    pub secret: Secret,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub provider: ProviderKind,
    pub credentials: Credentials,
    pub token_url: String,
    pub allowed_origins: AllowedOrigins,
    pub upstream_timeout: Duration,
}

/// What is wrong with the configuration. Names the variable, never its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    Missing(&'static str),
    Invalid { variable: &'static str, expected: &'static str },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing(variable) => {
                write!(f, "the function's environment variable {variable} is not set")
            }
            Self::Invalid { variable, expected } => {
                write!(f, "the function's environment variable {variable} must be {expected}")
            }
        }
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads variables through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        // An empty value is as good as none: `KEY=` in a dotenv file must not pass as a key.
        let get = |name: &'static str| lookup(name).filter(|v| !v.trim().is_empty());
        let require = |name: &'static str| get(name).ok_or(ConfigError::Missing(name));

        let provider = match get("TOKEN_PROVIDER") {
            None => ProviderKind::Dolby,
            Some(name) => ProviderKind::parse(&name)
                .ok_or(ConfigError::Invalid { variable: "TOKEN_PROVIDER", expected: "one of: dolby" })?,
        };
        let key = require("CONSUMER_KEY")?;
        let secret = Secret::new(require("CONSUMER_SECRET")?);
        let allowed_origins =
            AllowedOrigins::parse(&require("ALLOWED_ORIGINS")?).ok_or(ConfigError::Invalid {
                variable: "ALLOWED_ORIGINS",
                expected: "`*` or a comma-separated list of origins such as https://app.example.com",
            })?;
        let token_url = get("TOKEN_URL").unwrap_or_else(|| DEFAULT_TOKEN_URL.to_string());
        if !(token_url.starts_with("https://") || token_url.starts_with("http://")) {
            return Err(ConfigError::Invalid { variable: "TOKEN_URL", expected: "an http(s) URL" });
        }
        let upstream_timeout = match get("UPSTREAM_TIMEOUT_MS") {
            None => DEFAULT_UPSTREAM_TIMEOUT,
            Some(ms) => ms
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|ms| (1..=25_000).contains(ms))
                .map(Duration::from_millis)
                .ok_or(ConfigError::Invalid {
                    variable: "UPSTREAM_TIMEOUT_MS",
                    expected: "a whole number of milliseconds from 1 to 25000",
                })?,
        };

        Ok(Self {
            provider,
            credentials: Credentials { key, secret },
            token_url,
            allowed_origins,
            upstream_timeout,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| map.get(name).cloned()
    }

    const COMPLETE: &[(&str, &str)] =
        &[("CONSUMER_KEY", "key"), ("CONSUMER_SECRET", "s3cr3t"), ("ALLOWED_ORIGINS", "https://a.example")];

    #[test]
    fn defaults_to_dolby_communications_endpoint() {
        let config = Config::from_lookup(lookup(COMPLETE)).unwrap();
        assert_eq!(config.provider, ProviderKind::Dolby);
        assert_eq!(config.token_url, DEFAULT_TOKEN_URL);
        assert_eq!(config.upstream_timeout, DEFAULT_UPSTREAM_TIMEOUT);
    }

    #[test]
    fn names_each_missing_variable() {
        for missing in ["CONSUMER_KEY", "CONSUMER_SECRET", "ALLOWED_ORIGINS"] {
            let pairs: Vec<_> = COMPLETE.iter().copied().filter(|(k, _)| *k != missing).collect();
            assert_eq!(Config::from_lookup(lookup(&pairs)).unwrap_err(), ConfigError::Missing(missing));
        }
    }

    #[test]
    fn empty_value_counts_as_missing() {
        let mut pairs = COMPLETE.to_vec();
        pairs[1] = ("CONSUMER_SECRET", "  ");
        assert_eq!(Config::from_lookup(lookup(&pairs)).unwrap_err(), ConfigError::Missing("CONSUMER_SECRET"));
    }

    #[test]
    fn rejects_unknown_provider_and_bad_values_without_echoing_them() {
        for (variable, value) in [
            ("TOKEN_PROVIDER", "acme"),
            ("TOKEN_URL", "ftp://x"),
            ("UPSTREAM_TIMEOUT_MS", "soon"),
            ("UPSTREAM_TIMEOUT_MS", "90000"),
            ("ALLOWED_ORIGINS", "not an origin"),
        ] {
            let mut pairs: Vec<_> = COMPLETE.iter().copied().filter(|(k, _)| *k != variable).collect();
            pairs.push((variable, value));
            let err = Config::from_lookup(lookup(&pairs)).unwrap_err();
            let message = err.to_string();
            assert!(message.contains(variable), "{message}");
            assert!(!message.contains(value), "{message}");
        }
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let config = Config::from_lookup(lookup(COMPLETE)).unwrap();
        assert!(!format!("{config:?}").contains("s3cr3t"));
    }
}
