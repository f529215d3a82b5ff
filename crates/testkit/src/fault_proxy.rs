//! A loopback proxy in front of an AWS emulator that answers the first few matching calls with
//! an error exactly as the real service sends it, and forwards everything else unchanged.
//! moto never throttles and IAM there is instantly consistent; this lets tests prove that
//! `up` and `down` wait out what real AWS does.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Result;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};

/// An error the real service answers some calls with.
#[derive(Debug, Clone)]
pub struct Fault {
    pub method: Method,
    pub path: fn(&str) -> bool,
    pub status: StatusCode,
    /// The `x-amzn-ErrorType` the SDK reads the error code from.
    pub error_type: &'static str,
    pub body: &'static str,
}

impl Fault {
    /// API Gateway allows about one DeleteRestApi every 30 seconds per account.
    pub fn delete_rest_api_throttled() -> Self {
        Self {
            method: Method::DELETE,
            path: |path| path.starts_with("/restapis/") && path.matches('/').count() == 2,
            status: StatusCode::TOO_MANY_REQUESTS,
            error_type: "TooManyRequestsException",
            body: r#"{"message":"Too Many Requests"}"#,
        }
    }

    /// Lambda's answer to CreateFunction while a new role has not reached it (IAM is
    /// eventually consistent).
    pub fn role_not_yet_assumable() -> Self {
        Self {
            method: Method::POST,
            path: |path| path == "/2015-03-31/functions" || path == "/2015-03-31/functions/",
            status: StatusCode::BAD_REQUEST,
            error_type: "InvalidParameterValueException",
            body: r#"{"Type":"User","message":"The role defined for the function cannot be assumed by Lambda."}"#,
        }
    }
}

struct Shared {
    upstream: String,
    client: reqwest::Client,
    fault: Fault,
    faults_left: AtomicUsize,
    injected: AtomicUsize,
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
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_string(),
            client: reqwest::Client::new(),
            fault,
            faults_left: AtomicUsize::new(times),
            injected: AtomicUsize::new(0),
        });
        let router = Router::new().fallback(forward).with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Self { address, shared, server })
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// How many calls it answered with the fault so far.
    pub fn injected(&self) -> usize {
        self.shared.injected.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn forward(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let fault = &shared.fault;
    let matches = *request.method() == fault.method && (fault.path)(request.uri().path());
    let take = |left: usize| left.checked_sub(1);
    if matches && shared.faults_left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, take).is_ok() {
        shared.injected.fetch_add(1, Ordering::SeqCst);
        let headers = [("x-amzn-errortype", fault.error_type), ("content-type", "application/json")];
        return (fault.status, headers, fault.body).into_response();
    }
    match relay(&shared, request).await {
        Ok(response) => response,
        Err(error) => (StatusCode::BAD_GATEWAY, error.to_string()).into_response(),
    }
}

async fn relay(shared: &Shared, request: Request) -> Result<Response> {
    let (parts, body) = request.into_parts();
    let body: Bytes = axum::body::to_bytes(body, usize::MAX).await?;
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
