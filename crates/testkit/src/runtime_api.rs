//! A loopback implementation of the Lambda Runtime API (2018-06-01), so a `bootstrap` binary
//! can be run exactly as Lambda runs it: it long-polls `/runtime/invocation/next`, then posts
//! its answer to `/invocation/{id}/response` or `/invocation/{id}/error`, or reports a failed
//! start to `/runtime/init/error`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::Value;
use tokio::sync::{Mutex, mpsc};

const PREFIX: &str = "/2018-06-01/runtime";
pub const FUNCTION_ARN: &str = "arn:aws:lambda:us-west-1:123456789012:function:tokendeploy-test";

/// What the runtime posted back for one invocation, or for its start.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Response { request_id: String, body: Value },
    Error { request_id: String, body: Value },
    InitError { body: Value },
}

struct Shared {
    events: Mutex<mpsc::Receiver<(String, Value)>>,
    outcomes: mpsc::Sender<Outcome>,
}

pub struct RuntimeApi {
    address: SocketAddr,
    events: mpsc::Sender<(String, Value)>,
    outcomes: Mutex<mpsc::Receiver<Outcome>>,
    next_id: AtomicU64,
    server: tokio::task::JoinHandle<()>,
}

impl RuntimeApi {
    pub async fn start() -> Result<Self> {
        let (events_tx, events_rx) = mpsc::channel(16);
        let (outcomes_tx, outcomes_rx) = mpsc::channel(16);
        let shared = Arc::new(Shared { events: Mutex::new(events_rx), outcomes: outcomes_tx });
        let router = Router::new()
            .route(&format!("{PREFIX}/invocation/next"), get(next_invocation))
            .route(&format!("{PREFIX}/invocation/{{id}}/response"), post(invocation_response))
            .route(&format!("{PREFIX}/invocation/{{id}}/error"), post(invocation_error))
            .route(&format!("{PREFIX}/init/error"), post(init_error))
            .with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Self {
            address,
            events: events_tx,
            outcomes: Mutex::new(outcomes_rx),
            next_id: AtomicU64::new(1),
            server,
        })
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.address.to_string()
    }

    /// The variables Lambda sets for a `provided.al2023` function.
    pub fn lambda_environment(&self) -> Vec<(String, String)> {
        [
            ("AWS_LAMBDA_RUNTIME_API", self.address()),
            ("AWS_LAMBDA_FUNCTION_NAME", "tokendeploy-test".into()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".into()),
            ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/tokendeploy-test".into()),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/23/[$LATEST]0123456789abcdef".into()),
            ("AWS_REGION", "us-west-1".into()),
            ("LAMBDA_TASK_ROOT", "/var/task".into()),
            ("_HANDLER", "bootstrap".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// Hands `event` to the runtime's next poll and waits for what it posts back.
    pub async fn invoke(&self, event: Value, timeout: Duration) -> Result<Outcome> {
        let request_id = format!("req-{:08}", self.next_id.fetch_add(1, Ordering::SeqCst));
        self.events.send((request_id, event)).await.map_err(|_| anyhow!("the runtime API stopped"))?;
        self.next_outcome(timeout).await
    }

    /// The next outcome posted, whatever it is (an init error comes without an invocation).
    pub async fn next_outcome(&self, timeout: Duration) -> Result<Outcome> {
        let mut outcomes = self.outcomes.lock().await;
        tokio::time::timeout(timeout, outcomes.recv())
            .await
            .context("the runtime posted nothing back in time")?
            .ok_or_else(|| anyhow!("the runtime API stopped"))
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn next_invocation(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    // A long poll, as Lambda does it: the answer waits until there is an event.
    let Some((request_id, event)) = shared.events.lock().await.recv().await else {
        return (StatusCode::GONE, HeaderMap::new(), String::new());
    };
    let deadline = SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + Duration::from_secs(30);
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        headers.insert(name, HeaderValue::from_str(&value).expect("ASCII header value"));
    };
    set("lambda-runtime-aws-request-id", request_id.clone());
    set("lambda-runtime-deadline-ms", deadline.as_millis().to_string());
    set("lambda-runtime-invoked-function-arn", FUNCTION_ARN.into());
    set("lambda-runtime-trace-id", format!("Root=1-00000000-{request_id};Sampled=0"));
    set("content-type", "application/json".into());
    (StatusCode::OK, headers, event.to_string())
}

async fn invocation_response(
    State(shared): State<Arc<Shared>>,
    Path(request_id): Path<String>,
    body: Bytes,
) -> StatusCode {
    record(&shared, Outcome::Response { request_id, body: parse(&body) }).await
}

async fn invocation_error(
    State(shared): State<Arc<Shared>>,
    Path(request_id): Path<String>,
    body: Bytes,
) -> StatusCode {
    record(&shared, Outcome::Error { request_id, body: parse(&body) }).await
}

async fn init_error(State(shared): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    record(&shared, Outcome::InitError { body: parse(&body) }).await
}

async fn record(shared: &Shared, outcome: Outcome) -> StatusCode {
    let _ = shared.outcomes.send(outcome).await;
    StatusCode::ACCEPTED
}

fn parse(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}
