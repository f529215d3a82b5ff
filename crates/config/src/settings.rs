//! What each provider runs with, read from its variables (declared in `providers.rs`), and
//! how a caller's identity is established for the providers that mint tokens per caller.

use std::time::Duration;

use crate::config::{ConfigError, Credentials, Reader, Secret, is_valid_upstream_url};
use crate::providers::*;

/// Twilio's longest Access Token lifetime.
pub const TWILIO_MAX_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// LiveKit documents no maximum; a day bounds what a leaked token is worth.
pub const LIVEKIT_MAX_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// The provider's own settings, one shape per kind of token.
#[derive(Debug, Clone)]
pub enum ProviderSettings {
    /// `dolby` and `oauth2`: a token fetched from an OAuth2 server for the whole app.
    ClientCredentials(ClientCredentials),
    Twilio(Twilio),
    Livekit(Livekit),
}

/// How the client authenticates to the OAuth2 token endpoint (RFC 6749, section 2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// HTTP Basic with the key and secret.
    Basic,
    /// `client_id` and `client_secret` in the form body.
    Body,
}

#[derive(Debug, Clone)]
pub struct ClientCredentials {
    pub credentials: Credentials,
    pub token_url: String,
    pub scope: Option<String>,
    pub audience: Option<String>,
    pub client_auth: ClientAuth,
}

/// A Twilio Access Token's signing key and grants.
#[derive(Debug, Clone)]
pub struct Twilio {
    pub account_sid: String,
    pub api_key: String,
    pub api_secret: Secret,
    pub grants: TwilioGrants,
    pub ttl: Duration,
}

/// The grants `TWILIO_GRANTS` enables, with what each needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TwilioGrants {
    /// Video: the room, when the request names one.
    pub video: bool,
    /// Conversations (chat): the service SID.
    pub chat_service_sid: Option<String>,
    pub voice: Option<VoiceGrant>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoiceGrant {
    /// The TwiML application outgoing calls go through.
    pub outgoing_application_sid: Option<String>,
    /// Whether the identity may receive calls.
    pub incoming_allow: bool,
}

/// A LiveKit access token's signing key.
#[derive(Debug, Clone)]
pub struct Livekit {
    pub api_key: String,
    pub api_secret: Secret,
    pub ttl: Duration,
}

/// Who the caller is, for providers that mint a token per caller.
#[derive(Debug, Clone)]
pub enum IdentitySettings {
    /// A bearer token from the app's own sign-in, verified here.
    Jwt(JwtSettings),
    /// Whatever identity the request names: for demos only.
    Trust,
}

#[derive(Debug, Clone)]
pub struct JwtSettings {
    pub keys: JwtKeys,
    pub issuer: String,
    pub audience: String,
    /// The claim that holds the identity (`sub` unless told otherwise).
    pub claim: String,
}

/// Where the keys that sign callers' tokens come from.
#[derive(Debug, Clone)]
pub enum JwtKeys {
    /// An OIDC provider's JSON Web Key Set (RS256, ES256).
    Jwks { url: String },
    /// A secret shared with the app's own sign-in (HS256).
    Hs256(Secret),
}

const URL_EXPECTED: &str = "an https URL with a host and no user name or password \
     (plain http only to localhost, 127.0.0.0/8 or [::1], for local tests)";

impl ProviderSettings {
    pub(crate) fn read(kind: ProviderKind, reader: &Reader) -> Result<Self, ConfigError> {
        Ok(match kind {
            ProviderKind::Dolby => Self::ClientCredentials(ClientCredentials {
                credentials: credentials(reader)?,
                token_url: upstream_url(reader, DOLBY_TOKEN_URL)?,
                scope: None,
                audience: None,
                client_auth: ClientAuth::Basic,
            }),
            ProviderKind::Oauth2 => Self::ClientCredentials(ClientCredentials {
                credentials: credentials(reader)?,
                token_url: upstream_url(reader, TOKEN_URL)?,
                scope: reader.get(TOKEN_SCOPE),
                audience: reader.get(TOKEN_AUDIENCE),
                client_auth: match reader.require(TOKEN_CLIENT_AUTH)?.trim().to_ascii_lowercase().as_str() {
                    "basic" => ClientAuth::Basic,
                    "body" => ClientAuth::Body,
                    _ => return Err(reader.invalid(TOKEN_CLIENT_AUTH, "`basic` or `body`")),
                },
            }),
            ProviderKind::Twilio => Self::Twilio(Twilio {
                account_sid: sid(reader, TWILIO_ACCOUNT_SID, "AC")?,
                api_key: sid(reader, TWILIO_API_KEY, "SK")?,
                api_secret: Secret::new(reader.require(TWILIO_API_SECRET)?),
                grants: twilio_grants(reader)?,
                ttl: ttl(reader, TWILIO_MAX_TTL)?,
            }),
            ProviderKind::Livekit => Self::Livekit(Livekit {
                api_key: reader.require(LIVEKIT_API_KEY)?,
                api_secret: Secret::new(reader.require(LIVEKIT_API_SECRET)?),
                ttl: ttl(reader, LIVEKIT_MAX_TTL)?,
            }),
        })
    }
}

impl IdentitySettings {
    pub(crate) fn read(reader: &Reader) -> Result<Self, ConfigError> {
        match reader.require(IDENTITY_MODE)?.trim().to_ascii_lowercase().as_str() {
            "trust" => return Ok(Self::Trust),
            "jwt" => {}
            _ => {
                return Err(reader.invalid(
                    IDENTITY_MODE,
                    "`jwt` (verify the caller's bearer token) or `trust` (demos only)",
                ));
            }
        }
        let keys = match (reader.get(IDENTITY_JWKS_URL), reader.get(IDENTITY_HS256_SECRET)) {
            (Some(_), None) => JwtKeys::Jwks { url: upstream_url(reader, IDENTITY_JWKS_URL)? },
            // RFC 7518, section 3.2: an HS256 key at least as long as the hash.
            (None, Some(secret)) if secret.len() >= 32 => JwtKeys::Hs256(Secret::new(secret)),
            (None, Some(_)) => {
                return Err(
                    reader.invalid(IDENTITY_HS256_SECRET, "at least 32 bytes long (RFC 7518, section 3.2)")
                );
            }
            (None, None) => return Err(ConfigError::Missing(IDENTITY_JWKS_URL.name)),
            (Some(_), Some(_)) => {
                return Err(reader.invalid(
                    IDENTITY_JWKS_URL,
                    "set alone: give IDENTITY_JWKS_URL or IDENTITY_HS256_SECRET, not both",
                ));
            }
        };
        let issuer = reader.get(IDENTITY_ISSUER).ok_or(ConfigError::Missing(IDENTITY_ISSUER.name))?;
        let audience = reader.get(IDENTITY_AUDIENCE).ok_or(ConfigError::Missing(IDENTITY_AUDIENCE.name))?;
        let claim = reader.require(IDENTITY_CLAIM)?.trim().to_string();
        Ok(Self::Jwt(JwtSettings { keys, issuer, audience, claim }))
    }
}

fn credentials(reader: &Reader) -> Result<Credentials, ConfigError> {
    Ok(Credentials {
        key: reader.require(CONSUMER_KEY)?,
        secret: Secret::new(reader.require(CONSUMER_SECRET)?),
    })
}

fn upstream_url(reader: &Reader, variable: Variable) -> Result<String, ConfigError> {
    let url = reader.require(variable)?;
    if is_valid_upstream_url(&url) { Ok(url) } else { Err(reader.invalid(variable, URL_EXPECTED)) }
}

/// A Twilio SID: its two-letter prefix and 32 hex digits.
fn sid(reader: &Reader, variable: Variable, prefix: &str) -> Result<String, ConfigError> {
    let value = reader.require(variable)?.trim().to_string();
    let valid =
        value.len() == 34 && value.starts_with(prefix) && value[2..].bytes().all(|b| b.is_ascii_hexdigit());
    if valid {
        Ok(value)
    } else {
        Err(reader.invalid(variable, &format!("a Twilio SID: {prefix} and 32 hexadecimal digits")))
    }
}

fn ttl(reader: &Reader, max: Duration) -> Result<Duration, ConfigError> {
    let max_seconds = max.as_secs();
    reader
        .require(TOKEN_TTL_SECONDS)?
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|seconds| (60..=max_seconds).contains(seconds))
        .map(Duration::from_secs)
        .ok_or_else(|| {
            reader.invalid(TOKEN_TTL_SECONDS, &format!("a whole number of seconds from 60 to {max_seconds}"))
        })
}

fn twilio_grants(reader: &Reader) -> Result<TwilioGrants, ConfigError> {
    let mut grants = TwilioGrants::default();
    let listed = reader.require(TWILIO_GRANTS)?;
    for name in listed.split(',').map(|name| name.trim().to_ascii_lowercase()) {
        match name.as_str() {
            "video" => grants.video = true,
            "chat" => {
                grants.chat_service_sid = Some(sid(reader, TWILIO_CHAT_SERVICE_SID, "IS")?);
            }
            "voice" => {
                let outgoing = match reader.get(TWILIO_OUTGOING_APPLICATION_SID) {
                    Some(_) => Some(sid(reader, TWILIO_OUTGOING_APPLICATION_SID, "AP")?),
                    None => None,
                };
                let incoming_allow =
                    match reader.get(TWILIO_INCOMING_ALLOW).map(|v| v.trim().to_ascii_lowercase()) {
                        None => false,
                        Some(v) if v == "true" => true,
                        Some(v) if v == "false" => false,
                        Some(_) => return Err(reader.invalid(TWILIO_INCOMING_ALLOW, "`true` or `false`")),
                    };
                if outgoing.is_none() && !incoming_allow {
                    return Err(reader.invalid(
                        TWILIO_OUTGOING_APPLICATION_SID,
                        "set for the voice grant (or TWILIO_INCOMING_ALLOW=true): AP and 32 hexadecimal digits",
                    ));
                }
                grants.voice = Some(VoiceGrant { outgoing_application_sid: outgoing, incoming_allow });
            }
            _ => {
                return Err(
                    reader.invalid(TWILIO_GRANTS, "a comma-separated list of `video`, `chat` and `voice`")
                );
            }
        }
    }
    Ok(grants)
}
