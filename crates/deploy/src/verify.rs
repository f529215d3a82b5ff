//! `verify`: the deployed stack answers as its app will use it. Through the stack's URL, as a
//! browser on the first allowed origin would: the CORS preflight, then the token request (with
//! the stack's API key when its methods want one), checked against what this provider's function
//! gives: a token, or, for a minting provider whose callers prove who they are, a well-formed 401
//! unless a bearer token is given. What AWS documents as taking time (a new API's host name, a new
//! key reaching the stage) is waited for, bounded and in view. A failure says what answered and
//! how, with the function's log lines when the function is at fault. No token or key is shown.

use std::collections::HashSet;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use serde::Serialize;
use serde_json::Value;
use tokendeploy_config::origins::AllowedOrigins;
use tokendeploy_config::{ProviderKind, SECRET_ARN};

use crate::aws::{Aws, causes};
use crate::desired::invoke_url;
use crate::logs;
use crate::resources::function_url;
use crate::resources::http_api::{self, HttpApiState};
use crate::resources::permission;
use crate::resources::rest_api::api_key;
use crate::snapshot::{self, Snapshot};
use crate::stack::Stack;

/// How long `verify` waits, by default, for what AWS documents as taking time.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(90);
/// Each request: a token server answers in well under this.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// The identity and room named on a minting provider's request when callers name themselves.
pub const VERIFY_NAME: &str = "tokendeploy-verify";
/// The origin a preflight comes from when any origin is allowed.
const ANY_ORIGIN: &str = "https://verify.tokendeploy.invalid";

#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// A caller's token from the app's sign-in, for a minting provider in `jwt` mode.
    pub bearer: Option<String>,
    /// How long to wait for a new API's host name and a new key to work.
    pub wait: Duration,
}

/// What `verify --output json` prints (and `up --verify` as its `verify` field).
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub name: String,
    pub region: String,
    pub url: String,
    /// The origin the requests came from, as a browser's would.
    pub origin: String,
    pub provider: String,
    pub checks: Vec<Check>,
    pub ok: bool,
    /// What failed, in one line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// The function's log entries for the failed requests, when the function is at fault.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub function_logs: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// `preflight` or `token`.
    pub name: &'static str,
    pub ok: bool,
    /// The status that answered, if any did.
    pub status: Option<u16>,
    /// What answered, in words (never a token or key).
    pub said: String,
    pub seconds: f64,
}

/// What the token request must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expected {
    Token,
    /// A minting provider checking its callers' sign-in, asked without a bearer token.
    SignInRequired,
}

/// One answer, as much of it as the checks read.
struct Answer {
    status: u16,
    /// `x-amzn-ErrorType`: API Gateway answered by itself.
    gateway_error: Option<String>,
    allow_origin: Option<String>,
    www_authenticate: Option<String>,
    json: Option<Value>,
}

impl Answer {
    fn error_code(&self) -> Option<&str> {
        self.json.as_ref().and_then(|body| body["error"].as_str())
    }

    /// In words, never quoting a token.
    fn said(&self) -> String {
        let body = self.json.as_ref();
        match (&self.gateway_error, self.error_code()) {
            (Some(kind), _) => {
                let message = body.and_then(|b| b["message"].as_str()).unwrap_or_default();
                format!("API Gateway answered {} {kind} ({message:?})", self.status)
            }
            (None, Some(code)) => {
                let message = body.and_then(|b| b["message"].as_str()).unwrap_or_default();
                format!("the function answered {} {code}: {message}", self.status)
            }
            (None, None) if body.is_some_and(|b| b["access_token"].is_string()) => {
                format!("the function answered {} with a token", self.status)
            }
            (None, None) => format!("{} answered without a token", self.status),
        }
    }
}

/// Checks the stack answers; `note` is told what is being waited for.
pub async fn verify(
    aws: &Aws,
    stack: &Stack,
    options: &VerifyOptions,
    note: &dyn Fn(&str),
) -> crate::error::Result<VerifyReport> {
    let began = now_ms();
    let snapshot = snapshot::read(aws, stack).await?;
    let reads_secret =
        snapshot.function.ours().is_some_and(|function| function.environment.contains_key(SECRET_ARN));
    snapshot.refuse_foreign(stack, reads_secret)?;
    let deployed = Deployed::of(&snapshot, stack)?;
    let key = match &deployed.key {
        Some(id) => Some(api_key::value(aws, id).await?),
        None => None,
    };
    let url = deployed.gateway.token_url(stack, aws.endpoint_url.as_deref());
    let client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .context("starting an HTTP client")?;
    let asker = Asker { client, url: url.clone(), origin: deployed.origin.clone(), key, options };
    let mut report = VerifyReport {
        name: stack.name.clone(),
        region: stack.region.clone(),
        url,
        origin: deployed.origin.clone(),
        provider: deployed.provider.name().to_string(),
        checks: Vec::new(),
        ok: false,
        problem: None,
        function_logs: Vec::new(),
    };
    if let Some(problem) = deployed.refusal {
        report.problem = Some(problem);
        return Ok(report);
    }
    let deadline = Instant::now() + options.wait;
    let started = Instant::now();
    let preflight = asker.until_settled(deadline, note, Asker::preflight).await;
    let preflight_ok = preflight.as_ref().is_ok_and(|answer| {
        (200..300).contains(&answer.status) && deployed.allows(answer.allow_origin.as_deref())
    });
    report.checks.push(check("preflight", &preflight, preflight_ok, started));
    let expected = deployed.expected(options.bearer.is_some());
    let started = Instant::now();
    let token =
        if preflight_ok { Some(asker.until_settled(deadline, note, Asker::token).await) } else { None };
    if let Some(token) = &token {
        let token_ok = token.as_ref().is_ok_and(|answer| meets(answer, expected, &deployed));
        report.checks.push(check("token", token, token_ok, started));
    }
    report.ok = report.checks.iter().all(|check| check.ok) && report.checks.len() == 2;
    if !report.ok {
        let failed = report.checks.iter().find(|check| !check.ok).expect("a failed check");
        let answer = if failed.name == "token" { token.as_ref() } else { Some(&preflight) };
        let answer = answer.and_then(|answer| answer.as_ref().ok());
        report.problem = Some(cause(failed, answer, expected, &snapshot, &deployed, stack));
        if answer.is_some_and(function_at_fault) {
            report.function_logs = function_logs(aws, stack, began).await;
        }
    }
    Ok(report)
}

/// The origin a request comes from, as a browser's on the app's page would: the first allowed.
pub fn origin_to_ask(origins: Option<&AllowedOrigins>) -> String {
    match origins {
        Some(AllowedOrigins::List(list)) if !list.is_empty() => list[0].clone(),
        _ => ANY_ORIGIN.to_string(),
    }
}

/// What the stack's deployed state says the requests and answers must be.
struct Deployed {
    gateway: Serving,
    provider: ProviderKind,
    /// `IDENTITY_MODE=trust`: callers name themselves.
    trusting: bool,
    origins: Option<AllowedOrigins>,
    origin: String,
    /// The stack's API key, when its methods want one.
    key: Option<String>,
    /// Why no request is worth making (a disabled key).
    refusal: Option<String>,
    methods_keyed: bool,
}

impl Deployed {
    fn of(snapshot: &Snapshot, stack: &Stack) -> Result<Self> {
        let where_ = format!("stack {} in {}", stack.name, stack.region);
        let function = snapshot
            .function
            .ours()
            .with_context(|| format!("{where_} has no function: run tokendeploy up first"))?;
        let api = snapshot.api.ours().filter(|api| api.stages.deployed.is_some());
        let http = snapshot.http_api.as_ref().filter(|api| api.stage.is_some());
        let gateway = match (api, http, &snapshot.function_url) {
            (Some(api), _, _) => Serving::RestApi(api.id.clone()),
            (None, Some(http), _) => Serving::HttpApi(Box::new(http.clone())),
            (None, None, Some(url)) => Serving::FunctionUrl(url.url.clone()),
            (None, None, None) => {
                bail!("{where_} has no deployed REST API, HTTP API or function URL: run tokendeploy up first")
            }
        };
        let variable = |name: &str| function.environment.get(name).map(String::as_str);
        let provider =
            variable("TOKEN_PROVIDER").and_then(ProviderKind::parse).unwrap_or(ProviderKind::Dolby);
        let trusting =
            variable("IDENTITY_MODE").is_some_and(|mode| mode.trim().eq_ignore_ascii_case("trust"));
        let origins = variable("ALLOWED_ORIGINS").and_then(AllowedOrigins::parse);
        let origin = origin_to_ask(origins.as_ref());
        let methods_keyed = api.is_some_and(|api| api.methods.values().any(|method| method.api_key_required));
        let (key, refusal) = match snapshot.api_keys.first() {
            _ if !methods_keyed => (None, None),
            None => (
                None,
                Some(
                    "its methods want an API key, and the stack has none: run tokendeploy up --api-key"
                        .into(),
                ),
            ),
            Some(key) if !key.enabled => (
                None,
                Some(format!(
                    "its API key {} is disabled, so API Gateway refuses every token request: run tokendeploy up --api-key to enable it",
                    key.id
                )),
            ),
            Some(key) => (Some(key.id.clone()), None),
        };
        Ok(Self { gateway, provider, trusting, origins, origin, key, refusal, methods_keyed })
    }

    fn expected(&self, bearer: bool) -> Expected {
        match self.provider.mints_per_identity() && !self.trusting && !bearer {
            true => Expected::SignInRequired,
            false => Expected::Token,
        }
    }

    /// `Access-Control-Allow-Origin` lets the origin read the answer.
    fn allows(&self, allow_origin: Option<&str>) -> bool {
        match (&self.origins, allow_origin) {
            (Some(AllowedOrigins::Any), Some("*")) => true,
            (_, Some(allowed)) => allowed == self.origin,
            (_, None) => false,
        }
    }
}

struct Asker<'a> {
    client: reqwest::Client,
    url: String,
    origin: String,
    key: Option<String>,
    options: &'a VerifyOptions,
}

impl Asker<'_> {
    async fn preflight(&self) -> reqwest::Result<Answer> {
        let mut headers = Vec::new();
        if self.key.is_some() {
            headers.push("x-api-key");
        }
        if self.options.bearer.is_some() {
            headers.push("authorization");
        }
        let mut request = self
            .client
            .request(reqwest::Method::OPTIONS, &self.url)
            .header("Origin", &self.origin)
            .header("Access-Control-Request-Method", "GET");
        if !headers.is_empty() {
            request = request.header("Access-Control-Request-Headers", headers.join(","));
        }
        read(request.send().await?).await
    }

    async fn token(&self) -> reqwest::Result<Answer> {
        let mut request = self.client.get(&self.url).header("Origin", &self.origin);
        // A caller that signed in is who its token says; one that did not names itself (the
        // providers that take no identity ignore both).
        request = match self.options.bearer {
            Some(_) => request.query(&[("room", VERIFY_NAME)]),
            None => request.query(&[("identity", VERIFY_NAME), ("room", VERIFY_NAME)]),
        };
        if let Some(key) = &self.key {
            request = request.header("x-api-key", key);
        }
        if let Some(bearer) = &self.options.bearer {
            request = request.bearer_auth(bearer);
        }
        read(request.send().await?).await
    }

    /// Asks with `ask` until the answer no longer shows something still settling (no host
    /// name yet, no connection, a new key not yet accepted) or `deadline` passes.
    async fn until_settled<'s, F, Fut>(
        &'s self,
        deadline: Instant,
        note: &dyn Fn(&str),
        ask: F,
    ) -> Result<Answer>
    where
        F: Fn(&'s Self) -> Fut,
        Fut: Future<Output = reqwest::Result<Answer>>,
    {
        let mut pause = Duration::from_secs(1);
        loop {
            let asked = ask(self).await;
            let settling = match &asked {
                Err(error) if error.is_connect() || error.is_timeout() => {
                    Some(format!("no answer from {} yet ({})", host(&self.url), causes(error)))
                }
                Ok(answer)
                    if self.key.is_some() && answer.status == 403 && answer.gateway_error.is_some() =>
                {
                    Some(
                        "API Gateway does not accept the stack's API key yet (a new key can take a minute)"
                            .into(),
                    )
                }
                _ => None,
            };
            match settling {
                Some(why) if Instant::now() + pause < deadline => {
                    note(&format!("{why}; asking again in {} s", pause.as_secs()));
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(8));
                }
                _ => return asked.map_err(|error| anyhow!("{}: {}", host(&self.url), causes(&error))),
            }
        }
    }
}

async fn read(response: reqwest::Response) -> reqwest::Result<Answer> {
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let (status, gateway_error) = (response.status().as_u16(), header("x-amzn-errortype"));
    let (allow_origin, www_authenticate) =
        (header("access-control-allow-origin"), header("www-authenticate"));
    let body = response.bytes().await?;
    let json = serde_json::from_slice(&body).ok();
    Ok(Answer { status, gateway_error, allow_origin, www_authenticate, json })
}

fn meets(answer: &Answer, expected: Expected, deployed: &Deployed) -> bool {
    let readable = deployed.allows(answer.allow_origin.as_deref());
    let body = answer.json.as_ref();
    match expected {
        Expected::Token => {
            answer.status == 200
                && readable
                && body.and_then(|b| b["access_token"].as_str()).is_some_and(|token| !token.is_empty())
        }
        Expected::SignInRequired => {
            answer.status == 401
                && readable
                && answer.www_authenticate.as_deref().is_some_and(|value| value.starts_with("Bearer"))
                && answer.error_code() == Some("invalid_identity")
        }
    }
}

fn check(name: &'static str, answer: &Result<Answer>, ok: bool, started: Instant) -> Check {
    let (status, said) = match answer {
        Ok(answer) => (Some(answer.status), answer.said()),
        Err(error) => (None, format!("no answer: {error:#}")),
    };
    Check { name, ok, status, said, seconds: started.elapsed().as_secs_f64() }
}

/// The function answered with an error of its own, or failed (API Gateway's 502).
fn function_at_fault(answer: &Answer) -> bool {
    (answer.gateway_error.is_none() && answer.status >= 400)
        || (answer.gateway_error.is_some() && matches!(answer.status, 502 | 504))
}

/// The failed check in one line, with the likeliest cause the stack shows.
fn cause(
    failed: &Check,
    answer: Option<&Answer>,
    expected: Expected,
    snapshot: &Snapshot,
    deployed: &Deployed,
    stack: &Stack,
) -> String {
    let said = &failed.said;
    let request = if failed.name == "preflight" { "the CORS preflight" } else { "the token request" };
    let Some(answer) = answer else { return format!("{request} got {said}") };
    let why = match (answer.gateway_error.as_deref(), answer.status, answer.error_code()) {
        (Some(_), 500, _) if !may_invoke(snapshot, deployed) => {
            format!("{} may not invoke the function: its invoke permission is missing or for another gateway (tokendeploy up restores it)", deployed.gateway.described())
        }
        (Some(_), 500, _) => "API Gateway could not call the function (its integration or permission)".into(),
        (Some(_), 502, _) => "the function failed or answered something API Gateway cannot read (a crash, a timeout, broken code)".into(),
        (Some(_), 403, _) if deployed.methods_keyed => "API Gateway refused the stack's API key".into(),
        (Some(_), 403, _) => "API Gateway found no method for the request".into(),
        (Some(_), 429, _) => "API Gateway throttled the request (the stage's limits)".into(),
        (None, _, Some("upstream_rejected_credentials")) => {
            "the upstream token API refused the app's key and secret: check the provider's credentials given to up".into()
        }
        (None, _, Some("origin_not_allowed")) => {
            format!("the function does not allow the origin {}: check ALLOWED_ORIGINS", deployed.origin)
        }
        (None, 200, _) if expected == Expected::SignInRequired => {
            "the function gave a token to a caller that proved no sign-in".into()
        }
        (None, _, _) if !deployed.allows(answer.allow_origin.as_deref()) => {
            format!("the answer does not let the origin {} read it (CORS)", deployed.origin)
        }
        _ => match expected {
            Expected::Token => "no token in the answer".into(),
            Expected::SignInRequired => "not the 401 with WWW-Authenticate: Bearer a caller without a sign-in must get".into(),
        },
    };
    format!("{request} to stack {} in {} got {said}: {why}", stack.name, stack.region)
}

/// The function's policy lets the gateway serving the stack invoke it: a statement for this
/// API and GET, or both of a function URL's.
fn may_invoke(snapshot: &Snapshot, deployed: &Deployed) -> bool {
    let ours = &snapshot.permissions.ours;
    match &deployed.gateway {
        Serving::RestApi(api_id) => {
            let statement = ours.get(&permission::statement_id("GET"));
            statement.is_some_and(|source| source.contains(&format!(":{api_id}/")))
        }
        Serving::HttpApi(api) => {
            let statement = ours.get(permission::HTTP_SID);
            statement.is_some_and(|source| source.contains(&format!(":{}/", api.id)))
        }
        Serving::FunctionUrl(_) => [permission::URL_SID, permission::URL_INVOKE_SID]
            .iter()
            .all(|sid| ours.get(*sid).is_some_and(|grant| !grant.is_empty())),
    }
}

/// What serves the stack's token requests, as found.
enum Serving {
    /// A deployed REST API, by id.
    RestApi(String),
    /// An HTTP API with its stage.
    HttpApi(Box<HttpApiState>),
    /// A function URL, as Lambda gives it.
    FunctionUrl(String),
}

impl Serving {
    fn token_url(&self, stack: &Stack, endpoint: Option<&str>) -> String {
        match self {
            Serving::RestApi(api_id) => invoke_url(api_id, stack, endpoint),
            Serving::HttpApi(api) => http_api::token_url(api, endpoint),
            Serving::FunctionUrl(url) => function_url::token_url(url, endpoint),
        }
    }

    fn described(&self) -> &'static str {
        match self {
            Serving::RestApi(_) | Serving::HttpApi(_) => "API Gateway",
            Serving::FunctionUrl(_) => "the function URL",
        }
    }
}

/// The function's log entries since `since`, as `logs` shows them.
async fn function_logs(aws: &Aws, stack: &Stack, since: i64) -> Vec<String> {
    // Lambda writes the logs moments after the answer.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let events = logs::read(aws, stack, since - 1000).await.unwrap_or_default();
    let entries = logs::entries(&events, &mut HashSet::new());
    let lines: Vec<String> = entries.iter().map(logs::Entry::line).collect();
    lines.iter().rev().take(10).rev().cloned().collect()
}

fn host(url: &str) -> String {
    url::Url::parse(url).ok().and_then(|url| url.host_str().map(str::to_string)).unwrap_or_else(|| url.into())
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default()
}
