//! The request handler: routing, configuration, CORS, and the cached upstream call.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::OnceCell;

use crate::cache::{CacheOutcome, Clock, Refusal, SystemClock, TokenCache};
use crate::config::origins::OriginCheck;
use crate::config::{Config, ConfigError, IdentitySettings, MintedLifetime, TOKEN_PATH};
use crate::configuration::{Configuration, ConfigurationError};
use crate::identity::{IdentityCheck, TokenProblem};
use crate::provider::{self, SetupError, TokenProvider, TokenRequest, UpstreamError};
use crate::request::{Request, Response, valid_name};
use crate::response::{self, ApiError};

/// The most of a request's method or path a log line repeats.
const LOGGED_CHARS: usize = 200;

/// How the provider is built from a valid configuration: [`provider::from_config`], or a
/// test's stand-in.
type ProviderSetup = Box<dyn Fn(&Config) -> Result<Box<dyn TokenProvider>, SetupError> + Send + Sync>;

/// Everything a warm function keeps between invocations.
pub struct TokenService {
    configuration: Configuration,
    /// Set up on the first token request. A failed set-up leaves it empty and the next request
    /// tries again: what set-up fetches may be back by then.
    provider: OnceCell<Box<dyn TokenProvider>>,
    setup: ProviderSetup,
    /// Verifies callers' bearer tokens (`IDENTITY_MODE=jwt`); set up, like the provider, on
    /// the first request that needs it, and again after a failure.
    identity_check: OnceCell<IdentityCheck>,
    cache: TokenCache,
}

impl TokenService {
    /// Reads the configuration from the process environment, and from the Secrets Manager
    /// secret `TOKEN_SECRET_ARN` names, if set, on the first request that needs it.
    pub fn from_env() -> Self {
        let configuration = Configuration::from_lookup(Box::new(|name| std::env::var(name).ok()));
        Self::with_setup(configuration, Arc::new(SystemClock), Box::new(provider::from_config))
    }

    /// A configuration error is kept, not raised: every request then answers 500 naming the
    /// variable, which tells the operator far more than a function that fails to start.
    pub fn new(config: Result<Config, ConfigError>, clock: Arc<dyn Clock>) -> Self {
        Self::with_setup(Configuration::Environment(config), clock, Box::new(provider::from_config))
    }

    /// As [`Self::new`], with the provider built by `setup`.
    fn with_setup(configuration: Configuration, clock: Arc<dyn Clock>, setup: ProviderSetup) -> Self {
        Self {
            configuration,
            provider: OnceCell::new(),
            setup,
            identity_check: OnceCell::new(),
            cache: TokenCache::new(clock),
        }
    }

    /// Answers one request. Every answer but `204` has a JSON body.
    pub async fn handle(&self, request: &Request) -> Response {
        let path = request.route_path();
        let (response, cache) = self.respond(request, path).await;
        let status = response.status;
        let cache = cache.map(|outcome| match outcome {
            CacheOutcome::Hit => "hit",
            CacheOutcome::Miss => "miss",
        });
        let method = loggable(&request.method);
        let path = loggable(path);
        // The error's code (`upstream_error`, ...): `tokendeploy logs` shows it beside the status.
        let error = (status >= 400).then(|| error_code(&response)).flatten();
        if status >= 500 {
            tracing::warn!(method, path, status, cache, error, "request failed");
        } else {
            tracing::info!(method, path, status, cache, error, "request served");
        }
        response
    }

    async fn respond(&self, request: &Request, path: &str) -> (Response, Option<CacheOutcome>) {
        // Without a valid allow-list there is nothing to check an origin against, so no answer
        // carries CORS headers; a denied origin gets none either.
        let cors = self.configuration.cors(request.origin.as_deref());
        if path != TOKEN_PATH {
            let error =
                ApiError::new(404, "not_found", format!("no such path; tokens are served at {TOKEN_PATH}"));
            return (response::error(&error, &cors), None);
        }
        let config = match self.configuration.get().await {
            Ok(config) => config,
            Err(unconfigured) => return (response::error(&configuration_error(&unconfigured), &cors), None),
        };
        if cors == OriginCheck::Denied {
            let error = ApiError::new(
                403,
                "origin_not_allowed",
                "this origin may not request tokens; add it to ALLOWED_ORIGINS",
            );
            return (response::error(&error, &cors), None);
        }
        let methods = config.provider.allowed_methods();
        match request.method.as_str() {
            "OPTIONS" => (response::preflight(&cors, &methods), None),
            method if config.provider.methods().contains(&method) => {
                self.serve_token(config, request, &cors).await
            }
            _ => {
                let error =
                    ApiError::new(405, "method_not_allowed", format!("{TOKEN_PATH} answers {methods}"));
                let mut answer = response::error(&error, &cors);
                answer.set_header("allow", methods);
                (answer, None)
            }
        }
    }

    /// A token for the caller through the cache, the provider set up first if it is not yet.
    async fn serve_token(
        &self,
        config: &Config,
        request: &Request,
        cors: &OriginCheck,
    ) -> (Response, Option<CacheOutcome>) {
        let provider = match self.provider.get_or_try_init(|| async { (self.setup)(config) }).await {
            Ok(provider) => provider,
            Err(setup_error) => {
                tracing::warn!(error = %setup_error, "token provider set-up failed");
                let error = ApiError::new(503, "provider_unavailable", setup_error.to_string());
                return (response::error(&error, cors), None);
            }
        };
        let token_request = match self.token_request(config, request).await {
            Ok(token_request) => token_request,
            Err((error, www_authenticate)) => {
                let mut answer = response::error(&error, cors);
                if let Some(challenge) = www_authenticate {
                    answer.set_header("www-authenticate", challenge);
                }
                return (answer, None);
            }
        };
        match self.cache.get_or_fetch(provider.as_ref(), &token_request).await {
            Ok((token, outcome)) => (response::token(&token, cors), Some(outcome)),
            Err(Refusal { error, retry_after }) => {
                tracing::warn!(error = %error, "token API call failed");
                let mut refused = upstream_error(&error);
                refused.retry_after = retry_after.map(retry_after_seconds);
                (response::error(&refused, cors), None)
            }
        }
    }
}

impl TokenService {
    /// Who the token is for. A client-credentials token is the app's: nobody in particular.
    /// A minted one is for the caller's identity, as `IDENTITY_MODE` establishes it; the
    /// error comes with a `WWW-Authenticate` challenge where one is due.
    async fn token_request(
        &self,
        config: &Config,
        request: &Request,
    ) -> Result<TokenRequest, (ApiError, Option<String>)> {
        let Some(identity_settings) = &config.identity else {
            return Ok(TokenRequest::default());
        };
        let parameters =
            request.parameters().map_err(|reason| (ApiError::new(400, "bad_request", reason), None))?;
        let mut not_after = None;
        let identity = match identity_settings {
            IdentitySettings::Trust => parameters.identity.ok_or_else(|| {
                let message =
                    "name the identity the token is for: ?identity=... on GET, {\"identity\": ...} on POST";
                (ApiError::new(400, "identity_required", message), None)
            })?,
            IdentitySettings::Jwt(settings) => {
                let check = self
                    .identity_check
                    .get_or_try_init(|| async { IdentityCheck::new(settings, config.upstream_timeout) })
                    .await
                    .map_err(|setup| (ApiError::new(503, "identity_unavailable", setup.to_string()), None))?;
                let verified =
                    check.verify_identity(request.authorization.as_deref()).await.map_err(|error| {
                        let code =
                            if error.status() == 401 { "invalid_identity" } else { "identity_unavailable" };
                        let mut refusal = (
                            ApiError::new(error.status(), code, error.to_string()),
                            error.www_authenticate(),
                        );
                        if let Some(wait) = check.unavailable_for() {
                            refusal.0.retry_after = Some(retry_after_seconds(wait));
                        }
                        refusal
                    })?;
                // Within the clock leeway a token past its `exp` still verifies; no token is
                // minted on a sign-in that has ended.
                if verified.expires_at <= unix_now() {
                    let expired = TokenProblem::Expired;
                    let challenge = format!(
                        r#"Bearer error="invalid_token", error_description="{}""#,
                        expired.description()
                    );
                    let message = "the sign-in has expired: no token is minted on it";
                    return Err((ApiError::new(401, "invalid_identity", message), Some(challenge)));
                }
                let bound = (config.minted_lifetime == MintedLifetime::SignIn).then_some(verified.expires_at);
                not_after = bound;
                let verified = verified.name;
                if !valid_name(&verified) {
                    let message = "the token's identity is not one a token can be minted for";
                    let challenge = r#"Bearer error="invalid_token", error_description="unusable identity""#;
                    return Err((ApiError::new(401, "invalid_identity", message), Some(challenge.into())));
                }
                if parameters.identity.is_some_and(|named| named != verified) {
                    let message = "the request names another identity than its bearer token proves";
                    return Err((ApiError::new(403, "identity_mismatch", message), None));
                }
                verified
            }
        };
        if config.provider.needs_room() && parameters.room.is_none() {
            let message = "name the room the token admits to: ?room=... on GET, {\"room\": ...} on POST";
            return Err((ApiError::new(400, "room_required", message), None));
        }
        Ok(TokenRequest { identity: Some(identity), room: parameters.room, not_after })
    }
}

fn configuration_error(error: &ConfigurationError) -> ApiError {
    match error {
        ConfigurationError::Invalid(message) => {
            tracing::error!(error = %message, "configuration incomplete");
            ApiError::new(500, "configuration_error", message.clone())
        }
        ConfigurationError::SecretUnavailable(message) => {
            tracing::warn!(error = %message, "secret unavailable");
            ApiError::new(503, "secret_unavailable", message.clone())
        }
    }
}

fn upstream_error(error: &UpstreamError) -> ApiError {
    let (status, code) = match error {
        UpstreamError::Rejected { .. } => (502, "upstream_rejected_credentials"),
        // Busy, and said for how long: so is this function, for that long.
        UpstreamError::Busy { retry_after: Some(_), .. } => (503, "upstream_unavailable"),
        UpstreamError::Busy { retry_after: None, .. }
        | UpstreamError::Redirected { .. }
        | UpstreamError::Failed { .. } => (502, "upstream_error"),
        UpstreamError::Unreachable => (502, "upstream_unreachable"),
        UpstreamError::InvalidResponse(_) => (502, "upstream_invalid_response"),
        UpstreamError::Timeout => (504, "upstream_timeout"),
    };
    ApiError::new(status, code, error.to_string())
}

/// A request's own text as a log line may hold it: at most [`LOGGED_CHARS`] characters,
/// control characters escaped (no forged lines in plain-text logs).
/// `Retry-After` in whole seconds, at least 1: the memory of a failure runs out within it.
fn retry_after_seconds(wait: Duration) -> String {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1).to_string()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |since| since.as_secs())
}

/// The `error` code of an error answer's JSON body: one of the function's own fixed codes.
fn error_code(response: &Response) -> Option<String> {
    let body: serde_json::Value = serde_json::from_str(&response.body).ok()?;
    body["error"].as_str().map(loggable)
}

fn loggable(text: &str) -> String {
    let mut out: String = text.chars().take(LOGGED_CHARS).flat_map(char::escape_default).collect();
    if text.chars().nth(LOGGED_CHARS).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::provider::CachePolicy;
    use crate::provider::stand_in::StandIn;

    const ORIGIN: &str = "https://app.example";

    fn valid_config() -> Result<Config, ConfigError> {
        Config::from_lookup(|name| match name {
            "CONSUMER_KEY" => Some("key".into()),
            "CONSUMER_SECRET" => Some("secret".into()),
            "ALLOWED_ORIGINS" => Some(ORIGIN.into()),
            _ => None,
        })
    }

    /// A service whose provider set-up fails `failures` times, then builds a stand-in; and the
    /// count of set-ups tried.
    fn failing_set_up(
        config: Result<Config, ConfigError>,
        failures: usize,
    ) -> (TokenService, Arc<AtomicUsize>) {
        let attempts = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&attempts);
        let setup: ProviderSetup = Box::new(move |_config| {
            if counted.fetch_add(1, Ordering::SeqCst) < failures {
                return Err(SetupError::HttpClient);
            }
            Ok(Box::new(StandIn::new(CachePolicy::Shared, Some(3600))))
        });
        (TokenService::with_setup(Configuration::Environment(config), Arc::new(SystemClock), setup), attempts)
    }

    async fn get_token(service: &TokenService) -> Response {
        service.handle(&Request::new("GET", TOKEN_PATH).with_origin(ORIGIN)).await
    }

    #[tokio::test]
    async fn a_failed_provider_set_up_is_tried_again_by_the_next_request() {
        let (service, attempts) = failing_set_up(valid_config(), 1);
        assert_eq!(service.handle(&Request::new("OPTIONS", TOKEN_PATH)).await.status, 204);
        assert_eq!(attempts.load(Ordering::SeqCst), 0, "a preflight needs no provider");

        let failed = get_token(&service).await;
        assert_eq!(failed.status, 503);
        assert!(failed.body.contains(r#""error":"provider_unavailable""#), "{}", failed.body);
        assert_eq!(failed.header("access-control-allow-origin"), Some(ORIGIN), "the browser may read why");

        for _ in 0..2 {
            let served = get_token(&service).await;
            assert_eq!(served.status, 200);
            assert!(
                served.body.contains(r#""access_token":"-@-#1""#),
                "one token, then cached: {}",
                served.body
            );
        }
        assert_eq!(attempts.load(Ordering::SeqCst), 2, "set up once more, then kept");
    }

    #[tokio::test]
    async fn an_unreadable_secret_answers_503_and_error_answers_carry_cors_headers_without_it() {
        let closed_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let arn = "arn:aws:secretsmanager:us-west-1:123456789012:secret:token-AbCdEf";
        let environment: std::collections::HashMap<&str, String> = [
            ("TOKEN_SECRET_ARN", arn.to_string()),
            ("ALLOWED_ORIGINS", ORIGIN.to_string()),
            ("AWS_REGION", "us-west-1".to_string()),
            ("AWS_ACCESS_KEY_ID", "testing".to_string()),
            ("AWS_SECRET_ACCESS_KEY", "testing".to_string()),
            ("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{closed_port}")),
        ]
        .into();
        let configuration = Configuration::from_lookup(Box::new(move |name| environment.get(name).cloned()));
        let service =
            TokenService::with_setup(configuration, Arc::new(SystemClock), Box::new(provider::from_config));

        let not_found = service.handle(&Request::new("GET", "/elsewhere").with_origin(ORIGIN)).await;
        assert_eq!(not_found.status, 404);
        assert_eq!(not_found.header("access-control-allow-origin"), Some(ORIGIN));
        let answer = get_token(&service).await;
        assert_eq!(answer.status, 503);
        assert!(answer.body.contains(r#""error":"secret_unavailable""#), "{}", answer.body);
        let message = format!("could not read the secret {arn}: Secrets Manager could not be reached");
        assert!(answer.body.contains(&message), "{}", answer.body);
        assert_eq!(answer.header("access-control-allow-origin"), Some(ORIGIN), "the browser may read why");
    }

    #[tokio::test]
    async fn an_environment_error_answers_every_request_and_no_set_up_is_tried() {
        let (service, attempts) = failing_set_up(Err(ConfigError::Missing("CONSUMER_SECRET")), 0);
        for _ in 0..2 {
            let answer = get_token(&service).await;
            assert_eq!(answer.status, 500);
            assert!(answer.body.contains("configuration_error") && answer.body.contains("CONSUMER_SECRET"));
        }
        assert_eq!(attempts.load(Ordering::SeqCst), 0);
    }
}
