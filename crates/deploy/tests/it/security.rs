//! `--secret-store secrets-manager`, `--api-key` and the stage's limits against a moto server:
//! each made and wired as stated (read back through the SDK), converged, removed when no longer
//! asked for, and gone after `down`.

use crate::common::*;
use serde_json::{Value, json};
use tokendeploy_deploy::desired::{SecretStore, Security, Throttle};
use tokendeploy_deploy::down::down;
use tokendeploy_deploy::up::{UpReport, up};
use tokendeploy_deploy::{Action, Aws, FunctionEnvironment, Silent, Stack, Step, snapshot};
use tokendeploy_testkit::moto::Moto;

const SECRET_ARN: &str = tokendeploy_config::SECRET_ARN;

fn secrets_manager() -> Security {
    Security { secret_store: SecretStore::SecretsManager, ..Security::default() }
}

fn with_api_key() -> Security {
    Security { api_key: true, ..Security::default() }
}

fn environment_with_secret(secret: &str) -> FunctionEnvironment {
    let mut environment = environment();
    environment.variables.insert("CONSUMER_SECRET".into(), secret.into());
    environment
}

async fn deploy(aws: &Aws, stack: &Stack, environment: FunctionEnvironment, security: Security) -> UpReport {
    up(aws, stack, environment, security, || Ok(artifact("one")), &Silent).await.unwrap()
}

async fn function_variables(aws: &Aws, stack: &Stack) -> std::collections::HashMap<String, String> {
    let config =
        aws.lambda.get_function_configuration().function_name(stack.function_name()).send().await.unwrap();
    config.environment().and_then(|e| e.variables()).cloned().unwrap_or_default()
}

async fn secret_value(aws: &Aws, arn: &str) -> Value {
    let value = aws.secretsmanager.get_secret_value().secret_id(arn).send().await.unwrap();
    serde_json::from_str(value.secret_string().unwrap()).unwrap()
}

/// The role's inline policies, by name, with their documents.
async fn inline_policies(aws: &Aws, stack: &Stack) -> Vec<(String, Value)> {
    let role = stack.role_name();
    let names = aws.iam.list_role_policies().role_name(&role).send().await.unwrap();
    let mut policies = Vec::new();
    for name in names.policy_names() {
        let policy = aws.iam.get_role_policy().role_name(&role).policy_name(name).send().await.unwrap();
        let document = urlencoding::decode(policy.policy_document()).unwrap();
        policies.push((name.clone(), serde_json::from_str(&document).unwrap()));
    }
    policies
}

async fn secret_exists(aws: &Aws, stack: &Stack) -> bool {
    aws.secretsmanager.describe_secret().secret_id(stack.secret_name()).send().await.is_ok()
}

#[tokio::test]
#[ignore = "needs the emulator (moto): scripts/test.sh runs it"]
async fn the_secret_lives_in_secrets_manager_and_the_function_gets_only_its_arn() {
    let moto = Moto::start().unwrap();
    let aws = aws_at(&moto.endpoint()).await;
    let stack = stack("vault");

    let made = deploy(&aws, &stack, environment(), secrets_manager()).await;
    let arn = made.secret_arn.clone().expect("the report names the secret");
    let variables = function_variables(&aws, &stack).await;
    assert_eq!(variables.get(SECRET_ARN), Some(&arn));
    assert!(
        !variables.contains_key("CONSUMER_KEY") && !variables.contains_key("CONSUMER_SECRET"),
        "{variables:?}"
    );
    assert_eq!(
        secret_value(&aws, &arn).await,
        json!({"CONSUMER_KEY": "key", "CONSUMER_SECRET": "library-test-secret"})
    );
    let described = aws.secretsmanager.describe_secret().secret_id(&arn).send().await.unwrap();
    assert!(
        described.tags().iter().any(|t| t.key() == Some("tokendeploy:stack") && t.value() == Some("vault"))
    );
    // One inline policy: GetSecretValue on exactly that ARN.
    let policies = inline_policies(&aws, &stack).await;
    assert_eq!(policies.len(), 1, "{policies:?}");
    let statement = &policies[0].1["Statement"];
    assert_eq!(statement.as_array().unwrap().len(), 1);
    assert_eq!(statement[0]["Action"], "secretsmanager:GetSecretValue");
    assert_eq!(statement[0]["Resource"], json!(arn));

    // Again: nothing to do.
    assert_eq!(changes(&aws, &stack, environment(), secrets_manager()).await, []);

    // A new secret value: a new version of the secret, and the function is not touched.
    let rotated = environment_with_secret("rotated-secret");
    assert_eq!(
        changes(&aws, &stack, rotated.clone(), secrets_manager()).await,
        [(Step::Secret, Action::Update)]
    );
    let updated = deploy(&aws, &stack, rotated.clone(), secrets_manager()).await;
    assert_eq!(updated.secret_arn.as_deref(), Some(arn.as_str()));
    assert_eq!(secret_value(&aws, &arn).await["CONSUMER_SECRET"], "rotated-secret");
    let versions = aws.secretsmanager.list_secret_version_ids().secret_id(&arn).send().await.unwrap();
    assert!(versions.versions().len() >= 2, "{versions:?}");

    // Back to the environment: the values return to the function; secret and policy go.
    let back = deploy(&aws, &stack, rotated.clone(), Security::default()).await;
    assert_eq!(back.secret_arn, None);
    let step = |step| back.steps.iter().find(|s| s.step == step).unwrap().action;
    assert_eq!((step(Step::Secret), step(Step::SecretAccess)), (Action::Delete, Action::Delete));
    let variables = function_variables(&aws, &stack).await;
    assert_eq!(variables.get("CONSUMER_SECRET").map(String::as_str), Some("rotated-secret"));
    assert!(!variables.contains_key(SECRET_ARN));
    assert!(!secret_exists(&aws, &stack).await, "no copy of the secret is left behind");
    assert!(inline_policies(&aws, &stack).await.is_empty());
    assert_eq!(changes(&aws, &stack, rotated.clone(), Security::default()).await, []);

    // And into Secrets Manager again: the same name is free at once.
    let again = deploy(&aws, &stack, rotated.clone(), secrets_manager()).await;
    let new_arn = again.secret_arn.unwrap();
    assert!(!function_variables(&aws, &stack).await.contains_key("CONSUMER_SECRET"));
    assert_eq!(inline_policies(&aws, &stack).await[0].1["Statement"][0]["Resource"], json!(new_arn));

    // `down` removes the secret at once, so an `up` of the same name right after succeeds.
    let found = snapshot::read(&aws, &stack).await.unwrap();
    let report = down(&aws, &stack, &found, &Silent).await.unwrap();
    assert!(report.deleted.iter().any(|r| r.kind == "secret"), "{:?}", report.deleted);
    assert!(!secret_exists(&aws, &stack).await);
    assert!(snapshot::read(&aws, &stack).await.unwrap().found(&stack).is_empty());
    deploy(&aws, &stack, rotated, secrets_manager()).await;
}

#[tokio::test]
#[ignore = "needs the emulator (moto): scripts/test.sh runs it"]
async fn an_api_key_is_required_on_get_but_not_on_preflights_and_issued_by_a_usage_plan() {
    let moto = Moto::start().unwrap();
    let aws = aws_at(&moto.endpoint()).await;
    let stack = stack("keyed");

    let made = deploy(&aws, &stack, environment(), with_api_key()).await;
    let key_id = made.api_key_id.clone().expect("the report names the key");
    assert_eq!(made.api_key, None, "the value only when asked for");
    let key = aws.apigateway.get_api_key().api_key(&key_id).send().await.unwrap();
    assert!(key.enabled());
    assert!(key.tags().unwrap().get("tokendeploy:stack").is_some_and(|s| s == "keyed"));

    let api = made.api_id.as_deref().unwrap();
    let resources = aws.apigateway.get_resources().rest_api_id(api).embed("methods").send().await.unwrap();
    let proxy = resources.items().iter().find(|r| r.path() == Some("/{proxy+}")).unwrap();
    for (method, required) in [("GET", true), ("OPTIONS", false)] {
        let read =
            aws.apigateway.get_method().rest_api_id(api).resource_id(proxy.id().unwrap()).http_method(method);
        assert_eq!(read.send().await.unwrap().api_key_required(), Some(required), "{method}");
    }
    let plans = aws.apigateway.get_usage_plans().send().await.unwrap();
    let ours: Vec<_> = plans.items().iter().filter(|p| p.name() == Some("keyed")).collect();
    assert_eq!(ours.len(), 1);
    let bound: Vec<_> =
        ours[0].api_stages().iter().map(|s| (s.api_id().unwrap(), s.stage().unwrap())).collect();
    assert_eq!(bound, [(api, "prod")]);
    let keys =
        aws.apigateway.get_usage_plan_keys().usage_plan_id(ours[0].id().unwrap()).send().await.unwrap();
    assert_eq!(keys.items().iter().map(|k| k.id().unwrap()).collect::<Vec<_>>(), [key_id.as_str()]);

    // Again: nothing changes, and the same key is kept.
    assert_eq!(changes(&aws, &stack, environment(), with_api_key()).await, []);
    let again = deploy(&aws, &stack, environment(), with_api_key()).await;
    assert_eq!(again.api_key_id.as_deref(), Some(key_id.as_str()));

    // Without the flag: GET is open again, and key and plan are gone.
    let open = deploy(&aws, &stack, environment(), Security::default()).await;
    assert_eq!(open.api_key_id, None);
    let read =
        aws.apigateway.get_method().rest_api_id(api).resource_id(proxy.id().unwrap()).http_method("GET");
    assert_eq!(read.send().await.unwrap().api_key_required(), Some(false));
    assert!(aws.apigateway.get_api_key().api_key(&key_id).send().await.is_err());
    let plans = aws.apigateway.get_usage_plans().send().await.unwrap();
    assert!(plans.items().iter().all(|p| p.name() != Some("keyed")));
    assert_eq!(changes(&aws, &stack, environment(), Security::default()).await, []);

    // `down` removes them too.
    deploy(&aws, &stack, environment(), with_api_key()).await;
    let found = snapshot::read(&aws, &stack).await.unwrap();
    let kinds: Vec<&str> =
        down(&aws, &stack, &found, &Silent).await.unwrap().deleted.iter().map(|r| r.kind).collect();
    assert!(kinds.contains(&"api_key") && kinds.contains(&"usage_plan"), "{kinds:?}");
    assert!(snapshot::read(&aws, &stack).await.unwrap().found(&stack).is_empty());
    deploy(&aws, &stack, environment(), with_api_key()).await;
}

#[tokio::test]
#[ignore = "needs the emulator (moto): scripts/test.sh runs it"]
async fn the_stage_is_throttled_by_default_and_limits_converge() {
    let moto = Moto::start().unwrap();
    let aws = aws_at(&moto.endpoint()).await;
    let stack = stack("limited");
    let limits = |api: String| {
        let aws = aws.clone();
        async move {
            let stage = aws.apigateway.get_stage().rest_api_id(api).stage_name("prod").send().await.unwrap();
            let every = &stage.method_settings().unwrap()["*/*"];
            (every.throttling_rate_limit(), every.throttling_burst_limit())
        }
    };

    let made = deploy(&aws, &stack, environment(), Security::default()).await;
    assert_eq!(
        limits(made.api_id.clone().unwrap()).await,
        (Throttle::DEFAULT.rate_limit, Throttle::DEFAULT.burst_limit)
    );

    let tight = Security { throttle: Throttle { rate_limit: 2.5, burst_limit: 5 }, ..Security::default() };
    assert_eq!(changes(&aws, &stack, environment(), tight).await, [(Step::Throttling, Action::Update)]);
    deploy(&aws, &stack, environment(), tight).await;
    assert_eq!(limits(made.api_id.clone().unwrap()).await, (2.5, 5));
    assert_eq!(changes(&aws, &stack, environment(), tight).await, []);

    // Raised by hand: drift, set back by the next `up`.
    let raise = aws_sdk_apigateway::types::PatchOperation::builder()
        .op(aws_sdk_apigateway::types::Op::Replace)
        .path("/*/*/throttling/rateLimit")
        .value("10000")
        .build();
    aws.apigateway
        .update_stage()
        .rest_api_id(made.api_id.as_deref().unwrap())
        .stage_name("prod")
        .patch_operations(raise)
        .send()
        .await
        .unwrap();
    assert_eq!(changes(&aws, &stack, environment(), tight).await, [(Step::Throttling, Action::Update)]);
    deploy(&aws, &stack, environment(), tight).await;
    assert_eq!(limits(made.api_id.clone().unwrap()).await, (2.5, 5));
}
