//! `tokendeploy serve` answers exactly as the Lambda function does: one table of requests, sent
//! to the real binary over HTTP and to the function's event handler as API Gateway events.

use std::sync::Arc;
use std::time::Duration;

use crate::support::{ServeLog, serve, upstream};
use serde_json::{Value, json};
use token_function::TokenService;
use token_function::cache::SystemClock;
use token_function::config::Config;
use tokio::process::Command;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const ORIGIN: &str = "https://app.example";
const SECRET: &str = "serve-secret-never-shown";
const CALLER_SECRET: &str = "test-only-shared-secret-0123456789abcdef";

type Environment = Vec<(String, String)>;

/// One request, as a browser or curl would send it.
struct Case {
    method: &'static str,
    path: &'static str,
    origin: Option<&'static str>,
    query: &'static [(&'static str, &'static str)],
    authorization: Option<String>,
    body: Option<&'static str>,
}

const fn get(path: &'static str, origin: Option<&'static str>) -> Case {
    Case { method: "GET", path, origin, query: &[], authorization: None, body: None }
}

/// What both front ends must agree on: status, the headers a client reads, and the body with
/// the token itself (which differs from one mint or fetch to the next) masked.
fn comparable(status: u16, headers: Vec<(String, String)>, body: &str) -> Value {
    let read = [
        "content-type",
        "cache-control",
        "access-control-allow-origin",
        "access-control-allow-methods",
        "access-control-allow-headers",
        "vary",
        "allow",
        "www-authenticate",
    ];
    let headers: serde_json::Map<String, Value> = headers
        .into_iter()
        .filter(|(name, _)| read.contains(&name.to_ascii_lowercase().as_str()))
        .map(|(name, value)| (name.to_ascii_lowercase(), json!(value)))
        .collect();
    let mut body: Value = serde_json::from_str(body).unwrap_or(json!(body));
    if status == 200 {
        body["access_token"] = json!("<token>");
        if body.get("expires_in").is_some() {
            body["expires_in"] = json!("<seconds>");
        }
    }
    json!({ "status": status, "headers": headers, "body": body })
}

async fn through_lambda(service: &TokenService, case: &Case) -> Value {
    let mut event: Value =
        serde_json::from_str(include_str!("../../../../function/tests/fixtures/apigw_rest_proxy.json"))
            .unwrap();
    event["httpMethod"] = json!(case.method);
    event["path"] = json!(case.path);
    let mut headers = serde_json::Map::new();
    if let Some(origin) = case.origin {
        headers.insert("Origin".into(), json!(origin));
    }
    if let Some(authorization) = &case.authorization {
        headers.insert("Authorization".into(), json!(authorization));
    }
    event["multiValueHeaders"] =
        Value::Object(headers.iter().map(|(k, v)| (k.clone(), json!([v]))).collect());
    event["headers"] = Value::Object(headers);
    let query: serde_json::Map<String, Value> =
        case.query.iter().map(|(k, v)| (k.to_string(), json!([v]))).collect();
    event["multiValueQueryStringParameters"] = Value::Object(query);
    event["queryStringParameters"] = Value::Null;
    event["body"] = case.body.map_or(Value::Null, |body| json!(body));
    event["isBase64Encoded"] = json!(false);
    let answer = token_function::event::handle(service, &event).await;
    let headers = answer["headers"].as_object().unwrap();
    let headers = headers.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string())).collect();
    comparable(answer["statusCode"].as_u64().unwrap() as u16, headers, answer["body"].as_str().unwrap())
}

async fn through_serve(base: &str, case: &Case) -> Value {
    let client = reqwest::Client::new();
    let method = reqwest::Method::from_bytes(case.method.as_bytes()).unwrap();
    let mut request = client.request(method, format!("{base}{}", case.path)).query(case.query);
    if let Some(origin) = case.origin {
        request = request.header("Origin", origin);
    }
    if let Some(authorization) = &case.authorization {
        request = request.header("Authorization", authorization);
    }
    if let Some(body) = case.body {
        request = request.body(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_string()))
        .collect();
    comparable(status, headers, &response.text().await.unwrap())
}

fn dolby_env(upstream: &MockServer) -> Vec<(String, String)> {
    [
        ("CONSUMER_KEY", "key".to_string()),
        ("CONSUMER_SECRET", SECRET.to_string()),
        ("ALLOWED_ORIGINS", ORIGIN.to_string()),
        ("TOKEN_URL", format!("{}/v1/oauth2/token", upstream.uri())),
    ]
    .map(|(k, v)| (k.to_string(), v))
    .to_vec()
}

fn twilio_env() -> Vec<(String, String)> {
    [
        ("TOKEN_PROVIDER", "twilio"),
        ("TWILIO_ACCOUNT_SID", "AC0123456789abcdef0123456789abcdef"),
        ("TWILIO_API_KEY", "SK0123456789abcdef0123456789abcdef"),
        ("TWILIO_API_SECRET", SECRET),
        ("IDENTITY_HS256_SECRET", CALLER_SECRET),
        ("IDENTITY_ISSUER", "https://issuer.test/"),
        ("IDENTITY_AUDIENCE", "app"),
        ("ALLOWED_ORIGINS", ORIGIN),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .to_vec()
}

fn caller(subject: &str, issuer: &str) -> String {
    let claims = json!({ "iss": issuer, "aud": "app", "sub": subject, "exp": 4_000_000_000u64 });
    let key = jsonwebtoken::EncodingKey::from_secret(CALLER_SECRET.as_bytes());
    format!("Bearer {}", jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap())
}

fn lambda_service(env: &[(String, String)]) -> TokenService {
    let config = Config::from_lookup(|name| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()));
    TokenService::new(config, Arc::new(SystemClock))
}

#[tokio::test]
async fn serve_answers_every_case_as_the_lambda_function_does() {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/oauth2/token"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({ "access_token": "t", "expires_in": 3600 })),
        )
        .mount(&upstream)
        .await;
    let alice = caller("alice", "https://issuer.test/");
    let mallory = caller("alice", "https://evil.test/");
    let tables: [(Environment, Vec<Case>); 2] = [
        (
            dolby_env(&upstream),
            vec![
                get("/token", Some(ORIGIN)),
                get("/prod/token", Some(ORIGIN)),
                get("/token/", None),
                get("/token", Some("https://evil.example")),
                get("/elsewhere", Some(ORIGIN)),
                Case { method: "OPTIONS", ..get("/token", Some(ORIGIN)) },
                Case { method: "POST", ..get("/token", Some(ORIGIN)) },
                Case { method: "DELETE", ..get("/prod/token", None) },
            ],
        ),
        (
            twilio_env(),
            vec![
                Case {
                    authorization: Some(alice.clone()),
                    query: &[("room", "r1")],
                    ..get("/token", Some(ORIGIN))
                },
                Case {
                    method: "POST",
                    authorization: Some(alice.clone()),
                    body: Some(r#"{"room":"r2"}"#),
                    ..get("/prod/token", Some(ORIGIN))
                },
                get("/token", Some(ORIGIN)),
                Case { authorization: Some(mallory), ..get("/token", Some(ORIGIN)) },
                Case { authorization: Some("Basic eDp5".into()), ..get("/token", None) },
                Case {
                    authorization: Some(alice.clone()),
                    query: &[("identity", "bob")],
                    ..get("/token", None)
                },
                Case { authorization: Some(alice.clone()), query: &[("room", "a b")], ..get("/token", None) },
                Case {
                    method: "POST",
                    authorization: Some(alice),
                    body: Some("room=r1"),
                    ..get("/token", None)
                },
                Case { method: "OPTIONS", ..get("/token", Some(ORIGIN)) },
            ],
        ),
    ];
    let mut statuses = std::collections::BTreeSet::new();
    for (env, cases) in tables {
        let (mut child, base, _logs) = serve(&env, &[]).await;
        let lambda = lambda_service(&env);
        for case in &cases {
            let served = through_serve(&base, case).await;
            let on_lambda = through_lambda(&lambda, case).await;
            assert_eq!(served, on_lambda, "{} {} {:?}", case.method, case.path, case.query);
            statuses.insert(served["status"].as_u64().unwrap());
        }
        child.start_kill().unwrap();
    }
    // The table reaches every kind of answer, not one error twice over.
    assert_eq!(statuses.into_iter().collect::<Vec<_>>(), [200, 204, 400, 401, 403, 404, 405]);
}

#[tokio::test]
async fn serve_logs_one_line_a_request_never_the_secret_and_serves_the_client_page() {
    let upstream = MockServer::start().await;
    let (mut child, base, mut logs) = serve(&dolby_env(&upstream), &["--client"]).await;
    let page = reqwest::get(format!("{base}/")).await.unwrap();
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    assert!(page.text().await.unwrap().contains("token-client.js"));
    let script = reqwest::get(format!("{base}/token-client.js")).await.unwrap().text().await.unwrap();
    assert!(script.contains("class TokenSource"));
    let answer = reqwest::get(format!("{base}/token")).await.unwrap();
    assert_eq!(answer.status(), 502, "the stand-in upstream answers 404 to everything");
    let mut seen = Vec::new();
    while !seen.iter().any(|line: &String| line.contains("request failed")) {
        let line =
            tokio::time::timeout(Duration::from_secs(10), logs.next_line()).await.unwrap().unwrap().unwrap();
        seen.push(line);
    }
    let request_lines: Vec<&String> = seen.iter().filter(|line| line.contains("request")).collect();
    assert_eq!(request_lines.len(), 1, "{seen:#?}");
    assert!(request_lines[0].contains("status=502") && request_lines[0].contains("/token"), "{seen:#?}");
    assert!(seen.iter().all(|line| !line.contains(SECRET)), "{seen:#?}");
    // Ctrl-C: it stops listening, says so, and exits 0.
    stops_on(&mut child, &mut logs, "INT", "Ctrl-C").await;
    assert!(reqwest::get(format!("{base}/token")).await.is_err(), "nothing listens any more");

    // Nobody reads its log any more (`serve 2>&1 | head`): it still answers.
    let (mut child, base, logs) = serve(&dolby_env(&upstream), &[]).await;
    drop(logs);
    for _ in 0..3 {
        assert_eq!(reqwest::get(format!("{base}/token")).await.unwrap().status(), 502);
    }
    child.start_kill().unwrap();

    let refused = Command::new(env!("CARGO_BIN_EXE_tokendeploy"))
        .args(["serve", "--port", "0", "--provider", "twilio"])
        .env_clear()
        .envs(dolby_env(&upstream))
        .output()
        .await
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.starts_with("error: TWILIO_ACCOUNT_SID is not set"), "{stderr}");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let busy = Command::new(env!("CARGO_BIN_EXE_tokendeploy"))
        .args(["serve", "--port", &port])
        .env_clear()
        .envs(dolby_env(&upstream))
        .output()
        .await
        .unwrap();
    assert_eq!(busy.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&busy.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with(&format!("error: cannot listen on 127.0.0.1:{port}")), "{stderr}");
    assert!(
        stderr.contains(&format!("port {port} is taken: pass another --port")) && !stderr.contains(SECRET),
        "{stderr}"
    );

    // An address of another machine: the host is what to change.
    let elsewhere = Command::new(env!("CARGO_BIN_EXE_tokendeploy"))
        .args(["serve", "--port", "0", "--host", "192.0.2.1"])
        .env_clear()
        .envs(dolby_env(&upstream))
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&elsewhere.stderr);
    assert_eq!(elsewhere.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("192.0.2.1 is not an address of this machine: pass another --host"), "{stderr}");
}

#[tokio::test]
async fn requests_too_large_to_read_get_the_functions_json_errors() {
    let upstream = MockServer::start().await;
    let (child, base, _) = serve(&dolby_env(&upstream), &[]).await;
    let client = reqwest::Client::new();
    let long_url = format!("{base}/token?pad={}", "a".repeat(9000));
    let big_body = vec![b'x'; 2 * 1024 * 1024];
    for (request, status, code) in [
        (client.get(long_url), 414, "uri_too_long"),
        (client.post(format!("{base}/token")).body(big_body), 413, "payload_too_large"),
    ] {
        let answer = request.send().await.unwrap();
        assert_eq!(answer.status().as_u16(), status);
        assert_eq!(answer.headers()["content-type"], "application/json");
        let body: Value = serde_json::from_str(&answer.text().await.unwrap()).unwrap();
        assert_eq!(body["error"], code, "{body}");
    }
    drop(child);
}

/// The resident memory of process `pid`, in KiB.
fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|line| line.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Whether the server has closed `stream` (or answered and closed): a read returns at once.
async fn closed_or_answered(stream: &mut tokio::net::TcpStream) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut buffer = vec![0; 4096];
    match tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buffer)).await {
        Ok(Ok(read)) => Some(String::from_utf8_lossy(&buffer[..read]).into_owned()),
        Ok(Err(error)) => Some(error.to_string()),
        Err(_) => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_clients_are_cut_while_others_are_served_and_sigterm_stops_it() {
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpStream;
    let upstream = upstream().await;
    // The app's key and secret as the stand-in upstream knows them: a token for every request.
    let mut env = dolby_env(&upstream);
    env.retain(|(name, _)| !name.starts_with("CONSUMER_"));
    env.extend(
        [("CONSUMER_KEY", crate::support::KEY), ("CONSUMER_SECRET", crate::support::SECRET)]
            .map(|(name, value)| (name.to_string(), value.to_string())),
    );
    let (mut child, base, mut logs) = serve(&env, &[]).await;
    let address = base.trim_start_matches("http://").to_string();
    let pid = child.id().unwrap();
    let client = reqwest::Client::new();
    assert_eq!(client.get(format!("{base}/token")).send().await.unwrap().status(), 200);
    let at_start = resident_kib(pid);

    // 200 slow clients: idle, a header byte a second, a body byte a second.
    let started = std::time::Instant::now();
    let mut slow = Vec::new();
    for index in 0..200 {
        let mut stream = TcpStream::connect(&address).await.unwrap();
        let kind = index % 3;
        if kind == 2 {
            stream
                .write_all(b"POST /token HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n{")
                .await
                .unwrap();
        }
        slow.push((kind, stream));
    }
    let dripping = tokio::spawn(async move {
        for _ in 0..20 {
            for (kind, stream) in slow.iter_mut() {
                let byte: &[u8] = if *kind == 1 {
                    b"G"
                } else if *kind == 2 {
                    b" "
                } else {
                    b""
                };
                let _ = stream.write_all(byte).await;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        slow
    });
    // Everyone else is served meanwhile, each at once.
    for _ in 0..20 {
        let asked = std::time::Instant::now();
        assert_eq!(client.get(format!("{base}/token")).send().await.unwrap().status(), 200);
        assert!(asked.elapsed() < Duration::from_secs(2), "a request waited {:?}", asked.elapsed());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let mut slow = dripping.await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(12));
    // Cut after 10 s: headers never finished (idle or dripping) closed, bodies answered 408.
    for (kind, stream) in slow.iter_mut() {
        let seen = closed_or_answered(stream)
            .await
            .unwrap_or_else(|| panic!("a kind-{kind} slow client is still held"));
        if *kind == 2 {
            assert!(seen.starts_with("HTTP/1.1 408") && seen.contains("request_timeout"), "{seen}");
        }
    }
    drop(slow);

    // Past the cap: one line says so; requests wait for a connection to close, then are served.
    let mut held = Vec::new();
    for _ in 0..600 {
        held.push(TcpStream::connect(&address).await.unwrap());
    }
    let mut told = false;
    while !told {
        let line =
            tokio::time::timeout(Duration::from_secs(10), logs.next_line()).await.unwrap().unwrap().unwrap();
        told = line.contains("512 connections open, the most it serves at once");
    }
    let peak = resident_kib(pid);
    drop(held);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(client.get(format!("{base}/token")).send().await.unwrap().status(), 200);
    let after = resident_kib(pid);
    eprintln!(
        "serve's memory: {at_start} KiB at start, {peak} KiB with 600 connections held, {after} KiB once they closed"
    );
    assert!(after < at_start + 16 * 1024, "memory stays up: {at_start} KiB at start, {after} KiB after");

    // SIGTERM stops it as Ctrl-C does.
    stops_on(&mut child, &mut logs, "TERM", "SIGTERM").await;
}

// A client that asks and asks and never reads the answers: once its socket's buffers are full,
// the server's write waits; the write deadline cuts it, instead of it holding a slot for good.
#[tokio::test]
async fn a_client_that_never_reads_its_answers_is_cut_after_the_write_deadline() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let upstream = MockServer::start().await;
    let (mut child, base, mut logs) = serve(&dolby_env(&upstream), &[]).await;
    // Its log read as it comes (a line a request): a full pipe would stop it.
    tokio::spawn(async move { while let Ok(Some(_)) = logs.next_line().await {} });
    let address = base.trim_start_matches("http://").to_string();
    let (mut reader, mut writer) = tokio::net::TcpStream::connect(&address).await.unwrap().into_split();
    // Pipelined requests for a path it does not serve (no upstream call): far more answer
    // bytes than the socket buffers on both sides hold.
    const REQUESTS: usize = 200_000;
    let writing = tokio::spawn(async move {
        for _ in 0..REQUESTS {
            if writer.write_all(b"GET /nowhere HTTP/1.1\r\nhost: x\r\n\r\n").await.is_err() {
                break;
            }
        }
        writer
    });
    tokio::time::sleep(Duration::from_secs(15)).await;
    // Others are served meanwhile.
    assert!(reqwest::get(format!("{base}/nowhere")).await.is_ok(), "serve answers another client");
    // Cut: what was buffered reads out, then the connection ends, short of every answer.
    let mut answers = Vec::new();
    let drained = tokio::time::timeout(Duration::from_secs(5), reader.read_to_end(&mut answers)).await;
    assert!(drained.is_ok(), "the connection was still open after the write deadline");
    let answered = answers.windows(12).filter(|window| window == b"HTTP/1.1 404").count();
    assert!(answered > 0 && answered < REQUESTS, "{answered} of {REQUESTS} answered before the cut");
    writing.abort();
    child.start_kill().unwrap();
}

#[tokio::test]
async fn sighup_stops_it_as_ctrl_c_does() {
    let upstream = MockServer::start().await;
    let (mut child, _, mut logs) = serve(&dolby_env(&upstream), &[]).await;
    stops_on(&mut child, &mut logs, "HUP", "SIGHUP").await;
}

/// Sends `serve` the signal `kill -SIGNAL` names: it exits 0 within 10 s, its last line
/// `stopped (NAMED)`.
async fn stops_on(child: &mut tokio::process::Child, logs: &mut ServeLog, signal: &str, named: &str) {
    let pid = child.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill").args([&format!("-{signal}"), &pid]).status().unwrap().success()
    );
    let exited =
        tokio::time::timeout(Duration::from_secs(10), child.wait()).await.expect("stops within 10 s");
    assert!(exited.unwrap().success(), "{signal}");
    let mut tail = Vec::new();
    while let Ok(Some(line)) = logs.next_line().await {
        tail.push(line);
    }
    assert_eq!(tail.last().map(String::as_str), Some(format!("stopped ({named})").as_str()), "{tail:#?}");
}
