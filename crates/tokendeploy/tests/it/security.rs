//! The security flags through the command line: `--secret-store secrets-manager`, `--api-key`
//! with `--show-api-key`, `--rate-limit` and `--burst-limit`. Every output of every command is
//! scanned for the secret and for the API key's value, which may appear only where asked for.

use crate::support::*;

const EVERY_FLAG: [&str; 7] =
    ["--secret-store", "secrets-manager", "--api-key", "--rate-limit", "5", "--burst-limit", "10"];

/// `tokendeploy ARGS` with the function's zip for the commands that deploy.
fn run(harness: &Harness, args: &[&str]) -> Run {
    let zip = function_zip().to_str().unwrap().to_string();
    let mut all: Vec<&str> = args.to_vec();
    if matches!(args[0], "up" | "plan" | "status") {
        all.extend(["--zip", &zip]);
    }
    harness.run_with(&all, &harness.env())
}

#[tokio::test]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn every_flag_deploys_converges_and_shows_the_key_only_when_asked() {
    let harness = Harness::start();
    let aws = harness.aws(REGION).await;

    let mut first: Vec<&str> = vec!["up", "--output", "json", "--show-api-key"];
    first.extend(EVERY_FLAG);
    let made = run(&harness, &first);
    made.assert_success().assert_no_secret();
    assert_eq!(made.actions(), every("created"));
    let report = made.json();
    let key_id = report["api_key_id"].as_str().unwrap().to_string();
    let key = aws.apigateway.get_api_key().api_key(&key_id).include_value(true).send().await.unwrap();
    let key_value = key.value().unwrap().to_string();
    assert_eq!(report["api_key"], key_value.as_str(), "asked for: the key's value is in the JSON");
    let secret_arn = report["secret_arn"].as_str().unwrap();
    let stored = aws.secretsmanager.get_secret_value().secret_id(secret_arn).send().await.unwrap();
    assert!(stored.secret_string().unwrap().contains(SECRET), "the secret went to Secrets Manager");
    let stage = aws.apigateway.get_stage().rest_api_id(report["api_id"].as_str().unwrap()).stage_name("prod");
    let every_method = stage.send().await.unwrap().method_settings().unwrap()["*/*"].clone();
    assert_eq!((every_method.throttling_rate_limit(), every_method.throttling_burst_limit()), (5.0, 10));

    // Text output with --show-api-key: the URL, then the key.
    let mut shown: Vec<&str> = vec!["up", "--show-api-key"];
    shown.extend(EVERY_FLAG);
    let text = run(&harness, &shown);
    text.assert_success();
    let lines: Vec<&str> = text.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", text.stdout);
    assert!(lines[0].ends_with("/prod/_user_request_/token"), "the URL that answers here: {}", text.stdout);
    assert_eq!(lines[1], format!("x-api-key: {key_value}"));

    // Every other command, with and without the flags, in text and JSON: neither the secret
    // nor the key's value, and with the flags, in sync.
    for flags in [&EVERY_FLAG[..], &[]] {
        for output in ["text", "json"] {
            for command in ["up", "plan", "status"] {
                let mut args = vec![command, "--output", output];
                args.extend(flags);
                let run = run(&harness, &args);
                let shown = format!("{args:?}");
                run.assert_no_secret();
                for text in [&run.stdout, &run.stderr] {
                    assert!(!text.contains(&key_value), "{shown}: the API key was printed:\n{text}");
                }
                // Without the flags, `up` takes the secret store and the key away again; put
                // them back for the next round.
                if flags.is_empty() && command == "up" {
                    let mut back = vec!["up", "--quiet"];
                    back.extend(EVERY_FLAG);
                    let restored = self::run(&harness, &back);
                    restored.assert_success();
                    continue;
                }
                assert!(matches!(run.code, 0 | 3), "{shown}: {}", run.stderr);
                if !flags.is_empty() && command == "status" {
                    assert_eq!(run.code, 0, "{shown}: in sync\n{}", run.stdout);
                }
            }
        }
    }
    // The same key throughout: every `up` with --api-key after the first kept it.
    let again = {
        let mut args = vec!["up", "--output", "json"];
        args.extend(EVERY_FLAG);
        run(&harness, &args)
    };
    assert_eq!(again.actions(), every("unchanged"));
    assert!(again.json().get("api_key").is_none(), "not asked for: no api_key field");
    let down = run(&harness, &["down", "--yes", "--output", "json"]);
    down.assert_success().assert_no_secret();
    assert!(!down.stdout.contains(&key_value));
    assert!(snapshot(&aws).await.is_empty(), "down left nothing");
}

#[tokio::test]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn an_up_with_every_flag_killed_after_any_new_step_is_completed_by_the_next() {
    let harness = Harness::start();
    for step in ["secret", "secret_access", "throttling", "api_key", "usage_plan"] {
        let name = format!("cut-{}", step.replace('_', "-"));
        let mut args = vec!["up", "--output", "json", "--name", &name];
        args.extend(EVERY_FLAG);
        let mut env = harness.env();
        env.push(("TOKENDEPLOY_ABORT_AFTER_STEP".into(), step.into()));
        let zip = function_zip().to_str().unwrap().to_string();
        let mut with_zip = args.clone();
        with_zip.extend(["--zip", &zip]);
        let killed = harness.run_with(&with_zip, &env);
        assert_ne!(killed.code, 0, "{step}: the run was meant to die");
        run(&harness, &args).assert_success();
        let again = run(&harness, &args);
        again.assert_success();
        assert_eq!(again.actions(), every("unchanged"), "{step}: the resumed run left the stack complete");
    }
}
