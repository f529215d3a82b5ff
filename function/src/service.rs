//! The request handler: routing, configuration, CORS, and the cached upstream call.

use std::sync::Arc;

use crate::cache::{CacheOutcome, Clock, SystemClock, TokenCache};
use crate::config::origins::OriginCheck;
use crate::config::{Config, ConfigError, TOKEN_PATH, allowed_methods};
use crate::provider::{self, TokenProvider, UpstreamError};
use crate::request::{Request, Response};
use crate::response::{self, ApiError};

/// The most of a request's method or path a log line repeats.
const LOGGED_CHARS: usize = 200;

/// Everything a warm function keeps between invocations.
pub struct TokenService {
    ready: Result<Ready, ConfigError>,
    cache: TokenCache,
}

struct Ready {
    config: Config,
    provider: Box<dyn TokenProvider>,
}

impl TokenService {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Self {
        Self::new(Config::from_env(), Arc::new(SystemClock))
    }

    /// A configuration error is kept, not raised: every request then answers 500 naming the
    /// variable, which tells the operator far more than a function that fails to start.
    pub fn new(config: Result<Config, ConfigError>, clock: Arc<dyn Clock>) -> Self {
        let ready = config.map(|config| Ready { provider: provider::from_config(&config), config });
        Self { ready, cache: TokenCache::new(clock) }
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
        let cors = match &self.ready {
            Ok(ready) => ready.config.allowed_origins.check(request.origin.as_deref()),
            Err(_) => OriginCheck::NoOrigin,
        };
        if path != TOKEN_PATH {
            let error =
                ApiError::new(404, "not_found", format!("no such path; tokens are served at {TOKEN_PATH}"));
            return (response::error(&error, &cors), None);
        }
        let ready = match &self.ready {
            Ok(ready) => ready,
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
            "GET" => match self.cache.get_or_fetch(ready.provider.fetch_token()).await {
                Ok((token, outcome)) => (response::token(&token, &cors), Some(outcome)),
                Err(upstream) => {
                    tracing::warn!(error = %upstream, "token API call failed");
                    (response::error(&upstream_error(&upstream), &cors), None)
                }
            },
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
