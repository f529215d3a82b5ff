//! AWS's own sample events (tests/fixtures/aws/, see SOURCES.md there) and the Lambda
//! console's sample test event: each gets a valid answer, none an error or a panic.

use crate::common::*;
use serde_json::{Value, json};

/// Events that are no HTTP request for the function to serve.
fn is_no_request(name: &str) -> bool {
    [
        "custom-auth",
        "custom-authorizer",
        "websocket-request-disconnect",
        "websocket-request-without-method",
        "vpc_lattice",
    ]
    .iter()
    .any(|part| name.contains(part))
}

/// The event asking for `GET /token`, in whichever of the shapes it has.
fn asking_for_the_token(mut event: Value) -> Value {
    for (pointer, value) in [
        ("/httpMethod", "GET"),
        ("/path", "/token"),
        ("/rawPath", "/token"),
        ("/requestContext/http/method", "GET"),
        ("/requestContext/http/path", "/token"),
    ] {
        if let Some(field) = event.pointer_mut(pointer) {
            *field = json!(value);
        }
    }
    event
}

#[tokio::test]
async fn every_aws_sample_event_gets_a_valid_answer() {
    let upstream = upstream_answering(voxeet_token("at")).await;
    let service = service(&upstream);
    let mut served = 0;
    let fixtures = aws_fixtures();
    assert!(fixtures.len() >= 40, "the fixtures are there");
    for (name, event) in fixtures {
        let answer = call(&service, event.clone()).await;
        if is_no_request(&name) {
            assert_eq!(answer.status, 400, "{name}: {}", answer.body);
            assert_eq!(answer.json()["error"], "bad_request", "{name}");
            continue;
        }
        assert_ne!(answer.status, 400, "{name} is an HTTP request: {}", answer.body);
        let expected_shape = if name.contains("alb") {
            "alb"
        } else if event["version"] == "2.0" {
            "http"
        } else {
            "rest"
        };
        assert_eq!(answer.shape(), expected_shape, "{name}");

        let answer = call(&service, asking_for_the_token(event)).await;
        assert_eq!(answer.status, 200, "{name} asking for /token: {}", answer.body);
        assert_eq!(answer.json()["access_token"], "at", "{name}");
        assert_eq!(answer.shape(), expected_shape, "{name}");
        served += 1;
    }
    eprintln!("{served} AWS sample HTTP events served");
    assert!(served >= 30);
}

#[tokio::test]
async fn the_console_sample_test_event_is_a_400_in_the_rest_shape() {
    let upstream = upstream_answering(voxeet_token("at")).await;
    let answer = call(&service(&upstream), console_sample_event()).await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.shape(), "rest");
    assert_eq!(answer.header("content-type"), Some("application/json"));
    let body = answer.json();
    assert_eq!(body["error"], "bad_request");
    assert!(body["message"].as_str().unwrap().contains("not an API Gateway"), "{body}");
}
