//! Building the function's HTTP answers: JSON bodies, no caching, CORS headers when allowed.

use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Response};
use serde_json::json;

use crate::cache::IssuedToken;
use crate::cors::OriginCheck;

pub const ALLOWED_METHODS: &str = "GET, OPTIONS";
const ALLOWED_HEADERS: &str = "Authorization, Content-Type";
/// Browsers may reuse a preflight answer this many seconds.
const PREFLIGHT_MAX_AGE: &str = "600";

/// An error answer: `{"error": code, "message": message}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into() }
    }
}

pub fn token(token: &IssuedToken, cors: &OriginCheck) -> Response<Body> {
    let mut body = json!({ "access_token": token.access_token });
    if let Some(refresh_token) = &token.refresh_token {
        body["refresh_token"] = json!(refresh_token);
    }
    if let Some(expires_in) = token.expires_in {
        body["expires_in"] = json!(expires_in);
    }
    json_response(StatusCode::OK, &body, cors)
}

pub fn error(error: &ApiError, cors: &OriginCheck) -> Response<Body> {
    let mut response =
        json_response(error.status, &json!({ "error": error.code, "message": error.message }), cors);
    if error.status == StatusCode::METHOD_NOT_ALLOWED {
        response.headers_mut().insert(header::ALLOW, HeaderValue::from_static(ALLOWED_METHODS));
    }
    response
}

pub fn preflight(cors: &OriginCheck) -> Response<Body> {
    let mut response = with_common_headers(StatusCode::NO_CONTENT, Body::Empty, cors);
    let headers = response.headers_mut();
    headers.insert(header::ALLOW, HeaderValue::from_static(ALLOWED_METHODS));
    if matches!(cors, OriginCheck::Allowed { .. }) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(ALLOWED_METHODS));
        headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static(ALLOWED_HEADERS));
        headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static(PREFLIGHT_MAX_AGE));
    }
    response
}

fn json_response(status: StatusCode, body: &serde_json::Value, cors: &OriginCheck) -> Response<Body> {
    let mut response = with_common_headers(status, Body::Text(body.to_string()), cors);
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn with_common_headers(status: StatusCode, body: Body, cors: &OriginCheck) -> Response<Body> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    // A token must not sit in a browser or proxy cache.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let OriginCheck::Allowed { allow_origin, vary } = cors {
        // An origin that made it through the allow-list is a valid header value; one that
        // could not be one was never on the list.
        if let Ok(value) = HeaderValue::from_str(allow_origin) {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        }
        if *vary {
            headers.insert(header::VARY, HeaderValue::from_static("Origin"));
        }
    }
    response
}
