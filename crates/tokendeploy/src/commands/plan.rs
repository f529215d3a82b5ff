use anyhow::Result;
use serde::Serialize;
use tokendeploy_deploy::up::prepare;
use tokendeploy_deploy::{Change, Step};

use crate::cli::{DeployArgs, OutputFormat};
use crate::commands::{code_source, connect};
use crate::display::{Console, print_json};
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
pub async fn run(args: DeployArgs) -> Result<()> {
    let environment = function_environment(args.env_file.as_deref())?;
    let source = code_source(args.zip.clone())?;
    let (aws, stack) = connect(&args.aws).await?;
    let console = Console::new(&args.output);
    let prepared = prepare(&aws, &stack, |_| environment, move || source.artifact(), &console).await;
    console.clear();
    let plan = prepared?.plan;
    let changes: Vec<PlannedStep> = Step::ALL
        .iter()
        .map(|step| {
            let Change { action, reason } = plan.change(*step).clone();
            PlannedStep { name: step.name(), action: action.planned(), reason }
        })
        .collect();
    match args.output.output {
        OutputFormat::Text => {
            for change in &changes {
                println!("{:<10} {:<15} {}", change.action, change.name, change.reason);
            }
        }
        OutputFormat::Json => print_json(&PlanReport {
            name: stack.name.clone(),
            region: stack.region.clone(),
            in_sync: plan.is_unchanged(),
            changes,
        })?,
    }
    Ok(())
}
