//! Who the caller is: the bearer token (a JWT) the app's own sign-in (Cognito, Auth0, any OIDC
//! provider, or the app's own server with a shared secret) gave them, verified before the
//! function mints a token in their name.
//!
//! What a token must be to prove an identity:
//! - sent as `Authorization: Bearer <JWT>`, the header at most [`MAX_AUTHORIZATION_BYTES`];
//! - signed with an allowed algorithm: with a key set (JWKS), RS256 or ES256 by the key its `kid`
//!   names, that key being of the same family (an RSA key only ever checks RS256, a P-256 key
//!   ES256, so a token saying HS256 is never checked with a public key as its HMAC secret); with a
//!   shared secret, HS256 only. `none` and every other algorithm are refused, and so is a header
//!   with `crit` (no extension is understood here). The header's `jku`, `jwk`, `x5u` and `x5c`
//!   are never followed: keys come from the configured key set alone;
//! - issued by the configured issuer (`iss`, a string) for the configured audience (`aud`, a
//!   string or an array holding it), unexpired (`exp`, required) and already valid (`nbf`, when
//!   present), both give or take [`LEEWAY`];
//! - holding the identity in the configured claim, as a non-empty string.
//!
//! The key set is fetched on first need and kept in memory for at most [`MAX_KEY_SET_AGE`]. A
//! token naming a key the set lacks (the provider rotated its keys) fetches it again, at most
//! once per [`REFRESH_INTERVAL`]. Concurrent requests that need the set queue behind one fetch
//! and use its outcome. A failed fetch keeps nothing new: the next request tries again, but for
//! a fetch that timed out, found no server or a busy one, which is remembered for
//! [`SLOW_FAILURE_MEMORY`] (each request would otherwise wait out its own timeout).
//!
//! Nothing here logs, and no error repeats the token or any of its claims' values.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, KeyOperations, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use tokio::sync::Mutex;

use crate::cache::{Clock, SystemClock};
use crate::config::settings::{JwtKeys, JwtSettings};
use crate::http::CappedReadError;
use crate::provider::SetupError;

/// The longest `Authorization` header read: an OIDC ID or access token is one to two KiB.
pub const MAX_AUTHORIZATION_BYTES: usize = 8 * 1024;
/// The most of a key set's body read: a provider's set is a few KiB.
pub const MAX_KEY_SET_BYTES: usize = 64 * 1024;
/// How far `exp` and `nbf` may be off, for clocks that disagree.
pub const LEEWAY: Duration = Duration::from_secs(30);
/// The least time between two fetches of the key set for a token naming a key it lacks.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(60);
/// How long a fetched key set is trusted: after that it is fetched again, so a key the provider
/// withdrew stops being accepted.
pub const MAX_KEY_SET_AGE: Duration = Duration::from_secs(60 * 60);
/// Redirects followed when fetching the key set, each to https only.
const MAX_REDIRECTS: usize = 3;

/// Why the caller's identity is not established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityError {
    /// No `Authorization` header. 401.
    Missing,
    /// An `Authorization` header of another scheme (`Basic ...`) or empty: no bearer token. 401.
    NotBearer,
    /// A bearer token was sent but proves nothing. 401.
    InvalidToken(TokenProblem),
    /// The key set could not be fetched, so no token can be checked now. 503; the next request
    /// tries again.
    KeysUnavailable(KeySetProblem),
}

/// What is wrong with a bearer token. Names the fault, never the token or a claim's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenProblem {
    /// The `Authorization` header is longer than [`MAX_AUTHORIZATION_BYTES`].
    HeaderTooLong,
    /// `Bearer` and nothing after it.
    NoToken,
    /// Not a JWT: three base64url parts, a JSON header, a JSON object of claims.
    Malformed,
    /// The header's `alg` is not one the configured keys allow (`none`, HS256 with a key set, ...).
    AlgorithmNotAllowed,
    /// The header has `crit`: extensions this function does not understand.
    CriticalHeader,
    /// With a key set: the header names no key (`kid`).
    NoKeyId,
    /// With a key set: no key of that `kid`, even after fetching the set again.
    UnknownKey,
    /// With a key set: the key the `kid` names is not for the token's algorithm.
    KeyAlgorithmMismatch,
    /// The signature does not verify with the key.
    BadSignature,
    /// No `exp` (or one that is not a time).
    NoExpiry,
    /// `exp` is past.
    Expired,
    /// `nbf` is not a time.
    InvalidNotBefore,
    /// `nbf` is still to come.
    NotYetValid,
    /// `iss` is missing, not a string, or another issuer.
    WrongIssuer,
    /// `aud` is missing or does not name the configured audience.
    WrongAudience,
    /// The identity claim is missing, not a string, or empty.
    NoIdentity,
}

/// Why the key set could not be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySetProblem {
    /// No complete answer in time.
    Timeout,
    /// Could not connect, or the connection broke.
    Unreachable,
    /// An answer other than 200 (a redirect to plain http is not followed, so it ends here).
    Status(u16),
    /// The body is larger than [`MAX_KEY_SET_BYTES`].
    TooLarge,
    /// The body is not a JSON object with a `keys` array.
    NotAKeySet,
}

impl TokenProblem {
    /// What is wrong, for `error_description`: only characters RFC 6750 allows there.
    pub fn description(self) -> &'static str {
        match self {
            Self::HeaderTooLong => "the Authorization header is longer than 8 KiB",
            Self::NoToken => "no token after Bearer",
            Self::Malformed => "the token is not a well-formed JWT",
            Self::AlgorithmNotAllowed => "the token's signing algorithm is not allowed",
            Self::CriticalHeader => "the token has critical header extensions, none of which are supported",
            Self::NoKeyId => "the token names no signing key (kid)",
            Self::UnknownKey => "the token's signing key (kid) is not in the key set",
            Self::KeyAlgorithmMismatch => "the token's signing key (kid) is not for its algorithm",
            Self::BadSignature => "the token's signature is invalid",
            Self::NoExpiry => "the token has no expiry time (exp)",
            Self::Expired => "the token has expired",
            Self::InvalidNotBefore => "the token's not-before time (nbf) is not a time",
            Self::NotYetValid => "the token is not valid yet (nbf)",
            Self::WrongIssuer => "the token is not from the expected issuer",
            Self::WrongAudience => "the token is not for this audience",
            Self::NoIdentity => "the token's identity claim is missing, empty or not a string",
        }
    }
}

impl IdentityError {
    /// The HTTP status to answer with: 401, or 503 when the key set could not be fetched.
    pub fn status(&self) -> u16 {
        match self {
            Self::Missing | Self::NotBearer | Self::InvalidToken(_) => 401,
            Self::KeysUnavailable(_) => 503,
        }
    }

    /// The `WWW-Authenticate` header for a 401 (RFC 6750, section 3): `Bearer` alone when no
    /// bearer token was sent, with `error="invalid_token"` and what was wrong when one was.
    /// `None` for a 503.
    pub fn www_authenticate(&self) -> Option<String> {
        match self {
            Self::Missing | Self::NotBearer => Some("Bearer".to_string()),
            Self::InvalidToken(problem) => Some(format!(
                "Bearer error=\"invalid_token\", error_description=\"{}\"",
                problem.description()
            )),
            Self::KeysUnavailable(_) => None,
        }
    }
}

impl fmt::Display for IdentityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => f.write_str("no Authorization header"),
            Self::NotBearer => f.write_str("the Authorization header is not a bearer token"),
            Self::InvalidToken(problem) => write!(f, "invalid bearer token: {}", problem.description()),
            Self::KeysUnavailable(problem) => {
                write!(f, "the callers' key set could not be fetched: {problem}")
            }
        }
    }
}

impl std::error::Error for IdentityError {}

impl fmt::Display for KeySetProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout => f.write_str("no answer in time"),
            Self::Unreachable => f.write_str("the server could not be reached"),
            Self::Status(status) => write!(f, "HTTP {status}"),
            Self::TooLarge => write!(f, "the body is larger than {} KiB", MAX_KEY_SET_BYTES / 1024),
            Self::NotAKeySet => f.write_str("the body is not a JSON Web Key Set"),
        }
    }
}

/// Who a caller proved to be, and until when their token says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedIdentity {
    pub name: String,
    /// The token's `exp`, in seconds since the epoch.
    pub expires_at: u64,
}

/// How long a key-set fetch that timed out or found no server is remembered: each request would
/// otherwise wait out its own timeout while the provider is down.
pub const SLOW_FAILURE_MEMORY: Duration = Duration::from_secs(5);

/// Verifies callers' bearer tokens against the configured keys, issuer and audience.
pub struct IdentityCheck {
    keys: Keys,
    issuer: String,
    audience: String,
    claim: String,
}

enum Keys {
    /// HS256 with the secret shared with the app's sign-in.
    Secret(DecodingKey),
    Jwks(KeySetSource),
}

impl fmt::Debug for IdentityCheck {
    /// Neither the secret nor any key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = match &self.keys {
            Keys::Secret(_) => "HS256 secret".to_string(),
            Keys::Jwks(source) => format!("JWKS at {}", source.url),
        };
        f.debug_struct("IdentityCheck")
            .field("keys", &keys)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("claim", &self.claim)
            .finish()
    }
}

impl IdentityCheck {
    /// From the JWT settings; `timeout` bounds each key-set fetch. Fails only if the HTTP
    /// client cannot be built.
    pub fn new(settings: &JwtSettings, timeout: Duration) -> Result<Self, SetupError> {
        Self::with_clock(settings, timeout, Arc::new(SystemClock))
    }

    /// As [`new`](Self::new), with the clock that spaces key-set fetches (tests drive their
    /// own). Token times (`exp`, `nbf`) are always checked against the system's clock.
    pub fn with_clock(
        settings: &JwtSettings,
        timeout: Duration,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, SetupError> {
        let keys = match &settings.keys {
            JwtKeys::Hs256(secret) => Keys::Secret(DecodingKey::from_secret(secret.expose().as_bytes())),
            JwtKeys::Jwks { url } => Keys::Jwks(KeySetSource {
                url: url.clone(),
                client: key_set_client(timeout)?,
                clock,
                current: RwLock::new(None),
                fetching: Mutex::new(FetchLog::default()),
                attempts: AtomicU64::new(0),
            }),
        };
        Ok(Self {
            keys,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            claim: settings.claim.clone(),
        })
    }

    /// The identity the caller proved: the configured claim (`sub` unless told otherwise) of a
    /// valid token, as a string. `authorization` is the `Authorization` header's value.
    pub async fn verify(&self, authorization: Option<&str>) -> Result<String, IdentityError> {
        self.verify_identity(authorization).await.map(|verified| verified.name)
    }

    /// As [`verify`](Self::verify), with when the caller's token expires.
    pub async fn verify_identity(
        &self,
        authorization: Option<&str>,
    ) -> Result<VerifiedIdentity, IdentityError> {
        let token = bearer_token(authorization)?;
        let header = read_header(token).map_err(IdentityError::InvalidToken)?;
        let found;
        let (algorithm, key) = match &self.keys {
            Keys::Secret(key) => {
                if header.alg != Algorithm::HS256 {
                    return Err(IdentityError::InvalidToken(TokenProblem::AlgorithmNotAllowed));
                }
                (Algorithm::HS256, key)
            }
            Keys::Jwks(source) => {
                if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
                    return Err(IdentityError::InvalidToken(TokenProblem::AlgorithmNotAllowed));
                }
                let kid = header.kid.as_deref().filter(|kid| !kid.is_empty());
                let kid = kid.ok_or(IdentityError::InvalidToken(TokenProblem::NoKeyId))?;
                found = source.key(kid, header.alg).await?;
                (header.alg, &found)
            }
        };
        let claims = jsonwebtoken::decode::<Map<String, Value>>(token, key, &self.validation(algorithm))
            .map_err(|error| IdentityError::InvalidToken(problem_of(error.kind())))?
            .claims;
        let name = self.identity_of(&claims).map_err(IdentityError::InvalidToken)?;
        // `exp` is required and was checked to be a time.
        let expires_at = claims.get("exp").and_then(Value::as_f64).map_or(0, |exp| exp.max(0.0) as u64);
        Ok(VerifiedIdentity { name, expires_at })
    }

    /// How long a failure to fetch the key set is answered from memory (the caller's
    /// `Retry-After`); `None` when none is remembered.
    pub fn unavailable_for(&self) -> Option<Duration> {
        match &self.keys {
            Keys::Jwks(source) => source.remembered_failure().map(|(_, left)| left),
            Keys::Secret(_) => None,
        }
    }

    /// Exactly `algorithm`, whose family the key's matches; `exp`, `iss` and `aud` required.
    fn validation(&self, algorithm: Algorithm) -> Validation {
        let mut validation = Validation::new(algorithm);
        validation.leeway = LEEWAY.as_secs();
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = true;
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation
    }

    /// The identity, once the signature and the times, issuer and audience held; also what
    /// `jsonwebtoken` lets pass: an `iss` that is an array, an `nbf` that is not a number.
    fn identity_of(&self, claims: &Map<String, Value>) -> Result<String, TokenProblem> {
        if claims.get("iss").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            return Err(TokenProblem::WrongIssuer);
        }
        if claims.get("nbf").is_some_and(|nbf| !is_numeric_date(nbf)) {
            return Err(TokenProblem::InvalidNotBefore);
        }
        match claims.get(&self.claim).and_then(Value::as_str) {
            Some(identity) if !identity.is_empty() => Ok(identity.to_string()),
            _ => Err(TokenProblem::NoIdentity),
        }
    }
}

/// A time as `jsonwebtoken` reads one: a non-negative number that fits a u64.
fn is_numeric_date(value: &Value) -> bool {
    value.is_u64() || value.as_f64().is_some_and(|seconds| seconds >= 0.0 && seconds < u64::MAX as f64)
}

/// The token out of `Authorization: Bearer <token>` (the scheme in any case), refused before
/// any parsing when the header is too long, and when it holds anything but a JWT's characters.
fn bearer_token(authorization: Option<&str>) -> Result<&str, IdentityError> {
    let value = authorization.ok_or(IdentityError::Missing)?;
    if value.len() > MAX_AUTHORIZATION_BYTES {
        return Err(IdentityError::InvalidToken(TokenProblem::HeaderTooLong));
    }
    let blank = |c: char| c == ' ' || c == '\t';
    let value = value.trim_matches(blank);
    let (scheme, rest) = value.split_once(blank).unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(IdentityError::NotBearer);
    }
    let token = rest.trim_start_matches(blank);
    if token.is_empty() {
        return Err(IdentityError::InvalidToken(TokenProblem::NoToken));
    }
    let jwt_characters = token.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !jwt_characters || token.bytes().filter(|&b| b == b'.').count() != 2 {
        return Err(IdentityError::InvalidToken(TokenProblem::Malformed));
    }
    Ok(token)
}

/// What the token's header says, read before any key is chosen.
#[derive(Debug, PartialEq, Eq)]
struct TokenHeader {
    alg: Algorithm,
    kid: Option<String>,
}

/// The header of a token [`bearer_token`] let through. Only RS256, ES256 and HS256 are read
/// as algorithms: anything else (`none` included) is not allowed, whatever the keys.
fn read_header(token: &str) -> Result<TokenHeader, TokenProblem> {
    let encoded = token.split('.').next().unwrap_or_default();
    let json = base64url_decode(encoded).ok_or(TokenProblem::Malformed)?;
    let Ok(Value::Object(header)) = serde_json::from_slice::<Value>(&json) else {
        return Err(TokenProblem::Malformed);
    };
    if header.contains_key("crit") {
        return Err(TokenProblem::CriticalHeader);
    }
    let alg = match header.get("alg").and_then(Value::as_str) {
        Some("RS256") => Algorithm::RS256,
        Some("ES256") => Algorithm::ES256,
        Some("HS256") => Algorithm::HS256,
        _ => return Err(TokenProblem::AlgorithmNotAllowed),
    };
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err(TokenProblem::Malformed),
    };
    Ok(TokenHeader { alg, kid })
}

/// Unpadded base64url (RFC 7515, section 2), as JWTs use it; `None` for anything else,
/// including leftover bits that are not zero (as `jsonwebtoken` refuses them).
fn base64url_decode(input: &str) -> Option<Vec<u8>> {
    let mut decoded = Vec::with_capacity(input.len() / 4 * 3 + 2);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for byte in input.bytes() {
        let sextet = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        buffer = (buffer << 6) | u32::from(sextet);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            decoded.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    (input.len() % 4 != 1 && buffer == 0).then_some(decoded)
}

/// The token problem a `jsonwebtoken` error stands for.
fn problem_of(kind: &ErrorKind) -> TokenProblem {
    match kind {
        ErrorKind::InvalidSignature
        | ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidKeyFormat
        | ErrorKind::Crypto(_) => TokenProblem::BadSignature,
        ErrorKind::ExpiredSignature => TokenProblem::Expired,
        ErrorKind::ImmatureSignature => TokenProblem::NotYetValid,
        ErrorKind::InvalidIssuer => TokenProblem::WrongIssuer,
        ErrorKind::InvalidAudience => TokenProblem::WrongAudience,
        ErrorKind::MissingRequiredClaim(claim) => match claim.as_str() {
            "exp" => TokenProblem::NoExpiry,
            "iss" => TokenProblem::WrongIssuer,
            "aud" => TokenProblem::WrongAudience,
            _ => TokenProblem::Malformed,
        },
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm | ErrorKind::InvalidAlgorithmName => {
            TokenProblem::AlgorithmNotAllowed
        }
        _ => TokenProblem::Malformed,
    }
}

/// The client for the key set: gives up after `timeout`, follows a few redirects, each to https
/// on the configured host only (the keys that sign callers' tokens come from there or nowhere).
fn key_set_client(timeout: Duration) -> Result<reqwest::Client, SetupError> {
    let redirects = reqwest::redirect::Policy::custom(|attempt| {
        let configured_host =
            attempt.previous().first().and_then(|first| first.host_str().map(str::to_string));
        if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error("too many redirects")
        } else if attempt.url().scheme() == "https"
            && attempt.url().host_str().map(str::to_string) == configured_host
        {
            attempt.follow()
        } else {
            attempt.stop()
        }
    });
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(redirects)
        .build()
        .map_err(|_| SetupError::HttpClient)
}

/// The provider's key set: fetched when needed, kept while fresh.
struct KeySetSource {
    url: String,
    client: reqwest::Client,
    clock: Arc<dyn Clock>,
    /// The set last fetched; read by every request without waiting on a fetch.
    current: RwLock<Option<Arc<KeySet>>>,
    /// Held across a fetch: requests that need one meanwhile queue behind it, then use its
    /// outcome instead of fetching again.
    fetching: Mutex<FetchLog>,
    /// Fetches attempted so far (each while holding `fetching`), so a request that queued can
    /// tell that a fetch happened while it waited.
    attempts: AtomicU64,
}

#[derive(Default)]
struct FetchLog {
    last_attempt: Option<Instant>,
    /// Why the last attempt failed; `None` when it succeeded.
    last_failure: Option<KeySetProblem>,
}

struct KeySet {
    fetched_at: Instant,
    /// By `kid`: usually one key each.
    keys: HashMap<String, Vec<VerifyingKey>>,
}

/// A key from the set, with the one algorithm it checks.
struct VerifyingKey {
    algorithm: Algorithm,
    key: DecodingKey,
}

impl KeySet {
    fn is_fresh(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.fetched_at) < MAX_KEY_SET_AGE
    }

    /// The key `kid` names for `algorithm`; `Ok(None)` when the set has no such `kid`.
    fn find(&self, kid: &str, algorithm: Algorithm) -> Result<Option<DecodingKey>, IdentityError> {
        let Some(keys) = self.keys.get(kid) else { return Ok(None) };
        match keys.iter().find(|key| key.algorithm == algorithm) {
            Some(key) => Ok(Some(key.key.clone())),
            None => Err(IdentityError::InvalidToken(TokenProblem::KeyAlgorithmMismatch)),
        }
    }
}

impl KeySetSource {
    /// The last fetch's failure while it is remembered ([`SLOW_FAILURE_MEMORY`] after a timeout,
    /// no connection, or a busy server), and for how much longer.
    fn remembered_failure(&self) -> Option<(KeySetProblem, Duration)> {
        let log = self.fetching.try_lock().ok()?;
        let problem = log.last_failure?;
        let slow = matches!(
            problem,
            KeySetProblem::Timeout | KeySetProblem::Unreachable | KeySetProblem::Status(429 | 503)
        );
        let left =
            SLOW_FAILURE_MEMORY.saturating_sub(self.clock.now().saturating_duration_since(log.last_attempt?));
        (slow && !left.is_zero()).then_some((problem, left))
    }

    fn current(&self) -> Option<Arc<KeySet>> {
        // Nothing panics while this lock is held; should something have, the value is whole.
        self.current.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn set_current(&self, set: Option<Arc<KeySet>>) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = set;
    }

    /// The key `kid` names for `algorithm`, fetching the set when there is none fresh, or when
    /// it lacks `kid` and was last fetched over [`REFRESH_INTERVAL`] ago.
    async fn key(&self, kid: &str, algorithm: Algorithm) -> Result<DecodingKey, IdentityError> {
        let unknown = IdentityError::InvalidToken(TokenProblem::UnknownKey);
        let seen = self.attempts.load(Ordering::Acquire);
        let fresh = self.current().filter(|set| set.is_fresh(self.clock.now()));
        if let Some(key) = fresh.as_ref().map(|set| set.find(kid, algorithm)).transpose()?.flatten() {
            return Ok(key);
        }
        if let Some((problem, _)) = self.remembered_failure() {
            return Err(IdentityError::KeysUnavailable(problem));
        }

        let mut log = self.fetching.lock().await;
        let now = self.clock.now();
        let fresh = self.current().filter(|set| set.is_fresh(now));
        if let Some(key) = fresh.as_ref().map(|set| set.find(kid, algorithm)).transpose()?.flatten() {
            return Ok(key);
        }
        let fetched_meanwhile = self.attempts.load(Ordering::Acquire) != seen;
        let fetched_lately =
            log.last_attempt.is_some_and(|last| now.saturating_duration_since(last) < REFRESH_INTERVAL);
        if fetched_meanwhile || (fresh.is_some() && fetched_lately) {
            // The latest fetch is as new as this request: its outcome stands.
            if let Some(problem) = log.last_failure {
                return Err(IdentityError::KeysUnavailable(problem));
            }
            if fresh.is_some() {
                return Err(unknown);
            }
            // Fetched meanwhile, and already stale: fetch again.
        }

        let outcome = self.fetch().await;
        log.last_attempt = Some(self.clock.now());
        let result = match outcome {
            Ok(set) => {
                log.last_failure = None;
                let key = set.find(kid, algorithm);
                self.set_current(Some(Arc::new(set)));
                key.and_then(|key| key.ok_or(unknown))
            }
            Err(problem) => {
                log.last_failure = Some(problem);
                if fresh.is_none() {
                    // A stale set is not trusted past its age, whatever became of the fetch.
                    self.set_current(None);
                }
                Err(IdentityError::KeysUnavailable(problem))
            }
        };
        self.attempts.fetch_add(1, Ordering::Release);
        result
    }

    async fn fetch(&self) -> Result<KeySet, KeySetProblem> {
        let response = self
            .client
            .get(&self.url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(transport_problem)?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(KeySetProblem::Status(response.status().as_u16()));
        }
        let body = read_capped(response).await?;
        Ok(KeySet { fetched_at: self.clock.now(), keys: parse_key_set(&body)? })
    }
}

fn transport_problem(error: reqwest::Error) -> KeySetProblem {
    if error.is_timeout() { KeySetProblem::Timeout } else { KeySetProblem::Unreachable }
}

/// The key set's body up to [`MAX_KEY_SET_BYTES`] (see [`crate::http::read_capped`]).
async fn read_capped(response: reqwest::Response) -> Result<Vec<u8>, KeySetProblem> {
    crate::http::read_capped(response, MAX_KEY_SET_BYTES).await.map_err(|error| match error {
        CappedReadError::TooLarge => KeySetProblem::TooLarge,
        CappedReadError::Transport(error) => transport_problem(error),
    })
}

/// The usable keys of a JWKS (RFC 7517, section 5) by `kid`. A key this function cannot or
/// must not use is skipped, not an error: a set may well hold encryption keys, or keys of
/// other algorithms, beside the signing keys.
fn parse_key_set(body: &[u8]) -> Result<HashMap<String, Vec<VerifyingKey>>, KeySetProblem> {
    let Ok(Value::Object(mut set)) = serde_json::from_slice::<Value>(body) else {
        return Err(KeySetProblem::NotAKeySet);
    };
    let Some(Value::Array(entries)) = set.remove("keys") else {
        return Err(KeySetProblem::NotAKeySet);
    };
    let mut keys: HashMap<String, Vec<VerifyingKey>> = HashMap::new();
    for entry in entries {
        let Ok(jwk) = serde_json::from_value::<Jwk>(entry) else { continue };
        if let Some((kid, key)) = verifying_key(&jwk) {
            keys.entry(kid).or_default().push(key);
        }
    }
    Ok(keys)
}

/// `jwk` as a key for the one algorithm its type allows: an RSA key for RS256, a P-256 key for
/// ES256. Not a key with no `kid`, one for encryption, a symmetric (`oct`) key (a public set
/// must never hold a secret), or one whose own `alg` says otherwise.
fn verifying_key(jwk: &Jwk) -> Option<(String, VerifyingKey)> {
    let kid = jwk.common.key_id.as_ref().filter(|kid| !kid.is_empty())?;
    if !matches!(jwk.common.public_key_use, None | Some(PublicKeyUse::Signature)) {
        return None;
    }
    if jwk.common.key_operations.as_ref().is_some_and(|ops| !ops.contains(&KeyOperations::Verify)) {
        return None;
    }
    let (algorithm, stated) = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => (Algorithm::RS256, KeyAlgorithm::RS256),
        AlgorithmParameters::EllipticCurve(params) if params.curve == EllipticCurve::P256 => {
            (Algorithm::ES256, KeyAlgorithm::ES256)
        }
        _ => return None,
    };
    if jwk.common.key_algorithm.is_some_and(|alg| alg != stated) {
        return None;
    }
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some((kid.clone(), VerifyingKey { algorithm, key }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_unpadded_base64url_and_nothing_else() {
        for (encoded, decoded) in [
            ("", &b""[..]),
            ("Zg", b"f"),
            ("Zm8", b"fo"),
            ("Zm9v", b"foo"),
            ("Zm9vYg", b"foob"),
            ("-_8", &[0xfb, 0xff]),
            ("eyJhbGciOiJub25lIn0", br#"{"alg":"none"}"#),
        ] {
            assert_eq!(base64url_decode(encoded).as_deref(), Some(decoded), "{encoded}");
        }
        // Padding, the standard alphabet, a lone character, leftover bits that are not zero.
        for encoded in ["Zg==", "+/8", "Z", "Zh", "Zm9=", "Zm9vY", "é"] {
            assert_eq!(base64url_decode(encoded), None, "{encoded}");
        }
    }

    #[test]
    fn reads_the_bearer_token_only() {
        let token = "aaa.bbb.ccc";
        for header in
            ["Bearer aaa.bbb.ccc", "bearer aaa.bbb.ccc", "BEARER \t aaa.bbb.ccc ", " Bearer aaa.bbb.ccc"]
        {
            assert_eq!(bearer_token(Some(header)), Ok(token), "{header:?}");
        }
        assert_eq!(bearer_token(None), Err(IdentityError::Missing));
        for header in ["", " ", "Basic xyz", "Bearerx aaa.bbb.ccc", "Token aaa.bbb.ccc", "aaa.bbb.ccc"] {
            assert_eq!(bearer_token(Some(header)), Err(IdentityError::NotBearer), "{header:?}");
        }
        for header in ["Bearer", "Bearer ", "Bearer \t"] {
            assert_eq!(bearer_token(Some(header)), Err(IdentityError::InvalidToken(TokenProblem::NoToken)));
        }
        for header in [
            "Bearer garbage",
            "Bearer a.b",
            "Bearer a.b.c.d",
            "Bearer a.b c",
            "Bearer a+b.c.d",
            "Bearer ä.b.c",
        ] {
            assert_eq!(
                bearer_token(Some(header)),
                Err(IdentityError::InvalidToken(TokenProblem::Malformed)),
                "{header:?}"
            );
        }
        let longest = format!("Bearer {}", "a".repeat(MAX_AUTHORIZATION_BYTES - 10) + ".b.");
        assert_eq!(longest.len(), MAX_AUTHORIZATION_BYTES);
        assert!(bearer_token(Some(&longest)).is_ok());
        for too_long in [format!("{longest}c"), format!("Basic {}", "x".repeat(MAX_AUTHORIZATION_BYTES))] {
            assert_eq!(
                bearer_token(Some(&too_long)),
                Err(IdentityError::InvalidToken(TokenProblem::HeaderTooLong))
            );
        }
    }

    fn encode(json: &str) -> String {
        const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let bytes = json.as_bytes();
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
            for i in 0..=chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            }
        }
        assert_eq!(base64url_decode(&out).as_deref(), Some(bytes));
        out
    }

    #[test]
    fn reads_only_the_allowed_algorithms_from_the_header() {
        let header = |json: &str| read_header(&format!("{}.e30.", encode(json)));
        assert_eq!(
            header(r#"{"alg":"RS256","kid":"k1","typ":"JWT"}"#),
            Ok(TokenHeader { alg: Algorithm::RS256, kid: Some("k1".into()) })
        );
        assert_eq!(header(r#"{"alg":"ES256"}"#), Ok(TokenHeader { alg: Algorithm::ES256, kid: None }));
        assert_eq!(header(r#"{"alg":"HS256"}"#), Ok(TokenHeader { alg: Algorithm::HS256, kid: None }));
        for json in [
            r#"{"alg":"none"}"#,
            r#"{"alg":"None"}"#,
            r#"{"alg":"rs256"}"#,
            r#"{"alg":"RS384"}"#,
            r#"{"alg":"PS256"}"#,
            r#"{"alg":"HS512"}"#,
            r#"{"alg":"EdDSA"}"#,
            r#"{"alg":["RS256"]}"#,
            r#"{"kid":"k1"}"#,
        ] {
            assert_eq!(header(json), Err(TokenProblem::AlgorithmNotAllowed), "{json}");
        }
        assert_eq!(header(r#"{"alg":"RS256","crit":["exp"],"exp":1}"#), Err(TokenProblem::CriticalHeader));
        for json in [r#"{"alg":"RS256","kid":7}"#, r#"["RS256"]"#, "RS256", r#"{"alg":"RS256""#] {
            assert_eq!(header(json), Err(TokenProblem::Malformed), "{json}");
        }
    }

    #[test]
    fn keeps_only_signing_keys_of_the_allowed_types() {
        let set = parse_key_set(
            br#"{"keys":[
                {"kty":"RSA","kid":"rsa","n":"AQAB","e":"AQAB"},
                {"kty":"RSA","kid":"rsa-sig","use":"sig","alg":"RS256","n":"AQAB","e":"AQAB"},
                {"kty":"EC","kid":"ec","crv":"P-256","x":"AQAB","y":"AQAB","key_ops":["verify"]},
                {"kty":"RSA","kid":"rsa-enc","use":"enc","n":"AQAB","e":"AQAB"},
                {"kty":"RSA","kid":"rsa-oaep","alg":"RSA-OAEP","n":"AQAB","e":"AQAB"},
                {"kty":"RSA","kid":"rsa-384","alg":"RS384","n":"AQAB","e":"AQAB"},
                {"kty":"RSA","kid":"rsa-sign-only","key_ops":["sign"],"n":"AQAB","e":"AQAB"},
                {"kty":"RSA","n":"AQAB","e":"AQAB"},
                {"kty":"RSA","kid":"","n":"AQAB","e":"AQAB"},
                {"kty":"RSA","kid":"rsa-bad-base64","n":"A+B=","e":"AQAB"},
                {"kty":"EC","kid":"ec-384","crv":"P-384","x":"AQAB","y":"AQAB"},
                {"kty":"EC","kid":"ec-alg","crv":"P-256","alg":"RS256","x":"AQAB","y":"AQAB"},
                {"kty":"oct","kid":"secret","k":"c2VjcmV0"},
                {"kty":"OKP","kid":"ed","crv":"Ed25519","x":"AQAB"},
                {"kty":"XYZ","kid":"unknown"},
                {"kty":"RSA","kid":"weird-alg","alg":"ES256K","n":"AQAB","e":"AQAB"},
                "not a key", 7, null
            ]}"#,
        )
        .unwrap();
        let mut kids: Vec<_> = set.iter().map(|(kid, keys)| (kid.as_str(), keys[0].algorithm)).collect();
        kids.sort_by_key(|(kid, _)| *kid);
        assert_eq!(
            kids,
            [("ec", Algorithm::ES256), ("rsa", Algorithm::RS256), ("rsa-sig", Algorithm::RS256)]
        );

        assert!(parse_key_set(br#"{"keys":[]}"#).unwrap().is_empty());
        for body in [&b"not json"[..], b"[]", br#"{"keys":{}}"#, br#"{"key":[]}"#, b"", b"\xff"] {
            assert!(matches!(parse_key_set(body), Err(KeySetProblem::NotAKeySet)));
        }
    }

    #[test]
    fn every_description_fits_a_quoted_www_authenticate_parameter() {
        use TokenProblem::*;
        let all = [
            HeaderTooLong,
            NoToken,
            Malformed,
            AlgorithmNotAllowed,
            CriticalHeader,
            NoKeyId,
            UnknownKey,
            KeyAlgorithmMismatch,
            BadSignature,
            NoExpiry,
            Expired,
            InvalidNotBefore,
            NotYetValid,
            WrongIssuer,
            WrongAudience,
            NoIdentity,
        ];
        for problem in all {
            let description = problem.description();
            // RFC 6750, section 3: %x20-21 / %x23-5B / %x5D-7E.
            assert!(
                description.bytes().all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E)),
                "{problem:?}"
            );
            let error = IdentityError::InvalidToken(problem);
            assert_eq!(error.status(), 401);
            assert_eq!(
                error.www_authenticate().unwrap(),
                format!("Bearer error=\"invalid_token\", error_description=\"{description}\"")
            );
        }
        for error in [IdentityError::Missing, IdentityError::NotBearer] {
            assert_eq!((error.status(), error.www_authenticate().as_deref()), (401, Some("Bearer")));
        }
        let unavailable = IdentityError::KeysUnavailable(KeySetProblem::Status(500));
        assert_eq!((unavailable.status(), unavailable.www_authenticate()), (503, None));
        assert_eq!(unavailable.to_string(), "the callers' key set could not be fetched: HTTP 500");
    }
}
