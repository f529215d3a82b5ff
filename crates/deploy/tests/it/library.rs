//! `up`, `plan`, `status` and `down` called as functions against a moto server.

use crate::common::*;
use tokendeploy_deploy::desired::Security;
use tokendeploy_deploy::down::{down, to_delete};
use tokendeploy_deploy::resources::function::{CodeChange, FunctionChange, FunctionFixes};
use tokendeploy_deploy::status::status;
use tokendeploy_deploy::up::{prepare, up};
use tokendeploy_deploy::{Action, ErrorKind, Silent, Step, snapshot};
use tokendeploy_testkit::fault_proxy::{Call, Effect, ErrorKind as Fault, FaultProxy, Rule};
use tokendeploy_testkit::moto::Moto;

#[tokio::test]
#[ignore = "needs the emulator (moto): scripts/test.sh runs it"]
async fn up_plan_status_and_down_as_a_library() {
    let moto = Moto::start().unwrap();
    let aws = aws_at(&moto.endpoint()).await;
    let stack = stack("library");

    let made =
        up(&aws, &stack, environment(), Security::default(), || Ok(artifact("one")), &Silent).await.unwrap();
    assert_eq!(made.steps.len(), Step::ALL.len());
    // Everything but what only a flag asks for (secret, API key, another gateway) is made.
    let made_steps = made.steps.iter().filter(|step| step.action == Action::Create).count();
    assert_eq!(made_steps, Step::ALL.len() - 8, "{:?}", made.steps);
    assert!(
        made.aws_invoke_url
            .starts_with(&format!("https://{}.execute-api.{REGION}", made.api_id.as_deref().unwrap()))
    );
    assert!(made.aws_invoke_url.ends_with("/prod/token"), "{}", made.aws_invoke_url);
    assert_eq!(
        made.invoke_url,
        format!("{}/restapis/{}/prod/_user_request_/token", moto.endpoint(), made.api_id.as_deref().unwrap())
    );

    // Planned again with the same code and variables: nothing to do, and status agrees.
    let again =
        prepare(&aws, &stack, |_| environment(), Security::default(), || Ok(artifact("one")), &Silent)
            .await
            .unwrap();
    assert!(again.plan.is_unchanged(), "{:?}", again.plan.summaries());
    let report = status(&again, aws.endpoint_url.as_deref());
    assert!(report.complete && report.in_sync, "{report:?}");
    assert_eq!(report.invoke_url.as_deref(), Some(made.invoke_url.as_str()));

    // New code: the plan says exactly that, and no more.
    let newer =
        prepare(&aws, &stack, |_| environment(), Security::default(), || Ok(artifact("two")), &Silent)
            .await
            .unwrap();
    assert_eq!(newer.plan.code, CodeChange::Changed);
    let fixes = FunctionFixes { upload_code: true, ..FunctionFixes::default() };
    assert_eq!(newer.plan.function, FunctionChange::Update { arn: made.function_arn.clone(), fixes });
    let changed: Vec<Step> = newer
        .plan
        .summaries()
        .into_iter()
        .filter(|(_, s)| s.action != Action::Unchanged)
        .map(|(step, _)| step)
        .collect();
    assert_eq!(changed, [Step::Package, Step::Function]);

    let found = snapshot::read(&aws, &stack).await.unwrap();
    let doomed: Vec<&str> = to_delete(&found, &stack).iter().map(|r| r.kind).collect();
    assert_eq!(doomed, ["rest_api", "permission", "permission", "function", "log_group", "role"]);
    let removed = down(&aws, &stack, &found, &Silent).await.unwrap();
    assert_eq!(removed.deleted.len(), 6);
    assert!(removed.skipped.is_empty());
    let after = snapshot::read(&aws, &stack).await.unwrap();
    assert!(after.found(&stack).is_empty(), "{:?}", after.found(&stack));
}

#[tokio::test]
#[ignore = "needs the emulator (moto): scripts/test.sh runs it"]
async fn a_converged_up_and_status_only_read() {
    let moto = Moto::start().unwrap();
    let stack = stack("converged");
    up(
        &aws_at(&moto.endpoint()).await,
        &stack,
        environment(),
        Security::default(),
        || Ok(artifact("one")),
        &Silent,
    )
    .await
    .unwrap();

    let recorder = FaultProxy::recording(&moto.endpoint()).await.unwrap();
    let aws = aws_at(&recorder.endpoint()).await;
    let again =
        up(&aws, &stack, environment(), Security::default(), || Ok(artifact("one")), &Silent).await.unwrap();
    assert!(again.steps.iter().all(|step| step.action == Action::Unchanged), "{:?}", again.steps);
    let prepared =
        prepare(&aws, &stack, |_| environment(), Security::default(), || Ok(artifact("one")), &Silent)
            .await
            .unwrap();
    assert!(status(&prepared, aws.endpoint_url.as_deref()).in_sync);
    let calls = recorder.calls();
    let changing: Vec<&Call> = calls.iter().filter(|call| call.mutating).collect();
    assert!(changing.is_empty(), "{changing:?}");
    // Each command reads each resource once: no call per method, none repeated (19 reads,
    // the secret's, the key's, the usage plan's, the gateway responses', the function URL's
    // and the HTTP APIs' listing among them).
    assert_eq!(calls.len(), 38, "{calls:#?}");
}

#[tokio::test]
#[ignore = "needs the emulator (moto): scripts/test.sh runs it"]
async fn a_resource_of_someone_else_stops_up_before_any_change_and_down_leaves_it() {
    let moto = Moto::start().unwrap();
    let aws = aws_at(&moto.endpoint()).await;
    let stack = stack("taken");
    let trust = r#"{"Version":"2012-10-17","Statement":[]}"#;
    aws.iam
        .create_role()
        .role_name(stack.role_name())
        .assume_role_policy_document(trust)
        .send()
        .await
        .unwrap();

    let error = up(&aws, &stack, environment(), Security::default(), || Ok(artifact("one")), &Silent)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ForeignResource, "{error}");
    assert!(error.to_string().contains("belongs to someone else"), "{error}");
    let found = snapshot::read(&aws, &stack).await.unwrap();
    assert_eq!(found.found(&stack).len(), 1, "up made nothing: {:?}", found.found(&stack));
    assert_eq!(found.blocking(&stack, false).map(|f| f.name), Some(stack.role_name()));

    let left = down(&aws, &stack, &found, &Silent).await.unwrap();
    assert!(left.deleted.is_empty());
    assert_eq!(left.skipped.len(), 1);
}

#[tokio::test]
#[ignore = "needs the emulator (moto): scripts/test.sh runs it"]
async fn a_refused_call_is_an_aws_error_with_its_code_and_request_id() {
    let moto = Moto::start().unwrap();
    let denied =
        Fault::custom(403, "AccessDenied", "User: deployer is not authorized to perform: iam:CreateRole");
    let is_create_role = |call: &Call| call.is("iam", "CreateRole");
    let proxy = FaultProxy::start_with(
        &moto.endpoint(),
        vec![Rule::first(is_create_role, usize::MAX, Effect::Error(denied))],
    )
    .await
    .unwrap();
    let aws = aws_at(&proxy.endpoint()).await;

    let error =
        up(&aws, &stack("denied"), environment(), Security::default(), || Ok(artifact("one")), &Silent)
            .await
            .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::AwsCall, "{error}");
    let call = error.aws_call().unwrap();
    assert_eq!(call.code.as_deref(), Some("AccessDenied"));
    assert!(call.request_id.is_some(), "{call:?}");
    assert!(error.to_string().starts_with("execution role (create): creating IAM role"), "{error}");
    assert!(!error.to_string().contains("library-test-secret"));
}

#[tokio::test]
#[ignore = "needs the emulator (moto): scripts/test.sh runs it"]
async fn code_that_cannot_be_packaged_is_a_package_error() {
    let moto = Moto::start().unwrap();
    let aws = aws_at(&moto.endpoint()).await;
    let error = up(
        &aws,
        &stack("unbuilt"),
        environment(),
        Security::default(),
        || anyhow::bail!("cargo build failed"),
        &Silent,
    )
    .await
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Package, "{error}");
    assert!(snapshot::read(&aws, &stack("unbuilt")).await.unwrap().found(&stack("unbuilt")).is_empty());
}

/// The methods on `{proxy+}` and the statement ids on the function's policy, as AWS has them.
async fn routed(
    aws: &tokendeploy_deploy::Aws,
    api_id: &str,
    stack: &tokendeploy_deploy::Stack,
) -> (Vec<String>, Vec<String>) {
    let resources = aws.apigateway.get_resources().rest_api_id(api_id).embed("methods").send().await.unwrap();
    let proxy = resources.items().iter().find(|r| r.path() == Some("/{proxy+}")).unwrap();
    let mut methods: Vec<String> = proxy.resource_methods().unwrap().keys().cloned().collect();
    methods.sort();
    let policy = aws.lambda.get_policy().function_name(stack.function_name()).send().await.unwrap();
    let policy: serde_json::Value = serde_json::from_str(policy.policy().unwrap()).unwrap();
    let mut sids: Vec<String> = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["Sid"].as_str().unwrap().to_string())
        .collect();
    sids.sort();
    (methods, sids)
}

#[tokio::test]
#[ignore = "needs the emulator (moto): scripts/test.sh runs it"]
async fn a_minting_provider_routes_post_too_and_switching_back_removes_it() {
    let moto = Moto::start().unwrap();
    let aws = aws_at(&moto.endpoint()).await;
    let stack = stack("minting");
    let mut twilio = environment();
    twilio.variables.insert("TOKEN_PROVIDER".into(), "twilio".into());
    twilio.managed.insert("TOKEN_PROVIDER".into());

    let made =
        up(&aws, &stack, twilio.clone(), Security::default(), || Ok(artifact("one")), &Silent).await.unwrap();
    let (methods, sids) = routed(&aws, made.api_id.as_deref().unwrap(), &stack).await;
    assert_eq!(methods, ["GET", "OPTIONS", "POST"]);
    assert_eq!(
        sids,
        ["tokendeploy-apigateway-get", "tokendeploy-apigateway-options", "tokendeploy-apigateway-post"]
    );
    let again =
        prepare(&aws, &stack, |_| twilio.clone(), Security::default(), || Ok(artifact("one")), &Silent)
            .await
            .unwrap();
    assert!(again.plan.is_unchanged(), "{:?}", again.plan.summaries());

    // Back to a client-credentials provider: POST is no longer routed, nor allowed to invoke.
    let mut dolby = twilio.clone();
    dolby.variables.insert("TOKEN_PROVIDER".into(), "dolby".into());
    let switched =
        prepare(&aws, &stack, |_| dolby.clone(), Security::default(), || Ok(artifact("one")), &Silent)
            .await
            .unwrap();
    let changed: Vec<(Step, String)> = switched
        .plan
        .summaries()
        .into_iter()
        .filter(|(_, s)| s.action != Action::Unchanged)
        .map(|(step, s)| (step, s.reason))
        .collect();
    let steps: Vec<Step> = changed.iter().map(|(step, _)| *step).collect();
    // The stage keeps its limits through the new deployment.
    let expected = [Step::Environment, Step::Methods, Step::Deployment, Step::Permission];
    assert_eq!(steps, expected, "{changed:?}");
    assert!(changed[1].1.contains("POST /{proxy+}"), "{changed:?}");
    assert!(changed[3].1.contains("tokendeploy-apigateway-post"), "{changed:?}");
    up(&aws, &stack, dolby.clone(), Security::default(), || Ok(artifact("one")), &Silent).await.unwrap();
    let (methods, sids) = routed(&aws, made.api_id.as_deref().unwrap(), &stack).await;
    assert_eq!(methods, ["GET", "OPTIONS"]);
    assert_eq!(sids, ["tokendeploy-apigateway-get", "tokendeploy-apigateway-options"]);
    let settled =
        prepare(&aws, &stack, |_| dolby.clone(), Security::default(), || Ok(artifact("one")), &Silent)
            .await
            .unwrap();
    assert!(settled.plan.is_unchanged(), "{:?}", settled.plan.summaries());
}

#[tokio::test]
#[ignore = "needs the emulator (moto): scripts/test.sh runs it"]
async fn arm64_is_set_with_the_code_and_switching_back_updates_the_function_in_place() {
    use tokendeploy_package::{Arch, zip_bootstrap};
    let moto = Moto::start().unwrap();
    let aws = aws_at(&moto.endpoint()).await;
    let stack = stack("graviton");
    let built_for = |arch| zip_bootstrap(b"\x7fELF stand-in bootstrap", arch).unwrap();
    let architectures = || async {
        let config = aws.lambda.get_function_configuration().function_name("graviton").send().await.unwrap();
        config.architectures().iter().map(|a| a.as_str().to_string()).collect::<Vec<_>>()
    };

    let made =
        up(&aws, &stack, environment(), Security::default(), move || Ok(built_for(Arch::Arm64)), &Silent)
            .await
            .unwrap();
    assert_eq!(made.architecture, "arm64");
    assert_eq!(architectures().await, ["arm64"]);

    // Without --arch arm64: the same function, its architecture switched with the code.
    let back = prepare(
        &aws,
        &stack,
        |_| environment(),
        Security::default(),
        move || Ok(built_for(Arch::X86_64)),
        &Silent,
    )
    .await
    .unwrap();
    let fixes = FunctionFixes { architecture: true, ..FunctionFixes::default() };
    assert_eq!(back.plan.function, FunctionChange::Update { arn: made.function_arn.clone(), fixes });
    let drift = status(&back, aws.endpoint_url.as_deref()).drift;
    assert!(drift.iter().any(|d| d.kind == "function" && d.reason == "architecture changed"), "{drift:?}");
    let switched =
        up(&aws, &stack, environment(), Security::default(), move || Ok(built_for(Arch::X86_64)), &Silent)
            .await
            .unwrap();
    assert_eq!(switched.function_arn, made.function_arn);
    assert_eq!(architectures().await, ["x86_64"]);
}
