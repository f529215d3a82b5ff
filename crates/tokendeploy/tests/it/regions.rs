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

    // Stacks in regions no list named, forgotten: --all-regions finds them, and only them,
    // in a default region and in an opt-in region the account enabled (asked once the
    // account's regions are listed).
    let opt_in = harness.aws("ap-east-1").await;
    up(&["--region", "ap-east-1"]).assert_success();
    up(&["--region", "sa-east-1"]).assert_success();
    let all = ["--output", "json", "--all-regions"];
    let found_in =
        |run: &Run| -> Vec<String> { by_region(run).into_iter().map(|(region, _, _)| region).collect() };
    let found = harness.run_with(&[&["status", "--zip", &zip][..], &all].concat(), &env);
    assert_eq!(found.code, 0, "{}", found.stdout);
    assert_eq!(found_in(&found), ["sa-east-1"], "ap-east-1 is not enabled for the account");
    opt_in.account.enable_region().region_name("ap-east-1").send().await.unwrap();
    let found = harness.run_with(&[&["status", "--zip", &zip][..], &all].concat(), &env);
    assert_eq!(found_in(&found), ["sa-east-1", "ap-east-1"]);
    // Without --yes and a terminal: one refusal naming both regions, nothing deleted.
    let unasked = harness.run_with(&["down", "--all-regions"], &env);
    assert_eq!(unasked.code, 2, "{}", unasked.stderr);
    assert!(unasked.stderr.contains("in sa-east-1, ap-east-1; pass --yes"), "{}", unasked.stderr);
    assert_eq!(function_names(&opt_in).await, ["token-server"]);
    assert_eq!(function_names(&harness.aws("sa-east-1").await).await, ["token-server"]);
    let removed = harness.run_with(&[&["down", "--yes"][..], &all].concat(), &env);
    removed.assert_success();
    assert_eq!(found_in(&removed), ["sa-east-1", "ap-east-1"]);
    assert!(function_names(&harness.aws("sa-east-1").await).await.is_empty());
    assert!(function_names(&opt_in).await.is_empty());
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
    let zip = function_zip().to_str().unwrap().to_string();
    // Every call signed for eu-west-1 answers 503, is throttled, or is never answered: a region
    // in trouble. Each on a stack of its own.
    let troubles = [
        ("unavailable", Effect::Error(ErrorKind::Unavailable), "503"),
        ("throttled", Effect::Error(ErrorKind::Throttling), "busy"),
        ("unanswered", Effect::Hang, "cannot reach"),
    ];
    for (name, effect, says) in troubles {
        let troubled = |call: &Call| call.region == "eu-west-1";
        let rules = vec![Rule::first(troubled, usize::MAX, effect)];
        let proxy = FaultProxy::start_with(&harness.moto.endpoint(), rules).await.unwrap();
        let args = ["up", "--output", "json", "--zip", &zip, "--name", name, "--region", THREE];
        let faulted = harness.run_through(&proxy, &args).await;
        assert_eq!(faulted.code, 1, "{name}: {}", faulted.stderr);
        let results = by_region(&faulted);
        assert_eq!(results.iter().map(|(_, code, _)| *code).collect::<Vec<_>>(), [0, 1, 0], "{name}");
        let said: Vec<&str> = faulted.stderr.lines().filter(|line| line.starts_with("error: ")).collect();
        assert_eq!(said.len(), 1, "{name}: one line for the failed region: {}", faulted.stderr);
        assert!(said[0].starts_with("error: eu-west-1: ") && said[0].contains(says), "{name}: {}", said[0]);
        drop(proxy);

        let again = harness.up(&["--name", name, "--region", THREE]);
        again.assert_success();
        let results = by_region(&again);
        let changing: Vec<bool> = results.iter().map(|(_, _, result)| !changed(result).is_empty()).collect();
        assert_eq!(changing, [false, true, false], "{name}: only the failed region changes");
        assert_eq!(harness.status(&["--name", name, "--region", THREE]).code, 0, "{name}");
    }
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

/// What `up` over [`THREE`] draws on a pseudo-terminal (util-linux's `script` gives the run one
/// of its own and copies what it drew), with TERM as given (`None`: unset).
async fn drawn_on_a_terminal(harness: &Harness, term: Option<&str>) -> String {
    let mut env = harness.env();
    let zip = function_zip().to_str().unwrap();
    let args = [env!("CARGO_BIN_EXE_tokendeploy"), "up", "--zip", zip, "--region", THREE];
    let line: Vec<String> = args.iter().map(|arg| shlex::try_quote(arg).unwrap().into_owned()).collect();
    env.push(("PATH".into(), std::env::var("PATH").unwrap()));
    env.extend(term.map(|term| ("TERM".to_string(), term.to_string())));
    let mut command = std::process::Command::new("script");
    command.args(["-qec", &line.join(" "), "/dev/null"]).env_clear().envs(env);
    let drawn = tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
    String::from_utf8_lossy(&drawn.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn on_a_terminal_each_region_has_a_line_that_ends_done_or_failed() {
    let harness = Harness::start();
    foreign_function(&harness.aws("eu-west-1").await, "token-server").await;
    let drawn = drawn_on_a_terminal(&harness, Some("xterm-256color")).await;
    // Each region's line, last drawn: its name, then how it ended.
    for (region, end) in
        [("us-west-1", "✔ done"), ("eu-west-1", "✘ failed (below)"), ("ap-southeast-2", "✔ done")]
    {
        assert!(drawn.contains(&format!("{region:<17} {end}")), "{region} {end}: {drawn:?}");
    }
    assert!(drawn.contains("\u{1b}[1A"), "lines redrawn in place, as a terminal shows them: {drawn:?}");
    assert!(drawn.contains("error: eu-west-1: "), "{drawn:?}");
    assert_eq!(drawn.matches("us-west-1: http://").count(), 1, "one result a region: {drawn:?}");
    // A terminal that cannot redraw (TERM dumb or unset) gets the lines a pipeline gets.
    for term in [Some("dumb"), None] {
        let drawn = drawn_on_a_terminal(&harness, term).await;
        assert!(!drawn.contains("\u{1b}[1A"), "TERM {term:?}: {drawn:?}");
        for region in ["us-west-1", "ap-southeast-2"] {
            let told = drawn.lines().filter(|line| line.starts_with(&format!("{region:<15} "))).count();
            assert!(told >= 10, "TERM {term:?}: a line a step of {region}: {drawn:?}");
        }
        assert!(drawn.contains("error: eu-west-1: "), "TERM {term:?}: {drawn:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn all_regions_refused_the_account_s_regions_or_a_region_s_read_deletes_nothing_and_says_why() {
    let harness = Harness::start();
    harness.up(&["--region", "sa-east-1"]).assert_success();
    harness.up(&["--region", "eu-west-1"]).assert_success();
    let sa = harness.aws("sa-east-1").await;
    let denied =
        ErrorKind::custom(403, "AccessDeniedException", "not authorized to perform account:ListRegions");
    let cases = [
        (
            Rule::first(|call: &Call| call.service == "account", usize::MAX, Effect::Error(denied)),
            "account:ListRegions",
        ),
        // A region that answers the discovery, then fails the read of its stack.
        (
            Rule::first(
                |call: &Call| call.region == "eu-west-1" && call.service == "lambda",
                usize::MAX,
                Effect::Error(ErrorKind::Unavailable),
            ),
            "in eu-west-1: ",
        ),
    ];
    for (rule, says) in cases {
        let proxy = FaultProxy::start_with(&harness.moto.endpoint(), vec![rule]).await.unwrap();
        let run = harness.run_through(&proxy, &["down", "--yes", "--all-regions"]).await;
        assert_eq!(run.code, 1, "{says}: {}", run.stderr);
        let said: Vec<&str> = run.stderr.lines().filter(|line| line.starts_with("error: ")).collect();
        assert_eq!(said.len(), 1, "{says}: one line: {}", run.stderr);
        assert!(said[0].contains(says), "{says}: {}", said[0]);
        // ListRegions is a POST that reads; every other call must read too.
        let changing: Vec<String> = proxy
            .calls()
            .into_iter()
            .filter(|call| call.mutating && call.service != "account")
            .map(|call| call.operation)
            .collect();
        assert!(changing.is_empty(), "{says}: nothing deleted, but {changing:?}");
    }
    assert_eq!(function_names(&sa).await, ["token-server"]);
}
