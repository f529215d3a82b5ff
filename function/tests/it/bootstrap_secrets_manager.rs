//! The built `bootstrap` with its key and secret in Secrets Manager (`TOKEN_SECRET_ARN`), not in
//! its environment: moto holds the secret, a fault proxy in front of it counts the reads and
//! fails the ones a test picks, and the function runs against the loopback Runtime API.

use std::path::Path;
use std::time::Duration;

use crate::common::*;
use serde_json::json;
use token_function::config::SECRET_ARN;
use tokendeploy_testkit::fault_proxy::{Call, Effect, ErrorKind, FaultProxy, Rule};
use tokendeploy_testkit::moto::Moto;
use tokendeploy_testkit::runtime_api::RuntimeApi;
use wiremock::MockServer;

const WAIT: Duration = Duration::from_secs(30);
/// Where the Runtime API's Lambda environment runs the function.
const REGION: &str = "us-west-1";

fn get_secret_value(call: &Call) -> bool {
    call.is("secretsmanager", "GetSecretValue")
}

/// moto holding the app's key and secret, read through a fault proxy that applies `rules`;
/// the function running against `upstream` with only the secret's ARN in its environment.
struct Deployed {
    _moto: Moto,
    proxy: FaultProxy,
    arn: String,
    runtime: RuntimeApi,
    function: tokio::process::Child,
}

async fn deploy(upstream: &MockServer, rules: Vec<Rule>) -> Deployed {
    let moto = Moto::start().unwrap();
    let content = json!({ "CONSUMER_KEY": KEY, "CONSUMER_SECRET": SECRET }).to_string();
    let arn = moto.create_secret(REGION, "tokendeploy-test", &content).await.unwrap();
    let proxy = FaultProxy::start_with(&moto.endpoint(), rules).await.unwrap();
    let mut env = function_env(upstream);
    env.retain(|(name, _)| name != "CONSUMER_KEY" && name != "CONSUMER_SECRET");
    env.extend(
        [
            (SECRET_ARN, arn.clone()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_SESSION_TOKEN", "testing-session".into()),
            ("AWS_REGION", REGION.into()),
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", proxy.endpoint()),
        ]
        .map(|(name, value)| (name.to_string(), value)),
    );
    let runtime = RuntimeApi::start().await.unwrap();
    let function = spawn_bootstrap(Path::new(env!("CARGO_BIN_EXE_bootstrap")), &runtime, env);
    Deployed { _moto: moto, proxy, arn, runtime, function }
}

impl Deployed {
    /// Status and JSON body of the answer to `GET /token` from [`ORIGIN`], and its
    /// `Access-Control-Allow-Origin`.
    async fn get_token(&self) -> (u64, serde_json::Value, Option<String>) {
        let outcome = self.runtime.invoke(rest_event("GET", "/token", Some(ORIGIN)), WAIT).await.unwrap();
        let (status, headers, payload) = response_body(&outcome);
        (status, payload, headers["access-control-allow-origin"].as_str().map(str::to_string))
    }

    fn reads(&self) -> usize {
        self.proxy.calls().iter().filter(|call| get_secret_value(call)).count()
    }

    /// Stops the function; asserts that nothing it wrote holds the key or the secret.
    async fn stop_and_check_logs(self) {
        let logs = output_of(self.function).await;
        assert!(logs.contains("request served"), "the function logged:\n{logs}");
        for value in [KEY, SECRET, &basic_auth()] {
            assert!(!logs.contains(value), "the logs hold {value:?}:\n{logs}");
        }
    }
}

#[tokio::test]
#[ignore = "needs the emulator (moto): scripts/test.sh runs it"]
async fn takes_the_key_and_secret_from_secrets_manager_read_once() {
    let upstream = MockServer::start().await;
    // Matches only the key and secret from the secret, in Basic auth.
    token_request(VOXEET_PATH).respond_with(voxeet_token("from-the-secret")).expect(1).mount(&upstream).await;
    let deployed = deploy(&upstream, vec![]).await;

    for _ in 0..2 {
        let (status, payload, allow_origin) = deployed.get_token().await;
        assert_eq!((status, payload["access_token"].as_str()), (200, Some("from-the-secret")), "{payload}");
        assert_eq!(allow_origin.as_deref(), Some(ORIGIN));
    }
    assert_eq!(deployed.reads(), 1, "read once per warm instance");
    deployed.stop_and_check_logs().await;
}

#[tokio::test]
#[ignore = "needs the emulator (moto): scripts/test.sh runs it"]
async fn a_throttled_first_read_answers_503_and_the_next_request_reads_again() {
    let upstream = upstream_answering(voxeet_token("after-the-retry")).await;
    let throttled = Rule::first(get_secret_value, 1, Effect::Error(ErrorKind::Throttling));
    let deployed = deploy(&upstream, vec![throttled]).await;

    let (status, payload, allow_origin) = deployed.get_token().await;
    assert_eq!((status, payload["error"].as_str()), (503, Some("secret_unavailable")), "{payload}");
    let reason =
        format!("could not read the secret {}: Secrets Manager answered ThrottlingException", deployed.arn);
    assert!(payload["message"].as_str().unwrap().starts_with(&reason), "{payload}");
    assert_eq!(allow_origin.as_deref(), Some(ORIGIN), "the browser may read why");

    let (status, payload, _) = deployed.get_token().await;
    assert_eq!((status, payload["access_token"].as_str()), (200, Some("after-the-retry")), "{payload}");
    assert_eq!((deployed.proxy.injected(), deployed.reads()), (1, 2));
    deployed.stop_and_check_logs().await;
}
