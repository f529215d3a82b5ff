//! `tokendeploy serve`: the token function's own handler on this machine, over HTTP, with the
//! same variables, routes, CORS, errors and cache as on Lambda: try it before anything touches
//! AWS.

mod server;
mod write_deadline;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use anyhow::{Context, Result};
use axum::body::{Body, to_bytes};
use axum::extract::{Request as HttpRequest, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response as HttpResponse};
use token_function::cache::SystemClock;
use token_function::config::{Config, IdentitySettings};
use token_function::{Request, TokenService};

use crate::Outcome;
use crate::cli::ServeArgs;
use crate::display::say;
use crate::settings::{function_environment, warnings};
use server::Limits;

/// The stage `up` deploys: served here too, so a client may use the path it will use on AWS.
const STAGE: &str = "prod";
/// The most of a body read: far more than a token request, far less than API Gateway's 10 MB.
const MAX_BODY_BYTES: usize = 1024 * 1024;
/// The longest URL read: a token request's is well under 1 KiB, API Gateway's limit is 8 KiB.
const MAX_URI_BYTES: usize = 8 * 1024;

/// The example client (`examples/client`, a link to the crate's `client/`: a published crate
/// holds only its own files), built into the binary for `serve --client`.
const CLIENT_PAGE: &str = include_str!("../../../client/index.html");
const CLIENT_SCRIPT: &str = include_str!("../../../client/token-client.js");

pub async fn run(args: ServeArgs) -> Result<Outcome> {
    // The same checks as `up`, before anything listens.
    let environment = function_environment(args.settings.env_file.as_deref(), args.settings.flags())?;
    for warning in warnings(&environment) {
        say(&warning);
    }
    let config = Config::from_lookup(|name| environment.variables.get(name).cloned())?;
    let address = SocketAddr::new(args.host, args.port);
    let listener = tokio::net::TcpListener::bind(address).await.map_err(|e| cannot_listen(address, &e))?;
    let address = listener.local_addr()?;
    if !is_loopback(args.host) {
        say(&format!("warning: serving on {address}, reachable from other machines (--host)"));
    }
    init_logging();
    // Listening for the stop signals before saying it serves: one sent from then on stops it.
    let stop = crate::signals::stop()?;
    say(&startup_line(&config, address, args.client));
    let service = Arc::new(TokenService::new(Ok(config), Arc::new(SystemClock)));
    let limits = Limits::SERVE;
    let served = Served { service, client: args.client, body_timeout: limits.body };
    let app = axum::Router::new().fallback(answer).with_state(served);
    let signal = server::serve(listener, app, limits, stop).await.context("serving tokens")?;
    say(&format!("stopped ({signal})"));
    Ok(Outcome::Done)
}

/// Loopback, IPv4-mapped IPv6 loopback (`::ffff:127.0.0.1`) included.
fn is_loopback(host: IpAddr) -> bool {
    host.to_canonical().is_loopback()
}

/// Why `address` cannot be listened on, and which flag to change.
fn cannot_listen(address: SocketAddr, error: &std::io::Error) -> crate::UsageError {
    use std::io::ErrorKind;
    let fix = match error.kind() {
        ErrorKind::AddrInUse => format!("port {} is taken: pass another --port", address.port()),
        ErrorKind::AddrNotAvailable => {
            format!("{} is not an address of this machine: pass another --host", address.ip())
        }
        ErrorKind::PermissionDenied => {
            format!("port {} needs privileges: pass a --port from 1024 up", address.port())
        }
        _ => format!("{error}: pass another --host or --port"),
    };
    crate::UsageError(format!("cannot listen on {address}: {fix}"))
}

#[derive(Clone)]
struct Served {
    service: Arc<TokenService>,
    client: bool,
    /// How long a request's body may take to arrive.
    body_timeout: std::time::Duration,
}

/// One request: the example client's files when asked for, else the function's answer.
async fn answer(State(served): State<Served>, request: HttpRequest) -> HttpResponse {
    if served.client && request.method() == "GET" {
        match request.uri().path() {
            "/" => {
                return ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], CLIENT_PAGE).into_response();
            }
            "/token-client.js" => {
                return ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], CLIENT_SCRIPT)
                    .into_response();
            }
            _ => {}
        }
    }
    let (parts, body) = request.into_parts();
    if parts.uri.to_string().len() > MAX_URI_BYTES {
        return refused(StatusCode::URI_TOO_LONG, "uri_too_long", "the URL is longer than 8 KiB");
    }
    let body = match tokio::time::timeout(served.body_timeout, to_bytes(body, MAX_BODY_BYTES)).await {
        Ok(Ok(body)) => body,
        Ok(Err(_)) => {
            return refused(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the body is larger than 1 MiB",
            );
        }
        Err(_) => {
            let message = format!("the body did not arrive within {} s", served.body_timeout.as_secs());
            return refused(StatusCode::REQUEST_TIMEOUT, "request_timeout", &message);
        }
    };
    let request = Request {
        method: parts.method.as_str().to_string(),
        path: parts.uri.path().to_string(),
        stage: Some(STAGE.into()),
        origin: header_text(&parts.headers, header::ORIGIN),
        authorization: header_text(&parts.headers, header::AUTHORIZATION),
        query: parts
            .uri
            .query()
            .map(|query| url::form_urlencoded::parse(query.as_bytes()).into_owned().collect())
            .unwrap_or_default(),
        body: (!body.is_empty()).then(|| body.to_vec()),
    };
    let answered = served.service.handle(&request).await;
    let mut response = HttpResponse::new(Body::from(answered.body));
    *response.status_mut() =
        StatusCode::from_u16(answered.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in answered.headers {
        if let Ok(value) = value.parse() {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// A request refused before the function sees it, in the function's error shape.
fn refused(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    let body = serde_json::json!({ "error": code, "message": message }).to_string();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// A header as the Lambda event reader gives it: values joined with `", "`, and one that is not
/// text still present (as lossy text), so it is on no allow-list.
fn header_text(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    let values: Vec<String> = headers
        .get_all(name)
        .iter()
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        .collect();
    (!values.is_empty()).then(|| values.join(", "))
}

fn startup_line(config: &Config, address: SocketAddr, client: bool) -> String {
    let identity = match &config.identity {
        None => "none (one token for the app)",
        Some(IdentitySettings::Jwt(_)) => "jwt (bearer tokens verified)",
        Some(IdentitySettings::Trust) => "trust (demos only)",
    };
    let mut line = format!(
        "serving tokens at http://{address}/token (also /{STAGE}/token): provider {}, identity {identity}",
        config.provider.name()
    );
    if client {
        line.push_str(&format!("; example client at http://{address}/"));
    }
    line + "; Ctrl-C (or SIGTERM) stops"
}

/// One line a request on stderr, as the function logs on Lambda (never a secret or a header).
fn init_logging() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        // Its complaint about a line it could not write goes to stderr too, and panics when
        // stderr is closed (`serve 2>&1 | head`): a log line is not worth a request's answer.
        .log_internal_errors(false)
        .try_init();
}
