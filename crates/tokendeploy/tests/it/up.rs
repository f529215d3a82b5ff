//! `tokendeploy up` against a moto server: what it makes, read back through the SDK.

use std::collections::HashMap;

use crate::support::*;
use aws_sdk_lambda::types::Environment;
use serde_json::{Value, json};
use tokendeploy_testkit::fault_proxy::{Fault, FaultProxy};

fn changed(actions: &[(String, String)]) -> Vec<&str> {
    actions.iter().filter(|(_, a)| a != "unchanged").map(|(s, _)| s.as_str()).collect()
}

#[tokio::test]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn a_fresh_up_creates_every_resource_as_specified() {
    let harness = Harness::start();
    let run = harness.up(&[]);
    run.assert_success().assert_no_secret();
    assert_eq!(run.actions(), all("created"));

    let report = run.json();
    for field in [
        "name",
        "region",
        "account",
        "role_arn",
        "function_arn",
        "code_sha256",
        "api_id",
        "stage",
        "invoke_url",
        "aws_invoke_url",
    ] {
        assert!(report[field].as_str().is_some_and(|v| !v.is_empty()), "{field} missing in {report}");
    }
    let api_id = report["api_id"].as_str().unwrap();
    let account = report["account"].as_str().unwrap();
    assert_eq!(report["name"], "token-server");
    assert_eq!(report["stage"], "prod");
    assert_eq!(
        report["aws_invoke_url"],
        format!("https://{api_id}.execute-api.{REGION}.amazonaws.com/prod/token")
    );
    // Through an endpoint override, the URL that answers there (the emulator's, LocalStack's).
    assert_eq!(
        report["invoke_url"],
        format!("{}/restapis/{api_id}/prod/_user_request_/token", harness.moto.endpoint())
    );
    for step in report["steps"].as_array().unwrap() {
        assert!(step["seconds"].as_f64().is_some_and(|s| s >= 0.0));
    }
    let aws = harness.aws(REGION).await;

    // 1. The role: Lambda may assume it; it may write logs; it carries our tag.
    let role =
        aws.iam.get_role().role_name("token-server-us-west-1-lambda").send().await.unwrap().role.unwrap();
    assert_eq!(role.arn(), report["role_arn"]);
    let trust: Value =
        serde_json::from_str(&urlencoding_decode(role.assume_role_policy_document().unwrap())).unwrap();
    assert_eq!(trust["Statement"][0]["Principal"]["Service"], "lambda.amazonaws.com");
    assert_eq!(trust["Statement"][0]["Action"], "sts:AssumeRole");
    let attached = aws.iam.list_attached_role_policies().role_name(role.role_name()).send().await.unwrap();
    assert_eq!(
        attached.attached_policies().iter().map(|p| p.policy_arn().unwrap()).collect::<Vec<_>>(),
        ["arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"]
    );
    let role_tags = aws.iam.list_role_tags().role_name(role.role_name()).send().await.unwrap();
    assert!(role_tags.tags().iter().any(|t| t.key() == "tokendeploy:stack" && t.value() == "token-server"));

    // 3-4. The function and its environment.
    let function = aws.lambda.get_function().function_name("token-server").send().await.unwrap();
    let config = function.configuration().unwrap();
    assert_eq!(config.function_arn().unwrap(), report["function_arn"]);
    assert_eq!(config.runtime().unwrap().as_str(), "provided.al2023");
    assert_eq!(config.handler(), Some("bootstrap"));
    assert_eq!(config.architectures().iter().map(|a| a.as_str()).collect::<Vec<_>>(), ["x86_64"]);
    assert_eq!(config.role(), Some(role.arn()));
    assert_eq!(config.code_sha256().unwrap(), report["code_sha256"]);
    let timeout = config.timeout().unwrap();
    assert!(
        timeout > 5 && timeout < 29,
        "timeout {timeout}s: above the upstream's 5 s, below API Gateway's 29 s"
    );
    let variables = config.environment().unwrap().variables().unwrap();
    assert_eq!(variables["CONSUMER_KEY"], KEY);
    assert_eq!(variables["CONSUMER_SECRET"], SECRET);
    assert_eq!(variables["ALLOWED_ORIGINS"], ORIGINS);
    assert_eq!(variables["TOKEN_PROVIDER"], "dolby");
    assert_eq!(variables["TOKEN_URL"], "https://session.voxeet.com/v1/oauth2/token");
    assert_eq!(function.tags().unwrap()["tokendeploy:stack"], "token-server");

    // The log group, made before Lambda could make it untagged and kept forever.
    let groups = aws
        .logs
        .describe_log_groups()
        .log_group_name_prefix("/aws/lambda/token-server")
        .send()
        .await
        .unwrap();
    let group = &groups.log_groups()[0];
    assert_eq!(group.retention_in_days(), Some(30));
    let tags =
        aws.logs.list_tags_for_resource().resource_arn(group.log_group_arn().unwrap()).send().await.unwrap();
    assert_eq!(tags.tags().unwrap()["tokendeploy:stack"], "token-server");

    // 5-9. The REST API: regional, {proxy+} under the root, GET and OPTIONS proxied to the function.
    let api = aws.apigateway.get_rest_api().rest_api_id(api_id).send().await.unwrap();
    assert_eq!(api.name(), Some("token-server"));
    assert_eq!(api.endpoint_configuration().unwrap().types()[0].as_str(), "REGIONAL");
    assert_eq!(api.tags().unwrap()["tokendeploy:stack"], "token-server");
    let resources = aws.apigateway.get_resources().rest_api_id(api_id).send().await.unwrap();
    let mut paths: Vec<&str> = resources.items().iter().map(|r| r.path().unwrap()).collect();
    paths.sort();
    assert_eq!(paths, ["/", "/{proxy+}"]);
    let proxy = resources.items().iter().find(|r| r.path() == Some("/{proxy+}")).unwrap();
    let function_arn = report["function_arn"].as_str().unwrap();
    for method in ["GET", "OPTIONS"] {
        let got = aws
            .apigateway
            .get_method()
            .rest_api_id(api_id)
            .resource_id(proxy.id().unwrap())
            .http_method(method)
            .send()
            .await
            .unwrap();
        assert_eq!(got.authorization_type(), Some("NONE"));
        let integration = got.method_integration().unwrap();
        assert_eq!(integration.r#type().unwrap().as_str(), "AWS_PROXY");
        assert_eq!(integration.http_method(), Some("POST"));
        assert_eq!(
            integration.uri().unwrap(),
            format!(
                "arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/{function_arn}/invocations"
            )
        );
    }

    // 10. The stage.
    let stage = aws.apigateway.get_stage().rest_api_id(api_id).stage_name("prod").send().await.unwrap();
    assert!(stage.deployment_id().is_some());

    // 11. The permission: API Gateway, this API, stage and method only.
    let policy = aws.lambda.get_policy().function_name("token-server").send().await.unwrap();
    let policy: Value = serde_json::from_str(policy.policy().unwrap()).unwrap();
    let statements: HashMap<&str, &Value> =
        policy["Statement"].as_array().unwrap().iter().map(|s| (s["Sid"].as_str().unwrap(), s)).collect();
    for (sid, method) in
        [("tokendeploy-apigateway-get", "GET"), ("tokendeploy-apigateway-options", "OPTIONS")]
    {
        let statement = statements[sid];
        assert_eq!(statement["Principal"]["Service"], "apigateway.amazonaws.com");
        assert_eq!(statement["Action"], "lambda:InvokeFunction");
        assert_eq!(
            statement["Condition"]["ArnLike"]["AWS:SourceArn"],
            format!("arn:aws:execute-api:{REGION}:{account}:{api_id}/prod/{method}/*")
        );
    }
}

#[tokio::test]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn a_second_up_with_nothing_changed_changes_nothing() {
    let harness = Harness::start();
    let first = harness.up(&[]);
    first.assert_success();
    let aws = harness.aws(REGION).await;
    let modified = last_modified(&aws).await;
    let deployments = deployment_count(&aws, first.json()["api_id"].as_str().unwrap()).await;

    let second = harness.up(&[]);
    second.assert_success().assert_no_secret();
    assert_eq!(second.actions(), all("unchanged"));
    // What the stack does not have is not reported as if it existed unchanged.
    let absent = FLAG_STEPS;
    for step in second.json()["steps"].as_array().unwrap() {
        let name = step["name"].as_str().unwrap();
        let wanted = if absent.contains(&name) { json!("not asked for") } else { Value::Null };
        assert_eq!(step["reason"], wanted, "{name}");
    }
    for title in
        ["Secrets Manager secret", "secret read policy", "API key", "usage plan", "function URL", "HTTP API"]
    {
        let line = second.stderr.lines().find(|line| line.starts_with(title)).unwrap_or_default();
        assert!(line.contains(" not asked for ("), "{title}: {}", second.stderr);
    }
    assert_eq!(second.json()["api_id"], first.json()["api_id"]);
    assert_eq!(last_modified(&aws).await, modified, "nothing was uploaded or reconfigured");
    assert_eq!(deployment_count(&aws, first.json()["api_id"].as_str().unwrap()).await, deployments);
    assert_eq!(rest_apis(&aws).await.len(), 1, "never two REST APIs for one stack");
}

#[tokio::test]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn a_new_secret_updates_only_the_environment_and_keeps_variables_added_by_others() {
    let harness = Harness::start();
    harness.up(&[]).assert_success();
    let aws = harness.aws(REGION).await;
    // Someone adds a variable of their own to the function.
    let mut variables = aws
        .lambda
        .get_function_configuration()
        .function_name("token-server")
        .send()
        .await
        .unwrap()
        .environment()
        .unwrap()
        .variables()
        .unwrap()
        .clone();
    variables.insert("TEAM_SETTING".into(), "keep-me".into());
    aws.lambda
        .update_function_configuration()
        .function_name("token-server")
        .environment(Environment::builder().set_variables(Some(variables)).build())
        .send()
        .await
        .unwrap();

    let new_secret = "rotated-s3cr3t-value";
    let mut env = harness.env();
    env.retain(|(k, _)| k != "CONSUMER_SECRET");
    env.push(("CONSUMER_SECRET".into(), new_secret.into()));
    let run = harness.up_with(&[], &env);
    run.assert_success();
    assert!(!run.stdout.contains(new_secret) && !run.stderr.contains(new_secret));
    assert_eq!(changed(&run.actions()), ["environment"]);

    let config = aws.lambda.get_function_configuration().function_name("token-server").send().await.unwrap();
    let variables = config.environment().unwrap().variables().unwrap();
    assert_eq!(variables["CONSUMER_SECRET"], new_secret);
    assert_eq!(variables["TEAM_SETTING"], "keep-me");
}

#[tokio::test]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn new_code_updates_only_the_code() {
    let harness = Harness::start();
    let first = harness.up(&[]);
    first.assert_success();

    // The same binary plus one byte: still a valid ELF, different code.
    let zip = std::fs::read(function_zip()).unwrap();
    let binary = unzip_bootstrap(&zip);
    let changed_zip =
        tokendeploy_package::zip_bootstrap(&[binary, vec![0]].concat(), tokendeploy_package::Arch::X86_64)
            .unwrap();
    let path = harness.dir.join("changed.zip");
    changed_zip.write_to(&path).unwrap();

    let env = harness.env();
    let run = harness.run_with(&["up", "--output", "json", "--zip", path.to_str().unwrap()], &env);
    run.assert_success();
    assert_eq!(changed(&run.actions()), ["package", "function"]);
    assert_eq!(run.json()["code_sha256"], changed_zip.code_sha256);
    assert_ne!(run.json()["code_sha256"], first.json()["code_sha256"]);
    let aws = harness.aws(REGION).await;
    let config = aws.lambda.get_function_configuration().function_name("token-server").send().await.unwrap();
    assert_eq!(config.code_sha256(), Some(changed_zip.code_sha256.as_str()));
}

#[tokio::test]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn a_foreign_function_with_our_name_is_refused_and_left_as_it_was() {
    let harness = Harness::start();
    let aws = harness.aws(REGION).await;
    foreign_function(&aws, "token-server").await;
    let before = aws.lambda.get_function().function_name("token-server").send().await.unwrap();

    let run = harness.up(&[]);
    assert_eq!(run.code, 1);
    // The error is one line (after the line saying which code was to go out).
    let told = run.stderr.trim().lines().filter(|line| !line.starts_with("code: ")).count();
    assert_eq!(told, 1, "one line:\n{}", run.stderr);
    assert!(
        run.stderr.contains("Lambda function \"token-server\" already exists but is not tagged"),
        "{}",
        run.stderr
    );

    let after = aws.lambda.get_function().function_name("token-server").send().await.unwrap();
    assert_eq!(after.configuration(), before.configuration(), "the foreign function was not touched");
    assert_eq!(after.tags(), before.tags());
    assert!(rest_apis(&aws).await.is_empty(), "nothing else was made");
    assert_eq!(role_names(&aws).await, ["someone-elses-role"]);
}

#[tokio::test]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn a_missing_secret_is_refused_before_any_aws_call() {
    let harness = Harness::start();
    let mut env = harness.env();
    env.retain(|(k, _)| k != "CONSUMER_SECRET");
    let run = harness.up_with(&[], &env);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("CONSUMER_SECRET is not set"), "{}", run.stderr);
    // With --output json, the failure is a JSON object on stdout too.
    assert_eq!(run.json()["error"]["kind"], "usage", "{}", run.stdout);
    assert!(run.json()["error"]["message"].as_str().unwrap().starts_with("CONSUMER_SECRET is not set"));
    let aws = harness.aws(REGION).await;
    assert!(role_names(&aws).await.is_empty());
    assert!(function_names(&aws).await.is_empty());
    assert!(rest_apis(&aws).await.is_empty());
}

#[tokio::test]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn settings_come_from_an_env_file_with_the_environment_taking_precedence() {
    let harness = Harness::start();
    let file = harness.dir.join("token.env");
    std::fs::write(
        &file,
        format!("CONSUMER_KEY=from-file\nCONSUMER_SECRET={SECRET}\nALLOWED_ORIGINS=https://file.example\n"),
    )
    .unwrap();
    let mut env = harness.moto.aws_environment(REGION);
    env.push(("ALLOWED_ORIGINS".into(), "https://env.example".into()));
    let run = harness.up_with(&["--env-file", file.to_str().unwrap()], &env);
    run.assert_success().assert_no_secret();

    let aws = harness.aws(REGION).await;
    let config = aws.lambda.get_function_configuration().function_name("token-server").send().await.unwrap();
    let variables = config.environment().unwrap().variables().unwrap();
    assert_eq!(variables["CONSUMER_KEY"], "from-file");
    assert_eq!(variables["CONSUMER_SECRET"], SECRET);
    assert_eq!(variables["ALLOWED_ORIGINS"], "https://env.example");
}

#[tokio::test]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn an_up_killed_after_any_step_is_completed_by_the_next() {
    let harness = Harness::start();
    let aws = harness.aws(REGION).await;
    for step in [
        "package",
        "role",
        "function",
        "rest_api",
        "proxy_resource",
        "methods",
        "integrations",
        "gateway_responses",
        "deployment",
    ] {
        let name = format!("killed-{}", step.replace('_', "-"));
        let mut env = harness.env();
        env.push(("TOKENDEPLOY_ABORT_AFTER_STEP".into(), step.into()));
        let killed = harness.up_with(&["--name", &name], &env);
        assert_ne!(killed.code, 0, "{step}: the run was meant to die");

        let resumed = harness.up(&["--name", &name]);
        resumed.assert_success();
        let again = harness.up(&["--name", &name]);
        again.assert_success();
        assert_eq!(again.actions(), all("unchanged"), "{step}: the resumed run left the stack complete");
        let apis = rest_apis(&aws).await.into_iter().filter(|(_, n, _)| *n == name).count();
        assert_eq!(apis, 1, "{step}: one REST API for the stack");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn function_creation_waits_for_a_new_role_to_reach_lambda() {
    let harness = Harness::start();
    // Between the CLI and moto: the first CreateFunction is refused as Lambda refuses it while
    // IAM has not yet spread the new role.
    let proxy =
        FaultProxy::start(&harness.moto.endpoint(), Fault::role_not_yet_assumable(), 2).await.unwrap();
    let zip = function_zip().to_str().unwrap().to_string();
    let run = harness.run_through(&proxy, &["up", "--output", "json", "--zip", &zip]).await;

    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(proxy.injected(), 2);
    assert!(run.stderr.contains("waiting for the new IAM role to reach Lambda"), "{}", run.stderr);
    assert_eq!(run.actions(), all("created"));
    assert_eq!(function_names(&harness.aws(REGION).await).await, ["token-server"]);
}

#[tokio::test]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn one_name_in_two_regions_gets_a_role_per_region() {
    let harness = Harness::start();
    let west = harness.up(&["--region", "us-west-1"]);
    let east = harness.up(&["--region", "us-east-2"]);
    west.assert_success();
    east.assert_success();
    assert_ne!(west.json()["role_arn"], east.json()["role_arn"]);
    let mut roles = role_names(&harness.aws(REGION).await).await;
    roles.sort();
    assert_eq!(roles, ["token-server-us-east-2-lambda", "token-server-us-west-1-lambda"]);
}

#[tokio::test]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn bad_usage_exits_2_with_one_line_and_creates_nothing() {
    let harness = Harness::start();
    let mut no_region = harness.env();
    no_region.retain(|(k, _)| k != "AWS_REGION");
    // (arguments, environment, what the one-line error says)
    type Case<'a> = (&'a [&'a str], &'a [(String, String)], &'a str);
    let cases: [Case; 4] = [
        (&["up", "--name", "Bad_Name"], &harness.env(), "stack name \"Bad_Name\" is not valid"),
        (&["up", "--zip", "/nonexistent.zip"], &harness.env(), "--zip /nonexistent.zip: no such file"),
        (&["up"], &no_region, "no AWS region: pass --region"),
        (&["up", "--output", "yaml"], &harness.env(), "invalid value 'yaml'"),
    ];
    for (args, env, message) in cases {
        let run = harness.run_with(args, env);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(message), "{args:?}: {}", run.stderr);
    }
    let aws = harness.aws(REGION).await;
    assert!(role_names(&aws).await.is_empty());
    assert!(function_names(&aws).await.is_empty());
}

#[test]
#[ignore = "needs the function built with zig: scripts/test.sh runs it"]
fn package_writes_the_same_zip_every_time() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let zip = function_zip();
    let again = dir.join(format!("again-{}.zip", std::process::id()));
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tokendeploy"))
        .args(["package", "--quiet", "--output", "json", "--out"])
        .arg(&again)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(std::fs::read(zip).unwrap(), std::fs::read(&again).unwrap());
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let size = report["bytes"].as_u64().unwrap();
    assert!(size < 50 * 1024 * 1024);
}

async fn last_modified(aws: &tokendeploy_deploy::Aws) -> String {
    let config = aws.lambda.get_function_configuration().function_name("token-server").send().await.unwrap();
    config.last_modified().unwrap().to_string()
}

async fn deployment_count(aws: &tokendeploy_deploy::Aws, api_id: &str) -> usize {
    aws.apigateway.get_deployments().rest_api_id(api_id).send().await.unwrap().items().len()
}

fn unzip_bootstrap(zip: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
    let mut binary = Vec::new();
    archive.by_name("bootstrap").unwrap().read_to_end(&mut binary).unwrap();
    binary
}

fn urlencoding_decode(text: &str) -> String {
    urlencoding::decode(text).unwrap().into_owned()
}

#[tokio::test]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn up_with_a_provider_sets_exactly_its_variables_and_refuses_a_missing_one_before_any_aws_call() {
    let harness = Harness::start();
    let mut env = harness.moto.aws_environment(REGION);
    let twilio_secret = "twilio-api-secret-never-shown";
    env.extend(
        [
            ("TWILIO_ACCOUNT_SID", "AC0123456789abcdef0123456789abcdef"),
            ("TWILIO_API_KEY", "SK0123456789abcdef0123456789abcdef"),
            ("TWILIO_GRANTS", "video"),
            ("IDENTITY_MODE", "trust"),
            ("ALLOWED_ORIGINS", "https://app.example"),
            // Another provider's settings on the same machine stay there.
            ("CONSUMER_KEY", "dolby-key"),
            ("CONSUMER_SECRET", SECRET),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let refused = harness.up_with(&["--provider", "twilio"], &env);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert_eq!(
        refused.stderr.trim(),
        "error: TWILIO_API_SECRET is not set: export it or put it in a file passed with --env-file (see docs/configuration.md); nothing was deployed"
    );
    let aws = harness.aws(REGION).await;
    assert!(role_names(&aws).await.is_empty() && function_names(&aws).await.is_empty());

    env.push(("TWILIO_API_SECRET".into(), twilio_secret.into()));
    // Another provider's variable that is not even text is no concern of this run either.
    let zip = function_zip().to_str().unwrap().to_string();
    let mut command =
        harness.command(&["up", "--output", "json", "--zip", &zip, "--provider", "twilio"], &env);
    command
        .env("CONSUMER_SECRET", <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(b"dolby-\xff"));
    let run = Run::from(command.output().unwrap());
    run.assert_success().assert_no_secret();
    assert!(!run.stdout.contains(twilio_secret) && !run.stderr.contains(twilio_secret));
    assert!(run.stderr.contains("warning: IDENTITY_MODE=trust"), "{}", run.stderr);
    let config = aws.lambda.get_function_configuration().function_name("token-server").send().await.unwrap();
    let mut names: Vec<&String> = config.environment().unwrap().variables().unwrap().keys().collect();
    names.sort();
    assert_eq!(
        names,
        [
            "ALLOWED_ORIGINS",
            "IDENTITY_CLAIM",
            "IDENTITY_MODE",
            "TOKEN_LIFETIME",
            "TOKEN_PROVIDER",
            "TOKEN_TTL_SECONDS",
            "TWILIO_ACCOUNT_SID",
            "TWILIO_API_KEY",
            "TWILIO_API_SECRET",
            "TWILIO_GRANTS"
        ]
    );

    let unknown = harness.up_with(&["--provider", "acme"], &env);
    assert_eq!(unknown.code, 2);
    assert!(unknown.stderr.contains("must be one of: dolby, oauth2, twilio, livekit"), "{}", unknown.stderr);
}

#[tokio::test]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn allow_origin_flags_replace_allowed_origins_and_a_bad_one_is_refused_before_any_aws_call() {
    let harness = Harness::start();
    let aws = harness.aws(REGION).await;
    let refused = harness.up(&["--allow-origin", "app.example.com"]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.starts_with("error: --allow-origin \"app.example.com\" is not an origin"),
        "{}",
        refused.stderr
    );
    assert!(role_names(&aws).await.is_empty());

    let run =
        harness.up(&["--allow-origin", "https://one.example", "--allow-origin", "http://localhost:8080"]);
    run.assert_success().assert_no_secret();
    let config = aws.lambda.get_function_configuration().function_name("token-server").send().await.unwrap();
    let variables = config.environment().unwrap().variables().unwrap();
    assert_eq!(variables["ALLOWED_ORIGINS"], "https://one.example,http://localhost:8080");
    let any = harness.up(&["--allow-origin", "*"]);
    any.assert_success();
    assert!(any.stderr.contains("warning: any web page may ask for tokens"), "{}", any.stderr);
}
