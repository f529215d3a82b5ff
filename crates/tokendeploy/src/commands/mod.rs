//! One module per subcommand, and what they share: connecting, and finding the code.

mod down;
mod init;
mod logs;
mod package;
mod plan;
mod serve;
mod status;
mod up;
mod verify;

use std::path::PathBuf;

use anyhow::Result;
use tokendeploy_deploy::desired::{FunctionEnvironment, Gateway, JwtAuthorizer, Security};
use tokendeploy_deploy::resources::{function_url, http_api};
use tokendeploy_deploy::{Aws, ConnectOptions, Stack, discover};
use tokendeploy_package::{Arch, CodeSource, find_function_dir, read_zip};

use crate::cli::{AwsArgs, Cli, CodeArgs, Command, OutputFormat, SecurityArgs};
use crate::embedded;
use crate::{Outcome, UsageError};

pub async fn run(cli: Cli) -> Result<Outcome> {
    match cli.command {
        Command::Init(args) => init::run(args).await,
        Command::Up(args) => up::run(args).await,
        Command::Plan(args) => plan::run(args).await,
        Command::Status(args) => status::run(args).await,
        Command::Down(args) => down::run(args).await,
        Command::Package(args) => package::run(args).await,
        Command::Verify(args) => verify::run(args).await,
        Command::Logs(args) => logs::run(args).await,
        Command::Serve(args) => serve::run(args).await,
    }
}

/// How the command prints its result (and, as JSON, a failure).
pub fn output_format(command: &Command) -> OutputFormat {
    match command {
        Command::Init(args) => args.output.output,
        Command::Up(args) => args.deploy.output.output,
        Command::Plan(args) => args.output.output,
        Command::Status(args) => args.deploy.output.output,
        Command::Down(args) => args.output.output,
        Command::Package(args) => args.output.output,
        Command::Verify(args) => args.output.output,
        Command::Logs(args) => args.output,
        Command::Serve(_) => OutputFormat::Text,
    }
}

/// What a command stopped by a signal leaves, and how to finish it: said on one line (exit 1).
/// `None` for those that run until a signal by design (`serve`, `logs --follow`).
pub fn if_interrupted(command: &Command) -> Option<&'static str> {
    match command {
        Command::Up(_) => Some(
            "up stopped part way; the stack may be half made: run up again to finish it, or down to remove what was made",
        ),
        Command::Down(_) => {
            Some("down stopped part way; some of the stack may be left: run down again to remove the rest")
        }
        Command::Package(_) => Some("package stopped before it wrote its zip"),
        Command::Init(_) => Some("init stopped; its file may be part written: run init --force again"),
        Command::Plan(_) | Command::Status(_) | Command::Verify(_) => Some("nothing was changed"),
        Command::Logs(_) | Command::Serve(_) => None,
    }
}

/// Where the code to deploy comes from, and a line saying so: `--zip`, read and checked now;
/// `--build`, this checkout's function/ built now; else the function this CLI version carries,
/// or, in a build that carries none (a checkout's own debug build), function/ built now. A
/// wrong path or a bad zip is a usage error before any AWS call.
/// `quiet`: cargo says only its errors.
fn code_source(code: &CodeArgs, arch: Arch, quiet: bool) -> Result<(CodeSource, String)> {
    if let Some(path) = &code.zip {
        let artifact = read_zip(path, arch).map_err(|e| UsageError(format!("{e:#}")))?;
        return Ok((CodeSource::Zip(artifact), format!("code: {} ({arch})", path.display())));
    }
    if !code.build
        && let Some(artifact) = embedded::function(arch)
    {
        let version = env!("CARGO_PKG_VERSION");
        return Ok((
            CodeSource::Zip(artifact),
            format!("code: the function tokendeploy {version} carries ({arch})"),
        ));
    }
    let function_dir = function_dir()?;
    let told = format!("code: {} built now ({arch})", function_dir.display());
    Ok((CodeSource::Build { function_dir, quiet, arch }, told))
}

fn function_dir() -> Result<PathBuf> {
    find_function_dir(&std::env::current_dir()?).map_err(|e| UsageError(format!("{e:#}")).into())
}

/// How `up` and `plan` guard the stack: the flags checked against each other and, behind a
/// function URL, the allowed origins against what its CORS takes, behind an HTTP API the
/// issuer its JWT authorizer asks for keys; before any AWS call.
fn security(args: &SecurityArgs, environment: &FunctionEnvironment) -> Result<Security> {
    let security = args.security()?;
    let origins = environment.variables.get("ALLOWED_ORIGINS");
    let refusal = match security.gateway {
        Gateway::Url => origins.and_then(|origins| function_url::origins_refusal(origins)),
        Gateway::Http => JwtAuthorizer::wanted(environment, &security)
            .and_then(|authorizer| http_api::issuer_refusal(&authorizer.issuer)),
        Gateway::Rest => None,
    };
    match refusal {
        Some(refusal) => Err(UsageError(refusal).into()),
        None => Ok(security),
    }
}

/// `--all-regions`: what `ask` finds of the stack in each region enabled for the account
/// ([`discover::find_stack`]), for the regions where it finds something, in the order AWS lists
/// them.
pub(crate) async fn find_stack<T>(
    args: &AwsArgs,
    ask: impl AsyncFn(Aws, Stack) -> Result<Option<T>>,
) -> Result<Vec<(String, T)>> {
    // Where the account's regions are listed from: the profile's region, else (none set
    // anywhere, which --all-regions must not require) us-east-1.
    let home = match connect(args, args.region.clone()).await {
        Ok((home, _)) => home,
        Err(_) => connect(args, Some("us-east-1".into())).await?.0,
    };
    discover::find_stack(&home, async |region| {
        let (aws, stack) = connect(args, Some(region)).await?;
        ask(aws, stack).await
    })
    .await
}

/// Clients for `region` (else the profile's), and the stack checked against it; no AWS call
/// yet.
async fn connect(args: &AwsArgs, region: Option<String>) -> Result<(Aws, Stack)> {
    let options =
        ConnectOptions { region, profile: args.profile.clone(), endpoint_url: args.endpoint_url.clone() };
    let aws = Aws::connect(&options).await.map_err(|e| UsageError(format!("{e:#}")))?;
    let stack = Stack::new(&args.name, &aws.region).map_err(|e| UsageError(format!("{e:#}")))?;
    Ok((aws, stack))
}
