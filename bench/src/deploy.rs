//! `cargo run -p tokendeploy-bench --bin deploy-bench`: how many AWS calls `up`, `status` and
//! `down` make, how many change something, and how many calls deep each waits: a loopback
//! proxy in front of a moto server adds a fixed delay to every call, and wall time divided by
//! that delay is the depth. Then IAM propagation: the proxy answers CreateFunction with
//! Lambda's "cannot be assumed" error for the first T seconds, and the time `up` takes past T
//! is how long it lags behind the role becoming usable. Prints JSON.
//!
//! Timing goals live here, never in tests: the numbers depend on the machine.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::{Value, json};
use tokendeploy_deploy::desired::{Gateway, Security};
use tokendeploy_deploy::discover;
use tokendeploy_deploy::down::down;
use tokendeploy_deploy::status::status;
use tokendeploy_deploy::up::{prepare, up};
use tokendeploy_deploy::{Aws, FunctionEnvironment, Silent, Stack, snapshot};
use tokendeploy_package::{Artifact, zip_bootstrap};
use tokendeploy_testkit::fault_proxy::{Call, Effect, ErrorKind, FaultProxy, Rule};
use tokendeploy_testkit::moto::Moto;

const REGION: &str = "us-west-1";
/// The delay each call gets: about a real AWS call's round trip.
const LATENCY: Duration = Duration::from_millis(100);
const ROUNDS: usize = 5;

#[tokio::main]
async fn main() -> Result<()> {
    let moto = Moto::start()?;
    let mut measured: BTreeMap<String, Vec<(f64, usize, usize)>> = BTreeMap::new();
    let url = Security { gateway: Gateway::Url, ..Security::default() };
    let http = Security { gateway: Gateway::Http, ..Security::default() };
    for round in 0..ROUNDS {
        for (gateway, security) in
            [("", Security::default()), (" --gateway url", url), (" --gateway http", http)]
        {
            let suffix = gateway.rsplit(' ').next().unwrap_or_default();
            let stack = Stack::new(&format!("bench-{round}{suffix}"), REGION)?;
            for (name, command) in [
                ("fresh up", Command::Up),
                ("converged up", Command::Up),
                ("status", Command::Status),
                ("down", Command::Down),
            ] {
                let proxy = FaultProxy::with_latency(&moto.endpoint(), LATENCY).await?;
                let aws = aws_at(&proxy.endpoint()).await?;
                let started = Instant::now();
                command.run(&aws, &stack, security).await?;
                let depth = started.elapsed().as_secs_f64() / LATENCY.as_secs_f64();
                let calls = proxy.calls();
                if round == 1 && std::env::var_os("DEPLOY_BENCH_TRACE").is_some() {
                    trace(&format!("{name}{gateway}"), &calls);
                }
                let mutating = calls.iter().filter(|call| call.mutating).count();
                measured.entry(format!("{name}{gateway}")).or_default().push((depth, calls.len(), mutating));
            }
        }
    }
    // The same stack in three regions side by side, as `--region a,b,c` runs it.
    for round in 0..ROUNDS {
        for (name, command) in
            [("fresh up, three regions", Command::Up), ("down, three regions", Command::Down)]
        {
            let proxy = FaultProxy::with_latency(&moto.endpoint(), LATENCY).await?;
            let started = Instant::now();
            let runs = THREE_REGIONS.map(|region| {
                let (proxy, command) = (&proxy, &command);
                async move {
                    let aws = aws_in(&proxy.endpoint(), region).await?;
                    let stack = Stack::new(&format!("bench-regions-{round}"), region)?;
                    command.run(&aws, &stack, Security::default()).await
                }
            });
            futures::future::try_join_all(runs).await?;
            let depth = started.elapsed().as_secs_f64() / LATENCY.as_secs_f64();
            let calls = proxy.calls();
            let mutating = calls.iter().filter(|call| call.mutating).count();
            measured.entry(name.to_string()).or_default().push((depth, calls.len(), mutating));
        }
    }
    // `down --all-regions` with the stack in two of the account's regions: the regions listed,
    // each asked whether it holds the stack, then `down` where it does, side by side.
    for round in 0..ROUNDS {
        let name = format!("bench-all-{round}");
        for region in &THREE_REGIONS[1..] {
            let aws = aws_in(&moto.endpoint(), region).await?;
            Command::Up.run(&aws, &Stack::new(&name, region)?, Security::default()).await?;
        }
        let proxy = FaultProxy::with_latency(&moto.endpoint(), LATENCY).await?;
        let started = Instant::now();
        // As `down --all-regions --yes` does: a region that holds the stack is read whole at
        // once, and `down` deletes from that read.
        let home = aws_in(&proxy.endpoint(), REGION).await?;
        let holding = discover::find_stack(&home, async |region| {
            let aws = aws_in(&proxy.endpoint(), &region).await?;
            let stack = Stack::new(&name, &region)?;
            if !discover::holds_stack(&aws, &stack).await? {
                return Ok(None);
            }
            let found = snapshot::read(&aws, &stack).await?;
            Ok(Some((aws, stack, found)))
        })
        .await?;
        anyhow::ensure!(holding.len() == 2, "the stack is in two regions, found in {}", holding.len());
        let removed = holding.iter().map(|(_, (aws, stack, found))| down(aws, stack, found, &Silent));
        futures::future::try_join_all(removed).await?;
        if round == 1 && std::env::var_os("DEPLOY_BENCH_TRACE").is_some() {
            trace("down --all-regions, the stack in two", &proxy.calls());
        }
        let depth = started.elapsed().as_secs_f64() / LATENCY.as_secs_f64();
        let calls = proxy.calls();
        let mutating = calls.iter().filter(|call| call.mutating).count();
        measured.entry("down --all-regions, the stack in two".into()).or_default().push((
            depth,
            calls.len(),
            mutating,
        ));
    }
    let report: BTreeMap<String, Value> = measured
        .into_iter()
        .map(|(name, runs)| {
            let mut depths: Vec<f64> = runs.iter().map(|(depth, ..)| *depth).collect();
            depths.sort_by(f64::total_cmp);
            let (_, calls, mutating) = runs[0];
            let median = depths[depths.len() / 2];
            let spread = [depths[0], depths[depths.len() - 1]];
            (name, json!({ "depth_median": round(median), "depth_range": spread.map(round), "calls": calls, "mutating": mutating }))
        })
        .collect();
    let propagation = propagation(&moto).await?;
    let versus_script = versus_script(&moto).await?;
    let at_scale = at_scale().await?;
    let report = json!({
        "latency_ms": LATENCY.as_millis() as u64,
        "rounds": ROUNDS,
        "commands": report,
        "iam_propagation": propagation,
        "versus_tutorial_script": versus_script,
        "in_a_full_account": at_scale,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// For each T, how long after the role becomes assumable (T seconds in) a fresh `up` ends.
/// Each call of a run, with when it came in units of the added latency: the calls on a run's
/// critical path come a latency apart (`DEPLOY_BENCH_TRACE=1`, to stderr).
fn trace(run: &str, calls: &[tokendeploy_testkit::fault_proxy::Call]) {
    eprintln!("{run}:");
    for call in calls {
        let at = call.arrived.as_secs_f64() / LATENCY.as_secs_f64();
        eprintln!("  {at:5.2}  {} {}", call.service, call.operation);
    }
}

async fn propagation(moto: &Moto) -> Result<Value> {
    let mut lags = serde_json::Map::new();
    for seconds in [3, 8, 15] {
        let assumable_after = Duration::from_secs(seconds);
        let started = Instant::now();
        let not_yet = move |call: &Call| {
            call.is("lambda", "POST /2015-03-31/functions") && started.elapsed() < assumable_after
        };
        let refusal = ErrorKind::custom(
            400,
            "InvalidParameterValueException",
            "The role defined for the function cannot be assumed by Lambda.",
        );
        let rule = Rule::first(not_yet, usize::MAX, Effect::Error(refusal));
        let proxy = FaultProxy::start_with(&moto.endpoint(), vec![rule]).await?;
        let aws = aws_at(&proxy.endpoint()).await?;
        let stack = Stack::new(&format!("propagation-{seconds}"), REGION)?;
        up(&aws, &stack, environment(), Security::default(), || Ok(artifact()), &Silent).await?;
        let lag = started.elapsed().saturating_sub(assumable_after);
        let measured = json!({ "seconds_after_T": round(lag.as_secs_f64()), "refusals": proxy.injected() });
        lags.insert(format!("T={seconds}s"), measured);
    }
    Ok(Value::Object(lags))
}

/// `tokendeploy up` and `down` (the binary in `TOKENDEPLOY_BIN`, default the release build)
/// against the tutorial's steps as an aws CLI script (bench/tutorial/deploy.sh), same zip, same
/// moto server, no added latency, alternating A B A B with fresh stack names. With
/// `TOKENDEPLOY_BASELINE_BIN` (an earlier release), that binary takes its turn in the same loop
/// (A B C A B C), so its ratio to the script is measured under the same conditions as ours.
async fn versus_script(moto: &Moto) -> Result<Value> {
    let cli = std::env::var("TOKENDEPLOY_BIN").unwrap_or_else(|_| "target/release/tokendeploy".into());
    let baseline = std::env::var("TOKENDEPLOY_BASELINE_BIN").ok();
    let bootstrap = std::fs::read("target/function/x86_64-unknown-linux-musl/release/bootstrap")
        .context("reading the release bootstrap; build it with scripts/bench.sh")?;
    let zip = std::env::temp_dir().join(format!("deploy-bench-{}.zip", std::process::id()));
    zip_bootstrap(&bootstrap, tokendeploy_package::Arch::X86_64)?.write_to(&zip)?;
    let zip = zip.to_str().context("a temporary path that is text")?.to_string();
    let env = [
        ("AWS_ENDPOINT_URL", moto.endpoint()),
        ("AWS_ACCESS_KEY_ID", "bench".into()),
        ("AWS_SECRET_ACCESS_KEY", "bench".into()),
        ("AWS_REGION", REGION.into()),
        ("AWS_DEFAULT_REGION", REGION.into()),
        ("AWS_CONFIG_FILE", "/dev/null".into()),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".into()),
        ("AWS_PAGER", String::new()),
        ("CONSUMER_KEY", "key".into()),
        ("CONSUMER_SECRET", "secret".into()),
        ("ALLOWED_ORIGINS", "*".into()),
    ];
    let timed = |program: &str, args: Vec<String>| {
        let started = Instant::now();
        let output = std::process::Command::new(program).args(&args).envs(env.clone()).output()?;
        anyhow::ensure!(
            output.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        anyhow::Ok(started.elapsed().as_secs_f64())
    };
    let mut times: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let args = |list: &[&str]| list.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    for round in 0..ROUNDS {
        let mut contenders = vec![("tokendeploy", cli.as_str())];
        contenders.extend(baseline.as_deref().map(|bin| ("baseline", bin)));
        let script = format!("script-{round}");
        for (who, bin) in &contenders {
            let name = format!("{who}-{round}");
            let up = args(&["up", "--quiet", "--zip", &zip, "--name", &name]);
            times.entry(format!("{who} up")).or_default().push(timed(bin, up)?);
        }
        let up_script = args(&["bench/tutorial/deploy.sh", "up", &script, &zip]);
        times.entry("script up".into()).or_default().push(timed("bash", up_script)?);
        for (who, bin) in &contenders {
            let down = args(&["down", "--quiet", "--yes", "--name", &format!("{who}-{round}")]);
            times.entry(format!("{who} down")).or_default().push(timed(bin, down)?);
        }
        let down_script = args(&["bench/tutorial/deploy.sh", "down", &script]);
        times.entry("script down".into()).or_default().push(timed("bash", down_script)?);
    }
    let median = |name: &str| {
        let mut all = times[name].clone();
        all.sort_by(f64::total_cmp);
        all[all.len() / 2]
    };
    let seconds: BTreeMap<&String, Value> = times
        .keys()
        .map(|name| {
            let all = &times[name];
            let low = all.iter().copied().fold(f64::INFINITY, f64::min);
            let high = all.iter().copied().fold(0.0, f64::max);
            (name, json!({ "median_s": median(name), "range_s": [low, high] }))
        })
        .collect();
    let mut ratios = json!({
        "up_ratio": median("script up") / median("tokendeploy up"),
        "down_ratio": median("script down") / median("tokendeploy down"),
    });
    if baseline.is_some() {
        ratios["baseline_up_ratio"] = json!(median("script up") / median("baseline up"));
        ratios["baseline_down_ratio"] = json!(median("script down") / median("baseline down"));
    }
    Ok(json!({ "seconds": seconds, "ratios": ratios }))
}

/// `up`, `status` and `down` in an account that already holds 600 REST APIs, 100 functions
/// and 200 roles: their calls must not grow with the account beyond the listing pages.
async fn at_scale() -> Result<Value> {
    let moto = Moto::start()?;
    let aws = aws_at(&moto.endpoint()).await?;
    let zip = aws_sdk_lambda::primitives::Blob::new(artifact().bytes);
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    for n in 0..200 {
        aws.iam
            .create_role()
            .role_name(format!("other-{n}"))
            .assume_role_policy_document(trust)
            .send()
            .await?;
    }
    let role = "arn:aws:iam::123456789012:role/other-0";
    for n in 0..100 {
        let code = aws_sdk_lambda::types::FunctionCode::builder().zip_file(zip.clone()).build();
        let create = aws.lambda.create_function().function_name(format!("other-{n}")).role(role);
        create
            .runtime(aws_sdk_lambda::types::Runtime::from("provided.al2023"))
            .handler("bootstrap")
            .code(code)
            .send()
            .await?;
    }
    for n in 0..600 {
        aws.apigateway.create_rest_api().name(format!("other-{n}")).send().await?;
    }
    let stack = Stack::new("crowded", REGION)?;
    let mut calls = serde_json::Map::new();
    for (name, command) in [
        ("fresh up", Command::Up),
        ("converged up", Command::Up),
        ("status", Command::Status),
        ("down", Command::Down),
    ] {
        let recorder = FaultProxy::recording(&moto.endpoint()).await?;
        let started = Instant::now();
        command.run(&aws_at(&recorder.endpoint()).await?, &stack, Security::default()).await?;
        let listing_pages =
            recorder.calls().iter().filter(|call| call.is("apigateway", "GET /restapis")).count();
        let measured = json!({ "calls": recorder.calls().len(), "rest_api_listing_pages": listing_pages, "seconds": started.elapsed().as_secs_f64() });
        calls.insert(name.to_string(), measured);
    }
    Ok(json!({ "rest_apis": 600, "functions": 100, "roles": 200, "commands": calls }))
}

fn round(depth: f64) -> f64 {
    (depth * 10.0).round() / 10.0
}

enum Command {
    Up,
    Status,
    Down,
}

impl Command {
    async fn run(&self, aws: &Aws, stack: &Stack, security: Security) -> Result<()> {
        match self {
            Command::Up => drop(up(aws, stack, environment(), security, || Ok(artifact()), &Silent).await?),
            Command::Status => {
                let prepared =
                    prepare(aws, stack, |_| environment(), security, || Ok(artifact()), &Silent).await?;
                anyhow::ensure!(status(&prepared, None).in_sync, "status after up: not in sync");
            }
            Command::Down => {
                let found = snapshot::read(aws, stack).await?;
                drop(down(aws, stack, &found, &Silent).await?);
            }
        }
        Ok(())
    }
}

/// The regions of the several-region measure.
const THREE_REGIONS: [&str; 3] = ["us-east-2", "eu-west-1", "ap-southeast-2"];

async fn aws_at(endpoint: &str) -> Result<Aws> {
    aws_in(endpoint, REGION).await
}

async fn aws_in(endpoint: &str, region: &str) -> Result<Aws> {
    let credentials = aws_sdk_sts::config::Credentials::new("bench", "bench", None, None, "bench");
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_string()))
        .endpoint_url(endpoint)
        .credentials_provider(credentials)
        .load()
        .await;
    Aws::from_config(&config)
}

fn environment() -> FunctionEnvironment {
    let variables =
        [("ALLOWED_ORIGINS", "https://app.example"), ("CONSUMER_KEY", "k"), ("CONSUMER_SECRET", "s")];
    let variables = variables.into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    FunctionEnvironment::new(variables, &["ALLOWED_ORIGINS", "CONSUMER_KEY", "CONSUMER_SECRET"])
}

/// Moto stores the code without running it: any bytes serve.
fn artifact() -> Artifact {
    zip_bootstrap(b"\x7fELF bench stand-in", tokendeploy_package::Arch::X86_64).expect("zipping a few bytes")
}
