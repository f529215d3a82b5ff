//! What a bad network and a busy AWS do to `up` and `down`, through the loopback fault proxy
//! in front of moto: every AWS call in turn answered with a 500, a 503, a throttle or a
//! dropped connection; every creating call's answer lost after it took effect; an endpoint
//! that never answers.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::support::*;
use tokendeploy_testkit::fault_proxy::{Call, Effect, ErrorKind, FaultProxy, Rule};

/// Each AWS call a command makes, by service and operation, with how often it is made.
/// The function and API chains interleave differently each run, so a call is named by its
/// operation and occurrence, never by its place in the whole sequence.
pub(crate) fn distinct_calls(calls: &[Call], only_mutating: bool) -> Vec<(String, String, usize)> {
    let mut counts: BTreeMap<(String, String), usize> = BTreeMap::new();
    for call in calls.iter().filter(|c| !only_mutating || c.mutating) {
        *counts.entry((call.service.clone(), call.operation.clone())).or_default() += 1;
    }
    counts
        .into_iter()
        .flat_map(|((service, operation), n)| (1..=n).map(move |k| (service.clone(), operation.clone(), k)))
        .collect()
}

pub(crate) fn rule(service: &str, operation: &str, occurrence: usize, effect: Effect) -> Rule {
    let (service, operation) = (service.to_string(), operation.to_string());
    Rule::nth(move |call: &Call| call.is(&service, &operation), occurrence, effect)
}

/// A transient fault, named, and how to make its effect.
pub(crate) type Transient = (&'static str, fn() -> Effect);

pub(crate) const TRANSIENT: [Transient; 4] = [
    ("500", || Effect::Error(ErrorKind::Internal)),
    ("503", || Effect::Error(ErrorKind::Unavailable)),
    ("throttle", || Effect::Error(ErrorKind::Throttling)),
    ("dropped connection", || Effect::Drop),
];

fn up_args<'a>(zip: &'a str, name: &'a str) -> Vec<&'a str> {
    vec!["up", "--output", "json", "--zip", zip, "--name", name]
}

/// The calls a fresh `up` of stack `name` makes, seen through a recording proxy.
async fn calls_of_a_fresh_up(harness: &Harness, name: &str) -> Vec<Call> {
    let zip = function_zip().to_str().unwrap();
    let recorder = FaultProxy::recording(&harness.moto.endpoint()).await.unwrap();
    harness.run_through(&recorder, &up_args(zip, name)).await.assert_success();
    recorder.calls()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn up_recovers_from_a_transient_fault_at_each_of_its_calls() {
    let mut kinds = tokio::task::JoinSet::new();
    for (kind, effect) in TRANSIENT {
        kinds.spawn(async move {
            let harness = Harness::start();
            let calls = distinct_calls(&calls_of_a_fresh_up(&harness, "probe").await, false);
            let zip = function_zip().to_str().unwrap();
            for (i, (service, operation, k)) in calls.iter().enumerate() {
                let name = format!("f{i}");
                let proxy = FaultProxy::start_with(
                    &harness.moto.endpoint(),
                    vec![rule(service, operation, *k, effect())],
                )
                .await
                .unwrap();
                let run = harness.run_through(&proxy, &up_args(zip, &name)).await;
                let context = format!("{kind} at {service} {operation} #{k}");
                assert_eq!(run.code, 0, "{context}:\n{}", run.stderr);
                assert_eq!(proxy.injected(), 1, "{context}");
                run.assert_no_secret();
                assert_one_of_everything(&harness, &name, &context).await;
            }
            calls.len()
        });
    }
    let mut faults = 0;
    while let Some(count) = kinds.join_next().await {
        faults += count.unwrap();
    }
    eprintln!("up: {faults} transient faults injected, {faults} runs recovered");
    assert!(faults >= 4 * 20, "a fresh up makes at least 20 calls: {faults}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn a_lost_answer_to_any_creating_call_still_ends_with_one_of_everything() {
    let harness = Harness::start();
    let zip = function_zip().to_str().unwrap();
    let calls = distinct_calls(&calls_of_a_fresh_up(&harness, "probe").await, true);
    for (i, (service, operation, k)) in calls.iter().enumerate() {
        let name = format!("l{i}");
        let context = format!("answer to {service} {operation} #{k} lost");
        let proxy = FaultProxy::start_with(
            &harness.moto.endpoint(),
            vec![rule(service, operation, *k, Effect::LostReply)],
        )
        .await
        .unwrap();
        let run = harness.run_through(&proxy, &up_args(zip, &name)).await;
        assert_eq!(run.code, 0, "{context}:\n{}", run.stderr);
        assert_eq!(proxy.injected(), 1, "{context}");
        run.assert_no_secret();
        assert_one_of_everything(&harness, &name, &context).await;
        let again = harness.up(&["--name", &name]);
        again.assert_success();
        assert_eq!(again.actions(), all_unchanged(), "{context}: a following up changes nothing");
    }
    eprintln!("up: {} answers lost after the call took effect, all converged", calls.len());
    assert!(calls.len() >= 12, "{calls:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn down_recovers_from_a_transient_fault_at_each_of_its_calls() {
    let harness = Harness::start();
    harness.up(&["--name", "probe"]).assert_success();
    let recorder = FaultProxy::recording(&harness.moto.endpoint()).await.unwrap();
    harness.run_through(&recorder, &["down", "--yes", "--name", "probe"]).await.assert_success();
    let calls = distinct_calls(&recorder.calls(), false);
    let mut faults = 0;
    for (kind, effect) in TRANSIENT {
        for (i, (service, operation, k)) in calls.iter().enumerate() {
            let name = format!("d{i}");
            harness.up(&["--name", &name]).assert_success();
            let proxy = FaultProxy::start_with(
                &harness.moto.endpoint(),
                vec![rule(service, operation, *k, effect())],
            )
            .await
            .unwrap();
            let run = harness.run_through(&proxy, &["down", "--yes", "--name", &name]).await;
            let context = format!("{kind} at {service} {operation} #{k}");
            assert_eq!(run.code, 0, "{context}:\n{}", run.stderr);
            assert_eq!(proxy.injected(), 1, "{context}");
            let aws = harness.aws(REGION).await;
            assert!(!function_names(&aws).await.contains(&name), "{context}");
            assert!(!rest_apis(&aws).await.iter().any(|(_, n, _)| *n == name), "{context}");
            assert!(!role_names(&aws).await.iter().any(|r| r.starts_with(&format!("{name}-"))), "{context}");
            faults += 1;
        }
    }
    eprintln!("down: {faults} transient faults injected, {faults} runs recovered");
    assert!(calls.len() >= 8, "{calls:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn an_endpoint_that_never_answers_fails_within_the_bound_naming_it() {
    let harness = Harness::start();
    let proxy = FaultProxy::start_with(
        &harness.moto.endpoint(),
        vec![Rule::first(|_: &Call| true, 1000, Effect::Hang)],
    )
    .await
    .unwrap();
    let zip = function_zip().to_str().unwrap();
    let started = Instant::now();
    let run = harness.run_through(&proxy, &up_args(zip, "silent")).await;
    let took = started.elapsed();
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(took < Duration::from_secs(25), "took {took:?}");
    // The error is one line (after the line saying which code was to go out).
    let told: Vec<&str> = run.stderr.trim().lines().filter(|line| !line.starts_with("code: ")).collect();
    assert_eq!(told.len(), 1, "{}", run.stderr);
    let line = told[0];
    assert!(line.contains(&format!("cannot reach the AWS endpoint {}", proxy.endpoint())), "{line}");
    assert!(line.contains("timeout"), "{line}");
    run.assert_no_secret();
}

#[tokio::test]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn a_closed_port_fails_at_once_naming_the_endpoint_not_the_credentials() {
    let harness = Harness::start();
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let mut env = harness.env();
    env.retain(|(k, _)| k != "AWS_ENDPOINT_URL");
    env.push(("AWS_ENDPOINT_URL".into(), closed.clone()));
    function_zip(); // built before the clock starts
    let started = Instant::now();
    let run = harness.up_with(&[], &env);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    assert!(run.stderr.contains(&format!("cannot reach the AWS endpoint {closed}")), "{}", run.stderr);
    assert!(!run.stderr.contains("credentials"), "{}", run.stderr);
    // Asked for JSON (`up_with` asks), a pipeline gets the failure as JSON on stdout too.
    let error = &run.json()["error"];
    assert_eq!(error["kind"], "aws_call", "{}", run.stdout);
    let line = run.stderr.trim_end().lines().last().unwrap();
    assert_eq!(format!("error: {}", error["message"].as_str().unwrap()), line);
}

#[tokio::test]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn a_refused_rest_api_is_the_error_told_while_the_other_chain_waits_for_it() {
    let harness = Harness::start();
    let refused = ErrorKind::custom(400, "BadRequestException", "Invalid REST API name");
    let proxy = FaultProxy::start_with(
        &harness.moto.endpoint(),
        vec![Rule::first(
            |call: &Call| call.is("apigateway", "POST /restapis"),
            1000,
            Effect::Error(refused),
        )],
    )
    .await
    .unwrap();
    let zip = function_zip().to_str().unwrap();
    // The key step outlasts the refused API (it settles with twins' keys): the function chain
    // reaches the permission, which waits for the API, first.
    let mut args = up_args(zip, "refused");
    args.push("--api-key");
    let run = harness.run_through(&proxy, &args).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    let line = run.stderr.trim_end().lines().last().unwrap();
    assert!(line.contains("creating REST API") && line.contains("Invalid REST API name"), "{line}");
    assert_eq!(run.json()["error"]["kind"], "aws_call", "{}", run.stdout);
}
