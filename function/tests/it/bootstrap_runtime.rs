//! The built `bootstrap` binary, run the way Lambda runs it: against a loopback Runtime API.

use std::path::Path;
use std::time::Duration;

use crate::common::*;
use serde_json::Value;
use tokendeploy_testkit::runtime_api::{Outcome, RuntimeApi};
use tokio::process::Command;
use wiremock::MockServer;

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn serves_api_gateway_events_through_the_runtime_api() {
    let upstream = MockServer::start().await;
    token_request(VOXEET_PATH).respond_with(voxeet_token("from-bootstrap")).expect(1).mount(&upstream).await;
    let runtime = RuntimeApi::start().await.unwrap();
    let child =
        spawn_bootstrap(Path::new(env!("CARGO_BIN_EXE_bootstrap")), &runtime, function_env(&upstream));

    let first = runtime.invoke(rest_event("GET", "/token", Some(ORIGIN)), WAIT).await.unwrap();
    let (status, headers, payload) = response_body(&first);
    assert_eq!(status, 200);
    assert_eq!(payload["access_token"], "from-bootstrap");
    assert_eq!(headers["access-control-allow-origin"], ORIGIN);
    assert_eq!(headers["cache-control"], "no-store");

    // Warm: the same process answers from its cache, then routes and refuses as the handler does.
    let (status, _, payload) =
        response_body(&runtime.invoke(rest_event("GET", "/prod/token", Some(ORIGIN)), WAIT).await.unwrap());
    assert_eq!((status, payload["access_token"].as_str()), (200, Some("from-bootstrap")));
    let (status, _, payload) = response_body(
        &runtime.invoke(rest_event("GET", "/token", Some("https://evil.example")), WAIT).await.unwrap(),
    );
    assert_eq!((status, payload["error"].as_str()), (403, Some("origin_not_allowed")));
    let (status, _, _) = response_body(&runtime.invoke(http_api_event(), WAIT).await.unwrap());
    assert_eq!(status, 200);

    let logs = output_of(child).await;
    assert!(!logs.contains(SECRET), "the secret is in the logs:\n{logs}");
    assert!(!logs.contains(&basic_auth()), "the Authorization header is in the logs:\n{logs}");
    let lines: Vec<Value> = logs.lines().filter_map(|line| serde_json::from_str(line).ok()).collect();
    assert!(lines.len() >= 4, "one JSON log line per request:\n{logs}");
    assert!(
        lines.iter().any(|line| line["span"]["requestId"] == "req-00000001"),
        "log lines carry the request id:\n{logs}"
    );
}

/// Lambda stops the function at the timeout `up` sets; the longest upstream timeout the
/// configuration accepts still leaves it time to answer its own 504.
#[tokio::test]
async fn at_the_longest_upstream_timeout_it_answers_its_own_504_before_lambdas_timeout() {
    use token_function::config::{FUNCTION_TIMEOUT, UPSTREAM_TIMEOUT_CEILING};
    let upstream = MockServer::start().await;
    token_request(VOXEET_PATH)
        .respond_with(voxeet_token("too-late").set_delay(FUNCTION_TIMEOUT * 2))
        .mount(&upstream)
        .await;
    let runtime = RuntimeApi::start().await.unwrap();
    let mut env = function_env(&upstream);
    env.push(("UPSTREAM_TIMEOUT_MS".into(), UPSTREAM_TIMEOUT_CEILING.as_millis().to_string()));
    let child = spawn_bootstrap(Path::new(env!("CARGO_BIN_EXE_bootstrap")), &runtime, env);

    let started = std::time::Instant::now();
    let answer = runtime.invoke(rest_event("GET", "/token", Some(ORIGIN)), WAIT).await.unwrap();
    let took = started.elapsed();
    let (status, _, payload) = response_body(&answer);
    assert_eq!((status, payload["error"].as_str()), (504, Some("upstream_timeout")));
    assert!(took >= UPSTREAM_TIMEOUT_CEILING, "gave up early: {took:?}");
    assert!(took < FUNCTION_TIMEOUT, "answered after Lambda would have stopped it: {took:?}");
    drop(child);
}

#[tokio::test]
async fn answers_an_event_that_is_no_http_request_with_a_400_and_keeps_serving() {
    let upstream = upstream_answering(voxeet_token("still-up")).await;
    let runtime = RuntimeApi::start().await.unwrap();
    let child =
        spawn_bootstrap(Path::new(env!("CARGO_BIN_EXE_bootstrap")), &runtime, function_env(&upstream));

    for event in
        [console_sample_event(), serde_json::json!({ "not": "an http event" }), serde_json::json!([1])]
    {
        let outcome = runtime.invoke(event, WAIT).await.unwrap();
        let Outcome::Response { body, .. } = &outcome else { panic!("{outcome:?}") };
        assert!(body["multiValueHeaders"].is_object(), "the REST shape: {body}");
        let (status, _, payload) = response_body(&outcome);
        assert_eq!((status, payload["error"].as_str()), (400, Some("bad_request")));
    }
    let (status, _, payload) =
        response_body(&runtime.invoke(rest_event("GET", "/token", None), WAIT).await.unwrap());
    assert_eq!((status, payload["access_token"].as_str()), (200, Some("still-up")));
    let (status, _, _) =
        response_body(&runtime.invoke(function_url_event(Some(ORIGIN)), WAIT).await.unwrap());
    assert_eq!(status, 200);
    let (status, headers, _) = response_body(&runtime.invoke(alb_event(Some(ORIGIN)), WAIT).await.unwrap());
    assert_eq!((status, headers["access-control-allow-origin"].as_str()), (200, Some(ORIGIN)));
    drop(output_of(child).await);
}

#[tokio::test]
async fn without_configuration_it_starts_and_answers_500_naming_the_variable() {
    let upstream = MockServer::start().await;
    let mut env = function_env(&upstream);
    env.retain(|(k, _)| k != "CONSUMER_SECRET");
    let runtime = RuntimeApi::start().await.unwrap();
    let child = spawn_bootstrap(Path::new(env!("CARGO_BIN_EXE_bootstrap")), &runtime, env);

    let (status, _, payload) =
        response_body(&runtime.invoke(rest_event("GET", "/token", Some(ORIGIN)), WAIT).await.unwrap());
    assert_eq!(status, 500);
    assert_eq!(payload["error"], "configuration_error");
    assert!(payload["message"].as_str().unwrap().contains("CONSUMER_SECRET"));
    drop(output_of(child).await);
}

#[tokio::test]
async fn outside_lambda_it_fails_to_start_naming_the_missing_lambda_variable() {
    let output = Command::new(env!("CARGO_BIN_EXE_bootstrap")).env_clear().output().await.unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("AWS_LAMBDA_FUNCTION_NAME"), "{stderr}");
}
