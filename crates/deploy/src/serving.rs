//! Whether the gateway `up` just made serves, before `up` removes the one it replaces: one
//! request through the new URL, as a client sends it, until the function or the gateway's own
//! check of the caller answers it. A REST API is asked with a CORS preflight, which reaches the
//! function whatever the API key (`{proxy+}` passes OPTIONS on); an HTTP API or a function URL
//! answers preflights itself, so it is asked for a token. What AWS documents as taking time (a
//! new API's host name, a new URL) is waited for, up to [`WAIT`].

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::desired::Gateway;

/// How long a new gateway may take to answer.
pub const WAIT: Duration = Duration::from_secs(60);
/// Each request: a token server answers in well under this.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Between two requests that found no answer yet.
const PAUSE: Duration = Duration::from_millis(500);

/// What asking the new URL found.
#[derive(Debug, PartialEq, Eq)]
pub enum Probed {
    Serves,
    /// It is gone: another run removed it.
    Gone,
}

/// Asks `url` until it serves, or `still_there` says the gateway is gone, or `wait` ([`WAIT`])
/// passes (an error saying what answered last). `origin` is one the stack allows.
pub async fn await_serving<F, Fut>(
    gateway: Gateway,
    url: &str,
    origin: &str,
    wait: Duration,
    still_there: F,
) -> Result<Probed>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<bool>>,
{
    let client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .context("starting an HTTP client")?;
    let deadline = Instant::now() + wait;
    loop {
        let last = match ask(&client, gateway, url, origin).await {
            Ok((status, body)) if serves(status, &body) => return Ok(Probed::Serves),
            Ok((status, body)) => format!("HTTP {status} {}", body.chars().take(120).collect::<String>()),
            Err(error) => format!("{error:#}"),
        };
        if !still_there().await? {
            return Ok(Probed::Gone);
        }
        if Instant::now() >= deadline {
            bail!(
                "the new gateway's URL {url} did not answer within {} s (last: {last}); the gateway it replaces is kept: run up again",
                wait.as_secs()
            );
        }
        tokio::time::sleep(PAUSE).await;
    }
}

async fn ask(client: &reqwest::Client, gateway: Gateway, url: &str, origin: &str) -> Result<(u16, String)> {
    let request = match gateway {
        Gateway::Rest => {
            client.request(reqwest::Method::OPTIONS, url).header("access-control-request-method", "GET")
        }
        Gateway::Http | Gateway::Url => client.get(url),
    };
    let answer = request.header("origin", origin).send().await?;
    let status = answer.status().as_u16();
    Ok((status, answer.text().await.unwrap_or_default()))
}

/// Whether an answer comes from the function, or from the gateway checking the caller: a 2xx;
/// a 401 (a caller without a valid token) or 429 (throttled); or the function's own refusal,
/// `{"error": ...}`. Not: the gateway's 403, 404 and 5xx (a permission not yet in effect, a
/// route or stage not yet served).
fn serves(status: u16, body: &str) -> bool {
    let functions_own = || {
        serde_json::from_str::<Value>(body).is_ok_and(|json| json.get("error").is_some_and(Value::is_string))
    };
    (200..300).contains(&status) || status == 401 || status == 429 || functions_own()
}

#[cfg(test)]
mod tests {
    use super::*;
    use wiremock::matchers::header;
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const ORIGIN: &str = "https://app.example";

    /// A gateway that answers `first` `times` times, then `then`.
    async fn gateway(first: ResponseTemplate, times: u64, then: ResponseTemplate) -> MockServer {
        let server = MockServer::start().await;
        Mock::given(header("origin", ORIGIN)).respond_with(first).up_to_n_times(times).mount(&server).await;
        Mock::given(header("origin", ORIGIN)).respond_with(then).mount(&server).await;
        server
    }

    fn json(status: u16, body: &str) -> ResponseTemplate {
        ResponseTemplate::new(status).set_body_string(body)
    }

    #[tokio::test]
    async fn a_new_gateway_is_asked_until_the_function_answers_through_it() {
        let server = gateway(json(500, r#"{"message":"Internal server error"}"#), 3, json(204, "")).await;
        let url = format!("{}/token", server.uri());
        let there = || async { anyhow::Ok(true) };
        let probed = await_serving(Gateway::Rest, &url, ORIGIN, WAIT, there).await.unwrap();
        assert_eq!(probed, Probed::Serves);
        let asked = server.received_requests().await.unwrap();
        assert_eq!(asked.len(), 4);
        // A REST API is asked with a preflight, which reaches the function whatever the key.
        assert!(asked.iter().all(|request| request.method.as_str() == "OPTIONS"));
    }

    #[tokio::test]
    async fn one_removed_meanwhile_is_gone_and_one_that_never_answers_is_an_error_keeping_the_old() {
        let forbidden = || json(403, r#"{"Message":"Forbidden"}"#);
        let server = gateway(forbidden(), 1, forbidden()).await;
        let url = format!("{}/token", server.uri());
        let gone = || async { anyhow::Ok(false) };
        assert_eq!(await_serving(Gateway::Url, &url, ORIGIN, WAIT, gone).await.unwrap(), Probed::Gone);
        let there = || async { anyhow::Ok(true) };
        let short = Duration::from_millis(1100);
        let error = await_serving(Gateway::Http, &url, ORIGIN, short, there).await.unwrap_err().to_string();
        assert!(error.contains("did not answer within 1 s (last: HTTP 403"), "{error}");
        assert!(error.ends_with("the gateway it replaces is kept: run up again"), "{error}");
        let asked = server.received_requests().await.unwrap();
        assert!(asked.iter().all(|request| request.method.as_str() == "GET"), "a token request");
    }

    #[test]
    fn the_function_or_the_gateways_check_of_the_caller_answers_and_nothing_else() {
        assert!(serves(200, r#"{"access_token":"t"}"#));
        assert!(serves(204, ""));
        assert!(serves(401, r#"{"message":"Unauthorized"}"#));
        assert!(serves(429, r#"{"message":"Too Many Requests"}"#));
        assert!(serves(502, r#"{"error":"upstream_unavailable","message":"..."}"#));
        // The gateways' own: no permission yet, no route, an API removed.
        assert!(!serves(500, r#"{"message": "Internal server error"}"#));
        assert!(!serves(403, r#"{"Message":"Forbidden"}"#));
        assert!(!serves(404, r#"{"message":"Not Found"}"#));
        assert!(!serves(503, "garbage"));
    }
}
