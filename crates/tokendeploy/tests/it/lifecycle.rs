//! `down`, `status` and `plan` against a moto server, around stacks made by `up`.

use crate::support::*;
use serde_json::Value;
use tokendeploy_testkit::fault_proxy::{Fault, FaultProxy};

fn down(harness: &Harness, args: &[&str]) -> Run {
    let mut all = vec!["down", "--yes", "--output", "json"];
    all.extend_from_slice(args);
    harness.run_with(&all, &harness.env())
}

fn deleted(run: &Run) -> Vec<String> {
    let report = run.json();
    report["deleted"].as_array().unwrap().iter().map(|r| r["kind"].as_str().unwrap().to_string()).collect()
}

/// Nothing in the region carries the stack's tag any more.
async fn assert_nothing_tagged(harness: &Harness, stack: &str) {
    let aws = harness.aws(REGION).await;
    let tagged = |tags: Option<&std::collections::HashMap<String, String>>| {
        tags.is_some_and(|t| t.get("tokendeploy:stack").is_some_and(|v| v == stack))
    };
    for (id, _, tags) in rest_apis(&aws).await {
        assert!(!tagged(Some(&tags)), "REST API {id} of {stack} is left");
    }
    for name in function_names(&aws).await {
        let function = aws.lambda.get_function().function_name(&name).send().await.unwrap();
        assert!(!tagged(function.tags()), "function {name} of {stack} is left");
    }
    for name in role_names(&aws).await {
        let tags = aws.iam.list_role_tags().role_name(&name).send().await.unwrap();
        assert!(
            !tags.tags().iter().any(|t| t.key() == "tokendeploy:stack" && t.value() == stack),
            "role {name} is left"
        );
    }
    for name in log_group_names(&aws).await {
        assert_ne!(name, format!("/aws/lambda/{stack}"), "log group of {stack} is left");
    }
}

#[tokio::test]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn down_removes_everything_up_made_and_a_second_down_finds_nothing() {
    let harness = Harness::start();
    harness.up(&[]).assert_success();
    let aws = harness.aws(REGION).await;
    assert!(log_group_names(&aws).await.contains(&"/aws/lambda/token-server".to_string()));

    let first = down(&harness, &[]);
    first.assert_success().assert_no_secret();
    let mut kinds = deleted(&first);
    kinds.sort();
    assert_eq!(kinds, ["function", "log_group", "permission", "permission", "rest_api", "role"]);
    assert_nothing_tagged(&harness, "token-server").await;
    assert!(snapshot(&aws).await.is_empty(), "the account is empty: {:?}", snapshot(&aws).await);

    let second = down(&harness, &[]);
    second.assert_success();
    assert!(deleted(&second).is_empty());
    let text = harness.run_with(&["down", "--yes"], &harness.env());
    text.assert_success();
    assert_eq!(text.stdout.trim(), "nothing to delete for stack token-server in us-west-1");
}

#[tokio::test]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn down_after_an_up_killed_after_any_step_leaves_nothing() {
    let harness = Harness::start();
    for step in
        ["package", "role", "log_group", "function", "rest_api", "methods", "integrations", "deployment"]
    {
        let name = format!("killed-{}", step.replace('_', "-"));
        let mut env = harness.env();
        env.push(("TOKENDEPLOY_ABORT_AFTER_STEP".into(), step.into()));
        assert_ne!(harness.up_with(&["--name", &name], &env).code, 0, "{step}: the run was meant to die");
        // The chains run side by side: a call the run sent just before it died (CreateFunction
        // beside the log group) may still be carried out after it; `down` comes later than that.
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        down(&harness, &["--name", &name]).assert_success();
        assert_nothing_tagged(&harness, &name).await;
    }
    assert!(snapshot(&harness.aws(REGION).await).await.is_empty());
}

#[tokio::test]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn down_of_one_stack_leaves_another_in_the_region_whole() {
    let harness = Harness::start();
    harness.up(&["--name", "alpha"]).assert_success();
    harness.up(&["--name", "beta"]).assert_success();

    down(&harness, &["--name", "alpha"]).assert_success();

    assert_nothing_tagged(&harness, "alpha").await;
    let beta = harness.status(&["--name", "beta"]);
    assert_eq!(beta.code, 0, "{}{}", beta.stdout, beta.stderr);
    assert_eq!(beta.json()["in_sync"], true);
}

#[tokio::test]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn down_in_one_region_leaves_the_same_name_working_in_another() {
    let harness = Harness::start();
    harness.up(&["--region", "us-west-1"]).assert_success();
    harness.up(&["--region", "us-east-2"]).assert_success();

    let west = down(&harness, &["--region", "us-west-1"]);
    west.assert_success();
    assert!(deleted(&west).contains(&"role".to_string()));

    let east = harness.status(&["--region", "us-east-2"]);
    assert_eq!(east.code, 0, "{}{}", east.stdout, east.stderr);
    let east_role = east.json()["resources"][0]["id"].as_str().unwrap().to_string();
    assert!(east_role.ends_with("role/token-server-us-east-2-lambda"), "{east_role}");
    let aws = harness.aws("us-east-2").await;
    assert_eq!(function_names(&aws).await, ["token-server"]);
}

#[tokio::test]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn foreign_resources_with_look_alike_names_survive_down() {
    let harness = Harness::start();
    harness.up(&[]).assert_success();
    let aws = harness.aws(REGION).await;
    // Someone else's resources: exactly the names of stack "ghost", and names like ours.
    for role in ["ghost-us-west-1-lambda", "token-server-us-west-1-lambda-old"] {
        aws.iam
            .create_role()
            .role_name(role)
            .assume_role_policy_document(r#"{"Version":"2012-10-17","Statement":[]}"#)
            .send()
            .await
            .unwrap();
    }
    let role_arn = "arn:aws:iam::123456789012:role/ghost-us-west-1-lambda";
    let zip = std::fs::read(function_zip()).unwrap();
    for function in ["ghost", "token-server-old"] {
        aws.lambda
            .create_function()
            .function_name(function)
            .runtime(aws_sdk_lambda::types::Runtime::Providedal2023)
            .handler("bootstrap")
            .role(role_arn)
            .code(aws_sdk_lambda::types::FunctionCode::builder().zip_file(zip.clone().into()).build())
            .send()
            .await
            .unwrap();
    }
    for api in ["ghost", "token-server"] {
        aws.apigateway.create_rest_api().name(api).send().await.unwrap();
    }
    let before = snapshot(&aws).await;

    let ghost = down(&harness, &["--name", "ghost"]);
    ghost.assert_success();
    assert!(deleted(&ghost).is_empty());
    let report = ghost.json();
    let skipped: Vec<&str> =
        report["skipped"].as_array().unwrap().iter().map(|s| s["kind"].as_str().unwrap()).collect();
    assert_eq!(skipped, ["rest_api", "function", "role"]);
    assert_eq!(snapshot(&aws).await, before, "nothing foreign was touched");

    let ours = down(&harness, &[]);
    ours.assert_success();
    assert_eq!(ours.json()["skipped"][0]["kind"], "rest_api", "the untagged look-alike API is reported");
    let left = snapshot(&aws).await;
    for survivor in [
        "role ghost-us-west-1-lambda",
        "role token-server-us-west-1-lambda-old",
        "function ghost",
        "function token-server-old",
    ] {
        assert!(left.contains(&survivor.to_string()), "{survivor} is gone: {left:?}");
    }
    assert_eq!(rest_apis(&aws).await.len(), 2, "both foreign APIs survive");
}

#[tokio::test]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn down_without_yes_and_no_terminal_refuses_at_once() {
    let harness = Harness::start();
    harness.up(&[]).assert_success();
    let before = snapshot(&harness.aws(REGION).await).await;
    let run = harness.run_with(&["down"], &harness.env());
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("pass --yes"), "{}", run.stderr);
    assert_eq!(snapshot(&harness.aws(REGION).await).await, before);
}

#[tokio::test]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn status_tells_complete_incomplete_and_drifted_apart() {
    let harness = Harness::start();
    let missing = harness.status(&[]);
    assert_eq!(missing.code, 3);
    assert_eq!(missing.json()["complete"], false);

    let up = harness.up(&[]);
    up.assert_success();
    let complete = harness.status(&[]);
    assert_eq!(complete.code, 0, "{}{}", complete.stdout, complete.stderr);
    let report = complete.json();
    assert_eq!((report["complete"].as_bool(), report["in_sync"].as_bool()), (Some(true), Some(true)));
    assert_eq!(report["invoke_url"], up.json()["invoke_url"]);
    assert!(report["resources"].as_array().unwrap().iter().all(|r| r["id"].is_string()), "{report}");

    // Drift: the secret changed locally (named, never shown), and memory changed by hand.
    let aws = harness.aws(REGION).await;
    aws.lambda
        .update_function_configuration()
        .function_name("token-server")
        .memory_size(1024)
        .send()
        .await
        .unwrap();
    let mut env = harness.env();
    env.retain(|(k, _)| k != "CONSUMER_SECRET");
    env.push(("CONSUMER_SECRET".into(), "another-s3cr3t".into()));
    let zip = function_zip().to_str().unwrap().to_string();
    let drifted = harness.run_with(&["status", "--output", "json", "--zip", &zip], &env);
    assert_eq!(drifted.code, 3);
    assert!(!drifted.stdout.contains("another-s3cr3t") && !drifted.stdout.contains(SECRET));
    let report = drifted.json();
    assert_eq!(report["complete"], true);
    let drift: Vec<(String, String)> = report["drift"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["kind"].as_str().unwrap().into(), d["reason"].as_str().unwrap().into()))
        .collect();
    assert!(drift.contains(&("function".into(), "memory changed".into())), "{drift:?}");
    assert!(drift.contains(&("environment".into(), "CONSUMER_SECRET changed".into())), "{drift:?}");

    // Without the secret at hand, status checks the variable is there, not its value.
    let mut no_secret = harness.env();
    no_secret.retain(|(k, _)| k != "CONSUMER_SECRET");
    let presence = harness.run_with(&["status", "--output", "json", "--zip", &zip], &no_secret);
    assert!(!presence.stdout.contains("environment"), "{}", presence.stdout);

    // Incomplete: the permission is gone.
    for sid in ["tokendeploy-apigateway-get", "tokendeploy-apigateway-options"] {
        aws.lambda.remove_permission().function_name("token-server").statement_id(sid).send().await.unwrap();
    }
    let incomplete = harness.status(&[]);
    assert_eq!(incomplete.code, 3);
    assert_eq!(incomplete.json()["complete"], false);
    assert_eq!(incomplete.json()["missing"], serde_json::json!(["permission"]));
}

#[tokio::test]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn plan_lists_every_create_then_no_change_and_changes_nothing() {
    let harness = Harness::start();
    let aws = harness.aws(REGION).await;
    let zip = function_zip().to_str().unwrap().to_string();
    let plan =
        |harness: &Harness| harness.run_with(&["plan", "--output", "json", "--zip", &zip], &harness.env());
    let actions = |run: &Run| -> Vec<String> {
        let report: Value = run.json();
        report["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["action"].as_str().unwrap().to_string())
            .collect()
    };

    let fresh = plan(&harness);
    fresh.assert_success().assert_no_secret();
    let planned = |action: &str| -> Vec<String> {
        all(action).into_iter().map(|(_, a)| if a == "unchanged" { "no change".into() } else { a }).collect()
    };
    assert_eq!(actions(&fresh), planned("create"));
    assert!(snapshot(&aws).await.is_empty(), "plan made nothing");

    harness.up(&[]).assert_success();
    let before = snapshot(&aws).await;
    let after_up = plan(&harness);
    after_up.assert_success();
    assert_eq!(actions(&after_up), planned("no change"));
    assert_eq!(after_up.json()["in_sync"], true);
    assert_eq!(snapshot(&aws).await, before, "plan changed nothing");

    let mut env = harness.env();
    env.retain(|(k, _)| k != "ALLOWED_ORIGINS");
    env.push(("ALLOWED_ORIGINS".into(), "https://new.example".into()));
    let changed = harness.run_with(&["plan", "--output", "json", "--zip", &zip], &env);
    let report = changed.json();
    let updates: Vec<&str> = report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] == "update")
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    // The function's variable, and API Gateway's own answers, which name the origin (served once
    // the stage is deployed again).
    assert_eq!(updates, ["environment", "gateway_responses", "deployment"]);
    assert_eq!(snapshot(&aws).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn down_waits_out_api_gateway_delete_rate_limit_and_shows_the_wait() {
    let harness = Harness::start();
    harness.up(&[]).assert_success();
    // Between the CLI and moto: the first DeleteRestApi is refused as API Gateway refuses it.
    let proxy =
        FaultProxy::start(&harness.moto.endpoint(), Fault::delete_rest_api_throttled(), 1).await.unwrap();
    let run = harness.run_through(&proxy, &["down", "--yes", "--output", "json"]).await;

    let stderr = &run.stderr;
    assert_eq!(run.code, 0, "{stderr}");
    assert_eq!(proxy.injected(), 1);
    assert!(stderr.contains("API Gateway allows one deletion every 30 s; retrying in 5 s"), "{stderr}");
    assert!(rest_apis(&harness.aws(REGION).await).await.is_empty(), "the API was deleted on the retry");
}

// Multi-threaded: the proxy answers while this thread waits for the runs.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn an_up_or_down_stopped_by_a_signal_exits_1_saying_how_to_finish_and_a_rerun_does() {
    let harness = Harness::start();
    let env = harness.env();
    let creating =
        |call: &tokendeploy_testkit::fault_proxy::Call| call.is("lambda", "POST /2015-03-31/functions");
    let deleting =
        |call: &tokendeploy_testkit::fault_proxy::Call| call.is("apigateway", "DELETE /restapis/{id}");
    for (signal, held, args, says, then) in [
        ("-INT", creating as fn(&_) -> bool, vec!["--name", "stopped"], "up stopped part way", "up"),
        ("-TERM", deleting, vec![], "down stopped part way", "down"),
    ] {
        let (_proxy, child) = if then == "up" {
            up_held(&harness, &env, held, &args).await
        } else {
            harness.up(&["--name", "stopped"]).assert_success();
            run_held(&harness, &env, held, &["down", "--yes", "--name", "stopped"]).await
        };
        let pid = child.id().to_string();
        assert!(std::process::Command::new("kill").args([signal, &pid]).status().unwrap().success());
        let stopped = Run::from(child.wait_with_output().unwrap());
        assert_eq!(stopped.code, 1, "{signal}: {}", stopped.stderr);
        let last = stopped.stderr.trim_end().lines().last().unwrap_or_default().to_string();
        let named = if signal == "-INT" { "Ctrl-C" } else { "SIGTERM" };
        assert!(last.starts_with(&format!("error: interrupted ({named}): {says}")), "{last}");
        assert!(last.contains(&format!("run {then} again")), "{last}");
        stopped.assert_no_secret();
        // Run again, it finishes.
        let again = match then {
            "up" => harness.up(&["--name", "stopped"]),
            _ => down(&harness, &["--name", "stopped"]),
        };
        again.assert_success();
    }
    assert_nothing_tagged(&harness, "stopped").await;
}

#[tokio::test]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn someone_elses_secret_with_the_stacks_name_blocks_only_a_stack_that_would_keep_its_secret_there() {
    let harness = Harness::start();
    let aws = harness.aws(REGION).await;
    aws.secretsmanager
        .create_secret()
        .name("tokendeploy/token-server")
        .secret_string("theirs")
        .send()
        .await
        .unwrap();
    // Kept in the environment: the secret is no concern of the stack's, and stays.
    harness.up(&[]).assert_success();
    let status = harness.status(&[]);
    assert_eq!(status.code, 0, "{}{}", status.stdout, status.stderr);
    let refused = harness.up(&["--secret-store", "secrets-manager"]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("tokendeploy/token-server")
            && refused.stderr.contains("belongs to someone else"),
        "{}",
        refused.stderr
    );
    down(&harness, &[]).assert_success();
    let theirs =
        aws.secretsmanager.get_secret_value().secret_id("tokendeploy/token-server").send().await.unwrap();
    assert_eq!(theirs.secret_string(), Some("theirs"));
}
