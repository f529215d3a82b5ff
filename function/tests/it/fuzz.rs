//! A seeded property test: random events (every shape, garbage included) against random
//! upstream answers, first in-process through the function's event reader, then through the
//! packaged `bootstrap` binary run as Lambda runs it.
//!
//! For every case: the function answers (no panic, and the binary is still running and answers
//! the next invocation), the answer is a valid Lambda HTTP answer with a JSON body, CORS
//! headers go only where they belong, and neither the answer nor any log line holds the
//! secret. `FUZZ_SEED=<n>` replays another seed; the cases run are printed.
//!
//! One test, so that its scoped log subscriber sees every log line (see tests/logs.rs).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::common::*;
use serde_json::{Value, json};
use tokendeploy_testkit::runtime_api::{Outcome, RuntimeApi};
use tokio::io::AsyncReadExt;
use tokio::process::Child;
use wiremock::{MockServer, Respond, ResponseTemplate};

const IN_PROCESS_CASES: usize = 5000;
const BINARY_CASES: usize = 600;
/// The longest token handed out (the function's cap on what it passes on).
const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// The largest answer the caps allow: two such tokens, each character JSON-escaped at worst
/// (`\u0000`), and a little JSON around them.
const MAX_ANSWER_BODY: usize = 2 * 6 * MAX_TOKEN_BYTES + 1024;
const UPSTREAM_TIMEOUT_MS: u64 = 250;
const OTHER_ORIGIN: &str = "http://localhost:8080";

/// xorshift64*: small, seeded, the same sequence on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn percent(&mut self, p: usize) -> bool {
        self.below(100) < p
    }
    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())].clone()
    }
}

// ---- Random values ----

const ODD_TEXT: &[&str] = &[
    "",
    " ",
    "a b",
    "\u{0}",
    "\r\n",
    "\t",
    "\u{7f}",
    "\u{80}",
    "\u{ff}",
    "ä",
    "😀",
    "%",
    "%zz",
    "%00",
    "/",
    "//",
    "?",
    "#",
    ":",
    "[",
    "[::1",
    "http://",
    "https://x/y?z#w",
    "a=%zz&&=&%",
    "\\",
    "\"",
    "{}",
    "null",
    "$default",
    "token",
    "\u{202e}",
    "\u{fffd}",
];

fn random_text(rng: &mut Rng) -> String {
    match rng.below(6) {
        0 => rng.pick(ODD_TEXT).to_string(),
        1 => (0..rng.below(12)).map(|_| rng.pick(ODD_TEXT)).collect(),
        2 => (0..rng.below(30)).map(|_| char::from(32 + rng.below(95) as u8)).collect(),
        3 => (0..rng.below(30))
            .map(|_| char::from_u32(rng.below(0x11_0000) as u32).unwrap_or('\u{fffd}'))
            .collect(),
        4 => rng.pick(ODD_TEXT).repeat(1 + rng.below(20_000)),
        _ => (0..rng.below(8)).map(|_| char::from(rng.below(32) as u8)).collect(),
    }
}

fn random_json(rng: &mut Rng, depth: usize) -> Value {
    match rng.below(if depth > 2 { 6 } else { 8 }) {
        0 => Value::Null,
        1 => json!(rng.percent(50)),
        2 => {
            let any = rng.next() as i64;
            json!(rng.pick(&[0i64, 1, -1, i64::MIN, i64::MAX, any]))
        }
        3 => {
            let any = rng.next();
            json!(rng.pick(&[u64::MAX, any]))
        }
        4 => {
            let any = rng.next() as f64 / 7.0;
            json!(rng.pick(&[0.5, -0.0, 1e30, -1e30, f64::MAX, f64::MIN_POSITIVE, any]))
        }
        5 => json!(random_text(rng)),
        6 => Value::Array((0..rng.below(4)).map(|_| random_json(rng, depth + 1)).collect()),
        _ => Value::Object(
            (0..rng.below(4)).map(|_| (random_text(rng), random_json(rng, depth + 1))).collect(),
        ),
    }
}

// ---- Random events ----

/// What the generator knows of the `Origin` it put in the event.
#[derive(Debug, Clone, PartialEq)]
enum OriginSpec {
    Absent,
    /// On the list (exactly as sent by a browser).
    Listed(String),
    /// Present, on no list.
    Refused,
    /// Tampered with afterwards: no expectation.
    Unknown,
}

struct Event {
    json: Value,
    origin: OriginSpec,
    /// The answer shape ("rest", "http", "alb") when the event's structure was left intact.
    shape: Option<&'static str>,
    /// Whether this is a well-formed `GET /token` (only then may a token be handed out);
    /// `None` when the event was tampered with.
    gets_token: Option<bool>,
}

fn random_method(rng: &mut Rng) -> Value {
    match rng.below(16) {
        0..=9 => json!("GET"),
        10 => json!("OPTIONS"),
        11 => json!(rng.pick(&["POST", "DELETE", "PUT", "HEAD", "PATCH", "get", "Get", "TRACE", "CONNECT"])),
        12 => json!(rng.pick(&["", "G E T", "GET\u{0}", "ÄÖÜ", " GET", "GET\r\n"])),
        13 => json!("X".repeat(rng.below(100_000))),
        14 => json!(random_text(rng)),
        _ => random_json(rng, 1),
    }
}

fn random_path(rng: &mut Rng) -> Value {
    match rng.below(20) {
        0..=10 => json!("/token"),
        11 => json!("/prod/token"),
        12 => json!("/token/"),
        13 => json!(rng.pick(&[
            "//token",
            "/%",
            "/%zz",
            "/%74oken",
            "/tökén",
            "/token?x=1",
            "",
            "token",
            "/",
            "/TOKEN",
            "/token%00",
            "/token\u{0}",
            "/./token",
            "/../token",
            "/token#x"
        ])),
        14 => json!(format!("/{}", "a".repeat(rng.below(200_000)))),
        15 => json!(format!("/{}", random_text(rng))),
        16 => json!("/".repeat(1 + rng.below(1000))),
        17 => json!(random_text(rng)),
        18 => json!(format!("/token{}", random_text(rng))),
        _ => random_json(rng, 1),
    }
}

/// An `Origin` value and what it means to the list `ORIGIN, http://localhost:8080`.
fn random_origin(rng: &mut Rng) -> (Option<Value>, OriginSpec) {
    match rng.below(12) {
        0..=2 => (None, OriginSpec::Absent),
        3..=4 => (Some(json!(ORIGIN)), OriginSpec::Listed(ORIGIN.into())),
        5 => (Some(json!(OTHER_ORIGIN)), OriginSpec::Listed(OTHER_ORIGIN.into())),
        6 => (Some(json!("HTTPS://APP.EXAMPLE.COM")), OriginSpec::Listed("HTTPS://APP.EXAMPLE.COM".into())),
        7 => {
            let refused = rng.pick(&[
                "https://evil.example",
                "https://äpp.example.com",
                "https://app.example.com\u{0}",
                "https://app.example.com\r\nX-Injected: 1",
                "https://app.example.com ",
                " https://app.example.com",
                "https://app.example.com/",
                "https://app.example.com:443",
                "null",
                "",
                "\u{7f}",
                "*",
            ]);
            (Some(json!(refused)), OriginSpec::Refused)
        }
        8 => (Some(json!(format!("{ORIGIN}{}", "\u{1}".repeat(1 + rng.below(5))))), OriginSpec::Refused),
        9 => (Some(json!(ORIGIN.repeat(1 + rng.below(5000)))), OriginSpec::Unknown),
        10 => (Some(json!(random_text(rng))), OriginSpec::Unknown),
        _ => (Some(random_json(rng, 1)), OriginSpec::Unknown),
    }
}

fn set_header(event: &mut Value, map: &str, name: &str, value: Value, multi: bool) {
    let Some(headers) = event.get_mut(map).and_then(Value::as_object_mut) else {
        return;
    };
    headers.retain(|key, _| !key.eq_ignore_ascii_case(name));
    let value = if multi && !value.is_null() { json!([value]) } else { value };
    headers.insert(name.to_string(), value);
}

fn remove_header(event: &mut Value, name: &str) {
    for map in ["headers", "multiValueHeaders"] {
        if let Some(headers) = event.get_mut(map).and_then(Value::as_object_mut) {
            headers.retain(|key, _| !key.eq_ignore_ascii_case(name));
        }
    }
}

fn random_event(rng: &mut Rng, aws: &[(String, Value)]) -> Event {
    let (mut json, shape) = match rng.below(20) {
        0..=7 => (rest_event("GET", "/token", None), "rest"),
        8..=11 => (http_api_event(), "http"),
        12..=13 => (function_url_event(None), "http"),
        14 => (alb_event(None), "alb"),
        15 => {
            let mut event = alb_event(None);
            let map = event.as_object_mut().unwrap();
            map.remove("multiValueHeaders");
            map.insert("headers".into(), json!({ "host": "alb.example" }));
            (event, "alb")
        }
        16 => {
            let (name, event) = rng.pick(aws);
            let shape = if name.contains("alb") {
                "alb"
            } else if event["version"] == "2.0" {
                "http"
            } else {
                "rest"
            };
            (event, shape)
        }
        17 => {
            let garbage = if rng.percent(30) { console_sample_event() } else { random_json(rng, 0) };
            return Event { json: garbage, origin: OriginSpec::Unknown, shape: None, gets_token: None };
        }
        _ => (rest_event("GET", "/token", None), "rest"),
    };
    let mut intact = !is_no_request(&json);

    // Method and path, where this shape keeps them.
    let method = random_method(rng);
    let path = random_path(rng);
    match shape {
        "http" => {
            json["requestContext"]["http"]["method"] = method.clone();
            json["rawPath"] = path.clone();
            if rng.percent(50) {
                json["requestContext"]["http"]["path"] = path.clone();
            }
        }
        _ => {
            json["httpMethod"] = method.clone();
            json["path"] = path.clone();
        }
    }
    if !method.is_string() || !path.is_string() {
        intact = false;
    }
    let stage = match shape {
        "alb" => None,
        _ => json.pointer("/requestContext/stage").and_then(Value::as_str).map(str::to_string),
    };
    let gets_token =
        method == "GET" && path.as_str().is_some_and(|path| is_token_path(path, stage.as_deref()));
    if rng.percent(10) && json.get("requestContext").is_some() {
        json["requestContext"]["stage"] =
            if rng.percent(50) { json!(random_text(rng)) } else { random_json(rng, 1) };
        intact = false;
    }

    // Origin, and headers nobody should look at.
    remove_header(&mut json, "origin");
    let (origin_value, mut origin) = random_origin(rng);
    if let Some(value) = origin_value {
        if !json.get("headers").is_some_and(Value::is_object) {
            json["headers"] = json!({});
        }
        set_header(&mut json, "headers", "Origin", value.clone(), false);
        set_header(&mut json, "multiValueHeaders", "Origin", value, true);
    }
    for name in ["Host", "X-Forwarded-Proto", "X-Forwarded-Port", "Content-Type", "Cookie"] {
        if rng.percent(30) {
            let value = if rng.percent(80) { json!(random_text(rng)) } else { random_json(rng, 1) };
            set_header(&mut json, "headers", name, value.clone(), false);
            set_header(&mut json, "multiValueHeaders", name, value, true);
        }
    }
    if rng.percent(40) {
        json["queryStringParameters"] =
            if rng.percent(70) { json!({ random_text(rng): random_text(rng) }) } else { random_json(rng, 1) };
        json["multiValueQueryStringParameters"] =
            json!({ random_text(rng): [random_text(rng), random_text(rng)] });
        json["rawQueryString"] = json!(random_text(rng));
    }
    if rng.percent(40) {
        json["body"] = if rng.percent(70) { json!(random_text(rng)) } else { random_json(rng, 1) };
        json["isBase64Encoded"] =
            rng.pick(&[json!(true), json!(false), json!("garbage"), json!(5), Value::Null]);
    }
    if rng.percent(20) {
        json["cookies"] = random_json(rng, 1);
    }

    // Now and then, break the structure itself.
    if rng.percent(8) {
        intact = false;
        origin = OriginSpec::Unknown;
        let map = json.as_object_mut().unwrap();
        let keys: Vec<String> = map.keys().cloned().collect();
        let key = if keys.is_empty() { "path".to_string() } else { rng.pick(&keys) };
        match rng.below(3) {
            0 => {
                map.remove(&key);
            }
            1 => {
                map.insert(key, random_json(rng, 1));
            }
            _ => {
                let target =
                    rng.pick(&["headers", "multiValueHeaders", "requestContext", "version", "rawPath"]);
                map.insert(target.to_string(), random_json(rng, 1));
            }
        }
    }
    Event { json, origin, shape: intact.then_some(shape), gets_token: intact.then_some(gets_token) }
}

/// An authorizer, WebSocket-without-method or VPC Lattice event: no request, whatever is set.
fn is_no_request(event: &Value) -> bool {
    event.get("methodArn").is_some() || event.get("routeArn").is_some()
}

/// Whether the function serves `path` (at `stage`) as its token path, worked out here
/// independently of the function: trailing slashes do not count, a leading `/{stage}` is
/// dropped unless the stage is `$default` or empty.
fn is_token_path(path: &str, stage: Option<&str>) -> bool {
    let trimmed = path.trim_end_matches('/');
    let unstaged = stage
        .filter(|stage| !stage.is_empty() && *stage != "$default")
        .map(|stage| format!("/{stage}"))
        .and_then(|prefix| trimmed.strip_prefix(&prefix).filter(|rest| rest.starts_with('/')))
        .unwrap_or(trimmed);
    unstaged == "/token"
}

// ---- Random upstream answers ----

const EXPIRES_IN: &[&str] = &[
    "3600",
    "0",
    "1",
    "59",
    "86400",
    "31536000",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999999999999",
    "1e30",
    "1e308",
    "1.7976931348623157e308",
    "3600.5",
    "0.1",
    "-0",
    "-0.0",
    "-1",
    "-1e30",
    "-9223372036854775808",
    "null",
    "true",
    "false",
    "[]",
    "[3600]",
    "{}",
    "{\"s\":1}",
    "\"3600\"",
    "\"1e30\"",
    "\"18446744073709551615000\"",
    "\"\"",
    "\"soon\"",
    "\"NaN\"",
    "\"inf\"",
    "\"-5\"",
    "\" 60 \"",
    "1e999",
];

struct UpstreamAnswer {
    template: ResponseTemplate,
}

fn json_string(text: &str) -> String {
    Value::String(text.to_string()).to_string()
}

fn random_upstream(rng: &mut Rng) -> UpstreamAnswer {
    let status = match rng.below(10) {
        0..=5 => 200,
        6 => rng.pick(&[201, 203, 204, 206, 299]),
        7 => rng.pick(&[401, 403]),
        8 => rng.pick(&[300, 301, 302, 304, 400, 404, 408, 429, 500, 502, 503, 504]),
        _ => 200 + rng.below(400) as u16,
    };
    let body: Vec<u8> = match rng.below(12) {
        0..=6 => {
            let mut fields = Vec::new();
            match rng.below(8) {
                0 => {}
                1 => fields.push(format!("\"access_token\":{}", random_json(rng, 1))),
                2 => fields.push(format!("\"access_token\":{}", json_string(&"t".repeat(rng.below(40_000))))),
                3 => fields.push(format!("\"access_token\":{}", json_string(&random_text(rng)))),
                _ => fields.push(format!("\"access_token\":\"at-{}\"", rng.below(1000))),
            }
            if rng.percent(50) {
                let refresh =
                    if rng.percent(80) { json_string("rt") } else { random_json(rng, 1).to_string() };
                fields.push(format!("\"refresh_token\":{refresh}"));
            }
            if rng.percent(85) {
                fields.push(format!("\"expires_in\":{}", rng.pick(EXPIRES_IN)));
            }
            if rng.percent(20) {
                fields.push(format!("\"token_type\":\"Bearer\",\"echo\":{}", json_string(SECRET)));
            }
            format!("{{{}}}", fields.join(",")).into_bytes()
        }
        7 => random_json(rng, 0).to_string().into_bytes(),
        8 => (0..rng.below(200)).map(|_| rng.next() as u8).collect(),
        9 => rng
            .pick(&["", "<html>UPSTREAM-RAW-BODY</html>", "{", "{\"access_token\":", "null", "[]"])
            .as_bytes()
            .to_vec(),
        10 => {
            format!("{{\"access_token\":\"at\",\"pad\":\"{}\"}}", "p".repeat(60_000 + rng.below(1_000_000)))
                .into_bytes()
        }
        _ => format!("invalid client {SECRET} UPSTREAM-RAW-BODY").into_bytes(),
    };
    let content_type = rng.pick(&["application/json", "text/html", "application/octet-stream"]);
    let mut template = ResponseTemplate::new(status).set_body_raw(body, content_type);
    if rng.percent(1) {
        template = template.set_delay(Duration::from_millis(UPSTREAM_TIMEOUT_MS + 100));
    }
    UpstreamAnswer { template }
}

/// The stand-in upstream: answers whatever the test last scripted.
#[derive(Clone)]
struct Scripted(Arc<Mutex<ResponseTemplate>>);

impl Respond for Scripted {
    fn respond(&self, _: &wiremock::Request) -> ResponseTemplate {
        self.0.lock().unwrap().clone()
    }
}

// ---- Configurations ----

#[derive(Debug, Clone, Copy, PartialEq)]
enum Setup {
    Listed,
    Any,
    Broken,
}

fn env_for(setup: Setup, upstream: &MockServer) -> Vec<(String, String)> {
    let mut env = function_env(upstream);
    env.push(("UPSTREAM_TIMEOUT_MS".into(), UPSTREAM_TIMEOUT_MS.to_string()));
    match setup {
        Setup::Listed => {}
        Setup::Any => {
            env.retain(|(k, _)| k != "ALLOWED_ORIGINS");
            env.push(("ALLOWED_ORIGINS".into(), "*".into()));
        }
        Setup::Broken => env.retain(|(k, _)| k != "CONSUMER_SECRET"),
    }
    env
}

// ---- The checks every answer must pass ----

fn check(answer: &Value, event: &Event, setup: Setup) -> Result<(), String> {
    if let Some(problem) = answer_problem(answer) {
        return Err(problem);
    }
    let text = answer.to_string();
    if text.contains(SECRET) || text.contains(&basic_auth()) || text.contains("UPSTREAM-RAW-BODY") {
        return Err("the answer carries the secret or the upstream's body".into());
    }
    let answer = Answer::from_lambda(answer.clone());
    if answer.body.len() > MAX_ANSWER_BODY {
        return Err(format!("a body of {} bytes, more than the caps allow", answer.body.len()));
    }
    if answer.status == 200 {
        let body = answer.json();
        for field in ["access_token", "refresh_token"] {
            if body[field].as_str().is_some_and(|token| token.len() > MAX_TOKEN_BYTES) {
                return Err(format!("{field} longer than the cap"));
            }
        }
    }
    let allow_origin = answer.header("access-control-allow-origin");
    let status = answer.status;
    if let Some(expected) = event.shape
        && answer.shape() != expected
    {
        return Err(format!("answered in the {} shape to a {expected} event", answer.shape()));
    }
    if matches!(status, 403 | 500 | 400) && allow_origin.is_some() {
        return Err(format!("a {status} with CORS headers"));
    }
    if status == 200 && event.gets_token == Some(false) {
        return Err("a token for something that is no GET /token".into());
    }
    if event.gets_token == Some(true) && !matches!(status, 200 | 403 | 500 | 502 | 504) {
        return Err(format!("a GET /token answered {status}"));
    }
    match (&event.origin, setup, allow_origin) {
        (OriginSpec::Unknown, ..) => {}
        (_, Setup::Broken, Some(_)) => return Err("CORS headers without a configuration".into()),
        (_, Setup::Broken, None) => {}
        (OriginSpec::Absent, _, Some(_)) => return Err("CORS headers without an Origin".into()),
        (OriginSpec::Absent, _, None) => {}
        (_, Setup::Any, allow) if event.shape.is_some() && status != 400 && allow != Some("*") => {
            return Err(format!("any origin allowed, but Access-Control-Allow-Origin is {allow:?}"));
        }
        (OriginSpec::Listed(origin), Setup::Listed, allow)
            if event.shape.is_some()
                && status != 400
                && (allow != Some(origin.as_str()) || answer.header("vary") != Some("Origin")) =>
        {
            return Err(format!("an allowed origin's {status} without its CORS headers"));
        }
        (OriginSpec::Refused, Setup::Listed, _) if event.shape.is_some() => {
            if !matches!(status, 403 | 404 | 400) {
                return Err(format!("a refused origin got a {status}"));
            }
            if event.gets_token == Some(true) && status != 403 {
                return Err(format!("a refused origin asking for the token got a {status}"));
            }
        }
        _ => {}
    }
    if let Some(allow) = allow_origin
        && ![ORIGIN, OTHER_ORIGIN, "HTTPS://APP.EXAMPLE.COM", "*"].contains(&allow)
    {
        return Err(format!("Access-Control-Allow-Origin {allow:?} is no allowed origin"));
    }
    Ok(())
}

fn log_problem(logs: &str) -> Option<&'static str> {
    if logs.contains(SECRET) || logs.contains(&basic_auth()) {
        Some("a log line carries the secret")
    } else if logs.contains("UPSTREAM-RAW-BODY") {
        Some("a log line carries the upstream's body")
    } else if logs.contains("panicked") {
        Some("something panicked")
    } else {
        None
    }
}

fn short(value: &Value) -> String {
    value.to_string().chars().take(600).collect()
}

#[tokio::test]
async fn random_events_and_upstream_answers_never_break_the_function() {
    let seed =
        std::env::var("FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x70ce_2d3e_9a1b_5c47u64);
    eprintln!("fuzz seed {seed} (set FUZZ_SEED to replay another)");
    let mut rng = Rng(seed | 1);
    let aws = aws_fixtures();
    let script = Scripted(Arc::new(Mutex::new(ResponseTemplate::new(500))));
    let upstream = MockServer::start().await;
    token_request(VOXEET_PATH).respond_with(script.clone()).mount(&upstream).await;

    let started = Instant::now();
    let in_process = in_process(&mut rng, &aws, &script, &upstream).await;
    eprintln!("fuzz: {in_process} cases in-process in {:.1?}", started.elapsed());

    let started = Instant::now();
    let (binary, path, processes) = through_the_binary(&mut rng, &aws, &script, &upstream).await;
    eprintln!(
        "fuzz: {binary} cases through {} ({processes} processes) in {:.1?}",
        path.display(),
        started.elapsed()
    );
}

/// How many answers had each status (and error code): what the cases covered.
#[derive(Default)]
struct Tally(BTreeMap<String, usize>);

impl Tally {
    fn add(&mut self, answer: &Value) {
        let body: Value =
            answer["body"].as_str().and_then(|b| serde_json::from_str(b).ok()).unwrap_or_default();
        let key = format!("{} {}", answer["statusCode"], body["error"].as_str().unwrap_or(""));
        *self.0.entry(key.trim_end().to_string()).or_default() += 1;
    }
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(key, count)| format!("{key}: {count}")).collect();
        f.write_str(&parts.join(", "))
    }
}

async fn in_process(
    rng: &mut Rng,
    aws: &[(String, Value)],
    script: &Scripted,
    upstream: &MockServer,
) -> usize {
    let mut tally = Tally::default();
    let logs = LogBuffer::default();
    let _guard = tracing::subscriber::set_default(logs.subscriber());
    tracing::callsite::rebuild_interest_cache();

    let clocks = [ManualClock::new(), ManualClock::new(), ManualClock::new()];
    let setups = [Setup::Listed, Setup::Any, Setup::Broken];
    let services: Vec<_> = setups
        .iter()
        .zip(&clocks)
        .map(|(setup, clock)| service_with(env_for(*setup, upstream), clock.clone()))
        .collect();

    let mut cases = 0;
    // AWS's samples and the console's, as they are, first.
    for event in aws.iter().map(|(_, event)| event.clone()).chain([console_sample_event()]) {
        for service in &services {
            let answer = token_function::event::handle(service, &event).await;
            if let Some(problem) = answer_problem(&answer) {
                panic!("{problem}: {} -> {}", short(&event), short(&answer));
            }
            cases += 1;
        }
    }
    while cases < IN_PROCESS_CASES {
        let which = rng.pick(&[0, 0, 0, 0, 0, 0, 1, 1, 2]);
        let event = random_event(rng, aws);
        *script.0.lock().unwrap() = random_upstream(rng).template;
        // Sometimes the same instant (a cache hit), sometimes past any cached token's life.
        clocks[which].advance(rng.pick(&[0, 0, 0, 1, 30, 1000, 3600, 2 * 86_400]));
        let answer = token_function::event::handle(&services[which], &event.json).await;
        if let Err(problem) = check(&answer, &event, setups[which]) {
            panic!(
                "case {cases} ({:?}): {problem}\nevent: {}\nanswer: {}",
                setups[which],
                short(&event.json),
                short(&answer)
            );
        }
        let logged = logs.take();
        if let Some(problem) = log_problem(&logged) {
            panic!("case {cases}: {problem}\nevent: {}\nlogs: {logged:.2000}", short(&event.json));
        }
        tally.add(&answer);
        cases += 1;
    }
    eprintln!("fuzz in-process answers: {tally}");
    cases
}

/// Every file under `dir`, in its subfolders too: editing `src/provider/x.rs` leaves the
/// folder `src/provider` as old as it was.
fn source_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() { files.extend(source_files(&path)) } else { files.push(path) }
    }
    files
}

/// The packaged binary (`target/function/x86_64-unknown-linux-musl/release/bootstrap`, release
/// profile as shipped) when it is built and newer than the function's sources; else the test
/// build.
fn bootstrap_binary() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.parent().unwrap().join("target"));
    let packaged = target.join("function/x86_64-unknown-linux-musl/release/bootstrap");
    let modified = |path: &Path| path.metadata().and_then(|m| m.modified()).ok();
    let newest_source = source_files(&manifest.join("src"))
        .iter()
        .chain([&manifest.join("Cargo.toml")])
        .filter_map(|path| modified(path))
        .max()
        .unwrap_or(SystemTime::UNIX_EPOCH);
    if modified(&packaged).is_some_and(|built| built >= newest_source) {
        packaged
    } else {
        eprintln!(
            "fuzz: {} is missing or older than function/src; using the test build instead. Build the \
             packaged one first: scripts/build-function.sh x86_64",
            packaged.display()
        );
        PathBuf::from(env!("CARGO_BIN_EXE_bootstrap"))
    }
}

/// A running `bootstrap`, its Runtime API, and all it has written to stdout and stderr.
struct Running {
    runtime: RuntimeApi,
    child: Child,
    output: Arc<Mutex<Vec<u8>>>,
}

async fn start(binary: &Path, env: Vec<(String, String)>) -> Running {
    let runtime = RuntimeApi::start().await.unwrap();
    let mut child = spawn_bootstrap(binary, &runtime, env);
    let output = Arc::new(Mutex::new(Vec::new()));
    // Drained as it comes, so a chatty process never blocks on a full pipe.
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let streams: [Box<dyn tokio::io::AsyncRead + Unpin + Send>; 2] = [Box::new(stdout), Box::new(stderr)];
    for mut stream in streams {
        let output = Arc::clone(&output);
        tokio::spawn(async move {
            let mut buffer = [0u8; 8192];
            while let Ok(n @ 1..) = stream.read(&mut buffer).await {
                output.lock().unwrap().extend_from_slice(&buffer[..n]);
            }
        });
    }
    Running { runtime, child, output }
}

impl Running {
    async fn invoke(&mut self, event: &Value) -> Value {
        let outcome = self.runtime.invoke(event.clone(), Duration::from_secs(15)).await;
        let alive = self.child.try_wait().unwrap().is_none();
        match outcome {
            Ok(Outcome::Response { body, .. }) if alive => body,
            other => panic!(
                "no answer (process alive: {alive}): {other:?}\nevent: {}\noutput: {}",
                short(event),
                String::from_utf8_lossy(&self.output.lock().unwrap())
            ),
        }
    }

    /// Proves the process still serves, stops it, and returns its output.
    async fn finish(mut self) -> String {
        let answer = self.invoke(&rest_event("OPTIONS", "/token", Some(ORIGIN))).await;
        assert!(answer_problem(&answer).is_none(), "{answer}");
        self.child.start_kill().unwrap();
        let _ = self.child.wait().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned()
    }
}

async fn through_the_binary(
    rng: &mut Rng,
    aws: &[(String, Value)],
    script: &Scripted,
    upstream: &MockServer,
) -> (usize, PathBuf, usize) {
    let binary = bootstrap_binary();
    let setups = [Setup::Listed, Setup::Listed, Setup::Any, Setup::Broken];
    let mut tally = Tally::default();
    let mut cases = 0;
    let mut processes = 0;

    // AWS's samples and the console's, as they are, through one process.
    let mut running = start(&binary, env_for(Setup::Listed, upstream)).await;
    processes += 1;
    *script.0.lock().unwrap() = voxeet_token("at");
    for event in aws.iter().map(|(_, event)| event.clone()).chain([console_sample_event()]) {
        let answer = running.invoke(&event).await;
        if let Some(problem) = answer_problem(&answer) {
            panic!("{problem}: {} -> {}", short(&event), short(&answer));
        }
        cases += 1;
    }
    let logs = running.finish().await;
    assert_eq!(log_problem(&logs), None, "{logs:.4000}");

    while cases < BINARY_CASES {
        let setup = setups[processes % setups.len()];
        let mut running = start(&binary, env_for(setup, upstream)).await;
        processes += 1;
        let per_process = match setup {
            Setup::Listed => 80,
            Setup::Any => 40,
            Setup::Broken => 20,
        };
        for _ in 0..per_process {
            if cases >= BINARY_CASES {
                break;
            }
            let event = random_event(rng, aws);
            *script.0.lock().unwrap() = random_upstream(rng).template;
            let answer = running.invoke(&event.json).await;
            if let Err(problem) = check(&answer, &event, setup) {
                panic!(
                    "binary case {cases} ({setup:?}): {problem}\nevent: {}\nanswer: {}",
                    short(&event.json),
                    short(&answer)
                );
            }
            tally.add(&answer);
            cases += 1;
            // A token cached for long would hide the upstream answers that follow: start afresh.
            if answer["statusCode"] == 200 {
                break;
            }
        }
        let logs = running.finish().await;
        assert_eq!(log_problem(&logs), None, "{logs:.4000}");
        assert!(logs.lines().any(|line| line.contains("requestId")), "JSON log lines with the request id");
    }
    eprintln!("fuzz binary answers: {tally}");
    (cases, binary, processes)
}
