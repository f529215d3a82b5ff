//! See it answer: a stack `up` deploys serves tokens through the URL it prints, the emulator
//! (`moto_server.py` with `emulator/`) serving it as API Gateway and running the function from
//! the zip Lambda holds; `verify` and `logs` tell whether, and how, it answers.

use std::time::Duration;

use serde_json::{Value, json};
use wiremock::MockServer;

use crate::support::*;

pub(crate) const ORIGIN: &str = "https://app.example.com";
const LIVEKIT_SECRET: &str = "livekit-secret-0123456789abcdef0123456789";
const CALLER_SECRET: &str = "test-only-caller-secret-0123456789abcdef";

/// The harness's environment with `more` set over it.
pub(crate) fn with(harness: &Harness, more: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env = harness.env();
    for (name, value) in more {
        env.retain(|(k, _)| k != name);
        env.push((name.to_string(), value.to_string()));
    }
    env
}

pub(crate) fn dolby(harness: &Harness, upstream: &MockServer) -> Vec<(String, String)> {
    let token_url = format!("{}/v1/oauth2/token", upstream.uri());
    with(harness, &[("TOKEN_URL", &token_url)])
}

fn livekit(harness: &Harness, identity_mode: &str) -> Vec<(String, String)> {
    with(
        harness,
        &[
            ("TOKEN_PROVIDER", "livekit"),
            ("LIVEKIT_API_KEY", "APIkey123"),
            ("LIVEKIT_API_SECRET", LIVEKIT_SECRET),
            ("IDENTITY_MODE", identity_mode),
            ("IDENTITY_HS256_SECRET", CALLER_SECRET),
            ("IDENTITY_ISSUER", "https://issuer.test/"),
            ("IDENTITY_AUDIENCE", "app"),
        ],
    )
}

/// `up` of stack `name` with `env` and `args`; its JSON report.
pub(crate) fn deploy(harness: &Harness, name: &str, env: &[(String, String)], args: &[&str]) -> Value {
    let mut all = vec!["--name", name];
    all.extend_from_slice(args);
    let run = harness.up_with(&all, env);
    run.assert_success().assert_no_secret();
    run.json()
}

pub(crate) struct Got {
    pub(crate) status: u16,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) json: Value,
}

pub(crate) async fn get(url: &str, headers: &[(&str, &str)]) -> Got {
    ask(reqwest::Method::GET, url, headers).await
}

pub(crate) async fn ask(method: reqwest::Method, url: &str, headers: &[(&str, &str)]) -> Got {
    let mut request = reqwest::Client::new().request(method, url).timeout(Duration::from_secs(30));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let answer = request.send().await.unwrap();
    let (status, headers) = (answer.status().as_u16(), answer.headers().clone());
    let json = serde_json::from_slice(&answer.bytes().await.unwrap()).unwrap_or(Value::Null);
    Got { status, headers, json }
}

pub(crate) fn token_of(got: &Got) -> &str {
    assert_eq!(got.status, 200, "{}", got.json);
    got.json["access_token"].as_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn each_provider_serves_a_token_through_the_url_up_prints() {
    let harness = Harness::start();
    let upstream = upstream().await;
    let made = deploy(&harness, "dolby", &dolby(&harness, &upstream), &[]);
    let url = made["invoke_url"].as_str().unwrap();
    assert!(url.starts_with(&format!("{}/restapis/", harness.moto.endpoint())), "{url}");
    assert!(made["aws_invoke_url"].as_str().unwrap().starts_with("https://"), "{made}");
    assert_eq!(token_of(&get(url, &[]).await), "upstream-token");

    let oauth2 = dolby(&harness, &upstream);
    let oauth2 = [oauth2, vec![("TOKEN_PROVIDER".into(), "oauth2".into())]].concat();
    let made = deploy(&harness, "oauth2", &oauth2, &[]);
    assert_eq!(token_of(&get(made["invoke_url"].as_str().unwrap(), &[]).await), "upstream-token");

    let twilio = with(
        &harness,
        &[
            ("TOKEN_PROVIDER", "twilio"),
            ("TWILIO_ACCOUNT_SID", "AC0123456789abcdef0123456789abcdef"),
            ("TWILIO_API_KEY", "SK0123456789abcdef0123456789abcdef"),
            ("TWILIO_API_SECRET", SECRET),
            ("IDENTITY_MODE", "trust"),
        ],
    );
    let made = deploy(&harness, "twilio", &twilio, &[]);
    let minted = get(&format!("{}?identity=alice", made["invoke_url"].as_str().unwrap()), &[]).await;
    let twilio_claims = claims(token_of(&minted));
    assert_eq!(twilio_claims["grants"]["identity"], "alice", "{twilio_claims}");

    // Callers prove who they are: without a sign-in a 401, with one a token for its subject.
    let made = deploy(&harness, "livekit", &livekit(&harness, "jwt"), &[]);
    let url = format!("{}?room=standup", made["invoke_url"].as_str().unwrap());
    let refused = get(&url, &[]).await;
    assert_eq!((refused.status, &refused.json["error"]), (401, &json!("invalid_identity")));
    assert!(refused.headers["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
    let bearer = format!("Bearer {}", caller("bob"));
    let minted = get(&url, &[("authorization", &bearer)]).await;
    let claims = claims(token_of(&minted));
    assert_eq!((claims["sub"].as_str(), claims["video"]["room"].as_str()), (Some("bob"), Some("standup")));
}

/// The claims of a JWT, unverified: what the function put in the token it minted.
fn claims(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap())
        .unwrap()
}

/// A caller's token from the app's sign-in, signed with the shared secret the stack checks.
fn caller(subject: &str) -> String {
    let claims =
        json!({"iss": "https://issuer.test/", "aud": "app", "sub": subject, "exp": 4_000_000_000u64});
    let key = jsonwebtoken::EncodingKey::from_secret(CALLER_SECRET.as_bytes());
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn api_gateway_answers_what_it_answers_by_itself_readable_by_the_allowed_origin() {
    let harness = Harness::start();
    let upstream = upstream().await;
    let env = with(
        &harness,
        &[("ALLOWED_ORIGINS", ORIGIN), ("TOKEN_URL", &format!("{}/v1/oauth2/token", upstream.uri()))],
    );
    let made = deploy(&harness, "keyed", &env, &["--api-key", "--show-api-key"]);
    let url = made["invoke_url"].as_str().unwrap();
    let key = made["api_key"].as_str().unwrap();
    let origin = [("origin", ORIGIN)];

    let refused = get(url, &origin).await;
    assert_eq!((refused.status, &refused.json["message"]), (403, &json!("Forbidden")));
    assert_eq!(refused.headers["access-control-allow-origin"], ORIGIN, "the app can read why");
    assert_eq!(token_of(&get(url, &[("origin", ORIGIN), ("x-api-key", key)]).await), "upstream-token");
    let wrong = get(url, &[("origin", ORIGIN), ("x-api-key", "not-the-key")]).await;
    assert_eq!(wrong.status, 403);

    let preflight = ask(
        reqwest::Method::OPTIONS,
        url,
        &[
            ("origin", ORIGIN),
            ("access-control-request-method", "GET"),
            ("access-control-request-headers", "x-api-key"),
        ],
    )
    .await;
    assert_eq!(preflight.status, 204, "a preflight carries no key, and is the function's to answer");
    assert_eq!(preflight.headers["access-control-allow-origin"], ORIGIN);
    assert!(
        preflight.headers["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .to_ascii_lowercase()
            .contains("x-api-key")
    );

    let root = url.trim_end_matches("/token").to_string() + "/";
    let no_route = get(&root, &origin).await;
    assert_eq!((no_route.status, &no_route.json["message"]), (403, &json!("Missing Authentication Token")));
    assert_eq!(no_route.headers["access-control-allow-origin"], ORIGIN);
    let other_path = get(&url.replace("/token", "/nope"), &[("x-api-key", key)]).await;
    assert_eq!(
        (other_path.status, &other_path.json["error"]),
        (404, &json!("not_found")),
        "{{proxy+}} routes it to the function"
    );

    // The stage's limits: one request, then one every ten seconds.
    deploy(&harness, "keyed", &env, &["--api-key", "--rate-limit", "0.1", "--burst-limit", "1"]);
    let keyed = [("origin", ORIGIN), ("x-api-key", key)];
    assert_eq!(token_of(&get(url, &keyed).await), "upstream-token");
    let throttled = get(url, &keyed).await;
    assert_eq!((throttled.status, &throttled.json["message"]), (429, &json!("Too Many Requests")));
    assert_eq!(throttled.headers["access-control-allow-origin"], ORIGIN, "the app can tell it was throttled");

    let found = harness.run_with(&["down", "--yes", "--name", "keyed", "--quiet"], &env);
    found.assert_success();
    let gone = get(url, &[("x-api-key", key)]).await;
    assert!(
        gone.json["access_token"].is_null() && gone.status >= 400,
        "after down: {} {}",
        gone.status,
        gone.json
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn an_arm64_stack_and_a_secret_store_stack_answer() {
    let harness = Harness::start();
    let upstream = upstream().await;
    let env = dolby(&harness, &upstream);
    // The function this CLI carries for arm64, run under qemu-aarch64-static.
    let run = harness
        .run_with(&["up", "--output", "json", "--quiet", "--name", "graviton", "--arch", "arm64"], &env);
    run.assert_success();
    let made = run.json();
    assert_eq!(made["architecture"], "arm64");
    assert_eq!(token_of(&get(made["invoke_url"].as_str().unwrap(), &[]).await), "upstream-token");

    // The function gets only the secret's ARN, and reads the key and secret with its role.
    let made = deploy(&harness, "stored", &env, &["--secret-store", "secrets-manager"]);
    assert_eq!(token_of(&get(made["invoke_url"].as_str().unwrap(), &[]).await), "upstream-token");
    let received = upstream.received_requests().await.unwrap();
    assert!(received.len() >= 2, "both asked the upstream with the app's key and secret: {received:?}");
}

fn verify(harness: &Harness, name: &str, env: &[(String, String)], more: &[&str]) -> Run {
    let mut args = vec!["verify", "--name", name, "--output", "json", "--wait", "5"];
    args.extend_from_slice(more);
    harness.run_with(&args, env)
}

/// The first line `verify` wrote on stderr, and its function log lines.
fn problem(run: &Run) -> (String, Vec<String>) {
    let mut lines =
        run.stderr.lines().filter(|line| line.starts_with("error: ") || line.starts_with("  function log: "));
    let first = lines.next().unwrap_or_default().to_string();
    (first, lines.map(str::to_string).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn verify_passes_a_working_stack_and_names_what_broke_each_broken_one() {
    let harness = Harness::start();
    let upstream = upstream().await;
    let env = with(
        &harness,
        &[("ALLOWED_ORIGINS", ORIGIN), ("TOKEN_URL", &format!("{}/v1/oauth2/token", upstream.uri()))],
    );
    let made = deploy(&harness, "checked", &env, &["--api-key", "--verify", "--show-api-key"]);
    assert_eq!(made["verify"]["ok"], true, "{made}");
    let key = made["api_key"].as_str().unwrap().to_string();
    let ok = verify(&harness, "checked", &env, &[]);
    ok.assert_success();
    let report = ok.json();
    assert_eq!((report["origin"].as_str(), report["checks"].as_array().unwrap().len()), (Some(ORIGIN), 2));
    let shows_nothing = |run: &Run| {
        for text in [&run.stdout, &run.stderr] {
            assert!(!text.contains(&key), "the key is never shown:\n{text}");
            assert!(!text.contains("upstream-token"), "nor the token:\n{text}");
        }
    };
    shows_nothing(&ok);
    let aws = harness.aws(REGION).await;

    // A wrong upstream secret: the upstream refuses it, the function says so, its log is shown.
    let wrong = with(
        &harness,
        &[
            ("ALLOWED_ORIGINS", ORIGIN),
            ("TOKEN_URL", &format!("{}/v1/oauth2/token", upstream.uri())),
            ("CONSUMER_SECRET", "not-the-secret"),
        ],
    );
    deploy(&harness, "checked", &wrong, &["--api-key"]);
    let refused = verify(&harness, "checked", &wrong, &[]);
    shows_nothing(&refused);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    let (line, logs) = problem(&refused);
    assert!(line.contains("the upstream token API refused the app's key and secret"), "{line}");
    assert!(
        logs.iter().any(|l| l.contains("502") && l.contains("upstream_rejected_credentials")),
        "{logs:?}"
    );
    assert_eq!(refused.json()["ok"], false);
    deploy(&harness, "checked", &env, &["--api-key"]);
    verify(&harness, "checked", &env, &[]).assert_success();

    // The invoke permission removed by hand: API Gateway may not call the function.
    for sid in ["tokendeploy-apigateway-get", "tokendeploy-apigateway-options"] {
        aws.lambda.remove_permission().function_name("checked").statement_id(sid).send().await.unwrap();
    }
    let unpermitted = verify(&harness, "checked", &env, &[]);
    shows_nothing(&unpermitted);
    assert_eq!(unpermitted.code, 1);
    let (line, _) = problem(&unpermitted);
    assert!(line.contains("its invoke permission is missing"), "{line}");
    deploy(&harness, "checked", &env, &["--api-key"]);

    // Code that crashes: API Gateway's 502, the function's log shows the crash.
    let script = b"#!/bin/sh\necho 'crashing on purpose' >&2\nexit 3\n";
    let crashing =
        tokendeploy_package::zip_bootstrap(script, tokendeploy_package::Arch::X86_64).unwrap().bytes;
    let code = aws_sdk_lambda::primitives::Blob::new(crashing);
    aws.lambda.update_function_code().function_name("checked").zip_file(code).send().await.unwrap();
    let crashed = verify(&harness, "checked", &env, &[]);
    shows_nothing(&crashed);
    assert_eq!(crashed.code, 1);
    let (line, logs) = problem(&crashed);
    assert!(line.contains("502") && line.contains("the function failed"), "{line}");
    assert!(logs.iter().any(|l| l.contains("crash") || l.contains("Runtime exited")), "{logs:?}");
    deploy(&harness, "checked", &env, &["--api-key"]);

    // The API key disabled by hand: refused at once, without waiting.
    let key_id = made["api_key_id"].as_str().unwrap();
    let off = aws_sdk_apigateway::types::PatchOperation::builder()
        .op(aws_sdk_apigateway::types::Op::Replace)
        .path("/enabled")
        .value("false")
        .build();
    aws.apigateway.update_api_key().api_key(key_id).patch_operations(off).send().await.unwrap();
    let disabled = verify(&harness, "checked", &env, &[]);
    shows_nothing(&disabled);
    assert_eq!(disabled.code, 1);
    let (line, _) = problem(&disabled);
    assert!(line.contains(&format!("its API key {key_id} is disabled")), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn verify_of_a_signed_in_provider_wants_a_401_or_a_token_for_the_bearer() {
    let harness = Harness::start();
    let env = livekit(&harness, "jwt");
    deploy(&harness, "signed", &env, &[]);
    let without = verify(&harness, "signed", &env, &[]);
    without.assert_success();
    assert!(without.json()["checks"][1]["said"].as_str().unwrap().contains("401 invalid_identity"));
    let bearer = harness.dir.join("bearer.jwt");
    std::fs::write(&bearer, caller("carol")).unwrap();
    let with_bearer = verify(&harness, "signed", &env, &["--bearer-file", bearer.to_str().unwrap()]);
    with_bearer.assert_success();
    assert!(with_bearer.json()["checks"][1]["said"].as_str().unwrap().contains("with a token"));
    assert!(!with_bearer.stdout.contains(&caller("carol")), "the bearer is never shown");
    let missing = verify(&harness, "signed", &env, &["--bearer-file", "/nonexistent/bearer"]);
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    assert!(
        missing.stderr.starts_with("error: cannot read --bearer-file /nonexistent/bearer"),
        "{}",
        missing.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn logs_show_a_line_a_request_and_follow_stops_on_ctrl_c() {
    let harness = Harness::start();
    let upstream = upstream().await;
    let env = dolby(&harness, &upstream);
    let made = deploy(&harness, "logged", &env, &[]);
    let url = made["invoke_url"].as_str().unwrap().to_string();
    for _ in 0..3 {
        token_of(&get(&url, &[]).await);
    }
    get(&url.replace("/token", "/elsewhere"), &[]).await;
    // Lambda's log reaches CloudWatch Logs a moment after the answer.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let read = harness.run_with(&["logs", "--name", "logged", "--output", "json"], &env);
    read.assert_success();
    read.assert_no_secret();
    let lines: Vec<Value> = read.stdout.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    let statuses: Vec<u64> = lines.iter().filter_map(|line| line["status"].as_u64()).collect();
    assert_eq!(statuses, [200, 200, 200, 404], "{}", read.stdout);
    assert!(
        lines.iter().all(|line| line["request_id"].is_string() && line["latency_ms"].is_number()),
        "{lines:?}"
    );
    assert_eq!(lines[3]["error"], "not_found");
    let text = harness.run_with(&["logs", "--name", "logged"], &env);
    assert_eq!(text.stdout.lines().count(), 4, "one line a request:\n{}", text.stdout);

    let mut command = harness.command(&["logs", "--name", "logged", "--follow", "--since", "1s"], &env);
    command.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let follow = tokio::process::Command::from(command).kill_on_drop(true).spawn().unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    token_of(&get(&url, &[]).await);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let pid = follow.id().unwrap().to_string();
    assert!(std::process::Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let finished =
        tokio::time::timeout(Duration::from_secs(10), follow.wait_with_output()).await.unwrap().unwrap();
    assert_eq!(finished.status.code(), Some(0), "{}", String::from_utf8_lossy(&finished.stderr));
    let shown = String::from_utf8_lossy(&finished.stdout);
    let ids: Vec<&str> = shown.lines().filter_map(|line| line.split("  ").nth(1)).collect();
    let earlier: Vec<&str> = lines.iter().filter_map(|line| line["request_id"].as_str()).collect();
    let new: Vec<&&str> = ids.iter().filter(|id| !earlier.contains(id)).collect();
    assert_eq!(new.len(), 1, "the new request:\n{shown}");
    let unique: std::collections::HashSet<&&str> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "each request once:\n{shown}");
}
