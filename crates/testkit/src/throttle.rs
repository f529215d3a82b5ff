//! A loopback proxy in front of an AWS emulator that answers the first API Gateway
//! DeleteRestApi calls as API Gateway does when its per-account rate is exceeded (HTTP 429,
//! `x-amzn-ErrorType: TooManyRequestsException`), and forwards everything else unchanged.
//! moto never throttles; this lets a test prove `down` waits and retries.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Result;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};

struct Shared {
    upstream: String,
    client: reqwest::Client,
    throttles_left: AtomicUsize,
    throttled: AtomicUsize,
}

pub struct ThrottlingProxy {
    address: SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl ThrottlingProxy {
    /// Forwards to `upstream` (such as moto's endpoint), refusing the first `throttles`
    /// DeleteRestApi calls.
    pub async fn start(upstream: &str, throttles: usize) -> Result<Self> {
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_string(),
            client: reqwest::Client::new(),
            throttles_left: AtomicUsize::new(throttles),
            throttled: AtomicUsize::new(0),
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

    /// How many calls it refused so far.
    pub fn throttled(&self) -> usize {
        self.shared.throttled.load(Ordering::SeqCst)
    }
}

impl Drop for ThrottlingProxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn forward(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let is_delete_api = request.method() == Method::DELETE
        && request.uri().path().starts_with("/restapis/")
        && request.uri().path().matches('/').count() == 2;
    let take = |left: usize| left.checked_sub(1);
    if is_delete_api && shared.throttles_left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, take).is_ok() {
        shared.throttled.fetch_add(1, Ordering::SeqCst);
        let headers = [("x-amzn-errortype", "TooManyRequestsException"), ("retry-after", "30")];
        return (StatusCode::TOO_MANY_REQUESTS, headers, r#"{"message":"Too Many Requests"}"#)
            .into_response();
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
