//! Twin `up` runs of one fresh stack at the same moment, as two CI jobs or two colleagues
//! would start them: they end with one of everything, each run finishes or stops with a
//! clear message, and the stack is never stuck.

use std::process::Stdio;

use tokendeploy_testkit::fault_proxy::Call;

use crate::support::*;

/// Starts the runs (each its arguments) at the same moment with `env`, and waits for them all.
fn twin_runs(harness: &Harness, env: &[(String, String)], runs: &[Vec<&str>]) -> Vec<Run> {
    let children: Vec<_> = runs
        .iter()
        .map(|args| {
            let mut command = harness.command(args, env);
            command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
        })
        .collect();
    children.into_iter().map(|c| Run::from(c.wait_with_output().unwrap())).collect()
}

#[tokio::test]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn concurrent_ups_of_a_fresh_stack_end_with_one_of_everything() {
    let harness = Harness::start();
    let zip = function_zip().to_str().unwrap().to_string();
    let mut runs = 0;
    for (twins, name) in
        [(2, "pair-a"), (2, "pair-b"), (2, "pair-c"), (3, "trio-a"), (3, "trio-b"), (3, "trio-c")]
    {
        let args = ["up", "--output", "json", "--zip", &zip, "--name", name];
        let finished = twin_runs(&harness, &harness.env(), &vec![args.to_vec(); twins]);
        for run in &finished {
            run.assert_no_secret();
            let errors: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("error:")).collect();
            let stopped_clearly = run.code == 1
                && errors.len() == 1
                && errors[0].contains(&format!("another tokendeploy up of stack {name}"));
            assert!(run.code == 0 || stopped_clearly, "{name}: exit {}:\n{}", run.code, run.stderr);
        }
        assert!(finished.iter().any(|r| r.code == 0), "{name}: no run finished");
        assert_one_of_everything(&harness, name, name).await;
        let again = harness.up(&["--name", name]);
        again.assert_success();
        assert_eq!(again.actions(), all_unchanged(), "{name}: a following up changes nothing");
        runs += twins;
    }
    eprintln!("{runs} concurrent up runs in 6 rounds, each ended with one of everything");
}

#[tokio::test]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn concurrent_ups_of_a_fresh_http_api_stack_end_with_one_http_api() {
    let harness = Harness::start();
    let zip = function_zip().to_str().unwrap().to_string();
    let aws = harness.aws(REGION).await;
    for (twins, name) in [(2, "http-a"), (2, "http-b"), (3, "http-c"), (3, "http-d")] {
        let args = ["up", "--output", "json", "--zip", &zip, "--name", name, "--gateway", "http"];
        let finished = twin_runs(&harness, &harness.env(), &vec![args.to_vec(); twins]);
        for run in &finished {
            let stopped_clearly =
                run.code == 1 && run.stderr.contains(&format!("another tokendeploy up of stack {name}"));
            assert!(run.code == 0 || stopped_clearly, "{name}: exit {}:\n{}", run.code, run.stderr);
        }
        assert!(finished.iter().any(|r| r.code == 0), "{name}: no run finished");
        let apis = aws.apigatewayv2.get_apis().send().await.unwrap();
        let ours = apis.items().iter().filter(|api| api.name() == Some(name)).count();
        let said: Vec<String> =
            finished.iter().map(|run| format!("exit {}:\n{}", run.code, run.stderr)).collect();
        assert_eq!(ours, 1, "{name}: one HTTP API; the runs said:\n{}", said.join("\n"));
        let again = harness.up(&["--name", name, "--gateway", "http"]);
        again.assert_success();
        let changed: Vec<(String, String)> =
            again.actions().into_iter().filter(|(_, a)| a != "unchanged").collect();
        assert!(changed.is_empty(), "{name}: a following up changes nothing: {changed:?}");
    }
}

#[tokio::test]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn concurrent_ups_with_an_api_key_keep_one_key_and_one_plan_and_every_run_prints_that_key() {
    let harness = Harness::start();
    let aws = harness.aws(REGION).await;
    let zip = function_zip().to_str().unwrap().to_string();
    let mut lost = 0;
    for round in 0..8 {
        let name = format!("keyed-{round}");
        let args = ["up", "--output", "json", "--zip", &zip, "--name", &name, "--api-key", "--show-api-key"];
        let finished = twin_runs(&harness, &harness.env(), &vec![args.to_vec(); 3]);
        let keys = aws.apigateway.get_api_keys().name_query(&name).include_values(true).send().await.unwrap();
        let keys: Vec<_> = keys.items().iter().filter(|key| key.name() == Some(name.as_str())).collect();
        assert_eq!(keys.len(), 1, "{name}: keys {keys:?}");
        let survivor = keys[0].value().unwrap();
        let plans = aws.apigateway.get_usage_plans().send().await.unwrap();
        let plans: Vec<_> = plans.items().iter().filter(|plan| plan.name() == Some(name.as_str())).collect();
        assert_eq!(plans.len(), 1, "{name}: usage plans {plans:?}");
        let plan_keys =
            aws.apigateway.get_usage_plan_keys().usage_plan_id(plans[0].id().unwrap()).send().await.unwrap();
        let bound: Vec<_> = plan_keys.items().iter().filter_map(|key| key.id()).collect();
        assert_eq!(bound, [keys[0].id().unwrap()], "{name}: the plan binds the surviving key");
        let survivor_id = keys[0].id().unwrap();
        for run in &finished {
            run.assert_success();
            assert_eq!(run.json()["api_key"], survivor, "{name}: a run printed a key that did not survive");
            assert_eq!(run.json()["api_key_id"], survivor_id, "{name}");
            // A run whose own key lost says so, naming the one kept.
            for note in run.stderr.lines().filter(|line| line.starts_with("note: ")) {
                assert!(note.contains(&format!("{survivor_id} is the stack's key")), "{name}: {note}");
                lost += 1;
            }
        }
        let again = harness.up(&["--name", &name, "--api-key"]);
        assert_eq!(again.actions(), all_unchanged(), "{name}: a following up changes nothing");
    }
    eprintln!(
        "8 rounds of 3 twin runs with --api-key: one key and one plan each; {lost} runs told their key lost"
    );
}

/// Twins that each take the other's REST API or usage plan for a duplicate delete it both, and a
/// run retiring a REST API may find a twin removed it first: the second delete finds it gone
/// (API Gateway's NotFoundException, which the emulator plays) and goes on.
#[tokio::test]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn a_rest_api_or_usage_plan_a_twin_deleted_first_is_gone_not_an_error() {
    use tokendeploy_deploy::resources::rest_api::{self, usage_plan};
    let harness = Harness::start();
    let aws = harness.aws(REGION).await;
    let silent = tokendeploy_deploy::vocabulary::Silent;
    let api = aws.apigateway.create_rest_api().name("twinned").send().await.unwrap();
    let api_id = api.id().unwrap();
    let proxy =
        aws.apigateway.create_resource().rest_api_id(api_id).parent_id(api.root_resource_id().unwrap());
    let proxy = proxy.path_part("{proxy+}").send().await.unwrap();
    let made = aws.apigateway.create_usage_plan().name("twinned").send().await.unwrap();
    let plan =
        usage_plan::UsagePlanState { id: made.id().unwrap().to_string(), stages: vec![], key_ids: vec![] };
    let delete_resource =
        || aws.apigateway.delete_resource().rest_api_id(api_id).resource_id(proxy.id().unwrap()).send();
    for twin in ["first", "second"] {
        let status = match delete_resource().await {
            Ok(_) => 202,
            Err(error) => error.raw_response().map_or(0, |answer| answer.status().as_u16()),
        };
        assert_eq!(status, if twin == "first" { 202 } else { 404 }, "{twin} DeleteResource");
        let deleted = usage_plan::delete(&aws, std::slice::from_ref(&plan), &silent).await;
        assert!(deleted.is_ok(), "{twin} delete of the usage plan: {deleted:?}");
        let deleted = rest_api::delete(&aws, api_id, &silent).await;
        assert!(deleted.is_ok(), "{twin} delete of the REST API: {deleted:?}");
    }
    let gone = aws.apigateway.delete_usage_plan().usage_plan_id(&plan.id).send().await.unwrap_err();
    assert_eq!(gone.raw_response().map(|answer| answer.status().as_u16()), Some(404), "{gone:?}");
    let gone = aws.apigateway.delete_rest_api().rest_api_id(api_id).send().await.unwrap_err();
    assert_eq!(gone.raw_response().map(|answer| answer.status().as_u16()), Some(404), "{gone:?}");
}

#[tokio::test]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn racing_secret_store_switches_leave_a_function_that_answers_whenever_a_run_exits_0() {
    let harness = Harness::start();
    let aws = harness.aws(REGION).await;
    let upstream = upstream().await;
    let env = answering(&harness, &upstream);
    let zip = function_zip().to_str().unwrap().to_string();
    let name = "switching";
    harness.up_with(&["--name", name], &env).assert_success();
    let base = ["up", "--output", "json", "--zip", zip.as_str(), "--name", name, "--secret-store"];
    let (mut answered, mut stopped_both) = (0, 0);
    for round in 0..30 {
        let stores = if round % 2 == 0 { ["secrets-manager", "env"] } else { ["env", "secrets-manager"] };
        let runs: Vec<Vec<&str>> =
            stores.iter().map(|store| base.iter().copied().chain([*store]).collect()).collect();
        let finished = twin_runs(&harness, &env, &runs);
        for run in &finished {
            run.assert_no_secret();
            let conflict = run.code == 1 && run.stderr.contains("another tokendeploy up of stack");
            assert!(run.code == 0 || conflict, "round {round}: exit {}:\n{}", run.code, run.stderr);
        }
        if finished.iter().all(|run| run.code != 0) {
            stopped_both += 1;
            continue;
        }
        answered += 1;
        assert_eq!(secret_agreement(&aws, name).await, Ok(()), "round {round}: a run exited 0");
        let verified =
            harness.run_with(&["verify", "--name", name, "--output", "json", "--wait", "10"], &env);
        assert_eq!(
            verified.code, 0,
            "round {round}: a run exited 0 and the stack does not answer:\n{}",
            verified.stdout
        );
    }
    eprintln!(
        "30 races of secret-store switches: {answered} with a run exiting 0 (the stack then answered), {stopped_both} where both stopped"
    );
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn racing_gateway_switches_leave_a_gateway_that_answers_whenever_a_run_exits_0() {
    let harness = Harness::start();
    let upstream = upstream().await;
    let env = answering(&harness, &upstream);
    let zip = function_zip().to_str().unwrap().to_string();
    let name = "gateways";
    harness.up_with(&["--name", name], &env).assert_success();
    let base = ["up", "--output", "json", "--zip", zip.as_str(), "--name", name, "--gateway"];
    let (mut answered, mut stopped_both) = (0, 0);
    for round in 0..12 {
        let gateways = [["url", "rest"], ["http", "url"], ["rest", "http"]][round % 3];
        let runs: Vec<Vec<&str>> =
            gateways.iter().map(|gateway| base.iter().copied().chain([*gateway]).collect()).collect();
        let finished = twin_runs(&harness, &env, &runs);
        for run in &finished {
            let conflict = run.code == 1 && run.stderr.contains("another tokendeploy up of stack");
            assert!(run.code == 0 || conflict, "round {round}: exit {}:\n{}", run.code, run.stderr);
        }
        if finished.iter().all(|run| run.code != 0) {
            stopped_both += 1;
            // Both stopped, saying so: a plain re-run of either converges.
            harness.up_with(&["--name", name, "--gateway", gateways[0]], &env).assert_success();
        } else {
            answered += 1;
        }
        assert_answers(&harness, &env, name, &format!("round {round}"));
    }
    eprintln!(
        "12 races of gateway switches: {answered} with a run exiting 0 (the stack then answered), {stopped_both} where both stopped"
    );
}

/// The harness's environment, with the token endpoint a stand-in upstream: a deployed stack
/// can answer.
fn answering(harness: &Harness, upstream: &wiremock::MockServer) -> Vec<(String, String)> {
    let mut env = harness.env();
    env.retain(|(name, _)| name != "TOKEN_URL");
    env.push(("TOKEN_URL".into(), format!("{}/v1/oauth2/token", upstream.uri())));
    env
}

/// `verify` passes: the stack answers with a token through its URL.
fn assert_answers(harness: &Harness, env: &[(String, String)], name: &str, context: &str) {
    let verified = harness.run_with(&["verify", "--name", name, "--output", "json", "--wait", "10"], env);
    assert_eq!(
        verified.code, 0,
        "{context}: the stack does not answer:\n{}{}",
        verified.stdout, verified.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn a_run_that_removes_the_secret_a_twin_just_pointed_the_function_at_puts_it_right() {
    let harness = Harness::start();
    let aws = harness.aws(REGION).await;
    let upstream = upstream().await;
    let env = answering(&harness, &upstream);
    let name = "deleted-under";
    harness.up_with(&["--name", name, "--secret-store", "secrets-manager"], &env).assert_success();
    // To the environment: the secret's deletion held until the twin below is done.
    let deleting =
        |call: &Call| call.is("secretsmanager", "DeleteSecret") || call.is("iam", "DeleteRolePolicy");
    let (_proxy, to_env) =
        up_held(&harness, &env, deleting, &["--name", name, "--secret-store", "env"]).await;
    // Back to Secrets Manager meanwhile: the function is pointed at the secret again.
    let back = harness.up_with(&["--name", name, "--secret-store", "secrets-manager"], &env);
    let to_env = Run::from(to_env.wait_with_output().unwrap());
    assert_eq!(secret_agreement(&aws, name).await, Ok(()));
    assert_put_right(&harness, &env, name, &back, &to_env);
}

// Multi-threaded: the proxy answers while this thread waits for the runs.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn a_run_whose_function_change_lands_after_a_twin_removed_its_secret_makes_the_secret_again() {
    let harness = Harness::start();
    let aws = harness.aws(REGION).await;
    let upstream = upstream().await;
    let env = answering(&harness, &upstream);
    let name = "landed-late";
    harness.up_with(&["--name", name, "--secret-store", "secrets-manager"], &env).assert_success();
    // A change of the function's variables, held until the twin below has removed the secret.
    let configuring = |call: &Call| call.is("lambda", "PUT /2015-03-31/functions/{name}/configuration");
    let args =
        ["--name", name, "--secret-store", "secrets-manager", "--allow-origin", "https://other.example"];
    let (_proxy, late) = up_held(&harness, &env, configuring, &args).await;
    let to_env = harness.up_with(&["--name", name, "--secret-store", "env"], &env);
    to_env.assert_success();
    let late = Run::from(late.wait_with_output().unwrap());
    assert_eq!(secret_agreement(&aws, name).await, Ok(()));
    assert_put_right(&harness, &env, name, &to_env, &late);
}

// Multi-threaded: the proxy answers while this thread waits for the runs.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn a_run_that_removes_the_key_a_twin_just_required_again_puts_it_right() {
    let harness = Harness::start();
    let upstream = upstream().await;
    let env = answering(&harness, &upstream);
    let name = "unkeyed-under";
    harness.up_with(&["--name", name, "--api-key"], &env).assert_success();
    // Without a key: the plan's and the key's removal held until the twin below is done.
    let removing = |call: &Call| {
        ["PATCH /usageplans/{id}", "DELETE /usageplans/{id}", "DELETE /apikeys/{id}"]
            .iter()
            .any(|operation| call.is("apigateway", operation))
    };
    let (_proxy, keyless) = up_held(&harness, &env, removing, &["--name", name]).await;
    // With the key again meanwhile: the methods want it again.
    let keyed = harness.up_with(&["--name", name, "--api-key"], &env);
    let keyless = Run::from(keyless.wait_with_output().unwrap());
    assert_put_right(&harness, &env, name, &keyed, &keyless);
}

/// After `twin` ran while `held` was held: neither leaked a secret, each exited 0 or named
/// the other run, `held` saw the stack changed under it and planned again, and the stack answers.
fn assert_put_right(harness: &Harness, env: &[(String, String)], name: &str, twin: &Run, held: &Run) {
    for run in [twin, held] {
        run.assert_no_secret();
        assert!(run.code == 0 || run.stderr.contains("another tokendeploy up of stack"), "{}", run.stderr);
    }
    assert!(held.stderr.contains("another run of this stack changed it meanwhile"), "{}", held.stderr);
    assert_answers(harness, env, name, "after the twin runs");
}

/// The function's `TOKEN_SECRET_ARN`, if any, names a secret that exists, is not being deleted,
/// and that the role's policy lets the function read; without it, the secret is in the
/// environment.
async fn secret_agreement(aws: &tokendeploy_deploy::Aws, name: &str) -> Result<(), String> {
    let config = aws.lambda.get_function_configuration().function_name(name).send().await.unwrap();
    let variables = config.environment().and_then(|env| env.variables()).cloned().unwrap_or_default();
    let Some(arn) = variables.get("TOKEN_SECRET_ARN") else {
        return match variables.contains_key("CONSUMER_SECRET") {
            true => Ok(()),
            false => Err("neither TOKEN_SECRET_ARN nor CONSUMER_SECRET".into()),
        };
    };
    let secret = aws.secretsmanager.describe_secret().secret_id(arn).send().await;
    match secret {
        Ok(secret) if secret.deleted_date().is_none() => {}
        Ok(_) => return Err(format!("{arn} is scheduled for deletion")),
        Err(e) => return Err(format!("{arn}: {e}")),
    }
    let role = config.role().unwrap().rsplit('/').next().unwrap().to_string();
    let policy_name = tokendeploy_deploy::stack::SECRET_POLICY_NAME;
    let policy = aws.iam.get_role_policy().role_name(&role).policy_name(policy_name).send().await;
    match policy {
        Ok(policy) if urlencoding::decode(policy.policy_document()).unwrap().contains(arn.as_str()) => Ok(()),
        Ok(_) => Err(format!("the role's policy does not name {arn}")),
        Err(e) => Err(format!("no read policy: {e}")),
    }
}
