use anyhow::Result;
use serde::Serialize;
use tokendeploy_deploy::up::prepare;
use tokendeploy_deploy::{Progress, Summary};
use tokendeploy_package::CodeSource;

use crate::Outcome;
use crate::cli::DeployArgs;
use crate::commands::{code_source, connect, security};
use crate::regions::{self, Finished};
use crate::settings::function_environment;

/// What `plan --output json` prints.
#[derive(Serialize)]
struct PlanReport {
    name: String,
    region: String,
    /// `up` would change nothing.
    in_sync: bool,
    changes: Vec<PlannedStep>,
}

#[derive(Serialize)]
struct PlannedStep {
    name: &'static str,
    /// `create`, `update` or `no change`.
    action: &'static str,
    reason: String,
}

/// `up`'s own preparation, stopped before the first change: the two cannot disagree.
pub async fn run(args: DeployArgs) -> Result<Outcome> {
    let environment = function_environment(args.settings.env_file.as_deref(), args.flags())?;
    let security = security(&args.security, &environment)?;
    let (source, code_line) = code_source(&args.code, args.arch.into(), true)?;
    let regions = regions::parse(args.aws.region.as_deref(), &args.aws.name)?;
    let in_region = async |region, source: CodeSource, progress: &dyn Progress, tell: &dyn Fn(&str)| {
        let (aws, stack) = connect(&args.aws, region).await?;
        tell(&code_line);
        let environment = environment.clone();
        let prepared =
            prepare(&aws, &stack, |_| environment, security, move || source.artifact(), progress).await?;
        prepared.snapshot.refuse_foreign(&stack, prepared.desired.secret.is_some())?;
        let plan = prepared.plan;
        let changes: Vec<PlannedStep> = plan
            .summaries()
            .into_iter()
            .map(|(step, Summary { action, reason })| PlannedStep {
                name: step.name(),
                action: action.planned(),
                reason,
            })
            .collect();
        let report = PlanReport {
            name: stack.name.clone(),
            region: stack.region.clone(),
            in_sync: plan.is_unchanged(),
            changes,
        };
        Finished::of(Outcome::Done, &report, |report| {
            let lines =
                report.changes.iter().map(|c| format!("{:<10} {:<17} {}", c.action, c.name, c.reason));
            lines.collect::<Vec<_>>().join("\n")
        })
    };
    regions::run(regions, &args.output, source, in_region).await
}
