//! Requests for minted tokens (Twilio, LiveKit) through the handler and through the built
//! `bootstrap`: who the caller is (a bearer token, or trust), which methods, what is refused.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::common::*;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Value, json};
use tokendeploy_testkit::runtime_api::{Outcome, RuntimeApi};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TWILIO_SECRET: &str = "twilio-api-secret-never-shown";
const LIVEKIT_SECRET: &str = "livekit-api-secret-never-shown";
const CALLER_SECRET: &str = "test-only-shared-secret-0123456789abcdef";
const ISSUER: &str = "https://issuer.test/";
const AUDIENCE: &str = "tokendeploy-test";
const RSA_PRIVATE: &str = include_str!("../fixtures/identity/test-only-rsa-private.pem");
const JWKS: &str = include_str!("../fixtures/identity/test-only-jwks.json");

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn twilio_env(identity: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut all = env(&[
        ("TOKEN_PROVIDER", "twilio"),
        ("TWILIO_ACCOUNT_SID", "AC0123456789abcdef0123456789abcdef"),
        ("TWILIO_API_KEY", "SK0123456789abcdef0123456789abcdef"),
        ("TWILIO_API_SECRET", TWILIO_SECRET),
        ("ALLOWED_ORIGINS", ORIGIN),
    ]);
    all.extend(env(identity));
    all
}

fn livekit_env(identity: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut all = env(&[
        ("TOKEN_PROVIDER", "livekit"),
        ("LIVEKIT_API_KEY", "APIkey123"),
        ("LIVEKIT_API_SECRET", LIVEKIT_SECRET),
        ("ALLOWED_ORIGINS", ORIGIN),
    ]);
    all.extend(env(identity));
    all
}

const SHARED_SECRET_MODE: &[(&str, &str)] =
    &[("IDENTITY_HS256_SECRET", CALLER_SECRET), ("IDENTITY_ISSUER", ISSUER), ("IDENTITY_AUDIENCE", AUDIENCE)];

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// A caller's token from the app's sign-in, signed with the shared secret.
fn caller_token(claims: Value) -> String {
    let mut all = json!({ "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 300, "sub": "alice" });
    all.as_object_mut().unwrap().extend(claims.as_object().unwrap().clone());
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &all,
        &EncodingKey::from_secret(CALLER_SECRET.as_bytes()),
    )
    .unwrap()
}

fn event(http_method: &str, authorization: Option<&str>) -> Value {
    let mut event = rest_event(http_method, "/prod/token", Some(ORIGIN));
    if let Some(authorization) = authorization {
        event["headers"]["Authorization"] = json!(authorization);
        event["multiValueHeaders"]["Authorization"] = json!([authorization]);
    }
    event
}

fn with_query(mut event: Value, pairs: &[(&str, &str)]) -> Value {
    let map: serde_json::Map<String, Value> =
        pairs.iter().map(|(k, v)| (k.to_string(), json!([v]))).collect();
    event["multiValueQueryStringParameters"] = Value::Object(map);
    event
}

/// The claims of a minted token, its signature checked with `secret`.
fn claims(answer: &Answer, secret: &str) -> Value {
    let token = answer.json()["access_token"].as_str().unwrap().to_string();
    let mut validation = Validation::new(Algorithm::HS256);
    validation.validate_aud = false;
    jsonwebtoken::decode::<Value>(&token, &DecodingKey::from_secret(secret.as_bytes()), &validation)
        .unwrap()
        .claims
}

fn assert_refused(answer: &Answer, status: u16, code: &str) {
    assert_eq!(answer.status, status, "{}", answer.body);
    let body = answer.json();
    assert_eq!(body["error"], code, "{body}");
    assert!(body.get("access_token").is_none(), "no token leaves for a refused caller: {body}");
    assert_eq!(answer.header("access-control-allow-origin"), Some(ORIGIN), "the page may read why");
}

#[tokio::test]
async fn a_verified_caller_gets_a_twilio_token_for_their_own_identity_by_get_or_post() {
    let service = service_with(twilio_env(SHARED_SECRET_MODE), ManualClock::new());
    let bearer = format!("Bearer {}", caller_token(json!({})));

    let got = call(&service, with_query(event("GET", Some(&bearer)), &[("room", "standup")])).await;
    assert_eq!(got.status, 200, "{}", got.body);
    let minted = claims(&got, TWILIO_SECRET);
    assert_eq!(minted["grants"], json!({ "identity": "alice", "video": { "room": "standup" } }));
    // No longer than the caller's own token (300 s from now), the TTL being an hour.
    let lifetime = got.json()["expires_in"].as_u64().unwrap();
    assert!((295..=300).contains(&lifetime), "{lifetime}");

    let mut post = event("POST", Some(&bearer));
    post["body"] = json!(r#"{"identity":"alice","room":"retro"}"#);
    let posted = call(&service, post).await;
    assert_eq!(posted.status, 200, "{}", posted.body);
    assert_eq!(claims(&posted, TWILIO_SECRET)["grants"]["video"]["room"], "retro");
    let bob = format!("Bearer {}", caller_token(json!({ "sub": "bob" })));
    let for_bob = call(&service, with_query(event("GET", Some(&bob)), &[("room", "standup")])).await;
    assert_eq!(claims(&for_bob, TWILIO_SECRET)["grants"]["identity"], "bob", "never another caller's token");

    let preflight = call(&service, event("OPTIONS", None)).await;
    assert_eq!(preflight.status, 204);
    assert_eq!(preflight.header("access-control-allow-methods"), Some("GET, POST, OPTIONS"));
    assert_eq!(
        preflight.header("access-control-allow-headers"),
        Some("Authorization, Content-Type, X-Api-Key")
    );
}

#[tokio::test]
async fn an_unproven_or_mismatched_caller_gets_no_token() {
    let service = service_with(twilio_env(SHARED_SECRET_MODE), ManualClock::new());
    let expired = format!("Bearer {}", caller_token(json!({ "exp": now() - 3600 })));
    let forged = {
        let token = caller_token(json!({}));
        format!("Bearer {}x", &token[..token.len() - 1])
    };
    let other_issuer = format!("Bearer {}", caller_token(json!({ "iss": "https://evil.test/" })));
    let unusable_subject = format!("Bearer {}", caller_token(json!({ "sub": "alice smith/../" })));
    for (authorization, status, code) in [
        (None, 401, "invalid_identity"),
        (Some("Basic YWxpY2U6cHc="), 401, "invalid_identity"),
        (Some(expired.as_str()), 401, "invalid_identity"),
        (Some(forged.as_str()), 401, "invalid_identity"),
        (Some(other_issuer.as_str()), 401, "invalid_identity"),
        (Some(unusable_subject.as_str()), 401, "invalid_identity"),
    ] {
        let answer = call(&service, event("GET", authorization)).await;
        assert_refused(&answer, status, code);
        let challenge = answer.header("www-authenticate").unwrap_or_default();
        assert!(challenge.starts_with("Bearer"), "{authorization:?}: {challenge:?}");
    }
    let bearer = format!("Bearer {}", caller_token(json!({})));
    let someone_else =
        call(&service, with_query(event("GET", Some(&bearer)), &[("identity", "mallory")])).await;
    assert_refused(&someone_else, 403, "identity_mismatch");
    let bad_room = call(&service, with_query(event("GET", Some(&bearer)), &[("room", "a room")])).await;
    assert_refused(&bad_room, 400, "bad_request");
    let mut not_json = event("POST", Some(&bearer));
    not_json["body"] = json!("identity=alice");
    assert_refused(&call(&service, not_json).await, 400, "bad_request");
}

#[tokio::test]
async fn in_trust_mode_the_request_names_the_identity_and_livekit_needs_a_room() {
    let service = service_with(livekit_env(&[("IDENTITY_MODE", "trust")]), ManualClock::new());
    let named = call(&service, with_query(event("GET", None), &[("identity", "Zoë"), ("room", "r1")])).await;
    assert_eq!(named.status, 200, "{}", named.body);
    let minted = claims(&named, LIVEKIT_SECRET);
    assert_eq!((minted["sub"].as_str(), minted["iss"].as_str()), (Some("Zoë"), Some("APIkey123")));
    assert_eq!(minted["video"], json!({ "roomJoin": true, "room": "r1" }));

    assert_refused(
        &call(&service, with_query(event("GET", None), &[("room", "r1")])).await,
        400,
        "identity_required",
    );
    let roomless = call(&service, with_query(event("GET", None), &[("identity", "zoe")])).await;
    assert_refused(&roomless, 400, "room_required");
    let long = "x".repeat(129);
    let too_long =
        call(&service, with_query(event("GET", None), &[("identity", &long), ("room", "r1")])).await;
    assert_refused(&too_long, 400, "bad_request");
    assert!(!too_long.body.contains(&long));
}

#[tokio::test]
async fn a_client_credentials_provider_still_answers_get_only() {
    let upstream = MockServer::start().await;
    let service = service(&upstream);
    let post = call(&service, event("POST", None)).await;
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, OPTIONS"));
}

#[tokio::test]
async fn the_built_bootstrap_mints_twilio_and_livekit_tokens_for_a_caller_proven_by_a_key_set() {
    let issuer = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/.well-known/jwks.json"))
        .respond_with(ResponseTemplate::new(200).set_body_string(JWKS))
        .expect(2) // once by each process
        .mount(&issuer)
        .await;
    let jwks = [
        ("IDENTITY_JWKS_URL", format!("{}/.well-known/jwks.json", issuer.uri())),
        ("IDENTITY_ISSUER", ISSUER.to_string()),
        ("IDENTITY_AUDIENCE", AUDIENCE.to_string()),
    ];
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("test-rsa".into());
    let claims_in = json!({ "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 300, "sub": "bob-42" });
    let signed = jsonwebtoken::encode(
        &header,
        &claims_in,
        &EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap(),
    );
    let bearer = format!("Bearer {}", signed.unwrap());

    for (environment, secret) in [(twilio_env(&[]), TWILIO_SECRET), (livekit_env(&[]), LIVEKIT_SECRET)] {
        let mut environment = environment;
        environment.extend(jwks.iter().map(|(k, v)| (k.to_string(), v.clone())));
        let runtime = RuntimeApi::start().await.unwrap();
        let mut child = spawn_bootstrap(Path::new(env!("CARGO_BIN_EXE_bootstrap")), &runtime, environment);
        let request = with_query(event("GET", Some(&bearer)), &[("room", "daily")]);
        let outcome = runtime.invoke(request, Duration::from_secs(30)).await.unwrap();
        let Outcome::Response { body, .. } = outcome else { panic!("{outcome:?}") };
        let answer = Answer::from_lambda(body);
        assert_eq!(answer.status, 200, "{}", answer.body);
        let minted = claims(&answer, secret);
        let identity = minted["grants"]["identity"].as_str().or(minted["sub"].as_str());
        assert_eq!(identity, Some("bob-42"), "{minted}");
        let refused = runtime.invoke(event("GET", None), Duration::from_secs(30)).await.unwrap();
        let Outcome::Response { body, .. } = refused else { panic!("{refused:?}") };
        assert_eq!(Answer::from_lambda(body).status, 401);
        child.start_kill().unwrap();
        let _ = child.wait().await;
    }
}

#[tokio::test]
async fn hostile_queries_bodies_and_headers_never_break_a_minting_function() {
    let services = [
        service_with(twilio_env(SHARED_SECRET_MODE), ManualClock::new()),
        service_with(livekit_env(&[("IDENTITY_MODE", "trust")]), ManualClock::new()),
    ];
    let huge = "x".repeat(70 * 1024);
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let bodies: [&str; 9] = [
        "",
        "null",
        "{}",
        r#"{"identity":{"a":1},"room":[1]}"#,
        r#"{"identity":"\u0000","room":"\ud800"}"#,
        r#"{"identity":"Zoë","room":"r","identity":"mallory"}"#,
        &deep,
        &huge,
        "\u{feff}{\"identity\":\"a\"}",
    ];
    let authorizations: [&str; 8] = [
        "Bearer",
        "Bearer ",
        "bearer a.b.c",
        "Bearer ....",
        "Bearer eyJhbGciOiJub25lIn0.e30.",
        "Bearer e30.e30.e30",
        &huge,
        "Bearer ü.ü.ü",
    ];
    let queries: [&[(&str, &str)]; 6] = [
        &[("identity", "")],
        &[("identity", "a"), ("identity", "b")],
        &[("room", &huge)],
        &[("identity", "../../etc/passwd"), ("room", "r")],
        &[("identity", "Zoë"), ("room", "東京")],
        &[("IDENTITY", "a"), ("Room", "r")],
    ];
    let mut answered = std::collections::BTreeSet::new();
    let mut events = Vec::new();
    for body in bodies {
        let mut post = event("POST", None);
        post["body"] = json!(body);
        events.push(post.clone());
        post["isBase64Encoded"] = json!(true);
        events.push(post);
    }
    for authorization in authorizations {
        events.push(with_query(event("GET", Some(authorization)), &[("room", "r")]));
    }
    for query in queries {
        events.push(with_query(event("GET", None), query));
    }
    events.extend(aws_fixtures().into_iter().map(|(_, event)| event));
    for service in &services {
        for hostile in &events {
            let raw = token_function::event::handle(service, hostile).await;
            if let Some(problem) = answer_problem(&raw) {
                panic!("{problem}: {raw}");
            }
            let answer = Answer::from_lambda(raw);
            assert!([200, 204, 400, 401, 403, 404, 405].contains(&answer.status), "{}", answer.body);
            assert!(!answer.body.contains(TWILIO_SECRET) && !answer.body.contains(LIVEKIT_SECRET));
            assert!(!answer.body.contains("xxxxxxxxxx"), "a huge input is not echoed");
            answered.insert(answer.status);
        }
    }
    assert!(answered.contains(&400) && answered.contains(&401) && answered.contains(&200), "{answered:?}");
}
