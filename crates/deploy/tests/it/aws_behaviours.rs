//! What AWS documents and moto does not do, played by the emulator (`moto_server.py`) or the
//! fault proxy, and `up` and `down` handling it: one test a behaviour of docs/aws-behaviours.md.

use std::collections::HashMap;

use crate::common::*;
use aws_sdk_apigateway::types::{Op, PatchOperation};
use serde_json::json;
use tokendeploy_deploy::desired::{SecretStore, Security};
use tokendeploy_deploy::down::down;
use tokendeploy_deploy::up::{UpReport, up};
use tokendeploy_deploy::{Action, Aws, Silent, Stack, Step, snapshot};
use tokendeploy_testkit::fault_proxy::{Call, Effect, ErrorKind, FaultProxy, Rule};
use tokendeploy_testkit::moto::Moto;

async fn deploy(aws: &Aws, stack: &Stack, version: &str, security: Security) -> UpReport {
    let code = artifact(version);
    up(aws, stack, environment(), security, move || Ok(code), &Silent).await.unwrap()
}

fn keyed() -> Security {
    Security { api_key: true, ..Security::default() }
}

async fn function_state(aws: &Aws, stack: &Stack) -> (String, String) {
    let config = aws.lambda.get_function_configuration().function_name(stack.function_name()).send().await;
    let config = config.unwrap();
    let state = config.state().map(|s| s.as_str().to_string()).unwrap_or_default();
    (state, config.last_update_status().map(|s| s.as_str().to_string()).unwrap_or_default())
}

/// "A function becomes inactive when it has been idle long enough"; it takes an update, and
/// comes back through Pending (Lambda developer guide, "Lambda function states"). `up` used to
/// wait for Active before updating, up to its 300 s bound.
#[tokio::test]
#[ignore = "needs the emulator (moto): scripts/test.sh runs it"]
async fn an_idle_function_takes_new_code_at_once() {
    let moto = Moto::start().unwrap();
    let aws = aws_at(&moto.endpoint()).await;
    let stack = stack("idle");
    deploy(&aws, &stack, "one", Security::default()).await;
    moto.set_function_state(REGION, stack.function_name(), json!({"State": "Inactive"})).await.unwrap();
    assert_eq!(function_state(&aws, &stack).await.0, "Inactive");

    let notes = Notes::default();
    let code = artifact("two");
    let report =
        up(&aws, &stack, environment(), Security::default(), move || Ok(code), &notes).await.unwrap();
    let function = report.steps.iter().find(|s| s.step == Step::Function).unwrap();
    assert_eq!(function.action, Action::Update);
    // Through Pending (moto_server.py holds it a second), not up to the 300 s bound.
    assert!(function.seconds < 60.0, "{function:?}");
    assert!(notes.of(Step::Function).iter().all(|note| !note.contains("take an update")), "no wait before");
    assert_eq!(function_state(&aws, &stack).await, ("Active".into(), "Successful".into()));
    assert_eq!(report.code_sha256, artifact("two").code_sha256);
}

/// "Failed – The function update has failed ... the function's previous code and configuration
/// remain available": a new update is taken (Lambda developer guide, "Lambda function states").
/// `up` used to refuse such a function.
#[tokio::test]
#[ignore = "needs the emulator (moto): scripts/test.sh runs it"]
async fn a_function_whose_last_update_failed_takes_new_code() {
    let moto = Moto::start().unwrap();
    let aws = aws_at(&moto.endpoint()).await;
    let stack = stack("failed-update");
    deploy(&aws, &stack, "one", Security::default()).await;
    let failed = json!({"LastUpdateStatus": "Failed", "LastUpdateStatusReason": "The code was not valid"});
    moto.set_function_state(REGION, stack.function_name(), failed).await.unwrap();
    assert_eq!(function_state(&aws, &stack).await.1, "Failed");
    let report = deploy(&aws, &stack, "two", Security::default()).await;
    assert_eq!(report.code_sha256, artifact("two").code_sha256);
    assert_eq!(function_state(&aws, &stack).await, ("Active".into(), "Successful".into()));
}

/// DeleteRole right after the policies are detached (DeleteConflict: IAM is eventually
/// consistent), DeleteUsagePlan right after its stages are removed ("Cannot delete Usage Plan
/// ... because there are API Stages associated with it"), and UpdateUsagePlan over its quota
/// of one every 20 s: each refused once by the fault proxy, each waited out in view, and
/// nothing is left.
#[tokio::test]
#[ignore = "needs the emulator (moto): scripts/test.sh runs it"]
async fn down_waits_out_eventually_consistent_deletions_and_the_usage_plan_quota() {
    let moto = Moto::start().unwrap();
    let stack = stack("settling");
    deploy(&aws_at(&moto.endpoint()).await, &stack, "one", keyed()).await;
    let conflict =
        ErrorKind::custom(409, "DeleteConflict", "Cannot delete entity, must detach all policies first.");
    let still_bound = ErrorKind::custom(
        400,
        "BadRequestException",
        "Cannot delete Usage Plan abc123 because there are API Stages associated with it, including def456:prod",
    );
    let rules = vec![
        Rule::first(|call: &Call| call.is("iam", "DeleteRole"), 1, Effect::Error(conflict)),
        Rule::first(
            |call: &Call| call.is("apigateway", "DELETE /usageplans/{id}"),
            1,
            Effect::Error(still_bound),
        ),
        Rule::first(
            |call: &Call| call.is("apigateway", "PATCH /usageplans/{id}"),
            1,
            Effect::Error(ErrorKind::Throttling),
        ),
    ];
    let proxy = FaultProxy::start_with(&moto.endpoint(), rules).await.unwrap();
    let aws = aws_at(&proxy.endpoint()).await;
    let found = snapshot::read(&aws, &stack).await.unwrap();
    let notes = Notes::default();
    down(&aws, &stack, &found, &notes).await.unwrap();
    assert_eq!(proxy.injected(), 3, "{:?}", proxy.calls());
    let role = notes.of(Step::Role);
    assert!(
        role.iter().any(|n| n.starts_with("IAM does not see the role's policies removed yet; retrying in")),
        "{role:?}"
    );
    let plan = notes.of(Step::UsagePlan);
    for waited in
        ["API Gateway allows one usage plan update every 20 s", "API Gateway still counts the plan's stages"]
    {
        assert!(plan.iter().any(|n| n.starts_with(waited)), "{waited}: {plan:?}");
    }
    assert!(snapshot::read(&aws, &stack).await.unwrap().found(&stack).is_empty());
}

/// "If you delete a secret and then immediately create a secret with the same name, use
/// appropriate back off and retry logic" (Secrets Manager API reference, DeleteSecret):
/// moto_server.py holds the name for two seconds after `down` deleted it.
#[tokio::test]
#[ignore = "needs the emulator (moto): scripts/test.sh runs it"]
async fn up_right_after_down_waits_for_the_secrets_name_to_be_freed() {
    let moto = Moto::start().unwrap();
    let aws = aws_at(&moto.endpoint()).await;
    let stack = stack("freed");
    let store = Security { secret_store: SecretStore::SecretsManager, ..Security::default() };
    deploy(&aws, &stack, "one", store).await;
    let found = snapshot::read(&aws, &stack).await.unwrap();
    down(&aws, &stack, &found, &Silent).await.unwrap();
    let notes = Notes::default();
    let made = up(&aws, &stack, environment(), store, || Ok(artifact("one")), &notes).await.unwrap();
    assert!(made.secret_arn.is_some());
    let told = notes.of(Step::Secret);
    assert!(
        told.iter().any(|n| n.starts_with("Secrets Manager is still freeing the name tokendeploy/freed")),
        "{told:?}"
    );
    assert_eq!(changes(&aws, &stack, environment(), store).await, []);
}

/// "ApiKey: the update requires redeploying the API" (API Gateway developer guide,
/// "Maintaining a REST API"): a key disabled by hand and enabled again by `up` is served once
/// the stage is redeployed.
#[tokio::test]
#[ignore = "needs the emulator (moto): scripts/test.sh runs it"]
async fn a_key_enabled_again_is_redeployed() {
    let moto = Moto::start().unwrap();
    let aws = aws_at(&moto.endpoint()).await;
    let stack = stack("reenabled");
    let made = deploy(&aws, &stack, "one", keyed()).await;
    let key = made.api_key_id.clone().unwrap();
    let off = PatchOperation::builder().op(Op::Replace).path("/enabled").value("false").build();
    aws.apigateway.update_api_key().api_key(&key).patch_operations(off).send().await.unwrap();
    let deployments = |aws: Aws, api: String| async move {
        aws.apigateway.get_deployments().rest_api_id(api).send().await.unwrap().items().len()
    };
    let before = deployments(aws.clone(), made.api_id.clone().unwrap()).await;
    assert_eq!(
        changes(&aws, &stack, environment(), keyed()).await,
        [(Step::Deployment, Action::Update), (Step::ApiKey, Action::Update)]
    );
    deploy(&aws, &stack, "one", keyed()).await;
    assert!(aws.apigateway.get_api_key().api_key(&key).send().await.unwrap().enabled());
    assert_eq!(deployments(aws.clone(), made.api_id.clone().unwrap()).await, before + 1);
    assert_eq!(changes(&aws, &stack, environment(), keyed()).await, []);
}

/// API Gateway's own answers (missing key 403, throttled 429, a failed function 5xx) carry
/// CORS headers only when gateway responses say so ("Gateway response types"): read back, each
/// of DEFAULT_4XX and DEFAULT_5XX names the allowed origin; another origin list is drift that
/// `up` repairs with a redeployment.
#[tokio::test]
#[ignore = "needs the emulator (moto): scripts/test.sh runs it"]
async fn api_gateways_own_answers_carry_cors_for_the_allowed_origin() {
    let moto = Moto::start().unwrap();
    let aws = aws_at(&moto.endpoint()).await;
    let stack = stack("cors");
    let made = deploy(&aws, &stack, "one", keyed()).await;
    let responses = |aws: Aws, api: String| async move {
        let listed = aws.apigateway.get_gateway_responses().rest_api_id(api).send().await.unwrap();
        let custom = listed.items().iter().filter(|r| !r.default_response());
        custom
            .map(|r| {
                (r.response_type().unwrap().as_str().to_string(), r.response_parameters().cloned().unwrap())
            })
            .collect::<HashMap<_, _>>()
    };
    let read = responses(aws.clone(), made.api_id.clone().unwrap()).await;
    for kind in ["DEFAULT_4XX", "DEFAULT_5XX"] {
        let headers = &read[kind];
        assert_eq!(
            headers["gatewayresponse.header.Access-Control-Allow-Origin"], "'https://app.example'",
            "{kind}"
        );
        assert_eq!(headers["gatewayresponse.header.Vary"], "'Origin'", "{kind}");
    }
    assert_eq!(read.len(), 2, "{read:?}");

    let mut two_origins = environment();
    two_origins
        .variables
        .insert("ALLOWED_ORIGINS".into(), "https://app.example, https://admin.example".into());
    assert_eq!(
        changes(&aws, &stack, two_origins.clone(), keyed()).await,
        [
            (Step::Environment, Action::Update),
            (Step::GatewayResponses, Action::Update),
            (Step::Deployment, Action::Update)
        ]
    );
    up(&aws, &stack, two_origins.clone(), keyed(), || Ok(artifact("one")), &Silent).await.unwrap();
    let read = responses(aws.clone(), made.api_id.clone().unwrap()).await;
    assert_eq!(
        read["DEFAULT_4XX"]["gatewayresponse.header.Access-Control-Allow-Origin"],
        "method.request.header.Origin"
    );
    assert_eq!(changes(&aws, &stack, two_origins, keyed()).await, []);
}

/// The API Gateway reference does not say that GetResources with `embed=methods` carries each
/// method's `methodIntegration` (moto's does): without it, the integrations are read one by one,
/// and a converged stack is still seen as converged.
#[tokio::test]
#[ignore = "needs the emulator (moto): scripts/test.sh runs it"]
async fn integrations_left_out_of_the_embedded_methods_are_read_by_themselves() {
    let moto = Moto::start().unwrap();
    let stack = stack("embedded");
    deploy(&aws_at(&moto.endpoint()).await, &stack, "one", Security::default()).await;
    let rules = vec![Rule::first(
        |call: &Call| call.is("apigateway", "GET /restapis/{id}/resources"),
        usize::MAX,
        Effect::StripFromAnswer("methodIntegration"),
    )];
    let proxy = FaultProxy::start_with(&moto.endpoint(), rules).await.unwrap();
    let aws = aws_at(&proxy.endpoint()).await;
    assert_eq!(changes(&aws, &stack, environment(), Security::default()).await, []);
    let calls = proxy.calls();
    let integrations = calls.iter().filter(|c| c.operation.contains("/integration")).count();
    assert_eq!(integrations, 2, "GET and OPTIONS read by themselves: {calls:?}");
}

/// Every ARN and host name follows the region's partition (IAM user guide, "IAM identifiers":
/// `aws-cn` for China, whose endpoints end in `amazonaws.com.cn`).
#[tokio::test]
#[ignore = "needs the emulator (moto): scripts/test.sh runs it"]
async fn an_up_in_china_builds_only_aws_cn_arns_and_a_com_cn_invoke_url() {
    let moto = Moto::start().unwrap();
    let region = "cn-north-1";
    let aws = aws_in(&moto.endpoint(), region).await;
    let stack = Stack::new("china", region).unwrap();
    let made = deploy(&aws, &stack, "one", Security::default()).await;
    let url = &made.aws_invoke_url;
    assert!(
        url.starts_with(&format!(
            "https://{}.execute-api.cn-north-1.amazonaws.com.cn/",
            made.api_id.as_deref().unwrap()
        )),
        "{url}"
    );
    for arn in [&made.role_arn, &made.function_arn] {
        assert!(arn.starts_with("arn:aws-cn:"), "{arn}");
    }
    let config = aws.lambda.get_function_configuration().function_name("china").send().await.unwrap();
    assert!(config.role().unwrap().starts_with("arn:aws-cn:iam::"), "{config:?}");
    let attached = aws.iam.list_attached_role_policies().role_name(stack.role_name()).send().await.unwrap();
    let attached: Vec<_> = attached.attached_policies().iter().filter_map(|p| p.policy_arn()).collect();
    assert_eq!(attached, ["arn:aws-cn:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"]);
    let policy = aws.lambda.get_policy().function_name("china").send().await.unwrap();
    let policy: serde_json::Value = serde_json::from_str(policy.policy().unwrap()).unwrap();
    for statement in policy["Statement"].as_array().unwrap() {
        let source = statement["Condition"]["ArnLike"]["AWS:SourceArn"].as_str().unwrap();
        assert!(source.starts_with("arn:aws-cn:execute-api:cn-north-1:"), "{source}");
    }
    let resources = aws
        .apigateway
        .get_resources()
        .rest_api_id(made.api_id.as_deref().unwrap())
        .embed("methods")
        .send()
        .await
        .unwrap();
    let proxy = resources.items().iter().find(|r| r.path() == Some("/{proxy+}")).unwrap();
    for (method, described) in proxy.resource_methods().unwrap() {
        let uri = described.method_integration().and_then(|i| i.uri()).unwrap_or_default();
        assert!(uri.starts_with("arn:aws-cn:apigateway:cn-north-1:lambda:path/"), "{method}: {uri}");
        assert!(uri.contains("/functions/arn:aws-cn:lambda:cn-north-1:"), "{method}: {uri}");
    }
    assert_eq!(changes(&aws, &stack, environment(), Security::default()).await, []);
}
