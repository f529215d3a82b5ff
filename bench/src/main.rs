//! `cargo run -p tokendeploy-bench --bin function-bench -- [PATH_TO_BOOTSTRAP]`: runs the release
//! `bootstrap` the way Lambda does (a loopback Runtime API, a stand-in Dolby upstream on
//! loopback), then the tutorial's Node.js function (bench/node) under the same harness, and
//! prints JSON: zipped size, cold start (spawn to first answer), warm latency, peak RSS, and the
//! ratios between them.
//!
//! Timing goals live here, never in tests: the numbers depend on the machine.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use tokendeploy_testkit::runtime_api::{Outcome, RuntimeApi};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const COLD_STARTS: usize = 20;
const WARM_INVOCATIONS: usize = 1000;
const WAIT: Duration = Duration::from_secs(30);
const NODE_FUNCTION: &str = "bench/node/function";
const NODE_RUNTIME: &str = "bench/node/runtime/node_modules/aws-lambda-ric/bin/index.mjs";

const BENCH_SECRET_ARN: &str =
    "arn:aws:secretsmanager:us-west-1:123456789012:secret:tokendeploy/bench-AbCdEf";

/// One function as Lambda would start it: the program, its arguments, where it runs, and the
/// variables it needs beyond the Runtime API's.
#[derive(Clone)]
struct Subject {
    name: &'static str,
    program: PathBuf,
    args: Vec<OsString>,
    dir: Option<PathBuf>,
    environment: Vec<(&'static str, OsString)>,
    zip_bytes: usize,
}

#[tokio::main]
async fn main() -> Result<()> {
    let binary = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/function/x86_64-unknown-linux-musl/release/bootstrap"));
    let bytes = std::fs::read(&binary)
        .with_context(|| format!("reading {}; build it with scripts/bench.sh", binary.display()))?;

    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/oauth2/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "token_type": "Bearer", "access_token": "bench-token", "refresh_token": "r", "expires_in": 3600
        })))
        .mount(&upstream)
        .await;
    let token_url = OsString::from(format!("{}/v1/oauth2/token", upstream.uri()));

    let rust = Subject {
        name: "rust",
        program: binary.clone(),
        args: vec![],
        dir: None,
        environment: vec![("TOKEN_URL", token_url.clone())],
        zip_bytes: tokendeploy_package::zip_bootstrap(&bytes, tokendeploy_package::Arch::X86_64)?.bytes.len(),
    };
    // The same function with its key and secret in Secrets Manager: a loopback stand-in answers
    // GetSecretValue at once, so the figure is the function's own cost of the read (signing,
    // the HTTP call, parsing), without the network's.
    let secrets_manager = MockServer::start().await;
    let secret = json!({"CONSUMER_KEY": "bench-key", "CONSUMER_SECRET": "bench-secret"}).to_string();
    Mock::given(method("POST"))
        .and(header("x-amz-target", "secretsmanager.GetSecretValue"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "ARN": BENCH_SECRET_ARN, "Name": "tokendeploy/bench", "SecretString": secret
        })))
        .mount(&secrets_manager)
        .await;
    let rust_secrets_manager = Subject {
        name: "rust_secrets_manager",
        environment: vec![
            ("TOKEN_URL", token_url.clone()),
            ("TOKEN_SECRET_ARN", BENCH_SECRET_ARN.into()),
            ("AWS_REGION", "us-west-1".into()),
            ("AWS_ACCESS_KEY_ID", "bench".into()),
            ("AWS_SECRET_ACCESS_KEY", "bench".into()),
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", secrets_manager.uri().into()),
        ],
        ..rust.clone()
    };
    let node = node_subject("node", &token_url, "0")?;
    let node_cached = node_subject("node_cached", &token_url, "1")?;

    let mut results = serde_json::Map::new();
    for subject in [&rust, &rust_secrets_manager, &node, &node_cached] {
        results.insert(subject.name.into(), measure(subject).await?);
    }
    let ratio = |of: &str, field: &str, quantile: &str| {
        let figure = |name: &str| results[name][field][quantile].as_f64().unwrap_or(f64::NAN);
        (figure(of) / figure("rust") * 10.0).round() / 10.0
    };
    let ratios = json!({
        "cold_start_p50_node_over_rust": ratio("node", "cold_start_ms", "p50"),
        "cold_start_p50_secrets_manager_over_env": ratio("rust_secrets_manager", "cold_start_ms", "p50"),
        "warm_p99_node_over_rust": ratio("node", "warm_latency_ms", "p99"),
        "warm_p99_node_cached_over_rust": ratio("node_cached", "warm_latency_ms", "p99"),
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "bootstrap": binary,
            "bootstrap_bytes": bytes.len(),
            "functions": results,
            "ratios": ratios,
            "cold_starts": COLD_STARTS,
            "warm_invocations": WARM_INVOCATIONS,
        }))?
    );
    Ok(())
}

/// The tutorial's Node.js function run by AWS's Runtime Interface Client, as Lambda's nodejs
/// runtime runs it; its zip is what the tutorial uploads: the function's directory with its
/// `node_modules` (the runtime client is part of Lambda's runtime, not of the upload).
/// `cache_token` is "1" for the variant that keeps its token as ours does.
fn node_subject(name: &'static str, token_url: &OsString, cache_token: &str) -> Result<Subject> {
    let runtime = Path::new(NODE_RUNTIME);
    if !runtime.exists() || !Path::new(NODE_FUNCTION).join("node_modules/axios").exists() {
        bail!("the Node.js baseline is not installed: run scripts/bench.sh (it runs npm ci in bench/node)");
    }
    Ok(Subject {
        name,
        program: PathBuf::from("node"),
        args: vec![std::fs::canonicalize(runtime)?.into(), "index.handler".into()],
        dir: Some(PathBuf::from(NODE_FUNCTION)),
        environment: vec![
            ("TOKEN_URL", token_url.clone()),
            ("CACHE_TOKEN", cache_token.into()),
            // Only to find `node`; the function reads nothing else from it.
            ("PATH", std::env::var_os("PATH").unwrap_or_default()),
        ],
        zip_bytes: zip_directory(Path::new(NODE_FUNCTION))?,
    })
}

/// Cold starts (spawn to first answer, each including one upstream call), then warm
/// invocations on the last process, and the most memory any of its processes held.
async fn measure(subject: &Subject) -> Result<Value> {
    let event = rest_event();
    let mut cold = Vec::new();
    let mut warm = Vec::new();
    let mut peak_rss_kib = 0;
    for round in 0..COLD_STARTS {
        let runtime = RuntimeApi::start().await?;
        let mut command = tokio::process::Command::new(&subject.program);
        command
            .args(&subject.args)
            .env_clear()
            .envs(runtime.lambda_environment())
            .env("CONSUMER_KEY", "bench-key")
            .env("CONSUMER_SECRET", "bench-secret")
            .env("ALLOWED_ORIGINS", "https://app.example.com")
            .env("AWS_LAMBDA_LOG_LEVEL", "warn")
            .envs(subject.environment.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        if let Some(dir) = &subject.dir {
            command.current_dir(dir);
        }
        let started = Instant::now();
        let mut child = command.spawn().with_context(|| format!("starting {}", subject.program.display()))?;
        expect_token(runtime.invoke(event.clone(), WAIT).await?)
            .with_context(|| format!("the {} function's cold start", subject.name))?;
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
    Ok(json!({
        "zip_bytes": subject.zip_bytes,
        "cold_start_ms": summary(&mut cold),
        "warm_latency_ms": summary(&mut warm),
        "peak_rss_kib": peak_rss_kib,
    }))
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
    json!({ "min": at(0.0), "p50": at(0.5), "p90": at(0.9), "p99": at(0.99), "max": at(1.0) })
}

/// The size of `dir` zipped as a Lambda deployment package (deflate, files in sorted order).
fn zip_directory(dir: &Path) -> Result<usize> {
    fn files(dir: &Path, into: &mut Vec<PathBuf>) -> Result<()> {
        for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            if path.is_dir() { files(&path, into)? } else { into.push(path) }
        }
        Ok(())
    }
    let mut paths = Vec::new();
    files(dir, &mut paths)?;
    paths.sort();
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(9));
    for path in paths {
        let name = path.strip_prefix(dir)?.to_string_lossy().into_owned();
        zip.start_file(name, options)?;
        zip.write_all(&std::fs::read(&path)?)?;
    }
    Ok(zip.finish()?.into_inner().len())
}

fn rest_event() -> Value {
    let mut event: Value =
        serde_json::from_str(include_str!("../../function/tests/fixtures/apigw_rest_proxy.json"))
            .expect("valid fixture");
    event["path"] = json!("/token");
    event
}
