//! The request handler: routing, configuration, CORS, and the cached upstream call.

use std::sync::Arc;

use tokio::sync::OnceCell;

use crate::cache::{CacheOutcome, Clock, SystemClock, TokenCache};
use crate::config::origins::OriginCheck;
use crate::config::{Config, ConfigError, TOKEN_PATH, allowed_methods};
use crate::provider::{self, SetupError, TokenProvider, TokenRequest, UpstreamError};
use crate::request::{Request, Response};
use crate::response::{self, ApiError};

/// The most of a request's method or path a log line repeats.
const LOGGED_CHARS: usize = 200;

/// How the provider is built from a valid configuration: [`provider::from_config`], or a
/// test's stand-in.
type ProviderSetup = Box<dyn Fn(&Config) -> Result<Box<dyn TokenProvider>, SetupError> + Send + Sync>;

/// Everything a warm function keeps between invocations.
pub struct TokenService {
    /// Read once: a warm instance's environment never changes, so an error in it stands.
    config: Result<Config, ConfigError>,
    /// Set up on the first token request. A failed set-up leaves it empty and the next request
    /// tries again: what set-up fetches may be back by then.
    provider: OnceCell<Box<dyn TokenProvider>>,
    setup: ProviderSetup,
    cache: TokenCache,
}

impl TokenService {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Self {
        Self::new(Config::from_env(), Arc::new(SystemClock))
    }

    /// A configuration error is kept, not raised: every request then answers 500 naming the
    /// variable, which tells the operator far more than a function that fails to start.
    pub fn new(config: Result<Config, ConfigError>, clock: Arc<dyn Clock>) -> Self {
        Self::with_setup(config, clock, Box::new(provider::from_config))
    }

    /// As [`Self::new`], with the provider built by `setup`.
    fn with_setup(config: Result<Config, ConfigError>, clock: Arc<dyn Clock>, setup: ProviderSetup) -> Self {
        Self { config, provider: OnceCell::new(), setup, cache: TokenCache::new(clock) }
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
        if status >= 500 {
            tracing::warn!(method, path, status, cache, "request failed");
        } else {
            tracing::info!(method, path, status, cache, "request served");
        }
        response
    }

    async fn respond(&self, request: &Request, path: &str) -> (Response, Option<CacheOutcome>) {
        // Without a configuration there is no allow-list to check an origin against, so no
        // answer carries CORS headers; a denied origin gets none either.
        let cors = match &self.config {
            Ok(config) => config.allowed_origins.check(request.origin.as_deref()),
            Err(_) => OriginCheck::NoOrigin,
        };
        if path != TOKEN_PATH {
            let error =
                ApiError::new(404, "not_found", format!("no such path; tokens are served at {TOKEN_PATH}"));
            return (response::error(&error, &cors), None);
        }
        let config = match &self.config {
            Ok(config) => config,
            Err(config_error) => {
                tracing::error!(error = %config_error, "configuration incomplete");
                let error = ApiError::new(500, "configuration_error", config_error.to_string());
                return (response::error(&error, &OriginCheck::NoOrigin), None);
            }
        };
        if cors == OriginCheck::Denied {
            let error = ApiError::new(
                403,
                "origin_not_allowed",
                "this origin may not request tokens; add it to ALLOWED_ORIGINS",
            );
            return (response::error(&error, &cors), None);
        }
        match request.method.as_str() {
            "OPTIONS" => (response::preflight(&cors), None),
            "GET" => self.serve_token(config, &cors).await,
            _ => {
                let error = ApiError::new(
                    405,
                    "method_not_allowed",
                    format!("{TOKEN_PATH} answers {}", allowed_methods()),
                );
                (response::error(&error, &cors), None)
            }
        }
    }

    /// A token for the caller through the cache, the provider set up first if it is not yet.
    async fn serve_token(&self, config: &Config, cors: &OriginCheck) -> (Response, Option<CacheOutcome>) {
        let provider = match self.provider.get_or_try_init(|| async { (self.setup)(config) }).await {
            Ok(provider) => provider,
            Err(setup_error) => {
                tracing::warn!(error = %setup_error, "token provider set-up failed");
                let error = ApiError::new(503, "provider_unavailable", setup_error.to_string());
                return (response::error(&error, cors), None);
            }
        };
        // Requests name no identity or room yet: every one asks as nobody in particular.
        match self.cache.get_or_fetch(provider.as_ref(), &TokenRequest::default()).await {
            Ok((token, outcome)) => (response::token(&token, cors), Some(outcome)),
            Err(upstream) => {
                tracing::warn!(error = %upstream, "token API call failed");
                (response::error(&upstream_error(&upstream), cors), None)
            }
        }
    }
}

fn upstream_error(error: &UpstreamError) -> ApiError {
    let (status, code) = match error {
        UpstreamError::Rejected { .. } => (502, "upstream_rejected_credentials"),
        UpstreamError::Failed { .. } => (502, "upstream_error"),
        UpstreamError::Unreachable => (502, "upstream_unreachable"),
        UpstreamError::InvalidResponse(_) => (502, "upstream_invalid_response"),
        UpstreamError::Timeout => (504, "upstream_timeout"),
    };
    ApiError::new(status, code, error.to_string())
}

/// A request's own text as a log line may hold it: at most [`LOGGED_CHARS`] characters,
/// control characters escaped (no forged lines in plain-text logs).
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
        (TokenService::with_setup(config, Arc::new(SystemClock), setup), attempts)
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
