//! One module per subcommand, and what they share: connecting, and finding the code.

mod down;
mod package;
mod plan;
mod serve;
mod status;
mod up;

use std::path::{Path, PathBuf};

use anyhow::Result;
use tokendeploy_deploy::{Aws, ConnectOptions, Stack};
use tokendeploy_package::{CodeSource, find_function_dir, read_zip};

use crate::cli::{AwsArgs, Cli, Command};
use crate::{Outcome, UsageError};

pub async fn run(cli: Cli) -> Result<Outcome> {
    match cli.command {
        Command::Up(args) => up::run(args).await,
        Command::Plan(args) => plan::run(args).await,
        Command::Status(args) => status::run(args).await,
        Command::Down(args) => down::run(args).await,
        Command::Package(args) => package::run(args).await,
        Command::Serve(args) => serve::run(args).await,
    }
}

/// `--zip`, read and checked now, or `function/` to build (found now): either way a wrong
/// path or a bad zip is a usage error before any AWS call.
fn code_source(zip: Option<&Path>) -> Result<CodeSource> {
    match zip {
        Some(path) => read_zip(path).map(CodeSource::Zip).map_err(|e| UsageError(format!("{e:#}")).into()),
        None => Ok(CodeSource::Build { function_dir: function_dir()?, quiet: true }),
    }
}

fn function_dir() -> Result<PathBuf> {
    find_function_dir(&std::env::current_dir()?).map_err(|e| UsageError(format!("{e:#}")).into())
}

/// Clients for the region, and the stack checked against it; no AWS call yet.
async fn connect(args: &AwsArgs) -> Result<(Aws, Stack)> {
    let options = ConnectOptions {
        region: args.region.clone(),
        profile: args.profile.clone(),
        endpoint_url: args.endpoint_url.clone(),
    };
    let aws = Aws::connect(&options).await.map_err(|e| UsageError(format!("{e:#}")))?;
    let stack = Stack::new(&args.name, &aws.region).map_err(|e| UsageError(format!("{e:#}")))?;
    Ok((aws, stack))
}
