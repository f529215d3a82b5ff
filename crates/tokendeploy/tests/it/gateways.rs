//! `--gateway url`: a function URL in place of the REST API, served by the emulator as Lambda
//! serves it (its own event, its own CORS, the reserved concurrency as its bound); and switching
//! between gateways, which makes the new one before it removes the old and keeps the function.

use reqwest::Method;
use serde_json::Value;

use crate::answers::{ORIGIN, ask, deploy, dolby, get, token_of};
use crate::faults::{TRANSIENT, distinct_calls, rule};
use crate::support::*;
use tokendeploy_testkit::fault_proxy::{Effect, FaultProxy};

const URL: [&str; 2] = ["--gateway", "url"];

/// The stack's gateways as they are: its REST APIs' ids and whether the function has a URL.
async fn gateways(harness: &Harness, name: &str) -> (Vec<String>, Option<String>) {
    let aws = harness.aws(REGION).await;
    let apis = rest_apis(&aws).await.into_iter().filter(|(_, api, _)| api == name).map(|(id, _, _)| id);
    let url = aws.lambda.get_function_url_config().function_name(name).send().await.ok();
    (apis.collect(), url.map(|config| config.function_url().to_string()))
}

fn status(harness: &Harness, name: &str, env: &[(String, String)], args: &[&str]) -> Run {
    let zip = function_zip().to_str().unwrap().to_string();
    let mut all = vec!["status", "--output", "json", "--zip", &zip, "--name", name];
    all.extend_from_slice(args);
    harness.run_with(&all, env)
}

fn changed(made: &Value) -> Vec<String> {
    let steps = made["steps"].as_array().unwrap().iter();
    steps.filter(|s| s["action"] != "unchanged").map(|s| s["name"].as_str().unwrap().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn a_function_url_serves_with_its_cors_converges_repairs_its_drift_and_goes() {
    let harness = Harness::start();
    let upstream = upstream().await;
    let env = dolby(&harness, &upstream);
    let made = deploy(&harness, "u", &env, &URL);
    assert_eq!((made["gateway"].as_str(), made.get("api_id")), (Some("url"), None), "{made}");
    let url = made["invoke_url"].as_str().unwrap();
    assert!(url.starts_with(&format!("{}/lambda-url/", harness.moto.endpoint())), "{url}");
    let aws_url = made["aws_invoke_url"].as_str().unwrap();
    assert!(
        aws_url.starts_with("https://") && aws_url.ends_with(".lambda-url.us-west-1.on.aws/token"),
        "{made}"
    );
    assert_eq!(gateways(&harness, "u").await.0, Vec::<String>::new(), "no REST API is made");

    // A token for the allowed origin, readable by it; another origin is not let read.
    let allowed = get(url, &[("origin", ORIGIN)]).await;
    assert_eq!(token_of(&allowed), "upstream-token");
    assert_eq!(allowed.headers["access-control-allow-origin"], ORIGIN);
    let other = get(url, &[("origin", "https://elsewhere.example")]).await;
    assert!(other.headers.get("access-control-allow-origin").is_none(), "{:?}", other.headers);
    let preflight =
        ask(Method::OPTIONS, url, &[("origin", ORIGIN), ("access-control-request-method", "GET")]).await;
    assert_eq!(preflight.status, 200);
    assert_eq!(preflight.headers["access-control-allow-origin"], ORIGIN);

    // Converged: nothing changes, status says in sync.
    let again = deploy(&harness, "u", &env, &URL);
    assert!(changed(&again).is_empty(), "{again}");
    assert_eq!(status(&harness, "u", &env, &URL).code, 0);

    // By hand: CORS opened to anyone and the bound raised; status names it, up repairs it.
    let aws = harness.aws(REGION).await;
    let open = aws_sdk_lambda::types::Cors::builder().allow_origins("*").build();
    aws.lambda.update_function_url_config().function_name("u").cors(open).send().await.unwrap();
    aws.lambda
        .put_function_concurrency()
        .function_name("u")
        .reserved_concurrent_executions(50)
        .send()
        .await
        .unwrap();
    let drifted = status(&harness, "u", &env, &URL);
    assert_eq!(drifted.code, 3, "{}", drifted.stdout);
    let reason = drifted.json()["drift"][0]["reason"].as_str().unwrap().to_string();
    assert_eq!(reason, "CORS changed; reserved concurrency 50 -> 5");
    let repaired = deploy(&harness, "u", &env, &URL);
    assert_eq!(changed(&repaired), ["function_url"]);
    assert_eq!(status(&harness, "u", &env, &URL).code, 0);
    let reserved = aws.lambda.get_function_concurrency().function_name("u").send().await.unwrap();
    assert_eq!(reserved.reserved_concurrent_executions(), Some(5));

    // The permissions hand-removed: the URL answers 403 until up grants them again.
    aws.lambda
        .remove_permission()
        .function_name("u")
        .statement_id("tokendeploy-function-url-invoke")
        .send()
        .await
        .unwrap();
    assert_eq!(get(url, &[]).await.status, 403, "lambda:InvokeFunction is needed too since October 2025");
    assert_eq!(changed(&deploy(&harness, "u", &env, &URL)), ["permission"]);
    assert_eq!(token_of(&get(url, &[]).await), "upstream-token");

    let down = harness.run_with(&["down", "--output", "json", "--yes", "--name", "u"], &env);
    down.assert_success();
    let stack = tokendeploy_deploy::Stack::new("u", REGION).unwrap();
    let left = tokendeploy_deploy::snapshot::read(&aws, &stack).await.unwrap().found(&stack);
    assert!(left.is_empty(), "down left: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn switching_gateways_keeps_the_function_and_leaves_one_gateway_that_answers() {
    let harness = Harness::start();
    let upstream = upstream().await;
    let env = dolby(&harness, &upstream);
    let rest = deploy(&harness, "s", &env, &["--api-key"]);
    let function_arn = rest["function_arn"].as_str().unwrap().to_string();
    assert_eq!(gateways(&harness, "s").await.0.len(), 1);

    // The stack is a REST API's: asked as a function URL's, status says what differs.
    let asked_url = status(&harness, "s", &env, &URL);
    assert_eq!(asked_url.code, 3, "{}", asked_url.stdout);
    let drift: Vec<String> = asked_url.json()["drift"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["kind"].as_str().unwrap().to_string())
        .collect();
    assert!(drift.contains(&"rest_api".to_string()), "{drift:?}");
    assert_eq!(asked_url.json()["missing"], serde_json::json!(["function_url"]));

    let url = deploy(&harness, "s", &env, &URL);
    assert_eq!(url["function_arn"], function_arn.as_str(), "the function is kept");
    let (apis, function_url) = gateways(&harness, "s").await;
    assert!(apis.is_empty() && function_url.is_some(), "{apis:?} {function_url:?}");
    let aws = harness.aws(REGION).await;
    let keys = aws.apigateway.get_api_keys().send().await.unwrap();
    assert!(keys.items().is_empty(), "the REST API's key goes with it");
    assert_eq!(token_of(&get(url["invoke_url"].as_str().unwrap(), &[]).await), "upstream-token");
    assert_eq!(status(&harness, "s", &env, &URL).code, 0);

    let back = deploy(&harness, "s", &env, &[]);
    assert_eq!(back["function_arn"], function_arn.as_str());
    let (apis, function_url) = gateways(&harness, "s").await;
    assert!(apis.len() == 1 && function_url.is_none(), "{apis:?} {function_url:?}");
    let reserved = aws.lambda.get_function_concurrency().function_name("s").send().await.unwrap();
    assert_eq!(reserved.reserved_concurrent_executions(), None, "the URL's bound goes with it");
    let policy = aws.lambda.get_policy().function_name("s").send().await.unwrap();
    assert!(!policy.policy().unwrap().contains("function-url"), "{:?}", policy.policy());
    assert_eq!(token_of(&get(back["invoke_url"].as_str().unwrap(), &[]).await), "upstream-token");
    assert_eq!(status(&harness, "s", &env, &[]).code, 0);
}

/// The stack is whole behind `gateway` alone: one function, one kind of gateway, status 0, and a
/// following `up` changes nothing.
async fn assert_whole_behind(
    harness: &Harness,
    name: &str,
    env: &[(String, String)],
    args: &[&str],
    context: &str,
) {
    let (apis, url) = gateways(harness, name).await;
    match args.contains(&"url") {
        true => assert!(apis.is_empty() && url.is_some(), "{context}: {apis:?} {url:?}"),
        false => assert!(apis.len() == 1 && url.is_none(), "{context}: {apis:?} {url:?}"),
    }
    let checked = status(harness, name, env, args);
    assert_eq!(checked.code, 0, "{context}: {}", checked.stdout);
    let again = deploy(harness, name, env, args);
    assert!(changed(&again).is_empty(), "{context}: {again}");
}

/// A stack as `before` made it (none: no stack), then an `up` asking for `asked` killed after
/// each step of `after` in turn.
struct Killed {
    before: Option<&'static [&'static str]>,
    asked: &'static [&'static str],
    after: &'static [&'static str],
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn an_up_killed_after_any_step_of_a_function_url_or_a_switch_is_completed_by_the_next() {
    let harness = Harness::start();
    let upstream = upstream().await;
    let env = dolby(&harness, &upstream);
    let zip = function_zip().to_str().unwrap().to_string();
    let cases = [
        Killed {
            before: None,
            asked: &URL,
            after: &["function", "environment", "permission", "function_url"],
        },
        Killed {
            before: Some(&["--api-key"]),
            asked: &URL,
            after: &["function_url", "permission", "usage_plan", "api_key", "rest_api"],
        },
        Killed {
            before: Some(&URL),
            asked: &[],
            after: &["rest_api", "deployment", "throttling", "permission", "function_url"],
        },
    ];
    for (i, Killed { before, asked, after }) in cases.into_iter().enumerate() {
        for step in after {
            let name = format!("k{i}-{}", step.replace('_', "-"));
            if let Some(before) = before {
                deploy(&harness, &name, &env, before);
            }
            let mut killed_env = env.clone();
            killed_env.push(("TOKENDEPLOY_ABORT_AFTER_STEP".into(), step.to_string()));
            let mut args = vec!["up", "--output", "json", "--zip", &zip, "--name", &name];
            args.extend_from_slice(asked);
            let killed = harness.run_with(&args, &killed_env);
            assert_ne!(killed.code, 0, "{name}: the run was meant to die after {step}");
            deploy(&harness, &name, &env, asked);
            assert_whole_behind(&harness, &name, &env, asked, &format!("killed after {step}")).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn a_function_urls_calls_recover_from_transient_faults_and_lost_answers() {
    let harness = Harness::start();
    let upstream = upstream().await;
    let env = dolby(&harness, &upstream);
    let zip = function_zip().to_str().unwrap().to_string();
    let recorder = FaultProxy::recording(&harness.moto.endpoint()).await.unwrap();
    let through = |proxy: &FaultProxy| {
        let mut env = env.clone();
        env.retain(|(k, _)| k != "AWS_ENDPOINT_URL");
        env.push(("AWS_ENDPOINT_URL".into(), proxy.endpoint()));
        env
    };
    let up = |name: &str| -> Vec<String> {
        let mut args = vec!["up", "--output", "json", "--quiet", "--zip", &zip, "--name", name];
        args.extend(URL);
        args.into_iter().map(str::to_string).collect()
    };
    let run = |proxy: &FaultProxy, name: &str| {
        let mut command =
            harness.command(&up(name).iter().map(String::as_str).collect::<Vec<_>>(), &through(proxy));
        async move { Run::from(tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap()) }
    };
    run(&recorder, "probe").await.assert_success();
    // The calls only a function URL makes: its configuration, the concurrency, the policy.
    let own =
        |operation: &str| ["/url", "/concurrency", "/policy"].iter().any(|part| operation.contains(part));
    let calls: Vec<_> =
        distinct_calls(&recorder.calls(), false).into_iter().filter(|(_, op, _)| own(op)).collect();
    assert!(calls.len() >= 5, "{calls:?}");
    let mut faults = 0;
    for (kind, effect) in
        TRANSIENT.iter().map(|(kind, effect)| (*kind, effect())).chain([("lost answer", Effect::LostReply)])
    {
        for (i, (service, operation, k)) in calls.iter().enumerate() {
            let mutating = !operation.starts_with("GET ");
            if matches!(effect, Effect::LostReply) && !mutating {
                continue;
            }
            let name = format!("f{faults}-{i}");
            let proxy = FaultProxy::start_with(
                &harness.moto.endpoint(),
                vec![rule(service, operation, *k, effect.clone())],
            )
            .await
            .unwrap();
            let context = format!("{kind} at {service} {operation} #{k}");
            let faulted = run(&proxy, &name).await;
            assert_eq!(faulted.code, 0, "{context}:\n{}", faulted.stderr);
            assert_eq!(proxy.injected(), 1, "{context}");
            assert_whole_behind(&harness, &name, &env, &URL, &context).await;
            faults += 1;
        }
    }
    eprintln!("up --gateway url: {faults} faults at the URL's own calls, every run converged");
}
