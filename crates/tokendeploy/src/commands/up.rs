use anyhow::Result;
use tokendeploy_deploy::Progress;
use tokendeploy_deploy::desired::{FunctionEnvironment, Security};
use tokendeploy_deploy::resources::rest_api::api_key;
use tokendeploy_deploy::up::UpReport;
use tokendeploy_package::{Artifact, CodeSource};

use crate::Outcome;
use crate::cli::UpArgs;
use crate::commands::{code_source, connect, security, verify};
use crate::display::say;
use crate::regions::{self, Finished};
use crate::settings::{function_environment, warnings};

pub async fn run(args: UpArgs) -> Result<Outcome> {
    // Everything the user can get wrong is checked before the first AWS call.
    let deploy = &args.deploy;
    let environment = function_environment(deploy.settings.env_file.as_deref(), deploy.flags())?;
    let checking = verify::options(&args.checking)?;
    let (source, code_line) = code_source(&deploy.code, deploy.arch.into(), true)?;
    let security = security(&deploy.security, &environment)?;
    let regions = regions::parse(deploy.aws.region.as_deref(), &deploy.aws.name)?;
    for warning in warnings(&environment) {
        say(&warning);
    }
    let asked = Asked { args: &args, environment, security, checking, code_line };
    let in_region = async |region, source: CodeSource, progress: &dyn Progress, tell: &dyn Fn(&str)| {
        asked.in_region(region, source, progress, tell).await
    };
    regions::run(regions, &deploy.output, source, in_region).await
}

/// What `up` was asked, checked.
struct Asked<'a> {
    args: &'a UpArgs,
    environment: FunctionEnvironment,
    security: Security,
    checking: tokendeploy_deploy::verify::VerifyOptions,
    /// Which code goes out, told once the region is known.
    code_line: String,
}

impl Asked<'_> {
    /// `up` in `region` (else the profile's): the stack converged, then, if asked, its key
    /// shown and its answers checked (telling its waits through `tell`).
    async fn in_region(
        &self,
        region: Option<String>,
        source: CodeSource,
        progress: &dyn Progress,
        tell: &dyn Fn(&str),
    ) -> Result<Finished> {
        let UpArgs { deploy: args, show_api_key, verify: and_verify, .. } = self.args;
        let (aws, stack) = connect(&args.aws, region).await?;
        tell(&self.code_line);
        let package = move || -> Result<Artifact> { source.artifact() };
        let environment = self.environment.clone();
        let report = tokendeploy_deploy::up::up(&aws, &stack, environment, self.security, package, progress);
        let mut report = report.await?;
        for note in &report.notes {
            say(&format!("note: {note}"));
        }
        if let (true, Some(id)) = (show_api_key, &report.api_key_id) {
            report.api_key = Some(api_key::value(&aws, id).await?);
        }
        if *and_verify {
            report.verify = Some(verify::check(&aws, &stack, &self.checking, tell).await?);
        }
        let outcome = report.verify.as_ref().map_or(Outcome::Done, verify::outcome);
        Finished::of(outcome, &report, text)
    }
}

fn text(report: &UpReport) -> String {
    let key = report.api_key.as_ref().map(|key| format!("\nx-api-key: {key}"));
    let verified = report.verify.as_ref().map(|checked| format!("\n{}", verify::text(checked)));
    format!("{}{}{}", report.invoke_url, key.unwrap_or_default(), verified.unwrap_or_default())
}
