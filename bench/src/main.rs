//! `cargo run -p tokendeploy-bench -- [PATH_TO_BOOTSTRAP]`: runs the release `bootstrap` the
//! way Lambda does (a loopback Runtime API, a stand-in Dolby upstream on loopback) and prints
//! JSON: zipped size, cold start (spawn to first answer), warm latency, peak RSS.
//!
//! Timing goals live here, never in tests: the numbers depend on the machine.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use tokendeploy_testkit::runtime_api::{Outcome, RuntimeApi};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const COLD_STARTS: usize = 20;
const WARM_INVOCATIONS: usize = 500;
const WAIT: Duration = Duration::from_secs(30);

#[tokio::main]
async fn main() -> Result<()> {
    let binary = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/x86_64-unknown-linux-musl/release/bootstrap"));
    let bytes = std::fs::read(&binary)
        .with_context(|| format!("reading {}; build it with scripts/bench.sh", binary.display()))?;
    let zipped = tokendeploy_package::zip_bootstrap(&bytes)?.bytes.len();

    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/oauth2/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "token_type": "Bearer", "access_token": "bench-token", "refresh_token": "r", "expires_in": 3600
        })))
        .mount(&upstream)
        .await;
    let event = rest_event();

    let mut cold = Vec::new();
    let mut warm = Vec::new();
    let mut peak_rss_kib = 0;
    for round in 0..COLD_STARTS {
        let runtime = RuntimeApi::start().await?;
        let started = Instant::now();
        let mut child = tokio::process::Command::new(&binary)
            .env_clear()
            .envs(runtime.lambda_environment())
            .env("CONSUMER_KEY", "bench-key")
            .env("CONSUMER_SECRET", "bench-secret")
            .env("ALLOWED_ORIGINS", "https://app.example.com")
            .env("TOKEN_URL", format!("{}/v1/oauth2/token", upstream.uri()))
            .env("AWS_LAMBDA_LOG_LEVEL", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        expect_token(runtime.invoke(event.clone(), WAIT).await?)?;
        cold.push(started.elapsed());
        // Warm invocations on the last process only: they do not depend on the round.
        if round == COLD_STARTS - 1 {
            for _ in 0..WARM_INVOCATIONS {
                let started = Instant::now();
                expect_token(runtime.invoke(event.clone(), WAIT).await?)?;
                warm.push(started.elapsed());
            }
        }
        peak_rss_kib = peak_rss_kib.max(peak_rss(child.id().context("the process has an id")?)?);
        child.kill().await?;
    }

    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "binary": binary,
            "binary_bytes": bytes.len(),
            "zip_bytes": zipped,
            "cold_start_ms": summary(&mut cold),
            "warm_latency_ms": summary(&mut warm),
            "peak_rss_kib": peak_rss_kib,
            "cold_starts": COLD_STARTS,
            "warm_invocations": WARM_INVOCATIONS,
        }))?
    );
    Ok(())
}

fn expect_token(outcome: Outcome) -> Result<()> {
    match outcome {
        Outcome::Response { body, .. } if body["statusCode"] == 200 => Ok(()),
        other => bail!("the function did not answer with a token: {other:?}"),
    }
}

/// VmHWM: the most resident memory the process has had.
fn peak_rss(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).context("no VmHWM in /proc status")?;
    Ok(line.split_whitespace().nth(1).context("malformed VmHWM")?.parse()?)
}

fn summary(samples: &mut [Duration]) -> Value {
    samples.sort();
    let ms = |d: Duration| (d.as_secs_f64() * 1000.0 * 100.0).round() / 100.0;
    let at = |q: f64| ms(samples[((samples.len() - 1) as f64 * q).round() as usize]);
    json!({ "min": at(0.0), "p50": at(0.5), "p90": at(0.9), "max": at(1.0) })
}

fn rest_event() -> Value {
    let mut event: Value =
        serde_json::from_str(include_str!("../../function/tests/fixtures/apigw_rest_proxy.json"))
            .expect("valid fixture");
    event["path"] = json!("/token");
    event
}
