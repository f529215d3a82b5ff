use anyhow::Result;
use tokendeploy_deploy::status::{environment_to_compare, status};
use tokendeploy_deploy::up::prepare;

use crate::cli::{DeployArgs, OutputFormat};
use crate::commands::{code_source, connect};
use crate::display::{Console, print_json};
use crate::settings::{ALWAYS_SET, known_environment};

/// A stack that is incomplete or drifted: exit 3, told apart from a failure (1).
#[derive(Debug)]
pub struct OutOfSync;

impl std::fmt::Display for OutOfSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the stack is incomplete or differs from what up would make")
    }
}

impl std::error::Error for OutOfSync {}

pub async fn run(args: DeployArgs) -> Result<()> {
    let known = known_environment(args.env_file.as_deref())?;
    let source = code_source(args.zip.clone())?;
    let (aws, stack) = connect(&args.aws).await?;
    let console = Console::new(&args.output);
    let environment = |observed: &_| environment_to_compare(known, &ALWAYS_SET, observed);
    let prepared = prepare(&aws, &stack, environment, move || source.artifact(), &console).await;
    console.clear();
    let report = status(&prepared?);
    match args.output.output {
        OutputFormat::Json => print_json(&report)?,
        OutputFormat::Text => {
            let state = match (report.complete, report.in_sync) {
                (_, true) => "complete and in sync",
                (true, false) => "complete, but differs from what up would make",
                (false, _) => "incomplete",
            };
            println!("stack {} in {}: {state}", report.name, report.region);
            for resource in &report.resources {
                println!("  {:<15} {}", resource.kind, resource.id.as_deref().unwrap_or("-- missing"));
            }
            for drift in &report.drift {
                println!("  drift: {}: {}", drift.kind, drift.reason);
            }
            if let Some(url) = &report.invoke_url {
                println!("invoke URL: {url}");
            }
        }
    }
    if report.in_sync { Ok(()) } else { Err(OutOfSync.into()) }
}
