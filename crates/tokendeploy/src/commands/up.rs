use anyhow::Result;

use crate::cli::{DeployArgs, OutputFormat};
use crate::commands::{code_source, connect};
use crate::display::{Console, print_json};
use crate::settings::function_environment;

pub async fn run(args: DeployArgs) -> Result<()> {
    // Everything the user can get wrong is checked before the first AWS call.
    let environment = function_environment(args.env_file.as_deref())?;
    let source = code_source(args.zip.clone())?;
    let (aws, stack) = connect(&args.aws).await?;
    let console = Console::new(&args.output);
    let report =
        tokendeploy_deploy::up::up(&aws, &stack, environment, move || source.artifact(), &console).await;
    console.clear();
    let report = report?;
    match args.output.output {
        OutputFormat::Text => println!("{}", report.invoke_url),
        OutputFormat::Json => print_json(&report)?,
    }
    Ok(())
}
