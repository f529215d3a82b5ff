//! Verifying callers' bearer tokens (`token_function::identity`) against a loopback JWKS
//! (wiremock) serving the test-only keys in `tests/fixtures/identity/`, and with a shared
//! HS256 secret. No real network.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use token_function::cache::Clock;
use token_function::config::Secret;
use token_function::config::settings::{JwtKeys, JwtSettings};
use token_function::identity::{
    IdentityCheck, IdentityError, KeySetProblem, MAX_AUTHORIZATION_BYTES, MAX_KEY_SET_BYTES, TokenProblem,
};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const RSA_PRIVATE: &str = include_str!("../fixtures/identity/test-only-rsa-private.pem");
const RSA_PUBLIC: &str = include_str!("../fixtures/identity/test-only-rsa-public.pem");
const OTHER_RSA_PRIVATE: &str = include_str!("../fixtures/identity/test-only-other-rsa-private.pem");
const EC_PRIVATE: &str = include_str!("../fixtures/identity/test-only-ec-private.pem");
const JWKS: &str = include_str!("../fixtures/identity/test-only-jwks.json");
/// The `kid`s the fixture JWKS gives its two keys.
const RSA_KID: &str = "test-rsa";
const EC_KID: &str = "test-ec";

const ISSUER: &str = "https://issuer.test/";
const AUDIENCE: &str = "tokendeploy-test";
const SUBJECT: &str = "alice-7f3a";
const JWKS_PATH: &str = "/.well-known/jwks.json";
const HS256_SECRET: &str = "test-only-shared-secret-0123456789abcdef";

/// A clock the test moves; `Instant` has no constructor, so it counts from a real one.
struct TestClock {
    start: Instant,
    offset: Mutex<Duration>,
}

impl TestClock {
    fn new() -> Arc<Self> {
        Arc::new(Self { start: Instant::now(), offset: Mutex::default() })
    }

    fn advance(&self, by: Duration) {
        *self.offset.lock().unwrap() += by;
    }
}

impl Clock for TestClock {
    fn now(&self) -> Instant {
        self.start + *self.offset.lock().unwrap()
    }
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// Valid claims for the configured issuer and audience, alive ten more minutes.
fn claims() -> Value {
    json!({ "iss": ISSUER, "aud": AUDIENCE, "sub": SUBJECT, "iat": now() - 5, "exp": now() + 600 })
}

/// `claims` with `changes` applied; a `null` removes the claim.
fn claims_with(changes: Value) -> Value {
    let mut claims = claims();
    for (name, value) in changes.as_object().unwrap() {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(name);
        } else {
            claims[name] = value.clone();
        }
    }
    claims
}

fn sign(algorithm: Algorithm, kid: Option<&str>, claims: &Value, key: &EncodingKey) -> String {
    let mut header = Header::new(algorithm);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

fn rs256(claims: &Value) -> String {
    sign(Algorithm::RS256, Some(RSA_KID), claims, &EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap())
}

fn es256(claims: &Value) -> String {
    sign(Algorithm::ES256, Some(EC_KID), claims, &EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()).unwrap())
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// What `verify` came to, as the handler will answer: the identity, or the status.
async fn outcome(check: &IdentityCheck, token: &str) -> Result<String, u16> {
    check.verify(Some(&bearer(token))).await.map_err(|error| error.status())
}

/// The token's problem, when it is refused as invalid (401).
async fn problem(check: &IdentityCheck, token: &str) -> TokenProblem {
    match check.verify(Some(&bearer(token))).await {
        Err(IdentityError::InvalidToken(problem)) => problem,
        other => panic!("expected an invalid token, got {other:?}"),
    }
}

fn jwks_settings(url: String) -> JwtSettings {
    JwtSettings {
        keys: JwtKeys::Jwks { url },
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        claim: "sub".into(),
    }
}

/// A loopback server answering the fixture JWKS.
async fn jwks_server() -> MockServer {
    let server = MockServer::start().await;
    serve_jwks(&server, ResponseTemplate::new(200).set_body_raw(JWKS, "application/json")).await;
    server
}

async fn serve_jwks(server: &MockServer, response: ResponseTemplate) {
    Mock::given(method("GET")).and(path(JWKS_PATH)).respond_with(response).mount(server).await;
}

/// The check against `server`'s JWKS, fetched on the test's clock.
fn check_against(server: &MockServer, clock: Arc<TestClock>) -> IdentityCheck {
    let settings = jwks_settings(format!("{}{JWKS_PATH}", server.uri()));
    IdentityCheck::with_clock(&settings, Duration::from_secs(2), clock).unwrap()
}

async fn fetches(server: &MockServer) -> usize {
    server.received_requests().await.unwrap().len()
}

#[tokio::test]
async fn valid_rs256_and_es256_tokens_prove_their_subject_with_one_fetch_of_the_key_set() {
    let server = jwks_server().await;
    let check = check_against(&server, TestClock::new());
    assert_eq!(outcome(&check, &rs256(&claims())).await, Ok(SUBJECT.into()));
    assert_eq!(outcome(&check, &es256(&claims())).await, Ok(SUBJECT.into()));
    assert_eq!(outcome(&check, &rs256(&claims())).await, Ok(SUBJECT.into()));
    assert_eq!(fetches(&server).await, 1);
    // The scheme is case-insensitive.
    assert_eq!(check.verify(Some(&format!("bearer {}", es256(&claims())))).await, Ok(SUBJECT.into()));
}

#[tokio::test]
async fn token_times_are_checked_with_thirty_seconds_of_leeway() {
    let server = jwks_server().await;
    let check = check_against(&server, TestClock::new());
    assert_eq!(
        problem(&check, &rs256(&claims_with(json!({ "exp": now() - 120 })))).await,
        TokenProblem::Expired
    );
    assert_eq!(
        problem(&check, &es256(&claims_with(json!({ "exp": now() - 45 })))).await,
        TokenProblem::Expired
    );
    assert_eq!(
        problem(&check, &rs256(&claims_with(json!({ "nbf": now() + 120 })))).await,
        TokenProblem::NotYetValid
    );
    assert_eq!(
        problem(&check, &rs256(&claims_with(json!({ "nbf": now() + 45 })))).await,
        TokenProblem::NotYetValid
    );
    // Within the leeway either way.
    let barely = claims_with(json!({ "exp": now() - 10, "nbf": now() + 10 }));
    assert_eq!(outcome(&check, &rs256(&barely)).await, Ok(SUBJECT.into()));
    assert_eq!(outcome(&check, &es256(&barely)).await, Ok(SUBJECT.into()));
    // `exp` is required and must be a time; `nbf`, when present, too.
    for exp in [json!(null), json!("tomorrow"), json!(-5), json!(true)] {
        assert_eq!(
            problem(&check, &rs256(&claims_with(json!({ "exp": exp })))).await,
            TokenProblem::NoExpiry
        );
    }
    for nbf in [json!("yesterday"), json!(-5), json!(false)] {
        assert_eq!(
            problem(&check, &rs256(&claims_with(json!({ "nbf": nbf })))).await,
            TokenProblem::InvalidNotBefore
        );
    }
    // An array or object where jsonwebtoken reads a time: its claims do not parse at all.
    for time in ["exp", "nbf"] {
        for value in [json!([now() + 600]), json!({ "at": now() })] {
            let token = rs256(&claims_with(json!({ time: value })));
            assert_eq!(problem(&check, &token).await, TokenProblem::Malformed, "{time}: {value}");
        }
    }
    assert_eq!(outcome(&check, &rs256(&claims_with(json!({ "nbf": now() - 60 })))).await, Ok(SUBJECT.into()));
}

#[tokio::test]
async fn the_issuer_must_be_the_configured_one_as_a_string() {
    let server = jwks_server().await;
    let check = check_against(&server, TestClock::new());
    for iss in [
        json!("https://evil.test/"),
        json!("https://issuer.test"),
        json!(null),
        json!(7),
        json!([ISSUER]),
        json!([ISSUER, "https://evil.test/"]),
    ] {
        let token = rs256(&claims_with(json!({ "iss": iss })));
        assert_eq!(problem(&check, &token).await, TokenProblem::WrongIssuer, "{iss}");
    }
}

#[tokio::test]
async fn the_audience_must_name_the_configured_one_alone_or_in_an_array() {
    let server = jwks_server().await;
    let check = check_against(&server, TestClock::new());
    for aud in [json!([AUDIENCE]), json!(["another-app", AUDIENCE])] {
        assert_eq!(outcome(&check, &rs256(&claims_with(json!({ "aud": aud })))).await, Ok(SUBJECT.into()));
    }
    for aud in [
        json!("another-app"),
        json!(["another-app"]),
        json!([]),
        json!(null),
        json!(7),
        json!("tokendeploy-test "),
    ] {
        let token = es256(&claims_with(json!({ "aud": aud })));
        assert_eq!(problem(&check, &token).await, TokenProblem::WrongAudience, "{aud}");
    }
}

#[tokio::test]
async fn a_token_signed_by_another_key_with_the_same_kid_is_refused() {
    let server = jwks_server().await;
    let check = check_against(&server, TestClock::new());
    let other = EncodingKey::from_rsa_pem(OTHER_RSA_PRIVATE.as_bytes()).unwrap();
    let forged = sign(Algorithm::RS256, Some(RSA_KID), &claims(), &other);
    assert_eq!(problem(&check, &forged).await, TokenProblem::BadSignature);
    assert_eq!(outcome(&check, &forged).await, Err(401));

    // A valid token's claims changed after signing.
    let token = rs256(&claims());
    let mut parts: Vec<&str> = token.split('.').collect();
    let tampered = URL_SAFE_NO_PAD.encode(claims_with(json!({ "sub": "mallory" })).to_string());
    parts[1] = &tampered;
    assert_eq!(problem(&check, &parts.join(".")).await, TokenProblem::BadSignature);
    // No signature at all.
    assert_eq!(problem(&check, &format!("{}.{}.", parts[0], parts[2])).await, TokenProblem::BadSignature);
}

#[tokio::test]
async fn an_unknown_kid_refreshes_the_key_set_at_most_once_a_minute() {
    let server = jwks_server().await;
    let clock = TestClock::new();
    let check = check_against(&server, clock.clone());
    let rsa = EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap();
    let unknown = sign(Algorithm::RS256, Some("rotated-in"), &claims(), &rsa);

    assert_eq!(outcome(&check, &rs256(&claims())).await, Ok(SUBJECT.into()));
    assert_eq!(fetches(&server).await, 1);

    clock.advance(Duration::from_secs(61));
    assert_eq!(problem(&check, &unknown).await, TokenProblem::UnknownKey);
    assert_eq!(fetches(&server).await, 2, "one refresh for the unknown kid");

    clock.advance(Duration::from_secs(30));
    for _ in 0..5 {
        assert_eq!(problem(&check, &unknown).await, TokenProblem::UnknownKey);
    }
    assert_eq!(fetches(&server).await, 2, "no second refresh within the minute");
    assert_eq!(outcome(&check, &es256(&claims())).await, Ok(SUBJECT.into()));

    clock.advance(Duration::from_secs(31));
    assert_eq!(problem(&check, &unknown).await, TokenProblem::UnknownKey);
    assert_eq!(fetches(&server).await, 3, "one more after the minute");
}

#[tokio::test]
async fn the_first_token_naming_an_unknown_kid_fetches_the_set_once() {
    let server = jwks_server().await;
    let check = check_against(&server, TestClock::new());
    let rsa = EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap();
    let unknown = sign(Algorithm::RS256, Some("rotated-in"), &claims(), &rsa);
    assert_eq!(problem(&check, &unknown).await, TokenProblem::UnknownKey);
    assert_eq!(problem(&check, &unknown).await, TokenProblem::UnknownKey);
    assert_eq!(fetches(&server).await, 1);
    // No kid at all: refused before any key is looked for.
    let no_kid = sign(Algorithm::RS256, None, &claims(), &rsa);
    assert_eq!(problem(&check, &no_kid).await, TokenProblem::NoKeyId);
    let empty_kid = sign(Algorithm::RS256, Some(""), &claims(), &rsa);
    assert_eq!(problem(&check, &empty_kid).await, TokenProblem::NoKeyId);
}

#[tokio::test]
async fn a_key_set_older_than_an_hour_is_fetched_again() {
    let server = jwks_server().await;
    let clock = TestClock::new();
    let check = check_against(&server, clock.clone());
    assert_eq!(outcome(&check, &rs256(&claims())).await, Ok(SUBJECT.into()));
    clock.advance(Duration::from_secs(59 * 60));
    assert_eq!(outcome(&check, &rs256(&claims())).await, Ok(SUBJECT.into()));
    assert_eq!(fetches(&server).await, 1);
    clock.advance(Duration::from_secs(60));
    assert_eq!(outcome(&check, &rs256(&claims())).await, Ok(SUBJECT.into()));
    assert_eq!(fetches(&server).await, 2);

    // Past the hour with the set's server failing: the stale keys are not used.
    server.reset().await;
    serve_jwks(&server, ResponseTemplate::new(500)).await;
    clock.advance(Duration::from_secs(60 * 60));
    assert_eq!(outcome(&check, &rs256(&claims())).await, Err(503));
}

/// `{"alg":"none"}` (and variants) by hand, with the valid claims and no signature.
#[tokio::test]
async fn alg_none_is_refused() {
    let server = jwks_server().await;
    let check = check_against(&server, TestClock::new());
    let payload = URL_SAFE_NO_PAD.encode(claims().to_string());
    for header in [
        r#"{"alg":"none"}"#,
        r#"{"alg":"none","typ":"JWT","kid":"test-rsa"}"#,
        r#"{"alg":"NONE","kid":"test-rsa"}"#,
        r#"{"typ":"JWT","kid":"test-rsa"}"#,
    ] {
        let header = URL_SAFE_NO_PAD.encode(header);
        for token in [format!("{header}.{payload}."), format!("{header}.{payload}.c2ln")] {
            assert_eq!(problem(&check, &token).await, TokenProblem::AlgorithmNotAllowed, "{token}");
        }
    }
    assert_eq!(fetches(&server).await, 0, "refused before any key is needed");

    let secret_check = IdentityCheck::new(&hs256_settings(HS256_SECRET), Duration::from_secs(1)).unwrap();
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#);
    assert_eq!(
        problem(&secret_check, &format!("{header}.{payload}.")).await,
        TokenProblem::AlgorithmNotAllowed
    );
}

/// The classic confusion attack: a token that says HS256, "signed" with the RSA public key
/// (PEM, DER, or the modulus) as its HMAC secret, must never be checked with that key as one.
#[tokio::test]
async fn hs256_signed_with_the_public_key_as_hmac_secret_is_refused() {
    let server = jwks_server().await;
    let check = check_against(&server, TestClock::new());
    let pem_body: String = RSA_PUBLIC.lines().filter(|line| !line.starts_with("-----")).collect();
    let der = STANDARD.decode(pem_body).unwrap();
    let jwks: Value = serde_json::from_str(JWKS).unwrap();
    let modulus = URL_SAFE_NO_PAD.decode(jwks["keys"][0]["n"].as_str().unwrap()).unwrap();
    for secret in [RSA_PUBLIC.as_bytes(), RSA_PUBLIC.trim_end().as_bytes(), &der, &modulus] {
        for kid in [Some(RSA_KID), Some(EC_KID), None] {
            let token = sign(Algorithm::HS256, kid, &claims(), &EncodingKey::from_secret(secret));
            assert_eq!(problem(&check, &token).await, TokenProblem::AlgorithmNotAllowed);
            assert_eq!(outcome(&check, &token).await, Err(401));
        }
    }
    // The same with each key's family crossed: an ES256 token naming the RSA key, and back.
    let ec = EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()).unwrap();
    let rsa = EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap();
    let crossed = [
        sign(Algorithm::ES256, Some(RSA_KID), &claims(), &ec),
        sign(Algorithm::RS256, Some(EC_KID), &claims(), &rsa),
    ];
    for token in crossed {
        assert_eq!(problem(&check, &token).await, TokenProblem::KeyAlgorithmMismatch);
    }
    // Other algorithms of an allowed family are still not allowed.
    for algorithm in [Algorithm::RS384, Algorithm::RS512, Algorithm::PS256] {
        let token = sign(algorithm, Some(RSA_KID), &claims(), &rsa);
        assert_eq!(problem(&check, &token).await, TokenProblem::AlgorithmNotAllowed, "{algorithm:?}");
    }
}

#[tokio::test]
async fn headers_that_hold_no_bearer_token_are_refused_before_any_fetch() {
    let server = jwks_server().await;
    let check = check_against(&server, TestClock::new());
    let valid = rs256(&claims());
    let huge = format!("Bearer {valid}{}", "A".repeat(MAX_AUTHORIZATION_BYTES));
    let cases: Vec<(Option<String>, IdentityError, Option<&str>)> = vec![
        (None, IdentityError::Missing, Some("Bearer")),
        (Some("Basic eHl6".into()), IdentityError::NotBearer, Some("Bearer")),
        (Some("Basic xyz".into()), IdentityError::NotBearer, Some("Bearer")),
        (Some("".into()), IdentityError::NotBearer, Some("Bearer")),
        (Some(valid.clone()), IdentityError::NotBearer, Some("Bearer")),
        (
            Some("Bearer".into()),
            IdentityError::InvalidToken(TokenProblem::NoToken),
            Some(r#"Bearer error="invalid_token", error_description="no token after Bearer""#),
        ),
        (Some("Bearer ".into()), IdentityError::InvalidToken(TokenProblem::NoToken), None),
        (Some("Bearer garbage".into()), IdentityError::InvalidToken(TokenProblem::Malformed), None),
        (Some("Bearer a.b.c".into()), IdentityError::InvalidToken(TokenProblem::Malformed), None),
        (Some("Bearer ...".into()), IdentityError::InvalidToken(TokenProblem::Malformed), None),
        (
            Some("Bearer e30.e30.e30".into()),
            IdentityError::InvalidToken(TokenProblem::AlgorithmNotAllowed),
            None,
        ),
        (Some(format!("Bearer {valid} {valid}")), IdentityError::InvalidToken(TokenProblem::Malformed), None),
        (Some(format!("Bearer {valid}\n")), IdentityError::InvalidToken(TokenProblem::Malformed), None),
        (
            Some(huge),
            IdentityError::InvalidToken(TokenProblem::HeaderTooLong),
            Some(
                r#"Bearer error="invalid_token", error_description="the Authorization header is longer than 8 KiB""#,
            ),
        ),
    ];
    for (header, expected, www_authenticate) in cases {
        let error = check.verify(header.as_deref()).await.unwrap_err();
        assert_eq!(error, expected, "{header:?}");
        assert_eq!(error.status(), 401);
        if let Some(www_authenticate) = www_authenticate {
            assert_eq!(error.www_authenticate().as_deref(), Some(www_authenticate));
        }
    }
    assert_eq!(fetches(&server).await, 0);
}

#[tokio::test]
async fn the_identity_claim_must_be_a_non_empty_string() {
    let server = jwks_server().await;
    let check = check_against(&server, TestClock::new());
    for sub in [json!(null), json!(""), json!(42), json!(true)] {
        let token = rs256(&claims_with(json!({ "sub": sub })));
        assert_eq!(problem(&check, &token).await, TokenProblem::NoIdentity, "{sub}");
    }
    // jsonwebtoken reads `sub` as a string when present: an array or object does not parse.
    for sub in [json!(["alice"]), json!({ "id": "alice" })] {
        let token = rs256(&claims_with(json!({ "sub": sub })));
        assert_eq!(problem(&check, &token).await, TokenProblem::Malformed, "{sub}");
    }

    // Another claim, when configured.
    let mut settings = jwks_settings(format!("{}{JWKS_PATH}", server.uri()));
    settings.claim = "email".into();
    let check = IdentityCheck::new(&settings, Duration::from_secs(2)).unwrap();
    let token = es256(&claims_with(json!({ "email": "alice@example.com" })));
    assert_eq!(outcome(&check, &token).await, Ok("alice@example.com".into()));
    assert_eq!(problem(&check, &es256(&claims())).await, TokenProblem::NoIdentity);
}

#[tokio::test]
async fn a_key_set_that_cannot_be_fetched_is_a_503_and_the_next_request_tries_again() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(JWKS_PATH))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    serve_jwks(&server, ResponseTemplate::new(200).set_body_raw(JWKS, "application/json")).await;
    let check = check_against(&server, TestClock::new());
    let error = check.verify(Some(&bearer(&rs256(&claims())))).await.unwrap_err();
    assert_eq!(error, IdentityError::KeysUnavailable(KeySetProblem::Status(500)));
    assert_eq!((error.status(), error.www_authenticate()), (503, None));
    // Up again: the very next request fetches, with no minute to wait.
    assert_eq!(outcome(&check, &rs256(&claims())).await, Ok(SUBJECT.into()));
    assert_eq!(fetches(&server).await, 2);
}

#[tokio::test]
async fn a_key_set_server_that_is_not_there_is_a_503() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}{JWKS_PATH}", closed.local_addr().unwrap());
    drop(closed);
    let check = IdentityCheck::new(&jwks_settings(url), Duration::from_secs(2)).unwrap();
    let error = check.verify(Some(&bearer(&rs256(&claims())))).await.unwrap_err();
    assert_eq!(error, IdentityError::KeysUnavailable(KeySetProblem::Unreachable));
    assert_eq!(error.status(), 503);
}

#[tokio::test]
async fn a_slow_key_set_server_is_a_503_after_the_timeout() {
    let server = MockServer::start().await;
    serve_jwks(
        &server,
        ResponseTemplate::new(200).set_body_raw(JWKS, "application/json").set_delay(Duration::from_secs(5)),
    )
    .await;
    let settings = jwks_settings(format!("{}{JWKS_PATH}", server.uri()));
    let check = IdentityCheck::new(&settings, Duration::from_millis(200)).unwrap();
    let error = check.verify(Some(&bearer(&rs256(&claims())))).await.unwrap_err();
    assert_eq!(error, IdentityError::KeysUnavailable(KeySetProblem::Timeout));
}

#[tokio::test]
async fn an_answer_that_is_not_a_key_set_is_a_503() {
    let too_big = format!(r#"{{"keys":[],"padding":"{}"}}"#, "x".repeat(MAX_KEY_SET_BYTES));
    for (response, expected) in [
        (
            ResponseTemplate::new(200).set_body_raw("<html>sign in</html>", "text/html"),
            KeySetProblem::NotAKeySet,
        ),
        (
            ResponseTemplate::new(200).set_body_raw(r#"{"issuer":"x"}"#, "application/json"),
            KeySetProblem::NotAKeySet,
        ),
        (ResponseTemplate::new(200).set_body_raw(too_big, "application/json"), KeySetProblem::TooLarge),
        (ResponseTemplate::new(404), KeySetProblem::Status(404)),
        (
            ResponseTemplate::new(302).insert_header("location", "http://127.0.0.1:9/jwks.json"),
            KeySetProblem::Status(302),
        ),
    ] {
        let server = MockServer::start().await;
        serve_jwks(&server, response).await;
        let check = check_against(&server, TestClock::new());
        for _ in 0..2 {
            let error = check.verify(Some(&bearer(&rs256(&claims())))).await.unwrap_err();
            assert_eq!(error, IdentityError::KeysUnavailable(expected));
            assert_eq!(error.status(), 503);
        }
        assert_eq!(fetches(&server).await, 2, "{expected:?}: nothing kept, each request tries again");
    }
}

#[tokio::test]
async fn a_failed_refresh_keeps_the_keys_already_fetched() {
    let server = jwks_server().await;
    let clock = TestClock::new();
    let check = check_against(&server, clock.clone());
    assert_eq!(outcome(&check, &rs256(&claims())).await, Ok(SUBJECT.into()));
    server.reset().await;
    serve_jwks(&server, ResponseTemplate::new(502)).await;
    clock.advance(Duration::from_secs(61));
    let rsa = EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap();
    let unknown = sign(Algorithm::RS256, Some("rotated-in"), &claims(), &rsa);
    assert_eq!(outcome(&check, &unknown).await, Err(503));
    assert_eq!(outcome(&check, &unknown).await, Err(503), "within the minute: no refresh, still unknown");
    assert_eq!(fetches(&server).await, 1);
    assert_eq!(outcome(&check, &rs256(&claims())).await, Ok(SUBJECT.into()));
    assert_eq!(outcome(&check, &es256(&claims())).await, Ok(SUBJECT.into()));
}

#[tokio::test]
async fn concurrent_requests_share_one_fetch_whether_it_succeeds_or_fails() {
    for (status, expected) in [(200, Ok(SUBJECT.to_string())), (500, Err(503))] {
        let server = MockServer::start().await;
        let response = ResponseTemplate::new(status)
            .set_body_raw(JWKS, "application/json")
            .set_delay(Duration::from_millis(300));
        serve_jwks(&server, response).await;
        let check = Arc::new(check_against(&server, TestClock::new()));
        let requests: Vec<_> = (0..16)
            .map(|n| {
                let check = Arc::clone(&check);
                let token = if n % 2 == 0 { rs256(&claims()) } else { es256(&claims()) };
                tokio::spawn(async move { outcome(&check, &token).await })
            })
            .collect();
        for request in requests {
            assert_eq!(request.await.unwrap(), expected);
        }
        assert_eq!(fetches(&server).await, 1, "HTTP {status}");
    }
}

fn hs256_settings(secret: &str) -> JwtSettings {
    JwtSettings {
        keys: JwtKeys::Hs256(Secret::new(secret)),
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        claim: "sub".into(),
    }
}

#[tokio::test]
async fn a_shared_secret_checks_hs256_tokens_only() {
    let check = IdentityCheck::new(&hs256_settings(HS256_SECRET), Duration::from_secs(1)).unwrap();
    let secret = EncodingKey::from_secret(HS256_SECRET.as_bytes());
    assert_eq!(outcome(&check, &sign(Algorithm::HS256, None, &claims(), &secret)).await, Ok(SUBJECT.into()));
    // A kid is not needed, and is ignored.
    assert_eq!(
        outcome(&check, &sign(Algorithm::HS256, Some("any"), &claims(), &secret)).await,
        Ok(SUBJECT.into())
    );

    let wrong = EncodingKey::from_secret(b"test-only-another-secret-0123456789abcdef");
    assert_eq!(
        problem(&check, &sign(Algorithm::HS256, None, &claims(), &wrong)).await,
        TokenProblem::BadSignature
    );
    for algorithm in [Algorithm::HS384, Algorithm::HS512] {
        let token = sign(algorithm, None, &claims(), &secret);
        assert_eq!(problem(&check, &token).await, TokenProblem::AlgorithmNotAllowed);
    }
    assert_eq!(problem(&check, &rs256(&claims())).await, TokenProblem::AlgorithmNotAllowed);
    assert_eq!(problem(&check, &es256(&claims())).await, TokenProblem::AlgorithmNotAllowed);
    let expired = sign(Algorithm::HS256, None, &claims_with(json!({ "exp": now() - 120 })), &secret);
    assert_eq!(problem(&check, &expired).await, TokenProblem::Expired);
    let elsewhere = sign(Algorithm::HS256, None, &claims_with(json!({ "aud": "other" })), &secret);
    assert_eq!(problem(&check, &elsewhere).await, TokenProblem::WrongAudience);
}

/// Errors name what was wrong, never the token or what its claims say.
#[tokio::test]
async fn errors_never_repeat_the_token_or_its_claims() {
    let server = jwks_server().await;
    let check = check_against(&server, TestClock::new());
    let leaky = claims_with(json!({
        "iss": "https://issuer-secret-9q.test/",
        "aud": "audience-secret-9q",
        "sub": "subject-secret-9q",
    }));
    let tokens = [
        rs256(&leaky),
        rs256(&claims_with(json!({ "aud": "audience-secret-9q", "sub": "subject-secret-9q" }))),
        rs256(&claims_with(json!({ "exp": now() - 600, "sub": "subject-secret-9q" }))),
        sign(Algorithm::HS256, Some("kid-secret-9q"), &leaky, &EncodingKey::from_secret(b"k")),
        sign(
            Algorithm::RS256,
            Some("kid-secret-9q"),
            &leaky,
            &EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap(),
        ),
    ];
    for token in tokens {
        let error = check.verify(Some(&bearer(&token))).await.unwrap_err();
        for shown in [error.to_string(), format!("{error:?}"), error.www_authenticate().unwrap_or_default()] {
            assert!(!shown.contains("secret-9q") && !shown.contains(&token[..20]), "{shown}");
        }
    }
}

/// Tokens with characters changed, parts cut, dropped or repeated: always a 401, never a panic.
#[tokio::test]
async fn mangled_tokens_are_refused_without_a_panic() {
    let server = jwks_server().await;
    let check = check_against(&server, TestClock::new());
    let secret_check = IdentityCheck::new(&hs256_settings(HS256_SECRET), Duration::from_secs(1)).unwrap();
    let secret = EncodingKey::from_secret(HS256_SECRET.as_bytes());
    let originals = [rs256(&claims()), es256(&claims()), sign(Algorithm::HS256, None, &claims(), &secret)];
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.+/= \"{}";
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut random = move |below: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % below as u64) as usize
    };
    for round in 0..1500 {
        let mut token = originals[round % 3].clone().into_bytes();
        match round % 4 {
            0 | 1 => {
                for _ in 0..=random(3) {
                    let at = random(token.len());
                    token[at] = ALPHABET[random(ALPHABET.len())];
                }
            }
            2 => token.truncate(random(token.len())),
            _ => {
                let at = random(token.len());
                let copy = token[at..].to_vec();
                token.extend_from_slice(&copy);
            }
        }
        let header = format!("Bearer {}", String::from_utf8(token).unwrap());
        for check in [&check, &secret_check] {
            match check.verify(Some(&header)).await {
                Err(error) => assert_eq!(error.status(), 401, "{error}"),
                // A change that decodes to the same bytes (base64's last character) still verifies.
                Ok(identity) => assert_eq!(identity, SUBJECT),
            }
        }
    }
    assert_eq!(fetches(&server).await, 1, "no refresh: the test clock never moved");
}
