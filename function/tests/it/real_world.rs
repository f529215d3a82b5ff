//! The function among real identity providers and real upstreams: no credential follows a
//! redirect, a TRACE log holds none, the identities the common sign-in services issue mint
//! tokens, a minted token ends no later than the sign-in, and a failing upstream or key set is
//! asked once, not once a request.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::common::*;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Value, json};
use tokendeploy_testkit::runtime_api::RuntimeApi;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const LIVEKIT_SECRET: &str = "livekit-api-secret-never-shown-0123";
const RSA_PRIVATE: &str = include_str!("../fixtures/identity/test-only-rsa-private.pem");
const JWKS: &str = include_str!("../fixtures/identity/test-only-jwks.json");
/// Each common sign-in service's token, as it issues one (tests/fixtures/identity/README.md).
const PROVIDERS: &str = include_str!("../fixtures/identity/sign-in-services.json");

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn pairs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

async fn get(service: &token_function::TokenService, query: &str, authorization: Option<&str>) -> Answer {
    let mut event = rest_event("GET", "/token", Some(ORIGIN));
    let parameters: serde_json::Map<String, Value> =
        url::form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), json!(v))).collect();
    event["queryStringParameters"] = Value::Object(parameters);
    if let Some(authorization) = authorization {
        event["headers"]["Authorization"] = json!(authorization);
        event["multiValueHeaders"]["Authorization"] = json!([authorization]);
    }
    call(service, event).await
}

/// A token signed with the test RSA key (`kid` test-rsa) of the stand-in key set.
fn rs256(claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("test-rsa".into());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap())
        .unwrap()
}

/// The claims of a minted LiveKit token, its signature checked.
fn minted(answer: &Answer) -> Value {
    assert_eq!(answer.status, 200, "{}", answer.body);
    let token = answer.json()["access_token"].as_str().unwrap().to_string();
    let mut validation = Validation::new(Algorithm::HS256);
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let key = DecodingKey::from_secret(LIVEKIT_SECRET.as_bytes());
    jsonwebtoken::decode::<Value>(&token, &key, &validation).unwrap().claims
}

async fn key_set() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/.well-known/jwks.json"))
        .respond_with(ResponseTemplate::new(200).set_body_string(JWKS))
        .mount(&server)
        .await;
    server
}

fn livekit(
    key_set: &MockServer,
    issuer: &str,
    audience: &str,
    claim: &str,
    more: &[(&str, &str)],
) -> Vec<(String, String)> {
    let mut all = pairs(&[
        ("TOKEN_PROVIDER", "livekit"),
        ("LIVEKIT_API_KEY", "APIkey123"),
        ("LIVEKIT_API_SECRET", LIVEKIT_SECRET),
        ("ALLOWED_ORIGINS", ORIGIN),
        ("IDENTITY_ISSUER", issuer),
        ("IDENTITY_AUDIENCE", audience),
        ("IDENTITY_CLAIM", claim),
    ]);
    all.push(("IDENTITY_JWKS_URL".into(), format!("{}/.well-known/jwks.json", key_set.uri())));
    all.extend(pairs(more));
    all
}

#[tokio::test]
async fn no_credential_follows_a_redirect_of_the_token_endpoint() {
    for client_auth in ["basic", "body"] {
        for status in [301, 302, 307, 308] {
            let (upstream, elsewhere) = (MockServer::start().await, MockServer::start().await);
            for target in
                [format!("{}/v1/oauth2/token", elsewhere.uri()), format!("{}/moved", upstream.uri())]
            {
                upstream.reset().await;
                elsewhere.reset().await;
                Mock::given(method("POST"))
                    .and(path(VOXEET_PATH))
                    .respond_with(ResponseTemplate::new(status).insert_header("location", target.as_str()))
                    .mount(&upstream)
                    .await;
                let mut env = function_env(&upstream);
                env.extend(pairs(&[("TOKEN_PROVIDER", "oauth2"), ("TOKEN_CLIENT_AUTH", client_auth)]));
                let service = service_with(env, ManualClock::new());
                let answer = get(&service, "", None).await;
                let shown = format!("{client_auth} {status} -> {target}: {}", answer.body);
                assert_eq!(
                    (answer.status, answer.json()["error"].as_str()),
                    (502, Some("upstream_error")),
                    "{shown}"
                );
                let message = answer.json()["message"].as_str().unwrap().to_string();
                assert!(message.contains(&format!("HTTP {status}")) && !message.contains(&target), "{shown}");
                // The endpoint asked once; where it pointed, never.
                let asked = upstream.received_requests().await.unwrap();
                let to_target = asked.iter().filter(|request| request.url.path() != VOXEET_PATH).count();
                let elsewhere_asked = elsewhere.received_requests().await.unwrap().len();
                assert_eq!(
                    (asked.len() - to_target, to_target, elsewhere_asked),
                    (1, 0, 0),
                    "{shown}: followed"
                );
                assert!(!answer.body.contains(SECRET), "{shown}");
            }
        }
    }
}

#[tokio::test]
async fn at_trace_the_function_logs_no_bearer_key_or_secret() {
    let upstream = upstream_answering(voxeet_token("traced")).await;
    let bearer = "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0cmFjZWQifQ.c2lnbmF0dXJlLW5ldmVyLWxvZ2dlZA";
    let runtime = RuntimeApi::start().await.unwrap();
    let mut env = function_env(&upstream);
    env.extend(pairs(&[("AWS_LAMBDA_LOG_LEVEL", "TRACE"), ("RUST_LOG", "trace")]));
    let child = spawn_bootstrap(Path::new(env!("CARGO_BIN_EXE_bootstrap")), &runtime, env);
    let mut event = rest_event("GET", "/token", Some(ORIGIN));
    event["headers"]["Authorization"] = json!(bearer);
    event["multiValueHeaders"]["Authorization"] = json!([bearer]);
    let (status, _, _) = response_body(&runtime.invoke(event, Duration::from_secs(30)).await.unwrap());
    assert_eq!(status, 200);
    let logs = output_of(child).await;
    assert!(logs.lines().count() > 3, "TRACE logs much:\n{logs}");
    for (what, credential) in [
        ("the bearer token", &bearer[7..]),
        ("the key", KEY),
        ("the secret", SECRET),
        ("Basic auth", &basic_auth()),
    ] {
        assert!(!logs.contains(credential), "{what} is in the TRACE log:\n{logs}");
    }
}

#[tokio::test]
async fn each_common_sign_in_services_identity_mints_a_token() {
    let key_set = key_set().await;
    let services: Vec<Value> = serde_json::from_str(PROVIDERS).unwrap();
    assert!(services.len() >= 8);
    for case in services {
        let name = case["service"].as_str().unwrap();
        let claim = case["claim"].as_str().unwrap();
        let mut claims = case["claims"].clone();
        claims["iat"] = json!(now());
        claims["exp"] = json!(now() + 3600);
        let issuer = claims["iss"].as_str().unwrap();
        let audience = match &claims["aud"] {
            Value::Array(all) => all[0].as_str().unwrap().to_string(),
            one => one.as_str().unwrap().to_string(),
        };
        let service = service_with(livekit(&key_set, issuer, &audience, claim, &[]), ManualClock::new());
        let answer = get(&service, "room=standup", Some(&format!("Bearer {}", rs256(&claims)))).await;
        let minted = minted(&answer);
        assert_eq!(minted["sub"], claims[claim], "{name}: the token is for the {claim} the sign-in proved");
    }
}

#[tokio::test]
async fn a_minted_token_ends_no_later_than_the_sign_in_unless_told_otherwise() {
    let key_set = key_set().await;
    let (issuer, audience) = ("https://issuer.test/", "app");
    let caller = |exp: u64| {
        format!("Bearer {}", rs256(&json!({"iss": issuer, "aud": audience, "sub": "alice", "exp": exp})))
    };
    let bounded = service_with(livekit(&key_set, issuer, audience, "sub", &[]), ManualClock::new());
    let soon = now() + 5;
    let answer = get(&bounded, "room=r", Some(&caller(soon))).await;
    let claims = minted(&answer);
    assert!(claims["exp"].as_u64().unwrap() <= soon, "{claims} outlives the sign-in ending at {soon}");
    assert!(answer.json()["expires_in"].as_u64().unwrap() <= 5);

    // Expired 25 s ago: inside the clock leeway a token still verifies, but no token is minted.
    let expired = get(&bounded, "room=r", Some(&caller(now() - 25))).await;
    assert_eq!(
        (expired.status, expired.json()["error"].as_str()),
        (401, Some("invalid_identity")),
        "{}",
        expired.body
    );
    assert!(expired.header("www-authenticate").unwrap().contains("expired"));

    let ttl = livekit(
        &key_set,
        issuer,
        audience,
        "sub",
        &[("TOKEN_LIFETIME", "ttl"), ("TOKEN_TTL_SECONDS", "600")],
    );
    let unbounded = service_with(ttl, ManualClock::new());
    let claims = minted(&get(&unbounded, "room=r", Some(&caller(now() + 5))).await);
    assert!(claims["exp"].as_u64().unwrap() >= now() + 590, "TOKEN_LIFETIME=ttl: {claims}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_hundred_requests_against_a_busy_upstream_make_one_call() {
    let upstream = MockServer::start().await;
    token_request(VOXEET_PATH)
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "3600")
                .set_delay(Duration::from_millis(200)),
        )
        .mount(&upstream)
        .await;
    let service = Arc::new(service(&upstream));
    let requests = (0..500).map(|_| {
        let service = Arc::clone(&service);
        tokio::spawn(async move { get(&service, "", None).await })
    });
    let answers = futures_join(requests).await;
    assert_eq!(upstream.received_requests().await.unwrap().len(), 1, "one upstream call for 500 requests");
    for answer in &answers {
        assert_eq!(
            (answer.status, answer.json()["error"].as_str()),
            (503, Some("upstream_unavailable")),
            "{}",
            answer.body
        );
        let wait: u64 = answer.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=60).contains(&wait), "Retry-After bounded to a minute: {wait}");
    }
    // Joining 500 handles can spend this poll's tokio budget, and wiremock's MockServer, dropped
    // here, takes its lock through futures' block_on, which never gets a fresh budget: it spun
    // at full CPU for 15 minutes in a fresh-clone run. A poll of its own, a budget of its own.
    tokio::task::yield_now().await;
    drop(upstream);
}

async fn futures_join(handles: impl Iterator<Item = tokio::task::JoinHandle<Answer>>) -> Vec<Answer> {
    let mut answers = Vec::new();
    for handle in handles.collect::<Vec<_>>() {
        answers.push(handle.await.unwrap());
    }
    answers
}

#[tokio::test]
async fn a_key_set_that_times_out_is_remembered_not_asked_again_on_each_request() {
    let slow = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/.well-known/jwks.json"))
        .respond_with(ResponseTemplate::new(200).set_body_string(JWKS).set_delay(Duration::from_secs(3)))
        .mount(&slow)
        .await;
    let env = livekit(&slow, "https://issuer.test/", "app", "sub", &[("UPSTREAM_TIMEOUT_MS", "300")]);
    let service = service_with(env, ManualClock::new());
    let caller = format!(
        "Bearer {}",
        rs256(&json!({"iss": "https://issuer.test/", "aud": "app", "sub": "bob", "exp": now() + 600}))
    );
    for _ in 0..5 {
        let answer = get(&service, "room=r", Some(&caller)).await;
        assert_eq!(
            (answer.status, answer.json()["error"].as_str()),
            (503, Some("identity_unavailable")),
            "{}",
            answer.body
        );
        assert!(answer.header("retry-after").is_some(), "{}", answer.body);
    }
    assert_eq!(slow.received_requests().await.unwrap().len(), 1, "asked once, then answered from memory");
}
