//! `--region a,b,c`: the same stack in each region, side by side; each region finishes or fails
//! on its own, and the exit code is the worst of theirs.

use serde_json::Value;

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
    let regions: Vec<&str> = THREE.split(',').collect();

    // Someone else's function with the stack's name in one region: that region fails alone.
    let eu = harness.aws("eu-west-1").await;
    foreign_function(&eu, "token-server").await;
    let first = harness.up(&["--region", THREE]);
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
    let again = harness.up(&["--region", THREE]);
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
    let status = harness.status(&["--region", THREE]);
    assert_eq!(status.code, 0, "{}", status.stdout);
    assert!(by_region(&status).iter().all(|(_, code, result)| *code == 0 && result["in_sync"] == true));

    // Drift in one region: status says 3 for it and for the whole.
    let west = harness.aws("ap-southeast-2").await;
    let config = west.lambda.update_function_configuration().function_name("token-server").timeout(29);
    config.send().await.unwrap();
    let drifted = harness.status(&["--region", THREE]);
    assert_eq!(drifted.code, 3, "{}", drifted.stdout);
    let codes: Vec<i64> = by_region(&drifted).iter().map(|(_, code, _)| *code).collect();
    assert_eq!(codes, [0, 0, 3]);

    let down = harness.run_with(&["down", "--output", "json", "--yes", "--region", THREE], &harness.env());
    down.assert_success();
    for region in &regions {
        let aws = harness.aws(region).await;
        assert!(function_names(&aws).await.is_empty(), "{region}");
        let stack = tokendeploy_deploy::Stack::new("token-server", region).unwrap();
        let left = tokendeploy_deploy::snapshot::read(&aws, &stack).await.unwrap().found(&stack);
        assert!(left.is_empty(), "{region}: down left {left:?}");
    }
}
