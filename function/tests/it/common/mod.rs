//! Events and upstream stand-ins shared by the function's tests.

use serde_json::{Value, json};
use tokendeploy_testkit::runtime_api::Outcome;
use tokio::io::AsyncReadExt;
use wiremock::matchers::{body_string, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub const KEY: &str = "app-key-1234";
pub const SECRET: &str = "s3cr3t-never-shown-9f8e7d";
pub const ORIGIN: &str = "https://app.example.com";
/// The paths of Dolby.io's two token endpoints, served by the stand-in upstream.
pub const VOXEET_PATH: &str = "/v1/oauth2/token";
pub const DOLBY_API_PATH: &str = "/v1/auth/token";

/// The documented API Gateway REST proxy event (`tests/fixtures/apigw_rest_proxy.json`) with
/// its method, path and `Origin` changed; `origin: None` removes the header.
pub fn rest_event(http_method: &str, request_path: &str, origin: Option<&str>) -> Value {
    let mut event: Value =
        serde_json::from_str(include_str!("../../fixtures/apigw_rest_proxy.json")).unwrap();
    event["httpMethod"] = json!(http_method);
    event["requestContext"]["httpMethod"] = json!(http_method);
    event["path"] = json!(request_path);
    for headers in ["headers", "multiValueHeaders"] {
        let map = event[headers].as_object_mut().unwrap();
        map.remove("Origin");
        if let Some(origin) = origin {
            let value = if headers == "headers" { json!(origin) } else { json!([origin]) };
            map.insert("Origin".into(), value);
        }
    }
    event
}

/// The documented HTTP API (payload 2.0) event from `tests/fixtures/apigw_http_v2.json`.
pub fn http_api_event() -> Value {
    serde_json::from_str(include_str!("../../fixtures/apigw_http_v2.json")).unwrap()
}

/// `Authorization` as Dolby.io documents it: Basic, base64 of `key:secret`.
pub fn basic_auth() -> String {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{KEY}:{SECRET}"));
    format!("Basic {encoded}")
}

/// A token request exactly as Dolby.io documents it: anything else gets wiremock's 404.
pub fn token_request(endpoint_path: &str) -> wiremock::MockBuilder {
    Mock::given(method("POST"))
        .and(path(endpoint_path))
        .and(header("authorization", basic_auth().as_str()))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(body_string("grant_type=client_credentials"))
}

/// Communications API's answer (`session.voxeet.com/v1/oauth2/token`).
pub fn voxeet_token(access_token: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "token_type": "Bearer",
        "access_token": access_token,
        "refresh_token": "refresh-abc",
        "expires_in": 3600
    }))
}

/// The stand-in upstream, answering Dolby's Communications endpoint with `response`.
pub async fn upstream_answering(response: ResponseTemplate) -> MockServer {
    let upstream = MockServer::start().await;
    token_request(VOXEET_PATH).respond_with(response).mount(&upstream).await;
    upstream
}

/// The function's environment pointing at `upstream`'s Communications endpoint.
pub fn function_env(upstream: &MockServer) -> Vec<(String, String)> {
    [
        ("TOKEN_PROVIDER", "dolby".to_string()),
        ("CONSUMER_KEY", KEY.to_string()),
        ("CONSUMER_SECRET", SECRET.to_string()),
        ("TOKEN_URL", format!("{}{VOXEET_PATH}", upstream.uri())),
        ("ALLOWED_ORIGINS", format!("{ORIGIN}, http://localhost:8080")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// A Lambda answer to an HTTP event, checked for the shapes API Gateway, function URLs and ALB
/// accept: a `statusCode`, string headers (`headers` and/or `multiValueHeaders`), a string
/// body, `isBase64Encoded: false`.
#[derive(Debug, Clone)]
pub struct Answer {
    pub raw: Value,
    pub status: u16,
    /// Lowercase name -> first value.
    pub headers: std::collections::BTreeMap<String, String>,
    pub body: String,
}

impl Answer {
    /// Panics, naming the problem, if `raw` is no valid answer.
    pub fn from_lambda(raw: Value) -> Self {
        if let Some(problem) = answer_problem(&raw) {
            panic!("not a valid Lambda HTTP answer ({problem}): {raw}");
        }
        let mut headers = std::collections::BTreeMap::new();
        if let Some(multi) = raw["multiValueHeaders"].as_object() {
            for (name, values) in multi {
                headers.insert(name.to_ascii_lowercase(), values[0].as_str().unwrap().to_string());
            }
        }
        if let Some(single) = raw["headers"].as_object() {
            for (name, value) in single {
                headers.insert(name.to_ascii_lowercase(), value.as_str().unwrap().to_string());
            }
        }
        let status = raw["statusCode"].as_u64().unwrap() as u16;
        let body = raw["body"].as_str().unwrap_or_default().to_string();
        Self { raw, status, headers, body }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }

    /// The body as JSON; panics if it is not.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("a JSON body: {:?}", self.body))
    }

    /// Which shape the answer has: "rest", "http" (payload 2.0) or "alb".
    pub fn shape(&self) -> &'static str {
        if self.raw.get("statusDescription").is_some() {
            "alb"
        } else if self.raw.get("cookies").is_some() {
            "http"
        } else {
            "rest"
        }
    }
}

/// What is wrong with `raw` as an answer to an HTTP event, if anything: every answer has a
/// status, string headers, a body that is JSON (empty only for 204) and, if an error, says
/// which (`{"error": code, "message": text}`).
pub fn answer_problem(raw: &Value) -> Option<String> {
    let status = raw.get("statusCode").and_then(Value::as_u64);
    let Some(status) = status.filter(|status| (100..=599).contains(status)) else {
        return Some("no statusCode".into());
    };
    if raw.get("isBase64Encoded") != Some(&Value::Bool(false)) {
        return Some("isBase64Encoded is not false".into());
    }
    let single = raw.get("headers");
    let multi = raw.get("multiValueHeaders");
    if single.is_none() && multi.is_none() {
        return Some("no headers".into());
    }
    if single.is_some_and(|h| !h.as_object().is_some_and(|h| h.values().all(Value::is_string))) {
        return Some("headers are not strings".into());
    }
    let strings = |v: &Value| v.as_array().is_some_and(|a| !a.is_empty() && a.iter().all(Value::is_string));
    if multi.is_some_and(|h| !h.as_object().is_some_and(|h| h.values().all(strings))) {
        return Some("multiValueHeaders are not lists of strings".into());
    }
    let Some(body) = raw.get("body").and_then(Value::as_str) else {
        return Some("no string body".into());
    };
    if status == 204 {
        return (!body.is_empty()).then(|| "a 204 with a body".into());
    }
    let Ok(body) = serde_json::from_str::<Value>(body) else {
        return Some("the body is not JSON".into());
    };
    match status {
        200 if body["access_token"].as_str().is_none_or(str::is_empty) => Some("200 without a token".into()),
        400.. if !(body["error"].is_string() && body["message"].is_string()) => {
            Some("an error without error and message".into())
        }
        _ => None,
    }
}

/// The JSON AWS's Lambda console offers as its sample test event ("hello-world").
pub fn console_sample_event() -> Value {
    json!({ "key1": "value1", "key2": "value2", "key3": "value3" })
}

/// A function-URL (payload 2.0) event for `GET /token` from `origin`.
pub fn function_url_event(origin: Option<&str>) -> Value {
    let mut event: Value =
        serde_json::from_str(include_str!("../../fixtures/aws/lambda_function_url_request.json")).unwrap();
    event["rawPath"] = json!("/token");
    event["requestContext"]["http"]["method"] = json!("GET");
    event["requestContext"]["http"]["path"] = json!("/token");
    let headers = event["headers"].as_object_mut().unwrap();
    headers.remove("origin");
    if let Some(origin) = origin {
        headers.insert("origin".into(), json!(origin));
    }
    event
}

/// An ALB target event (multi-value headers on) for `GET /token` from `origin`.
pub fn alb_event(origin: Option<&str>) -> Value {
    let mut event: Value = serde_json::from_str(include_str!(
        "../../fixtures/aws/example-alb-lambda-target-request-multivalue-headers.json"
    ))
    .unwrap();
    event["httpMethod"] = json!("GET");
    event["path"] = json!("/token");
    let headers = event["multiValueHeaders"].as_object_mut().unwrap();
    headers.remove("origin");
    if let Some(origin) = origin {
        headers.insert("origin".into(), json!([origin]));
    }
    event
}

/// A clock the test moves by hand.
pub struct ManualClock {
    start: std::time::Instant,
    offset_secs: std::sync::atomic::AtomicU64,
}

impl ManualClock {
    pub fn new() -> std::sync::Arc<Self> {
        std::sync::Arc::new(Self { start: std::time::Instant::now(), offset_secs: Default::default() })
    }
    pub fn advance(&self, secs: u64) {
        self.offset_secs.fetch_add(secs, std::sync::atomic::Ordering::SeqCst);
    }
}

impl token_function::cache::Clock for ManualClock {
    fn now(&self) -> std::time::Instant {
        let offset = self.offset_secs.load(std::sync::atomic::Ordering::SeqCst);
        // A test clock far in the future stays at the furthest instant it can name.
        self.start
            .checked_add(std::time::Duration::from_secs(offset))
            .unwrap_or(self.start + std::time::Duration::from_secs(u32::MAX as u64))
    }
}

pub fn service_with(
    env: Vec<(String, String)>,
    clock: std::sync::Arc<dyn token_function::cache::Clock>,
) -> token_function::TokenService {
    let env: std::collections::HashMap<String, String> = env.into_iter().collect();
    token_function::TokenService::new(
        token_function::config::Config::from_lookup(|name| env.get(name).cloned()),
        clock,
    )
}

pub fn service(upstream: &MockServer) -> token_function::TokenService {
    service_with(function_env(upstream), ManualClock::new())
}

/// One invocation as the `bootstrap` binary makes it: the event JSON through the function's
/// event reader, the answer checked for the Lambda HTTP answer shape.
pub async fn call(service: &token_function::TokenService, event: Value) -> Answer {
    Answer::from_lambda(token_function::event::handle(service, &event).await)
}

/// Captured log output, shared with the subscriber that writes it.
#[derive(Clone, Default)]
pub struct LogBuffer(pub std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogBuffer {
    /// Everything written so far, emptying the buffer.
    pub fn take(&self) -> String {
        String::from_utf8_lossy(&std::mem::take(&mut *self.0.lock().unwrap())).into_owned()
    }

    /// A JSON subscriber at TRACE writing here, for `tracing::subscriber::set_default`.
    pub fn subscriber(&self) -> impl tracing::Subscriber + Send + Sync {
        let writer = self.clone();
        tracing_subscriber::fmt()
            .json()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .finish()
    }
}

/// AWS's own sample events (`tests/fixtures/aws`, see its SOURCES.md), by file name.
pub fn aws_fixtures() -> Vec<(String, Value)> {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/aws");
    let mut events: Vec<(String, Value)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap())
        })
        .collect();
    events.sort_by(|a, b| a.0.cmp(&b.0));
    events
}

/// `binary` run as Lambda runs a `provided.al2023` function, against `runtime`, with
/// nothing of this process's environment but `env`.
pub fn spawn_bootstrap(
    binary: &std::path::Path,
    runtime: &tokendeploy_testkit::runtime_api::RuntimeApi,
    env: Vec<(String, String)>,
) -> tokio::process::Child {
    spawn_bootstrap_under(None, binary, runtime, env)
}

/// As [`spawn_bootstrap`], run by `emulator` when given (qemu-aarch64-static for the arm64 build).
pub fn spawn_bootstrap_under(
    emulator: Option<&std::path::Path>,
    binary: &std::path::Path,
    runtime: &tokendeploy_testkit::runtime_api::RuntimeApi,
    env: Vec<(String, String)>,
) -> tokio::process::Child {
    let mut command = match emulator {
        Some(emulator) => {
            let mut command = tokio::process::Command::new(emulator);
            command.arg(binary);
            command
        }
        None => tokio::process::Command::new(binary),
    };
    command
        .env_clear()
        .envs(runtime.lambda_environment())
        .envs(env)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the bootstrap binary starts")
}

/// Stops the runtime and returns all it wrote to stdout and stderr.
pub async fn output_of(mut child: tokio::process::Child) -> String {
    child.start_kill().unwrap();
    let _ = child.wait().await;
    let mut output = String::new();
    child.stdout.take().unwrap().read_to_string(&mut output).await.unwrap();
    child.stderr.take().unwrap().read_to_string(&mut output).await.unwrap();
    output
}

/// Status, headers (name -> first value) and JSON body of an answer, checked for the shape
/// API Gateway accepts: REST (v1) answers carry `multiValueHeaders` too, v2 answers `cookies`.
pub fn response_body(outcome: &Outcome) -> (u64, Value, Value) {
    let Outcome::Response { body, .. } = outcome else {
        panic!("expected a response, got {outcome:?}");
    };
    let answer = Answer::from_lambda(body.clone());
    let payload = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
    (answer.status.into(), serde_json::to_value(&answer.headers).unwrap(), payload)
}
