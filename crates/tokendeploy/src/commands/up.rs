use anyhow::Result;

use crate::Outcome;
use crate::abort::AbortAfter;
use crate::cli::DeployArgs;
use crate::commands::{code_source, connect};
use crate::display::{Console, print_result};
use crate::settings::{function_environment, warnings};

pub async fn run(args: DeployArgs) -> Result<Outcome> {
    // Everything the user can get wrong is checked before the first AWS call.
    let environment = function_environment(args.settings.env_file.as_deref(), args.settings.flags())?;
    let source = code_source(args.zip.as_deref())?;
    for warning in warnings(&environment) {
        eprintln!("{warning}");
    }
    let (aws, stack) = connect(&args.aws).await?;
    let console = Console::new(&args.output);
    let progress = AbortAfter::from_env(&console);
    let report =
        tokendeploy_deploy::up::up(&aws, &stack, environment, move || source.artifact(), &progress).await;
    console.clear();
    print_result(args.output.output, &report?, |report| report.invoke_url.clone())?;
    Ok(Outcome::Done)
}
