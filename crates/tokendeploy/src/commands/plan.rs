use anyhow::Result;
use serde::Serialize;
use tokendeploy_deploy::Summary;
use tokendeploy_deploy::up::prepare;

use crate::Outcome;
use crate::cli::DeployArgs;
use crate::commands::{code_source, connect, security};
use crate::display::{Console, print_result};
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
    let (aws, stack) = connect(&args.aws).await?;
    let console = Console::new(&args.output);
    console.tell(&code_line);
    let prepared =
        prepare(&aws, &stack, |_| environment, security, move || source.artifact(), &console).await;
    console.clear();
    let prepared = prepared?;
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
    print_result(args.output.output, &report, |report| {
        let lines = report.changes.iter().map(|c| format!("{:<10} {:<17} {}", c.action, c.name, c.reason));
        lines.collect::<Vec<_>>().join("\n")
    })?;
    Ok(Outcome::Done)
}
