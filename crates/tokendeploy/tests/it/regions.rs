//! `--region a,b,c`: the same stack in each region, side by side; each region finishes or fails
//! on its own, and the exit code is the worst of theirs.

use serde_json::Value;

use tokendeploy_testkit::fault_proxy::{Call, Effect, ErrorKind, FaultProxy, Rule};

use crate::gateways::changed;
use crate::support::*;

const THREE: &str = "us-west-1,eu-west-1,ap-southeast-2";

/// Each region's entry of a several-region result, in the order listed.
fn by_region(run: &Run) -> Vec<(String, i64, Value)> {
    let json = run.json();
    let regions = json["regions"].as_array().unwrap_or_else(|| panic!("{json}"));
    let entry = |r: &Value| {
        let result = if r["result"].is_null() { r["error"].clone() } else { r["result"].clone() };
        (r["region"].as_str().unwrap().to_string(), r["exit_code"].as_i64().unwrap(), result)
    };
    regions.iter().map(entry).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn several_regions_converge_side_by_side_and_one_that_fails_fails_alone() {
    let harness = Harness::start();
    let upstream = upstream().await;
    let env = crate::answers::dolby(&harness, &upstream);
    let zip = function_zip().to_str().unwrap().to_string();
    let up = |args: &[&str]| harness.up_with(args, &env);
    let status = || harness.run_with(&["status", "--output", "json", "--zip", &zip, "--region", THREE], &env);
    let regions: Vec<&str> = THREE.split(',').collect();

    // Someone else's function with the stack's name in one region: that region fails alone.
    let eu = harness.aws("eu-west-1").await;
    foreign_function(&eu, "token-server").await;
    let first = up(&["--region", THREE]);
    assert_eq!(first.code, 1, "{}", first.stderr);
    let results = by_region(&first);
    let names: Vec<&str> = results.iter().map(|(region, _, _)| region.as_str()).collect();
    assert_eq!(names, regions, "one entry a region, in the order listed");
    assert_eq!(results.iter().map(|(_, code, _)| *code).collect::<Vec<_>>(), [0, 1, 0]);
    assert_eq!(results[1].2["kind"], "foreign_resource", "{}", results[1].2);
    assert!(first.stderr.contains("error: eu-west-1: "), "{}", first.stderr);
    for (region, _, result) in [&results[0], &results[2]] {
        let url = result["invoke_url"].as_str().unwrap();
        assert!(url.contains("/restapis/"), "{region}: {url}");
        assert_eq!(result["region"], region.as_str());
    }

    // Their function gone, the re-run finishes that region and changes nothing in the others.
    eu.lambda.delete_function().function_name("token-server").send().await.unwrap();
    let again = up(&["--region", THREE]);
    again.assert_success();
    let results = by_region(&again);
    assert!(changed(&results[0].2).is_empty(), "{}", results[0].2);
    assert!(!changed(&results[1].2).is_empty(), "{}", results[1].2);
    assert!(changed(&results[2].2).is_empty(), "{}", results[2].2);
    for region in &regions {
        let aws = harness.aws(region).await;
        assert_eq!(function_names(&aws).await, ["token-server"], "{region}");
        let apis = rest_apis(&aws).await;
        assert_eq!(apis.iter().filter(|(_, name, _)| name == "token-server").count(), 1, "{region}");
    }
    let checked = status();
    assert_eq!(checked.code, 0, "{}", checked.stdout);
    assert!(by_region(&checked).iter().all(|(_, code, result)| *code == 0 && result["in_sync"] == true));

    // Each region answers through its own URL, and its function's log tells so.
    let verified = harness.run_with(&["verify", "--output", "json", "--region", THREE], &env);
    assert_eq!(verified.code, 0, "{}\n{}", verified.stdout, verified.stderr);
    for (region, code, result) in by_region(&verified) {
        assert_eq!(
            (code, &result["ok"], &result["region"]),
            (0, &Value::Bool(true), &Value::from(region.clone()))
        );
    }
    let logs = harness.run_with(&["logs", "--region", THREE], &env);
    logs.assert_success();
    for region in &regions {
        assert!(logs.stdout.lines().any(|line| line.starts_with(region)), "{region}:\n{}", logs.stdout);
    }

    // Drift in one region: status says 3 for it and for the whole.
    let west = harness.aws("ap-southeast-2").await;
    let config = west.lambda.update_function_configuration().function_name("token-server").timeout(29);
    config.send().await.unwrap();
    let drifted = status();
    assert_eq!(drifted.code, 3, "{}", drifted.stdout);
    let codes: Vec<i64> = by_region(&drifted).iter().map(|(_, code, _)| *code).collect();
    assert_eq!(codes, [0, 0, 3]);

    let down = harness.run_with(&["down", "--output", "json", "--yes", "--region", THREE], &env);
    down.assert_success();

    // A stack in a region no list named, forgotten: --all-regions finds it, and only it.
    up(&["--region", "sa-east-1"]).assert_success();
    let all = ["--output", "json", "--all-regions"];
    let found = harness.run_with(&[&["status", "--zip", &zip][..], &all].concat(), &env);
    assert_eq!(found.code, 0, "{}", found.stdout);
    let found: Vec<String> = by_region(&found).into_iter().map(|(region, _, _)| region).collect();
    assert_eq!(found, ["sa-east-1"]);
    let removed = harness.run_with(&[&["down", "--yes"][..], &all].concat(), &env);
    removed.assert_success();
    assert_eq!(by_region(&removed)[0].0, "sa-east-1");
    assert!(function_names(&harness.aws("sa-east-1").await).await.is_empty());
    let nowhere = harness.run_with(&[&["status", "--zip", &zip][..], &all].concat(), &env);
    assert_eq!(nowhere.code, 3, "{}", nowhere.stdout);
    assert_eq!(nowhere.json()["regions"], serde_json::json!([]));
    for region in &regions {
        let aws = harness.aws(region).await;
        assert!(function_names(&aws).await.is_empty(), "{region}");
        let stack = tokendeploy_deploy::Stack::new("token-server", region).unwrap();
        let left = tokendeploy_deploy::snapshot::read(&aws, &stack).await.unwrap().found(&stack);
        assert!(left.is_empty(), "{region}: down left {left:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn a_region_whose_services_fail_fails_alone_and_the_rerun_finishes_it() {
    let harness = Harness::start();
    // Every call signed for eu-west-1 answers 503, as a region in trouble.
    let troubled = |call: &Call| call.region == "eu-west-1";
    let rules = vec![Rule::first(troubled, usize::MAX, Effect::Error(ErrorKind::Unavailable))];
    let proxy = FaultProxy::start_with(&harness.moto.endpoint(), rules).await.unwrap();
    let zip = function_zip().to_str().unwrap().to_string();
    let args = ["up", "--output", "json", "--zip", &zip, "--region", THREE];
    let faulted = harness.run_through(&proxy, &args).await;
    assert_eq!(faulted.code, 1, "{}", faulted.stderr);
    let results = by_region(&faulted);
    assert_eq!(results.iter().map(|(_, code, _)| *code).collect::<Vec<_>>(), [0, 1, 0]);
    assert_eq!(results[1].2["kind"], "aws_call", "{}", results[1].2);
    let said: Vec<&str> = faulted.stderr.lines().filter(|line| line.starts_with("error: ")).collect();
    assert_eq!(said.len(), 1, "one line for the failed region: {}", faulted.stderr);
    assert!(said[0].starts_with("error: eu-west-1: ") && said[0].contains("503"), "{}", said[0]);

    let again = harness.up(&["--region", THREE]);
    again.assert_success();
    let results = by_region(&again);
    let changing: Vec<bool> = results.iter().map(|(_, _, result)| !changed(result).is_empty()).collect();
    assert_eq!(changing, [false, true, false], "only the failed region changes");
    assert_eq!(harness.status(&["--region", THREE]).code, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn a_several_region_up_killed_at_any_moment_is_finished_by_the_next() {
    let harness = Harness::start();
    let zip = function_zip().to_str().unwrap().to_string();
    for (round, after_ms) in [150u64, 400, 700, 1100, 1600].into_iter().enumerate() {
        let name = format!("killed-{round}");
        let args = ["up", "--output", "json", "--zip", &zip, "--name", &name, "--region", THREE];
        let mut child = harness.command(&args, &harness.env()).spawn().unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(after_ms)).await;
        child.kill().unwrap();
        child.wait().unwrap();
        let finished = harness.up(&["--name", &name, "--region", THREE]);
        finished.assert_success();
        let again = harness.up(&["--name", &name, "--region", THREE]);
        again.assert_success();
        for (region, _, result) in by_region(&again) {
            assert!(changed(&result).is_empty(), "killed after {after_ms} ms: {region}: {result}");
        }
    }
}
