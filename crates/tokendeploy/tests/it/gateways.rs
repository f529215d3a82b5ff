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
const HTTP: [&str; 2] = ["--gateway", "http"];

/// The stack's gateways as they are: its REST APIs' ids, its HTTP APIs' ids and its function
/// URL.
async fn gateways(harness: &Harness, name: &str) -> (Vec<String>, Vec<String>, Option<String>) {
    let aws = harness.aws(REGION).await;
    let apis = rest_apis(&aws).await.into_iter().filter(|(_, api, _)| api == name).map(|(id, _, _)| id);
    let http = aws.apigatewayv2.get_apis().send().await.unwrap();
    let http = http
        .items()
        .iter()
        .filter(|api| api.name() == Some(name))
        .map(|api| api.api_id().unwrap().to_string());
    let url = aws.lambda.get_function_url_config().function_name(name).send().await.ok();
    (apis.collect(), http.collect(), url.map(|config| config.function_url().to_string()))
}

/// A token for the allowed origin, readable by it; another origin's not let read; a preflight
/// answered with `preflight_status` and the allowed origin.
async fn assert_serves_with_its_cors(url: &str, preflight_status: u16) {
    let allowed = get(url, &[("origin", ORIGIN)]).await;
    assert_eq!(token_of(&allowed), "upstream-token");
    assert_eq!(allowed.headers["access-control-allow-origin"], ORIGIN);
    let other = get(url, &[("origin", "https://elsewhere.example")]).await;
    assert!(other.headers.get("access-control-allow-origin").is_none(), "{:?}", other.headers);
    let preflight =
        ask(Method::OPTIONS, url, &[("origin", ORIGIN), ("access-control-request-method", "GET")]).await;
    assert_eq!(preflight.status, preflight_status);
    assert_eq!(preflight.headers["access-control-allow-origin"], ORIGIN);
}

/// Which gateway kinds the stack has: `rest`, `http`, `url`, each once at most.
async fn kinds(harness: &Harness, name: &str) -> Vec<&'static str> {
    let (rest, http, url) = gateways(harness, name).await;
    assert!(rest.len() <= 1 && http.len() <= 1, "{rest:?} {http:?}");
    [(!rest.is_empty(), "rest"), (!http.is_empty(), "http"), (url.is_some(), "url")]
        .into_iter()
        .filter_map(|(there, kind)| there.then_some(kind))
        .collect()
}

fn status(harness: &Harness, name: &str, env: &[(String, String)], args: &[&str]) -> Run {
    let zip = function_zip().to_str().unwrap().to_string();
    let mut all = vec!["status", "--output", "json", "--zip", &zip, "--name", name];
    all.extend_from_slice(args);
    harness.run_with(&all, env)
}

/// The steps `up` changed, by name.
pub(crate) fn changed(made: &Value) -> Vec<String> {
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
    assert_eq!(kinds(&harness, "u").await, ["url"], "no API is made");

    // Lambda answers the preflight itself: 200.
    assert_serves_with_its_cors(url, 200).await;

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
    assert_eq!(kinds(&harness, "s").await, ["rest"]);

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

    let aws = harness.aws(REGION).await;
    for (args, kind) in
        [(&HTTP[..], "http"), (&URL[..], "url"), (&[][..], "rest"), (&URL[..], "url"), (&HTTP[..], "http")]
    {
        let made = deploy(&harness, "s", &env, args);
        assert_eq!(made["function_arn"], function_arn.as_str(), "{kind}: the function is kept");
        assert_eq!(made["gateway"], kind);
        assert_eq!(kinds(&harness, "s").await, [kind], "{kind}: one gateway, the one asked for");
        assert_eq!(
            token_of(&get(made["invoke_url"].as_str().unwrap(), &[]).await),
            "upstream-token",
            "{kind}"
        );
        assert_eq!(status(&harness, "s", &env, args).code, 0, "{kind}");
        let keys = aws.apigateway.get_api_keys().send().await.unwrap();
        assert!(keys.items().is_empty(), "{kind}: the REST API's key went with it");
        let reserved = aws.lambda.get_function_concurrency().function_name("s").send().await.unwrap();
        assert_eq!(
            reserved.reserved_concurrent_executions().is_some(),
            kind == "url",
            "{kind}: the URL's bound"
        );
        let policy = aws.lambda.get_policy().function_name("s").send().await.unwrap();
        let policy = policy.policy().unwrap();
        let sids: Vec<&str> = ["apigateway-get", "httpapi", "function-url"]
            .into_iter()
            .filter(|sid| policy.contains(sid))
            .collect();
        let wanted = match kind {
            "rest" => "apigateway-get",
            "http" => "httpapi",
            _ => "function-url",
        };
        assert_eq!(sids, [wanted], "{kind}: only the gateway's own statements");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn an_http_api_serves_with_its_cors_and_limits_converges_repairs_its_drift_and_goes() {
    let harness = Harness::start();
    let upstream = upstream().await;
    let env = dolby(&harness, &upstream);
    let made = deploy(&harness, "h", &env, &HTTP);
    assert_eq!(
        (made["gateway"].as_str(), made["stage"].as_str()),
        (Some("http"), Some("$default")),
        "{made}"
    );
    let url = made["invoke_url"].as_str().unwrap();
    assert!(url.starts_with(&format!("{}/http-api/", harness.moto.endpoint())), "{url}");
    let aws_url = made["aws_invoke_url"].as_str().unwrap();
    assert!(
        aws_url.starts_with("https://") && aws_url.ends_with(".execute-api.us-west-1.amazonaws.com/token"),
        "{made}"
    );
    assert_eq!(kinds(&harness, "h").await, ["http"]);

    // API Gateway answers the preflight itself: 204.
    assert_serves_with_its_cors(url, 204).await;

    let again = deploy(&harness, "h", &env, &HTTP);
    assert!(changed(&again).is_empty(), "{again}");
    assert_eq!(status(&harness, "h", &env, &HTTP).code, 0);

    // By hand: the token route removed, a catch-all added, the limits lifted, CORS opened.
    let aws = harness.aws(REGION).await;
    let id = made["api_id"].as_str().unwrap();
    let routes = aws.apigatewayv2.get_routes().api_id(id).send().await.unwrap();
    let token_route = routes.items().iter().find(|r| r.route_key() == Some("GET /token")).unwrap();
    let target = token_route.target().unwrap().to_string();
    aws.apigatewayv2
        .delete_route()
        .api_id(id)
        .route_id(token_route.route_id().unwrap())
        .send()
        .await
        .unwrap();
    aws.apigatewayv2
        .create_route()
        .api_id(id)
        .route_key("ANY /{proxy+}")
        .target(target)
        .send()
        .await
        .unwrap();
    let lifted = aws_sdk_apigatewayv2::types::RouteSettings::builder()
        .throttling_rate_limit(5000.0)
        .throttling_burst_limit(5000)
        .build();
    aws.apigatewayv2
        .update_stage()
        .api_id(id)
        .stage_name("$default")
        .default_route_settings(lifted)
        .send()
        .await
        .unwrap();
    let open = aws_sdk_apigatewayv2::types::Cors::builder().allow_origins("*").build();
    aws.apigatewayv2.update_api().api_id(id).cors_configuration(open).send().await.unwrap();
    let drifted = status(&harness, "h", &env, &HTTP);
    assert_eq!(drifted.code, 3, "{}", drifted.stdout);
    let drift: Vec<(String, String)> = drifted.json()["drift"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["kind"].as_str().unwrap().to_string(), d["reason"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(
        drift,
        [
            ("http_api".to_string(), "CORS changed".to_string()),
            (
                "http_routes".to_string(),
                "missing routes: GET /token; routes up did not make: ANY /{proxy+}".to_string()
            ),
            ("http_stage".to_string(), "limits changed".to_string()),
        ]
    );
    let repaired = deploy(&harness, "h", &env, &HTTP);
    assert_eq!(changed(&repaired), ["http_api", "http_routes", "http_stage"]);
    assert_eq!(status(&harness, "h", &env, &HTTP).code, 0);
    assert_eq!(token_of(&get(url, &[]).await), "upstream-token");

    // Tight limits: a burst beyond them is API Gateway's 429, before the function runs.
    deploy(&harness, "h", &env, &["--gateway", "http", "--rate-limit", "0.1", "--burst-limit", "1"]);
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(get(url, &[]).await.status);
    }
    assert!(statuses.contains(&429), "{statuses:?}");

    let down = harness.run_with(&["down", "--output", "json", "--yes", "--name", "h"], &env);
    down.assert_success();
    let stack = tokendeploy_deploy::Stack::new("h", REGION).unwrap();
    let left = tokendeploy_deploy::snapshot::read(&aws, &stack).await.unwrap().found(&stack);
    assert!(left.is_empty(), "down left: {left:?}");
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
    let kind = match args {
        [.., "--gateway", kind] => *kind,
        _ => "rest",
    };
    assert_eq!(kinds(harness, name).await, [kind], "{context}");
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
        Killed {
            before: None,
            asked: &HTTP,
            after: &["function", "http_api", "http_routes", "http_stage", "permission"],
        },
        Killed {
            before: Some(&URL),
            asked: &HTTP,
            after: &["http_api", "http_stage", "permission", "function_url"],
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
async fn a_function_urls_and_an_http_apis_calls_recover_from_transient_faults_and_lost_answers() {
    let harness = Harness::start();
    let upstream = upstream().await;
    let issuer = crate::jwt_authorizer::issuer().await;
    let env = dolby(&harness, &upstream);
    let guarded = crate::jwt_authorizer::livekit_proven_by(&harness, &issuer);
    let zip = function_zip().to_str().unwrap().to_string();
    let through = |proxy: &FaultProxy, env: &[(String, String)]| {
        let mut env = env.to_vec();
        env.retain(|(k, _)| k != "AWS_ENDPOINT_URL");
        env.push(("AWS_ENDPOINT_URL".into(), proxy.endpoint()));
        env
    };
    let run = |proxy: &FaultProxy, name: &str, gateway: &[&str], env: &[(String, String)]| {
        let mut args = vec!["up", "--output", "json", "--quiet", "--zip", &zip, "--name", name];
        args.extend(gateway);
        let mut command = harness.command(&args, &through(proxy, env));
        async move { Run::from(tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap()) }
    };
    // The calls only each gateway makes: the URL's configuration, the concurrency and the
    // policy; the HTTP API's, and the policy; the HTTP API's JWT authorizer's, for callers
    // proven by a key set.
    struct OwnCalls<'a> {
        gateway: &'a [&'a str],
        /// What the paths of its calls hold.
        own: &'a [&'a str],
        env: &'a [(String, String)],
        at_least: usize,
    }
    let gateways = [
        OwnCalls { gateway: &URL, own: &["/url", "/concurrency", "/policy"], env: &env, at_least: 5 },
        OwnCalls { gateway: &HTTP, own: &["/v2/apis", "/policy"], env: &env, at_least: 5 },
        OwnCalls { gateway: &HTTP, own: &["/authorizers"], env: &guarded, at_least: 1 },
    ];
    let mut faults = 0;
    for OwnCalls { gateway, own, env, at_least } in gateways {
        let recorder = FaultProxy::recording(&harness.moto.endpoint()).await.unwrap();
        run(&recorder, &format!("probe{faults}"), gateway, env).await.assert_success();
        let owned = |operation: &str| own.iter().any(|part| operation.contains(part));
        let calls: Vec<_> =
            distinct_calls(&recorder.calls(), false).into_iter().filter(|(_, op, _)| owned(op)).collect();
        assert!(calls.len() >= at_least, "{calls:?}");
        let effects = TRANSIENT
            .iter()
            .map(|(kind, effect)| (*kind, effect()))
            .chain([("lost answer", Effect::LostReply)]);
        for (kind, effect) in effects {
            for (service, operation, k) in &calls {
                if matches!(effect, Effect::LostReply) && operation.starts_with("GET ") {
                    continue;
                }
                let name = format!("f{faults}");
                let rules = vec![rule(service, operation, *k, effect.clone())];
                let proxy = FaultProxy::start_with(&harness.moto.endpoint(), rules).await.unwrap();
                let context = format!("{gateway:?}: {kind} at {service} {operation} #{k}");
                let faulted = run(&proxy, &name, gateway, env).await;
                assert_eq!(faulted.code, 0, "{context}:\n{}", faulted.stderr);
                assert_eq!(proxy.injected(), 1, "{context}");
                assert_whole_behind(&harness, &name, env, gateway, &context).await;
                faults += 1;
            }
        }
    }
    eprintln!("{faults} faults at a function URL's and an HTTP API's own calls, every run converged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn a_reservation_the_accounts_concurrency_quota_cannot_hold_is_one_line_saying_what_to_do() {
    let harness = Harness::start();
    let upstream = upstream().await;
    let env = dolby(&harness, &upstream);
    // The emulator's account has AWS's default quota of 1,000, of which 100 stay unreserved.
    let refused =
        harness.up_with(&["--name", "q", "--gateway", "url", "--reserved-concurrency", "950"], &env);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    let line = refused.stderr.lines().last().unwrap_or_default();
    assert!(line.contains("Lambda keeps 100 of the account's concurrency"), "{line}");
    assert!(line.contains("Service Quotas") && line.contains("--gateway rest"), "{line}");
    refused.assert_no_secret();
    // Within the quota, the same stack is finished by the next run.
    let made = deploy(&harness, "q", &env, &["--gateway", "url", "--reserved-concurrency", "900"]);
    assert_eq!(made["gateway"], "url");
}
