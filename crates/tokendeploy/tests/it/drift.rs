//! Hand edits that widen what the token server allows, made through the SDK as a careless
//! colleague would: `status` must call each one drift (exit 3), `up` must take it away, and
//! `status` must then find the stack in sync again.

use crate::support::*;
use aws_sdk_apigateway::types::IntegrationType;
use aws_sdk_lambda::types::Environment;

const STACK: &str = "token-server";
const ROLE: &str = "token-server-us-west-1-lambda";
const BASIC: &str = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole";

/// `status` says drift, naming `expected` in the `kind` entry; `up` then repairs it and
/// `status` is content again.
fn assert_drift_repaired(harness: &Harness, kind: &str, expected: &str) {
    let drifted = harness.status(&[]);
    assert_eq!(drifted.code, 3, "{kind}: {}{}", drifted.stdout, drifted.stderr);
    let report = drifted.json();
    let reasons: Vec<String> = report["drift"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["kind"] == kind)
        .map(|d| d["reason"].as_str().unwrap().to_string())
        .collect();
    assert!(reasons.iter().any(|r| r.contains(expected)), "{kind}: wanted {expected:?} in {report}");
    let up = harness.up(&[]);
    up.assert_success();
    assert!(up.actions().contains(&(kind.to_string(), "updated".to_string())), "{kind}: {:?}", up.actions());
    let after = harness.status(&[]);
    assert_eq!(after.code, 0, "{kind} after up: {}{}", after.stdout, after.stderr);
}

#[tokio::test]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn permissions_added_to_the_role_are_drift_and_removed() {
    let harness = Harness::start();
    harness.up(&[]).assert_success();
    let aws = harness.aws(REGION).await;
    let admin = "arn:aws:iam::aws:policy/AdministratorAccess";
    aws.iam.attach_role_policy().role_name(ROLE).policy_arn(admin).send().await.unwrap();
    assert_drift_repaired(&harness, "role", "AdministratorAccess");

    let everything =
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
    let put = aws.iam.put_role_policy().role_name(ROLE).policy_name("star").policy_document(everything);
    put.send().await.unwrap();
    assert_drift_repaired(&harness, "role", "inline policies up does not grant: star");

    let attached = aws.iam.list_attached_role_policies().role_name(ROLE).send().await.unwrap();
    let arns: Vec<_> = attached.attached_policies().iter().filter_map(|p| p.policy_arn()).collect();
    assert_eq!(arns, [BASIC]);
    let inline = aws.iam.list_role_policies().role_name(ROLE).send().await.unwrap();
    assert!(inline.policy_names().is_empty());
}

#[tokio::test]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn anyone_allowed_to_invoke_the_function_is_drift_and_removed() {
    let harness = Harness::start();
    harness.up(&[]).assert_success();
    let aws = harness.aws(REGION).await;
    let open = aws
        .lambda
        .add_permission()
        .function_name(STACK)
        .statement_id("open-to-all")
        .action("lambda:InvokeFunction")
        .principal("*");
    open.send().await.unwrap();
    assert_drift_repaired(&harness, "permission", "statements up did not make: open-to-all");
    let policy = aws.lambda.get_policy().function_name(STACK).send().await.unwrap();
    let policy: serde_json::Value = serde_json::from_str(policy.policy().unwrap()).unwrap();
    let sids: Vec<_> = policy["Statement"].as_array().unwrap().iter().map(|s| s["Sid"].clone()).collect();
    assert_eq!(sids.len(), 2, "{sids:?}");
    assert!(!sids.contains(&"open-to-all".into()));

    // Our own statement id, rewritten to let anyone invoke.
    let sid = "tokendeploy-apigateway-get";
    aws.lambda.remove_permission().function_name(STACK).statement_id(sid).send().await.unwrap();
    let rewritten = aws.lambda.add_permission().function_name(STACK).statement_id(sid);
    rewritten.action("lambda:InvokeFunction").principal("*").send().await.unwrap();
    assert_drift_repaired(&harness, "permission", "source ARN does not match");
    let policy = aws.lambda.get_policy().function_name(STACK).send().await.unwrap();
    assert!(!policy.policy().unwrap().contains(r#""Principal":"*""#), "{}", policy.policy().unwrap());
}

#[tokio::test]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn routes_added_to_the_api_are_drift_and_removed() {
    let harness = Harness::start();
    let api_id = harness.up(&[]).json()["api_id"].as_str().unwrap().to_string();
    let aws = harness.aws(REGION).await;
    let resources = aws.apigateway.get_resources().rest_api_id(&api_id).send().await.unwrap();
    let id_of = |path: &str| {
        resources.items().iter().find(|r| r.path() == Some(path)).unwrap().id().unwrap().to_string()
    };
    let (root, proxy) = (id_of("/"), id_of("/{proxy+}"));

    // A route that proxies to a host outside, deployed to the stage.
    let evil = aws
        .apigateway
        .create_resource()
        .rest_api_id(&api_id)
        .parent_id(&root)
        .path_part("evil")
        .send()
        .await
        .unwrap();
    let evil_id = evil.id().unwrap();
    let put = aws.apigateway.put_method().rest_api_id(&api_id).resource_id(evil_id).http_method("GET");
    put.authorization_type("NONE").send().await.unwrap();
    aws.apigateway
        .put_integration()
        .rest_api_id(&api_id)
        .resource_id(evil_id)
        .http_method("GET")
        .r#type(IntegrationType::HttpProxy)
        .integration_http_method("GET")
        .uri("https://collector.evil.example/")
        .send()
        .await
        .unwrap();
    aws.apigateway.create_deployment().rest_api_id(&api_id).stage_name("prod").send().await.unwrap();
    assert_drift_repaired(&harness, "proxy_resource", "resources up did not make: /evil");

    // A method beside GET and OPTIONS on {proxy+}, and one on the root.
    for (resource, method) in [(&proxy, "POST"), (&root, "ANY")] {
        let put = aws.apigateway.put_method().rest_api_id(&api_id).resource_id(resource).http_method(method);
        put.authorization_type("NONE").send().await.unwrap();
    }
    assert_drift_repaired(&harness, "methods", "POST /{proxy+}");

    // A stage beside prod keeps serving whatever it was deployed with.
    aws.apigateway.create_deployment().rest_api_id(&api_id).stage_name("test").send().await.unwrap();
    assert_drift_repaired(&harness, "deployment", "stages up did not make: stage test");
    let stages = aws.apigateway.get_stages().rest_api_id(&api_id).send().await.unwrap();
    let names: Vec<_> = stages.item().iter().filter_map(|s| s.stage_name()).collect();
    assert_eq!(names, ["prod"]);

    let after = aws.apigateway.get_resources().rest_api_id(&api_id).embed("methods").send().await.unwrap();
    let mut shape: Vec<String> = after
        .items()
        .iter()
        .flat_map(|r| {
            let methods = r.resource_methods().map(|m| m.keys().cloned().collect()).unwrap_or_else(Vec::new);
            methods.into_iter().map(move |m| format!("{m} {}", r.path().unwrap()))
        })
        .collect();
    shape.sort();
    assert_eq!(shape, ["GET /{proxy+}", "OPTIONS /{proxy+}"]);
}

#[tokio::test]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn a_variable_up_no_longer_sets_is_drift_and_removed_while_hand_added_ones_stay() {
    let harness = Harness::start();
    let mut with_timeout = harness.env();
    with_timeout.push(("UPSTREAM_TIMEOUT_MS".into(), "4000".into()));
    harness.up_with(&[], &with_timeout).assert_success();
    let aws = harness.aws(REGION).await;
    let config = aws.lambda.get_function_configuration().function_name(STACK).send().await.unwrap();
    let mut variables = config.environment().unwrap().variables().unwrap().clone();
    variables.insert("ADDED_BY_HAND".into(), "keep me".into());
    let environment = Environment::builder().set_variables(Some(variables)).build();
    let update = aws.lambda.update_function_configuration().function_name(STACK).environment(environment);
    update.send().await.unwrap();

    assert_drift_repaired(&harness, "environment", "UPSTREAM_TIMEOUT_MS set but no longer asked for");
    let config = aws.lambda.get_function_configuration().function_name(STACK).send().await.unwrap();
    let variables = config.environment().unwrap().variables().unwrap();
    assert!(!variables.contains_key("UPSTREAM_TIMEOUT_MS"), "{:?}", variables.keys());
    assert_eq!(variables["ADDED_BY_HAND"], "keep me");
    assert_eq!(variables["CONSUMER_SECRET"], SECRET);
}

#[tokio::test]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn a_second_rest_api_of_the_stack_is_healed_keeping_the_one_serving_traffic() {
    let harness = Harness::start();
    let first = harness.up(&[]).json();
    let aws = harness.aws(REGION).await;
    // What two racing runs, or a retried create, used to leave behind.
    let tags = [("tokendeploy:stack".to_string(), STACK.to_string())].into_iter().collect();
    let twin = aws.apigateway.create_rest_api().name(STACK).set_tags(Some(tags)).send().await.unwrap();
    let twin_id = twin.id().unwrap().to_string();

    let plan = harness
        .run_with(&["plan", "--output", "json", "--zip", function_zip().to_str().unwrap()], &harness.env());
    assert_eq!(plan.code, 0, "plan no longer refuses: {}", plan.stderr);
    assert_drift_repaired(&harness, "rest_api", &format!("removes {twin_id}"));
    let apis: Vec<_> = rest_apis(&aws).await.into_iter().map(|(id, _, _)| id).collect();
    assert_eq!(apis, [first["api_id"].as_str().unwrap()], "the API the stage serves is kept");
    assert_eq!(harness.status(&[]).json()["invoke_url"], first["invoke_url"]);
}

#[tokio::test]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn stage_settings_of_single_methods_caching_and_logging_are_drift_and_set_back() {
    use aws_sdk_apigateway::types::{Op, PatchOperation};
    let harness = Harness::start();
    let made = harness.up(&[]);
    made.assert_success();
    let api_id = made.json()["api_id"].as_str().unwrap().to_string();
    let aws = harness.aws(REGION).await;
    for (path, value, expected) in [
        ("/~1{proxy+}/GET/throttling/rateLimit", "10000", "settings of single methods: ~1{proxy+}/GET"),
        ("/~1{proxy+}/OPTIONS/caching/enabled", "true", "settings of single methods: ~1{proxy+}/OPTIONS"),
        ("/*/*/caching/enabled", "true", "caching on"),
        ("/*/*/logging/dataTrace", "true", "data tracing on"),
        ("/*/*/logging/loglevel", "INFO", "execution logging on"),
        ("/cacheClusterEnabled", "true", "a cache cluster on"),
    ] {
        let edit = PatchOperation::builder().op(Op::Replace).path(path).value(value).build();
        let stage = aws.apigateway.update_stage().rest_api_id(&api_id).stage_name("prod");
        stage.patch_operations(edit).send().await.unwrap();
        assert_drift_repaired(&harness, "throttling", expected);
        let stage = aws.apigateway.get_stage().rest_api_id(&api_id).stage_name("prod").send().await.unwrap();
        let keys: Vec<&String> = stage.method_settings().unwrap().keys().collect();
        assert_eq!(keys, ["*/*"], "{path}");
        let every = &stage.method_settings().unwrap()["*/*"];
        assert!(
            !every.caching_enabled() && !every.data_trace_enabled() && !stage.cache_cluster_enabled(),
            "{path}"
        );
        assert!(every.logging_level().is_none_or(|level| level == "OFF"), "{path}");
    }
}
