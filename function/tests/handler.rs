//! The handler against a stand-in Dolby.io upstream (wiremock), fed the documented
//! API Gateway event shapes.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use lambda_http::{Body, Response};
use serde_json::{Value, json};
use token_function::TokenService;
use token_function::cache::Clock;
use token_function::config::Config;
use wiremock::{MockServer, ResponseTemplate};

/// A clock the test moves by hand.
struct ManualClock {
    start: Instant,
    offset_secs: AtomicU64,
}

impl ManualClock {
    fn new() -> Arc<Self> {
        Arc::new(Self { start: Instant::now(), offset_secs: AtomicU64::new(0) })
    }
    fn advance(&self, secs: u64) {
        self.offset_secs.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.start + Duration::from_secs(self.offset_secs.load(Ordering::SeqCst))
    }
}

fn service_with(env: Vec<(String, String)>, clock: Arc<dyn Clock>) -> TokenService {
    let env: HashMap<String, String> = env.into_iter().collect();
    TokenService::new(Config::from_lookup(|name| env.get(name).cloned()), clock)
}

fn service(upstream: &MockServer) -> TokenService {
    service_with(function_env(upstream), ManualClock::new())
}

async fn call(service: &TokenService, event: Value) -> Response<Body> {
    let request = lambda_http::request::from_str(&event.to_string()).expect("a valid event");
    service.handle(request).await
}

async fn get_token(service: &TokenService) -> Response<Body> {
    call(service, rest_event("GET", "/token", Some(ORIGIN))).await
}

fn header<'a>(response: &'a Response<Body>, name: &str) -> Option<&'a str> {
    response.headers().get(name).map(|v| v.to_str().unwrap())
}

fn json_body(response: &Response<Body>) -> Value {
    serde_json::from_slice(response.body().as_ref()).expect("a JSON body")
}

fn assert_error(response: &Response<Body>, status: u16, code: &str) {
    assert_eq!(response.status().as_u16(), status, "{:?}", response.body());
    assert_eq!(header(response, "content-type"), Some("application/json"));
    let body = json_body(response);
    assert_eq!(body["error"], code, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
}

#[tokio::test]
async fn serves_a_token_from_the_communications_endpoint() {
    let upstream = MockServer::start().await;
    token_request(VOXEET_PATH).respond_with(voxeet_token("at-123")).expect(1).mount(&upstream).await;

    let response = get_token(&service(&upstream)).await;

    assert_eq!(response.status(), 200);
    assert_eq!(
        json_body(&response),
        json!({ "access_token": "at-123", "refresh_token": "refresh-abc", "expires_in": 3600 }),
        "only the token fields pass through (no token_type)"
    );
    assert_eq!(header(&response, "cache-control"), Some("no-store"));
    assert_eq!(header(&response, "content-type"), Some("application/json"));
    assert_eq!(header(&response, "access-control-allow-origin"), Some(ORIGIN));
    assert_eq!(header(&response, "vary"), Some("Origin"));
}

#[tokio::test]
async fn serves_a_token_from_the_newer_api_dolby_io_endpoint() {
    let upstream = MockServer::start().await;
    token_request(DOLBY_API_PATH)
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                json!({ "access_token": "jwt-abc", "token_type": "Bearer", "expires_in": 1800 }),
            ),
        )
        .expect(1)
        .mount(&upstream)
        .await;
    let mut env = function_env(&upstream);
    env.retain(|(k, _)| k != "TOKEN_URL" && k != "TOKEN_PROVIDER"); // dolby is the default
    env.push(("TOKEN_URL".into(), format!("{}{DOLBY_API_PATH}", upstream.uri())));

    let response = get_token(&service_with(env, ManualClock::new())).await;

    assert_eq!(response.status(), 200);
    assert_eq!(json_body(&response), json!({ "access_token": "jwt-abc", "expires_in": 1800 }));
}

#[tokio::test]
async fn answers_the_same_with_or_without_the_stage_in_the_path() {
    let upstream = upstream_answering(voxeet_token("at")).await;
    let service = service(&upstream);
    for path in ["/token", "/prod/token", "/token/"] {
        let response = call(&service, rest_event("GET", path, Some(ORIGIN))).await;
        assert_eq!(response.status(), 200, "{path}");
    }
    assert_error(&call(&service, rest_event("GET", "/prod/other", Some(ORIGIN))).await, 404, "not_found");
    assert_error(&call(&service, rest_event("GET", "/tokens", Some(ORIGIN))).await, 404, "not_found");
}

#[tokio::test]
async fn serves_http_api_events_too() {
    let upstream = upstream_answering(voxeet_token("at-v2")).await;
    let response = call(&service(&upstream), http_api_event()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(json_body(&response)["access_token"], "at-v2");
    assert_eq!(header(&response, "access-control-allow-origin"), Some(ORIGIN));
}

#[tokio::test]
async fn refuses_an_origin_not_on_the_list_without_calling_upstream() {
    let upstream = MockServer::start().await;
    token_request(VOXEET_PATH).respond_with(voxeet_token("at")).expect(0).mount(&upstream).await;
    let service = service(&upstream);

    let response = call(&service, rest_event("GET", "/token", Some("https://evil.example"))).await;

    assert_error(&response, 403, "origin_not_allowed");
    assert!(!String::from_utf8_lossy(response.body().as_ref()).contains("access_token"));
    assert_eq!(header(&response, "access-control-allow-origin"), None);
    let preflight = call(&service, rest_event("OPTIONS", "/token", Some("https://evil.example"))).await;
    assert_eq!(preflight.status(), 403);
}

#[tokio::test]
async fn star_allows_any_origin_and_no_origin_gets_no_cors_headers() {
    let upstream = upstream_answering(voxeet_token("at")).await;
    let mut env = function_env(&upstream);
    env.retain(|(k, _)| k != "ALLOWED_ORIGINS");
    env.push(("ALLOWED_ORIGINS".into(), "*".into()));
    let star = service_with(env, ManualClock::new());

    let response = call(&star, rest_event("GET", "/token", Some("https://any.example"))).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "access-control-allow-origin"), Some("*"));
    assert_eq!(header(&response, "vary"), None);

    let listed = service(&upstream);
    let response = call(&listed, rest_event("GET", "/token", None)).await;
    assert_eq!(response.status(), 200, "a client that sends no Origin (curl, mobile) is served");
    assert_eq!(header(&response, "access-control-allow-origin"), None);
}

#[tokio::test]
async fn answers_a_preflight_with_204_and_the_allowed_methods() {
    let upstream = MockServer::start().await;
    token_request(VOXEET_PATH).respond_with(voxeet_token("at")).expect(0).mount(&upstream).await;

    let response =
        call(&service(&upstream), rest_event("OPTIONS", "/prod/token", Some("http://localhost:8080"))).await;

    assert_eq!(response.status(), 204);
    assert_eq!(header(&response, "access-control-allow-origin"), Some("http://localhost:8080"));
    assert_eq!(header(&response, "access-control-allow-methods"), Some("GET, OPTIONS"));
    assert!(header(&response, "access-control-allow-headers").is_some_and(|h| h.contains("Authorization")));
    assert_eq!(header(&response, "vary"), Some("Origin"));
    assert!(response.body().is_empty());
}

#[tokio::test]
async fn wrong_method_is_405_with_allow() {
    let upstream = upstream_answering(voxeet_token("at")).await;
    let response = call(&service(&upstream), rest_event("POST", "/token", Some(ORIGIN))).await;
    assert_error(&response, 405, "method_not_allowed");
    assert_eq!(header(&response, "allow"), Some("GET, OPTIONS"));
    assert_eq!(
        header(&response, "access-control-allow-origin"),
        Some(ORIGIN),
        "the browser may read the error"
    );
}

#[tokio::test]
async fn maps_upstream_failures_to_gateway_errors() {
    let cases = [
        (
            ResponseTemplate::new(401).set_body_string(format!("invalid client {SECRET}")),
            502,
            "upstream_rejected_credentials",
        ),
        (ResponseTemplate::new(403).set_body_string("forbidden"), 502, "upstream_rejected_credentials"),
        (ResponseTemplate::new(500).set_body_string("boom"), 502, "upstream_error"),
        (
            ResponseTemplate::new(200).set_body_string("<html>UPSTREAM-RAW-BODY</html>"),
            502,
            "upstream_invalid_response",
        ),
        (
            ResponseTemplate::new(200).set_body_json(json!({ "token_type": "Bearer" })),
            502,
            "upstream_invalid_response",
        ),
    ];
    for (answer, status, code) in cases {
        let upstream = upstream_answering(answer).await;
        let response = get_token(&service(&upstream)).await;
        assert_error(&response, status, code);
        let text = String::from_utf8_lossy(response.body().as_ref()).into_owned();
        assert!(
            !text.contains(SECRET) && !text.contains("UPSTREAM-RAW-BODY") && !text.contains("boom"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn a_slow_upstream_is_a_504_within_the_bounded_timeout() {
    let upstream = upstream_answering(voxeet_token("late").set_delay(Duration::from_secs(5))).await;
    let mut env = function_env(&upstream);
    env.push(("UPSTREAM_TIMEOUT_MS".into(), "200".into()));
    let response = get_token(&service_with(env, ManualClock::new())).await;
    assert_error(&response, 504, "upstream_timeout");
}

#[tokio::test]
async fn an_unreachable_upstream_is_a_502() {
    let upstream = MockServer::start().await;
    let mut env = function_env(&upstream);
    drop(upstream); // nothing listens there any more
    env.retain(|(k, _)| k != "TOKEN_URL");
    env.push(("TOKEN_URL".into(), "http://127.0.0.1:9/v1/oauth2/token".into()));
    let response = get_token(&service_with(env, ManualClock::new())).await;
    assert_error(&response, 502, "upstream_unreachable");
}

#[tokio::test]
async fn missing_configuration_is_a_500_naming_the_variable_not_its_value() {
    let upstream = upstream_answering(voxeet_token("at")).await;
    for missing in ["CONSUMER_KEY", "CONSUMER_SECRET", "ALLOWED_ORIGINS"] {
        let mut env = function_env(&upstream);
        env.retain(|(k, _)| k != missing);
        let response = get_token(&service_with(env, ManualClock::new())).await;
        assert_error(&response, 500, "configuration_error");
        let message = json_body(&response)["message"].as_str().unwrap().to_string();
        assert!(message.contains(missing), "{message}");
        assert!(!message.contains(SECRET) && !message.contains(KEY), "{message}");
    }
}

#[tokio::test]
async fn reuses_the_token_until_shortly_before_it_expires() {
    let upstream = MockServer::start().await;
    token_request(VOXEET_PATH).respond_with(voxeet_token("cached")).expect(2).mount(&upstream).await;
    let clock = ManualClock::new();
    let service = service_with(function_env(&upstream), clock.clone());

    let first = json_body(&get_token(&service).await);
    clock.advance(1000);
    let second = json_body(&get_token(&service).await);
    assert_eq!(
        upstream.received_requests().await.unwrap().len(),
        1,
        "the second request is served from the cache"
    );
    assert_eq!(second["access_token"], first["access_token"]);
    assert_eq!(second["expires_in"], 2600, "expires_in counts from now");

    clock.advance(3600 - 1000 - 60); // inside the refresh margin
    let third = get_token(&service).await;
    assert_eq!(third.status(), 200);
    assert_eq!(json_body(&third)["expires_in"], 3600, "a fresh token");
    // wiremock checks `.expect(2)` when the server drops
}

#[tokio::test]
async fn a_token_without_a_stated_lifetime_is_not_cached() {
    let upstream = MockServer::start().await;
    token_request(VOXEET_PATH)
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "access_token": "no-expiry" })))
        .expect(2)
        .mount(&upstream)
        .await;
    let service = service(&upstream);
    for _ in 0..2 {
        let response = get_token(&service).await;
        assert_eq!(json_body(&response), json!({ "access_token": "no-expiry" }));
    }
}

#[tokio::test]
async fn failures_are_not_cached() {
    let upstream = MockServer::start().await;
    token_request(VOXEET_PATH)
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .mount(&upstream)
        .await;
    token_request(VOXEET_PATH).respond_with(voxeet_token("recovered")).mount(&upstream).await;
    let service = service(&upstream);
    assert_error(&get_token(&service).await, 502, "upstream_error");
    assert_eq!(json_body(&get_token(&service).await)["access_token"], "recovered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_on_a_cold_cache_make_one_upstream_call() {
    let upstream = MockServer::start().await;
    token_request(VOXEET_PATH)
        .respond_with(voxeet_token("shared").set_delay(Duration::from_millis(300)))
        .expect(1)
        .mount(&upstream)
        .await;
    let service = Arc::new(service(&upstream));

    let requests = (0..16).map(|_| {
        let service = Arc::clone(&service);
        tokio::spawn(async move { json_body(&get_token(&service).await) })
    });
    for body in join_all(requests).await {
        assert_eq!(body["access_token"], "shared");
    }
    assert_eq!(upstream.received_requests().await.unwrap().len(), 1);
}

async fn join_all<T>(handles: impl Iterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}

/// Captured log output, shared with the subscriber that writes it.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_response_or_log_line_carries_the_secret() {
    let logs = LogBuffer::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let answers = [
        voxeet_token("ok"),
        ResponseTemplate::new(401).set_body_string(format!("bad client {SECRET} UPSTREAM-RAW-BODY")),
        ResponseTemplate::new(200).set_body_string(format!("not json {SECRET} UPSTREAM-RAW-BODY")),
        ResponseTemplate::new(502).set_body_string("UPSTREAM-RAW-BODY"),
    ];
    let mut seen = String::new();
    for answer in answers {
        let upstream = upstream_answering(answer).await;
        let service = service(&upstream);
        for event in [
            rest_event("GET", "/token", Some(ORIGIN)),
            rest_event("GET", "/token", Some("https://evil.example")),
            rest_event("OPTIONS", "/token", Some(ORIGIN)),
            rest_event("DELETE", "/token", Some(ORIGIN)),
        ] {
            let response = call(&service, event).await;
            seen.push_str(&format!(
                "{:?}\n{}\n",
                response.headers(),
                String::from_utf8_lossy(response.body().as_ref())
            ));
        }
    }

    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(logs.lines().count() >= 16, "every request logs a line:\n{logs}");
    assert!(logs.contains("upstream_rejected") || logs.contains("rejected the app's credentials"), "{logs}");
    for forbidden in [SECRET, basic_auth().as_str(), "UPSTREAM-RAW-BODY"] {
        assert!(!seen.contains(forbidden), "a response carries {forbidden:?}");
        assert!(!logs.contains(forbidden), "a log line carries {forbidden:?}");
    }
}
