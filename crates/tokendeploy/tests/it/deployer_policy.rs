//! `examples/deployer-policy.json`, tested for real. moto enforces IAM (started through
//! `crates/testkit/moto_server.py`), and an IAM user holding only that policy's actions runs
//! `up` with every flag, `plan`, `status` and `down`. With any one statement taken away, the
//! command that needs it fails with one line naming the missing permission, and once it is
//! back, `up` and `down` finish whatever the failed run left.
//!
//! moto checks a call's action, never its resource or conditions, and never `iam:PassRole`
//! (measured: ../shared/notes/moto-iam-enforcement.md). So the user holds each statement's
//! actions on `*`, with API Gateway's actions (HTTP verbs on paths) spelled as moto checks them,
//! as operation names; the statements' resources are checked against the stack's real ARNs.

use std::collections::BTreeSet;

use crate::support::*;
use serde_json::{Value, json};
use tokendeploy_deploy::Aws;
use tokendeploy_testkit::moto::Moto;

const POLICY: &str = include_str!("../../../../examples/deployer-policy.json");

const EVERY_FLAG: [&str; 3] = ["--secret-store", "secrets-manager", "--api-key"];

/// The API Gateway operations, by the HTTP verb AWS's policies name them with.
const APIGATEWAY_OPERATIONS: [(&str, &[&str]); 5] = [
    (
        "GET",
        &[
            "GetRestApis",
            "GetRestApi",
            "GetResources",
            "GetResource",
            "GetMethod",
            "GetIntegration",
            "GetStages",
            "GetStage",
            "GetDeployments",
            "GetDeployment",
            "GetApiKeys",
            "GetApiKey",
            "GetUsagePlans",
            "GetUsagePlan",
            "GetUsagePlanKeys",
            "GetUsagePlanKey",
            "GetTags",
            "GetGatewayResponses",
            "GetGatewayResponse",
            "GetApis",
            "GetApi",
            "GetIntegrations",
            "GetRoutes",
            "GetAuthorizers",
        ],
    ),
    (
        "POST",
        &[
            "CreateRestApi",
            "CreateResource",
            "CreateDeployment",
            "CreateStage",
            "CreateApiKey",
            "CreateUsagePlan",
            "CreateUsagePlanKey",
            "CreateApi",
            "CreateIntegration",
            "CreateRoute",
            "CreateAuthorizer",
        ],
    ),
    ("PUT", &["PutMethod", "PutIntegration", "PutGatewayResponse", "TagResource"]),
    (
        "PATCH",
        &[
            "UpdateRestApi",
            "UpdateMethod",
            "UpdateStage",
            "UpdateApiKey",
            "UpdateUsagePlan",
            "UpdateApi",
            "UpdateIntegration",
            "UpdateRoute",
            "UpdateAuthorizer",
        ],
    ),
    (
        "DELETE",
        &[
            "DeleteRestApi",
            "DeleteResource",
            "DeleteMethod",
            "DeleteStage",
            "DeleteDeployment",
            "DeleteApiKey",
            "DeleteUsagePlan",
            "DeleteUsagePlanKey",
            "DeleteGatewayResponse",
            "UntagResource",
            "DeleteApi",
            "DeleteRoute",
            "DeleteAuthorizer",
        ],
    ),
];

fn statements() -> Vec<Value> {
    let policy: Value = serde_json::from_str(POLICY).unwrap();
    policy["Statement"].as_array().unwrap().clone()
}

fn actions(statement: &Value) -> Vec<String> {
    match &statement["Action"] {
        Value::String(action) => vec![action.clone()],
        list => list.as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect(),
    }
}

/// The Resource Groups Tagging API's actions: AWS's policies name them `tag:`, moto checks
/// them under the service's signing name.
const TAGGING: (&str, &str) = ("tag:", "tagging:");

/// A statement's actions as moto checks them.
fn as_moto_checks(action: &str) -> Vec<String> {
    if let Some(operation) = action.strip_prefix(TAGGING.0) {
        return vec![format!("{}{operation}", TAGGING.1)];
    }
    match action.strip_prefix("apigateway:") {
        Some(verb) => {
            let (_, operations) = APIGATEWAY_OPERATIONS.iter().find(|(v, _)| *v == verb).unwrap();
            operations.iter().map(|operation| format!("apigateway:{operation}")).collect()
        }
        None => vec![action.to_string()],
    }
}

/// The policy moto can check: every statement but `without`, its actions on `*`.
fn checkable_policy(without: Option<usize>) -> String {
    checkable_policy_keeping(|index, _| Some(index) != without)
}

/// The policy moto can check, with only the actions `keep` keeps (by statement index and
/// action).
fn checkable_policy_keeping(keep: impl Fn(usize, &str) -> bool) -> String {
    let statements: Vec<Value> = statements()
        .into_iter()
        .enumerate()
        .map(|(index, statement)| {
            let kept = actions(&statement).into_iter().filter(|action| keep(index, action));
            let actions: Vec<String> = kept.flat_map(|a| as_moto_checks(&a)).collect();
            json!({ "Sid": statement["Sid"], "Effect": "Allow", "Action": actions, "Resource": "*" })
        })
        .filter(|statement| statement["Action"].as_array().is_some_and(|a| !a.is_empty()))
        .collect();
    json!({ "Version": "2012-10-17", "Statement": statements }).to_string()
}

struct Users {
    admin: Aws,
    deployer_env: Vec<(String, String)>,
}

/// Before enforcement: an administrator (to read back and to change the deployer's policy) and
/// the deployer, holding the checkable policy.
async fn users(harness: &Harness) -> Users {
    users_holding(harness, checkable_policy(None)).await
}

/// As [`users`], the deployer holding `policy`.
async fn users_holding(harness: &Harness, policy: String) -> Users {
    let unchecked = harness.aws(REGION).await;
    let mut keys = Vec::new();
    for (user, policy) in [("admin", json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}).to_string()), ("deployer", policy)] {
        unchecked.iam.create_user().user_name(user).send().await.unwrap();
        unchecked.iam.put_user_policy().user_name(user).policy_name("p").policy_document(policy).send().await.unwrap();
        let key = unchecked.iam.create_access_key().user_name(user).send().await.unwrap();
        let key = key.access_key().unwrap();
        keys.push((key.access_key_id().to_string(), key.secret_access_key().to_string()));
    }
    harness.moto.enforce_iam().await.unwrap();
    let admin = harness.aws_as(REGION, &keys[0].0, &keys[0].1).await;
    let mut deployer_env = harness.env();
    deployer_env.retain(|(k, _)| k != "AWS_ACCESS_KEY_ID" && k != "AWS_SECRET_ACCESS_KEY");
    deployer_env.push(("AWS_ACCESS_KEY_ID".into(), keys[1].0.clone()));
    deployer_env.push(("AWS_SECRET_ACCESS_KEY".into(), keys[1].1.clone()));
    Users { admin, deployer_env }
}

async fn grant(admin: &Aws, policy: String) {
    admin
        .iam
        .put_user_policy()
        .user_name("deployer")
        .policy_name("p")
        .policy_document(policy)
        .send()
        .await
        .unwrap();
}

fn run(harness: &Harness, users: &Users, command: &str, flags: &[&str]) -> Run {
    let zip = function_zip().to_str().unwrap().to_string();
    let mut args = vec![command, "--output", "json"];
    match command {
        "down" => args.extend(["--quiet", "--yes"]),
        "verify" => args.extend(["--quiet", "--wait", "5"]),
        "logs" => {}
        _ => {
            args.extend(["--quiet", "--zip", &zip]);
            args.extend(flags);
        }
    }
    harness.run_with(&args, &users.deployer_env)
}

/// The actions moto allowed the deployer, as the policy names them.
fn allowed_actions(decisions: &std::path::Path) -> BTreeSet<String> {
    let log = std::fs::read_to_string(decisions).unwrap();
    let decisions = log.lines().map(|line| serde_json::from_str::<Value>(line).unwrap());
    let deployer = |d: &Value| d["principal"].as_str().is_some_and(|p| p.ends_with(":user/deployer"));
    let allowed = decisions.filter(|d| d["allowed"] == true && deployer(d));
    allowed
        .map(|d| {
            let action = d["action"].as_str().unwrap().to_string();
            if let Some(operation) = action.strip_prefix(TAGGING.1) {
                return format!("{}{operation}", TAGGING.0);
            }
            let verb = action.strip_prefix("apigateway:").and_then(|operation| {
                APIGATEWAY_OPERATIONS.iter().find(|(_, ops)| ops.contains(&operation)).map(|(verb, _)| *verb)
            });
            verb.map(|verb| format!("apigateway:{verb}")).unwrap_or(action)
        })
        .collect()
}

#[tokio::test]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn a_user_holding_only_the_deployer_policy_runs_every_command_and_needs_every_statement() {
    let decisions = harness_log("every-statement");
    let harness = Harness::with(Moto::start_enforcing(&decisions).unwrap());
    let mut users = users(&harness).await;
    // The function, run by the emulator, asks this for its token: `verify` sees it answer.
    let upstream = upstream().await;
    users.deployer_env.push(("TOKEN_URL".into(), format!("{}/v1/oauth2/token", upstream.uri())));

    // Everything, with the policy whole: made, converged, read, and, later, removed.
    run(&harness, &users, "up", &EVERY_FLAG).assert_success().assert_no_secret();
    // Drift only a hand makes, so that `up` needs its every repair call too.
    let admin = &users.admin;
    let role = "token-server-us-west-1-lambda";
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
    admin
        .iam
        .update_assume_role_policy()
        .role_name(role)
        .policy_document(trust.to_string())
        .send()
        .await
        .unwrap();
    admin
        .secretsmanager
        .delete_secret()
        .secret_id("tokendeploy/token-server")
        .recovery_window_in_days(7)
        .send()
        .await
        .unwrap();
    let other_code = tokendeploy_package::zip_bootstrap(
        b"\x7fELF code put there by hand",
        tokendeploy_package::Arch::X86_64,
    )
    .unwrap()
    .bytes;
    let code = aws_sdk_lambda::primitives::Blob::new(other_code);
    admin.lambda.update_function_code().function_name("token-server").zip_file(code).send().await.unwrap();
    let anyone = admin.lambda.add_permission().function_name("token-server").statement_id("anyone");
    anyone.action("lambda:InvokeFunction").principal("*").send().await.unwrap();
    let repaired = run(&harness, &users, "up", &EVERY_FLAG);
    repaired.assert_success();
    assert_eq!(
        repaired.actions().into_iter().filter(|(_, a)| a != "unchanged").map(|(s, _)| s).collect::<Vec<_>>(),
        ["role", "package", "secret", "function", "permission"]
    );
    for command in ["plan", "status", "verify", "logs"] {
        run(&harness, &users, command, &EVERY_FLAG).assert_success();
    }
    // Found among the account's regions.
    let everywhere = run(&harness, &users, "status", &[&EVERY_FLAG[..], &["--all-regions"]].concat());
    everywhere.assert_success();
    assert_eq!(everywhere.json()["regions"][0]["region"], "us-west-1", "{}", everywhere.stdout);
    // Behind a function URL: made (the REST API and its key go once it is), its CORS changed by
    // hand and repaired, answering; then back to the REST API, which removes the URL and the
    // concurrency reserved for it.
    let url = ["--secret-store", "secrets-manager", "--gateway", "url"];
    run(&harness, &users, "up", &url).assert_success();
    let elsewhere = aws_sdk_lambda::types::Cors::builder().allow_origins("https://elsewhere.example").build();
    let by_hand = admin.lambda.update_function_url_config().function_name("token-server").cors(elsewhere);
    by_hand.send().await.unwrap();
    let repaired = run(&harness, &users, "up", &url);
    repaired.assert_success();
    assert!(repaired.actions().contains(&("function_url".into(), "updated".into())), "{}", repaired.stdout);
    for command in ["status", "verify"] {
        run(&harness, &users, command, &url).assert_success();
    }
    // Behind an HTTP API: made (the function URL goes once it is), its CORS, route,
    // integration and limits changed by hand and repaired, answering.
    let http = ["--secret-store", "secrets-manager", "--gateway", "http"];
    run(&harness, &users, "up", &http).assert_success();
    let api = admin.apigatewayv2.get_apis().send().await.unwrap();
    let api = api.items()[0].api_id().unwrap().to_string();
    let limits = aws_sdk_apigatewayv2::types::RouteSettings::builder()
        .throttling_burst_limit(9)
        .throttling_rate_limit(9.0)
        .build();
    let by_hand =
        admin.apigatewayv2.update_stage().api_id(&api).stage_name("$default").default_route_settings(limits);
    by_hand.send().await.unwrap();
    let routes = admin.apigatewayv2.get_routes().api_id(&api).send().await.unwrap();
    let route = routes.items()[0].route_id().unwrap();
    admin
        .apigatewayv2
        .update_route()
        .api_id(&api)
        .route_id(route)
        .target("integrations/elsewhere")
        .send()
        .await
        .unwrap();
    let integration = admin.apigatewayv2.get_integrations().api_id(&api).send().await.unwrap();
    let integration = integration.items()[0].integration_id().unwrap();
    let v1 = aws_sdk_apigatewayv2::types::IntegrationType::AwsProxy;
    let stale =
        admin.apigatewayv2.update_integration().api_id(&api).integration_id(integration).integration_type(v1);
    stale.payload_format_version("1.0").send().await.unwrap();
    let cors = aws_sdk_apigatewayv2::types::Cors::builder().allow_origins("*").build();
    admin.apigatewayv2.update_api().api_id(&api).cors_configuration(cors).send().await.unwrap();
    let repaired = run(&harness, &users, "up", &http);
    repaired.assert_success();
    let changed: Vec<(String, String)> =
        repaired.actions().into_iter().filter(|(_, a)| a != "unchanged").collect();
    for step in ["http_api", "http_routes", "http_stage"] {
        assert!(changed.contains(&(step.into(), "updated".into())), "{step}: {}", repaired.stdout);
    }
    for command in ["status", "verify"] {
        run(&harness, &users, command, &http).assert_success();
    }
    run(&harness, &users, "up", &EVERY_FLAG).assert_success();
    // Back to the environment and no key: the secret, its policy, the key and plan go.
    run(&harness, &users, "up", &[]).assert_success();
    run(&harness, &users, "down", &[]).assert_success();
    assert!(snapshot(admin).await.is_empty(), "down left nothing");

    // The policy names what the commands called, and no more than AWS also checks.
    let used = allowed_actions(&decisions);
    let granted: BTreeSet<String> = statements().iter().flat_map(actions).collect();
    let unused: BTreeSet<&str> = granted.iter().filter(|a| !used.contains(*a)).map(String::as_str).collect();
    let missing: Vec<&String> =
        used.iter().filter(|a| !granted.contains(*a) && !a.starts_with("sts:")).collect();
    assert!(missing.is_empty(), "called without the policy granting it: {missing:?}");
    assert!(unused.is_empty(), "granted, never checked: {unused:?}");

    // Each statement taken away in turn: the command that needs it fails, naming a permission
    // of that statement, and with the policy whole again, `up` and `down` finish.
    for (index, statement) in statements().iter().enumerate() {
        let sid = statement["Sid"].as_str().unwrap();
        let its_actions: Vec<String> = actions(statement).iter().flat_map(|a| as_moto_checks(a)).collect();
        let names_one = |run: &Run| {
            let line = run.stderr.trim_end();
            assert_eq!(line.lines().count(), 1, "{sid}: one line, got:\n{line}");
            let denied = line
                .split("is not authorized to perform: ")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next());
            assert!(
                denied.is_some_and(|action| its_actions.iter().any(|a| a == action)),
                "{sid}: names none of {its_actions:?}: {line}"
            );
        };
        grant(admin, checkable_policy(Some(index))).await;
        // Finding the stack among the account's regions is `--all-regions`' alone.
        let (command, flags) = match sid {
            "FindTheStackInEveryRegion" => ("status", [&EVERY_FLAG[..], &["--all-regions"]].concat()),
            _ => ("up", EVERY_FLAG.to_vec()),
        };
        let needing = run(&harness, &users, command, &flags);
        assert_eq!(needing.code, 1, "{sid}: {command} needs it: {}", needing.stderr);
        names_one(&needing);
        grant(admin, checkable_policy(None)).await;
        run(&harness, &users, "up", &EVERY_FLAG).assert_success();

        grant(admin, checkable_policy(Some(index))).await;
        let down = run(&harness, &users, "down", &[]);
        if down.code != 0 {
            assert_eq!(down.code, 1, "{sid}: {}", down.stderr);
            names_one(&down);
        }
        grant(admin, checkable_policy(None)).await;
        run(&harness, &users, "down", &[]).assert_success();
        assert!(snapshot(admin).await.is_empty(), "{sid}: down left something");
    }
}

/// GetFunction withholds the function's tags from a caller not allowed lambda:ListTags (moto
/// plays it, as AWS documents it): from the second `up` on, every command that must know whose
/// the function is stops with one line naming the permission, and changes nothing.
#[tokio::test]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn without_list_tags_up_status_and_down_stop_naming_it_and_change_nothing() {
    let harness = Harness::with(Moto::start_enforcing(&harness_log("list-tags")).unwrap());
    let without = checkable_policy_keeping(|_, action| action != "lambda:ListTags");
    let users = users_holding(&harness, without).await;
    run(&harness, &users, "up", &[]).assert_success();
    let before = snapshot(&users.admin).await;
    for command in ["up", "status", "plan", "down"] {
        let refused = run(&harness, &users, command, &[]);
        assert_eq!(refused.code, 1, "{command}: {}", refused.stderr);
        let line = refused.stderr.trim_end();
        assert_eq!(line.lines().count(), 1, "{command}: one line, got:\n{line}");
        assert!(line.contains("allow lambda:ListTags on the function"), "{command}: {line}");
        assert_eq!(snapshot(&users.admin).await, before, "{command} changed nothing");
    }
    grant(&users.admin, checkable_policy(None)).await;
    run(&harness, &users, "down", &[]).assert_success();
    assert!(snapshot(&users.admin).await.is_empty(), "with the permission back, down removes it all");
}

/// A fresh decisions file for a test's enforcing moto.
fn harness_log(name: &str) -> std::path::PathBuf {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("deployer-policy-{name}-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

/// The ARN patterns of each statement cover the stack's real resources, and not another
/// stack's (moto cannot check them: they are matched here as IAM matches them).
#[tokio::test]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn each_statement_is_narrowed_to_the_stacks_names() {
    let harness = Harness::start();
    let made = harness.up(&EVERY_FLAG).assert_success().json();
    let aws = harness.aws(REGION).await;
    let account = made["account"].as_str().unwrap();
    let region = REGION;
    let ours = [
        ("ExecutionRole", made["role_arn"].as_str().unwrap().to_string()),
        ("PassTheExecutionRoleToLambdaOnly", made["role_arn"].as_str().unwrap().to_string()),
        ("Function", made["function_arn"].as_str().unwrap().to_string()),
        ("LogGroup", format!("arn:aws:logs:{region}:{account}:log-group:/aws/lambda/token-server:*")),
        (
            "ApisKeysAndUsagePlans",
            format!("arn:aws:apigateway:{region}::/restapis/{}", made["api_id"].as_str().unwrap()),
        ),
        (
            "ApisKeysAndUsagePlans",
            format!("arn:aws:apigateway:{region}::/apikeys/{}", made["api_key_id"].as_str().unwrap()),
        ),
        ("Secret", made["secret_arn"].as_str().unwrap().to_string()),
    ];
    let secret = aws
        .secretsmanager
        .describe_secret()
        .secret_id(made["secret_arn"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(secret.name(), Some("tokendeploy/token-server"));
    let others = [
        ("ExecutionRole", format!("arn:aws:iam::{account}:role/admin")),
        (
            "PassTheExecutionRoleToLambdaOnly",
            format!("arn:aws:iam::{account}:role/token-server-us-west-1-admin"),
        ),
        ("Function", format!("arn:aws:lambda:{region}:{account}:function:token-server-billing")),
        ("LogGroup", format!("arn:aws:logs:{region}:{account}:log-group:/aws/lambda/payments:*")),
        ("Secret", format!("arn:aws:secretsmanager:{region}:{account}:secret:prod/database-AbCdEf")),
        (
            "Secret",
            format!(
                "arn:aws:secretsmanager:{region}:{account}:secret:tokendeploy/token-server-billing-AbCdEf"
            ),
        ),
    ];
    let covers = |sid: &str, arn: &str| {
        let statement = statements().into_iter().find(|s| s["Sid"] == sid).unwrap();
        let patterns = match &statement["Resource"] {
            Value::String(one) => vec![one.clone()],
            many => many.as_array().unwrap().iter().map(|p| p.as_str().unwrap().to_string()).collect(),
        };
        patterns.iter().any(|pattern| matches_wildcards(pattern, arn))
    };
    for (sid, arn) in &ours {
        assert!(covers(sid, arn), "{sid} does not cover the stack's {arn}");
    }
    for (sid, arn) in &others {
        assert!(!covers(sid, arn), "{sid} covers {arn}, which is not the stack's");
    }
}

/// IAM's ARN matching: `*` any run of characters, `?` any one.
fn matches_wildcards(pattern: &str, text: &str) -> bool {
    let (pattern, text): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut p, mut t, mut star, mut mark) = (0, 0, None, 0);
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            (p, t) = (p + 1, t + 1);
        } else if p < pattern.len() && pattern[p] == '*' {
            (star, mark, p) = (Some(p), t, p + 1);
        } else if let Some(s) = star {
            (p, mark, t) = (s + 1, mark + 1, mark + 1);
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

#[test]
fn wildcards_match_as_iam_matches_them() {
    assert!(matches_wildcards("arn:*:secret:x-??????", "arn:aws:secret:x-AbCdEf"));
    assert!(!matches_wildcards("arn:*:secret:x-??????", "arn:aws:secret:x-y-AbCdEf"));
    assert!(matches_wildcards("a*b*c", "a-b-b-c"));
    assert!(!matches_wildcards("a*b", "a-c"));
}
