//! The request handler: routing, configuration, CORS, and the cached upstream call.

use std::sync::Arc;

use lambda_http::http::{Method, StatusCode, header};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};

use crate::cache::{CacheOutcome, Clock, SystemClock, TokenCache};
use crate::config::{Config, ConfigError};
use crate::cors::OriginCheck;
use crate::provider::{self, TokenProvider, UpstreamError};
use crate::response::{self, ApiError};

/// The one path the function serves, after any stage prefix.
pub const TOKEN_PATH: &str = "/token";

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

    pub async fn handle(&self, request: Request) -> Response<Body> {
        let method = request.method().clone();
        let path = route_path(&request);
        let (response, cache) = self.respond(&request, &method, &path).await;
        let status = response.status().as_u16();
        let cache = cache.map(|outcome| match outcome {
            CacheOutcome::Hit => "hit",
            CacheOutcome::Miss => "miss",
        });
        if response.status().is_server_error() {
            tracing::warn!(%method, path, status, cache, "request failed");
        } else {
            tracing::info!(%method, path, status, cache, "request served");
        }
        response
    }

    async fn respond(
        &self,
        request: &Request,
        method: &Method,
        path: &str,
    ) -> (Response<Body>, Option<CacheOutcome>) {
        let no_cors = OriginCheck::NoOrigin;
        if path != TOKEN_PATH {
            let error = ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no such path; tokens are served at {TOKEN_PATH}"),
            );
            return (response::error(&error, &no_cors), None);
        }
        let ready = match &self.ready {
            Ok(ready) => ready,
            Err(config_error) => {
                tracing::error!(error = %config_error, "configuration incomplete");
                let error = ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "configuration_error",
                    config_error.to_string(),
                );
                return (response::error(&error, &no_cors), None);
            }
        };
        let origin = request.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok());
        let cors = ready.config.allowed_origins.check(origin);
        if cors == OriginCheck::Denied {
            let error = ApiError::new(
                StatusCode::FORBIDDEN,
                "origin_not_allowed",
                "this origin may not request tokens; add it to ALLOWED_ORIGINS",
            );
            return (response::error(&error, &no_cors), None);
        }
        match *method {
            Method::OPTIONS => (response::preflight(&cors), None),
            Method::GET => match self.cache.get_or_fetch(ready.provider.fetch_token()).await {
                Ok((token, outcome)) => (response::token(&token, &cors), Some(outcome)),
                Err(upstream) => {
                    tracing::warn!(error = %upstream, "token API call failed");
                    (response::error(&upstream_error(&upstream), &cors), None)
                }
            },
            _ => {
                let error = ApiError::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "method_not_allowed",
                    format!("{TOKEN_PATH} answers {}", response::ALLOWED_METHODS),
                );
                (response::error(&error, &cors), None)
            }
        }
    }
}

fn upstream_error(error: &UpstreamError) -> ApiError {
    let (status, code) = match error {
        UpstreamError::Rejected { .. } => (StatusCode::BAD_GATEWAY, "upstream_rejected_credentials"),
        UpstreamError::Failed { .. } => (StatusCode::BAD_GATEWAY, "upstream_error"),
        UpstreamError::Unreachable => (StatusCode::BAD_GATEWAY, "upstream_unreachable"),
        UpstreamError::InvalidResponse(_) => (StatusCode::BAD_GATEWAY, "upstream_invalid_response"),
        UpstreamError::Timeout => (StatusCode::GATEWAY_TIMEOUT, "upstream_timeout"),
    };
    ApiError::new(status, code, error.to_string())
}

/// The request path with any API Gateway stage prefix removed and no trailing slash.
///
/// Behind a REST API the path may arrive as `/prod/token` (lambda_http adds the stage unless
/// told otherwise); HTTP APIs' `$default` stage and function URLs carry none.
fn route_path(request: &Request) -> String {
    let path = request.uri().path();
    let stage = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(context)) => context.stage.as_deref(),
        Some(RequestContext::ApiGatewayV2(context)) => context.stage.as_deref(),
        _ => None,
    };
    let path = stage
        .filter(|stage| *stage != "$default")
        .and_then(|stage| path.strip_prefix(&format!("/{stage}")))
        .filter(|rest| rest.starts_with('/'))
        .unwrap_or(path);
    match path.trim_end_matches('/') {
        "" => "/".to_string(),
        trimmed => trimmed.to_string(),
    }
}
