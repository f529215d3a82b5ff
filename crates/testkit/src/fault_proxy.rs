//! A loopback proxy in front of an AWS emulator that can make any single AWS call fail the way
//! real AWS and a bad network do, and forwards everything else unchanged. moto never throttles,
//! never fails, and IAM there is instantly consistent; this lets tests prove that `up` and `down`
//! wait out and recover from what real AWS does.
//!
//! Every request is identified as a [`Call`] (service and operation) and recorded in order. A
//! plan of [`Rule`]s picks calls by a predicate over the [`Call`] and a position among the calls
//! matching it, and gives them an [`Effect`]:
//!
//! ```no_run
//! # async fn example(moto: &str) -> anyhow::Result<()> {
//! use tokendeploy_testkit::fault_proxy::{Call, Effect, ErrorKind, FaultProxy, Rule};
//! // Throttle the 2nd mutating IAM call, and lose the reply to the first CreateFunction.
//! let proxy = FaultProxy::start_with(moto, vec![
//!     Rule::nth(|call: &Call| call.service == "iam" && call.mutating, 2, Effect::Error(ErrorKind::Throttling)),
//!     Rule::first(|call: &Call| call.is("lambda", "POST /2015-03-31/functions"), 1, Effect::LostReply),
//! ])
//! .await?;
//! // ... point the CLI at proxy.endpoint(), then inspect proxy.calls() and proxy.injected().
//! # Ok(()) }
//! ```

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode, Uri};
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::task::JoinSet;

/// One request the proxy saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The SigV4 signing name from the `Authorization` credential scope: `iam`, `sts`,
    /// `lambda`, `apigateway`, `logs`. Guessed from the request for unsigned ones; empty if
    /// that fails.
    pub service: String,
    /// `Action` for query protocols (`CreateRole`), the `X-Amz-Target` operation for JSON ones
    /// (`CreateLogGroup`), and for REST ones the method and the path with ids as placeholders
    /// (`DELETE /restapis/{id}`, `GET /2015-03-31/functions/{name}/policy`).
    pub operation: String,
    /// Anything but Get*/List*/Describe* operations, and for REST anything but GET and HEAD.
    pub mutating: bool,
    /// Whether a rule gave this call an effect instead of just forwarding it.
    pub faulted: bool,
    /// When it reached the proxy, since the proxy started: a run's critical path, read from
    /// the order and spacing of its calls.
    pub arrived: Duration,
    /// The region it was signed for (IAM's and STS's global calls: `us-east-1`); empty when
    /// unsigned.
    pub region: String,
}

impl Call {
    pub fn is(&self, service: &str, operation: &str) -> bool {
        self.service == service && self.operation == operation
    }
}

/// An error answer, shaped for the called service as the real one sends it (see
/// [`ErrorKind::shape`] for the exact codes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// HTTP 500: IAM `ServiceFailure`, STS `InternalFailure`, Lambda `ServiceException`,
    /// API Gateway `InternalFailure`, Logs `ServiceUnavailableException` (Logs models it as 500),
    /// Secrets Manager `InternalServiceError`.
    Internal,
    /// HTTP 503: IAM and STS `ServiceUnavailable`, the others `ServiceUnavailableException`.
    Unavailable,
    /// IAM and STS `Throttling` (400), Lambda and API Gateway `TooManyRequestsException` (429),
    /// Logs and Secrets Manager `ThrottlingException` (400).
    Throttling,
    /// Any other error, in the service's shape.
    Custom { status: u16, code: String, message: String },
}

impl ErrorKind {
    pub fn custom(status: u16, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Custom { status, code: code.into(), message: message.into() }
    }

    /// Status, code and message this error has when `service` sends it.
    pub fn shape(&self, service: &str) -> (u16, String, String) {
        let (status, code, message) = match (self, service) {
            (Self::Custom { status, code, message }, _) => return (*status, code.clone(), message.clone()),
            (Self::Internal, "iam") => (500, "ServiceFailure", INTERNAL),
            (Self::Internal, "lambda") => (500, "ServiceException", INTERNAL),
            (Self::Internal, "logs") => (500, "ServiceUnavailableException", INTERNAL),
            (Self::Internal, "secretsmanager") => (500, "InternalServiceError", INTERNAL),
            (Self::Internal, _) => (500, "InternalFailure", INTERNAL),
            (Self::Unavailable, "iam" | "sts") => (503, "ServiceUnavailable", UNAVAILABLE),
            (Self::Unavailable, _) => (503, "ServiceUnavailableException", UNAVAILABLE),
            (Self::Throttling, "iam" | "sts") => (400, "Throttling", "Rate exceeded"),
            (Self::Throttling, "logs" | "secretsmanager") => (400, "ThrottlingException", "Rate exceeded"),
            (Self::Throttling, "lambda") => (429, "TooManyRequestsException", "Rate exceeded"),
            (Self::Throttling, _) => (429, "TooManyRequestsException", "Too Many Requests"),
        };
        (status, code.to_string(), message.to_string())
    }
}

const INTERNAL: &str = "We encountered an internal error. Please try again.";
const UNAVAILABLE: &str = "The service is unavailable. Please try again later.";

/// What the proxy does to a call a rule picks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Answer with this error instead of forwarding.
    Error(ErrorKind),
    /// Close the connection without an answer; the call never reaches the upstream.
    Drop,
    /// Forward the call (it takes effect), then close the connection without an answer.
    LostReply,
    /// Never answer: hold the connection open until the proxy is dropped.
    Hang,
    /// Hold the call this long, then forward it: a slow call, which a twin run's changes
    /// overtake.
    Delay(Duration),
    /// Forward the call, and answer with its JSON answer without any member of this name, at
    /// any depth: what the real service may leave out where the emulator fills in.
    StripFromAnswer(&'static str),
}

type Predicate = Arc<dyn Fn(&Call) -> bool + Send + Sync>;

/// Which calls get an effect: those matching a predicate, at positions `from..=to` among the
/// calls matching it (counting from 1, retries included). When several rules pick one call,
/// the first in the plan wins; every rule counts every call it matches either way.
#[derive(Clone)]
pub struct Rule {
    matches: Predicate,
    from: usize,
    to: usize,
    effect: Effect,
}

impl Rule {
    /// The `n`th call (from 1) that `matches`.
    pub fn nth(matches: impl Fn(&Call) -> bool + Send + Sync + 'static, n: usize, effect: Effect) -> Self {
        assert!(n >= 1, "calls are counted from 1");
        Self { matches: Arc::new(matches), from: n, to: n, effect }
    }

    /// The first `times` calls that `matches` (`usize::MAX` for all).
    pub fn first(
        matches: impl Fn(&Call) -> bool + Send + Sync + 'static,
        times: usize,
        effect: Effect,
    ) -> Self {
        Self { matches: Arc::new(matches), from: 1, to: times, effect }
    }
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rule")
            .field("from", &self.from)
            .field("to", &self.to)
            .field("effect", &self.effect)
            .finish()
    }
}

/// A ready-made error for one kind of call, as [`FaultProxy::start`] takes it.
#[derive(Clone)]
pub struct Fault {
    matches: Predicate,
    effect: Effect,
}

impl Fault {
    /// API Gateway allows about one DeleteRestApi every 30 seconds per account.
    pub fn delete_rest_api_throttled() -> Self {
        Self {
            matches: Arc::new(|call| call.is("apigateway", "DELETE /restapis/{id}")),
            effect: Effect::Error(ErrorKind::Throttling),
        }
    }

    /// Lambda's answer to CreateFunction while a new role has not reached it (IAM is
    /// eventually consistent).
    pub fn role_not_yet_assumable() -> Self {
        Self {
            matches: Arc::new(|call| call.is("lambda", "POST /2015-03-31/functions")),
            effect: Effect::Error(ErrorKind::custom(
                400,
                "InvalidParameterValueException",
                "The role defined for the function cannot be assumed by Lambda.",
            )),
        }
    }
}

impl fmt::Debug for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fault").field("effect", &self.effect).finish()
    }
}

struct Plan {
    rules: Vec<(Rule, usize)>,
    calls: Vec<Call>,
}

struct Shared {
    upstream: String,
    /// Added to every call before it is forwarded: a network far from AWS.
    latency: Duration,
    client: reqwest::Client,
    plan: Mutex<Plan>,
    injected: AtomicUsize,
    request_ids: AtomicU64,
    random: RandomState,
    started: Instant,
}

pub struct FaultProxy {
    address: SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Forwards to `upstream` (such as moto's endpoint), answering the first `times` calls
    /// that match `fault` with its error.
    pub async fn start(upstream: &str, fault: Fault, times: usize) -> Result<Self> {
        Self::start_with(
            upstream,
            vec![Rule { matches: fault.matches, from: 1, to: times, effect: fault.effect }],
        )
        .await
    }

    /// Forwards everything to `upstream`, recording the calls.
    pub async fn recording(upstream: &str) -> Result<Self> {
        Self::start_with(upstream, Vec::new()).await
    }

    /// Forwards to `upstream`, giving the calls the `rules` pick their effect.
    pub async fn start_with(upstream: &str, rules: Vec<Rule>) -> Result<Self> {
        Self::start_serving(upstream, rules, Duration::ZERO).await
    }

    /// Forwards everything to `upstream` `latency` late, recording the calls: a command's wall
    /// time divided by `latency` is how many calls deep it waits.
    pub async fn with_latency(upstream: &str, latency: Duration) -> Result<Self> {
        Self::start_serving(upstream, Vec::new(), latency).await
    }

    async fn start_serving(upstream: &str, rules: Vec<Rule>, latency: Duration) -> Result<Self> {
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_string(),
            latency,
            client: reqwest::Client::new(),
            plan: Mutex::new(Plan {
                rules: rules.into_iter().map(|rule| (rule, 0)).collect(),
                calls: Vec::new(),
            }),
            injected: AtomicUsize::new(0),
            request_ids: AtomicU64::new(0),
            random: RandomState::new(),
            started: Instant::now(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let server = tokio::spawn(serve(listener, Arc::clone(&shared)));
        Ok(Self { address, shared, server })
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// How many calls got an effect so far.
    pub fn injected(&self) -> usize {
        self.shared.injected.load(Ordering::SeqCst)
    }

    /// Every call seen so far, in the order they arrived, faulted ones included.
    pub fn calls(&self) -> Vec<Call> {
        self.shared.plan.lock().unwrap().calls.clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        // Dropping the accept loop drops its JoinSet, which aborts every connection, hanging
        // ones included.
        self.server.abort();
    }
}

/// Serves each connection with hyper directly (not `axum::serve`), so that a service error
/// makes hyper close the connection without writing an answer.
async fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let shared = Arc::clone(&shared);
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |request| handle(Arc::clone(&shared), request));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// The service error that makes hyper close a connection without an answer.
#[derive(Debug)]
struct CloseWithoutAnswer;

impl fmt::Display for CloseWithoutAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("closing the connection without an answer")
    }
}

impl std::error::Error for CloseWithoutAnswer {}

async fn handle(shared: Arc<Shared>, request: Request<Incoming>) -> Result<Response, CloseWithoutAnswer> {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(Body::new(body), usize::MAX).await.map_err(|_| CloseWithoutAnswer)?;
    let (service, operation, mutating, region) = identify(&parts.method, &parts.uri, &parts.headers, &body);
    let arrived = shared.started.elapsed();
    let mut call = Call { service, operation, mutating, faulted: false, arrived, region };
    let effect = {
        let mut plan = shared.plan.lock().unwrap();
        let mut chosen = None;
        for (rule, seen) in &mut plan.rules {
            if (rule.matches)(&call) {
                *seen += 1;
                if chosen.is_none() && (rule.from..=rule.to).contains(seen) {
                    chosen = Some(rule.effect.clone());
                }
            }
        }
        call.faulted = chosen.is_some();
        plan.calls.push(call.clone());
        chosen
    };
    if effect.is_some() {
        shared.injected.fetch_add(1, Ordering::SeqCst);
    }
    tokio::time::sleep(shared.latency).await;
    if let Some(Effect::Delay(pause)) = effect {
        tokio::time::sleep(pause).await;
    }
    match effect {
        None | Some(Effect::Delay(_)) => Ok(relay(&shared, parts, body)
            .await
            .unwrap_or_else(|error| plain(StatusCode::BAD_GATEWAY, error.to_string()))),
        Some(Effect::Error(kind)) => Ok(error_response(&shared, &call.service, &kind)),
        Some(Effect::Drop) => Err(CloseWithoutAnswer),
        Some(Effect::LostReply) => {
            let _ = relay(&shared, parts, body).await;
            Err(CloseWithoutAnswer)
        }
        Some(Effect::Hang) => std::future::pending().await,
        Some(Effect::StripFromAnswer(member)) => {
            let answer = match relay(&shared, parts, body).await {
                Ok(answer) => without_member(answer, member).await,
                Err(error) => Err(error),
            };
            Ok(answer.unwrap_or_else(|error| plain(StatusCode::BAD_GATEWAY, error.to_string())))
        }
    }
}

/// `answer` with every `member` taken out of its JSON body.
async fn without_member(answer: Response, member: &str) -> Result<Response> {
    fn strip(value: &mut serde_json::Value, member: &str) {
        match value {
            serde_json::Value::Object(map) => {
                map.remove(member);
                map.values_mut().for_each(|v| strip(v, member));
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(|v| strip(v, member)),
            _ => {}
        }
    }
    let (parts, body) = answer.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await?;
    let mut json: serde_json::Value = serde_json::from_slice(&bytes)?;
    strip(&mut json, member);
    Ok(Response::from_parts(parts, Body::from(json.to_string())))
}

fn plain(status: StatusCode, body: String) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response
}

async fn relay(shared: &Shared, parts: axum::http::request::Parts, body: Bytes) -> Result<Response> {
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut headers = HeaderMap::new();
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            headers.append(name.clone(), value.clone());
        }
    }
    let answer = shared
        .client
        .request(parts.method, format!("{}{path}", shared.upstream))
        .headers(headers)
        .body(body)
        .send()
        .await?;
    let mut response = Response::builder().status(answer.status().as_u16());
    for (name, value) in answer.headers() {
        if name != "content-length" && name != "transfer-encoding" && name != "connection" {
            response = response.header(name.as_str(), value.as_bytes());
        }
    }
    Ok(response.body(Body::from(answer.bytes().await?))?)
}

/// The error as `service` sends it: awsQuery XML for IAM and STS, awsJson 1.1 for Logs and
/// Secrets Manager, REST-JSON for Lambda, API Gateway and unknown services; `x-amzn-ErrorType`
/// from all but IAM, STS and Logs.
fn error_response(shared: &Shared, service: &str, kind: &ErrorKind) -> Response {
    let (status, code, message) = kind.shape(service);
    let request_id = request_id(shared);
    let (content_type, body) = match service {
        "iam" | "sts" => {
            let namespace = if service == "iam" {
                "https://iam.amazonaws.com/doc/2010-05-08/"
            } else {
                "https://sts.amazonaws.com/doc/2011-06-15/"
            };
            let party = if status >= 500 { "Receiver" } else { "Sender" };
            let body = format!(
                "<ErrorResponse xmlns=\"{namespace}\">\n  <Error>\n    <Type>{party}</Type>\n    \
                 <Code>{}</Code>\n    <Message>{}</Message>\n  </Error>\n  \
                 <RequestId>{request_id}</RequestId>\n</ErrorResponse>\n",
                xml_escape(&code),
                xml_escape(&message),
            );
            ("text/xml", body)
        }
        "logs" | "secretsmanager" => (
            "application/x-amz-json-1.1",
            serde_json::json!({"__type": code, "message": message}).to_string(),
        ),
        "lambda" => {
            let party = if status >= 500 { "Service" } else { "User" };
            let mut body = serde_json::json!({"Type": party, "message": message});
            if matches!(kind, ErrorKind::Throttling) {
                body["Reason"] = "CallerRateLimitExceeded".into();
            }
            ("application/json", body.to_string())
        }
        _ => ("application/json", serde_json::json!({"message": message}).to_string()),
    };
    let mut response = Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("x-amzn-RequestId", request_id);
    if !matches!(service, "iam" | "sts" | "logs") {
        response = response.header("x-amzn-ErrorType", code.as_str());
    }
    response.body(Body::from(body)).expect("a valid error response")
}

fn request_id(shared: &Shared) -> String {
    let n = shared.request_ids.fetch_add(1, Ordering::SeqCst);
    let high = shared.random.hash_one(n);
    let low = shared.random.hash_one(!n);
    let hex = format!("{high:016x}{low:016x}");
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Service, operation and whether it changes anything.
/// The call's service, operation, whether it changes something, and its region (the SigV4
/// credential scope's; empty when unsigned).
fn identify(method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> (String, String, bool, String) {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let target = header("x-amz-target").map(|target| target.rsplit('.').next().unwrap_or(target).to_string());
    let form =
        header("content-type").is_some_and(|kind| kind.starts_with("application/x-www-form-urlencoded"));
    let action = query_param(uri.query().unwrap_or(""), "Action").or_else(|| {
        let body = std::str::from_utf8(body).ok().filter(|_| form)?;
        query_param(body, "Action")
    });
    let credential = header("authorization")
        .and_then(|auth| auth.split("Credential=").nth(1))
        .map(|credential| credential.split([',', ' ']).next().unwrap_or("").to_string())
        .or_else(|| {
            query_param(uri.query().unwrap_or(""), "X-Amz-Credential").map(|c| c.replace("%2F", "/"))
        });
    let scope = |part: usize| credential.as_deref().and_then(|c| c.split('/').nth(part)).map(str::to_string);
    let region = scope(2).unwrap_or_default();
    let service = scope(3)
        .unwrap_or_else(|| guess_service(uri.path(), target.is_some(), header("x-amz-target"), &action));
    match target.or(action) {
        Some(operation) => {
            let reads = ["Get", "List", "Describe"].iter().any(|prefix| operation.starts_with(prefix));
            (service, operation, !reads, region)
        }
        None => {
            let operation = format!("{method} {}", rest_path(uri.path()));
            (service, operation, *method != Method::GET && *method != Method::HEAD, region)
        }
    }
}

/// The service of an unsigned request, from what its protocol looks like.
fn guess_service(path: &str, json: bool, target: Option<&str>, action: &Option<String>) -> String {
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    let service = if json {
        if target.is_some_and(|target| target.starts_with("Logs_")) { "logs" } else { "" }
    } else if let Some(action) = action {
        let sts =
            ["AssumeRole", "GetCallerIdentity", "GetSessionToken", "GetFederationToken", "GetAccessKeyInfo"];
        if sts.iter().any(|name| action.starts_with(name)) { "sts" } else { "iam" }
    } else if is_api_version(first) {
        "lambda"
    } else if [
        "restapis",
        "apikeys",
        "usageplans",
        "domainnames",
        "account",
        "clientcertificates",
        "vpclinks",
    ]
    .contains(&first)
    {
        "apigateway"
    } else {
        ""
    };
    service.to_string()
}

fn query_param(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_string())
}

/// Words of Lambda's and API Gateway's REST paths that are never ids.
const PATH_WORDS: &[&str] = &[
    "functions",
    "configuration",
    "code",
    "policy",
    "invocations",
    "invoke-async",
    "versions",
    "aliases",
    "url",
    "urls",
    "concurrency",
    "provisioned-concurrency",
    "event-invoke-config",
    "event-source-mappings",
    "code-signing-config",
    "code-signing-configs",
    "recursion-config",
    "runtime-management-config",
    "layers",
    "tags",
    "account-settings",
    "restapis",
    "resources",
    "methods",
    "integration",
    "responses",
    "deployments",
    "stages",
    "authorizers",
    "models",
    "requestvalidators",
    "gatewayresponses",
    "documentation",
    "parts",
    "apikeys",
    "usageplans",
    "keys",
    "usage",
    "domainnames",
    "basepathmappings",
    "account",
    "vpclinks",
    "clientcertificates",
    "exports",
    "sdks",
    "import",
    "sdktypes",
    // API Gateway v2 (HTTP APIs).
    "v2",
    "apis",
    "routes",
    "integrations",
];

/// A REST path with its ids replaced by placeholders named after the collection before them.
fn rest_path(path: &str) -> String {
    let mut normalized = String::new();
    let mut previous: Option<&str> = None;
    let mut previous_was_id = false;
    for segment in path.split('/').filter(|segment| !segment.is_empty()) {
        let literal = previous_was_id
            || previous.is_none() && is_api_version(segment)
            || PATH_WORDS.contains(&segment) && previous != Some("tags");
        normalized.push('/');
        if literal {
            normalized.push_str(segment);
        } else {
            normalized.push_str(match previous {
                Some("functions" | "layers" | "aliases" | "stages" | "domainnames") => "{name}",
                Some("methods") => "{http_method}",
                Some("responses") => "{status_code}",
                Some("tags") => "{arn}",
                Some("policy") => "{sid}",
                Some("versions") => "{version}",
                _ => "{id}",
            });
        }
        previous_was_id = !literal;
        previous = Some(segment);
    }
    if normalized.is_empty() { "/".to_string() } else { normalized }
}

/// `2015-03-31`: the API version Lambda's paths start with.
fn is_api_version(segment: &str) -> bool {
    let bytes = segment.as_bytes();
    bytes.len() == 10
        && bytes
            .iter()
            .enumerate()
            .all(|(i, b)| if i == 4 || i == 7 { *b == b'-' } else { b.is_ascii_digit() })
}
