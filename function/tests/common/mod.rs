//! Events and upstream stand-ins shared by the function's tests.
#![allow(dead_code)] // each test binary uses its own part of this module

use serde_json::{Value, json};
use wiremock::matchers::{body_string, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub const KEY: &str = "app-key-1234";
pub const SECRET: &str = "s3cr3t-never-shown-9f8e7d";
pub const ORIGIN: &str = "https://app.example.com";
/// The paths of Dolby.io's two token endpoints, served by the stand-in upstream.
pub const VOXEET_PATH: &str = "/v1/oauth2/token";
pub const DOLBY_API_PATH: &str = "/v1/auth/token";

/// The documented API Gateway REST proxy event (`tests/fixtures/apigw_rest_proxy.json`) with
/// its method, path and `Origin` changed; `origin: None` removes the header.
pub fn rest_event(http_method: &str, request_path: &str, origin: Option<&str>) -> Value {
    let mut event: Value = serde_json::from_str(include_str!("../fixtures/apigw_rest_proxy.json")).unwrap();
    event["httpMethod"] = json!(http_method);
    event["requestContext"]["httpMethod"] = json!(http_method);
    event["path"] = json!(request_path);
    for headers in ["headers", "multiValueHeaders"] {
        let map = event[headers].as_object_mut().unwrap();
        map.remove("Origin");
        if let Some(origin) = origin {
            let value = if headers == "headers" { json!(origin) } else { json!([origin]) };
            map.insert("Origin".into(), value);
        }
    }
    event
}

/// The documented HTTP API (payload 2.0) event from `tests/fixtures/apigw_http_v2.json`.
pub fn http_api_event() -> Value {
    serde_json::from_str(include_str!("../fixtures/apigw_http_v2.json")).unwrap()
}

/// `Authorization` as Dolby.io documents it: Basic, base64 of `key:secret`.
pub fn basic_auth() -> String {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{KEY}:{SECRET}"));
    format!("Basic {encoded}")
}

/// A token request exactly as Dolby.io documents it: anything else gets wiremock's 404.
pub fn token_request(endpoint_path: &str) -> wiremock::MockBuilder {
    Mock::given(method("POST"))
        .and(path(endpoint_path))
        .and(header("authorization", basic_auth().as_str()))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(body_string("grant_type=client_credentials"))
}

/// Communications API's answer (`session.voxeet.com/v1/oauth2/token`).
pub fn voxeet_token(access_token: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "token_type": "Bearer",
        "access_token": access_token,
        "refresh_token": "refresh-abc",
        "expires_in": 3600
    }))
}

/// The stand-in upstream, answering Dolby's Communications endpoint with `response`.
pub async fn upstream_answering(response: ResponseTemplate) -> MockServer {
    let upstream = MockServer::start().await;
    token_request(VOXEET_PATH).respond_with(response).mount(&upstream).await;
    upstream
}

/// The function's environment pointing at `upstream`'s Communications endpoint.
pub fn function_env(upstream: &MockServer) -> Vec<(String, String)> {
    [
        ("TOKEN_PROVIDER", "dolby".to_string()),
        ("CONSUMER_KEY", KEY.to_string()),
        ("CONSUMER_SECRET", SECRET.to_string()),
        ("TOKEN_URL", format!("{}{VOXEET_PATH}", upstream.uri())),
        ("ALLOWED_ORIGINS", format!("{ORIGIN}, http://localhost:8080")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}
