//! The deployer as a library, against a moto server over HTTP: no CLI binary in between.

use std::collections::BTreeMap;
use std::sync::Mutex;

use aws_config::{BehaviorVersion, Region};
use tokendeploy_deploy::desired::Security;
use tokendeploy_deploy::up::prepare;
use tokendeploy_deploy::{Action, Aws, FunctionEnvironment, Progress, Silent, Stack, Step, StepReport};
use tokendeploy_package::{Artifact, zip_bootstrap};

pub const REGION: &str = "us-west-1";

/// Clients for `endpoint` (moto, or a fault proxy in front of it) with dummy credentials.
pub async fn aws_at(endpoint: &str) -> Aws {
    aws_in(endpoint, REGION).await
}

/// As [`aws_at`], for `region`.
pub async fn aws_in(endpoint: &str, region: &str) -> Aws {
    let credentials = aws_sdk_sts::config::Credentials::new("testing", "testing", None, None, "tests");
    let config = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .endpoint_url(endpoint)
        .credentials_provider(credentials)
        .load()
        .await;
    Aws::from_config(&config).unwrap()
}

pub fn stack(name: &str) -> Stack {
    Stack::new(name, REGION).unwrap()
}

/// The function's variables as the CLI would pass them.
pub fn environment() -> FunctionEnvironment {
    let variables = BTreeMap::from([
        ("ALLOWED_ORIGINS".to_string(), "https://app.example".to_string()),
        ("CONSUMER_KEY".to_string(), "key".to_string()),
        ("CONSUMER_SECRET".to_string(), "library-test-secret".to_string()),
    ]);
    FunctionEnvironment::new(variables, &["ALLOWED_ORIGINS", "CONSUMER_KEY", "CONSUMER_SECRET"])
}

/// A zip `up` deploys: moto stores the code without running it, so any bytes serve, and
/// different `version`s give different code.
pub fn artifact(version: &str) -> Artifact {
    zip_bootstrap(
        format!("\x7fELF stand-in bootstrap {version}").as_bytes(),
        tokendeploy_package::Arch::X86_64,
    )
    .unwrap()
}

/// Records what a run tells its progress display.
#[derive(Default)]
pub struct Notes {
    pub notes: Mutex<Vec<(Step, String)>>,
    pub finished: Mutex<Vec<StepReport>>,
}

impl Notes {
    /// The notes told during `step`.
    pub fn of(&self, step: Step) -> Vec<String> {
        let notes = self.notes.lock().unwrap();
        notes.iter().filter(|(s, _)| *s == step).map(|(_, note)| note.clone()).collect()
    }
}

impl Progress for Notes {
    fn started(&self, _: Step) {}
    fn note(&self, step: Step, message: &str) {
        self.notes.lock().unwrap().push((step, message.to_string()));
    }
    fn finished(&self, report: &StepReport) {
        self.finished.lock().unwrap().push(report.clone());
    }
}

/// The steps `up` would change now, with the code `artifact("one")`, and how.
pub async fn changes(
    aws: &Aws,
    stack: &Stack,
    environment: FunctionEnvironment,
    security: Security,
) -> Vec<(Step, Action)> {
    let prepared =
        prepare(aws, stack, |_| environment, security, || Ok(artifact("one")), &Silent).await.unwrap();
    let summaries = prepared.plan.summaries().into_iter();
    summaries.filter(|(_, s)| s.action != Action::Unchanged).map(|(step, s)| (step, s.action)).collect()
}
