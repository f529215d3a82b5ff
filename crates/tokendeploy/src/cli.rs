//! Arguments, as clap reads them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use tokendeploy_config::ProviderKind;
use tokendeploy_deploy::UsageError;
use tokendeploy_deploy::desired::{DEFAULT_RESERVED_CONCURRENCY, Gateway, SecretStore, Security, Throttle};
use tokendeploy_deploy::stack::DEFAULT_STACK_NAME;
use tokendeploy_package::Arch;

#[derive(Debug, Parser)]
#[command(
    name = "tokendeploy",
    version,
    about = "Puts a secure token server on AWS in one command",
    after_help = "Start with `tokendeploy init --provider dolby|oauth2|twilio|livekit` (an env file to fill in), \
                  then `tokendeploy up --region REGION --env-file token.env`. \
                  Guides: docs/ at https://github.com/tokendeploy/tokendeploy"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write an env file to start from, commented, for a token provider.
    ///
    /// The file lists the provider's variables with placeholders for your key and secret, and
    /// the web origins that may ask for tokens; fill it in, then pass it to `up` and `serve`
    /// with --env-file. It is written readable by you alone, and an existing file is left as it
    /// is unless --force.
    Init(InitArgs),
    /// Create or update every resource of the stack, and print the URL that serves tokens.
    ///
    /// Deploys the token function this tokendeploy version carries (or --zip, or --build) as a
    /// Lambda function, behind an API Gateway REST API by default (--gateway http or url for the
    /// cheaper ones), with its role, log group and invoke permission; a re-run converges and
    /// changes only what differs. The provider (--provider dolby, oauth2, twilio or livekit;
    /// default TOKEN_PROVIDER, else dolby) takes its key and secret from the environment or
    /// --env-file, never from a flag; `tokendeploy init --provider NAME` writes a file to start
    /// from, and docs/configuration.md lists every variable. ALLOWED_ORIGINS (or --allow-origin)
    /// is required.
    Up(UpArgs),
    /// Show what `up` would create or update, changing nothing.
    Plan(DeployArgs),
    /// Show what exists for the stack and how it differs from what `up` would make.
    ///
    /// Exits 0 when the stack is complete and in sync, 3 when it is not.
    Status(StatusArgs),
    /// Delete everything `up` made for the stack in the region (or regions), and nothing else.
    Down(DownArgs),
    /// Write the token function's zip, byte for byte what `up` deploys (`up --zip` takes it).
    ///
    /// The function this tokendeploy version carries, or, with --build, function/ of this
    /// checkout built now.
    Package(PackageArgs),
    /// Check that the deployed stack answers, through its URL, as the app will ask.
    ///
    /// A browser's CORS preflight from the first allowed origin, then a token request (with the
    /// stack's API key when it has one), checked against what the provider's function gives.
    /// Waits, in view, for what AWS documents as taking time. Exits 1, saying what answered and
    /// how (and the function's log lines when the function is at fault), when it does not.
    Verify(VerifyArgs),
    /// Show the function's log: a line a request (time, request id, status, latency, error).
    Logs(LogsArgs),
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
    /// AWS region, or several separated by commas (up, plan, status, down, verify and logs work
    /// on each side by side); else AWS_REGION or the profile's region.
    #[arg(long)]
    pub region: Option<String>,
    /// Named profile from the AWS config files.
    #[arg(long)]
    pub profile: Option<String>,
    /// Send every AWS call to this endpoint (an emulator such as moto or LocalStack).
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub deploy: DeployArgs,
    /// Print the API key's value: a second line of text, or `api_key` in the JSON. Only with
    /// --api-key; never shown otherwise.
    #[arg(long, requires = "api_key")]
    pub show_api_key: bool,
    /// Then check the stack answers, as `tokendeploy verify` does (exit 1 when it does not).
    #[arg(long)]
    pub verify: bool,
    #[command(flatten)]
    pub checking: VerifyFlags,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub aws: AwsArgs,
    #[command(flatten)]
    pub checking: VerifyFlags,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// How `verify` asks.
#[derive(Debug, Args)]
pub struct VerifyFlags {
    /// A file holding a caller's token from the app's sign-in, sent as `Authorization: Bearer`
    /// (for twilio and livekit with IDENTITY_MODE=jwt; without one, the 401 a caller without a
    /// sign-in gets is what is checked). Or TOKENDEPLOY_BEARER. Never a flag's value: argv is
    /// visible to every user of the machine.
    #[arg(long, value_name = "PATH")]
    pub bearer_file: Option<PathBuf>,
    /// How long to wait for a new API's host name and a new API key to work.
    #[arg(long, value_name = "SECONDS", default_value_t = 90, value_parser = clap::value_parser!(u64).range(0..=900))]
    pub wait: u64,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    #[command(flatten)]
    pub aws: AwsArgs,
    /// How far back to start: 30s, 10m, 2h or 1d.
    #[arg(long, value_name = "AGE", default_value = "10m", value_parser = parse_age)]
    pub since: std::time::Duration,
    /// Keep showing new lines until Ctrl-C.
    #[arg(long)]
    pub follow: bool,
    /// text: a line a request; json: a JSON object a line.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

/// `30s`, `10m`, `2h` or `1d`: from a second up to 14 days (CloudWatch Logs keeps the function's
/// log 30 days; more is not worth a read).
fn parse_age(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let unit = text.chars().last().ok_or("must be a number and a unit, such as 10m")?;
    let seconds: u64 = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return Err("must end in s, m, h or d, such as 10m".into()),
    };
    let amount: u64 =
        text[..text.len() - 1].parse().map_err(|_| "must be a whole number and a unit, such as 10m")?;
    match amount.checked_mul(seconds) {
        Some(total) if (1..=14 * 86_400).contains(&total) => Ok(std::time::Duration::from_secs(total)),
        _ => Err("must be from 1s to 14d".into()),
    }
}

/// What `up` deploys; `plan` and `status` compare against the same.
#[derive(Debug, Args)]
pub struct DeployArgs {
    #[command(flatten)]
    pub aws: AwsArgs,
    #[command(flatten)]
    pub settings: SettingsArgs,
    #[command(flatten)]
    pub security: SecurityArgs,
    #[command(flatten)]
    pub code: CodeArgs,
    /// The CPU the function runs on: x86_64, or arm64 (Graviton: about 20% cheaper per
    /// GB-second). Switching updates the function in place.
    #[arg(long, value_enum, default_value_t = ArchArg::X86_64)]
    pub arch: ArchArg,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Which code goes out: by default the function this tokendeploy version carries.
#[derive(Debug, Args)]
pub struct CodeArgs {
    /// A zip made by `tokendeploy package` instead.
    #[arg(long, conflicts_with = "build")]
    pub zip: Option<PathBuf>,
    /// Build function/ of this checkout instead (for changes to the function).
    #[arg(long)]
    pub build: bool,
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
pub struct StatusArgs {
    #[command(flatten)]
    pub deploy: DeployArgs,
    /// Every region enabled for the account where the stack has anything, in place of
    /// --region: one listing of the account's regions, then each read side by side.
    #[arg(long, conflicts_with = "region")]
    pub all_regions: bool,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    #[command(flatten)]
    pub aws: AwsArgs,
    /// Every region enabled for the account where the stack has anything, in place of
    /// --region: a stack left in a region not named is found and removed too.
    #[arg(long, conflicts_with = "region")]
    pub all_regions: bool,
    /// Delete without asking. Required when standard input is not a terminal.
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The token provider: dolby, oauth2, twilio or livekit.
    #[arg(long, value_parser = parse_provider)]
    pub provider: ProviderKind,
    /// Where to write it; `-` prints it on stdout.
    #[arg(long, default_value = "token.env")]
    pub file: PathBuf,
    /// Overwrite the file if it exists.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct PackageArgs {
    /// Where to write the zip.
    #[arg(long)]
    pub out: PathBuf,
    /// Build function/ of this checkout instead of writing the function this version carries.
    #[arg(long)]
    pub build: bool,
    /// The CPU to build for: x86_64 or arm64.
    #[arg(long, value_enum, default_value_t = ArchArg::X86_64)]
    pub arch: ArchArg,
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

/// How the endpoint and the secret are guarded.
#[derive(Debug, Args)]
pub struct SecurityArgs {
    /// Where the provider's secrets (CONSUMER_KEY, CONSUMER_SECRET, ...) are kept: `env`, the
    /// function's environment (the tutorial's way), or `secrets-manager`, one AWS Secrets Manager
    /// secret of the stack, of which the function gets only the ARN.
    #[arg(long, value_enum, default_value_t = SecretStoreArg::Env)]
    pub secret_store: SecretStoreArg,
    /// What serves token requests: `rest`, an API Gateway REST API (API keys, usage plans,
    /// stage throttling; $3.50 a million requests); `http`, an API Gateway HTTP API (route
    /// throttling, its own CORS; $1.00 a million); `url`, a Lambda function URL (no gateway to
    /// pay for; reserved concurrency bounds the cost). Switching makes the new one before it
    /// removes the old; the function keeps its ARN.
    #[arg(long, value_enum, default_value_t = GatewayArg::Rest)]
    pub gateway: GatewayArg,
    /// Require an API key (header x-api-key) on token requests, issued through a usage plan
    /// bound to the stage; CORS preflights stay open. Without the flag, `up` removes them.
    /// Only with --gateway rest.
    #[arg(long)]
    pub api_key: bool,
    /// Requests a second the stage lets through, sustained (0.1 to 10000; default 20). With
    /// --gateway rest or http.
    #[arg(long, value_name = "PER_SECOND", value_parser = parse_rate_limit)]
    pub rate_limit: Option<f64>,
    /// Requests the stage lets through at once above the rate (1 to 5000; default 40). With
    /// --gateway rest or http.
    #[arg(long, value_name = "REQUESTS", value_parser = parse_burst_limit)]
    pub burst_limit: Option<i32>,
    /// How many instances of the function may run at once behind a function URL (1 to 10000;
    /// default 5, so at most 50 requests a second: Lambda serves 10 a second an instance).
    /// Only with --gateway url.
    #[arg(long, value_name = "INSTANCES", value_parser = parse_reserved_concurrency)]
    pub reserved_concurrency: Option<i32>,
    /// Leave callers' tokens to the function alone: by default, behind an HTTP API with
    /// IDENTITY_MODE=jwt and IDENTITY_JWKS_URL, the API's own JWT authorizer turns away a
    /// request without a valid token before the function runs (and is paid for). API Gateway
    /// finds the keys through IDENTITY_ISSUER's OIDC discovery and checks RSA signatures only:
    /// use this flag for an issuer that signs with ES256 or publishes no discovery document.
    /// Only with --gateway http.
    #[arg(long)]
    pub no_jwt_authorizer: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GatewayArg {
    Rest,
    Http,
    Url,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ArchArg {
    #[value(name = "x86_64")]
    X86_64,
    Arm64,
}

impl From<ArchArg> for Arch {
    fn from(arch: ArchArg) -> Self {
        match arch {
            ArchArg::X86_64 => Arch::X86_64,
            ArchArg::Arm64 => Arch::Arm64,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SecretStoreArg {
    Env,
    SecretsManager,
}

impl DeployArgs {
    /// What the command line says about the function's variables, the secret store included.
    pub fn flags(&self) -> crate::settings::Flags<'_> {
        let secret_in_store = self.security.secret_store == SecretStoreArg::SecretsManager;
        crate::settings::Flags { secret_in_store, ..self.settings.flags() }
    }
}

impl SecurityArgs {
    /// How the stack is guarded; a flag that the gateway asked for has no use for is a usage
    /// error, named with the gateway that has it.
    pub fn security(&self) -> Result<Security, UsageError> {
        let secret_store = match self.secret_store {
            SecretStoreArg::Env => SecretStore::Environment,
            SecretStoreArg::SecretsManager => SecretStore::SecretsManager,
        };
        let gateway = match self.gateway {
            GatewayArg::Rest => Gateway::Rest,
            GatewayArg::Http => Gateway::Http,
            GatewayArg::Url => Gateway::Url,
        };
        use Gateway::{Http, Rest, Url};
        // Each flag that only some gateways take: whether given, which take it, and why.
        let stage_limits =
            "--gateway rest or http (a function URL has no stage limits: --reserved-concurrency bounds it)";
        let flags: [(&str, bool, &[Gateway], &str); 5] = [
            ("--api-key", self.api_key, &[Rest], "--gateway rest (only a REST API has API keys)"),
            ("--rate-limit", self.rate_limit.is_some(), &[Rest, Http], stage_limits),
            ("--burst-limit", self.burst_limit.is_some(), &[Rest, Http], stage_limits),
            (
                "--reserved-concurrency",
                self.reserved_concurrency.is_some(),
                &[Url],
                "--gateway url (an API Gateway stage is bounded by --rate-limit and --burst-limit)",
            ),
            (
                "--no-jwt-authorizer",
                self.no_jwt_authorizer,
                &[Http],
                "--gateway http (only an HTTP API has a JWT authorizer)",
            ),
        ];
        let misplaced = flags.into_iter().find(|(_, given, takes, _)| *given && !takes.contains(&gateway));
        let misplaced = misplaced.map(|(flag, _, _, belongs)| (flag, belongs));
        if let Some((flag, belongs)) = misplaced {
            return Err(UsageError(format!(
                "{flag} does not apply to --gateway {}: it goes with {belongs}",
                gateway.name()
            )));
        }
        let throttle = Throttle {
            rate_limit: self.rate_limit.unwrap_or(Throttle::DEFAULT.rate_limit),
            burst_limit: self.burst_limit.unwrap_or(Throttle::DEFAULT.burst_limit),
        };
        let reserved_concurrency = self.reserved_concurrency.unwrap_or(DEFAULT_RESERVED_CONCURRENCY);
        let jwt_authorizer = !self.no_jwt_authorizer;
        Ok(Security {
            secret_store,
            gateway,
            api_key: self.api_key,
            throttle,
            reserved_concurrency,
            jwt_authorizer,
        })
    }
}

/// Lambda takes any reservation the account's quota allows; beyond 10,000 is a typo.
fn parse_reserved_concurrency(text: &str) -> Result<i32, String> {
    whole_number_in(text, 1..=10_000, "instances, such as 5")
}

/// A whole number in `range`, blanks around it forgiven; `what` names its unit, with an example.
fn whole_number_in(text: &str, range: std::ops::RangeInclusive<i32>, what: &str) -> Result<i32, String> {
    let number: i64 = text.trim().parse().map_err(|_| format!("must be a whole number of {what}"))?;
    let (low, high) = (*range.start(), *range.end());
    match (i64::from(low)..=i64::from(high)).contains(&number) {
        true => Ok(number as i32),
        false => Err(format!("{number} is not in {low}..={high}")),
    }
}

/// API Gateway takes a rate from a tenth of a request a second up to the account's default
/// limit of 10,000.
fn parse_rate_limit(text: &str) -> Result<f64, String> {
    let rate: f64 =
        text.trim().parse().map_err(|_| "must be a number of requests a second, such as 20".to_string())?;
    match rate.is_finite() && (0.1..=10_000.0).contains(&rate) {
        true => Ok(rate),
        false => Err("must be from 0.1 to 10000 requests a second".into()),
    }
}

/// API Gateway takes a burst of 1 to the account's default limit of 5,000; read as the rate
/// is, blanks around it forgiven.
fn parse_burst_limit(text: &str) -> Result<i32, String> {
    whole_number_in(text, 1..=5000, "requests, such as 40")
}

fn parse_provider(name: &str) -> Result<ProviderKind, String> {
    ProviderKind::parse(name).ok_or_else(|| format!("must be {}", ProviderKind::choices()))
}

/// Where the function's variables come from: shared by `up`, `plan`, `status` and `serve`.
#[derive(Debug, Args)]
pub struct SettingsArgs {
    /// A dotenv file with the provider's variables (`tokendeploy init --provider NAME` writes one
    /// to fill in; docs/configuration.md lists them); variables already in the environment take
    /// precedence.
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
        crate::settings::Flags {
            provider: self.provider,
            allow_origins: &self.allow_origins,
            secret_in_store: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_limits_forgive_blanks_and_name_the_range_they_refuse() {
        assert_eq!(parse_rate_limit(" 20 "), Ok(20.0));
        assert_eq!(parse_burst_limit(" 40 "), Ok(40));
        assert_eq!(parse_burst_limit("0"), Err("0 is not in 1..=5000".into()));
        assert_eq!(parse_burst_limit("99999"), Err("99999 is not in 1..=5000".into()));
        assert!(parse_burst_limit("4.5").unwrap_err().contains("whole number"));
        assert!(parse_rate_limit("0").unwrap_err().contains("from 0.1 to 10000"));
    }
}
