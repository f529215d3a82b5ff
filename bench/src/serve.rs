//! `serve-bench`: `tokendeploy serve` against the tutorial's Express server
//! (`bench/node/express`, express and axios from npm), both in front of the same stand-in
//! upstream on loopback, each driven by `wrk` in turn: requests per second and p99 latency side
//! by side. Prints JSON.
//!
//! Timing goals live here, never in tests: the numbers depend on the machine.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const DURATION: &str = "10s";
const CONNECTIONS: &str = "64";
const THREADS: &str = "2";
const EXPRESS: &str = "bench/node/express/server.js";

/// A server to measure: its command, and the variables beyond the upstream's.
struct Subject {
    name: &'static str,
    program: String,
    args: Vec<String>,
    env: Vec<(&'static str, String)>,
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = std::env::var("TOKENDEPLOY_BIN").unwrap_or_else(|_| "target/release/tokendeploy".into());
    if !std::path::Path::new("bench/node/express/node_modules/express").exists() {
        bail!(
            "the Express baseline is not installed: run scripts/bench.sh (it runs npm ci in bench/node/express)"
        );
    }
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/oauth2/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "token_type": "Bearer", "access_token": "bench-token", "expires_in": 3600
        })))
        .mount(&upstream)
        .await;
    let common = [
        ("CONSUMER_KEY", "bench-key".to_string()),
        ("CONSUMER_SECRET", "bench-secret".to_string()),
        ("ALLOWED_ORIGINS", "*".to_string()),
        ("TOKEN_URL", format!("{}/v1/oauth2/token", upstream.uri())),
        ("PATH", std::env::var("PATH").unwrap_or_default()),
        // `serve` logs a line a request; the benchmark measures serving, not a terminal.
        ("RUST_LOG", "warn".to_string()),
    ];
    let node = |name, cache: &str| Subject {
        name,
        program: "node".into(),
        args: vec![EXPRESS.into()],
        env: vec![("CACHE_TOKEN", cache.to_string())],
    };
    let subjects = [
        Subject { name: "tokendeploy_serve", program: cli, args: vec!["serve".into()], env: vec![] },
        node("express", "0"),
        node("express_cached", "1"),
    ];
    let mut results = serde_json::Map::new();
    for subject in &subjects {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut command = tokio::process::Command::new(&subject.program);
        command.args(&subject.args).env_clear().envs(common.iter().map(|(k, v)| (*k, v)));
        command.envs(subject.env.iter().map(|(k, v)| (*k, v))).env("PORT", port.to_string());
        if subject.name == "tokendeploy_serve" {
            command.args(["--port", &port.to_string()]);
        }
        let mut child = command.stdout(Stdio::null()).stderr(Stdio::null()).kill_on_drop(true).spawn()?;
        let url = format!("http://127.0.0.1:{port}/token");
        wait_until_serving(&url).await.with_context(|| format!("starting {}", subject.name))?;
        results.insert(subject.name.into(), load(&url)?);
        child.kill().await?;
    }
    let figure = |name: &str, field: &str| results[name][field].as_f64().unwrap_or(f64::NAN);
    let ratio = |of: &str, to: &str| {
        (figure("tokendeploy_serve", "requests_per_second") / figure(of, to) * 10.0).round() / 10.0
    };
    let ratios = json!({
        "throughput_over_express": ratio("express", "requests_per_second"),
        "throughput_over_express_cached": ratio("express_cached", "requests_per_second"),
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "wrk": { "threads": THREADS, "connections": CONNECTIONS, "duration": DURATION },
            "servers": results,
            "ratios": ratios,
        }))?
    );
    Ok(())
}

/// Polls `url` until it answers a token, for up to 20 s.
async fn wait_until_serving(url: &str) -> Result<()> {
    for _ in 0..200 {
        if let Ok(output) = tokio::process::Command::new("curl").args(["-sf", url]).output().await
            && output.status.success()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("{url} did not answer a token within 20 s")
}

/// `wrk` against `url`: requests per second, latency percentiles in milliseconds, errors.
fn load(url: &str) -> Result<Value> {
    let output = std::process::Command::new("wrk")
        .args(["-t", THREADS, "-c", CONNECTIONS, "-d", DURATION, "--latency", url])
        .output()
        .context("running wrk (scripts/bench.sh installs it)")?;
    let report = String::from_utf8_lossy(&output.stdout);
    let field = |prefix: &str| {
        report
            .lines()
            .map(str::trim)
            .find(|line| line.starts_with(prefix))
            .map(|line| line[prefix.len()..].trim().to_string())
    };
    let requests_per_second: f64 =
        field("Requests/sec:").context("wrk printed no Requests/sec")?.parse().context("Requests/sec")?;
    let latency = |percentile: &str| field(percentile).and_then(|value| milliseconds(&value));
    let non_2xx = field("Non-2xx or 3xx responses:").map_or(0, |n| n.parse::<u64>().unwrap_or(u64::MAX));
    Ok(json!({
        "requests_per_second": requests_per_second.round(),
        "latency_ms": { "p50": latency("50%"), "p90": latency("90%"), "p99": latency("99%") },
        "non_2xx": non_2xx,
    }))
}

/// wrk's `1.23ms`, `456.00us` or `1.02s` in milliseconds.
fn milliseconds(value: &str) -> Option<f64> {
    let (number, factor) = if let Some(us) = value.strip_suffix("us") {
        (us, 0.001)
    } else if let Some(ms) = value.strip_suffix("ms") {
        (ms, 1.0)
    } else {
        (value.strip_suffix('s')?, 1000.0)
    };
    Some((number.parse::<f64>().ok()? * factor * 1000.0).round() / 1000.0)
}
