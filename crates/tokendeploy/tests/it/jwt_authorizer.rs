//! `--gateway http` with callers proven by a key set: the HTTP API's own JWT authorizer turns
//! away a request without a valid token before the function runs (the emulator playing API
//! Gateway's checks: the issuer's discovery document, RSA signatures, issuer, audience, expiry),
//! converges, repairs a route opened by hand, and goes with `--no-jwt-authorizer`.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::answers::{Got, ORIGIN, deploy, get, token_of, with};
use crate::gateways::changed;
use crate::support::*;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../function/tests/fixtures/identity/");
const HTTP: [&str; 2] = ["--gateway", "http"];

/// An OIDC issuer on loopback: its discovery document and its key set (an RSA key and a P-256
/// key, both of which the function accepts).
pub(crate) async fn issuer() -> MockServer {
    let server = MockServer::start().await;
    let jwks = std::fs::read_to_string(format!("{FIXTURES}test-only-jwks.json")).unwrap();
    let discovery = json!({
        "issuer": server.uri(),
        "jwks_uri": format!("{}/.well-known/jwks.json", server.uri()),
    });
    Mock::given(method("GET"))
        .and(path("/.well-known/openid-configuration"))
        .respond_with(ResponseTemplate::new(200).set_body_json(discovery))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/.well-known/jwks.json"))
        .respond_with(ResponseTemplate::new(200).set_body_string(jwks))
        .mount(&server)
        .await;
    server
}

/// A caller's bearer token from the issuer, signed by the fixture key of `algorithm`.
fn bearer(issuer: &MockServer, algorithm: Algorithm, claims: Value) -> String {
    let (file, kid) = match algorithm {
        Algorithm::RS256 => ("test-only-rsa-private.pem", "test-rsa"),
        _ => ("test-only-ec-private.pem", "test-ec"),
    };
    let pem = std::fs::read(format!("{FIXTURES}{file}")).unwrap();
    let key = match algorithm {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem).unwrap(),
        _ => EncodingKey::from_ec_pem(&pem).unwrap(),
    };
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let mut all = json!({"iss": issuer.uri(), "aud": "app", "sub": "bob", "iat": now, "exp": now + 600});
    all.as_object_mut().unwrap().extend(claims.as_object().unwrap().clone());
    let header = Header { kid: Some(kid.into()), ..Header::new(algorithm) };
    format!("Bearer {}", jsonwebtoken::encode(&header, &all, &key).unwrap())
}

/// Turned away by API Gateway's authorizer, not the function: its own 401 and header, with the
/// API's CORS so the allowed origin's page can read it.
fn assert_turned_away_by_the_gateway(got: &Got, context: &str) {
    assert_eq!((got.status, &got.json), (401, &json!({"message": "Unauthorized"})), "{context}");
    let challenge = got.headers["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("error=\"invalid_token\""), "{context}: {challenge}");
    assert_eq!(got.headers["access-control-allow-origin"], ORIGIN, "{context}");
}

/// LiveKit, its callers proven by `issuer`'s key set, for the allowed origin.
pub(crate) fn livekit_proven_by(harness: &Harness, issuer: &MockServer) -> Vec<(String, String)> {
    with(
        harness,
        &[
            ("TOKEN_PROVIDER", "livekit"),
            ("LIVEKIT_API_KEY", "APIkey123"),
            ("LIVEKIT_API_SECRET", "livekit-secret-0123456789abcdef0123456789"),
            ("IDENTITY_JWKS_URL", &format!("{}/.well-known/jwks.json", issuer.uri())),
            ("IDENTITY_ISSUER", &issuer.uri()),
            ("IDENTITY_AUDIENCE", "app"),
            ("ALLOWED_ORIGINS", ORIGIN),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn an_http_apis_jwt_authorizer_turns_away_unproven_callers_before_the_function_and_is_repaired() {
    let harness = Harness::start();
    let issuer = issuer().await;
    let env = livekit_proven_by(&harness, &issuer);
    let made = deploy(&harness, "guarded", &env, &HTTP);
    let url = format!("{}?room=standup", made["invoke_url"].as_str().unwrap());
    let origin = ("origin", ORIGIN);

    let unproven = [
        ("no token", None),
        ("another audience", Some(bearer(&issuer, Algorithm::RS256, json!({"aud": "other-app"})))),
        ("expired", Some(bearer(&issuer, Algorithm::RS256, json!({"exp": 1_000_000_000u64})))),
        ("another issuer", Some(bearer(&issuer, Algorithm::RS256, json!({"iss": "https://evil.example"})))),
        // The function would take it; API Gateway checks RSA signatures only (docs/gateways-and-costs.md).
        ("signed with ES256", Some(bearer(&issuer, Algorithm::ES256, json!({})))),
        ("garbage", Some("Bearer not.a.token".to_string())),
    ];
    for (context, authorization) in &unproven {
        let mut headers = vec![origin];
        headers.extend(authorization.as_deref().map(|value| ("authorization", value)));
        assert_turned_away_by_the_gateway(&get(&url, &headers).await, context);
    }
    let proven = bearer(&issuer, Algorithm::RS256, json!({}));
    let minted = get(&url, &[origin, ("authorization", &proven)]).await;
    assert!(!token_of(&minted).is_empty());

    let again = deploy(&harness, "guarded", &env, &HTTP);
    assert!(changed(&again).is_empty(), "{again}");

    // By hand: a route opened, the authorizer set to another audience.
    let aws = harness.aws(REGION).await;
    let id = made["api_id"].as_str().unwrap();
    let routes = aws.apigatewayv2.get_routes().api_id(id).send().await.unwrap();
    let route = routes.items().iter().find(|r| r.route_key() == Some("GET /token")).unwrap();
    let open = aws_sdk_apigatewayv2::types::AuthorizationType::None;
    let opened = aws.apigatewayv2.update_route().api_id(id).route_id(route.route_id().unwrap());
    opened.authorization_type(open).send().await.unwrap();
    let authorizer = route.authorizer_id().unwrap();
    let anyone = aws_sdk_apigatewayv2::types::JwtConfiguration::builder().audience("anyone").build();
    let loosened = aws.apigatewayv2.update_authorizer().api_id(id).authorizer_id(authorizer);
    loosened.jwt_configuration(anyone).send().await.unwrap();
    let function_refuses = get(&url, &[origin]).await;
    assert_eq!((function_refuses.status, &function_refuses.json["error"]), (401, &json!("invalid_identity")));
    let zip = function_zip().to_str().unwrap().to_string();
    let status = harness.run_with(
        &["status", "--output", "json", "--zip", &zip, "--name", "guarded", "--gateway", "http"],
        &env,
    );
    assert_eq!(status.code, 3, "{}", status.stdout);
    let reasons = status.json()["drift"].to_string();
    assert!(reasons.contains("the JWT authorizer checks another issuer, audience or header"), "{reasons}");
    let repaired = deploy(&harness, "guarded", &env, &HTTP);
    assert_eq!(changed(&repaired), ["http_routes"]);
    assert_turned_away_by_the_gateway(&get(&url, &[origin]).await, "after the repair");

    // Left to the function alone: the routes open, our authorizer gone; the function still
    // refuses an unproven caller with its own answer, and serves a proven one.
    let mut args = HTTP.to_vec();
    args.push("--no-jwt-authorizer");
    let unguarded = deploy(&harness, "guarded", &env, &args);
    assert_eq!(changed(&unguarded), ["http_routes"]);
    let authorizers = aws.apigatewayv2.get_authorizers().api_id(id).send().await.unwrap();
    assert!(authorizers.items().is_empty(), "{authorizers:?}");
    let refused = get(&url, &[origin]).await;
    assert_eq!((refused.status, &refused.json["error"]), (401, &json!("invalid_identity")));
    let es256 = bearer(&issuer, Algorithm::ES256, json!({}));
    assert!(!token_of(&get(&url, &[origin, ("authorization", &es256)]).await).is_empty());
}
