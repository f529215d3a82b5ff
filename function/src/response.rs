//! Building the function's HTTP answers: JSON bodies, no caching, CORS headers when allowed.

use serde_json::json;

use crate::cache::IssuedToken;
use crate::config::origins::OriginCheck;
use crate::request::Response;

/// `X-Api-Key`: API Gateway reads a usage plan's API key from it.
const ALLOWED_HEADERS: &str = "Authorization, Content-Type, X-Api-Key";
/// The largest integer JavaScript's numbers hold exactly: 2^53 - 1.
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;
/// Browsers may reuse a preflight answer this many seconds.
const PREFLIGHT_MAX_AGE: &str = "600";

/// An error answer: `{"error": code, "message": message}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    /// `Retry-After`, in seconds: when the failure is remembered, asking sooner gets it again.
    pub retry_after: Option<String>,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), retry_after: None }
    }
}

pub fn token(token: &IssuedToken, cors: &OriginCheck) -> Response {
    let mut body = json!({ "access_token": token.access_token });
    if let Some(refresh_token) = &token.refresh_token {
        body["refresh_token"] = json!(refresh_token);
    }
    if let Some(expires_in) = token.expires_in {
        // JavaScript holds integers exactly up to 2^53 - 1: a larger lifetime would reach the
        // app rounded, and mean the same (practically forever) capped.
        body["expires_in"] = json!(expires_in.min(MAX_SAFE_INTEGER));
    }
    json_response(200, &body, cors)
}

/// An error answer, with the CORS headers when `cors` allows the origin: a browser can then
/// read why it got no token instead of seeing a bare CORS failure.
pub fn error(error: &ApiError, cors: &OriginCheck) -> Response {
    let mut response =
        json_response(error.status, &json!({ "error": error.code, "message": error.message }), cors);
    if let Some(seconds) = &error.retry_after {
        response.set_header("retry-after", seconds.clone());
    }
    response
}

/// The answer to an event that is no HTTP request: nobody to send CORS headers to.
pub fn bad_request(reason: &str) -> Response {
    error(
        &ApiError::new(
            400,
            "bad_request",
            format!("{reason}; the function serves HTTP requests for a token"),
        ),
        &OriginCheck::NoOrigin,
    )
}

/// `methods`: the `Allow` header's value.
pub fn preflight(cors: &OriginCheck, methods: &str) -> Response {
    let mut response = with_common_headers(Response::new(204, ""), cors);
    response.set_header("allow", methods);
    if matches!(cors, OriginCheck::Allowed { .. }) {
        response.set_header("access-control-allow-methods", methods);
        response.set_header("access-control-allow-headers", ALLOWED_HEADERS);
        response.set_header("access-control-max-age", PREFLIGHT_MAX_AGE);
    }
    response
}

fn json_response(status: u16, body: &serde_json::Value, cors: &OriginCheck) -> Response {
    let mut response = with_common_headers(Response::new(status, body.to_string()), cors);
    response.set_header("content-type", "application/json");
    response
}

fn with_common_headers(mut response: Response, cors: &OriginCheck) -> Response {
    // A token must not sit in a browser or proxy cache.
    response.set_header("cache-control", "no-store");
    if let OriginCheck::Allowed { allow_origin, vary } = cors {
        response.set_header("access-control-allow-origin", allow_origin.clone());
        if *vary {
            response.set_header("vary", "Origin");
        }
    }
    response
}
