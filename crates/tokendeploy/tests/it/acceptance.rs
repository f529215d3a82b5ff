//! The acceptance suite: a stack of a unique name deployed with `up --verify` and verified
//! through its real URL, `up` again (no change), switched to arm64 and to the secret store and
//! verified again, `status`, `down`, and nothing tagged left; the stack removed whatever happens.
//!
//! Against a real AWS account when `TOKENDEPLOY_ACCEPTANCE=aws` (credentials and region from the
//! environment, as any AWS tool takes them), as Terraform's AWS provider gates its acceptance
//! tests with `TF_ACC`; otherwise against the project's emulator, in the test command, so the
//! suite cannot rot. The provider is LiveKit with callers naming themselves (`IDENTITY_MODE=trust`,
//! the identity `tokendeploy-verify`): the token is minted in the function, so no upstream is
//! needed. CONTRIBUTING.md says how to run it and what it costs.

use std::process::{Command, Output};

use serde_json::Value;
use tokendeploy_deploy::snapshot;

use crate::support::*;

/// Where the suite runs.
enum Target {
    Emulator(Harness),
    Aws { region: String },
}

impl Target {
    /// From `TOKENDEPLOY_ACCEPTANCE`: `aws`, or unset for the emulator. On AWS, credentials and a
    /// region must be at hand before anything starts.
    async fn from_env() -> Self {
        match std::env::var("TOKENDEPLOY_ACCEPTANCE").as_deref() {
            Ok("aws") => {
                let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
                let Some(region) = config.region().map(|r| r.to_string()) else {
                    panic!(
                        "TOKENDEPLOY_ACCEPTANCE=aws needs a region: set AWS_REGION (or a profile's region)"
                    );
                };
                use aws_credential_types::provider::ProvideCredentials;
                let credentials = match config.credentials_provider() {
                    Some(provider) => {
                        provider.provide_credentials().await.map(drop).map_err(|e| e.to_string())
                    }
                    None => Err("no credentials provider".into()),
                };
                if let Err(why) = credentials {
                    panic!(
                        "TOKENDEPLOY_ACCEPTANCE=aws needs AWS credentials (environment, profile, SSO, web identity or an instance role), and found none: {why}"
                    );
                }
                Target::Aws { region }
            }
            Ok("") | Err(_) => Target::Emulator(Harness::start()),
            Ok(other) => {
                panic!("TOKENDEPLOY_ACCEPTANCE={other:?}: set it to aws, or unset it for the emulator")
            }
        }
    }

    fn region(&self) -> &str {
        match self {
            Target::Emulator(_) => REGION,
            Target::Aws { region } => region,
        }
    }

    /// `tokendeploy ARGS` with the app's settings (and, for the emulator, its endpoint and dummy
    /// credentials; on AWS, the caller's own).
    fn run(&self, args: &[&str]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tokendeploy"));
        command.args(args).current_dir(env!("CARGO_MANIFEST_DIR"));
        match self {
            Target::Emulator(harness) => {
                command
                    .env_clear()
                    .envs(harness.env())
                    .env("PATH", std::env::var_os("PATH").unwrap_or_default());
            }
            Target::Aws { region } => {
                command.env_remove("AWS_ENDPOINT_URL").env("AWS_REGION", region);
            }
        }
        let settings = [
            ("TOKEN_PROVIDER", "livekit"),
            ("LIVEKIT_API_KEY", "APIacceptance"),
            ("LIVEKIT_API_SECRET", "acceptance-test-only-secret-0123456789abcdef"),
            ("IDENTITY_MODE", "trust"),
            ("ALLOWED_ORIGINS", "https://acceptance.tokendeploy.invalid"),
        ];
        command.envs(settings).output().unwrap()
    }
}

/// Takes the stack down when dropped: the test passing, failing or panicking.
struct Teardown<'a> {
    target: &'a Target,
    name: String,
}

impl Drop for Teardown<'_> {
    fn drop(&mut self) {
        let down = self.target.run(&["down", "--yes", "--quiet", "--name", &self.name]);
        if !down.status.success() {
            eprintln!(
                "acceptance: down of {} failed; remove it with tokendeploy down --name {}: {}",
                self.name,
                self.name,
                String::from_utf8_lossy(&down.stderr)
            );
        }
    }
}

fn succeeded(output: &Output, what: &str) -> Value {
    let run = Run::from(output.clone());
    assert_eq!(run.code, 0, "{what}:\n{}\n{}", run.stdout, run.stderr);
    serde_json::from_str(&run.stdout).unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn a_stack_deploys_answers_converges_switches_and_leaves_nothing() {
    let target = Target::from_env().await;
    let name = format!("tdacc-{:08x}", std::process::id() ^ (rand_suffix() as u32));
    let teardown = Teardown { target: &target, name: name.clone() };
    let up = |extra: &[&str]| {
        let mut args = vec!["up", "--output", "json", "--quiet", "--verify", "--name", &name];
        args.extend_from_slice(extra);
        target.run(&args)
    };

    let made = succeeded(&up(&[]), "a fresh up --verify");
    assert_eq!(made["verify"]["ok"], true, "{made}");
    let again = succeeded(&up(&[]), "up again");
    let changed: Vec<&Value> =
        again["steps"].as_array().unwrap().iter().filter(|s| s["action"] != "unchanged").collect();
    assert!(changed.is_empty(), "a second up changes nothing: {changed:?}");
    let arm = succeeded(&up(&["--arch", "arm64"]), "up --arch arm64");
    assert_eq!((arm["architecture"].as_str(), arm["verify"]["ok"].as_bool()), (Some("arm64"), Some(true)));
    let stored =
        succeeded(&up(&["--arch", "arm64", "--secret-store", "secrets-manager"]), "the secret store");
    assert!(stored["secret_arn"].is_string() && stored["verify"]["ok"] == true, "{stored}");
    let status = target.run(&[
        "status",
        "--output",
        "json",
        "--name",
        &name,
        "--arch",
        "arm64",
        "--secret-store",
        "secrets-manager",
    ]);
    assert_eq!(succeeded(&status, "status")["in_sync"], true);

    drop(teardown);
    let aws = match &target {
        Target::Emulator(harness) => harness.aws(target.region()).await,
        Target::Aws { region } => {
            let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
                .region(aws_config::Region::new(region.clone()))
                .load()
                .await;
            tokendeploy_deploy::Aws::from_config(&config).unwrap()
        }
    };
    let stack = tokendeploy_deploy::Stack::new(&name, target.region()).unwrap();
    let left = snapshot::read(&aws, &stack).await.unwrap().found(&stack);
    assert!(left.is_empty(), "down left: {left:?}");
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

/// `TOKENDEPLOY_ACCEPTANCE=aws` on a machine without credentials: the suite stops before it
/// starts, saying what it needs.
#[test]
fn on_aws_the_suite_refuses_to_start_without_credentials() {
    let home = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("acceptance-no-credentials");
    std::fs::create_dir_all(&home).unwrap();
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "acceptance::a_stack_deploys_answers_converges_switches_and_leaves_nothing",
            "--exact",
            "--ignored",
        ])
        .env_clear()
        .envs([
            ("TOKENDEPLOY_ACCEPTANCE", "aws"),
            ("AWS_REGION", "us-west-1"),
            ("AWS_CONFIG_FILE", "/dev/null"),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ])
        .env("HOME", &home)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stdout).to_string() + &String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{said}");
    assert!(said.contains("TOKENDEPLOY_ACCEPTANCE=aws needs AWS credentials"), "{said}");
}
