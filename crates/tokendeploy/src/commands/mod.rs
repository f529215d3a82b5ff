//! One function per subcommand.

use std::path::PathBuf;

use anyhow::Result;
use tokendeploy_deploy::up::up;
use tokendeploy_deploy::{Aws, ConnectOptions, Stack};
use tokendeploy_package::{CodeSource, find_function_dir};

use crate::UsageError;
use crate::cli::{AwsArgs, Cli, Command, OutputFormat, PackageArgs, UpArgs};
use crate::display::{Console, print_json};
use crate::settings::function_environment;

pub async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Up(args) => run_up(args).await,
        Command::Package(args) => run_package(args).await,
    }
}

async fn run_up(args: UpArgs) -> Result<()> {
    // Everything the user can get wrong is checked before the first AWS call.
    let environment = function_environment(args.env_file.as_deref())?;
    let source = code_source(args.zip.clone())?;
    let (aws, stack) = connect(&args.aws).await?;
    let display = Console::new(&args.output);
    let report = up(
        &aws,
        &stack,
        environment,
        move || source.artifact(),
        &display,
    )
    .await;
    display.clear();
    let report = report?;
    match args.output.output {
        OutputFormat::Text => println!("{}", report.invoke_url),
        OutputFormat::Json => print_json(&report)?,
    }
    Ok(())
}

async fn run_package(args: PackageArgs) -> Result<()> {
    let source = CodeSource::Build {
        function_dir: function_dir()?,
        quiet: args.output.quiet,
    };
    let artifact = tokio::task::spawn_blocking(move || source.artifact()).await??;
    let out = args.out;
    artifact.write_to(&out)?;
    match args.output.output {
        OutputFormat::Text => println!("{}", out.display()),
        OutputFormat::Json => print_json(&serde_json::json!({
            "path": out,
            "bytes": artifact.bytes.len(),
            "code_sha256": artifact.code_sha256,
        }))?,
    }
    Ok(())
}

/// `--zip`, or `function/` to build (found now, so a wrong directory is a usage error before
/// any AWS call).
fn code_source(zip: Option<PathBuf>) -> Result<CodeSource> {
    match zip {
        Some(path) if path.is_file() => Ok(CodeSource::Zip(path)),
        Some(path) => Err(UsageError(format!("--zip {}: no such file", path.display())).into()),
        None => Ok(CodeSource::Build {
            function_dir: function_dir()?,
            quiet: true,
        }),
    }
}

fn function_dir() -> Result<PathBuf> {
    find_function_dir(&std::env::current_dir()?).map_err(|e| UsageError(format!("{e:#}")).into())
}

async fn connect(args: &AwsArgs) -> Result<(Aws, Stack)> {
    let options = ConnectOptions {
        region: args.region.clone(),
        profile: args.profile.clone(),
        endpoint_url: args.endpoint_url.clone(),
    };
    let aws = Aws::connect(&options)
        .await
        .map_err(|e| UsageError(format!("{e:#}")))?;
    let stack = Stack::new(&args.name, &aws.region).map_err(|e| UsageError(format!("{e:#}")))?;
    Ok((aws, stack))
}
