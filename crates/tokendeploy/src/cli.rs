//! Arguments, as clap reads them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use tokendeploy_config::ProviderKind;
use tokendeploy_deploy::stack::DEFAULT_STACK_NAME;

#[derive(Debug, Parser)]
#[command(name = "tokendeploy", version, about = "Puts a secure token server on AWS in one command")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build the token function and create or update every resource of the stack.
    ///
    /// The app's key and secret are read from CONSUMER_KEY and CONSUMER_SECRET in the
    /// environment or in --env-file, never from a flag. ALLOWED_ORIGINS is required too;
    /// TOKEN_URL and TOKEN_PROVIDER are optional.
    Up(DeployArgs),
    /// Show what `up` would create or update, changing nothing.
    Plan(DeployArgs),
    /// Show what exists for the stack and how it differs from what `up` would make.
    ///
    /// Exits 0 when the stack is complete and in sync, 3 when it is not.
    Status(DeployArgs),
    /// Delete everything `up` made for the stack in the region, and nothing else.
    Down(DownArgs),
    /// Build the token function and write the deterministic zip that `up --zip` deploys.
    Package(PackageArgs),
    /// Serve tokens on this machine with the function's own handler, before anything touches AWS.
    ///
    /// The same variables (environment or --env-file), routes (/token, /prod/token), CORS,
    /// errors and cache as the deployed function. Ctrl-C stops it.
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
pub struct AwsArgs {
    /// The stack's name; every resource name derives from it.
    #[arg(long, default_value = DEFAULT_STACK_NAME)]
    pub name: String,
    /// AWS region; else AWS_REGION or the profile's region.
    #[arg(long)]
    pub region: Option<String>,
    /// Named profile from the AWS config files.
    #[arg(long)]
    pub profile: Option<String>,
    /// Send every AWS call to this endpoint (an emulator such as moto or LocalStack).
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
}

/// What `up` deploys; `plan` and `status` compare against the same.
#[derive(Debug, Args)]
pub struct DeployArgs {
    #[command(flatten)]
    pub aws: AwsArgs,
    #[command(flatten)]
    pub settings: SettingsArgs,
    /// The zip to deploy (from `tokendeploy package`) instead of a build of function/.
    #[arg(long)]
    pub zip: Option<PathBuf>,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The port to listen on (0: any free one, printed at start).
    #[arg(long, default_value_t = 3001)]
    pub port: u16,
    /// The address to listen on: loopback unless told otherwise.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: std::net::IpAddr,
    #[command(flatten)]
    pub settings: SettingsArgs,
    /// Also serve the example client page (examples/client) at /.
    #[arg(long)]
    pub client: bool,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    #[command(flatten)]
    pub aws: AwsArgs,
    /// Delete without asking. Required when standard input is not a terminal.
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct PackageArgs {
    /// Where to write the zip.
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct OutputArgs {
    /// text: only the result on stdout; json: one JSON object on stdout.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// No progress on stderr; errors are still shown.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

fn parse_provider(name: &str) -> Result<ProviderKind, String> {
    ProviderKind::parse(name).ok_or_else(|| format!("must be {}", ProviderKind::choices()))
}

/// Where the function's variables come from: shared by `up`, `plan`, `status` and `serve`.
#[derive(Debug, Args)]
pub struct SettingsArgs {
    /// A dotenv file with CONSUMER_KEY, CONSUMER_SECRET, ALLOWED_ORIGINS, ...; variables already
    /// in the environment take precedence.
    #[arg(long)]
    pub env_file: Option<PathBuf>,
    /// The token provider: dolby, oauth2, twilio or livekit [default: TOKEN_PROVIDER, else
    /// dolby]. Its variables come from the environment or --env-file, never from flags.
    #[arg(long, value_parser = parse_provider)]
    pub provider: Option<ProviderKind>,
    /// A web origin that may ask for tokens, such as https://app.example.com (repeatable;
    /// instead of ALLOWED_ORIGINS). `*` allows any, with a warning.
    #[arg(long = "allow-origin", value_name = "URL")]
    pub allow_origins: Vec<String>,
}

impl SettingsArgs {
    pub fn flags(&self) -> crate::settings::Flags<'_> {
        crate::settings::Flags { provider: self.provider, allow_origins: &self.allow_origins }
    }
}
