//! Each retry classifier, proven through the loopback fault proxy answering with the
//! service's real error body: the refusal is waited out, shown in progress, and the run ends
//! as a clean one would.

use crate::common::*;
use aws_sdk_lambda::types::Runtime;
use tokendeploy_deploy::desired::Security;
use tokendeploy_deploy::up::{UpReport, up};
use tokendeploy_deploy::{Silent, Stack, Step};
use tokendeploy_testkit::fault_proxy::{Call, Effect, ErrorKind, FaultProxy, Rule};
use tokendeploy_testkit::moto::Moto;

/// The first call to `operation` of `service` answered with `status`, `code` and `message`.
async fn refusing_once(moto: &Moto, service: &str, operation: &str, error: (u16, &str, &str)) -> FaultProxy {
    let (service, operation) = (service.to_string(), operation.to_string());
    let matches = move |call: &Call| call.is(&service, &operation);
    let effect = Effect::Error(ErrorKind::custom(error.0, error.1, error.2));
    FaultProxy::start_with(&moto.endpoint(), vec![Rule::first(matches, 1, effect)]).await.unwrap()
}

/// `up` of `stack` with code `version` through `proxy`, which must refuse exactly once; the
/// refusal must be waited out with a note during `step` that starts with `waiting`.
async fn up_waiting_once(
    proxy: &FaultProxy,
    stack: &Stack,
    version: &str,
    step: Step,
    waiting: &str,
) -> UpReport {
    let notes = Notes::default();
    let aws = aws_at(&proxy.endpoint()).await;
    let code = artifact(version);
    let report = up(&aws, stack, environment(), Security::default(), move || Ok(code), &notes).await.unwrap();
    assert_eq!(proxy.injected(), 1);
    let told = notes.of(step);
    assert!(told.iter().any(|note| note.starts_with(&format!("{waiting}; retrying in"))), "{told:?}");
    report
}

/// A first `up` of `stack` straight to moto.
async fn up_directly(moto: &Moto, stack: &Stack) {
    let aws = aws_at(&moto.endpoint()).await;
    up(&aws, stack, environment(), Security::default(), || Ok(artifact("one")), &Silent).await.unwrap();
}

const LAMBDA_BUSY: (u16, &str, &str) = (
    409,
    "ResourceConflictException",
    "The operation cannot be performed at this time. An update is in progress for resource: arn:aws:lambda:us-west-1:123456789012:function:busy",
);

#[tokio::test]
#[ignore = "needs the emulator (moto): scripts/test.sh runs it"]
async fn a_role_not_yet_assumable_on_a_settings_update_is_waited_out() {
    let moto = Moto::start().unwrap();
    let stack = stack("settings");
    up_directly(&moto, &stack).await;
    // Drift that only a settings update repairs.
    let direct = aws_at(&moto.endpoint()).await;
    let update = direct.lambda.update_function_configuration().function_name(stack.function_name());
    update.memory_size(128).runtime(Runtime::from("provided.al2")).send().await.unwrap();

    let not_assumable = (
        400,
        "InvalidParameterValueException",
        "The role defined for the function cannot be assumed by Lambda.",
    );
    let proxy =
        refusing_once(&moto, "lambda", "PUT /2015-03-31/functions/{name}/configuration", not_assumable).await;
    let notes = Notes::default();
    up(
        &aws_at(&proxy.endpoint()).await,
        &stack,
        environment(),
        Security::default(),
        || Ok(artifact("one")),
        &notes,
    )
    .await
    .unwrap();

    assert_eq!(proxy.injected(), 1);
    let waited = notes.of(Step::Function);
    assert!(
        waited.iter().any(|n| n.starts_with("waiting for the new IAM role to reach Lambda; retrying in")),
        "{waited:?}"
    );
    let config =
        direct.lambda.get_function_configuration().function_name(stack.function_name()).send().await.unwrap();
    assert_eq!(
        (config.memory_size(), config.runtime().map(|r| r.as_str())),
        (Some(256), Some("provided.al2023"))
    );
}

#[tokio::test]
#[ignore = "needs the emulator (moto): scripts/test.sh runs it"]
async fn an_update_in_progress_is_waited_out_before_new_code_goes_up() {
    let moto = Moto::start().unwrap();
    let stack = stack("busy");
    up_directly(&moto, &stack).await;

    let proxy = refusing_once(&moto, "lambda", "PUT /2015-03-31/functions/{name}/code", LAMBDA_BUSY).await;
    let report = up_waiting_once(
        &proxy,
        &stack,
        "two",
        Step::Function,
        "another update of the function is in progress",
    )
    .await;
    let direct = aws_at(&moto.endpoint()).await;
    let config =
        direct.lambda.get_function_configuration().function_name(stack.function_name()).send().await.unwrap();
    assert_eq!(config.code_sha256(), Some(report.code_sha256.as_str()));
    assert_eq!(report.code_sha256, artifact("two").code_sha256);
}

#[tokio::test]
#[ignore = "needs the emulator (moto): scripts/test.sh runs it"]
async fn an_update_in_progress_is_waited_out_before_a_permission_is_added() {
    let moto = Moto::start().unwrap();
    let stack = stack("granting");
    let proxy = refusing_once(&moto, "lambda", "POST /2015-03-31/functions/{name}/policy", LAMBDA_BUSY).await;
    up_waiting_once(&proxy, &stack, "one", Step::Permission, "another update of the function is in progress")
        .await;
    let direct = aws_at(&moto.endpoint()).await;
    let policy = direct.lambda.get_policy().function_name(stack.function_name()).send().await.unwrap();
    let policy = policy.policy().unwrap_or_default();
    assert!(
        policy.contains("tokendeploy-apigateway-get") && policy.contains("tokendeploy-apigateway-options"),
        "{policy}"
    );
}

#[tokio::test]
#[ignore = "needs the emulator (moto): scripts/test.sh runs it"]
async fn a_concurrent_modification_of_the_api_is_waited_out() {
    let moto = Moto::start().unwrap();
    let stack = stack("deploying");
    let concurrent = (
        409,
        "ConflictException",
        "Unable to complete operation due to concurrent modification. Please try again later.",
    );
    let proxy = refusing_once(&moto, "apigateway", "POST /restapis/{id}/deployments", concurrent).await;
    let waiting = "API Gateway is applying another change to the API";
    let report = up_waiting_once(&proxy, &stack, "one", Step::Deployment, waiting).await;
    let direct = aws_at(&moto.endpoint()).await;
    let stages =
        direct.apigateway.get_stages().rest_api_id(report.api_id.as_deref().unwrap()).send().await.unwrap();
    assert_eq!(stages.item().iter().filter_map(|s| s.stage_name()).collect::<Vec<_>>(), ["prod"]);
}
