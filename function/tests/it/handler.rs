//! The handler against a stand-in Dolby.io upstream (wiremock), fed the documented
//! API Gateway event shapes through the function's own event reader, as on Lambda.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::{Value, json};
use token_function::TokenService;
use token_function::config::Config;
use wiremock::{MockServer, ResponseTemplate};

async fn get_token(service: &TokenService) -> Answer {
    call(service, rest_event("GET", "/token", Some(ORIGIN))).await
}

fn header<'a>(response: &'a Answer, name: &str) -> Option<&'a str> {
    response.header(name)
}

fn json_body(response: &Answer) -> Value {
    response.json()
}

fn assert_error(response: &Answer, status: u16, code: &str) {
    assert_eq!(response.status, status, "{:?}", response.body);
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

    assert_eq!(response.status, 200);
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

    assert_eq!(response.status, 200);
    assert_eq!(json_body(&response), json!({ "access_token": "jwt-abc", "expires_in": 1800 }));
}

#[tokio::test]
async fn answers_the_same_with_or_without_the_stage_in_the_path() {
    let upstream = upstream_answering(voxeet_token("at")).await;
    let service = service(&upstream);
    for path in ["/token", "/prod/token", "/token/"] {
        let response = call(&service, rest_event("GET", path, Some(ORIGIN))).await;
        assert_eq!(response.status, 200, "{path}");
    }
    assert_error(&call(&service, rest_event("GET", "/prod/other", Some(ORIGIN))).await, 404, "not_found");
    assert_error(&call(&service, rest_event("GET", "/tokens", Some(ORIGIN))).await, 404, "not_found");
}

#[tokio::test]
async fn serves_http_api_events_too() {
    let upstream = upstream_answering(voxeet_token("at-v2")).await;
    let response = call(&service(&upstream), http_api_event()).await;
    assert_eq!(response.status, 200);
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
    assert!(!response.body.contains("access_token"));
    assert_eq!(header(&response, "access-control-allow-origin"), None);
    let preflight = call(&service, rest_event("OPTIONS", "/token", Some("https://evil.example"))).await;
    assert_eq!(preflight.status, 403);
}

#[tokio::test]
async fn star_allows_any_origin_and_no_origin_gets_no_cors_headers() {
    let upstream = upstream_answering(voxeet_token("at")).await;
    let mut env = function_env(&upstream);
    env.retain(|(k, _)| k != "ALLOWED_ORIGINS");
    env.push(("ALLOWED_ORIGINS".into(), "*".into()));
    let star = service_with(env, ManualClock::new());

    let response = call(&star, rest_event("GET", "/token", Some("https://any.example"))).await;
    assert_eq!(response.status, 200);
    assert_eq!(header(&response, "access-control-allow-origin"), Some("*"));
    assert_eq!(header(&response, "vary"), None);

    let listed = service(&upstream);
    let response = call(&listed, rest_event("GET", "/token", None)).await;
    assert_eq!(response.status, 200, "a client that sends no Origin (curl, mobile) is served");
    assert_eq!(header(&response, "access-control-allow-origin"), None);
}

#[tokio::test]
async fn answers_a_preflight_with_204_and_the_allowed_methods() {
    let upstream = MockServer::start().await;
    token_request(VOXEET_PATH).respond_with(voxeet_token("at")).expect(0).mount(&upstream).await;

    let response =
        call(&service(&upstream), rest_event("OPTIONS", "/prod/token", Some("http://localhost:8080"))).await;

    assert_eq!(response.status, 204);
    assert_eq!(header(&response, "access-control-allow-origin"), Some("http://localhost:8080"));
    assert_eq!(header(&response, "access-control-allow-methods"), Some("GET, OPTIONS"));
    let allowed_headers = header(&response, "access-control-allow-headers").unwrap_or_default();
    assert!(allowed_headers.contains("Authorization"), "{allowed_headers}");
    assert!(allowed_headers.contains("X-Api-Key"), "API Gateway's API keys come in it: {allowed_headers}");
    assert_eq!(header(&response, "vary"), Some("Origin"));
    assert!(response.body.is_empty());
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
        let text = response.raw.to_string();
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
    assert_eq!(third.status, 200);
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

// ---- Events lambda_http's request conversion could not take (it panicked on some) ----

#[tokio::test]
async fn an_event_that_is_no_http_request_is_a_400_in_the_rest_shape() {
    let upstream = MockServer::start().await;
    token_request(VOXEET_PATH).respond_with(voxeet_token("at")).expect(0).mount(&upstream).await;
    let service = service(&upstream);
    for event in [
        console_sample_event(),
        json!({}),
        json!({ "not": "an http event" }),
        json!([]),
        json!("GET /token"),
        json!(null),
        json!(42),
        json!({ "httpMethod": "GET" }),
        json!({ "httpMethod": ["GET"], "path": "/token" }),
    ] {
        let response = call(&service, event.clone()).await;
        assert_error(&response, 400, "bad_request");
        assert_eq!(response.shape(), "rest", "{event}");
        assert!(response.raw["multiValueHeaders"].is_object(), "{event}");
    }
}

#[tokio::test]
async fn odd_hosts_schemes_query_strings_and_paths_get_an_answer() {
    let upstream = upstream_answering(voxeet_token("at")).await;
    let service = service(&upstream);
    let odd = [
        "",
        " ",
        "a b",
        "ä.example",
        "\u{0}",
        "\r\n",
        ":::",
        "[",
        "[::1",
        "http://",
        "https://x/y?z",
        "%",
        "%zz",
        "a=%zz&&=&%00",
        "\u{7f}\u{80}\u{ff}",
        "😀",
    ];
    for value in odd {
        let mut rest = rest_event("GET", "/token", Some(ORIGIN));
        for (name, headers) in [("headers", json!(value)), ("multiValueHeaders", json!([value]))] {
            rest[name]["Host"] = headers.clone();
            rest[name]["X-Forwarded-Proto"] = headers.clone();
        }
        rest["queryStringParameters"] = json!({ value: value });
        rest["multiValueQueryStringParameters"] = json!({ value: [value, value] });
        rest["body"] = json!(value);
        rest["isBase64Encoded"] = json!(true);
        let response = call(&service, rest).await;
        assert_eq!(response.status, 200, "Host/X-Forwarded-Proto/query {value:?}");

        let mut v2 = http_api_event();
        v2["headers"]["host"] = json!(value);
        v2["headers"]["x-forwarded-proto"] = json!(value);
        v2["rawQueryString"] = json!(value);
        v2["requestContext"]["domainName"] = json!(value);
        let response = call(&service, v2).await;
        assert_eq!(response.status, 200, "v2 Host/X-Forwarded-Proto/rawQueryString {value:?}");

        if value.is_empty() {
            continue; // "/token{value}" would be the token path
        }
        for path in
            [value.to_string(), format!("/{value}"), format!("/token{value}"), format!("/prod/{value}")]
        {
            let response = call(&service, rest_event("GET", &path, Some(ORIGIN))).await;
            assert_error(&response, 404, "not_found");
        }
    }
    for path in ["//token", "/token//", "/%74oken", "token", "/TOKEN", &format!("/{}", "a".repeat(100_000))] {
        let response = call(&service, rest_event("GET", path, Some(ORIGIN))).await;
        let expected = if path == "/token//" { 200 } else { 404 };
        assert_eq!(response.status, expected, "{path:.40}");
    }
}

#[tokio::test]
async fn serves_function_url_and_alb_events_in_their_own_shape() {
    let upstream = upstream_answering(voxeet_token("at")).await;
    let service = service(&upstream);

    let response = call(&service, function_url_event(Some(ORIGIN))).await;
    assert_eq!((response.status, response.shape()), (200, "http"));
    assert_eq!(header(&response, "access-control-allow-origin"), Some(ORIGIN));
    assert!(response.raw.get("multiValueHeaders").is_none());

    let response = call(&service, alb_event(Some(ORIGIN))).await;
    assert_eq!((response.status, response.shape()), (200, "alb"));
    assert_eq!(response.raw["statusDescription"], "200 OK");
    assert_eq!(response.raw["multiValueHeaders"]["access-control-allow-origin"], json!([ORIGIN]));
    let mut single = alb_event(None);
    single.as_object_mut().unwrap().remove("multiValueHeaders");
    single["headers"] = json!({ "origin": "https://evil.example" });
    let response = call(&service, single).await;
    assert_error(&response, 403, "origin_not_allowed");
    assert_eq!(response.raw["statusDescription"], "403 Forbidden");
    assert!(response.raw["headers"].is_object() && response.raw.get("multiValueHeaders").is_none());
}

// ---- expires_in: huge values, every JSON type ----

fn token_answer(expires_in: &str) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .set_body_raw(format!(r#"{{"access_token":"huge","expires_in":{expires_in}}}"#), "application/json")
}

#[tokio::test]
async fn a_huge_expires_in_is_served_from_the_cache_without_overflow() {
    for huge in ["1e30", "18446744073709551615", "18446744073709551616", "1.7976931348623157e308", "\"1e30\""]
    {
        let upstream = MockServer::start().await;
        token_request(VOXEET_PATH).respond_with(token_answer(huge)).expect(1).mount(&upstream).await;
        let clock = ManualClock::new();
        let service = service_with(function_env(&upstream), clock.clone());

        // Passed on capped at 2^53 - 1: what JavaScript's numbers hold exactly.
        let most = token_function::MAX_SAFE_INTEGER;
        let first = get_token(&service).await;
        assert_eq!((first.status, first.json()["expires_in"].as_u64()), (200, Some(most)), "{huge}");
        let second = get_token(&service).await;
        assert_eq!(second.json()["expires_in"].as_u64(), Some(most), "{huge}: served from the cache");
        clock.advance(1000);
        let third = get_token(&service).await;
        assert_eq!(
            third.json()["expires_in"].as_u64(),
            Some(most),
            "{huge}: counted from now, still past it"
        );
        // wiremock checks `.expect(1)`: three answers, one upstream call.
    }
}

#[tokio::test]
async fn a_huge_lifetime_is_cached_at_most_a_day() {
    let upstream = MockServer::start().await;
    token_request(VOXEET_PATH)
        .respond_with(token_answer("18446744073709551615"))
        .expect(2)
        .mount(&upstream)
        .await;
    let clock = ManualClock::new();
    let service = service_with(function_env(&upstream), clock.clone());
    get_token(&service).await;
    clock.advance(24 * 3600);
    let most = token_function::MAX_SAFE_INTEGER;
    assert_eq!(get_token(&service).await.json()["expires_in"].as_u64(), Some(most), "fetched afresh");
}

#[tokio::test]
async fn expires_in_of_every_json_type_is_a_lifetime_or_a_502() {
    let cases: &[(&str, Option<u64>)] = &[
        ("3600", Some(3600)),
        ("0", Some(0)),
        ("3600.75", Some(3600)),
        ("\"3600\"", Some(3600)),
        ("null", None),
        ("-1", None),
        ("-1e30", None),
        ("-9223372036854775808", None),
        ("\"soon\"", None),
        ("\"\"", None),
        ("\"NaN\"", None),
        ("true", None),
        ("[3600]", None),
        ("{\"s\":3600}", None),
        ("1e999", None),
    ];
    for &(raw, lifetime) in cases {
        let upstream = upstream_answering(token_answer(raw)).await;
        let response = get_token(&service(&upstream)).await;
        let accepted = lifetime.is_some() || raw == "null";
        if accepted {
            assert_eq!(response.status, 200, "{raw}");
            assert_eq!(response.json()["expires_in"].as_u64(), lifetime, "{raw}");
        } else {
            assert_error(&response, 502, "upstream_invalid_response");
        }
    }
}

// ---- The upstream's body is read up to a cap ----

#[tokio::test]
async fn a_10_mb_upstream_answer_is_a_502_naming_the_cap() {
    let huge_token = "x".repeat(10 * 1024 * 1024);
    let upstream = upstream_answering(
        ResponseTemplate::new(200).set_body_json(json!({ "access_token": huge_token, "expires_in": 3600 })),
    )
    .await;
    let service = service(&upstream);
    for _ in 0..2 {
        let response = get_token(&service).await;
        assert_error(&response, 502, "upstream_invalid_response");
        assert!(response.json()["message"].as_str().unwrap().contains("64 KiB"), "{}", response.body);
        assert!(response.body.len() < 1024);
    }
}

#[tokio::test]
async fn an_over_long_token_in_a_small_body_is_a_502() {
    let long = "x".repeat(17 * 1024);
    for body in [json!({ "access_token": long }), json!({ "access_token": "at", "refresh_token": long })] {
        let upstream = upstream_answering(ResponseTemplate::new(200).set_body_json(body)).await;
        assert_error(&get_token(&service(&upstream)).await, 502, "upstream_invalid_response");
    }
}

/// An upstream that answers 200 with a body of no stated length that never ends.
async fn endless_upstream() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n";
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let _ = socket.write_all(br#"{"access_token":""#).await;
                let chunk = vec![b'x'; 16 * 1024];
                while socket.write_all(&chunk).await.is_ok() {}
            });
        }
    });
    format!("http://{address}{VOXEET_PATH}")
}

#[tokio::test]
async fn an_endless_upstream_body_is_cut_at_the_cap_not_waited_for() {
    let upstream = MockServer::start().await;
    let mut env = function_env(&upstream);
    env.retain(|(k, _)| k != "TOKEN_URL");
    env.push(("TOKEN_URL".into(), endless_upstream().await));
    env.push(("UPSTREAM_TIMEOUT_MS".into(), "5000".into()));
    let started = Instant::now();
    let response = get_token(&service_with(env, ManualClock::new())).await;
    assert_error(&response, 502, "upstream_invalid_response");
    assert!(started.elapsed() < Duration::from_secs(4), "stopped reading at the cap, not at the timeout");
}

// ---- Origin: present but unreadable is not absent ----

#[tokio::test]
async fn an_unreadable_origin_is_refused_not_treated_as_absent() {
    let upstream = MockServer::start().await;
    token_request(VOXEET_PATH).respond_with(voxeet_token("at")).expect(0).mount(&upstream).await;
    let service = service(&upstream);
    let unreadable = [
        "https://äpp.example.com",
        "https://app.example.com\u{0}",
        "https://app.example.com\r\nX-Injected: 1",
        "\u{7f}",
        "",
        " ",
        "https://app.example.com ",
    ];
    for origin in unreadable {
        let response = call(&service, rest_event("GET", "/token", Some(origin))).await;
        assert_error(&response, 403, "origin_not_allowed");
        assert_eq!(header(&response, "access-control-allow-origin"), None, "{origin:?}");
        let response = call(&service, http_api_event_from(origin)).await;
        assert_error(&response, 403, "origin_not_allowed");
    }
    // Several Origin values, or one of another JSON type: present, on no list.
    let mut twice = rest_event("GET", "/token", None);
    twice["multiValueHeaders"]["Origin"] = json!([ORIGIN, ORIGIN]);
    assert_error(&call(&service, twice).await, 403, "origin_not_allowed");
    let mut number = rest_event("GET", "/token", None);
    number["headers"]["Origin"] = json!(1);
    number["multiValueHeaders"]["Origin"] = json!(1);
    assert_error(&call(&service, number).await, 403, "origin_not_allowed");
}

fn http_api_event_from(origin: &str) -> Value {
    let mut event = http_api_event();
    event["headers"]["origin"] = json!(origin);
    event
}

#[tokio::test]
async fn with_any_origin_allowed_an_unreadable_one_gets_star() {
    let upstream = upstream_answering(voxeet_token("at")).await;
    let mut env = function_env(&upstream);
    env.retain(|(k, _)| k != "ALLOWED_ORIGINS");
    env.push(("ALLOWED_ORIGINS".into(), "*".into()));
    let response =
        call(&service_with(env, ManualClock::new()), rest_event("GET", "/token", Some("https://ä\u{1}")))
            .await;
    assert_eq!(response.status, 200);
    assert_eq!(header(&response, "access-control-allow-origin"), Some("*"));
}

// ---- CORS headers on error answers ----

#[tokio::test]
async fn every_error_answer_carries_cors_headers_for_an_allowed_origin() {
    let ok = upstream_answering(voxeet_token("at")).await;
    let listed = service(&ok);
    let not_found = call(&listed, rest_event("GET", "/nope", Some(ORIGIN))).await;
    let wrong_method = call(&listed, rest_event("PUT", "/token", Some(ORIGIN))).await;
    let failing = upstream_answering(ResponseTemplate::new(500)).await;
    let upstream_failed = get_token(&service(&failing)).await;
    let slow = upstream_answering(voxeet_token("late").set_delay(Duration::from_secs(3))).await;
    let mut env = function_env(&slow);
    env.push(("UPSTREAM_TIMEOUT_MS".into(), "100".into()));
    let timed_out = get_token(&service_with(env, ManualClock::new())).await;
    let v2_not_found = call(&listed, {
        let mut event = http_api_event();
        event["rawPath"] = json!("/nope");
        event
    })
    .await;

    for (response, status, code) in [
        (&not_found, 404, "not_found"),
        (&wrong_method, 405, "method_not_allowed"),
        (&upstream_failed, 502, "upstream_error"),
        (&timed_out, 504, "upstream_timeout"),
        (&v2_not_found, 404, "not_found"),
    ] {
        assert_error(response, status, code);
        assert_eq!(header(response, "access-control-allow-origin"), Some(ORIGIN), "{code}");
        assert_eq!(header(response, "vary"), Some("Origin"), "{code}");
        assert_eq!(header(response, "cache-control"), Some("no-store"), "{code}");
    }
}

#[tokio::test]
async fn a_denied_origin_and_a_broken_configuration_get_no_cors_headers() {
    let upstream = upstream_answering(voxeet_token("at")).await;
    let listed = service(&upstream);
    for event in [
        rest_event("GET", "/token", Some("https://evil.example")),
        rest_event("GET", "/nope", Some("https://evil.example")),
        rest_event("PUT", "/token", Some("https://evil.example")),
    ] {
        let response = call(&listed, event).await;
        assert!(matches!(response.status, 403 | 404), "{}", response.status);
        assert_eq!(header(&response, "access-control-allow-origin"), None);
    }
    let mut env = function_env(&upstream);
    env.retain(|(k, _)| k != "CONSUMER_SECRET");
    let broken = service_with(env, ManualClock::new());
    let response = call(&broken, rest_event("GET", "/token", Some(ORIGIN))).await;
    assert_error(&response, 500, "configuration_error");
    assert_eq!(header(&response, "access-control-allow-origin"), None, "no allow-list to check");
}

// ---- TOKEN_URL is parsed as a URL ----

#[tokio::test]
async fn a_token_url_that_is_no_https_url_is_a_500_naming_it_without_its_value() {
    let upstream = MockServer::start().await;
    token_request(VOXEET_PATH).respond_with(voxeet_token("at")).expect(0).mount(&upstream).await;
    for bad in
        ["https://", "https://a b.example/x", "http://remote.example/token", "https://user:pw@a.example/t"]
    {
        let mut env = function_env(&upstream);
        env.retain(|(k, _)| k != "TOKEN_URL");
        env.push(("TOKEN_URL".into(), bad.into()));
        let response = get_token(&service_with(env, ManualClock::new())).await;
        assert_error(&response, 500, "configuration_error");
        let message = response.json()["message"].as_str().unwrap().to_string();
        assert!(message.contains("TOKEN_URL") && !message.contains(bad), "{message}");
    }
}

#[tokio::test]
async fn a_plain_http_token_url_on_loopback_is_accepted() {
    let upstream = upstream_answering(voxeet_token("local")).await;
    let port = upstream.address().port();
    for url in
        [format!("http://127.0.0.1:{port}{VOXEET_PATH}"), format!("http://localhost:{port}{VOXEET_PATH}")]
    {
        let mut env = function_env(&upstream);
        env.retain(|(k, _)| k != "TOKEN_URL");
        env.push(("TOKEN_URL".into(), url.clone()));
        let response = get_token(&service_with(env, ManualClock::new())).await;
        assert_eq!(
            (response.status, response.json()["access_token"].as_str()),
            (200, Some("local")),
            "{url}"
        );
    }
    let env = HashMap::from([
        ("CONSUMER_KEY", "k"),
        ("CONSUMER_SECRET", "s"),
        ("ALLOWED_ORIGINS", "*"),
        ("TOKEN_URL", "http://127.0.0.1:8080/token"),
    ]);
    let config = Config::from_lookup(|name| env.get(name).map(|v| v.to_string())).unwrap();
    let token_function::config::ProviderSettings::ClientCredentials(settings) = config.settings else {
        panic!("dolby is a client-credentials provider: {config:?}")
    };
    assert_eq!(settings.token_url, "http://127.0.0.1:8080/token");
}

#[tokio::test]
async fn oauth2_sends_scope_and_audience_and_authenticates_the_client_as_configured() {
    use wiremock::matchers::{body_string, header, header_exists, method, path};
    let upstream = MockServer::start().await;
    let form = "grant_type=client_credentials&scope=video+chat&audience=https%3A%2F%2Fapi.example";
    wiremock::Mock::given(method("POST"))
        .and(path("/basic"))
        .and(header("authorization", basic_auth().as_str()))
        .and(body_string(form))
        .respond_with(voxeet_token("by-basic"))
        .expect(1)
        .mount(&upstream)
        .await;
    let in_body = format!("{form}&client_id={KEY}&client_secret={SECRET}");
    wiremock::Mock::given(method("POST"))
        .and(path("/body"))
        .and(body_string(in_body))
        .respond_with(voxeet_token("by-body"))
        .expect(1)
        .mount(&upstream)
        .await;
    wiremock::Mock::given(header_exists("authorization"))
        .and(path("/body"))
        .respond_with(ResponseTemplate::new(400))
        .with_priority(1)
        .mount(&upstream)
        .await;
    for (client_auth, endpoint, token) in [("basic", "/basic", "by-basic"), ("BODY", "/body", "by-body")] {
        let env = [
            ("TOKEN_PROVIDER", "oauth2".to_string()),
            ("CONSUMER_KEY", KEY.to_string()),
            ("CONSUMER_SECRET", SECRET.to_string()),
            ("TOKEN_URL", format!("{}{endpoint}", upstream.uri())),
            ("TOKEN_SCOPE", "video chat".to_string()),
            ("TOKEN_AUDIENCE", "https://api.example".to_string()),
            ("TOKEN_CLIENT_AUTH", client_auth.to_string()),
            ("ALLOWED_ORIGINS", ORIGIN.to_string()),
        ];
        let env = env.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        let response = get_token(&service_with(env, ManualClock::new())).await;
        assert_eq!((response.status, json_body(&response)["access_token"].as_str()), (200, Some(token)));
    }
    let no_url = Config::from_lookup(|name| match name {
        "TOKEN_PROVIDER" => Some("oauth2".into()),
        "CONSUMER_KEY" | "CONSUMER_SECRET" | "ALLOWED_ORIGINS" => Some("x".into()),
        _ => None,
    });
    assert_eq!(no_url.unwrap_err().to_string(), "the function's environment variable TOKEN_URL is not set");
}
