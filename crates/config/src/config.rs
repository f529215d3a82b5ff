//! The function's configuration, read only from environment variables (see
//! docs/configuration.md and docs/token-api.md).

use std::fmt;
use std::time::Duration;

use url::{Host, Url};

use crate::origins::AllowedOrigins;
use crate::providers::{
    ALLOWED_ORIGINS, ProviderKind, TOKEN_LIFETIME, TOKEN_PROVIDER, UPSTREAM_TIMEOUT_MS, Variable,
};
use crate::settings::{IdentitySettings, ProviderSettings};
use crate::{DEFAULT_UPSTREAM_TIMEOUT, UPSTREAM_TIMEOUT_CEILING};

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
    pub settings: ProviderSettings,
    /// How callers prove who they are: only for providers that mint per identity.
    pub identity: Option<IdentitySettings>,
    pub allowed_origins: AllowedOrigins,
    pub upstream_timeout: Duration,
    /// How long a token minted for a signed-in caller may live.
    pub minted_lifetime: MintedLifetime,
}

/// How long a token minted for a caller who proved a sign-in may live (`TOKEN_LIFETIME`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MintedLifetime {
    /// No longer than the caller's own sign-in token (the default): someone whose sign-in has
    /// lapsed (signed out, disabled) holds no call token past it.
    SignIn,
    /// TOKEN_TTL_SECONDS, whatever the sign-in's expiry: for apps whose sign-in tokens live a few
    /// minutes and are renewed in the background, where a call must not end with the ID token.
    Ttl,
}

/// What is wrong with the configuration. Names the variable, never its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    Missing(&'static str),
    Invalid { variable: &'static str, expected: String },
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
    /// Every required variable of the provider is checked for presence first, in the order
    /// the provider declares them, then each value.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let reader = Reader(&lookup);
        let provider = ProviderKind::parse(&reader.get(TOKEN_PROVIDER).unwrap_or_default())
            .ok_or_else(|| reader.invalid(TOKEN_PROVIDER, &ProviderKind::choices()))?;
        if let Some(missing) = provider.variables().find(|v| v.required && reader.get(*v).is_none()) {
            return Err(ConfigError::Missing(missing.name));
        }
        let settings = ProviderSettings::read(provider, &reader)?;
        let identity =
            if provider.mints_per_identity() { Some(IdentitySettings::read(&reader)?) } else { None };
        let allowed_origins = AllowedOrigins::parse(&reader.require(ALLOWED_ORIGINS)?).ok_or_else(|| {
            reader.invalid(
                ALLOWED_ORIGINS,
                "`*` or a comma-separated list of origins such as https://app.example.com",
            )
        })?;
        let reads_secret = reader.0(crate::SECRET_ARN).is_some_and(|arn| !arn.trim().is_empty());
        let (ceiling, secret_read) = match reads_secret {
            true => (
                crate::UPSTREAM_TIMEOUT_CEILING_WITH_SECRET,
                format!(
                    ", and a first request may spend {} s reading the secret",
                    crate::SECRET_READ_TIMEOUT.as_secs()
                ),
            ),
            false => (UPSTREAM_TIMEOUT_CEILING, String::new()),
        };
        let ceiling = ceiling.as_millis() as u64;
        let upstream_timeout = match reader.get(UPSTREAM_TIMEOUT_MS) {
            None => DEFAULT_UPSTREAM_TIMEOUT,
            Some(ms) => ms
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|ms| (1..=ceiling).contains(ms))
                .map(Duration::from_millis)
                .ok_or_else(|| {
                    reader.invalid(
                        UPSTREAM_TIMEOUT_MS,
                        &format!(
                            "a whole number of milliseconds from 1 to {ceiling}: the function has {} s to answer, and keeps {} s to answer its own 504{secret_read}",
                            crate::FUNCTION_TIMEOUT.as_secs(),
                            crate::ANSWER_MARGIN.as_secs()
                        ),
                    )
                })?,
        };
        let minted_lifetime = match provider.mints_per_identity() {
            false => MintedLifetime::Ttl,
            true => match reader.require(TOKEN_LIFETIME)?.trim().to_ascii_lowercase().as_str() {
                "sign-in" => MintedLifetime::SignIn,
                "ttl" => MintedLifetime::Ttl,
                _ => {
                    return Err(reader.invalid(
                        TOKEN_LIFETIME,
                        "`sign-in` (minted tokens expire no later than the caller's own) or `ttl` (TOKEN_TTL_SECONDS)",
                    ));
                }
            },
        };
        Ok(Self { provider, settings, identity, allowed_origins, upstream_timeout, minted_lifetime })
    }
}

/// Reads variables, each with its declared default; an empty value is as good as none
/// (`KEY=` in a dotenv file must not pass as a key).
pub(crate) struct Reader<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Reader<'_> {
    pub(crate) fn get(&self, variable: Variable) -> Option<String> {
        (self.0)(variable.name)
            .filter(|v| !v.trim().is_empty())
            .or_else(|| variable.default.map(str::to_string))
    }

    pub(crate) fn require(&self, variable: Variable) -> Result<String, ConfigError> {
        self.get(variable).ok_or(ConfigError::Missing(variable.name))
    }

    /// `variable` holds something else than `expected`; the value itself is never repeated.
    pub(crate) fn invalid(&self, variable: Variable, expected: &str) -> ConfigError {
        ConfigError::Invalid { variable: variable.name, expected: expected.to_string() }
    }
}

/// Whether `raw` may be an upstream the function calls (a token endpoint, a key set): https
/// (secrets and keys travel over it), or http to this machine only; a host; no credentials of
/// its own; no blank or control character.
pub fn is_valid_upstream_url(raw: &str) -> bool {
    if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let Some(url) = parse_absolute_url(raw) else {
        return false;
    };
    let loopback = match url.host() {
        Some(Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    let scheme = url.scheme() == "https" || (url.scheme() == "http" && loopback);
    scheme && url.username().is_empty() && url.password().is_none()
}

/// `raw` parsed as an absolute `scheme://host...` URL with a non-empty host, written out as
/// such: the URL standard would also read `https:host` or `https:///host` as `https://host`,
/// which in a setting is a typo, not an address.
pub fn parse_absolute_url(raw: &str) -> Option<Url> {
    let url = Url::parse(raw).ok()?;
    let authority = raw.get(url.scheme().len()..)?.strip_prefix("://")?;
    let has_host = url.host_str().is_some_and(|host| !host.is_empty());
    (has_host && !authority.starts_with('/')).then_some(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DEFAULT_TOKEN_URL;
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
        let ProviderSettings::ClientCredentials(settings) = config.settings else { panic!("{config:?}") };
        assert_eq!(settings.token_url, DEFAULT_TOKEN_URL);
        assert!(config.identity.is_none());
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
            ("UPSTREAM_TIMEOUT_MS", "8001"),
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
    fn the_upstream_timeout_leaves_the_function_time_for_its_own_504() {
        let with = |ms: &str| {
            let mut pairs = COMPLETE.to_vec();
            pairs.push(("UPSTREAM_TIMEOUT_MS", ms));
            Config::from_lookup(lookup(&pairs))
        };
        assert_eq!(with("8000").unwrap().upstream_timeout, UPSTREAM_TIMEOUT_CEILING);
        let message = with("8001").unwrap_err().to_string();
        assert!(message.contains("from 1 to 8000") && message.contains("10 s"), "{message}");
        assert!(UPSTREAM_TIMEOUT_CEILING + crate::ANSWER_MARGIN <= crate::FUNCTION_TIMEOUT);
    }

    fn token_url_error(value: &str) -> Option<ConfigError> {
        let mut pairs = COMPLETE.to_vec();
        pairs.push(("TOKEN_URL", value));
        Config::from_lookup(lookup(&pairs)).err()
    }

    #[test]
    fn token_url_must_be_https_with_a_host_and_no_credentials() {
        for bad in [
            "https://",
            "https:///v1/token",
            "https:session.voxeet.com/v1/oauth2/token",
            "https://a b.example/x",
            " https://a.example/x",
            "https://a.example/x\n",
            "https://a.example/\u{0}x",
            "http://remote.example/token",
            "http://10.0.0.1/token",
            "http://localhost.evil.example/token",
            "https://user:password@a.example/token",
            "https://user@a.example/token",
            "ftp://a.example/token",
            "file:///etc/passwd",
            "session.voxeet.com/v1/oauth2/token",
            "https://[::1/token",
        ] {
            let error = token_url_error(bad);
            assert!(
                matches!(error, Some(ConfigError::Invalid { variable: "TOKEN_URL", .. })),
                "{bad:?}: {error:?}"
            );
            let message = error.unwrap().to_string();
            assert!(!message.contains(bad.trim()), "{message}");
        }
        for good in [
            DEFAULT_TOKEN_URL,
            "https://api.dolby.io/v1/auth/token",
            "HTTPS://API.DOLBY.IO/v1/auth/token",
            "https://a.example:8443/token?tenant=x",
            "http://127.0.0.1:8080/token",
            "http://127.9.9.9/token",
            "http://localhost:9000/v1/oauth2/token",
            "http://[::1]:8080/token",
        ] {
            assert_eq!(token_url_error(good), None, "{good:?}");
        }
    }

    const TWILIO: &[(&str, &str)] = &[
        ("TOKEN_PROVIDER", "twilio"),
        ("TWILIO_ACCOUNT_SID", "AC0123456789abcdef0123456789abcdef"),
        ("TWILIO_API_KEY", "SK0123456789abcdef0123456789abcdef"),
        ("TWILIO_API_SECRET", "tw-s3cr3t"),
        ("IDENTITY_MODE", "trust"),
        ("ALLOWED_ORIGINS", "*"),
    ];

    fn twilio_with(extra: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut pairs: Vec<_> =
            TWILIO.iter().copied().filter(|(k, _)| !extra.iter().any(|(e, _)| e == k)).collect();
        pairs.extend_from_slice(extra);
        Config::from_lookup(lookup(&pairs))
    }

    #[test]
    fn twilio_reads_its_grants_and_lifetime_and_names_what_is_wrong() {
        use crate::settings::{Twilio, TwilioGrants, VoiceGrant};
        let config = twilio_with(&[
            ("TWILIO_GRANTS", "video, chat,VOICE"),
            ("TWILIO_CHAT_SERVICE_SID", "IS0123456789abcdef0123456789abcdef"),
            ("TWILIO_INCOMING_ALLOW", "true"),
            ("TOKEN_TTL_SECONDS", "86400"),
        ])
        .unwrap();
        let ProviderSettings::Twilio(Twilio { grants, ttl, .. }) = config.settings else { panic!() };
        let voice = Some(VoiceGrant { outgoing_application_sid: None, incoming_allow: true });
        let chat = Some("IS0123456789abcdef0123456789abcdef".to_string());
        assert_eq!(grants, TwilioGrants { video: true, chat_service_sid: chat, voice });
        assert_eq!(ttl, Duration::from_secs(86400));
        assert!(matches!(config.identity, Some(IdentitySettings::Trust)));
        for (extra, variable) in [
            (&[("TWILIO_GRANTS", "video,sms")][..], "TWILIO_GRANTS"),
            (&[("TWILIO_GRANTS", "chat")][..], "TWILIO_CHAT_SERVICE_SID"),
            (&[("TWILIO_GRANTS", "voice")][..], "TWILIO_OUTGOING_APPLICATION_SID"),
            (&[("TWILIO_GRANTS", "voice"), ("TWILIO_INCOMING_ALLOW", "yes")][..], "TWILIO_INCOMING_ALLOW"),
            (&[("TOKEN_TTL_SECONDS", "86401")][..], "TOKEN_TTL_SECONDS"),
            (&[("TOKEN_TTL_SECONDS", "59")][..], "TOKEN_TTL_SECONDS"),
            (&[("TWILIO_ACCOUNT_SID", "SK0123456789abcdef0123456789abcdef")][..], "TWILIO_ACCOUNT_SID"),
            (&[("TWILIO_API_KEY", "SK0123")][..], "TWILIO_API_KEY"),
            (&[("IDENTITY_MODE", "anyone")][..], "IDENTITY_MODE"),
        ] {
            let message = twilio_with(extra).unwrap_err().to_string();
            assert!(message.contains(variable), "{extra:?}: {message}");
            assert!(!message.contains("tw-s3cr3t"), "{message}");
        }
    }

    #[test]
    fn jwt_identity_needs_one_key_source_an_issuer_and_an_audience() {
        let jwt = |extra: &[(&str, &str)]| {
            let mut all = vec![("IDENTITY_MODE", "jwt")];
            all.extend_from_slice(extra);
            twilio_with(&all)
        };
        let jwks = ("IDENTITY_JWKS_URL", "https://issuer.example/.well-known/jwks.json");
        let issuer = ("IDENTITY_ISSUER", "https://issuer.example/");
        let audience = ("IDENTITY_AUDIENCE", "app");
        assert!(matches!(jwt(&[jwks, issuer, audience]).unwrap().identity, Some(IdentitySettings::Jwt(_))));
        assert_eq!(jwt(&[issuer, audience]).unwrap_err(), ConfigError::Missing("IDENTITY_JWKS_URL"));
        assert_eq!(jwt(&[jwks, audience]).unwrap_err(), ConfigError::Missing("IDENTITY_ISSUER"));
        assert_eq!(jwt(&[jwks, issuer]).unwrap_err(), ConfigError::Missing("IDENTITY_AUDIENCE"));
        let short = ("IDENTITY_HS256_SECRET", "too-short");
        let message = jwt(&[short, issuer, audience]).unwrap_err().to_string();
        assert!(message.contains("at least 32 bytes") && !message.contains("too-short"), "{message}");
        let long = ("IDENTITY_HS256_SECRET", "0123456789abcdef0123456789abcdef");
        assert!(jwt(&[long, jwks, issuer, audience]).unwrap_err().to_string().contains("not both"));
        let plain = ("IDENTITY_JWKS_URL", "http://issuer.example/jwks.json");
        assert!(jwt(&[plain, issuer, audience]).unwrap_err().to_string().contains("IDENTITY_JWKS_URL"));
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let config = Config::from_lookup(lookup(COMPLETE)).unwrap();
        assert!(!format!("{config:?}").contains("s3cr3t"));
    }
}
